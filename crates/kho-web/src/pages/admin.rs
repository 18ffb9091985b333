//! Account and administration pages: my password and tokens; users, agencies, audit log.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use kho_core::model::{AgencyKind, ApiToken, NewAgency, Role, User};
use kho_core::{Detail, Error};
use kho_service::audit::AuditFilter;
use kho_service::users::{NewToken, NewUser, UserChanges};

use super::catalog::{Opt, date};
use super::{Base, FormData, Page, PageResult};
use crate::state::AppState;

pub struct TokenView {
    pub id: i64,
    pub name: String,
    pub prefix: String,
    pub role: String,
    pub user: String,
    pub created: String,
    pub expires: String,
    pub last_used: String,
    pub status: &'static str,
}

fn token_view(t: ApiToken, users: &[User]) -> TokenView {
    let now = time::OffsetDateTime::now_utc();
    TokenView {
        id: t.id,
        name: t.name,
        prefix: t.prefix,
        role: t.role.as_str().into(),
        user: users.iter().find(|u| u.id == t.user_id).map(|u| u.username.clone()).unwrap_or_default(),
        created: date(t.created_at),
        expires: t.expires_at.map(date).unwrap_or_default(),
        last_used: t.last_used_at.map(date).unwrap_or_default(),
        status: if t.revoked_at.is_some() {
            "revoked"
        } else if t.expires_at.is_some_and(|e| e <= now) {
            "expired"
        } else {
            "active"
        },
    }
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    b: &'a Base,
    tokens: Vec<TokenView>,
    new_secret: Option<String>,
    message: Option<String>,
    errors: Vec<Detail>,
}

async fn account_page(
    s: &AppState,
    page: &Page,
    new_secret: Option<String>,
    message: Option<String>,
    errors: Vec<Detail>,
) -> Result<Response, super::PageError> {
    // An account that must change its password has no tokens to manage yet.
    let tokens = if page.ctx().principal.member().is_some() {
        let tokens = s.kho.list_tokens(page.ctx()).await.map_err(|e| page.error(e))?;
        let users = s.kho.list_users(page.ctx(), None).await.map_err(|e| page.error(e))?;
        tokens.into_iter().map(|t| token_view(t, &users)).collect()
    } else {
        Vec::new()
    };
    let has_errors = !errors.is_empty();
    let errors = page.localize(errors);
    let resp = page.render_form(&AccountPage { b: &page.base, tokens, new_secret, message, errors }, has_errors);
    Ok(resp)
}

pub async fn account(State(s): State<AppState>, page: Page) -> PageResult {
    let page = page.with_active("account");
    page.account()?;
    let message = page.query("done").filter(|d| d == "password").map(|_| {
        let mut m = page.tr().t("account.password_changed_sessions").to_string();
        if let Some(n) = page.query("revoked").filter(|n| n != "0") {
            m.push_str(&format!(" {} {n}.", page.tr().t("account.tokens_revoked")));
        }
        m
    });
    account_page(&s, &page, None, message, vec![]).await
}

