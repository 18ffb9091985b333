//! UI text in Vietnamese (first) and English. The words live in `messages/vi.toml` and
//! `messages/en.toml`; code refers to them by key only.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::http::request::Parts;
use axum_extra::extract::CookieJar;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Vi,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Vi => "vi",
            Lang::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "vi" => Some(Lang::Vi),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// `?lang=` first (remembered in a cookie by the page layer), then that cookie. The
    /// browser's Accept-Language is deliberately not consulted: many officials use browsers
    /// set to English, and the platform speaks Vietnamese unless asked otherwise.
    pub fn from_request(parts: &Parts) -> Lang {
        let query = parts.uri.query().unwrap_or("");
        if let Some(l) =
            form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "lang").and_then(|(_, v)| Lang::parse(&v))
        {
            return l;
        }
        let jar = CookieJar::from_headers(&parts.headers);
        if let Some(l) = jar.get("kho_lang").and_then(|c| Lang::parse(c.value())) {
            return l;
        }
        Lang::Vi
    }
}

type Table = HashMap<String, String>;

fn parse(name: &str, text: &str) -> Table {
    match toml::from_str::<Table>(text) {
        Ok(t) => t,
        Err(e) => {
            // The files are compiled in and checked by tests; a broken one is a build defect.
            tracing::error!("message file {name} is invalid: {e}");
            Table::new()
        }
    }
}

static VI: LazyLock<Table> = LazyLock::new(|| parse("vi.toml", include_str!("../messages/vi.toml")));
static EN: LazyLock<Table> = LazyLock::new(|| parse("en.toml", include_str!("../messages/en.toml")));

/// A translator for one request's language.
#[derive(Debug, Clone, Copy)]
pub struct Tr {
    pub lang: Lang,
}

impl Tr {
    pub fn new(lang: Lang) -> Self {
        Tr { lang }
    }

    /// The text for `key`, falling back to Vietnamese; a missing key shows as "⟨?⟩" rather
    /// than breaking the page (a test checks every key the templates use).
    pub fn t(&self, key: &str) -> &'static str {
        let table: &'static Table = if self.lang == Lang::En { &EN } else { &VI };
        table.get(key).or_else(|| VI.get(key)).map(String::as_str).unwrap_or("⟨?⟩")
    }

    /// Whether there is a text for `key`.
    pub fn has(&self, key: &str) -> bool {
        VI.get(key).is_some()
    }

    /// The localized explanation of an error code.
    pub fn error(&self, code: kho_core::ErrorCode) -> String {
        self.t(&format!("error.{}", code.as_str())).to_string()
    }

    pub fn code(&self) -> &'static str {
        self.lang.code()
    }

    pub fn other_code(&self) -> &'static str {
        if self.lang == Lang::Vi { "en" } else { "vi" }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every rule a file's rows can fail has a name in both languages.
    #[test]
    fn every_rule_is_named() {
        for rule in kho_service::ingest::RULES {
            let key = format!("rule.{rule}");
            assert!(VI.contains_key(&key) && EN.contains_key(&key), "{key}");
        }
    }

    #[test]
    fn both_languages_have_the_same_keys() {
        assert!(!VI.is_empty() && !EN.is_empty());
        let mut missing: Vec<_> = VI.keys().filter(|k| !EN.contains_key(*k)).collect();
        missing.extend(EN.keys().filter(|k| !VI.contains_key(*k)));
        assert!(missing.is_empty(), "keys in one file only: {missing:?}");
    }

    #[test]
    fn every_error_code_is_explained() {
        for code in kho_core::ErrorCode::ALL {
            let key = format!("error.{}", code.as_str());
            assert!(VI.contains_key(&key), "vi.toml lacks {key}");
        }
        assert_eq!(Tr::new(Lang::Vi).error(kho_core::ErrorCode::NotFound), VI["error.not_found"]);
    }

    /// Every `t("key")` used in a template or page handler exists in the message files.
    #[test]
    fn templates_use_known_keys() {
        // The folder `cargo test` runs the test for: a shared build cache may hold a test built
        // in another checkout.
        let here = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
        let dir = format!("{here}/templates");
        let mut sources: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap()).collect();
        for f in std::fs::read_dir(format!("{here}/src/pages")).unwrap() {
            sources.push(std::fs::read_to_string(f.unwrap().path()).unwrap());
        }
        let mut missing = Vec::new();
        let mut seen = 0;
        for src in &sources {
            for part in src.split(".t(\"").skip(1) {
                seen += 1;
                let key = part.split('"').next().unwrap();
                if !VI.contains_key(key) {
                    missing.push(key.to_string());
                }
            }
        }
        assert!(seen > 100, "the scan found only {seen} keys: is the pattern still right?");
        assert!(missing.is_empty(), "unknown message keys: {missing:?}");
    }
}
