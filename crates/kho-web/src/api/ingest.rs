use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use kho_core::{Error, ErrorCode};
use kho_ingest::Report;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiCaller, ApiQuery};
use crate::state::AppState;

/// Stream a request body to a temporary file in the upload folder, refusing it past `limit`
/// bytes, so that memory stays flat whatever the upload's size.
pub async fn spool(body: Body, state: &AppState) -> Result<tempfile::TempPath, ApiError> {
    use futures_util::StreamExt;
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
    /// `json` (default) for the whole report, `csv` for the list of problems as a CSV file.
    pub format: Option<String>,
}

/// Check a CSV file (UTF-8 with or without BOM, or UTF-16; delimiter detected) against a
/// table's schema and the data dictionary, without storing it. The report lists every problem
/// by row, column, value and rule, in Vietnamese and English.
#[utoipa::path(post, path = "/api/v1/datasets/{id}/resources/{name}/validate", tag = "ingest",
    params(("id" = String, Path, description = "Dataset id or slug"), ("name" = String, Path, description = "Table name"), ValidateQuery),
    request_body(content = String, content_type = "text/csv", description = "The file, as the raw body"),
    responses((status = 200, description = "The validation report", body = Report)))]
async fn validate(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path((id, name)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<ValidateQuery>,
    body: Body,
) -> ApiResult<Response> {
    let format = q.format.unwrap_or_else(|| "json".into());
    if format != "json" && format != "csv" {
        return Err(ApiError(Error::new(ErrorCode::BadRequest, "format must be 'json' or 'csv'")));
    }
    // Check the caller's rights before accepting a large body.
    c.principal().require_member()?;
    let file = spool(body, &s).await?;
    let report = s.kho.validate_upload(&c.ctx, &id, &name, &file).await?;
    Ok(if format == "csv" {
        (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (header::CONTENT_DISPOSITION, "attachment; filename=\"bao-cao-kiem-tra.csv\""),
            ],
            report.to_csv(),
        )
            .into_response()
    } else {
        axum::Json(report).into_response()
    })
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(validate))
}
