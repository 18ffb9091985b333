//! Visitors' ratings, problem reports and data requests, and the agencies' answers.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use kho_core::model::{Feedback, FeedbackKind, FeedbackStatus, RatingSummary};
use kho_service::feedback::{AnswerInput, FeedbackQuery, ProblemInput, RatingInput, RequestInput};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiResult;
use crate::extract::{ApiCaller, ApiJson, ApiQuery};
use crate::ratelimit::check_feedback;
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct DatasetFeedback {
    pub ratings: RatingSummary,
    /// Problem reports, newest first (at most 50), with the agency's answers.
    pub reports: Vec<Feedback>,
}

#[derive(Serialize, ToSchema)]
pub struct FeedbackPage {
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
    pub items: Vec<Feedback>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RequestsQuery {
    pub status: Option<FeedbackStatus>,
    /// Only requests addressed to this agency (code).
    pub agency: Option<String>,
    /// 1–200, default 50.
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InboxQuery {
    pub kind: Option<FeedbackKind>,
    pub status: Option<FeedbackStatus>,
    /// Administrators: only this agency's (code).
    pub agency: Option<String>,
    /// 1–200, default 50.
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

fn page_of(limit: Option<i64>, offset: Option<i64>) -> (i64, i64) {
    (limit.unwrap_or(50).clamp(1, 200), offset.unwrap_or(0).max(0))
}

/// A dataset's ratings and problem reports, as the caller may see them.
#[utoipa::path(get, path = "/api/v1/datasets/{id}/feedback", tag = "feedback",
    params(("id" = String, Path, description = "Dataset id or slug")),
    responses((status = 200, body = DatasetFeedback)))]
async fn dataset_feedback(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<DatasetFeedback>> {
    let d = s.kho.get_dataset(&c.ctx, &id).await?;
    let (reports, ratings) = s.kho.feedback_on(&c.ctx, &d).await?;
    Ok(Json(DatasetFeedback { ratings, reports }))
}

/// Rate a dataset from 1 to 5 stars. Only the stars and the day are kept.
#[utoipa::path(post, path = "/api/v1/datasets/{id}/ratings", tag = "feedback", request_body = RatingInput,
    params(("id" = String, Path, description = "Dataset id or slug")),
    responses((status = 201, body = RatingSummary)))]
async fn rate(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RatingInput>,
) -> ApiResult<(StatusCode, Json<RatingSummary>)> {
    check_feedback(&s, &c.ctx)?;
    Ok((StatusCode::CREATED, Json(s.kho.rate_dataset(&c.ctx, &id, body.stars).await?)))
}

/// Report a problem with a dataset; the owning agency answers it.
#[utoipa::path(post, path = "/api/v1/datasets/{id}/reports", tag = "feedback", request_body = ProblemInput,
    params(("id" = String, Path, description = "Dataset id or slug")),
    responses((status = 201, body = Feedback)))]
async fn report(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ProblemInput>,
) -> ApiResult<(StatusCode, Json<Feedback>)> {
    check_feedback(&s, &c.ctx)?;
    Ok((StatusCode::CREATED, Json(s.kho.report_problem(&c.ctx, &id, body).await?)))
}

/// Data requests, newest first (requests taken down as spam are not listed).
#[utoipa::path(get, path = "/api/v1/requests", tag = "feedback", params(RequestsQuery),
    responses((status = 200, body = FeedbackPage)))]
async fn requests(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiQuery(q): ApiQuery<RequestsQuery>,
) -> ApiResult<Json<FeedbackPage>> {
    let (limit, offset) = page_of(q.limit, q.offset);
    let query = FeedbackQuery { kind: None, status: q.status, agency: q.agency, limit, offset };
    let (items, total) = s.kho.list_requests(&c.ctx, &query).await?;
    Ok(Json(FeedbackPage { total, limit, offset, items }))
}

/// Ask for data that is not published yet.
#[utoipa::path(post, path = "/api/v1/requests", tag = "feedback", request_body = RequestInput,
    responses((status = 201, body = Feedback)))]
async fn create_request(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiJson(body): ApiJson<RequestInput>,
) -> ApiResult<(StatusCode, Json<Feedback>)> {
    check_feedback(&s, &c.ctx)?;
    Ok((StatusCode::CREATED, Json(s.kho.request_data(&c.ctx, body).await?)))
}

/// The caller's agency's reports and requests (administrators: all, or one agency's).
#[utoipa::path(get, path = "/api/v1/feedback", tag = "feedback", params(InboxQuery),
    responses((status = 200, body = FeedbackPage)), security(("bearer" = []), ("session" = [])))]
async fn inbox(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    ApiQuery(q): ApiQuery<InboxQuery>,
) -> ApiResult<Json<FeedbackPage>> {
    let (limit, offset) = page_of(q.limit, q.offset);
    let query = FeedbackQuery { kind: q.kind, status: q.status, agency: q.agency, limit, offset };
    let (items, total) = s.kho.inbox(&c.ctx, &query).await?;
    Ok(Json(FeedbackPage { total, limit, offset, items }))
}

/// One report or request.
#[utoipa::path(get, path = "/api/v1/feedback/{id}", tag = "feedback",
    params(("id" = i64, Path, description = "Feedback id")), responses((status = 200, body = Feedback)))]
async fn get(State(s): State<AppState>, ApiCaller(c): ApiCaller, Path(id): Path<i64>) -> ApiResult<Json<Feedback>> {
    Ok(Json(s.kho.get_feedback(&c.ctx, id).await?))
}

/// Answer, route or take down a report or request (stewards of the agency it is addressed to;
/// administrators).
#[utoipa::path(post, path = "/api/v1/feedback/{id}/answer", tag = "feedback", request_body = AnswerInput,
    params(("id" = i64, Path, description = "Feedback id")), responses((status = 200, body = Feedback)),
    security(("bearer" = []), ("session" = [])))]
async fn answer(
    State(s): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<AnswerInput>,
) -> ApiResult<Json<Feedback>> {
    Ok(Json(s.kho.answer_feedback(&c.ctx, id, body).await?))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(dataset_feedback))
        .routes(routes!(rate))
        .routes(routes!(report))
        .routes(routes!(requests, create_request))
        .routes(routes!(inbox))
        .routes(routes!(get))
        .routes(routes!(answer))
}
