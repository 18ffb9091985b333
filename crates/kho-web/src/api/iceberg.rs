//! The Apache Iceberg REST catalog, read-only, at `/iceberg` (the catalog's `uri`): Spark,
//! Trino, DuckDB and PyIceberg find the warehouse's tables by name. Datasets are namespaces,
//! their tables are tables, versions are snapshots (see `kho_service::iceberg`). Callers
//! authenticate with a kho API token (`Authorization: Bearer …`, PyIceberg's `token`); without
//! one they see open data only. Errors have the catalog's shape:
//! `{"error": {"message", "type", "code"}}`.

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use kho_core::{Error, ErrorCode};
use serde_json::json;

use crate::error::status_of;
use crate::extract::Caller;
use crate::state::AppState;

/// An error as an Iceberg REST client expects it.
pub struct IcebergError(Error);

impl From<Error> for IcebergError {
    fn from(e: Error) -> Self {
        IcebergError(e)
    }
}

impl IntoResponse for IcebergError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = status_of(e.code);
        let kind = match e.code {
            ErrorCode::NotFound if e.message.starts_with("no namespace") => "NoSuchNamespaceException",
            ErrorCode::NotFound => "NoSuchTableException",
            ErrorCode::AuthenticationRequired
            | ErrorCode::InvalidToken
            | ErrorCode::TokenExpired
            | ErrorCode::TokenRevoked => "NotAuthorizedException",
            ErrorCode::Forbidden | ErrorCode::PasswordChangeRequired => "ForbiddenException",
            ErrorCode::Unavailable => "ServiceUnavailableException",
            _ if status.is_server_error() => "ServerErrorException",
            _ => "BadRequestException",
        };
        let message = if status.is_server_error() && e.code != ErrorCode::Unavailable {
            tracing::error!(code = %e.code, message = %e.message, "internal error");
            "internal error; it has been logged".to_string()
        } else {
            e.message
        };
        (status, Json(json!({"error": {"message": message, "type": kind, "code": status.as_u16()}}))).into_response()
    }
}

type Answer = Result<Response, IcebergError>;

/// The caller, as for the rest of the API. PyIceberg configured without a token still sends
/// `Authorization: Bearer None`; that is a caller without a token, not a malformed one.
pub struct IcebergCaller(Caller);

impl axum::extract::FromRequestParts<AppState> for IcebergCaller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &AppState) -> Result<Self, Response> {
        if parts.headers.get(axum::http::header::AUTHORIZATION).is_some_and(|v| v.as_bytes() == b"Bearer None") {
            parts.headers.remove(axum::http::header::AUTHORIZATION);
        }
        Caller::from_request_parts(parts, state).await.map(IcebergCaller).map_err(|e| IcebergError(e.0).into_response())
    }
}

/// What the catalog tells a client before anything else: nothing to override.
async fn config() -> Json<serde_json::Value> {
    Json(json!({"defaults": {}, "overrides": {}}))
}

async fn namespaces(State(s): State<AppState>, IcebergCaller(caller): IcebergCaller) -> Answer {
    let found = s.kho.iceberg_namespaces(&caller.ctx).await?;
    let names: Vec<Vec<String>> = found.into_iter().map(|(slug, _)| vec![slug]).collect();
    Ok(Json(json!({"namespaces": names})).into_response())
}

async fn namespace(
    State(s): State<AppState>,
    IcebergCaller(caller): IcebergCaller,
    method: Method,
    Path(ns): Path<String>,
) -> Answer {
    let d = s.kho.iceberg_namespace(&caller.ctx, &ns).await?;
    if method == Method::HEAD {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let mut properties = json!({"title": d.input.title});
    if !d.input.description.is_empty() {
        properties["comment"] = json!(d.input.description);
    }
    Ok(Json(json!({"namespace": [d.input.slug], "properties": properties})).into_response())
}

async fn tables(State(s): State<AppState>, IcebergCaller(caller): IcebergCaller, Path(ns): Path<String>) -> Answer {
    let names = s.kho.iceberg_tables(&caller.ctx, &ns).await?;
    let identifiers: Vec<serde_json::Value> =
        names.into_iter().map(|n| json!({"namespace": [ns], "name": n})).collect();
    Ok(Json(json!({"identifiers": identifiers})).into_response())
}

async fn table(
    State(s): State<AppState>,
    IcebergCaller(caller): IcebergCaller,
    method: Method,
    Path((ns, table)): Path<(String, String)>,
) -> Answer {
    let t = s.kho.iceberg_table(&caller.ctx, &ns, &table).await?;
    if method == Method::HEAD {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Ok(Json(json!({"metadata-location": t.metadata_location, "metadata": t.metadata, "config": {}})).into_response())
}

/// The catalog is read-only: tables change by publishing versions in kho.
async fn read_only() -> IcebergError {
    IcebergError(Error::forbidden(
        "this catalog is read-only: tables change when their stewards publish new versions in kho",
    ))
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/iceberg/v1/config", get(config))
        .route("/iceberg/v1/namespaces", get(namespaces).post(read_only))
        .route("/iceberg/v1/namespaces/{ns}", get(namespace).head(namespace).delete(read_only).post(read_only))
        .route("/iceberg/v1/namespaces/{ns}/tables", get(tables).post(read_only))
        .route("/iceberg/v1/namespaces/{ns}/tables/{table}", get(table).head(table).post(read_only).delete(read_only))
        .route("/iceberg/v1/tables/rename", axum::routing::post(read_only))
        .route("/iceberg/v1/transactions/commit", axum::routing::post(read_only))
}
