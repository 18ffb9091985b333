//! The licences a dataset may carry, by SPDX identifier, with what an open data portal shows of
//! them. Open licences are those of the Open Definition: anyone may use, share and adapt.

/// One licence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct License {
    pub id: &'static str,
    pub title: &'static str,
    pub url: &'static str,
    pub open: bool,
}

pub const LICENSES: &[License] = &[
    License {
        id: "CC-BY-4.0",
        title: "Creative Commons Attribution 4.0",
        url: "https://creativecommons.org/licenses/by/4.0/",
        open: true,
    },
    License {
        id: "CC-BY-SA-4.0",
        title: "Creative Commons Attribution Share-Alike 4.0",
        url: "https://creativecommons.org/licenses/by-sa/4.0/",
        open: true,
    },
    License {
        id: "CC0-1.0",
        title: "Creative Commons CCZero 1.0",
        url: "https://creativecommons.org/publicdomain/zero/1.0/",
        open: true,
    },
    License {
        id: "ODC-By-1.0",
        title: "Open Data Commons Attribution License 1.0",
        url: "https://opendatacommons.org/licenses/by/1-0/",
        open: true,
    },
    License {
        id: "ODbL-1.0",
        title: "Open Data Commons Open Database License 1.0",
        url: "https://opendatacommons.org/licenses/odbl/1-0/",
        open: true,
    },
    License {
        id: "PDDL-1.0",
        title: "Open Data Commons Public Domain Dedication and License 1.0",
        url: "https://opendatacommons.org/licenses/pddl/1-0/",
        open: true,
    },
    License { id: "MIT", title: "MIT License", url: "https://opensource.org/license/mit", open: true },
];

/// Whether `id` has the shape of a licence identifier (SPDX style, up to 64 characters), known
/// or not: letters, digits, `.`, `+`, `_` and `-`, starting with a letter or digit.
pub fn is_license_id(id: &str) -> bool {
    id.len() <= 64
        && id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '_' | '-'))
}

/// The licence with this identifier (case-insensitive).
pub fn license(id: &str) -> Option<&'static License> {
    LICENSES.iter().find(|l| l.id.eq_ignore_ascii_case(id))
}

#[cfg(test)]
mod tests {
    #[test]
    fn found_by_any_case() {
        assert_eq!(super::license("cc-by-4.0").map(|l| l.id), Some("CC-BY-4.0"));
        assert!(super::license("proprietary").is_none());
    }
}
