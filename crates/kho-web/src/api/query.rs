//! Querying published data: the rows API, aggregates and read-only SQL.

use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use kho_core::{Error, ErrorCode};
use kho_service::query::{AggregateQuery, Filter, Measure, RowsQuery, SortKey};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiCaller, ApiJson};
use crate::state::AppState;

fn bad(message: impl Into<String>) -> ApiError {
    ApiError(Error::new(ErrorCode::BadRequest, message))
}

/// The query string as ordered pairs: `filter` and `measure` may repeat.
fn pairs(raw: Option<String>) -> Vec<(String, String)> {
    raw.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default()
}

fn number<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, ApiError> {
    v.parse::<T>().map_err(|_| bad(format!("{name}: '{v}' is not a whole number ≥ 0")))
}

fn version_param(v: &str) -> Result<Option<i64>, ApiError> {
    match v {
        "" | "latest" => Ok(None),
        v => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .map(Some)
            .ok_or_else(|| bad(format!("version: '{v}' is not a version number or 'latest'"))),
    }
}

fn list(v: &str) -> Vec<String> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// Parameters of the rows API (documentation; the handler reads the raw query so that `filter`
/// may repeat).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct RowsParams {
    /// Version number; default the latest.
    version: Option<String>,
    /// `field:op:value`, repeatable; op is eq (default), ne, gt, gte, lt, lte, in (`a,b,c`),
    /// null (`true`/`false`) or contains (text, diacritics ignored). Dates as yyyy-mm-dd or dd/mm/yyyy.
    filter: Option<Vec<String>>,
    /// Words that must all appear in the text fields, with or without diacritics.
    q: Option<String>,
    /// Fields to sort by, comma-separated; `-` before a field for descending. Tables with a
    /// primary key are then ordered by it (by it alone when no sort is given), so that pages
    /// never overlap; tables without one come in the order their rows were loaded.
    sort: Option<String>,
    /// Fields to return, comma-separated; default all.
    fields: Option<String>,
    /// Records per page, 0–10000; default 100.
    limit: Option<u32>,
    /// Records to skip.
    offset: Option<u64>,
    /// The `next` cursor of the previous page (keyset paging; tables with a primary key, with
    /// or without a sort).
    after: Option<String>,
    /// Count all matching rows (default true).
    total: Option<bool>,
}

/// Parameters of the aggregate API.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct AggregateParams {
    version: Option<String>,
    /// Fields to group by, comma-separated.
    group_by: Option<String>,
    /// `count`, or `count|sum|avg|min|max:field`; repeatable.
    measure: Option<Vec<String>>,
    filter: Option<Vec<String>>,
    q: Option<String>,
    /// Group fields or measure columns (`sum_dan_so`), `-` for descending; default the group fields.
    sort: Option<String>,
    /// Groups to return, at most 10000; default 1000.
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct FieldOut {
    pub name: String,
    /// Table Schema type: string, integer, number, boolean, date, datetime…
    #[serde(rename = "type")]
    pub kind: String,
}

/// A page of records, but for `records`.
#[derive(Serialize, ToSchema)]
pub struct RowsHead {
    pub dataset: String,
    pub resource: String,
    pub version: i64,
    pub fields: Vec<FieldOut>,
    /// Rows matching the filters across all pages (unless `total=false`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    pub limit: usize,
    pub offset: usize,
    /// Cursor for the next page (`after=`), when there may be one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A page of records. (The handler writes `records` straight from Arrow after the other fields.)
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // describes the answer for the API description; never built
pub struct RowsAnswer {
    #[serde(flatten)]
    head: RowsHead,
    /// One object per row, every field present (null when empty).
    #[schema(value_type = Vec<Object>)]
    records: (),
}

fn fields_out(fields: Vec<kho_service::query::FieldInfo>) -> Vec<FieldOut> {
    fields.into_iter().map(|f| FieldOut { name: f.name, kind: f.kind.to_string() }).collect()
}

/// A JSON answer: `head`'s fields, then `"records"`, whose JSON was written straight from the
/// Arrow batches (parsing it only to write it again would cost more than the query).
fn with_records<T: Serialize>(head: &T, records: &kho_service::query::Records) -> ApiResult<Response> {
    let mut body = serde_json::to_vec(head).map_err(|e| ApiError(Error::internal(format!("answer: {e}"))))?;
    if body.pop() != Some(b'}') {
        return Err(ApiError(Error::internal("answer: not a JSON object")));
    }
    if body.len() > 1 {
        body.push(b',');
    }
    body.extend_from_slice(b"\"records\":");
    body.extend_from_slice(records.as_bytes());
    body.push(b'}');
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// Records of a table's version, filtered, searched, sorted and paged.
///
/// Reads of non-open datasets are recorded in the audit log.
#[utoipa::path(get, path = "/api/v1/datasets/{id}/resources/{name}/rows", tag = "query",
    params(("id" = String, Path), ("name" = String, Path), RowsParams),
    responses((status = 200, body = RowsAnswer)))]
