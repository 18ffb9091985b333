//! The open data portal's public face: the home page (search box, counts, newest and most-used
//! datasets, agencies and sectors) and the search page with facets and sorting. Both show each
//! visitor what the catalog lets them see: anonymous visitors find open datasets only.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::State;
use kho_core::model::{Agency, Frequency, Role};
use kho_service::search::{Facet, Filter, SearchDoc, SearchQuery, SortKey};
use time::OffsetDateTime;

use super::catalog::{DatasetRow, date};
use super::{Base, Page, PageResult};
use crate::i18n::Tr;
use crate::state::AppState;

/// One dataset in a list of results.
pub struct Card {
    pub slug: String,
    pub title: String,
    pub description: String,
    pub agency: String,
    pub agency_code: String,
    pub sector: String,
    pub formats: Vec<String>,
    pub modified: String,
    pub fresh: Fresh,
    pub downloads: u64,
    pub views: u64,
    pub access: String,
    pub access_label: &'static str,
}

/// The freshness badge: on time, overdue against the declared frequency, or no data yet.
pub struct Fresh {
    pub class: &'static str,
    pub label: &'static str,
}

pub fn freshness(tr: Tr, published: Option<OffsetDateTime>, frequency: &str, open: bool) -> Fresh {
    let Some(published) = published else {
        return Fresh { class: "nodata", label: tr.t("fresh.nodata") };
    };
    let frequency = frequency.parse::<Frequency>().unwrap_or(Frequency::Irregular);
    let (_, overdue) = kho_core::quality::freshness(Some(published), frequency, open, OffsetDateTime::now_utc());
    if overdue {
        Fresh { class: "overdue", label: tr.t("fresh.overdue") }
    } else {
        Fresh { class: "ontime", label: tr.t("fresh.ontime") }
    }
}

fn card(tr: Tr, d: &SearchDoc) -> Card {
    let en = tr.lang == crate::i18n::Lang::En;
    let mut description: String = d.description.chars().take(240).collect();
    if d.description.chars().count() > 240 {
        description.push('…');
    }
    Card {
        slug: d.name.clone(),
        title: match (&d.title_en, en) {
            (Some(t), true) => t.clone(),
            _ => d.title.clone(),
        },
        description,
        agency: d.agency_name.clone(),
        agency_code: d.agency_code.clone(),
        sector: d.sector.as_deref().map(|s| kho_core::sector::sector_name(s, en)).unwrap_or_default(),
        formats: d.formats.clone(),
        modified: date(d.modified),
        fresh: freshness(tr, d.published, &d.frequency, d.access_level == "open"),
        downloads: d.downloads,
        views: d.views,
        access: d.access_level.clone(),
        access_label: tr.t(&format!("access.{}", d.access_level)),
    }
}

/// A facet value to show: its label, count, and the link that adds or removes it.
pub struct FacetItem {
    pub label: String,
    pub count: usize,
    pub href: String,
    pub selected: bool,
}

pub struct FacetGroup {
    pub param: &'static str,
    pub title: &'static str,
    pub items: Vec<FacetItem>,
}

const FACETS: [(Facet, &str); 7] = [
    (Facet::Agency, "agency"),
    (Facet::Sector, "sector"),
    (Facet::Tag, "tag"),
    (Facet::Format, "format"),
    (Facet::License, "license"),
    (Facet::Frequency, "frequency"),
    (Facet::Spatial, "spatial"),
];

const SORTS: [(&str, SortKey, bool); 4] = [
    ("relevance", SortKey::Relevance, true),
    ("newest", SortKey::Modified, true),
    ("name", SortKey::Title, false),
    ("downloads", SortKey::Downloads, true),
];

