//! Talking back: rating and reporting a problem on a dataset's page, the public list of data
//! requests and its form, one item's page (where its agency answers), and a steward's inbox.
//!
//! Every public form carries a honeypot field, `website`, hidden from people (CSS and
//! `aria-hidden`) but filled in by form-spamming robots: such a post is answered exactly like a
//! good one and nothing is stored, so the robot learns nothing.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use kho_core::model::{Agency, Dataset, Feedback, FeedbackKind, FeedbackStatus, ProblemCategory};
use kho_core::{Detail, Error, ErrorCode};
use kho_service::feedback::{AnswerInput, FeedbackQuery, ProblemInput, RequestInput};

use super::catalog::date;
use super::{Base, FormData, Page, PageResult};
use crate::ratelimit::check_feedback;
use crate::state::AppState;

const PAGE_SIZE: i64 = 30;

/// One report or request as the pages show it.
pub struct FeedbackView {
    pub id: i64,
    pub url: String,
    pub kind: &'static str,
    /// The request's title, or the report's category.
    pub title: String,
    pub body: String,
    pub status: &'static str,
    pub created: String,
    pub answer: Option<String>,
    pub answered: String,
    /// The agency it is addressed to (empty: the data center routes it).
    pub agency: String,
    /// The dataset reported on, or the one that fulfilled the request: (slug, title).
    pub dataset: Option<(String, String)>,
    /// Seen only by those who may answer.
    pub contact: Option<String>,
    pub answered_by: Option<String>,
}

pub fn item_url(f: &Feedback) -> String {
    match f.kind {
        FeedbackKind::Request => format!("/requests/{}", f.id),
        FeedbackKind::Problem => format!("/reports/{}", f.id),
    }
}

/// Build the views, looking up agency names and dataset titles once per page.
pub async fn views(s: &AppState, b: &Base, items: Vec<Feedback>) -> Vec<FeedbackView> {
    let agencies = s.kho.list_agencies().await.unwrap_or_default();
    let mut out = Vec::with_capacity(items.len());
    for f in items {
        // The index keeps every dataset's slug and title; the store is read only for one it lacks.
        let dataset = match &f.dataset_id {
            Some(id) => s.kho.dataset_label(id).await,
            None => None,
        };
        out.push(view(b, &agencies, f, dataset));
    }
    out
}

fn view(b: &Base, agencies: &[Agency], f: Feedback, dataset: Option<(String, String)>) -> FeedbackView {
    let agency = f
        .agency_id
        .and_then(|id| agencies.iter().find(|a| a.id == id))
        .map(|a| match (&a.name_en, b.tr.lang) {
            (Some(en), crate::i18n::Lang::En) => en.clone(),
            _ => a.name.clone(),
        })
        .unwrap_or_default();
    let title = match (f.kind, f.category) {
        (FeedbackKind::Problem, Some(c)) => b.label("problem", c.as_str()).to_string(),
        _ => f.title.clone(),
    };
    FeedbackView {
        id: f.id,
        url: item_url(&f),
        kind: f.kind.as_str(),
        title,
        body: f.body,
        status: f.status.as_str(),
        created: date(f.created_at),
        answer: f.answer,
        answered: f.answered_at.map(date).unwrap_or_default(),
        agency,
        dataset,
        contact: f.contact,
        answered_by: f.answered_by,
    }
}

/// A robot filled in the field people cannot see.
fn is_robot(f: &FormData) -> bool {
    !f.text("website").is_empty()
}

/// Options of a select: (value, label).
pub fn categories(b: &Base) -> Vec<(&'static str, &'static str)> {
    ProblemCategory::ALL.iter().map(|c| (c.as_str(), b.label("problem", c.as_str()))).collect()
}

/// The form page for a report or a request, shown again with the visitor's text and what is wrong.
#[derive(Template)]
#[template(path = "feedback_form.html")]
struct FormPage<'a> {
    b: &'a Base,
    /// `report` or `request`.
    mode: &'static str,
    action: String,
    dataset: Option<(String, String)>,
    categories: Vec<(&'static str, &'static str)>,
    agencies: Vec<(String, String)>,
    form: Filled,
}

