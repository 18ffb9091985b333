//! A per-address limit on anonymous API use: the open data API stays open to everyone, and no
//! single address can use it all. Callers with a valid API token (or a signed-in session) are
//! not limited. Over the limit, the answer is 429 with `Retry-After`.
//!
//! A token bucket per address: it holds up to a minute's allowance and refills continuously, so
//! a burst is fine and a steady flood is cut to the configured rate.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kho_core::{Error, ErrorCode};

use crate::error::ApiError;
use crate::state::AppState;

/// Buckets kept before idle ones are swept (a bucket refilled to full carries no information).
const SWEEP_AT: usize = 50_000;

#[derive(Debug)]
pub struct RateLimiter {
    /// Requests allowed per window, which is also the largest burst.
    pub capacity: u32,
    window_secs: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl RateLimiter {
    /// `per_minute` requests per address and minute; 0 turns the limit off.
    pub fn new(per_minute: u32) -> Self {
        RateLimiter::per_window(per_minute, 60)
    }

    /// `capacity` requests per address and `window_secs` seconds; 0 turns the limit off.
    pub fn per_window(capacity: u32, window_secs: u32) -> Self {
        RateLimiter { capacity, window_secs: f64::from(window_secs.max(1)), buckets: Mutex::default() }
    }

    pub fn enabled(&self) -> bool {
        self.capacity > 0
    }

    /// Take one request from the address's allowance, or say how many seconds until one is free.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        if !self.enabled() {
            return Ok(());
        }
        let capacity = f64::from(self.capacity);
        let per_second = capacity / self.window_secs;
        let Ok(mut buckets) = self.buckets.lock() else { return Ok(()) };
        if buckets.len() >= SWEEP_AT {
            buckets.retain(|_, (tokens, at)| *tokens + now.duration_since(*at).as_secs_f64() * per_second < capacity);
        }
        let (tokens, at) = buckets.entry(ip).or_insert((capacity, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * per_second).min(capacity);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / per_second).ceil().max(1.0) as u64)
        }
    }
}

/// The paths the limit covers: the JSON, CKAN and DCAT APIs (pages and static files are not).
/// Signing in is not: it has its own throttle, and it is how a caller gets past this limit.
fn limited(path: &str) -> bool {
    (path.starts_with("/api/") && !path.starts_with("/api/v1/auth/"))
        || path.starts_with("/catalog")
        || path.starts_with("/dataset/")
}

/// Whether the request carries credentials that are valid right now.
async fn authenticated(state: &AppState, headers: &axum::http::HeaderMap) -> bool {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .or_else(|| headers.get("x-ckan-api-key"))
        .and_then(|v| v.to_str().ok())
        .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).trim().to_string());
    if let Some(token) = token {
        return state.kho.token_principal(&token).await.is_ok();
    }
    let jar = axum_extra::extract::CookieJar::from_headers(headers);
    match jar.get(crate::extract::SESSION_COOKIE) {
        Some(c) => matches!(state.kho.session_principal(c.value()).await, Ok(Some(_))),
        None => false,
    }
}

pub async fn limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if !state.limiter.enabled() || !limited(req.uri().path()) {
        return next.run(req).await;
    }
    let ip = crate::extract::client_addr(
        req.headers(),
        req.extensions().get::<ConnectInfo<std::net::SocketAddr>>(),
        &state.config,
    );
    // Only a request with no connection (built in-process, never from the network) has none.
    let Some(ip) = ip else { return next.run(req).await };
    if let Err(wait) = state.limiter.check(ip, Instant::now()) {
        let headers = req.headers().clone();
        if !authenticated(&state, &headers).await {
            let mut e = Error::new(
                ErrorCode::RateLimited,
                format!(
                    "more than {} API requests a minute from this address without an API key; wait {wait} s, or send a key (Authorization: Bearer …)",
                    state.limiter.capacity
                ),
            );
            e.retry_after = Some(wait);
            return ApiError(e).into_response();
        }
    }
    next.run(req).await
}

/// Ratings, problem reports and data requests: signed-in members are not limited; anyone else
/// may send `feedback_per_hour` an hour from one address, so that a script cannot flood the
/// agencies' inboxes.
pub fn check_feedback(state: &AppState, ctx: &kho_service::Ctx) -> Result<(), Error> {
    if ctx.principal.member().is_some() {
        return Ok(());
    }
    let Some(ip) = ctx.ip.as_deref().and_then(|s| s.parse::<IpAddr>().ok()) else { return Ok(()) };
    state.feedback_limiter.check(ip, Instant::now()).map_err(|wait| {
        Error::new(
            ErrorCode::RateLimited,
            format!(
                "more than {} ratings, reports or requests an hour from this address; wait {wait} s",
                state.feedback_limiter.capacity
            ),
        )
        .with_retry_after(wait)
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_passes_a_flood_waits_and_the_allowance_refills() {
        let limiter = RateLimiter::new(60);
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        let other: IpAddr = "203.0.113.8".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..60 {
            assert!(limiter.check(ip, t0).is_ok());
        }
        assert_eq!(limiter.check(ip, t0), Err(1));
        assert!(limiter.check(other, t0).is_ok(), "addresses are limited separately");
        assert!(limiter.check(ip, t0 + Duration::from_millis(1100)).is_ok(), "one a second comes back");
        assert!(limiter.check(ip, t0 + Duration::from_millis(1200)).is_err());
        assert!(RateLimiter::new(0).check(ip, t0).is_ok(), "0 turns it off");
        let hourly = RateLimiter::per_window(2, 3600);
        assert!(hourly.check(ip, t0).is_ok() && hourly.check(ip, t0).is_ok());
        assert_eq!(hourly.check(ip, t0), Err(1800), "one comes back every half hour");
    }
}
