//! Server-rendered pages for stewards and administrators, Vietnamese first.
//!
//! Forms post back to the same URL and carry a CSRF token: the session's own token once
//! signed in, or a random one mirrored in a cookie before (for the sign-in form).

pub mod admin;
pub mod auth;
pub mod catalog;
pub mod feedback;
pub mod loading;
pub mod portal;
pub mod quality;
pub mod reference;

use askama::Template;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use kho_core::{Error, ErrorCode};

use crate::extract::{Caller, SESSION_COOKIE};
use crate::i18n::{Lang, Tr};
use crate::state::AppState;

pub const PRE_CSRF_COOKIE: &str = "kho_csrf";

pub fn session_cookie(state: &AppState, secret: String) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, secret))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.config.cookie_secure)
        .max_age(state.kho.config().session_ttl)
        .build()
}

/// What every page's layout needs.
pub struct Base {
    pub tr: Tr,
    pub user: Option<UserView>,
    pub csrf: String,
    /// The current path, for the language switch.
    pub path: String,
    pub active: &'static str,
    /// The site's address as the visitor reached it, for copyable API examples.
    pub site: String,
}

impl Base {
    pub fn t(&self, key: &str) -> &'static str {
        self.tr.t(key)
    }

    /// The text for an option value, e.g. `label("access", "open")`.
    /// A number as the page's language writes it: "8.000,5" on a Vietnamese page, "8,000.5" on
    /// an English one, with at most `decimals` decimals and none when the number is whole.
    pub fn num(&self, v: &f64, decimals: usize) -> String {
        format_number(*v, decimals, self.tr.lang)
    }

    pub fn label(&self, group: &str, value: &str) -> &'static str {
        self.tr.t(&format!("{group}.{value}"))
    }

    pub fn is_admin(&self) -> bool {
        self.user.as_ref().is_some_and(|u| u.role == "admin")
    }

    pub fn signed_in(&self) -> bool {
        self.user.is_some()
    }

    /// Signed in with a password an administrator set, not yet changed.
    pub fn must_change_password(&self) -> bool {
        self.user.as_ref().is_some_and(|u| u.must_change_password)
    }

    pub fn lang_link(&self) -> String {
        let sep = if self.path.contains('?') { '&' } else { '?' };
        format!("{}{}lang={}", self.path, sep, self.tr.other_code())
    }
}

pub struct UserView {
    pub must_change_password: bool,
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub agency_id: i64,
    pub agency_name: String,
}

/// A page request: the caller, the language, and the layout's data.
pub struct Page {
    pub caller: Caller,
    pub base: Base,
    /// Cookies to set on the response (language choice, pre-session CSRF token).
    pub jar: CookieJar,
}

impl Page {
    /// Problems as a form shows them: said in the page's language when the problem has a
    /// Vietnamese wording, each field named by its label (`field.*` in the message files),
    /// never by its name in the API.
    pub fn localize(&self, details: Vec<kho_core::Detail>) -> Vec<kho_core::Detail> {
        let vi = self.base.tr.lang == crate::i18n::Lang::Vi;
        details
            .into_iter()
            .map(|mut d| {
                if vi && let Some(m) = d.message_vi.take() {
                    d.message = m;
                }
                let key = format!("field.{}", d.path);
                d.path = if d.path.is_empty() {
                    String::new()
                } else if self.base.tr.has(&key) {
                    self.base.tr.t(&key).to_string()
                } else if vi {
                    String::new()
                } else {
                    d.path
                };
                d
            })
            .collect()
    }

    pub fn tr(&self) -> Tr {
        self.base.tr
    }

    pub fn ctx(&self) -> &kho_service::Ctx {
        &self.caller.ctx
    }

