use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use kho_core::model::{ResourceVersion, Upload};
use kho_core::{Error, ErrorCode};
use kho_service::ingest::Report;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiCaller, ApiJson, ApiQuery};
use crate::state::AppState;

/// Stream a request body to a temporary file in the upload folder, refusing it past `limit`
/// bytes, so that memory stays flat whatever the upload's size.
pub async fn spool(body: Body, state: &AppState) -> Result<tempfile::TempPath, ApiError> {
    let dir = &state.config.upload_dir;
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| Error::internal(format!("upload folder {}: {e}", dir.display())))?;
    let tmp = tempfile::Builder::new()
        .prefix("upload-")
        .tempfile_in(dir)
        .map_err(|e| Error::internal(format!("temporary file: {e}")))?
        .into_temp_path();
    let mut file = tokio::fs::File::create(&tmp).await.map_err(|e| Error::internal(format!("temporary file: {e}")))?;
    let mut stream = body.into_data_stream();
    let mut size: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Error::new(ErrorCode::BadRequest, format!("the upload was interrupted: {e}")))?;
        size += chunk.len() as u64;
        if size > state.config.max_upload_bytes {
            return Err(ApiError(Error::new(
                ErrorCode::PayloadTooLarge,
                format!("the file is larger than this server accepts ({} bytes)", state.config.max_upload_bytes),
            )));
        }
        file.write_all(&chunk).await.map_err(|e| Error::internal(format!("writing the upload: {e}")))?;
    }
    file.flush().await.map_err(|e| Error::internal(format!("writing the upload: {e}")))?;
    Ok(tmp)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ValidateQuery {
    /// `json` (default) for the whole report, `csv` or `xlsx` for the problems as a file.
    pub format: Option<String>,
    /// For spreadsheets: the sheet to read (default: the first).
    pub sheet: Option<String>,
    /// For spreadsheets: the 1-based row holding the column names (default: the first non-empty).
    pub header_row: Option<u32>,
}

fn sheet_options(sheet: Option<String>, header_row: Option<u32>) -> kho_service::SheetOptions {
    kho_service::SheetOptions { sheet: sheet.filter(|s| !s.is_empty()), header_row, ..Default::default() }
}

/// Check a CSV file (UTF-8 with or without BOM, or UTF-16; delimiter detected) against a
/// table's schema and the data dictionary, without storing it. The report lists every problem
/// by row, column, value and rule, in Vietnamese and English.
#[utoipa::path(post, path = "/api/v1/datasets/{id}/resources/{name}/validate", tag = "ingest",
    params(("id" = String, Path, description = "Dataset id or slug"), ("name" = String, Path, description = "Table name"), ValidateQuery),
    request_body(content = String, content_type = "text/csv", description = "The file as the raw body: CSV, XLSX/XLS/ODS, JSON (array or one object per line) or Parquet"),
    responses((status = 200, description = "The validation report", body = Report)))]
async fn validate(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path((id, name)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<ValidateQuery>,
    body: Body,
) -> ApiResult<Response> {
    let format = q.format.unwrap_or_else(|| "json".into());
    if !["json", "csv", "xlsx"].contains(&format.as_str()) {
        return Err(ApiError(Error::new(ErrorCode::BadRequest, "format must be 'json', 'csv' or 'xlsx'")));
    }
    // Check the caller's rights before accepting a large body.
    c.principal().require_member()?;
    let file = spool(body, &s).await?;
    let opts = sheet_options(q.sheet, q.header_row);
    let report = s.kho.validate_upload(&c.ctx, &id, &name, &file, &opts).await?;
    report_download(&report, &format)
}

/// A validation report as JSON, CSV or XLSX (the two files named `bao-cao-kiem-tra`).
pub fn report_download(report: &Report, format: &str) -> ApiResult<Response> {
    Ok(match format {
        "csv" => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (header::CONTENT_DISPOSITION, "attachment; filename=\"bao-cao-kiem-tra.csv\""),
            ],
            report.to_csv(),
        )
            .into_response(),
        "xlsx" => (
            [
                (header::CONTENT_TYPE, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
                (header::CONTENT_DISPOSITION, "attachment; filename=\"bao-cao-kiem-tra.xlsx\""),
            ],
            report.to_xlsx().map_err(|e| ApiError(Error::internal(e)))?,
        )
            .into_response(),
        _ => axum::Json(report).into_response(),
    })
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// `json` (default), `csv` or `xlsx`.
    pub format: Option<String>,
}