/// Facet values as people read them: agency and place names, sector and licence titles.
async fn labeller(s: &AppState, tr: Tr) -> impl Fn(Facet, &str) -> String {
    let en = tr.lang == crate::i18n::Lang::En;
    let agencies: BTreeMap<String, Agency> =
        s.kho.list_agencies().await.unwrap_or_default().into_iter().map(|a| (a.code.clone(), a)).collect();
    let mut places = BTreeMap::new();
    if let Ok(u) = s.kho.get_admin_unit(kho_core::model::AdminEra::Current, &s.kho.config().province_code).await {
        places.insert(u.code.clone(), u.full_name);
    }
    move |facet: Facet, value: &str| -> String {
        match facet {
            Facet::Agency => agencies
                .get(value)
                .map(|a| if en { a.name_en.clone().unwrap_or_else(|| a.name.clone()) } else { a.name.clone() })
                .unwrap_or_else(|| value.to_string()),
            Facet::Sector => kho_core::sector::sector_name(value, en),
            Facet::License => {
                kho_core::license::license(value).map(|l| l.title.to_string()).unwrap_or_else(|| value.to_string())
            }
            Facet::Spatial => places.get(value).cloned().unwrap_or_else(|| value.to_string()),
            Facet::Frequency => tr.t(&format!("frequency.{value}")).to_string(),
            _ => value.to_string(),
        }
    }
}

#[derive(Template)]
#[template(path = "portal_search.html")]
struct SearchPage<'a> {
    b: &'a Base,
    q: String,
    sort: String,
    sorts: Vec<(&'static str, &'static str)>,
    /// The hidden inputs that keep the chosen facets when the search words change.
    kept: Vec<(String, String)>,
    facets: Vec<FacetGroup>,
    cards: Vec<Card>,
    total: usize,
    page_no: usize,
    pages: usize,
    prev_href: String,
    next_href: String,
    can_create: bool,
}

/// `/datasets`: search with facets, sort and paging.
pub async fn search(State(s): State<AppState>, page: Page) -> PageResult {
    let page = page.with_active("datasets");
    let tr = page.tr();
    let query = page.base.path.split_once('?').map(|(_, q)| q.to_string()).unwrap_or_default();
    let params: Vec<(String, String)> =
        form_urlencoded::parse(query.as_bytes()).into_owned().filter(|(k, v)| k != "lang" && !v.is_empty()).collect();
    let get = |k: &str| params.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    let q: String = get("q").unwrap_or_default().chars().take(500).collect();
    let sort = get("sort")
        .filter(|s| SORTS.iter().any(|(n, _, _)| n == s))
        .unwrap_or_else(|| if q.trim().is_empty() { "newest".into() } else { "relevance".into() });
    let page_no = get("page").and_then(|p| p.parse::<usize>().ok()).unwrap_or(1).clamp(1, 10_000);
    let per = 20;
    let mut filters = Vec::new();
    let mut kept = Vec::new();
    for (facet, param) in FACETS {
        for (k, v) in &params {
            if k == param {
                filters.push(Filter::Is(facet, v.clone()));
                kept.push((k.clone(), v.clone()));
            }
        }
    }
    let (_, key, desc) = SORTS.iter().find(|(n, _, _)| *n == sort).copied().unwrap_or(SORTS[0]);
    let found = s
        .kho
        .search_datasets(
            page.ctx(),
            SearchQuery {
                text: q.clone(),
                filters,
                sort: vec![(key, desc)],
                offset: (page_no - 1) * per,
                limit: per,
                facets: FACETS.iter().map(|(f, _)| *f).collect(),
                facet_limit: Some(12),
                ..Default::default()
            },
        )
        .map_err(|e| page.error(e))?;
    let label = labeller(&s, tr).await;
    // Links keep every other parameter; a facet link adds its value or, if chosen, removes it.
    let link = |drop: Option<(&str, &str)>, add: Option<(&str, &str)>, page: Option<usize>| -> String {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &params {
            if k == "page" || drop.is_some_and(|(dk, dv)| dk == k && dv == v) {
                continue;
            }
            ser.append_pair(k, v);
        }
        if let Some((k, v)) = add {
            ser.append_pair(k, v);
        }
        if let Some(p) = page.filter(|p| *p > 1) {
            ser.append_pair("page", &p.to_string());
        }
        let qs = ser.finish();
        if qs.is_empty() { "/datasets".to_string() } else { format!("/datasets?{qs}") }
    };
    let mut facets = Vec::new();
    for (facet, param) in FACETS {
        let counts = found.facets.get(&facet).cloned().unwrap_or_default();
        let mut items: Vec<FacetItem> = counts
            .iter()
            .map(|(value, count)| {
                let selected = params.iter().any(|(k, v)| k == param && v == value);
                FacetItem {
                    label: label(facet, value),
                    count: *count,
                    href: if selected {
                        link(Some((param, value)), None, None)
                    } else {
                        link(None, Some((param, value)), None)
                    },
                    selected,
                }
            })
            .collect();
        // A chosen value stays visible (to be removed) even when no result has it any more.
        for (k, v) in &params {
            if k == param && !counts.iter().any(|(value, _)| value == v) {
                items.push(FacetItem {
                    label: label(facet, v),
                    count: 0,
                    href: link(Some((param, v)), None, None),
                    selected: true,
                });
            }
        }
        if !items.is_empty() {
            facets.push(FacetGroup { param, title: tr.t(&format!("facet.{param}")), items });
        }
    }
    let pages = found.total.div_ceil(per).max(1);
    let tpl = SearchPage {
        b: &page.base,
        sorts: SORTS.iter().map(|(n, _, _)| (*n, tr.t(&format!("sort.{n}")))).collect(),
        sort,
        kept,
        facets,
        cards: found.hits.iter().map(|d| card(tr, d)).collect(),
        total: found.total,
        prev_href: link(None, None, Some(page_no.saturating_sub(1))),
        next_href: link(None, None, Some(page_no + 1)),
        page_no,
        pages,
        q,
        can_create: page.caller.ctx.principal.member().is_some_and(|m| m.role != Role::Viewer),
    };
    Ok(page.render(&tpl))
}