    /// A value from the page's query string.
    pub fn query(&self, key: &str) -> Option<String> {
        let (_, q) = self.base.path.split_once('?')?;
        form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == key).map(|(_, v)| v.into_owned())
    }

    pub fn with_active(mut self, active: &'static str) -> Self {
        self.base.active = active;
        self
    }

    /// The signed-in account, also while it must change its password (the account page).
    pub fn account(&self) -> Result<&kho_core::policy::Member, PageError> {
        self.caller
            .ctx
            .principal
            .account()
            .ok_or_else(|| self.error(Error::new(ErrorCode::AuthenticationRequired, "sign in")))
    }

    /// The signed-in member, or an error that sends the browser to the sign-in page.
    pub fn member(&self) -> Result<&kho_core::policy::Member, PageError> {
        self.caller
            .ctx
            .principal
            .member()
            .ok_or_else(|| self.error(Error::new(ErrorCode::AuthenticationRequired, "sign in")))
    }

    pub fn error(&self, e: Error) -> PageError {
        PageError { error: e, tr: self.base.tr, path: self.base.path.clone() }
    }

    /// Check a form's CSRF token against the session's (or, before sign-in, the cookie's).
    pub fn check_csrf(&self, form: &FormData) -> Result<(), PageError> {
        let sent = form.get("_csrf").unwrap_or("");
        if sent.is_empty() || sent != self.base.csrf {
            return Err(
                self.error(Error::new(ErrorCode::CsrfFailed, "the form's anti-forgery token is missing or stale"))
            );
        }
        Ok(())
    }

    /// Render a form page: 422 when it comes back with errors, so scripts and tests can tell.
    pub fn render_form<T: Template>(&self, t: &T, has_errors: bool) -> Response {
        let mut resp = self.render(t);
        if has_errors {
            *resp.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        }
        resp
    }

    pub fn render<T: Template>(&self, t: &T) -> Response {
        match t.render() {
            Ok(html) => (self.jar.clone(), Html(html)).into_response(),
            Err(e) => {
                tracing::error!("template: {e}");
                (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
            }
        }
    }
}

impl FromRequestParts<AppState> for Page {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let lang = Lang::from_request(parts);
        let tr = Tr::new(lang);
        let path = parts.uri.path_and_query().map_or("/".to_string(), |p| p.as_str().to_string());
        let caller = match Caller::from_request_parts(parts, state).await {
            Ok(c) => c,
            Err(e) => return Err(PageError { error: e.0, tr, path }.into_response()),
        };
        let mut jar = CookieJar::from_headers(&parts.headers);
        let query_lang = parts.uri.query().is_some_and(|q| q.split('&').any(|kv| kv.starts_with("lang=")));
        if query_lang {
            jar = jar.add(
                Cookie::build(("kho_lang", lang.code()))
                    .path("/")
                    .same_site(SameSite::Lax)
                    .max_age(time::Duration::days(365))
                    .build(),
            );
        }
        let csrf = match &caller.session_csrf {
            Some(c) => c.clone(),
            None => match jar.get(PRE_CSRF_COOKIE) {
                Some(c) if c.value().len() == 32 => c.value().to_string(),
                _ => {
                    let v = kho_service::auth::random_secret(16);
                    jar = jar.add(
                        Cookie::build((PRE_CSRF_COOKIE, v.clone()))
                            .path("/")
                            .http_only(true)
                            .same_site(SameSite::Strict)
                            .secure(state.config.cookie_secure)
                            .build(),
                    );
                    v
                }
            },
        };
        let user = match caller.ctx.principal.account() {
            Some(m) => {
                let user = state.kho.own_user(&caller.ctx).await.ok();
                let agency =
                    state.kho.list_agencies().await.ok().and_then(|all| all.into_iter().find(|a| a.id == m.agency_id));
                user.map(|u| UserView {
                    must_change_password: u.must_change_password,
                    username: u.username,
                    display_name: u.display_name,
                    role: m.role.as_str().to_string(),
                    agency_id: m.agency_id,
                    agency_name: agency.map(|a| a.name).unwrap_or_default(),
                })
            }
            None => None,
        };
        // Someone else chose this password: nothing but the account page (to change it) and
        // signing out until the user picks their own.
        let must_change = user.as_ref().is_some_and(|u| u.must_change_password);
        let exempt = parts.uri.path() == "/account" || parts.uri.path() == "/sign-out";
        if must_change && !exempt {
            return Err(Redirect::to("/account").into_response());
        }
        let site = crate::extract::site_url(state, &parts.headers);
        Ok(Page { caller, base: Base { tr, user, csrf, path, active: "", site }, jar })
    }
}

