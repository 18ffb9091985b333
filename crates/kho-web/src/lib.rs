//! kho's HTTP front end. A thin layer: it turns requests into calls on `kho_service::Kho` and
//! results into JSON or HTML. It holds no business rules of its own.

pub mod api;
pub mod error;
pub mod extract;
pub mod i18n;
pub mod metrics;
pub mod pages;
pub mod ratelimit;
pub mod state;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use kho_core::{Error, ErrorCode};
use kho_service::Kho;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

pub use state::{AppState, WebConfig};

use crate::error::ApiError;

#[derive(serde::Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
    uptime_seconds: u64,
    /// Why the node cannot serve, when it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
}

/// What a signed-in caller or a token receives may hold non-open or personal data: no shared
/// cache (a proxy, the browser's disk) keeps it, unless the answer says otherwise itself (the
/// static files do).
async fn private_answers(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let signed = request.headers().contains_key(header::AUTHORIZATION)
        || axum_extra::extract::CookieJar::from_headers(request.headers()).get(extract::SESSION_COOKIE).is_some();
    let mut response = next.run(request).await;
    if signed && !response.headers().contains_key(header::CACHE_CONTROL) {
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
        response.headers_mut().append(header::VARY, HeaderValue::from_static("Authorization, Cookie"));
    }
    response
}

async fn health(State(s): State<AppState>) -> Response {
    // A query proves the metadata store answers, not just that the process is alive.
    match s.kho.check_store().await {
        Ok(_) => Json(Health {
            status: "ok",
            version: env!("CARGO_PKG_VERSION"),
            uptime_seconds: s.started.elapsed().as_secs(),
            reason: None,
        })
        .into_response(),
        // A load balancer takes the node out of rotation; its operator reads why.
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: "unavailable",
                version: env!("CARGO_PKG_VERSION"),
                uptime_seconds: s.started.elapsed().as_secs(),
                reason: Some(if e.code == ErrorCode::Unavailable {
                    "the metadata database does not answer"
                } else {
                    "the metadata database answers with an error (see the log)"
                }),
            }),
        )
            .into_response(),
    }
}

async fn fallback(method: Method, uri: Uri) -> Response {
    if uri.path().starts_with("/api/") {
        return ApiError(Error::new(ErrorCode::NotFound, format!("no endpoint {method} {}", uri.path())))
            .into_response();
    }
    (
        StatusCode::NOT_FOUND,
        axum::response::Html(
            "<!doctype html><title>404</title><p>Không tìm thấy trang — page not found. <a href=\"/\">kho</a>",
        ),
    )
        .into_response()
}

/// Build the whole application: API, pages, health, metrics and the API description.
pub fn app(kho: Kho, config: WebConfig) -> axum::Router {
    let state = AppState {
        kho,
        config: Arc::new(config.clone()),
        metrics: Arc::new(metrics::Metrics::default()),
        limiter: Arc::new(ratelimit::RateLimiter::new(config.anonymous_api_per_minute)),
        feedback_limiter: Arc::new(ratelimit::RateLimiter::per_window(config.feedback_per_hour, 3600)),
        started: std::time::Instant::now(),
        ckan_packages: Arc::default(),
    };
    let (api_router, mut openapi) = api::router().split_for_parts();
    // Applied after the routes are collected, so that it reaches every operation.
    utoipa::Modify::modify(&api::ErrorResponses, &mut openapi);
    let openapi = Arc::new(openapi);
    let spec = {
        let openapi = openapi.clone();
        move || {
            let openapi = openapi.clone();
            async move { Json(openapi.as_ref().clone()) }
        }
    };
    axum::Router::new()
        .merge(api_router)
        .merge(pages::routes())
        .merge(api::ckan::routes())
        .merge(api::dcat::routes())
        .merge(api::iceberg::routes())
        .route("/health", get(health))
        .route("/metrics", get(metrics::render))
        .route("/openapi.json", get(spec))
        // The API description for people, rendered by Swagger UI from files inside kho.
        .merge(utoipa_swagger_ui::SwaggerUi::new("/api/docs").config(
            utoipa_swagger_ui::Config::from("/openapi.json").try_it_out_enabled(true).display_request_duration(true),
        ))
        .fallback(fallback)
        .layer(axum::middleware::from_fn_with_state(state.clone(), ratelimit::limit))
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        .layer(axum::middleware::from_fn(private_answers))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(SetResponseHeaderLayer::if_not_present(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::if_not_present(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::if_not_present(header::REFERRER_POLICY, HeaderValue::from_static("same-origin")))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'"),
        ))
        .layer(TraceLayer::new_for_http())
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .with_state(state)
}

/// A panic while answering one request ends that request with a 500, its cause logged; the
/// server and every other request go on.
fn panicked(payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into());
    ApiError(Error::internal(format!("a request panicked: {message}"))).into_response()
}

/// Serve until `shutdown` resolves, then finish the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}