/// The validation report of an upload, as JSON, CSV or XLSX.
#[utoipa::path(get, path = "/api/v1/uploads/{id}/report", tag = "ingest", params(("id" = String, Path), ReportQuery),
    responses((status = 200, description = "The report", body = Report)))]
async fn upload_report(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> ApiResult<Response> {
    let format = q.format.unwrap_or_else(|| "json".into());
    if !["json", "csv", "xlsx"].contains(&format.as_str()) {
        return Err(ApiError(Error::new(ErrorCode::BadRequest, "format must be 'json', 'csv' or 'xlsx'")));
    }
    let u = s.kho.get_upload(&c.ctx, &id).await?;
    let report: Report = serde_json::from_value(u.report)
        .map_err(|e| ApiError(Error::internal(format!("stored report of upload {id}: {e}"))))?;
    report_download(&report, &format)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The original file name, kept with the upload for the steward's reference.
    pub file_name: Option<String>,
    /// For spreadsheets: the sheet to read (default: the first).
    pub sheet: Option<String>,
    /// For spreadsheets: the 1-based row holding the column names (default: the first non-empty).
    pub header_row: Option<u32>,
}

/// Upload a data file (CSV, spreadsheet, JSON or Parquet) for a table: it is checked at once (the report is in the response) and
/// staged; nothing is published until `POST /api/v1/uploads/{id}/publish`.
#[utoipa::path(post, path = "/api/v1/datasets/{id}/resources/{name}/uploads", tag = "ingest",
    params(("id" = String, Path), ("name" = String, Path), UploadQuery),
    request_body(content = String, content_type = "text/csv", description = "The file as the raw body: CSV, XLSX/XLS/ODS, JSON (array or one object per line) or Parquet"),
    responses((status = 201, description = "Checked and staged", body = Upload)))]
async fn upload(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path((id, name)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<UploadQuery>,
    body: Body,
) -> ApiResult<(StatusCode, axum::Json<Upload>)> {
    c.principal().require_member()?;
    let file = spool(body, &s).await?;
    let file_name = q.file_name.unwrap_or_else(|| "upload.csv".into());
    let opts = sheet_options(q.sheet, q.header_row);
    let u = s.kho.stage_upload(&c.ctx, &id, &name, &file, &file_name, &opts).await?;
    Ok((StatusCode::CREATED, axum::Json(u)))
}

/// An upload with its validation report.
#[utoipa::path(get, path = "/api/v1/uploads/{id}", tag = "ingest", params(("id" = String, Path)), responses((status = 200, body = Upload)))]
async fn get_upload(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Upload>> {
    Ok(axum::Json(s.kho.get_upload(&c.ctx, &id).await?))
}

/// The upload's invalid rows as CSV, each with a last column `loi` saying what is wrong, to
/// fix and upload again.
#[utoipa::path(get, path = "/api/v1/uploads/{id}/quarantine", tag = "ingest", params(("id" = String, Path)),
    responses((status = 200, description = "CSV", content_type = "text/csv", body = String)))]
async fn upload_quarantine(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    Ok(download_response(s.kho.download_upload_quarantine(&c.ctx, &id).await?))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct PublishBody {
    /// Publish only the valid rows and keep the invalid ones in quarantine. Without it, a file
    /// with invalid rows is refused.
    #[serde(default)]
    pub skip_invalid: bool,
    /// How the file changes the table: `replace` (the default: the file is the whole table),
    /// `append` (its rows are added) or `upsert` (by primary key: new keys added, known keys
    /// updated, the rest kept). See `GET /api/v1/uploads/{id}/changes`.
    #[serde(default)]
    pub mode: kho_service::PublishMode,
    /// Required when the publication removes rows from the table.
    #[serde(default)]
    pub confirm_removal: bool,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// replace (default), append or upsert.
    #[serde(default)]
    pub mode: kho_service::PublishMode,
}

/// What publishing a checked upload in a mode would do: rows added, removed and changed, rows
/// afterwards, and a few keys of each as examples. Nothing changes.
#[utoipa::path(get, path = "/api/v1/uploads/{id}/changes", tag = "ingest", params(("id" = String, Path), ChangesQuery),
    responses((status = 200, body = kho_service::Change)))]