/// An error shown as a page: a sign-in redirect for 401, a localized explanation otherwise.
pub struct PageError {
    pub error: Error,
    pub tr: Tr,
    pub path: String,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    b: &'a Base,
    status: u16,
    explanation: String,
    message: &'a str,
    details: &'a [kho_core::Detail],
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = crate::error::status_of(self.error.code);
        if self.error.code == ErrorCode::AuthenticationRequired {
            let next = form_urlencoded::byte_serialize(self.path.as_bytes()).collect::<String>();
            return Redirect::to(&format!("/sign-in?next={next}")).into_response();
        }
        if status.is_server_error() {
            tracing::error!(code = %self.error.code, message = %self.error.message, "internal error on a page");
        }
        let base = Base {
            tr: self.tr,
            user: None,
            csrf: String::new(),
            path: self.path.clone(),
            active: "",
            site: String::new(),
        };
        // Problems said in Vietnamese too are shown so on a Vietnamese page.
        let mut details = self.error.details.clone();
        if self.tr.lang == crate::i18n::Lang::Vi {
            for d in &mut details {
                if let Some(vi) = d.message_vi.take() {
                    d.message = vi;
                }
            }
        }
        let page = ErrorPage {
            b: &base,
            status: status.as_u16(),
            explanation: self.tr.error(self.error.code),
            // The message is English; a Vietnamese page says it by its code and details.
            message: if status.is_server_error() || self.tr.lang == crate::i18n::Lang::Vi {
                ""
            } else {
                &self.error.message
            },
            details: &details,
        };
        let html = page.render().unwrap_or_else(|_| "error".into());
        let mut resp = (status, Html(html)).into_response();
        if let Some(secs) = self.error.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

pub type PageResult = Result<Response, PageError>;

/// A urlencoded form body, keeping repeated keys in order (schema rows, checkboxes).
#[derive(Debug, Default)]
pub struct FormData(pub Vec<(String, String)>);

impl FormData {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub fn text(&self, key: &str) -> String {
        self.get(key).unwrap_or("").trim().to_string()
    }

    pub fn opt(&self, key: &str) -> Option<String> {
        Some(self.text(key)).filter(|s| !s.is_empty())
    }

    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
    }
}

impl<S: Send + Sync> axum::extract::FromRequest<S> for FormData {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if !is_form {
            return Err((StatusCode::UNSUPPORTED_MEDIA_TYPE, "expected a form").into_response());
        }
        match axum::body::Bytes::from_request(req, state).await {
            Ok(bytes) => Ok(FormData(form_urlencoded::parse(&bytes).into_owned().collect())),
            Err(e) => Err((e.status(), e.body_text()).into_response()),
        }
    }
}

/// Static assets compiled into the binary.
pub async fn asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    let (body, ty): (&'static str, &str) = match name.as_str() {
        "app.css" => (include_str!("../../static/app.css"), "text/css; charset=utf-8"),
        "app.js" => (include_str!("../../static/app.js"), "text/javascript; charset=utf-8"),
        "explore.js" => (include_str!("../../static/explore.js"), "text/javascript; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    ([(header::CONTENT_TYPE, ty), (header::CACHE_CONTROL, "public, max-age=3600")], body).into_response()
}

/// Boundaries for the maps: the 34 provinces (`/geo/provinces.json`)…
pub async fn geo(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    let provinces = bytes::Bytes::from_static(include_bytes!("../../../../data/geo/provinces.json"));
    geo_response((name == "provinces.json").then_some(provinces))
}

/// …and one province's communes (`/geo/communes/{code}.json`).
pub async fn geo_communes(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    geo_response(name.strip_suffix(".json").and_then(communes_of))
}

fn geo_response(body: Option<bytes::Bytes>) -> Response {
    match body {
        Some(body) => {
            ([(header::CONTENT_TYPE, "application/geo+json"), (header::CACHE_CONTROL, "public, max-age=86400")], body)
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such boundary file").into_response(),
    }
}

/// The communes of one province, cut from the compiled-in file once and kept.
fn communes_of(province: &str) -> Option<bytes::Bytes> {
    static BY_PROVINCE: std::sync::LazyLock<std::collections::HashMap<String, bytes::Bytes>> =
        std::sync::LazyLock::new(|| {
            let all: serde_json::Value =
                serde_json::from_slice(include_bytes!("../../../../data/geo/communes.json")).unwrap_or_default();
            let mut groups: std::collections::HashMap<String, Vec<serde_json::Value>> = Default::default();
            for f in all["features"].as_array().into_iter().flatten() {
                if let Some(p) = f["properties"]["provinceCode"].as_str() {
                    groups.entry(p.to_string()).or_default().push(f.clone());
                }
            }
            groups
                .into_iter()
                .map(|(p, features)| {
                    let fc = serde_json::json!({"type": "FeatureCollection", "features": features});
                    (p, bytes::Bytes::from(fc.to_string()))
                })
                .collect()
        });
    BY_PROVINCE.get(province).cloned()
}

pub fn routes() -> axum::Router<AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/", get(portal::home))
        .route("/sign-in", get(auth::sign_in_page).post(auth::sign_in_submit))
        .route("/sign-out", post(auth::sign_out))
        .route("/datasets", get(portal::search))
        .route("/datasets/new", get(catalog::new_page).post(catalog::new_submit))
        .route("/datasets/new/from-file", get(catalog::from_file_page_get).post(catalog::from_file_submit))
        .route("/datasets/{slug}", get(catalog::view))
        .route("/datasets/{slug}/edit", get(catalog::edit_page).post(catalog::edit_submit))
        .route("/datasets/{slug}/delete", post(catalog::delete_submit))
        .route("/datasets/{slug}/report", get(feedback::report_page).post(feedback::report_submit))
        .route("/datasets/{slug}/rate", post(feedback::rate_submit))
        .route("/requests", get(feedback::requests))
        .route("/requests/new", get(feedback::request_new_page).post(feedback::request_submit))
        .route("/requests/{id}", get(feedback::request_view))
        .route("/reports/{id}", get(feedback::report_view))
        .route("/feedback/{id}/answer", post(feedback::answer_submit))
        .route("/inbox", get(feedback::inbox))
        .route("/datasets/{slug}/resources/{name}/delete", post(catalog::resource_delete_submit))
        .route("/datasets/{slug}/resources/new", get(catalog::resource_new_page).post(catalog::resource_submit_new))
        .route("/datasets/{slug}/resources/new/infer", post(catalog::resource_infer))
        .route(
            "/datasets/{slug}/resources/{name}/edit",
            get(catalog::resource_edit_page).post(catalog::resource_submit_edit),
        )
        .route("/datasets/{slug}/resources/{name}/upload", get(loading::upload_page).post(loading::upload_submit))
        .route("/uploads/{id}", get(loading::upload_view).post(loading::upload_decide))
        .route("/uploads/{id}/report.csv", get(loading::upload_report_csv))
        .route("/uploads/{id}/report.xlsx", get(loading::upload_report_xlsx))
        .route("/quality", get(quality::overview))
        .route("/dictionary", get(reference::dictionary))
        .route("/dictionary/{name}", get(reference::term))
        .route("/agencies", get(reference::agencies))
        .route("/agencies/{code}", get(portal::agency))
        .route("/open-data", get(portal::open_data))
        .route("/admin-units", get(reference::admin_units))
        .route("/account", get(admin::account).post(admin::account_submit))
        .route("/admin/users", get(admin::users).post(admin::users_submit))
        .route("/admin/users/{id}", get(admin::user_edit).post(admin::user_edit_submit))
        .route("/admin/agencies", get(admin::agencies).post(admin::agencies_submit))
        .route("/admin/agencies/{id}", get(admin::agency_edit).post(admin::agency_edit_submit))
        .route("/admin/audit", get(admin::audit))
        .route("/static/{name}", get(asset))
        .route("/geo/{name}", get(geo))
        .route("/geo/communes/{name}", get(geo_communes))
}

/// A number as `lang` writes it: thousands grouped, at most `decimals` decimals, none when whole.
pub fn format_number(v: f64, decimals: usize, lang: crate::i18n::Lang) -> String {
    let text = format!("{v:.decimals$}");
    let text = if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_string() } else { text };
    localize_number(&text, lang)
}