pub async fn account_submit(State(s): State<AppState>, page: Page, f: FormData) -> PageResult {
    let page = page.with_active("account");
    page.account()?;
    page.check_csrf(&f)?;
    let tr = page.tr();
    match f.get("action") {
        Some("password") => {
            if f.get("new_password") != f.get("confirm_password") {
                return account_page(
                    &s,
                    &page,
                    None,
                    None,
                    vec![Detail::new("confirm_password", tr.t("account.password_mismatch"))],
                )
                .await;
            }
            match s
                .kho
                .change_password(
                    page.ctx(),
                    page.caller.session_secret.as_deref(),
                    f.get("current_password").unwrap_or(""),
                    f.get("new_password").unwrap_or(""),
                    f.get("revoke_tokens").is_some(),
                )
                .await
            {
                // A fresh request in the renewed session, so the layout no longer carries the
                // old must-change flag.
                Ok((session, revoked)) => {
                    let jar = page.jar.clone().add(super::session_cookie(&s, session.secret));
                    Ok((jar, Redirect::to(&format!("/account?done=password&revoked={revoked}"))).into_response())
                }
                Err(e) => {
                    // Said in the page's language, without the fields' internal names.
                    let message = if e.code == kho_core::ErrorCode::InvalidCredentials {
                        tr.t("account.current_password_wrong").to_string()
                    } else if e.details.is_empty() {
                        tr.error(e.code)
                    } else {
                        // The rule, then why this password breaks it.
                        let why = page.localize(e.details).into_iter().map(|d| d.message).collect::<Vec<_>>();
                        format!("{} {}", tr.t("account.new_password_rules"), why.join("; "))
                    };
                    account_page(&s, &page, None, None, vec![Detail::new("", message)]).await
                }
            }
        }
        Some("create_token") => {
            let new = NewToken {
                name: f.text("name"),
                role: f.opt("role").and_then(|r| r.parse::<Role>().ok()),
                expires_in_days: f.opt("expires_in_days").and_then(|d| d.parse().ok()),
                user_id: None,
            };
            match s.kho.create_token(page.ctx(), new).await {
                Ok(created) => account_page(&s, &page, Some(created.secret), None, vec![]).await,
                Err(e) if !e.details.is_empty() => account_page(&s, &page, None, None, e.details).await,
                Err(e) => Err(page.error(e)),
            }
        }
        Some("revoke_token") => {
            let id = f.text("token_id").parse::<i64>().map_err(|_| page.error(Error::not_found("token")))?;
            s.kho.revoke_token(page.ctx(), id).await.map_err(|e| page.error(e))?;
            Ok(Redirect::to("/account").into_response())
        }
        _ => Err(page.error(Error::new(kho_core::ErrorCode::BadRequest, "unknown action"))),
    }
}

pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub agency: String,
    pub role: String,
    pub active: bool,
}

#[derive(Template)]
#[template(path = "admin_users.html")]
struct UsersPage<'a> {
    b: &'a Base,
    users: Vec<UserRow>,
    agencies: Vec<Opt>,
    errors: Vec<Detail>,
    message: Option<String>,
}

async fn users_page(
    s: &AppState,
    page: &Page,
    errors: Vec<Detail>,
    message: Option<String>,
) -> Result<Response, super::PageError> {
    let agencies = s.kho.list_agencies().await.map_err(|e| page.error(e))?;
    let users = s
        .kho
        .list_users(page.ctx(), None)
        .await
        .map_err(|e| page.error(e))?
        .into_iter()
        .map(|u| UserRow {
            agency: agencies.iter().find(|a| a.id == u.agency_id).map(|a| a.name.clone()).unwrap_or_default(),
            id: u.id,
            username: u.username,
            display_name: u.display_name,
            role: u.role.as_str().into(),
            active: u.active,
        })
        .collect();
    let agencies = agencies.into_iter().map(|a| Opt { value: a.id.to_string(), label: a.name }).collect();
    let has_errors = !errors.is_empty();
    let errors = page.localize(errors);
    let resp = page.render_form(&UsersPage { b: &page.base, users, agencies, errors, message }, has_errors);
    Ok(resp)
}

fn require_admin(page: &Page) -> Result<(), super::PageError> {
    page.member()?;
    page.caller.ctx.principal.require_admin().map(|_| ()).map_err(|e| page.error(e))
}

pub async fn users(State(s): State<AppState>, page: Page) -> PageResult {
    let page = page.with_active("admin");
    require_admin(&page)?;
    users_page(&s, &page, vec![], None).await
}

