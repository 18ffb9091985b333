//! Reference data compiled into the binary, so that every kho instance knows Vietnam's
//! administrative units and the built-in dictionary without a network connection. The files live
//! in `data/reference/` at the repository root; `SOURCES.md` there gives their origin and licence.

use std::collections::{BTreeSet, HashMap};

use kho_core::model::{AdminEra, AdminLevel, AdminUnit, CrosswalkEntry, NewDictionaryTerm};

macro_rules! reference {
    ($path:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/reference/", $path))
    };
}

const POST_PROVINCES: &str = reference!("admin-units/post-2025/provinces.csv");
const POST_WARDS: &str = reference!("admin-units/post-2025/wards.csv");
const POST_TYPES: &str = reference!("admin-units/post-2025/administrative_units.csv");
const PRE_PROVINCES: &str = reference!("admin-units/pre-2025/provinces.csv");
const PRE_DISTRICTS: &str = reference!("admin-units/pre-2025/districts.csv");
const PRE_WARDS: &str = reference!("admin-units/pre-2025/wards.csv");
const PRE_TYPES: &str = reference!("admin-units/pre-2025/administrative_units.csv");
const CROSSWALK: &str = reference!("admin-merger-2025/ward_mapping_legacy_to_2025.csv");
const DICTIONARY: &str = reference!("dictionary-terms.json");

/// Identifies the reference data compiled in. Change it whenever a file under
/// `data/reference/admin-*` or the code fixes change, so that existing instances reload them.
pub const ADMIN_UNITS_VERSION: &str = "gso-2025-07-01+pre2025-e8c5f80+crosswalk-780c279+fix-06970";

/// Xã Ba Chẽ is 06978 in the post-2025 table but 06970 in the GSO list and the crosswalk;
/// see data/reference/SOURCES.md.
const CODE_FIXES: &[(&str, &str)] = &[("06978", "06970")];

#[derive(Debug)]
pub struct RefError(pub String);

impl std::fmt::Display for RefError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RefError {}

fn rows(name: &str, text: &str) -> Result<Vec<HashMap<String, String>>, RefError> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| RefError(format!("{name}: {e}")))?.clone();
    let mut out = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let rec = rec.map_err(|e| RefError(format!("{name} row {}: {e}", i + 2)))?;
        out.push(headers.iter().zip(rec.iter()).map(|(h, v)| (h.to_string(), v.trim().to_string())).collect());
    }
    Ok(out)
}

fn field<'a>(name: &str, row: &'a HashMap<String, String>, col: &str) -> Result<&'a str, RefError> {
    row.get(col).map(String::as_str).ok_or_else(|| RefError(format!("{name}: column '{col}' missing")))
}

fn fix(code: &str) -> String {
    CODE_FIXES.iter().find(|(bad, _)| *bad == code).map_or(code, |(_, good)| good).to_string()
}

type UnitTypes = HashMap<String, (String, String)>;

fn unit_types(name: &str, text: &str) -> Result<UnitTypes, RefError> {
    rows(name, text)?
        .iter()
        .map(|r| {
            Ok((
                field(name, r, "id")?.to_string(),
                (field(name, r, "short_name")?.to_string(), field(name, r, "short_name_en")?.to_string()),
            ))
        })
        .collect()
}

fn units(
    name: &str,
    text: &str,
    era: AdminEra,
    level: AdminLevel,
    parent_col: Option<&str>,
    types: &UnitTypes,
) -> Result<Vec<AdminUnit>, RefError> {
    rows(name, text)?
        .iter()
        .map(|r| {
            let type_id = field(name, r, "administrative_unit_id")?;
            let (unit_type, unit_type_en) =
                types.get(type_id).cloned().ok_or_else(|| RefError(format!("{name}: unknown unit type {type_id}")))?;
            let code = field(name, r, "code")?;
            Ok(AdminUnit {
                code: if era == AdminEra::Current { fix(code) } else { code.to_string() },
                era,
                level,
                name: field(name, r, "name")?.to_string(),
                full_name: field(name, r, "full_name")?.to_string(),
                name_en: field(name, r, "name_en")?.to_string(),
                unit_type,
                unit_type_en,
                parent_code: parent_col.map(|c| field(name, r, c).map(str::to_string)).transpose()?,
            })
        })
        .collect()
}

