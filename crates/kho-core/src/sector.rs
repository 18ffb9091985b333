//! The sectors (ngành, lĩnh vực) datasets are filed under: the portal's groups, with their names
//! and the EU data theme each maps to, so DCAT harvesters outside Vietnam can place them.
//!
//! A dataset's sector is a slug; one not in this table still works and is shown as written.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sector {
    pub slug: &'static str,
    pub name_vi: &'static str,
    pub name_en: &'static str,
    /// Code in the EU data-theme authority table
    /// (`http://publications.europa.eu/resource/authority/data-theme/…`).
    pub eu_theme: &'static str,
}

const fn s(slug: &'static str, name_vi: &'static str, name_en: &'static str, eu_theme: &'static str) -> Sector {
    Sector { slug, name_vi, name_en, eu_theme }
}

pub const SECTORS: &[Sector] = &[
    s("hanh-chinh", "Hành chính", "Public administration", "GOVE"),
    s("noi-vu", "Nội vụ", "Home affairs", "GOVE"),
    s("dan-so", "Dân số", "Population", "SOCI"),
    s("lao-dong", "Lao động, việc làm", "Labour and employment", "SOCI"),
    s("y-te", "Y tế", "Health", "HEAL"),
    s("giao-duc", "Giáo dục", "Education", "EDUC"),
    s("van-hoa", "Văn hóa, thể thao", "Culture and sport", "EDUC"),
    s("du-lich", "Du lịch", "Tourism", "ECON"),
    s("kinh-te", "Kinh tế", "Economy", "ECON"),
    s("cong-thuong", "Công thương", "Industry and trade", "ECON"),
    s("tai-chinh", "Tài chính, ngân sách", "Finance and budget", "ECON"),
    s("nong-nghiep", "Nông nghiệp", "Agriculture", "AGRI"),
    s("moi-truong", "Môi trường", "Environment", "ENVI"),
    s("dat-dai", "Đất đai", "Land", "REGI"),
    s("xay-dung", "Xây dựng, đô thị", "Construction and urban areas", "REGI"),
    s("giao-thong", "Giao thông", "Transport", "TRAN"),
    s("nang-luong", "Năng lượng", "Energy", "ENER"),
    s("tu-phap", "Tư pháp", "Justice", "JUST"),
    s("khoa-hoc-cong-nghe", "Khoa học, công nghệ", "Science and technology", "TECH"),
    s("thong-tin", "Thông tin, truyền thông", "Information and communications", "TECH"),
];

/// The sector with this slug.
pub fn sector(slug: &str) -> Option<&'static Sector> {
    SECTORS.iter().find(|s| s.slug == slug)
}

/// A sector's name in the language asked for (`en` or Vietnamese), or the slug itself.
pub fn sector_name(slug: &str, en: bool) -> String {
    match sector(slug) {
        Some(s) if en => s.name_en.to_string(),
        Some(s) => s.name_vi.to_string(),
        None => slug.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn slugs_are_unique_and_named() {
        let mut slugs: Vec<_> = super::SECTORS.iter().map(|s| s.slug).collect();
        slugs.sort_unstable();
        slugs.dedup();
        assert_eq!(slugs.len(), super::SECTORS.len());
        assert_eq!(super::sector_name("y-te", false), "Y tế");
        assert_eq!(super::sector_name("y-te", true), "Health");
        assert_eq!(super::sector_name("khac", true), "khac");
    }
}
