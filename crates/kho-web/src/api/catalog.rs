use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kho_core::model::{Dataset, DatasetInput, DatasetRevision, ResourceInput};
use kho_core::{Detail, Error, ErrorCode};
use kho_service::catalog::DatasetQuery;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiCaller, ApiJson, ApiQuery, if_match_revision};
use crate::state::AppState;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Words to find in title, slug, tags or description, with or without diacritics.
    pub q: Option<String>,
    /// Only datasets owned by this agency.
    pub owner_agency_id: Option<i64>,
    /// 1–1000, default 50.
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct DatasetPage {
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
    pub items: Vec<Dataset>,
}

fn with_etag(d: Dataset) -> Response {
    let etag = HeaderValue::from_str(&format!("\"{}\"", d.revision)).ok();
    let mut resp = Json(d).into_response();
    if let Some(e) = etag {
        resp.headers_mut().insert(header::ETAG, e);
    }
    resp
}

/// Datasets the caller may see, newest change first.
#[utoipa::path(get, path = "/api/v1/datasets", tag = "catalog", params(ListQuery), responses((status = 200, body = DatasetPage)))]
async fn list(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<DatasetPage>> {
    let query = DatasetQuery {
        owner_agency_id: q.owner_agency_id,
        q: q.q.map(|s| s.chars().take(500).collect()),
        limit: q.limit.unwrap_or(50).clamp(1, 1000),
        offset: q.offset.unwrap_or(0).max(0),
    };
    let (items, total) = s.kho.list_datasets(&c.ctx, &query).await?;
    Ok(Json(DatasetPage { total, limit: query.limit, offset: query.offset, items }))
}

/// Create a dataset, optionally with its first resources. The owner defaults to the caller's agency.
#[utoipa::path(post, path = "/api/v1/datasets", tag = "catalog", request_body = DatasetInput, responses((status = 201, body = Dataset)))]
async fn create(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiJson(mut body): ApiJson<DatasetInput>,
) -> ApiResult<Response> {
    let resources = std::mem::take(&mut body.resources);
    let d = s.kho.create_dataset(&c.ctx, body, resources).await?;
    let mut resp = with_etag(d);
    *resp.status_mut() = StatusCode::CREATED;
    Ok(resp)
}

/// One dataset by id or slug. `ETag` carries its revision.
#[utoipa::path(get, path = "/api/v1/datasets/{id}", tag = "catalog", params(("id" = String, Path, description = "Id or slug")),
    responses((status = 200, body = Dataset)))]
async fn get(State(s): State<AppState>, ApiCaller(c): ApiCaller, Path(id): Path<String>) -> ApiResult<Response> {
    Ok(with_etag(s.kho.get_dataset(&c.ctx, &id).await?))
}

/// Replace a dataset's description. Send `If-Match: "<revision>"` to refuse the change if
/// someone else changed it since you read it (409 conflict).
#[utoipa::path(put, path = "/api/v1/datasets/{id}", tag = "catalog", request_body = DatasetInput,
    params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "Expected revision")),
    responses((status = 200, body = Dataset)))]
async fn update(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<DatasetInput>,
) -> ApiResult<Response> {
    let expected = if_match_revision(&headers)?;
    Ok(with_etag(s.kho.update_dataset(&c.ctx, &id, body, expected).await?))
}

/// Delete a dataset. Its revision history is kept.
#[utoipa::path(delete, path = "/api/v1/datasets/{id}", tag = "catalog",
    params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "Expected revision")),
    responses((status = 204, description = "Deleted")))]
async fn delete(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let expected = if_match_revision(&headers)?;
    s.kho.delete_dataset(&c.ctx, &id, expected).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every revision of a dataset, newest first, each with the full dataset as it was.
#[utoipa::path(get, path = "/api/v1/datasets/{id}/revisions", tag = "catalog", params(("id" = String, Path)),
    responses((status = 200, body = Vec<DatasetRevision>)))]
async fn revisions(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<DatasetRevision>>> {
    Ok(Json(s.kho.dataset_revisions(&c.ctx, &id).await?))
}

/// The body of a resource: everything but its name, which is in the path.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceBody {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// A Frictionless Table Schema (v2). Fields may reference dictionary terms with `dictionaryTerm`.
    #[schema(value_type = Object)]
    pub schema: serde_json::Value,
}

/// Create or replace the resource `name` of a dataset.
#[utoipa::path(put, path = "/api/v1/datasets/{id}/resources/{name}", tag = "catalog", request_body = ResourceBody,
    params(("id" = String, Path), ("name" = String, Path), ("If-Match" = Option<String>, Header, description = "Expected revision")),
    responses((status = 200, body = Dataset)))]
async fn put_resource(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path((id, name)): Path<(String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ResourceBody>,
) -> ApiResult<Response> {
    let expected = if_match_revision(&headers)?;
    let input = ResourceInput { name, title: body.title, description: body.description, schema: body.schema };
    Ok(with_etag(s.kho.put_resource(&c.ctx, &id, input, expected).await?))
}

/// Remove a resource from a dataset.
#[utoipa::path(delete, path = "/api/v1/datasets/{id}/resources/{name}", tag = "catalog",
    params(("id" = String, Path), ("name" = String, Path)), responses((status = 200, body = Dataset)))]
async fn delete_resource(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path((id, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    Ok(with_etag(s.kho.delete_resource(&c.ctx, &id, &name).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SchemaQuery {
    /// Resolve dictionary terms into the fields (type, format, constraints).
    pub resolved: Option<bool>,
}

/// A resource's Table Schema as JSON (`application/schema+json` is not used: this is a
/// Frictionless Table Schema document).
#[utoipa::path(get, path = "/api/v1/datasets/{id}/resources/{name}/schema", tag = "catalog",
    params(("id" = String, Path), ("name" = String, Path), SchemaQuery), responses((status = 200, body = Object)))]
async fn schema(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path((id, name)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<SchemaQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let d = s.kho.get_dataset(&c.ctx, &id).await?;
    let r = d.resources.into_iter().find(|r| r.input.name == name || r.id == name).ok_or_else(|| {
        ApiError(
            Error::new(ErrorCode::NotFound, format!("dataset has no resource '{name}'"))
                .with_details(vec![Detail::new("name", "no such resource")]),
        )
    })?;
    let schema =
        if q.resolved.unwrap_or(false) { s.kho.effective_schema(&r.input.schema).await? } else { r.input.schema };
    Ok(Json(schema))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, update, delete))
        .routes(routes!(revisions))
        .routes(routes!(put_resource, delete_resource))
        .routes(routes!(schema))
}
