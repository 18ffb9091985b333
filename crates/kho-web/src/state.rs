use std::sync::Arc;

use kho_service::Kho;

use crate::metrics::Metrics;

/// Settings of the HTTP front end.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Mark cookies `Secure` (set when kho is served over HTTPS, directly or behind a proxy).
    pub cookie_secure: bool,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Read the client address from `X-Forwarded-For` when the connection comes from one of
    /// `trusted_proxies` (your own reverse proxies).
    pub trust_proxy: bool,
    /// The reverse proxies whose `X-Forwarded-For` entries are believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The address the public reaches kho at (`https://dulieu.sonla.gov.vn`), for absolute
    /// links in API answers, the catalog and pages; without it they follow the request's
    /// `Host` header.
    pub public_url: Option<String>,
    /// Largest uploaded data file, in bytes.
    pub max_upload_bytes: u64,
    /// Where uploads are streamed while they are checked (inside the data folder, so a rename
    /// into place never crosses file systems).
    pub upload_dir: std::path::PathBuf,
    /// API requests a minute one address may make without an API key (0: no limit).
    pub anonymous_api_per_minute: u32,
    /// Ratings, problem reports and data requests an hour one address may send without signing
    /// in (0: no limit).
    pub feedback_per_hour: u32,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            cookie_secure: false,
            max_body_bytes: 2 * 1024 * 1024,
            trust_proxy: false,
            trusted_proxies: vec![
                ipnet::IpNet::from(std::net::IpAddr::from([127, 0, 0, 1])),
                ipnet::IpNet::from(std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST)),
            ],
            public_url: None,
            max_upload_bytes: 1024 * 1024 * 1024,
            upload_dir: std::env::temp_dir(),
            anonymous_api_per_minute: 300,
            feedback_per_hour: 10,
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub kho: Kho,
    pub config: Arc<WebConfig>,
    pub metrics: Arc<Metrics>,
    pub limiter: Arc<crate::ratelimit::RateLimiter>,
    /// Visitors' ratings, reports and requests, per address.
    pub feedback_limiter: Arc<crate::ratelimit::RateLimiter>,
    pub started: std::time::Instant,
    /// CKAN package dicts kept as JSON text for search results.
    pub ckan_packages: Arc<crate::api::ckan::PackageCache>,
}