/// What a form shows again: the values sent, and what is wrong with them.
#[derive(Default)]
pub struct Filled {
    values: FormData,
    error_title: String,
    /// The problems as the page says them (fields by their labels).
    errors: Vec<Detail>,
    /// The fields at fault, by their names in the form.
    invalid: Vec<String>,
}

impl Filled {
    fn with_error(page: &Page, values: FormData, e: Error) -> Filled {
        let invalid = e.details.iter().map(|d| d.path.clone()).collect();
        Filled { values, error_title: page.tr().error(e.code), errors: page.localize(e.details), invalid }
    }

    pub fn v(&self, key: &str) -> String {
        self.values.text(key)
    }

    pub fn err(&self, field: &str) -> bool {
        self.invalid.iter().any(|p| p == field)
    }
}

impl<'a> FormPage<'a> {
    fn report(b: &'a Base, d: Dataset, form: Filled) -> Self {
        FormPage {
            b,
            mode: "report",
            action: format!("/datasets/{}/report", d.input.slug),
            categories: categories(b),
            dataset: Some((d.input.slug, d.input.title)),
            agencies: Vec::new(),
            form,
        }
    }

    fn request(b: &'a Base, agencies: &[Agency], form: Filled) -> Self {
        FormPage {
            b,
            mode: "request",
            action: "/requests/new".into(),
            dataset: None,
            categories: Vec::new(),
            agencies: agency_options(agencies),
            form,
        }
    }
}

fn agency_options(agencies: &[Agency]) -> Vec<(String, String)> {
    agencies.iter().map(|a| (a.code.clone(), a.name.clone())).collect()
}

/// Errors a form shows beside its fields; anything else becomes the error page.
fn form_error(e: &Error) -> bool {
    e.code == ErrorCode::ValidationFailed
}

pub async fn report_page(State(s): State<AppState>, page: Page, Path(slug): Path<String>) -> PageResult {
    let d = s.kho.get_dataset(page.ctx(), &slug).await.map_err(|e| page.error(e))?;
    let tpl = FormPage::report(&page.base, d, Filled::default());
    Ok(page.render(&tpl))
}

pub async fn report_submit(State(s): State<AppState>, page: Page, Path(slug): Path<String>, f: FormData) -> PageResult {
    page.check_csrf(&f)?;
    let sent = format!("/datasets/{slug}?sent=report#feedback");
    if is_robot(&f) {
        return Ok(Redirect::to(&sent).into_response());
    }
    check_feedback(&s, page.ctx()).map_err(|e| page.error(e))?;
    let category = f.text("category").parse::<ProblemCategory>().ok();
    let result = match category {
        Some(category) => {
            let input = ProblemInput { category, description: f.text("description"), contact: f.opt("contact") };
            s.kho.report_problem(page.ctx(), &slug, input).await
        }
        None => Err(Error::validation(vec![Detail::new("category", "choose what kind of problem it is")])),
    };
    match result {
        Ok(_) => Ok(Redirect::to(&sent).into_response()),
        Err(e) if form_error(&e) => {
            let d = s.kho.get_dataset(page.ctx(), &slug).await.map_err(|e| page.error(e))?;
            let tpl = FormPage::report(&page.base, d, Filled::with_error(&page, f, e));
            Ok(page.render_form(&tpl, true))
        }
        Err(e) => Err(page.error(e)),
    }
}

pub async fn rate_submit(State(s): State<AppState>, page: Page, Path(slug): Path<String>, f: FormData) -> PageResult {
    page.check_csrf(&f)?;
    let sent = format!("/datasets/{slug}?sent=rating#feedback");
    if is_robot(&f) {
        return Ok(Redirect::to(&sent).into_response());
    }
    check_feedback(&s, page.ctx()).map_err(|e| page.error(e))?;
    let stars = f
        .text("stars")
        .parse::<i64>()
        .map_err(|_| page.error(Error::validation(vec![Detail::new("stars", "choose from 1 to 5 stars")])))?;
    s.kho.rate_dataset(page.ctx(), &slug, stars).await.map_err(|e| page.error(e))?;
    Ok(Redirect::to(&sent).into_response())
}

#[derive(Template)]
#[template(path = "requests.html")]
struct RequestsPage<'a> {
    b: &'a Base,
    items: Vec<FeedbackView>,
    total: i64,
    status: String,
    statuses: Vec<(&'static str, &'static str)>,
    prev: Option<String>,
    next: Option<String>,
}