async fn rows(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path((id, name)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let mut query = RowsQuery::default();
    let mut version = None;
    for (k, v) in pairs(raw) {
        match k.as_str() {
            "version" => version = version_param(&v)?,
            "filter" => query.filters.push(Filter::parse(&v)?),
            "q" => query.q = Some(v),
            "sort" => query.sort = SortKey::parse_list(&v)?,
            "fields" => query.fields = Some(list(&v)),
            "limit" => query.limit = number("limit", &v)?,
            "offset" => query.offset = number("offset", &v)?,
            "after" => query.after = Some(v).filter(|v| !v.is_empty()),
            "total" => {
                query.total = match v.as_str() {
                    "true" | "1" | "" => true,
                    "false" | "0" => false,
                    _ => return Err(bad(format!("total: '{v}' is not true or false"))),
                }
            }
            // Read by the caller's context: why personal fields are wanted unmasked.
            "purpose" => {}
            other => {
                return Err(bad(format!("unknown parameter '{other}' (filters are written filter=field:op:value)")));
            }
        }
    }
    let (v, page) = s.kho.rows(&c.ctx, &id, &name, version, &query).await?;
    let head = RowsHead {
        dataset: id,
        resource: name,
        version: v.version,
        fields: fields_out(page.fields),
        total: page.total,
        limit: query.limit,
        offset: query.offset,
        next: page.next,
    };
    with_records(&head, &page.records)
}

/// Groups and their aggregates, but for `records`.
#[derive(Serialize, ToSchema)]
pub struct AggregateHead {
    pub dataset: String,
    pub resource: String,
    pub version: i64,
    pub fields: Vec<FieldOut>,
}

/// Groups and their aggregates. (The handler writes `records` straight from Arrow after the other fields.)
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // describes the answer for the API description; never built
pub struct AggregateAnswer {
    #[serde(flatten)]
    head: AggregateHead,
    /// One object per row, every field present (null when empty).
    #[schema(value_type = Vec<Object>)]
    records: (),
}

/// Group-by aggregates (count, sum, avg, min, max) of a table's version.
#[utoipa::path(get, path = "/api/v1/datasets/{id}/resources/{name}/aggregate", tag = "query",
    params(("id" = String, Path), ("name" = String, Path), AggregateParams),
    responses((status = 200, body = AggregateAnswer)))]
async fn aggregate(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path((id, name)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let mut query = AggregateQuery::default();
    let mut version = None;
    for (k, v) in pairs(raw) {
        match k.as_str() {
            "version" => version = version_param(&v)?,
            "group_by" => query.group_by = list(&v),
            "measure" => query.measures.push(Measure::parse(&v)?),
            "filter" => query.filters.push(Filter::parse(&v)?),
            "q" => query.q = Some(v),
            "sort" => query.sort = SortKey::parse_list(&v)?,
            "limit" => query.limit = number("limit", &v)?,
            "purpose" => {}
            other => return Err(bad(format!("unknown parameter '{other}'"))),
        }
    }
    let (v, page) = s.kho.aggregate(&c.ctx, &id, &name, version, &query).await?;
    let head = AggregateHead { dataset: id, resource: name, version: v.version, fields: fields_out(page.fields) };
    with_records(&head, &page.records)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlBody {
    /// One read-only statement. Name tables `"dataset-slug"."table"` (latest version),
    /// `"dataset-slug"."table@2"` (version 2), or `"dataset-slug"` for a dataset with one table.
    /// `kho_fold(text)` folds Vietnamese for matching without diacritics.
    pub sql: String,
}

/// The answer to an SQL statement, but for `records`.
#[derive(Serialize, ToSchema)]
pub struct SqlHead {
    pub fields: Vec<FieldOut>,
    /// True when the answer was cut at the row limit.
    pub truncated: bool,
    pub elapsed_ms: u64,
}

/// The answer to an SQL statement. (The handler writes `records` straight from Arrow after the other fields.)
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // describes the answer for the API description; never built
pub struct SqlAnswer {
    #[serde(flatten)]
    head: SqlHead,
    /// One object per row, every field present (null when empty).
    #[schema(value_type = Vec<Object>)]
    records: (),
}

/// Run one read-only SQL statement over the tables you may read.
///
/// Statements that write, name a table you may not read, or run past the time limit are
/// refused (`sql_not_read_only`, `not_found`, `query_limit`); nothing runs until every table is
/// checked. Reads of non-open datasets are recorded in the audit log.
#[utoipa::path(post, path = "/api/v1/sql", tag = "query", request_body = SqlBody,
    responses((status = 200, body = SqlAnswer)))]
async fn sql(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiJson(body): ApiJson<SqlBody>,
) -> ApiResult<Response> {
    let r = s.kho.sql(&c.ctx, &body.sql).await?;
    let head = SqlHead { fields: fields_out(r.fields), truncated: r.truncated, elapsed_ms: r.elapsed_ms };
    with_records(&head, &r.records)
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(rows)).routes(routes!(aggregate)).routes(routes!(sql))
}
