use axum::Json;
use axum::extract::State;
use kho_core::audit::AuditRecord;
use kho_service::audit::AuditFilter;
use kho_service::audit::VerifyReport;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiResult;
use crate::extract::{ApiCaller, ApiQuery};
use crate::state::AppState;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Page backwards: entries with a sequence number lower than this.
    pub before: Option<i64>,
    /// The actor exactly as logged (`user:7:nguyenvana`, `token:3:user:7:nguyenvana`).
    pub actor: Option<String>,
    /// Everything one user did, in sessions or with any of their tokens.
    pub user_id: Option<i64>,
    /// e.g. `dataset.create`, `version.read`, `auth.sign_in`.
    pub action: Option<String>,
    /// `dataset`, `user`, `agency`, `token`, `term`, `feedback`.
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    /// From this day (yyyy-mm-dd, UTC), inclusive.
    pub since: Option<String>,
    /// Up to this day (yyyy-mm-dd, UTC), inclusive.
    pub until: Option<String>,
    /// 1–500, default 100.
    pub limit: Option<i64>,
}

/// A day written yyyy-mm-dd (as date inputs send it) or dd/mm/yyyy.
pub fn day(name: &str, v: Option<&str>) -> Result<Option<time::Date>, crate::error::ApiError> {
    let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) else { return Ok(None) };
    let iso = time::macros::format_description!("[year]-[month]-[day]");
    let vn = time::macros::format_description!("[day]/[month]/[year]");
    time::Date::parse(v, &iso).or_else(|_| time::Date::parse(v, &vn)).map(Some).map_err(|_| {
        crate::error::ApiError(kho_core::Error::validation(vec![
            kho_core::Detail::new(name, format!("'{v}' is not a date (yyyy-mm-dd)"))
                .with_vi(format!("«{v}» không phải ngày; hãy viết như 15/03/2026")),
        ]))
    })
}

/// Audit entries, newest first (administrators).
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery), responses((status = 200, body = Vec<AuditRecord>)))]
async fn list(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<Vec<AuditRecord>>> {
    let filter = AuditFilter {
        before_seq: q.before,
        actor: q.actor,
        actor_user_id: q.user_id,
        action: q.action,
        object_type: q.object_type,
        object_id: q.object_id,
        since: day("since", q.since.as_deref())?,
        until: day("until", q.until.as_deref())?,
        limit: q.limit.unwrap_or(100),
    };
    Ok(Json(s.kho.list_audit(&c.ctx, filter).await?))
}

/// Walk the hash chain and report the first broken entry, if any (administrators).
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit", responses((status = 200, body = VerifyReport)))]
async fn verify(State(s): State<AppState>, ApiCaller(c): ApiCaller) -> ApiResult<Json<VerifyReport>> {
    c.principal().require_admin()?;
    Ok(Json(s.kho.verify_audit().await?))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(verify))
}
