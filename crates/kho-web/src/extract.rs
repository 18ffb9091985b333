//! Request extractors: who is calling (bearer token or session cookie), in which language,
//! from which address; and a JSON body reader whose failures are kho errors.

use std::net::{IpAddr, SocketAddr};

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum_extra::extract::CookieJar;
use kho_core::policy::Principal;
use kho_core::{Error, ErrorCode};
use kho_service::Ctx;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::{AppState, WebConfig};

pub const SESSION_COOKIE: &str = "kho_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

pub fn client_ip(parts: &Parts, config: &WebConfig) -> Option<String> {
    client_ip_of(&parts.headers, parts.extensions.get::<ConnectInfo<SocketAddr>>(), config)
}

/// The client's address, as text for the audit log (see [`client_addr`]).
pub fn client_ip_of(
    headers: &axum::http::HeaderMap,
    peer: Option<&ConnectInfo<SocketAddr>>,
    config: &WebConfig,
) -> Option<String> {
    client_addr(headers, peer, config).map(|ip| ip.to_string())
}

/// The client's address. A connection straight from a client is its own address. Behind
/// kho's own reverse proxies (`trust_proxy`, and the connection comes from one of
/// `trusted_proxies`), `X-Forwarded-For` is read from the right: each proxy appends the
/// address it received the request from, so the right-most address that is not one of ours is
/// the client. Whatever stands left of it was written by the client itself and proves
/// nothing; a value that is not an address stops the walk at the last proxy seen. The answer
/// is always an address, so no request escapes the per-address limits.
pub fn client_addr(
    headers: &axum::http::HeaderMap,
    peer: Option<&ConnectInfo<SocketAddr>>,
    config: &WebConfig,
) -> Option<IpAddr> {
    let peer = peer.map(|c| c.0.ip())?;
    let trusted = |ip: &IpAddr| config.trusted_proxies.iter().any(|net| net.contains(ip));
    if !config.trust_proxy || !trusted(&peer) {
        return Some(peer);
    }
    // Bytes, not text: a client may send anything, and the entries our proxies append after
    // it must still be found.
    let values: Vec<String> =
        headers.get_all("x-forwarded-for").iter().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect();
    let hops: Vec<&str> = values.iter().flat_map(|v| v.split(',')).map(str::trim).collect();
    let mut last = peer;
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) if trusted(&ip) => last = ip,
            Ok(ip) => return Some(ip),
            Err(_) => return Some(last),
        }
    }
    Some(last)
}

/// The caller of a request: anonymous, a signed-in browser session, or a bearer token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub ctx: Ctx,
    /// The session's CSRF token when the caller came with a session cookie.
    pub session_csrf: Option<String>,
    pub session_secret: Option<String>,
}

impl Caller {
    pub fn principal(&self) -> &Principal {
        &self.ctx.principal
    }
}

/// The purpose a reader declares for personal data: the `purpose` parameter of the address (a
/// download link carries it), else the `X-Kho-Purpose` header, percent-encoded UTF-8.
fn purpose(parts: &Parts) -> Option<String> {
    let from_query = parts
        .uri
        .query()
        .and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "purpose").map(|(_, v)| v.into_owned()));
    from_query.or_else(|| {
        let raw = parts.headers.get("x-kho-purpose")?.to_str().ok()?;
        form_urlencoded::parse(format!("p={raw}").as_bytes()).next().map(|(_, v)| v.into_owned())
    })
}

async fn resolve(parts: &Parts, state: &AppState) -> Result<Caller, Error> {
    let caller = resolve_principal(parts, state).await?;
    Ok(Caller { ctx: caller.ctx.with_purpose(purpose(parts)), ..caller })
}

async fn resolve_principal(parts: &Parts, state: &AppState) -> Result<Caller, Error> {
    let ip = client_ip(parts, &state.config);
    if let Some(auth) = parts.headers.get(header::AUTHORIZATION) {
        let auth =
            auth.to_str().map_err(|_| Error::new(ErrorCode::InvalidToken, "Authorization header is not valid text"))?;
        let token = auth
            .strip_prefix("Bearer ")
            .ok_or_else(|| Error::new(ErrorCode::InvalidToken, "Authorization must be 'Bearer <token>'"))?;
        let principal = state.kho.token_principal(token).await?;
        return Ok(Caller { ctx: Ctx { principal, ip, purpose: None }, session_csrf: None, session_secret: None });
    }
    let jar = CookieJar::from_headers(&parts.headers);
    if let Some(secret) = jar.get(SESSION_COOKIE).map(|c| c.value().to_string())
        && let Some((principal, csrf)) = state.kho.session_principal(&secret).await?
    {
        return Ok(Caller {
            ctx: Ctx { principal, ip, purpose: None },
            session_csrf: Some(csrf),
            session_secret: Some(secret),
        });
    }
    Ok(Caller { ctx: Ctx::anonymous(ip), session_csrf: None, session_secret: None })
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(c) = parts.extensions.get::<Caller>() {
            return Ok(c.clone());
        }
        let caller = resolve(parts, state).await?;
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

/// A caller of the JSON API. A browser session (cookie) may only change things when the
/// request also carries the session's CSRF token in `X-CSRF-Token`; bearer tokens need none,
/// since a browser never attaches them on its own.
#[derive(Debug, Clone)]
pub struct ApiCaller(pub Caller);

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        // An account whose password an administrator set may only change it, see itself and
        // sign out, through the API as through the pages.
        if matches!(caller.ctx.principal, Principal::PendingPasswordChange(_))
            && !matches!(
                parts.uri.path(),
                "/api/v1/me" | "/api/v1/me/password" | "/api/v1/auth/sign-out" | "/api/v1/auth/sign-in"
            )
        {
            return Err(ApiError(kho_core::policy::password_change_required()));
        }
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe && let Some(expected) = &caller.session_csrf {
            let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
            if sent != Some(expected.as_str()) {
                return Err(ApiError(Error::new(
                    ErrorCode::CsrfFailed,
                    "requests authenticated by a session cookie must send the session's X-CSRF-Token header",
                )));
            }
        }
        Ok(ApiCaller(caller))
    }
}

