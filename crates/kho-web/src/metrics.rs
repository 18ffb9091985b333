//! Prometheus metrics: request counts and latencies by route and status, plus a few gauges
//! read from the store at scrape time.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::state::AppState;

type Labels = Vec<(String, String)>;

pub struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    latency: Family<Labels, Histogram, fn() -> Histogram>,
    datasets: Gauge,
    users: Gauge,
    audit_entries: Gauge,
    uptime: Gauge,
    query_cache: Gauge,
    query_cache_versions: Gauge,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms … ~8 s
    Histogram::new(exponential_buckets(0.0005, 2.0, 15))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("kho");
        let requests = Family::<Labels, Counter>::default();
        let latency = Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        let (datasets, users, audit_entries, uptime) =
            (Gauge::default(), Gauge::default(), Gauge::default(), Gauge::default());
        registry.register("http_requests", "HTTP requests by method, route and status", requests.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency by method and route", latency.clone());
        registry.register("datasets", "Datasets in the catalog (not deleted)", datasets.clone());
        registry.register("users", "User accounts", users.clone());
        registry.register("audit_entries", "Entries in the audit log", audit_entries.clone());
        registry.register("uptime_seconds", "Seconds since the server started", uptime.clone());
        let (query_cache, query_cache_versions) = (Gauge::default(), Gauge::default());
        registry.register(
            "query_cache_bytes",
            "Memory held by published versions loaded for queries",
            query_cache.clone(),
        );
        registry.register(
            "query_cache_versions",
            "Published versions held in memory for queries",
            query_cache_versions.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            datasets,
            users,
            audit_entries,
            uptime,
            query_cache,
            query_cache_versions,
        }
    }
}

/// Middleware: count and time every request under its route template (not the raw path, so
/// that ids do not explode the label space).
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().to_string();
    let start = Instant::now();
    let resp = next.run(req).await;
    let m = &state.metrics;
    m.requests
        .get_or_create(&vec![
            ("method".into(), method.clone()),
            ("route".into(), route.clone()),
            ("status".into(), resp.status().as_u16().to_string()),
        ])
        .inc();
    m.latency
        .get_or_create(&vec![("method".into(), method), ("route".into(), route)])
        .observe(start.elapsed().as_secs_f64());
    resp
}

pub async fn render(State(state): State<AppState>) -> Response {
    let m = &state.metrics;
    let counts = state.kho.platform_counts().await;
    for (gauge, n) in
        [(&m.users, counts.users), (&m.datasets, counts.datasets), (&m.audit_entries, counts.audit_entries)]
    {
        // A count the store could not give is left as last read rather than shown as zero.
        if let Some(n) = n {
            gauge.set(n);
        }
    }
    m.uptime.set(state.started.elapsed().as_secs() as i64);
    m.query_cache.set(i64::try_from(counts.query_cache_bytes).unwrap_or(i64::MAX));
    m.query_cache_versions.set(i64::try_from(counts.query_cache_versions).unwrap_or(i64::MAX));
    let mut out = String::new();
    if encode(&mut out, &m.registry).is_err() {
        return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "metrics encoding failed").into_response();
    }
    ([(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], out)
        .into_response()
}