async fn changes(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ChangesQuery>,
) -> ApiResult<axum::Json<kho_service::Change>> {
    Ok(axum::Json(s.kho.upload_changes(&c.ctx, &id, q.mode).await?))
}

/// Publish a checked upload as the table's next immutable version.
#[utoipa::path(post, path = "/api/v1/uploads/{id}/publish", tag = "ingest", params(("id" = String, Path)), request_body = PublishBody,
    responses((status = 201, body = ResourceVersion)))]
async fn publish(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<PublishBody>,
) -> ApiResult<(StatusCode, axum::Json<ResourceVersion>)> {
    let opts =
        kho_service::PublishOptions { skip_invalid: b.skip_invalid, mode: b.mode, confirm_removal: b.confirm_removal };
    Ok((StatusCode::CREATED, axum::Json(s.kho.publish_upload(&c.ctx, &id, opts).await?)))
}

/// Reject a checked upload; its staged files are removed.
#[utoipa::path(post, path = "/api/v1/uploads/{id}/reject", tag = "ingest", params(("id" = String, Path)), responses((status = 200, body = Upload)))]
async fn reject(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Upload>> {
    Ok(axum::Json(s.kho.reject_upload(&c.ctx, &id).await?))
}

/// Every version of a table, newest first: who published it, when, rows, schema hash, and what
/// changed since the version before.
#[utoipa::path(get, path = "/api/v1/datasets/{id}/resources/{name}/versions", tag = "ingest",
    params(("id" = String, Path), ("name" = String, Path)), responses((status = 200, body = Vec<ResourceVersion>)))]
async fn versions(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path((id, name)): Path<(String, String)>,
) -> ApiResult<axum::Json<Vec<ResourceVersion>>> {
    Ok(axum::Json(s.kho.list_versions(&c.ctx, &id, &name).await?))
}

fn parse_version(v: &str) -> Result<Option<i64>, ApiError> {
    if v == "latest" {
        return Ok(None);
    }
    v.parse::<i64>()
        .map(Some)
        .map_err(|_| ApiError(Error::new(ErrorCode::BadRequest, "version must be a number or 'latest'")))
}

/// One version (a number, or `latest`).
#[utoipa::path(get, path = "/api/v1/datasets/{id}/resources/{name}/versions/{version}", tag = "ingest",
    params(("id" = String, Path), ("name" = String, Path), ("version" = String, Path, description = "Number or 'latest'")),
    responses((status = 200, body = ResourceVersion)))]
