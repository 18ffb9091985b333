use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::Cookie;

use super::{Base, FormData, Page, PageResult, session_cookie};
use crate::extract::SESSION_COOKIE;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage<'a> {
    b: &'a Base,
    next: String,
    username: String,
    error: Option<String>,
}

/// Only local paths are followed after sign-in, never another site.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/".to_string(),
    }
}

fn next_from_query(b: &Base) -> Option<String> {
    let q = b.path.split_once('?').map(|(_, q)| q).unwrap_or("");
    form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "next").map(|(_, v)| v.into_owned())
}

pub async fn sign_in_page(page: Page) -> Response {
    if page.base.signed_in() {
        return Redirect::to("/").into_response();
    }
    let page = page.with_active("sign-in");
    let next = safe_next(next_from_query(&page.base).as_deref());
    page.render(&SignInPage { b: &page.base, next, username: String::new(), error: None })
}

pub async fn sign_in_submit(State(s): State<AppState>, page: Page, form: FormData) -> PageResult {
    page.check_csrf(&form)?;
    let username = form.text("username");
    let next = safe_next(form.get("next"));
    match s.kho.sign_in(page.ctx(), &username, form.get("password").unwrap_or("")).await {
        Ok(session) => {
            let jar = page.jar.add(session_cookie(&s, session.secret));
            Ok((jar, Redirect::to(&next)).into_response())
        }
        Err(e) if matches!(e.code, kho_core::ErrorCode::InvalidCredentials | kho_core::ErrorCode::TooManyAttempts) => {
            let error = Some(page.tr().error(e.code));
            let status = crate::error::status_of(e.code);
            let tpl = SignInPage { b: &page.base, next, username, error };
            let mut resp = page.render(&tpl);
            *resp.status_mut() = status;
            Ok(resp)
        }
        Err(e) => Err(page.error(e)),
    }
}

pub async fn sign_out(State(s): State<AppState>, page: Page, form: FormData) -> PageResult {
    page.check_csrf(&form)?;
    if let Some(secret) = &page.caller.session_secret {
        s.kho.sign_out(page.ctx(), secret).await.map_err(|e| page.error(e))?;
    }
    let jar = page.jar.remove(Cookie::build(SESSION_COOKIE).path("/"));
    Ok((jar, Redirect::to("/")).into_response())
}