pub async fn users_submit(State(s): State<AppState>, page: Page, f: FormData) -> PageResult {
    let page = page.with_active("admin");
    require_admin(&page)?;
    page.check_csrf(&f)?;
    let result = match f.get("action") {
        Some("create") => {
            let role = f.text("role").parse::<Role>();
            let agency_id = f.text("agency_id").parse::<i64>();
            match (role, agency_id) {
                (Ok(role), Ok(agency_id)) => s
                    .kho
                    .create_user(
                        page.ctx(),
                        NewUser {
                            username: f.text("username"),
                            display_name: f.text("display_name"),
                            email: f.opt("email"),
                            agency_id,
                            role,
                            password: f.get("password").unwrap_or("").to_string(),
                            must_change_password: true,
                        },
                    )
                    .await
                    .map(|u| format!("{} {}", page.tr().t("users.created"), u.username)),
                _ => Err(Error::validation(vec![Detail::new("role", "choose a role and an agency")])),
            }
        }
        Some("toggle") => {
            let id = f.text("user_id").parse::<i64>().unwrap_or(0);
            let active = f.get("active") == Some("true");
            s.kho
                .update_user(page.ctx(), id, UserChanges { active: Some(active), ..Default::default() })
                .await
                .map(|u| format!("{} {}", page.tr().t("users.updated"), u.username))
        }
        _ => Err(Error::new(kho_core::ErrorCode::BadRequest, "unknown action")),
    };
    match result {
        Ok(msg) => users_page(&s, &page, vec![], Some(msg)).await,
        Err(e) if !e.details.is_empty() || e.code == kho_core::ErrorCode::UsernameTaken => {
            let details =
                if e.details.is_empty() { vec![Detail::new("username", e.message.clone())] } else { e.details };
            users_page(&s, &page, details, None).await
        }
        Err(e) => Err(page.error(e)),
    }
}

/// The kinds of agency, as a form's options.
fn kind_options(page: &Page) -> Vec<Opt> {
    AgencyKind::ALL
        .iter()
        .map(|k| Opt { value: k.as_str().into(), label: page.base.t(&format!("agency_kind.{}", k.as_str())).into() })
        .collect()
}

#[derive(Template)]
#[template(path = "admin_agencies.html")]
struct AgenciesAdminPage<'a> {
    b: &'a Base,
    agencies: Vec<Opt>,
    kinds: Vec<Opt>,
    errors: Vec<Detail>,
    message: Option<String>,
}

async fn agencies_page(
    s: &AppState,
    page: &Page,
    errors: Vec<Detail>,
    message: Option<String>,
) -> Result<Response, super::PageError> {
    let agencies = s
        .kho
        .list_agencies()
        .await
        .map_err(|e| page.error(e))?
        .into_iter()
        .map(|a| Opt { value: a.id.to_string(), label: a.name })
        .collect();
    let kinds = kind_options(page);
    let has_errors = !errors.is_empty();
    let errors = page.localize(errors);
    let resp = page.render_form(&AgenciesAdminPage { b: &page.base, agencies, kinds, errors, message }, has_errors);
    Ok(resp)
}

pub async fn agencies(State(s): State<AppState>, page: Page) -> PageResult {
    let page = page.with_active("admin");
    require_admin(&page)?;
    agencies_page(&s, &page, vec![], None).await
}

pub async fn agencies_submit(State(s): State<AppState>, page: Page, f: FormData) -> PageResult {
    let page = page.with_active("admin");
    require_admin(&page)?;
    page.check_csrf(&f)?;
    let kind = f.text("kind").parse::<AgencyKind>().unwrap_or(AgencyKind::Other);
    let new = NewAgency {
        code: f.text("code"),
        name: f.text("name"),
        name_en: f.opt("name_en"),
        kind,
        parent_id: f.text("parent_id").parse().ok(),
        admin_unit_code: f.opt("admin_unit_code"),
    };
    match s.kho.create_agency(page.ctx(), new).await {
        Ok(a) => {
            agencies_page(&s, &page, vec![], Some(format!("{} {}", page.tr().t("agencies.created"), a.name))).await
        }
        Err(e) if !e.details.is_empty() || e.code == kho_core::ErrorCode::SlugTaken => {
            let details = if e.details.is_empty() { vec![Detail::new("code", e.message.clone())] } else { e.details };
            agencies_page(&s, &page, details, None).await
        }
        Err(e) => Err(page.error(e)),
    }
}

