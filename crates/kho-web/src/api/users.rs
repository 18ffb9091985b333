use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use kho_core::model::{ApiToken, User};
use kho_service::users::{CreatedToken, NewToken, NewUser, UserChanges};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiResult;
use crate::extract::{ApiCaller, ApiJson, ApiQuery};
use crate::state::AppState;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Only users of this agency (administrators; others always see their own agency).
    pub agency_id: Option<i64>,
}

/// List users.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(UserQuery), responses((status = 200, body = Vec<User>)))]
async fn list(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiQuery(q): ApiQuery<UserQuery>,
) -> ApiResult<Json<Vec<User>>> {
    Ok(Json(s.kho.list_users(&c.ctx, q.agency_id).await?))
}

/// Create a user (administrators).
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = NewUser, responses((status = 201, body = User)))]
async fn create(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiJson(body): ApiJson<NewUser>,
) -> ApiResult<(StatusCode, Json<User>)> {
    Ok((StatusCode::CREATED, Json(s.kho.create_user(&c.ctx, body).await?)))
}

/// One user.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(("id" = i64, Path)), responses((status = 200, body = User)))]
async fn get(State(s): State<AppState>, ApiCaller(c): ApiCaller, Path(id): Path<i64>) -> ApiResult<Json<User>> {
    Ok(Json(s.kho.get_user(&c.ctx, id).await?))
}

/// Change a user: role, agency, active, password (administrators). Ends the user's sessions
/// when their rights or password change.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", params(("id" = i64, Path)), request_body = UserChanges,
    responses((status = 200, body = User)))]
async fn update(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<UserChanges>,
) -> ApiResult<Json<User>> {
    Ok(Json(s.kho.update_user(&c.ctx, id, body).await?))
}

/// A one-time password made up by kho, returned this once.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct PasswordReset {
    pub user: User,
    /// The user signs in with it once and must then choose their own.
    pub password: String,
}

/// Reset a user's password to a one-time password (administrators). The user's sessions end
/// and their tokens stop working until they choose their own password.
#[utoipa::path(post, path = "/api/v1/users/{id}/password-reset", tag = "users", params(("id" = i64, Path)),
    responses((status = 200, body = PasswordReset)))]
async fn reset_password(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path(id): Path<i64>,
) -> ApiResult<Json<PasswordReset>> {
    let (user, password) = s.kho.reset_password(&c.ctx, id).await?;
    Ok(Json(PasswordReset { user, password }))
}

/// My tokens (administrators: everyone's).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "users", responses((status = 200, body = Vec<ApiToken>)))]
async fn tokens(State(s): State<AppState>, ApiCaller(c): ApiCaller) -> ApiResult<Json<Vec<ApiToken>>> {
    Ok(Json(s.kho.list_tokens(&c.ctx).await?))
}

/// Create an API token. The secret is in this response only; kho keeps just its hash.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "users", request_body = NewToken, responses((status = 201, body = CreatedToken)))]
async fn create_token(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiJson(body): ApiJson<NewToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    Ok((StatusCode::CREATED, Json(s.kho.create_token(&c.ctx, body).await?)))
}

/// Revoke a token; it stops working at once.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "users", params(("id" = i64, Path)), responses((status = 200, body = ApiToken)))]
async fn revoke(State(s): State<AppState>, ApiCaller(c): ApiCaller, Path(id): Path<i64>) -> ApiResult<Json<ApiToken>> {
    Ok(Json(s.kho.revoke_token(&c.ctx, id).await?))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, update))
        .routes(routes!(reset_password))
        .routes(routes!(tokens, create_token))
        .routes(routes!(revoke))
}
