//! The quality overview: every dataset the user may see, worst first, with the agencies' averages
//! and the overdue ones flagged.

use askama::Template;
use axum::extract::State;
use kho_service::quality::QualityOverview;

use super::{Base, Page, PageResult};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "quality.html")]
struct QualityPage<'a> {
    b: &'a Base,
    q: QualityOverview,
    overdue: usize,
}

pub async fn overview(State(s): State<AppState>, page: Page) -> PageResult {
    let page = page.with_active("quality");
    page.member()?;
    let q = s.kho.quality_overview(page.ctx()).await.map_err(|e| page.error(e))?;
    let overdue = q.datasets.iter().filter(|d| d.overdue).count();
    Ok(page.render(&QualityPage { b: &page.base, q, overdue }))
}