/// The actions the audit log records, in the order the filter offers them.
const AUDIT_ACTIONS: &[&str] = &[
    "auth.sign_in",
    "auth.sign_out",
    "dataset.create",
    "dataset.update",
    "dataset.delete",
    "dataset.resource_delete",
    "dataset.read",
    "dataset.list",
    "version.read",
    "personal.read",
    "upload.create",
    "upload.reject",
    "version.publish",
    "resource.validate",
    "term.create",
    "user.create",
    "user.update",
    "user.password",
    "token.create",
    "token.revoke",
    "agency.create",
    "agency.update",
    "feedback.create",
    "feedback.answer",
];

const AUDIT_OBJECTS: &[&str] = &["dataset", "user", "token", "agency", "term", "feedback"];

pub struct AuditRow {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub by_token: bool,
    pub action: String,
    pub object: String,
    pub link: Option<String>,
    pub ip: String,
    pub outcome: String,
    pub failed: bool,
    pub hash: String,
    pub short: String,
    /// Why personal data was read unmasked, as the reader declared it.
    pub purpose: Option<String>,
}

#[derive(Template)]
#[template(path = "admin_audit.html")]
struct AuditPage<'a> {
    b: &'a Base,
    entries: Vec<AuditRow>,
    /// The link to older entries, with the same filters.
    older: Option<String>,
    verify: kho_service::audit::VerifyReport,
    people: Vec<Opt>,
    actions: Vec<Opt>,
    objects: Vec<Opt>,
    /// The filters in use, as the form shows them.
    person: String,
    action: String,
    object: String,
    since: String,
    until: String,
    errors: Vec<Detail>,
}

pub async fn audit(State(s): State<AppState>, page: Page) -> PageResult {
    let page = page.with_active("admin");
    require_admin(&page)?;
    let q = |k: &str| page.query(k).map(|v| v.trim().to_string()).unwrap_or_default();
    let (person, action, object, since, until) = (q("person"), q("action"), q("object"), q("since"), q("until"));
    let before = q("before").parse::<i64>().ok();
    let mut errors = Vec::new();
    let mut day = |name: &str, v: &str| match crate::api::audit::day(name, Some(v)) {
        Ok(d) => d,
        Err(e) => {
            errors.extend(e.0.details);
            None
        }
    };
    let (since_day, until_day) = (day("since", &since), day("until", &until));
    let per = 50;
    let filter = AuditFilter {
        before_seq: before,
        actor_user_id: person.parse().ok(),
        action: Some(action.clone()).filter(|a| AUDIT_ACTIONS.contains(&a.as_str())),
        object_type: Some(object.clone()).filter(|o| AUDIT_OBJECTS.contains(&o.as_str())),
        since: since_day,
        until: until_day,
        limit: per,
        ..Default::default()
    };
    let entries = s.kho.audit_entries(page.ctx(), filter).await.map_err(|e| page.error(e))?;
    let older = (entries.len() as i64 == per).then(|| entries.last().map(|e| e.record.seq)).flatten().map(|seq| {
        let mut url = form_urlencoded::Serializer::new(String::new());
        for (k, v) in
            [("person", &person), ("action", &action), ("object", &object), ("since", &since), ("until", &until)]
        {
            if !v.is_empty() {
                url.append_pair(k, v);
            }
        }
        url.append_pair("before", &seq.to_string());
        format!("/admin/audit?{}", url.finish())
    });
    let verify = s.kho.verify_audit().await.map_err(|e| page.error(e))?;
    let tr = page.tr();
    let label = |group: &str, key: &str| {
        let k = format!("{group}.{key}");
        if tr.has(&k) { tr.t(&k).to_string() } else { tr.t(&format!("{group}.other")).to_string() }
    };
    let entries = entries
        .into_iter()
        .map(|e| {
            let r = &e.record;
            let object = match &e.object_name {
                Some(n) => format!("{}: {n}", label("audit_object", &r.object_type)),
                None if r.object_id.is_empty() => label("audit_object", &r.object_type),
                None if r.object_type == "dataset" => tr.t("audit.deleted_dataset").to_string(),
                None => format!("{} {} {}", label("audit_object", &r.object_type), tr.t("audit.number"), r.object_id),
            };
            AuditRow {
                seq: r.seq,
                at: date(r.at),
                actor: e.actor_name.clone().unwrap_or_else(|| {
                    tr.t(if r.actor == "anonymous" { "audit.anonymous" } else { "audit.system" }).to_string()
                }),
                by_token: e.by_token,
                action: label("audit_action", &r.action),
                object,
                link: e.object_link.clone(),
                ip: r.ip.clone().unwrap_or_default(),
                outcome: label("audit_outcome", &r.outcome),
                failed: r.outcome != "ok",
                hash: r.hash.clone(),
                short: r.hash.chars().take(12).collect(),
                purpose: serde_json::from_str::<serde_json::Value>(&r.detail)
                    .ok()
                    .and_then(|d| d.get("purpose").and_then(|p| p.as_str()).map(str::to_string)),
            }
        })
        .collect();
    let people = s
        .kho
        .list_users(page.ctx(), None)
        .await
        .map_err(|e| page.error(e))?
        .into_iter()
        .map(|u| Opt { value: u.id.to_string(), label: u.display_name })
        .collect();
    let actions = AUDIT_ACTIONS.iter().map(|a| Opt { value: a.to_string(), label: label("audit_action", a) }).collect();
    let objects = AUDIT_OBJECTS.iter().map(|o| Opt { value: o.to_string(), label: label("audit_object", o) }).collect();
    let has_errors = !errors.is_empty();
    Ok(page.render_form(
        &AuditPage {
            b: &page.base,
            entries,
            older,
            verify,
            people,
            actions,
            objects,
            person,
            action,
            object,
            since,
            until,
            errors: page.localize(errors),
        },
        has_errors,
    ))
}

