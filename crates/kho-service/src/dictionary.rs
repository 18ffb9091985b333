//! The shared data dictionary: named, versioned field definitions. Versions are immutable; a
//! change adds the next version, and schemas that pinned an older one keep its checks.

use std::collections::HashMap;

use kho_core::model::{DictionaryTerm, NewDictionaryTerm};
use kho_core::table_schema::{self, FIELD_TYPES};
use kho_core::text::is_valid_term_name;
use kho_core::{Detail, Error, Result};

use crate::{Ctx, Kho};

pub const TERM_REFERENCES: &[&str] = &["admin_unit:province", "admin_unit:commune", "admin_unit:province_pre2025"];

pub fn check_term(t: &NewDictionaryTerm) -> Vec<Detail> {
    let mut out = Vec::new();
    if !is_valid_term_name(&t.name) {
        out.push(Detail::new(
            "name",
            "must be snake_case: a–z, 0–9 and '_', starting with a letter, at most 64 characters",
        ));
    }
    if t.title.trim().is_empty() {
        out.push(Detail::new("title", "must not be empty"));
    }
    if !FIELD_TYPES.contains(&t.field_type.as_str()) {
        out.push(Detail::new("field_type", format!("must be a Table Schema type: {}", FIELD_TYPES.join(", "))));
    } else {
        // Check format and constraints exactly as they will be used: on a field of that type.
        let mut field = serde_json::json!({"name": "x", "type": t.field_type, "constraints": t.constraints});
        if let Some(f) = &t.format {
            field["format"] = serde_json::Value::String(f.clone());
        }
        for d in table_schema::check(&serde_json::json!({"fields": [field]})) {
            out.push(Detail::new(d.path.replacen("fields[0].", "", 1), d.message));
        }
    }
    if let Some(r) = &t.references
        && !TERM_REFERENCES.contains(&r.as_str())
    {
        out.push(Detail::new("references", format!("must be one of: {}", TERM_REFERENCES.join(", "))));
    }
    out
}

/// Every version of every term, by name.
pub type TermLookup = HashMap<String, Vec<DictionaryTerm>>;

impl Kho {
    /// The fields of a table schema that hold personal data (by their terms or marked so).
    pub async fn personal_fields(
        &self,
        schema: &serde_json::Value,
    ) -> Result<Vec<kho_core::table_schema::PersonalField>> {
        let lookup = self.term_lookup().await?;
        Ok(kho_core::table_schema::personal_fields(schema, &lookup))
    }

    /// All versions of all terms, grouped by name. Every schema shown or checked reads them;
    /// they are kept for a few seconds (dropped at once when a term is added here).
    pub async fn term_lookup(&self) -> Result<std::sync::Arc<TermLookup>> {
        self.terms
            .get(|| async {
                let mut map = TermLookup::new();
                for t in self.store.terms().await? {
                    map.entry(t.name.clone()).or_default().push(t);
                }
                Ok(map)
            })
            .await
    }

    /// The latest version of every term, by name.
    pub async fn list_terms(&self, q: Option<&str>) -> Result<Vec<DictionaryTerm>> {
        let mut latest: Vec<DictionaryTerm> =
            self.term_lookup().await?.values().filter_map(|v| v.iter().max_by_key(|t| t.version).cloned()).collect();
        if let Some(q) = q.map(kho_core::text::fold).filter(|q| !q.is_empty()) {
            latest.retain(|t| {
                let hay = kho_core::text::fold(&format!(
                    "{} {} {} {}",
                    t.name,
                    t.title,
                    t.title_en.as_deref().unwrap_or(""),
                    t.description
                ));
                q.split_whitespace().all(|w| hay.contains(w))
            });
        }
        latest.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(latest)
    }

    pub async fn term_versions(&self, name: &str) -> Result<Vec<DictionaryTerm>> {
        let v = self.store.term_versions(name).await?;
        if v.is_empty() {
            return Err(Error::not_found("dictionary term"));
        }
        Ok(v)
    }

    /// Add a term, or the next version of an existing one (administrators only).
    pub async fn add_term(&self, ctx: &Ctx, t: NewDictionaryTerm) -> Result<DictionaryTerm> {
        ctx.principal.require_admin()?;
        let problems = check_term(&t);
        if !problems.is_empty() {
            return Err(Error::validation(problems));
        }
        let added = self.store.add_term_version(&t, ctx.event("term.create", "term", &t.name)).await;
        self.terms.forget();
        added
    }
}