/// A count shown on the home page.
pub struct Stat {
    pub value: String,
    pub label: &'static str,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage<'a> {
    b: &'a Base,
    stats: Vec<Stat>,
    newest: Vec<Card>,
    most_used: Vec<Card>,
    agencies: Vec<FacetItem>,
    sectors: Vec<FacetItem>,
    mine: Vec<DatasetRow>,
    can_create: bool,
}
/// `/`: the portal's front page (and, for signed-in stewards, their agency's datasets).
pub async fn home(State(s): State<AppState>, page: Page) -> PageResult {
    let page = page.with_active("home");
    let tr = page.tr();
    let search = |sort: SortKey, limit: usize, facets: Vec<Facet>| {
        s.kho.search_datasets(
            page.ctx(),
            SearchQuery { sort: vec![(sort, true)], limit, facets, facet_limit: None, ..Default::default() },
        )
    };
    let all = search(SortKey::Modified, 6, vec![Facet::Agency, Facet::Sector]).map_err(|e| page.error(e))?;
    let most = search(SortKey::Downloads, 6, vec![]).map_err(|e| page.error(e))?;
    let label = labeller(&s, tr).await;
    let facet_items = |facet: Facet, param: &str| -> Vec<FacetItem> {
        all.facets
            .get(&facet)
            .map(|counts| {
                counts
                    .iter()
                    .map(|(value, count)| FacetItem {
                        label: label(facet, value),
                        count: *count,
                        href: format!(
                            "/datasets?{}",
                            form_urlencoded::Serializer::new(String::new()).append_pair(param, value).finish()
                        ),
                        selected: false,
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let agencies = facet_items(Facet::Agency, "agency");
    let sectors = facet_items(Facet::Sector, "sector");
    let downloads = s.kho.visible_downloads(page.ctx());
    let stats = vec![
        Stat { value: super::format_number((all.total as u64) as f64, 0, tr.lang), label: tr.t("home.stat_datasets") },
        Stat {
            value: super::format_number((agencies.len() as u64) as f64, 0, tr.lang),
            label: tr.t("home.stat_agencies"),
        },
        Stat {
            value: super::format_number((sectors.len() as u64) as f64, 0, tr.lang),
            label: tr.t("home.stat_sectors"),
        },
        Stat { value: super::format_number((downloads) as f64, 0, tr.lang), label: tr.t("home.stat_downloads") },
    ];
    let mine = match page.caller.ctx.principal.member() {
        Some(m) => {
            let q = kho_service::catalog::DatasetQuery {
                owner_agency_id: Some(m.agency_id),
                limit: 20,
                ..Default::default()
            };
            let list = s.kho.list_datasets(page.ctx(), &q).await.map_err(|e| page.error(e))?.0;
            super::catalog::rows(&s, tr, list).await
        }
        None => vec![],
    };
    let tpl = HomePage {
        b: &page.base,
        stats,
        newest: all.hits.iter().map(|d| card(tr, d)).collect(),
        most_used: most.hits.iter().filter(|d| d.downloads > 0).map(|d| card(tr, d)).collect(),
        agencies,
        sectors,
        mine,
        can_create: page.caller.ctx.principal.member().is_some_and(|m| m.role != Role::Viewer),
    };
    Ok(page.render(&tpl))
}

/// One agency's row on the status page, ready to show.
pub struct AgencyDuty {
    pub code: String,
    pub name: String,
    pub open_datasets: usize,
    pub updated: usize,
    pub overdue: usize,
    pub quality: String,
    pub last: String,
}

fn duty(tr: Tr, a: &kho_service::opendata::AgencyOpenData) -> AgencyDuty {
    let en = tr.lang == crate::i18n::Lang::En;
    AgencyDuty {
        code: a.code.clone(),
        name: if en { a.name_en.clone().unwrap_or_else(|| a.name.clone()) } else { a.name.clone() },
        open_datasets: a.open_datasets,
        updated: a.updated_within_six_months,
        overdue: a.overdue,
        quality: a.average_quality.map(|q| format!("{q:.0}")).unwrap_or_else(|| "—".into()),
        last: a.last_published.map(date).unwrap_or_else(|| "—".into()),
    }
}

#[derive(Template)]
#[template(path = "open_data.html")]
struct StatusPage<'a> {
    b: &'a Base,
    status: kho_service::opendata::OpenDataStatus,
    rows: Vec<AgencyDuty>,
    computed: String,
}

/// `/open-data`: the plans' targets, computed live.
pub async fn open_data(State(s): State<AppState>, page: Page) -> PageResult {
    let page = page.with_active("open-data");
    let status = s.kho.open_data_status().await.map_err(|e| page.error(e))?;
    let rows = status.by_agency.iter().map(|a| duty(page.tr(), a)).collect();
    let tpl = StatusPage { b: &page.base, computed: date(status.computed_at), rows, status };
    Ok(page.render(&tpl))
}

#[derive(Template)]
#[template(path = "agency.html")]
struct AgencyPage<'a> {
    b: &'a Base,
    name: String,
    duty: Option<AgencyDuty>,
    cards: Vec<Card>,
    total: usize,
}

/// `/agencies/{code}`: an agency's public page, its datasets and its open data figures.
pub async fn agency(
    State(s): State<AppState>,
    page: Page,
    axum::extract::Path(code): axum::extract::Path<String>,
) -> PageResult {
    let page = page.with_active("agencies");
    let tr = page.tr();
    let agency = s.kho.agency_by_code(&code).await.map_err(|e| page.error(e))?;
    let figures = s.kho.agency_open_data(&agency).await.map_err(|e| page.error(e))?;
    let duty = Some(duty(tr, &figures));
    let found = s
        .kho
        .search_datasets(
            page.ctx(),
            SearchQuery {
                filters: vec![Filter::Is(Facet::Agency, agency.code.clone())],
                sort: vec![(SortKey::Modified, true)],
                limit: 100,
                ..Default::default()
            },
        )
        .map_err(|e| page.error(e))?;
    let en = tr.lang == crate::i18n::Lang::En;
    let tpl = AgencyPage {
        b: &page.base,
        name: if en { agency.name_en.clone().unwrap_or_else(|| agency.name.clone()) } else { agency.name.clone() },
        cards: found.hits.iter().map(|d| card(tr, d)).collect(),
        total: found.total,
        duty,
    };
    Ok(page.render(&tpl))
}