#[derive(Template)]
#[template(path = "admin_user.html")]
struct UserEditPage<'a> {
    b: &'a Base,
    user: User,
    agencies: Vec<Opt>,
    roles: Vec<Opt>,
    errors: Vec<Detail>,
    message: Option<String>,
    /// A one-time password just made up, shown this once.
    one_time: Option<String>,
}

async fn user_edit_page(
    s: &AppState,
    page: &Page,
    id: i64,
    errors: Vec<Detail>,
    message: Option<String>,
    one_time: Option<String>,
) -> Result<Response, super::PageError> {
    let user = s.kho.get_user(page.ctx(), id).await.map_err(|e| page.error(e))?;
    let agencies = s
        .kho
        .list_agencies()
        .await
        .map_err(|e| page.error(e))?
        .into_iter()
        .map(|a| Opt { value: a.id.to_string(), label: a.name })
        .collect();
    let roles = ["steward", "viewer", "admin"]
        .iter()
        .map(|r| Opt { value: r.to_string(), label: page.base.label("role", r).to_string() })
        .collect();
    let has_errors = !errors.is_empty();
    let errors = page.localize(errors);
    Ok(page.render_form(&UserEditPage { b: &page.base, user, agencies, roles, errors, message, one_time }, has_errors))
}

/// An administrator's page for one account: name, e-mail, agency, role, whether it may sign
/// in, and a password reset to a one-time password.
pub async fn user_edit(
    State(s): State<AppState>,
    page: Page,
    axum::extract::Path(id): axum::extract::Path<i64>,
) -> PageResult {
    let page = page.with_active("admin");
    require_admin(&page)?;
    user_edit_page(&s, &page, id, vec![], None, None).await
}