/// A JSON body. Unlike axum's own, every failure is a kho error with a stable code and a
/// message that says where the body went wrong.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(ApiError(json_rejection(rejection))),
        }
    }
}

pub fn json_rejection(r: JsonRejection) -> Error {
    match r {
        JsonRejection::MissingJsonContentType(_) => {
            Error::new(ErrorCode::UnsupportedMediaType, "send the body as JSON with 'Content-Type: application/json'")
        }
        JsonRejection::JsonSyntaxError(e) => {
            Error::new(ErrorCode::InvalidJson, format!("the body is not valid JSON: {}", e.body_text()))
        }
        JsonRejection::JsonDataError(e) => {
            Error::new(ErrorCode::InvalidJson, format!("the body does not have the expected shape: {}", e.body_text()))
        }
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Error::new(ErrorCode::PayloadTooLarge, "the request body is larger than this server accepts")
        }
        other => Error::new(ErrorCode::BadRequest, other.body_text()),
    }
}

/// Query-string parameters; a malformed one is a `bad_request` naming the parameter.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(e) => {
                Err(ApiError(Error::new(ErrorCode::BadRequest, format!("invalid query string: {}", e.body_text()))))
            }
        }
    }
}

/// The revision a client last saw, from `If-Match` ("3" or 3), to refuse lost updates.
pub fn if_match_revision(headers: &axum::http::HeaderMap) -> Result<Option<i64>, ApiError> {
    match headers.get(header::IF_MATCH) {
        None => Ok(None),
        Some(v) => {
            let s = v.to_str().unwrap_or("").trim().trim_start_matches("W/").trim_matches('"');
            s.parse::<i64>().map(Some).map_err(|_| {
                ApiError(Error::new(
                    ErrorCode::BadRequest,
                    "If-Match must be the dataset's revision number, e.g. \"3\"",
                ))
            })
        }
    }
}

/// The site's base URL as the client reached it (`http://host:port`), for absolute links in API
/// answers and RDF. A Host header that is not a plain host name (and port) is not echoed back.
pub fn site_url(s: &AppState, headers: &axum::http::HeaderMap) -> String {
    if let Some(public) = &s.config.public_url {
        return public.clone();
    }
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.len() <= 255)
        .filter(|h| h.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']')))
        .unwrap_or("localhost");
    let forwarded = headers.get("x-forwarded-proto").and_then(|h| h.to_str().ok());
    let scheme = match forwarded {
        Some(p) if s.config.trust_proxy && (p == "https" || p == "http") => p,
        _ if s.config.cookie_secure => "https",
        _ => "http",
    };
    format!("{scheme}://{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(trust: bool, peer: &str, xff: &[&str], extra_trusted: &[&str]) -> String {
        let mut config = WebConfig { trust_proxy: trust, ..Default::default() };
        config.trusted_proxies.extend(extra_trusted.iter().map(|n| n.parse::<ipnet::IpNet>().unwrap()));
        let mut headers = axum::http::HeaderMap::new();
        for v in xff {
            headers.append("x-forwarded-for", v.parse().unwrap());
        }
        let peer = ConnectInfo(SocketAddr::new(peer.parse().unwrap(), 40000));
        client_addr(&headers, Some(&peer), &config).unwrap().to_string()
    }

    #[test]
    fn the_client_is_the_right_most_address_no_proxy_of_ours_wrote() {
        // Not behind a proxy: the header is the client's own words.
        assert_eq!(addr(false, "127.0.0.1", &["1.2.3.4"], &[]), "127.0.0.1");
        // A client connecting directly cannot claim to be someone else.
        assert_eq!(addr(true, "198.51.100.7", &["1.2.3.4"], &[]), "198.51.100.7");
        // Through our proxy: what it appended, not what the client sent before it.
        assert_eq!(addr(true, "127.0.0.1", &["203.0.113.9"], &[]), "203.0.113.9");
        assert_eq!(addr(true, "127.0.0.1", &["6.6.6.6, 203.0.113.9"], &[]), "203.0.113.9");
        assert_eq!(addr(true, "127.0.0.1", &["6.6.6.6", "203.0.113.9"], &[]), "203.0.113.9");
        // Two proxies of ours in a row.
        assert_eq!(addr(true, "127.0.0.1", &["6.6.6.6, 203.0.113.9, 10.0.0.5"], &["10.0.0.0/8"]), "203.0.113.9");
        // Junk stops the walk at the last proxy: the request is still counted to an address.
        assert_eq!(addr(true, "127.0.0.1", &["not-an-address"], &[]), "127.0.0.1");
        assert_eq!(addr(true, "127.0.0.1", &["203.0.113.9, junk, 10.0.0.5"], &["10.0.0.0/8"]), "10.0.0.5");
        assert_eq!(addr(true, "::1", &[], &[]), "::1");
    }
}
