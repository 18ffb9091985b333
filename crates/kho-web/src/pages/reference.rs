//! Shared reference pages: the data dictionary, the agency tree, the administrative units.

use askama::Template;
use axum::extract::{Path, State};
use kho_core::model::{AdminEra, AdminLevel, AdminUnit, DictionaryTerm};
use kho_meta::AdminUnitFilter;
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
    terms: Vec<DictionaryTerm>,
    q: String,
    en: bool,
}

pub async fn dictionary(State(s): State<AppState>, page: Page) -> PageResult {
    let page = page.with_active("dictionary");
    let q = query_param(&page.base, "q").unwrap_or_default();
    let terms = s.kho.list_terms(Some(&q)).await.map_err(|e| page.error(e))?;
    let en = page.base.tr.lang == crate::i18n::Lang::En;
    Ok(page.render(&DictionaryPage { b: &page.base, terms, q, en }))
}

#[derive(Template)]
#[template(path = "term.html")]
struct TermPage<'a> {
    b: &'a Base,
    versions: Vec<TermView>,
    name: String,
    en: bool,
}

pub struct TermView {
    pub t: DictionaryTerm,
    pub constraints: String,
    pub created: String,
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
            constraints: serde_json::to_string_pretty(&t.constraints).unwrap_or_default(),
            created: super::catalog::date(t.created_at),
            t,
        })
        .collect();
    versions.reverse();
    let en = page.base.tr.lang == crate::i18n::Lang::En;
    Ok(page.render(&TermPage { b: &page.base, versions, name, en }))
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
