//! Shared reference pages: the data dictionary, the agency tree, the administrative units.

use askama::Template;
use axum::extract::{Path, State};
use kho_core::model::{AdminEra, AdminLevel, AdminUnit, DictionaryTerm};
use kho_service::agencies::AdminUnitFilter;
use kho_service::agencies::AgencyNode;

use super::{Base, Page, PageResult};
use crate::state::AppState;

fn query_param(b: &Base, key: &str) -> Option<String> {
    let q = b.path.split_once('?').map(|(_, q)| q).unwrap_or("");
    form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == key).map(|(_, v)| v.into_owned())
}

#[derive(Template)]
#[template(path = "dictionary.html")]
struct DictionaryPage<'a> {
    b: &'a Base,
    /// Each term with its type as people say it.
    terms: Vec<(DictionaryTerm, String)>,
    q: String,
    en: bool,
}

pub async fn dictionary(State(s): State<AppState>, page: Page) -> PageResult {
    let page = page.with_active("dictionary");
    let q = query_param(&page.base, "q").unwrap_or_default();
    let terms = s
        .kho
        .list_terms(Some(&q))
        .await
        .map_err(|e| page.error(e))?
        .into_iter()
        .map(|t| {
            let ty = page.tr().t(&format!("fieldtype.{}", t.field_type)).to_string();
            (t, ty)
        })
        .collect();
    let en = page.base.tr.lang == crate::i18n::Lang::En;
    Ok(page.render(&DictionaryPage { b: &page.base, terms, q, en }))
}

#[derive(Template)]
#[template(path = "term.html")]
struct TermPage<'a> {
    b: &'a Base,
    versions: Vec<TermView>,
    /// The newest version's title, for the page's title.
    title: String,
    en: bool,
}

pub struct TermView {
    pub t: DictionaryTerm,
    /// The type as people say it.
    pub ty: String,
    /// The term's rules in words (never a regular expression).
    pub rules: Vec<String>,
    pub created: String,
}

/// A term's constraints said in words, in the page's language; a pattern is shown by the
/// term's examples, which match it.
fn rules_in_words(t: &DictionaryTerm, tr: crate::i18n::Tr) -> Vec<String> {
    let c = &t.constraints;
    let mut out = Vec::new();
    let say = |k: &str| tr.t(&format!("term_rule.{k}")).to_string();
    if c.get("required").and_then(serde_json::Value::as_bool) == Some(true) {
        out.push(say("required"));
    }
    if c.get("unique").and_then(serde_json::Value::as_bool) == Some(true) {
        out.push(say("unique"));
    }
    let num = |k: &str| c.get(k).map(|v| v.to_string().trim_matches('"').to_string());
    if let Some(v) = num("minimum") {
        out.push(format!("{} {v}", say("minimum")));
    }
    if let Some(v) = num("maximum") {
        out.push(format!("{} {v}", say("maximum")));
    }
    if let Some(v) = num("minLength") {
        out.push(format!("{} {v} {}", say("min_length"), say("characters")));
    }
    if let Some(v) = num("maxLength") {
        out.push(format!("{} {v} {}", say("max_length"), say("characters")));
    }
    if let Some(values) = c.get("enum").and_then(serde_json::Value::as_array) {
        let list: Vec<String> = values.iter().map(|v| v.to_string().trim_matches('"').to_string()).collect();
        out.push(format!("{} {}", say("one_of"), list.join(", ")));
    }
    if c.get("pattern").is_some() {
        out.push(if t.examples.is_empty() {
            say("pattern")
        } else {
            format!("{} {}", say("pattern_like"), t.examples.join(", "))
        });
    }
    match t.references.as_deref() {
        Some("admin_unit:province") => out.push(say("province")),
        Some("admin_unit:commune") => out.push(say("commune")),
        _ => {}
    }
    if t.personal {
        out.push(say("personal"));
    }
    out
}

pub async fn term(State(s): State<AppState>, page: Page, Path(name): Path<String>) -> PageResult {
    let page = page.with_active("dictionary");
    let mut versions: Vec<TermView> = s
        .kho
        .term_versions(&name)
        .await
        .map_err(|e| page.error(e))?
        .into_iter()
        .map(|t| TermView {
            ty: page.tr().t(&format!("fieldtype.{}", t.field_type)).to_string(),
            rules: rules_in_words(&t, page.tr()),
            created: super::catalog::date(t.created_at),
            t,
        })
        .collect();
    versions.reverse();
    let en = page.base.tr.lang == crate::i18n::Lang::En;
    let title = versions
        .first()
        .map(|v| if en { v.t.title_en.clone().unwrap_or(v.t.title.clone()) } else { v.t.title.clone() })
        .unwrap_or(name);
    Ok(page.render(&TermPage { b: &page.base, versions, title, en }))
}

/// A tree flattened for display, with its depth.
pub struct TreeRow {
    pub depth: usize,
    pub id: i64,
    pub code: String,
    pub name: String,
    pub kind: String,
    pub unit: String,
}

fn flatten(nodes: &[AgencyNode], depth: usize, out: &mut Vec<TreeRow>) {
    for n in nodes {
        out.push(TreeRow {
            depth,
            id: n.agency.id,
            code: n.agency.code.clone(),
            name: n.agency.name.clone(),
            kind: n.agency.kind.as_str().to_string(),
            unit: n.agency.admin_unit_code.clone().unwrap_or_default(),
        });
        flatten(&n.children, depth + 1, out);
    }
}

#[derive(Template)]
#[template(path = "agencies.html")]
struct AgenciesPage<'a> {
    b: &'a Base,
    rows: Vec<TreeRow>,
}

pub async fn agencies(State(s): State<AppState>, page: Page) -> PageResult {
    let page = page.with_active("agencies");
    let tree = s.kho.agency_tree().await.map_err(|e| page.error(e))?;
    let mut rows = Vec::new();
    flatten(&tree, 0, &mut rows);
    Ok(page.render(&AgenciesPage { b: &page.base, rows }))
}

#[derive(Template)]
#[template(path = "admin_units.html")]
struct UnitsPage<'a> {
    b: &'a Base,
    units: Vec<AdminUnit>,
    successors: Vec<(String, String)>,
    q: String,
    legacy: bool,
    total: i64,
}

pub async fn admin_units(State(s): State<AppState>, page: Page) -> PageResult {
    let page = page.with_active("agencies");
    let q = query_param(&page.base, "q").unwrap_or_default();
    let legacy = query_param(&page.base, "era").as_deref() == Some("pre2025");
    let filter = AdminUnitFilter {
        era: Some(if legacy { AdminEra::Legacy } else { AdminEra::Current }),
        level: if q.is_empty() { Some(AdminLevel::Province) } else { None },
        q: Some(q.chars().take(100).collect::<String>()).filter(|s| !s.is_empty()),
        limit: 100,
        ..Default::default()
    };
    let (units, total) = s.kho.list_admin_units(&filter).await.map_err(|e| page.error(e))?;
    let mut successors = Vec::new();
    if legacy {
        for u in units.iter().take(20) {
            let new: Vec<String> =
                s.kho.crosswalk(&u.code).await.unwrap_or_default().into_iter().map(|c| c.new_code).collect();
            successors.push((u.code.clone(), new.join(", ")));
        }
    }
    Ok(page.render(&UnitsPage { b: &page.base, units, successors, q, legacy, total }))
}