/// All administrative units: the 2025 catalogue (34 provinces, 3,321 communes) and the
/// pre-2025 one (63 provinces, 696 districts, 10,035 communes).
pub fn admin_units() -> Result<Vec<AdminUnit>, RefError> {
    let post = unit_types("post-2025/administrative_units.csv", POST_TYPES)?;
    let pre = unit_types("pre-2025/administrative_units.csv", PRE_TYPES)?;
    let mut out =
        units("post-2025/provinces.csv", POST_PROVINCES, AdminEra::Current, AdminLevel::Province, None, &post)?;
    out.extend(units(
        "post-2025/wards.csv",
        POST_WARDS,
        AdminEra::Current,
        AdminLevel::Commune,
        Some("province_code"),
        &post,
    )?);
    out.extend(units("pre-2025/provinces.csv", PRE_PROVINCES, AdminEra::Legacy, AdminLevel::Province, None, &pre)?);
    out.extend(units(
        "pre-2025/districts.csv",
        PRE_DISTRICTS,
        AdminEra::Legacy,
        AdminLevel::District,
        Some("province_code"),
        &pre,
    )?);
    out.extend(units(
        "pre-2025/wards.csv",
        PRE_WARDS,
        AdminEra::Legacy,
        AdminLevel::Commune,
        Some("district_code"),
        &pre,
    )?);
    Ok(out)
}

/// The old→new crosswalk: every pre-2025 commune to the 2025 commune(s) it became, and every
/// pre-2025 province to its 2025 province. Island districts that had no communes map by their
/// district code to the special zone (đặc khu) they became.
pub fn crosswalk() -> Result<Vec<CrosswalkEntry>, RefError> {
    let name = "ward_mapping_legacy_to_2025.csv";
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for r in rows(name, CROSSWALK)? {
        let ward = field(name, &r, "wardCode")?;
        let old = if ward.is_empty() { field(name, &r, "districtCode")? } else { ward };
        let new = fix(field(name, &r, "newWardCode")?);
        let partial = field(name, &r, "isDividedWard")? == "True";
        if seen.insert((old.to_string(), new.clone())) {
            out.push(CrosswalkEntry { old_code: old.to_string(), new_code: new, partial });
        }
        let (op, np) = (field(name, &r, "provinceCode")?, field(name, &r, "newProvinceCode")?);
        if seen.insert((op.to_string(), np.to_string())) {
            out.push(CrosswalkEntry { old_code: op.to_string(), new_code: np.to_string(), partial: false });
        }
    }
    Ok(out)
}

/// The built-in terms of the shared data dictionary, loaded as version 1 on first start.
pub fn dictionary_terms() -> Result<Vec<NewDictionaryTerm>, RefError> {
    serde_json::from_str(DICTIONARY).map_err(|e| RefError(format!("dictionary-terms.json: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_match_the_published_catalogues() {
        let units = admin_units().unwrap();
        let count = |era, level| units.iter().filter(|u| u.era == era && u.level == level).count();
        assert_eq!(count(AdminEra::Current, AdminLevel::Province), 34);
        assert_eq!(count(AdminEra::Current, AdminLevel::Commune), 3321);
        assert_eq!(count(AdminEra::Legacy, AdminLevel::Province), 63);
        assert_eq!(count(AdminEra::Legacy, AdminLevel::District), 696);
        assert_eq!(count(AdminEra::Legacy, AdminLevel::Commune), 10035);
        let son_la = units.iter().find(|u| u.code == "14" && u.era == AdminEra::Current).unwrap();
        assert_eq!(son_la.full_name, "Tỉnh Sơn La");
        assert_eq!(son_la.unit_type, "Tỉnh");
        assert!(units.iter().any(|u| u.code == "06970" && u.era == AdminEra::Current));
    }

    #[test]
    fn crosswalk_resolves_to_current_units() {
        let units = admin_units().unwrap();
        let current: BTreeSet<_> =
            units.iter().filter(|u| u.era == AdminEra::Current).map(|u| u.code.as_str()).collect();
        let cw = crosswalk().unwrap();
        assert!(cw.len() > 10_000);
        for e in &cw {
            assert!(current.contains(e.new_code.as_str()), "{e:?}");
        }
        // Phường Phúc Xá (Ba Đình, Hà Nội) became part of Phường Hồng Hà.
        assert!(cw.iter().any(|e| e.old_code == "00001" && e.new_code == "00097"));
    }

    #[test]
    fn dictionary_parses() {
        let terms = dictionary_terms().unwrap();
        for name in ["province_code", "commune_code", "cccd", "mst", "phone", "email", "date_of_birth", "gender"] {
            assert!(terms.iter().any(|t| t.name == name), "missing {name}");
        }
        for t in &terms {
            assert!(kho_core::text::is_valid_term_name(&t.name), "{}", t.name);
            assert!(kho_core::table_schema::FIELD_TYPES.contains(&t.field_type.as_str()));
        }
    }
}
