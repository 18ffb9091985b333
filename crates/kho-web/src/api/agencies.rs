use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use kho_core::model::{AdminEra, AdminLevel, AdminUnit, Agency, CrosswalkEntry, NewAgency};
use kho_service::agencies::AdminUnitFilter;
use kho_service::agencies::AgencyNode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiResult;
use crate::extract::{ApiCaller, ApiJson, ApiQuery};
use crate::state::AppState;

/// All agencies, flat, in creation order.
#[utoipa::path(get, path = "/api/v1/agencies", tag = "agencies", responses((status = 200, body = Vec<Agency>)))]
async fn list(State(s): State<AppState>) -> ApiResult<Json<Vec<Agency>>> {
    Ok(Json(s.kho.list_agencies().await?))
}

/// Create an agency (administrators).
#[utoipa::path(post, path = "/api/v1/agencies", tag = "agencies", request_body = NewAgency,
    responses((status = 201, body = Agency)))]
async fn create(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiJson(body): ApiJson<NewAgency>,
) -> ApiResult<(StatusCode, Json<Agency>)> {
    Ok((StatusCode::CREATED, Json(s.kho.create_agency(&c.ctx, body).await?)))
}

/// The agency tree: the People's Committee, its departments and communes.
#[utoipa::path(get, path = "/api/v1/agencies/tree", tag = "agencies", responses((status = 200, body = Vec<AgencyNode>)))]
async fn tree(State(s): State<AppState>) -> ApiResult<Json<Vec<AgencyNode>>> {
    Ok(Json(s.kho.agency_tree().await?))
}

/// One agency, by id or code.
#[utoipa::path(get, path = "/api/v1/agencies/{id}", tag = "agencies",
    params(("id" = String, Path, description = "Numeric id or code, e.g. so-y-te")),
    responses((status = 200, body = Agency)))]
async fn get(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Agency>> {
    Ok(Json(s.kho.get_agency(&id).await?))
}

/// Replace an agency's description (administrators).
#[utoipa::path(put, path = "/api/v1/agencies/{id}", tag = "agencies", request_body = NewAgency,
    params(("id" = i64, Path, description = "Agency id")), responses((status = 200, body = Agency)))]
async fn update(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<NewAgency>,
) -> ApiResult<Json<Agency>> {
    Ok(Json(s.kho.update_agency(&c.ctx, id, body).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UnitQuery {
    /// `2025` (default) or `pre2025`.
    pub era: Option<AdminEra>,
    pub level: Option<AdminLevel>,
    /// Parent code: a province for communes (2025), a district for pre-2025 communes.
    pub parent: Option<String>,
    /// Name or code, with or without diacritics ("ha noi" finds "Hà Nội").
    pub q: Option<String>,
    /// 1–1000, default 100.
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct UnitPage {
    pub total: i64,
    pub items: Vec<AdminUnit>,
}

/// Search the GSO administrative units.
#[utoipa::path(get, path = "/api/v1/admin-units", tag = "agencies", params(UnitQuery), responses((status = 200, body = UnitPage)))]
async fn units(State(s): State<AppState>, ApiQuery(q): ApiQuery<UnitQuery>) -> ApiResult<Json<UnitPage>> {
    let filter = AdminUnitFilter {
        era: Some(q.era.unwrap_or(AdminEra::Current)),
        level: q.level,
        parent_code: q.parent,
        q: q.q.filter(|s| !s.trim().is_empty()).map(|s| s.chars().take(200).collect()),
        limit: q.limit.unwrap_or(100).clamp(1, 1000),
        offset: q.offset.unwrap_or(0).max(0),
    };
    let (items, total) = s.kho.list_admin_units(&filter).await?;
    Ok(Json(UnitPage { total, items }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EraQuery {
    pub era: Option<AdminEra>,
}

/// One administrative unit by GSO code.
#[utoipa::path(get, path = "/api/v1/admin-units/{code}", tag = "agencies", params(("code" = String, Path), EraQuery),
    responses((status = 200, body = AdminUnit)))]
async fn unit(
    State(s): State<AppState>,
    Path(code): Path<String>,
    ApiQuery(q): ApiQuery<EraQuery>,
) -> ApiResult<Json<AdminUnit>> {
    Ok(Json(s.kho.get_admin_unit(q.era.unwrap_or(AdminEra::Current), &code).await?))
}

/// The 2025 unit(s) a pre-2025 commune or province became.
#[utoipa::path(get, path = "/api/v1/admin-units/{code}/successors", tag = "agencies", params(("code" = String, Path)),
    responses((status = 200, body = Vec<CrosswalkEntry>)))]
async fn successors(State(s): State<AppState>, Path(code): Path<String>) -> ApiResult<Json<Vec<CrosswalkEntry>>> {
    Ok(Json(s.kho.crosswalk(&code).await?))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(tree))
        .routes(routes!(get, update))
        .routes(routes!(units))
        .routes(routes!(unit))
        .routes(routes!(successors))
}