/// The statuses as options of a select or filter: (value, label); `hidden` only for the agency.
fn status_options(b: &Base, with_hidden: bool) -> Vec<(&'static str, &'static str)> {
    FeedbackStatus::ALL
        .iter()
        .filter(|s| with_hidden || **s != FeedbackStatus::Hidden)
        .map(|s| (s.as_str(), b.label("feedback_status", s.as_str())))
        .collect()
}

/// Previous and next page links for a list of `total` items at `offset`.
fn pager(base: &str, offset: i64, total: i64) -> (Option<String>, Option<String>) {
    let sep = if base.contains('?') { '&' } else { '?' };
    let prev = (offset > 0).then(|| format!("{base}{sep}offset={}", (offset - PAGE_SIZE).max(0)));
    let next = (offset + PAGE_SIZE < total).then(|| format!("{base}{sep}offset={}", offset + PAGE_SIZE));
    (prev, next)
}

pub async fn requests(State(s): State<AppState>, page: Page) -> PageResult {
    let page = page.with_active("requests");
    let status_text = page.query("status").unwrap_or_default();
    let status = match status_text.as_str() {
        "" => None,
        other => Some(other.parse::<FeedbackStatus>().map_err(|e| page.error(e))?),
    };
    let offset = page.query("offset").and_then(|o| o.parse::<i64>().ok()).unwrap_or(0).max(0);
    let q = FeedbackQuery { kind: None, status, agency: None, limit: PAGE_SIZE, offset };
    let (items, total) = s.kho.list_requests(page.ctx(), &q).await.map_err(|e| page.error(e))?;
    let base = if status_text.is_empty() { "/requests".to_string() } else { format!("/requests?status={status_text}") };
    let (prev, next) = pager(&base, offset, total);
    let tpl = RequestsPage {
        items: views(&s, &page.base, items).await,
        b: &page.base,
        total,
        status: status_text,
        statuses: status_options(&page.base, false),
        prev,
        next,
    };
    Ok(page.render(&tpl))
}

pub async fn request_new_page(State(s): State<AppState>, page: Page) -> PageResult {
    let page = page.with_active("requests");
    let agencies = s.kho.list_agencies().await.map_err(|e| page.error(e))?;
    let tpl = FormPage::request(&page.base, &agencies, Filled::default());
    Ok(page.render(&tpl))
}

pub async fn request_submit(State(s): State<AppState>, page: Page, f: FormData) -> PageResult {
    let page = page.with_active("requests");
    page.check_csrf(&f)?;
    if is_robot(&f) {
        return Ok(Redirect::to("/requests?sent=request").into_response());
    }
    check_feedback(&s, page.ctx()).map_err(|e| page.error(e))?;
    let input = RequestInput {
        title: f.text("title"),
        description: f.text("description"),
        agency: f.opt("agency"),
        contact: f.opt("contact"),
    };
    match s.kho.request_data(page.ctx(), input).await {
        Ok(r) => Ok(Redirect::to(&format!("/requests/{}?sent=request", r.id)).into_response()),
        Err(e) if form_error(&e) => {
            let agencies = s.kho.list_agencies().await.map_err(|e| page.error(e))?;
            let tpl = FormPage::request(&page.base, &agencies, Filled::with_error(&page, f, e));
            Ok(page.render_form(&tpl, true))
        }
        Err(e) => Err(page.error(e)),
    }
}

#[derive(Template)]
#[template(path = "feedback_item.html")]
struct ItemPage<'a> {
    b: &'a Base,
    item: FeedbackView,
    may_answer: bool,
    statuses: Vec<(&'static str, &'static str)>,
    agencies: Vec<(String, String)>,
    form: Filled,
}

