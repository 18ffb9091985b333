use axum::Json;
use axum::extract::{Path, State};
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

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(dataset)).routes(routes!(overview))
}
