use axum::Json;
use axum::extract::State;
use kho_core::audit::AuditRecord;
use kho_meta::AuditFilter;
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
    pub actor: Option<String>,
    pub action: Option<String>,
    pub object_id: Option<String>,
    /// 1–500, default 100.
    pub limit: Option<i64>,
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
        action: q.action,
        object_id: q.object_id,
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