async fn item_page(s: &AppState, page: &Page, f: Feedback, values: FormData, e: Option<Error>) -> PageResult {
    let may_answer = s.kho.may_answer(page.ctx(), &f);
    let agencies = s.kho.list_agencies().await.map_err(|e| page.error(e))?;
    let mut values = values;
    if values.0.is_empty() {
        // The form starts from what is stored, so that a steward edits the answer in place.
        let status = if f.status == FeedbackStatus::Open { FeedbackStatus::Answered } else { f.status };
        values.0.push(("status".into(), status.as_str().into()));
        values.0.push(("answer".into(), f.answer.clone().unwrap_or_default()));
    }
    let has_errors = e.is_some();
    let form = match e {
        Some(e) => Filled::with_error(page, values, e),
        None => Filled { values, ..Default::default() },
    };
    let tpl = ItemPage {
        item: views(s, &page.base, vec![f]).await.remove(0),
        b: &page.base,
        may_answer,
        statuses: status_options(&page.base, true),
        agencies: agency_options(&agencies),
        form,
    };
    Ok(page.render_form(&tpl, has_errors))
}

async fn item_of_kind(s: &AppState, page: &Page, id: &str, kind: FeedbackKind) -> Result<Feedback, super::PageError> {
    let id = id.parse::<i64>().map_err(|_| page.error(Error::not_found("feedback")))?;
    let f = s.kho.get_feedback(page.ctx(), id).await.map_err(|e| page.error(e))?;
    if f.kind != kind {
        return Err(page.error(Error::not_found("feedback")));
    }
    Ok(f)
}

pub async fn request_view(State(s): State<AppState>, page: Page, Path(id): Path<String>) -> PageResult {
    let page = page.with_active("requests");
    let f = item_of_kind(&s, &page, &id, FeedbackKind::Request).await?;
    item_page(&s, &page, f, FormData::default(), None).await
}

pub async fn report_view(State(s): State<AppState>, page: Page, Path(id): Path<String>) -> PageResult {
    let f = item_of_kind(&s, &page, &id, FeedbackKind::Problem).await?;
    item_page(&s, &page, f, FormData::default(), None).await
}

pub async fn answer_submit(State(s): State<AppState>, page: Page, Path(id): Path<i64>, f: FormData) -> PageResult {
    page.check_csrf(&f)?;
    let status = f.text("status").parse::<FeedbackStatus>().map_err(|e| page.error(e))?;
    let input = AnswerInput { status, answer: f.opt("answer"), agency: f.opt("agency"), dataset: f.opt("dataset") };
    match s.kho.answer_feedback(page.ctx(), id, input).await {
        Ok(done) => Ok(Redirect::to(&format!("{}?sent=answer", item_url(&done))).into_response()),
        Err(e) if form_error(&e) => {
            let item = s.kho.get_feedback(page.ctx(), id).await.map_err(|e| page.error(e))?;
            item_page(&s, &page, item, f, Some(e)).await
        }
        Err(e) => Err(page.error(e)),
    }
}

#[derive(Template)]
#[template(path = "inbox.html")]
struct InboxPage<'a> {
    b: &'a Base,
    items: Vec<FeedbackView>,
    total: i64,
    status: String,
    kind: String,
    statuses: Vec<(&'static str, &'static str)>,
    prev: Option<String>,
    next: Option<String>,
}

/// A steward's inbox: what the public sent their agency, open items first by default.
pub async fn inbox(State(s): State<AppState>, page: Page) -> PageResult {
    let page = page.with_active("inbox");
    page.member()?;
    let status_text = page.query("status").unwrap_or_else(|| "open".into());
    let status = match status_text.as_str() {
        "all" => None,
        other => Some(other.parse::<FeedbackStatus>().map_err(|e| page.error(e))?),
    };
    let kind_text = page.query("kind").unwrap_or_default();
    let kind = match kind_text.as_str() {
        "" => None,
        other => Some(other.parse::<FeedbackKind>().map_err(|e| page.error(e))?),
    };
    let offset = page.query("offset").and_then(|o| o.parse::<i64>().ok()).unwrap_or(0).max(0);
    let q = FeedbackQuery { kind, status, agency: None, limit: PAGE_SIZE, offset };
    let (items, total) = s.kho.inbox(page.ctx(), &q).await.map_err(|e| page.error(e))?;
    let (prev, next) = pager(&format!("/inbox?status={status_text}&kind={kind_text}"), offset, total);
    let tpl = InboxPage {
        items: views(&s, &page.base, items).await,
        b: &page.base,
        total,
        status: status_text,
        kind: kind_text,
        statuses: status_options(&page.base, true),
        prev,
        next,
    };
    Ok(page.render(&tpl))
}