/// A number with exactly `decimals` decimals, as `lang` writes it ("4,0" for a rating).
pub fn format_fixed(v: f64, decimals: usize, lang: crate::i18n::Lang) -> String {
    localize_number(&format!("{v:.decimals$}"), lang)
}

/// `text`, a number as Rust writes it, with `lang`'s thousands separator and decimal point.
fn localize_number(text: &str, lang: crate::i18n::Lang) -> String {
    let (group, point) = if lang == crate::i18n::Lang::Vi { ('.', ",") } else { (',', ".") };
    let (sign, unsigned) = text.strip_prefix('-').map_or(("", text), |t| ("-", t));
    let (whole, fraction) = unsigned.split_once('.').map_or((unsigned, None), |(w, f)| (w, Some(f)));
    let mut out = String::from(sign);
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            out.push(group);
        }
        out.push(c);
    }
    if let Some(f) = fraction {
        out.push_str(point);
        out.push_str(f);
    }
    out
}

#[cfg(test)]
mod number_tests {
    use super::format_number;
    use crate::i18n::Lang;

    #[test]
    fn numbers_are_grouped_and_pointed_per_language() {
        assert_eq!(format_number(8000.0, 0, Lang::Vi), "8.000");
        assert_eq!(format_number(1234567.25, 2, Lang::Vi), "1.234.567,25");
        assert_eq!(format_number(1234567.25, 2, Lang::En), "1,234,567.25");
        assert_eq!(format_number(97.1, 1, Lang::Vi), "97,1");
        assert_eq!(format_number(100.0, 1, Lang::Vi), "100");
        assert_eq!(format_number(-1500.5, 1, Lang::Vi), "-1.500,5");
        assert_eq!(format_number(0.0, 1, Lang::En), "0");
        assert_eq!(super::format_fixed(4.0, 1, Lang::Vi), "4,0");
        assert_eq!(super::format_fixed(1234.5, 1, Lang::En), "1,234.5");
    }
}
