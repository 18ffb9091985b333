use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use kho_core::model::User;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiResult;
use crate::extract::{ApiCaller, ApiJson};
use crate::pages::session_cookie;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    pub username: String,
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct SignedIn {
    pub user: User,
    /// Send this as `X-CSRF-Token` with requests that change data while using the session cookie.
    pub csrf_token: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: time::OffsetDateTime,
}

#[derive(Serialize, ToSchema)]
pub struct Me {
    pub user: Option<User>,
    pub role: Option<kho_core::model::Role>,
    pub agency_id: Option<i64>,
    /// Set when the request came with a token.
    pub token_id: Option<i64>,
}

/// Sign in with a username and password; sets the session cookie.
#[utoipa::path(post, path = "/api/v1/auth/sign-in", tag = "auth", request_body = SignIn,
    responses((status = 200, description = "Signed in", body = SignedIn)))]
async fn sign_in(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    jar: CookieJar,
    ApiJson(body): ApiJson<SignIn>,
) -> ApiResult<Response> {
    let session = s.kho.sign_in(&c.ctx, &body.username, &body.password).await?;
    let jar = jar.add(session_cookie(&s, session.secret.clone()));
    let out = SignedIn { user: session.user, csrf_token: session.csrf_token, expires_at: session.expires_at };
    Ok((jar, Json(out)).into_response())
}

/// End the current browser session.
#[utoipa::path(post, path = "/api/v1/auth/sign-out", tag = "auth", responses((status = 204, description = "Signed out")))]
async fn sign_out(State(s): State<AppState>, ApiCaller(c): ApiCaller, jar: CookieJar) -> ApiResult<Response> {
    if let Some(secret) = &c.session_secret {
        s.kho.sign_out(&c.ctx, secret).await?;
    }
    let jar = jar.remove(axum_extra::extract::cookie::Cookie::build(crate::extract::SESSION_COOKIE).path("/"));
    Ok((jar, axum::http::StatusCode::NO_CONTENT).into_response())
}

/// Who am I? Anonymous callers get nulls.
#[utoipa::path(get, path = "/api/v1/me", tag = "auth", responses((status = 200, description = "The caller", body = Me)))]
async fn me(State(s): State<AppState>, ApiCaller(c): ApiCaller) -> ApiResult<Json<Me>> {
    let Some(m) = c.principal().account() else {
        return Ok(Json(Me { user: None, role: None, agency_id: None, token_id: None }));
    };
    let user = s.kho.own_user(&c.ctx).await?;
    Ok(Json(Me { user: Some(user), role: Some(m.role), agency_id: Some(m.agency_id), token_id: m.token_id }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    pub current_password: String,
    pub new_password: String,
    /// Also revoke every API token of the account (advised if the old password may have
    /// leaked). Default: false.
    #[serde(default)]
    pub revoke_tokens: bool,
}

#[derive(Serialize, ToSchema)]
pub struct PasswordChanged {
    /// The session was renewed (every other session of the account has ended): send this
    /// as `X-CSRF-Token` from now on.
    pub csrf_token: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: time::OffsetDateTime,
    /// API tokens revoked with the change.
    pub tokens_revoked: usize,
}

/// Change my own password, from a signed-in session (an API token may not). Every other
/// session of the account ends; this one is renewed (a new cookie and CSRF token). Wrong
/// current passwords count as failed sign-ins.
#[utoipa::path(post, path = "/api/v1/me/password", tag = "auth", request_body = ChangePassword,
    responses((status = 200, description = "Changed", body = PasswordChanged)))]
async fn change_password(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    jar: CookieJar,
    ApiJson(body): ApiJson<ChangePassword>,
) -> ApiResult<Response> {
    let (session, revoked) = s
        .kho
        .change_password(
            &c.ctx,
            c.session_secret.as_deref(),
            &body.current_password,
            &body.new_password,
            body.revoke_tokens,
        )
        .await?;
    let jar = jar.add(session_cookie(&s, session.secret.clone()));
    let out =
        PasswordChanged { csrf_token: session.csrf_token, expires_at: session.expires_at, tokens_revoked: revoked };
    Ok((jar, Json(out)).into_response())
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sign_in))
        .routes(routes!(sign_out))
        .routes(routes!(me))
        .routes(routes!(change_password))
}