async fn version(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path((id, name, v)): Path<(String, String, String)>,
) -> ApiResult<axum::Json<ResourceVersion>> {
    Ok(axum::Json(s.kho.version_for_read(&c.ctx, &id, &name, parse_version(&v)?).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the parameters; the handler reads the raw query (filters repeat)
pub struct DataQuery {
    /// `parquet` (default: the stored file itself), `csv`, `json` (an array of objects), `ndjson`
    /// (one object per line) or `xlsx` (titles as headers, bold and frozen; dates as dates).
    pub format: Option<String>,
    /// CSV only: text cells exactly as stored. By default a cell that a spreadsheet would run as
    /// a formula (starting with `=`, `+`, `-`, `@`, tab or carriage return, and not a number)
    /// is written with a leading `'`, so that the file opens safely in Excel or LibreOffice.
    #[serde(default)]
    pub raw: bool,
    /// CSV only: start the file with a UTF-8 byte order mark, which Excel needs to read
    /// Vietnamese text in a CSV file correctly.
    #[serde(default)]
    pub bom: bool,
    /// Only the rows matching `field:op:value` (as in the rows API), repeatable.
    pub filter: Option<Vec<String>>,
    /// Only the rows whose text fields contain all these words (as in the rows API).
    pub q: Option<String>,
    /// Order of the rows (as in the rows API).
    pub sort: Option<String>,
    /// Only these fields, comma-separated.
    pub fields: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RawQuery {
    /// Text cells exactly as stored, not neutralised for spreadsheets (see the data download).
    #[serde(default)]
    pub raw: bool,
}

fn flag(name: &str, v: &str) -> Result<bool, ApiError> {
    match v {
        "true" | "1" | "" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ApiError(Error::new(ErrorCode::BadRequest, format!("{name}: '{v}' is not true or false")))),
    }
}

/// Download a version's data, streamed: the Parquet file as stored, or CSV, JSON or XLSX; all
/// of it, or only the rows matching filters and search (as in the rows API), in a given order.
#[utoipa::path(get, path = "/api/v1/datasets/{id}/resources/{name}/versions/{version}/data", tag = "ingest",
    params(("id" = String, Path), ("name" = String, Path), ("version" = String, Path, description = "Number or 'latest'"), DataQuery),
    responses((status = 200, description = "The data", content_type = "application/vnd.apache.parquet", body = String)))]
async fn data(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path((id, name, v)): Path<(String, String, String)>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> ApiResult<Response> {
    let (mut format, mut raw, mut bom) = ("parquet".to_string(), false, false);
    let mut rows = kho_service::query::RowsQuery::default();
    let mut selected = false;
    for (k, val) in
        query.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect::<Vec<_>>()).unwrap_or_default()
    {
        match k.as_str() {
            "format" => format = val,
            "raw" => raw = flag("raw", &val)?,
            "bom" => bom = flag("bom", &val)?,
            "filter" => {
                rows.filters.push(kho_service::query::Filter::parse(&val)?);
                selected = true;
            }
            "q" if !val.trim().is_empty() => {
                rows.q = Some(val);
                selected = true;
            }
            "q" => {}
            "sort" => {
                rows.sort = kho_service::query::SortKey::parse_list(&val)?;
                selected |= !rows.sort.is_empty();
            }
            "fields" => {
                let list: Vec<String> =
                    val.split(',').map(str::trim).filter(|f| !f.is_empty()).map(str::to_string).collect();
                selected |= !list.is_empty();
                rows.fields = Some(list).filter(|l| !l.is_empty());
            }
            // Read by the caller's context: why personal fields are wanted unmasked.
            "purpose" => {}
            other => {
                return Err(ApiError(Error::new(
                    ErrorCode::BadRequest,
                    format!("unknown parameter '{other}' (format, raw, bom, filter, q, sort, fields, purpose)"),
                )));
            }
        }
    }
    let format = kho_service::download::DataFormat::parse(&format, raw, bom)?;
    let (_, download) =
        s.kho.download_version(&c.ctx, &id, &name, parse_version(&v)?, format, selected.then_some(&rows)).await?;
    Ok(download_response(download))
}

/// A download from the service as an HTTP response, streamed.
pub fn download_response(d: kho_service::download::Download) -> Response {
    let mut response = Body::from_stream(d.body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static(d.content_type));
    if d.attachment {
        // File names are made of slugs, table names and numbers: plain ASCII.
        if let Ok(v) = header::HeaderValue::from_str(&format!("attachment; filename=\"{}\"", d.file_name)) {
            headers.insert(header::CONTENT_DISPOSITION, v);
        }
    }
    if let Some(n) = d.length {
        headers.insert(header::CONTENT_LENGTH, n.into());
    }
    response
}

/// The rows left out of a version (its quarantine), for the dataset's stewards.
#[utoipa::path(get, path = "/api/v1/datasets/{id}/resources/{name}/versions/{version}/quarantine", tag = "ingest",
    params(("id" = String, Path), ("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, description = "CSV", content_type = "text/csv", body = String)))]
async fn version_quarantine(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path((id, name, v)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    Ok(download_response(s.kho.download_quarantine(&c.ctx, &id, &name, parse_version(&v)?).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SheetQuery {
    /// For spreadsheets: the sheet to read (default: the first).
    pub sheet: Option<String>,
    /// For spreadsheets: the 1-based row holding the column names (default: the first non-empty).
    pub header_row: Option<u32>,
}

/// Propose a Table Schema for a CSV file: column types, missing-value markers, and dictionary
/// terms suggested by name and content. Nothing is stored; review it, then use it for a table.
#[utoipa::path(post, path = "/api/v1/schema/infer", tag = "ingest", params(SheetQuery),
    request_body(content = String, content_type = "text/csv", description = "The file as the raw body: CSV, XLSX/XLS/ODS, JSON (array or one object per line) or Parquet"),
    responses((status = 200, description = "A draft schema and the term suggestions", body = kho_service::ingest::Inferred)))]
async fn infer(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiQuery(q): ApiQuery<SheetQuery>,
    body: Body,
) -> ApiResult<axum::Json<kho_service::ingest::Inferred>> {
    c.principal().require_member()?;
    let file = spool(body, &s).await?;
    Ok(axum::Json(s.kho.infer_schema(&c.ctx, &file, &sheet_options(q.sheet, q.header_row)).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FromFileQuery {
    /// The dataset's title; its slug is made from it.
    pub title: String,
    pub access_level: kho_core::model::AccessLevel,
    pub frequency: kho_core::model::Frequency,
    /// Owner agency id; by default the caller's.
    pub owner_agency_id: Option<i64>,
    /// The table's title; by default the sheet's name, or the file's.
    pub table_title: Option<String>,
    /// The file's name, as the upload records it.
    pub file_name: Option<String>,
    /// For spreadsheets: the sheet to read (default: the first).
    pub sheet: Option<String>,
    /// For spreadsheets: the 1-based row holding the column names (default: found by kho).
    pub header_row: Option<u32>,
}

/// A dataset started from a file, and the file checked against its proposed table.
#[derive(serde::Serialize, ToSchema)]
pub struct Started {
    pub dataset: kho_core::model::Dataset,
    /// Publish it with `POST /api/v1/uploads/{id}/publish`.
    pub upload: Upload,
}

/// Start a dataset from a file: one table whose schema is proposed from the file (snake_case
/// names, the headers as titles, dictionary terms, a key), and the file checked against it,
/// ready to publish. Until its first version the dataset is a draft.
#[utoipa::path(post, path = "/api/v1/datasets/from-file", tag = "ingest", params(FromFileQuery),
    request_body(content = String, content_type = "application/octet-stream", description = "The file as the raw body: CSV, XLSX/XLS/ODS, JSON or Parquet"),
    responses((status = 201, body = Started)))]
async fn from_file(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiQuery(q): ApiQuery<FromFileQuery>,
    body: Body,
) -> ApiResult<(StatusCode, axum::Json<Started>)> {
    c.principal().require_member()?;
    let file = spool(body, &s).await?;
    let start = kho_service::start::StartFromFile {
        title: q.title,
        access_level: q.access_level,
        frequency: q.frequency,
        owner_agency_id: q.owner_agency_id,
        table_title: q.table_title,
    };
    let name = q.file_name.unwrap_or_else(|| "data".into());
    let opts = sheet_options(q.sheet, q.header_row);
    let (dataset, upload) = s.kho.start_dataset_from_file(&c.ctx, start, &file, &name, &opts).await?;
    Ok((StatusCode::CREATED, axum::Json(Started { dataset, upload })))
}

/// The dataset as a Frictionless Data Package (zip): `datapackage.json` with each table's Table
/// Schema, and each table's latest version as CSV.
#[utoipa::path(get, path = "/api/v1/datasets/{id}/datapackage", tag = "ingest", params(("id" = String, Path), RawQuery),
    responses((status = 200, description = "A zip file", content_type = "application/zip", body = String)))]
async fn datapackage(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<RawQuery>,
) -> ApiResult<Response> {
    Ok(download_response(s.kho.download_datapackage(&c.ctx, &id, q.raw).await?))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(datapackage))
        .routes(routes!(from_file))
        .routes(routes!(infer))
        .routes(routes!(validate))
        .routes(routes!(upload))
        .routes(routes!(get_upload))
        .routes(routes!(upload_report))
        .routes(routes!(upload_quarantine))
        .routes(routes!(publish))
        .routes(routes!(changes))
        .routes(routes!(reject))
        .routes(routes!(versions))
        .routes(routes!(version))
        .routes(routes!(data))
        .routes(routes!(version_quarantine))
}
