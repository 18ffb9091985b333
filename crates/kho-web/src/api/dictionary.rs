use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use kho_core::model::{DictionaryTerm, NewDictionaryTerm};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiResult;
use crate::extract::{ApiCaller, ApiJson, ApiQuery};
use crate::state::AppState;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TermQuery {
    /// Words to find in name, title or description, with or without diacritics.
    pub q: Option<String>,
}

/// The latest version of every dictionary term.
#[utoipa::path(get, path = "/api/v1/dictionary/terms", tag = "dictionary", params(TermQuery), responses((status = 200, body = Vec<DictionaryTerm>)))]
async fn list(State(s): State<AppState>, ApiQuery(q): ApiQuery<TermQuery>) -> ApiResult<Json<Vec<DictionaryTerm>>> {
    Ok(Json(s.kho.list_terms(q.q.as_deref()).await?))
}

/// Add a term, or the next version of an existing one (administrators). Versions are immutable.
#[utoipa::path(post, path = "/api/v1/dictionary/terms", tag = "dictionary", request_body = NewDictionaryTerm,
    responses((status = 201, body = DictionaryTerm)))]
async fn create(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiJson(body): ApiJson<NewDictionaryTerm>,
) -> ApiResult<(StatusCode, Json<DictionaryTerm>)> {
    Ok((StatusCode::CREATED, Json(s.kho.add_term(&c.ctx, body).await?)))
}

/// Every version of one term, oldest first.
#[utoipa::path(get, path = "/api/v1/dictionary/terms/{name}", tag = "dictionary", params(("name" = String, Path)),
    responses((status = 200, body = Vec<DictionaryTerm>)))]
async fn versions(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<Vec<DictionaryTerm>>> {
    Ok(Json(s.kho.term_versions(&name).await?))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(versions))
}