pub async fn user_edit_submit(
    State(s): State<AppState>,
    page: Page,
    axum::extract::Path(id): axum::extract::Path<i64>,
    f: FormData,
) -> PageResult {
    let page = page.with_active("admin");
    require_admin(&page)?;
    page.check_csrf(&f)?;
    match f.get("action") {
        Some("reset") => match s.kho.reset_password(page.ctx(), id).await {
            Ok((_, password)) => {
                let msg = page.tr().t("users.reset_done").to_string();
                user_edit_page(&s, &page, id, vec![], Some(msg), Some(password)).await
            }
            Err(e) => Err(page.error(e)),
        },
        _ => {
            let role = f.text("role").parse::<Role>().ok();
            let agency_id = f.text("agency_id").parse::<i64>().ok();
            let changes = UserChanges {
                display_name: Some(f.text("display_name")).filter(|n| !n.trim().is_empty()),
                email: Some(f.text("email")),
                agency_id,
                role,
                active: Some(f.get("active") == Some("true")),
                password: None,
            };
            if f.text("display_name").trim().is_empty() {
                let d = Detail::new("display_name", "must not be empty").with_vi("Họ và tên không được để trống");
                return user_edit_page(&s, &page, id, vec![d], None, None).await;
            }
            match s.kho.update_user(page.ctx(), id, changes).await {
                Ok(u) => {
                    let msg = format!("{} {}", page.tr().t("users.updated"), u.display_name);
                    user_edit_page(&s, &page, id, vec![], Some(msg), None).await
                }
                Err(e) if !e.details.is_empty() => user_edit_page(&s, &page, id, e.details, None, None).await,
                Err(e) => Err(page.error(e)),
            }
        }
    }
}

#[derive(Template)]
#[template(path = "admin_agency.html")]
struct AgencyEditPage<'a> {
    b: &'a Base,
    agency: kho_core::model::Agency,
    /// The parent agency's id, as the options' values.
    parent: String,
    agencies: Vec<Opt>,
    kinds: Vec<Opt>,
    errors: Vec<Detail>,
    message: Option<String>,
}

async fn agency_edit_page(
    s: &AppState,
    page: &Page,
    id: i64,
    errors: Vec<Detail>,
    message: Option<String>,
) -> Result<Response, super::PageError> {
    let all = s.kho.list_agencies().await.map_err(|e| page.error(e))?;
    let agency = all.iter().find(|a| a.id == id).cloned().ok_or_else(|| page.error(Error::not_found("agency")))?;
    let agencies =
        all.into_iter().filter(|a| a.id != id).map(|a| Opt { value: a.id.to_string(), label: a.name }).collect();
    let kinds = kind_options(page);
    let has_errors = !errors.is_empty();
    let parent = agency.parent_id.map(|p| p.to_string()).unwrap_or_default();
    let errors = page.localize(errors);
    Ok(page
        .render_form(&AgencyEditPage { b: &page.base, agency, parent, agencies, kinds, errors, message }, has_errors))
}

/// An administrator's page for one agency: its name, code, kind, parent and unit.
pub async fn agency_edit(
    State(s): State<AppState>,
    page: Page,
    axum::extract::Path(id): axum::extract::Path<i64>,
) -> PageResult {
    let page = page.with_active("admin");
    require_admin(&page)?;
    agency_edit_page(&s, &page, id, vec![], None).await
}

pub async fn agency_edit_submit(
    State(s): State<AppState>,
    page: Page,
    axum::extract::Path(id): axum::extract::Path<i64>,
    f: FormData,
) -> PageResult {
    let page = page.with_active("admin");
    require_admin(&page)?;
    page.check_csrf(&f)?;
    let new = NewAgency {
        code: f.text("code"),
        name: f.text("name"),
        name_en: f.opt("name_en"),
        kind: f.text("kind").parse::<AgencyKind>().unwrap_or(AgencyKind::Other),
        parent_id: f.text("parent_id").parse().ok(),
        admin_unit_code: f.opt("admin_unit_code"),
    };
    match s.kho.update_agency(page.ctx(), id, new).await {
        Ok(a) => {
            agency_edit_page(&s, &page, id, vec![], Some(format!("{} {}", page.tr().t("users.updated"), a.name))).await
        }
        Err(e) if !e.details.is_empty() || e.code == kho_core::ErrorCode::SlugTaken => {
            let details = if e.details.is_empty() { vec![Detail::new("code", e.message.clone())] } else { e.details };
            agency_edit_page(&s, &page, id, details, None).await
        }
        Err(e) => Err(page.error(e)),
    }
}
