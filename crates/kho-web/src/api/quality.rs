use axum::Json;
use axum::extract::{Path, State};
use kho_service::opendata::OpenDataStatus;
use kho_service::quality::{DatasetQuality, QualityOverview};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiResult;
use crate::extract::ApiCaller;
use crate::state::AppState;

/// The quality scores of a dataset: đúng (valid), đủ (complete), sạch (clean), sống (fresh),
/// 0–100 each with its evidence, per table (its latest version).
#[utoipa::path(get, path = "/api/v1/datasets/{id}/quality", tag = "quality", params(("id" = String, Path)),
    responses((status = 200, body = DatasetQuality)))]
async fn dataset(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<DatasetQuality>> {
    Ok(Json(s.kho.dataset_quality(&c.ctx, &id).await?))
}

/// Quality of every dataset the caller may see, worst first, and the average per agency.
#[utoipa::path(get, path = "/api/v1/quality", tag = "quality", responses((status = 200, body = QualityOverview)))]
async fn overview(State(s): State<AppState>, ApiCaller(c): ApiCaller) -> ApiResult<Json<QualityOverview>> {
    Ok(Json(s.kho.quality_overview(&c.ctx).await?))
}

/// The open data duties, computed live: the share of agencies with at least one open dataset,
/// the share of open datasets updated within six months, and each agency's figures.
#[utoipa::path(get, path = "/api/v1/open-data/status", tag = "quality",
    responses((status = 200, body = OpenDataStatus)))]
async fn open_data_status(State(s): State<AppState>) -> ApiResult<Json<OpenDataStatus>> {
    Ok(Json(s.kho.open_data_status().await?))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(dataset)).routes(routes!(overview)).routes(routes!(open_data_status))
}
