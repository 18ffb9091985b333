//! Visitors talk back: they rate a dataset, report a problem with it, or ask for data that is not
//! published yet; the agency that owns the data (or, for a request naming none, the data center)
//! answers. Reports on a dataset are seen by whoever may read the dataset; requests are public.
//! The sender's contact, if given, is seen only by those who may answer.
//!
//! Spam is kept out in layers: the web front end adds a per-address limit and a honeypot field;
//! here, lengths, a cap on links, and a contact that must look like one.

use kho_core::feedback::{BODY_MAX, BODY_MIN, TITLE_MAX, TITLE_MIN, check_contact, check_stars, check_text};
use kho_core::model::{
    Dataset, Feedback, FeedbackAnswer, FeedbackKind, FeedbackStatus, NewFeedback, ProblemCategory, RatingSummary,
};
use kho_core::policy::{self, Principal};
use kho_core::{Detail, Error, Result};
use kho_meta::FeedbackFilter;
use serde::Deserialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::{Ctx, Kho};

/// What a visitor reports about a dataset.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProblemInput {
    pub category: ProblemCategory,
    /// What is wrong and where (table, row, field), 10–4000 characters.
    pub description: String,
    /// An e-mail address or phone number for a reply; seen only by the owning agency.
    #[serde(default)]
    pub contact: Option<String>,
}

/// Data a visitor asks to be published.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestInput {
    /// 5–200 characters.
    pub title: String,
    /// What data, for what use, how often; 10–4000 characters.
    pub description: String,
    /// Code of the agency thought to hold the data; leave out if unsure and the data center routes it.
    #[serde(default)]
    pub agency: Option<String>,
    #[serde(default)]
    pub contact: Option<String>,
}

/// A steward's answer.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerInput {
    pub status: FeedbackStatus,
    /// Required unless the status is `open` or `hidden`.
    #[serde(default)]
    pub answer: Option<String>,
    /// Pass a request on to this agency (code).
    #[serde(default)]
    pub agency: Option<String>,
    /// The dataset (id or slug) that fulfils a request.
    #[serde(default)]
    pub dataset: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RatingInput {
    /// 1 to 5.
    pub stars: i64,
}

/// Which requests or inbox items to list.
#[derive(Debug, Clone, Default)]
pub struct FeedbackQuery {
    pub kind: Option<FeedbackKind>,
    pub status: Option<FeedbackStatus>,
    /// Agency code; for the inbox of an administrator, or to narrow the public request list.
    pub agency: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

/// Statuses anyone may see: everything but what a steward took down.
const PUBLIC_STATUSES: [FeedbackStatus; 4] =
    [FeedbackStatus::Open, FeedbackStatus::Answered, FeedbackStatus::Resolved, FeedbackStatus::Declined];

/// What the public sees of an item: not who sent it, nor which user answered.
fn public(mut f: Feedback) -> Feedback {
    f.contact = None;
    f.answered_by = None;
    f
}

fn clean(s: &str) -> String {
    s.trim().to_string()
}

fn clean_opt(s: Option<&str>) -> Option<String> {
    s.map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

/// A dataset's public problem reports (newest 50) and its ratings, as stored.
pub(crate) struct DatasetFeedback {
    reports: Vec<Feedback>,
    ratings: RatingSummary,
}

impl Kho {
    /// The item as the caller may see it: whole for those who may answer it; otherwise without
    /// the sender's contact, who answered, and a fulfilling dataset the caller may not read (its
    /// existence is not theirs to know).
    async fn shown(&self, ctx: &Ctx, f: Feedback) -> Result<Feedback> {
        if self.may_answer(ctx, &f) {
            return Ok(f);
        }
        let mut f = public(f);
        if f.kind == FeedbackKind::Request
            && let Some(id) = &f.dataset_id
        {
            let readable = match self.store.dataset(id).await? {
                Some(d) => policy::can_read(&ctx.principal, crate::catalog::access(&d)),
                None => false,
            };
            if !readable {
                f.dataset_id = None;
            }
        }
        Ok(f)
    }

    async fn all_shown(&self, ctx: &Ctx, items: Vec<Feedback>) -> Result<Vec<Feedback>> {
        let mut out = Vec::with_capacity(items.len());
        for f in items {
            out.push(self.shown(ctx, f).await?);
        }
        Ok(out)
    }

    /// May the caller answer this item (and see who sent it)?
    pub fn may_answer(&self, ctx: &Ctx, f: &Feedback) -> bool {
        policy::check_answer(&ctx.principal, f.agency_id).is_ok()
    }

    /// Report a problem with a dataset the caller may read; it goes to the owning agency.
    pub async fn report_problem(&self, ctx: &Ctx, dataset: &str, input: ProblemInput) -> Result<Feedback> {
        let d = self.get_dataset(ctx, dataset).await?;
        let mut problems = Vec::new();
        let body = clean(&input.description);
        check_text(&mut problems, "description", &body, BODY_MIN, BODY_MAX);
        let contact = clean_opt(input.contact.as_deref());
        if let Some(c) = &contact {
            check_contact(&mut problems, "contact", c);
        }
        if !problems.is_empty() {
            return Err(Error::validation(problems));
        }
        let new = NewFeedback {
            kind: FeedbackKind::Problem,
            dataset_id: Some(d.id.clone()),
            agency_id: Some(d.owner_agency_id()),
            category: Some(input.category),
            title: String::new(),
            body,
            contact,
        };
        self.store_feedback(ctx, new).await
    }

    /// Ask for data that is not published yet.
    pub async fn request_data(&self, ctx: &Ctx, input: RequestInput) -> Result<Feedback> {
        let mut problems = Vec::new();
        let title = clean(&input.title);
        check_text(&mut problems, "title", &title, TITLE_MIN, TITLE_MAX);
        let body = clean(&input.description);
        check_text(&mut problems, "description", &body, BODY_MIN, BODY_MAX);
        let contact = clean_opt(input.contact.as_deref());
        if let Some(c) = &contact {
            check_contact(&mut problems, "contact", c);
        }
        let agency_id = match clean_opt(input.agency.as_deref()) {
            Some(code) => match self.get_agency(&code).await {
                Ok(a) => Some(a.id),
                Err(_) => {
                    problems.push(Detail::new("agency", format!("no agency has the code '{code}'")));
                    None
                }
            },
            None => None,
        };
        if !problems.is_empty() {
            return Err(Error::validation(problems));
        }
        let new = NewFeedback {
            kind: FeedbackKind::Request,
            dataset_id: None,
            agency_id,
            category: None,
            title,
            body,
            contact,
        };
        self.store_feedback(ctx, new).await
    }

    async fn store_feedback(&self, ctx: &Ctx, new: NewFeedback) -> Result<Feedback> {
        // The sender's address is not written to the log: a public form should not keep
        // personal data the sender did not choose to give.
        let mut event = ctx.event("feedback.create", "feedback", "").detail(serde_json::json!({
            "kind": new.kind,
            "dataset_id": new.dataset_id,
            "agency_id": new.agency_id,
        }));
        if ctx.principal == Principal::Anonymous {
            event.ip = None;
        }
        let f = self.store.add_feedback(&new, OffsetDateTime::now_utc(), event).await?;
        self.dataset_feedback.forget_all();
        self.shown(ctx, f).await
    }

    /// Rate a dataset the caller may read; returns the new totals.
    pub async fn rate_dataset(&self, ctx: &Ctx, dataset: &str, stars: i64) -> Result<RatingSummary> {
        check_stars(stars)?;
        let d = self.get_dataset(ctx, dataset).await?;
        self.store.add_rating(&d.id, stars, OffsetDateTime::now_utc()).await?;
        self.dataset_feedback.forget_all();
        self.store.rating_summary(&d.id).await
    }

    /// The reports on a dataset (newest 50, not those taken down) and its ratings. The caller
    /// has already read `d` through `get_dataset`.
    ///
    /// Every view of a dataset's page shows them: they are kept per dataset for a few seconds,
    /// and dropped at once when feedback is sent or answered here. What each caller may see of
    /// them is decided on every read.
    pub async fn feedback_on(&self, ctx: &Ctx, d: &Dataset) -> Result<(Vec<Feedback>, RatingSummary)> {
        let kept = self
            .dataset_feedback
            .get(&d.id, || async {
                let filter = FeedbackFilter {
                    kind: Some(FeedbackKind::Problem),
                    dataset_id: Some(d.id.clone()),
                    statuses: PUBLIC_STATUSES.to_vec(),
                    limit: 50,
                    ..Default::default()
                };
                let (items, _) = self.store.list_feedback(&filter).await?;
                Ok(DatasetFeedback { reports: items, ratings: self.store.rating_summary(&d.id).await? })
            })
            .await?;
        Ok((self.all_shown(ctx, kept.reports.clone()).await?, kept.ratings.clone()))
    }

    /// The public list of data requests.
    pub async fn list_requests(&self, ctx: &Ctx, q: &FeedbackQuery) -> Result<(Vec<Feedback>, i64)> {
        let statuses = match q.status {
            Some(FeedbackStatus::Hidden) => {
                return Err(Error::validation(vec![Detail::new("status", "hidden requests are not listed")]));
            }
            Some(s) => vec![s],
            None => PUBLIC_STATUSES.to_vec(),
        };
        let agency_id = match &q.agency {
            Some(code) => Some(self.get_agency(code).await?.id),
            None => None,
        };
        let filter = FeedbackFilter {
            kind: Some(FeedbackKind::Request),
            agency_id,
            statuses,
            limit: q.limit,
            offset: q.offset,
            ..Default::default()
        };
        let (items, total) = self.store.list_feedback(&filter).await?;
        Ok((self.all_shown(ctx, items).await?, total))
    }

    /// What a member's agency has been sent (an administrator sees everything, or one agency's).
    pub async fn inbox(&self, ctx: &Ctx, q: &FeedbackQuery) -> Result<(Vec<Feedback>, i64)> {
        let m = ctx.principal.require_member()?;
        let agency_id = if ctx.principal.is_admin() {
            match &q.agency {
                Some(code) => Some(self.get_agency(code).await?.id),
                None => None,
            }
        } else {
            Some(m.agency_id)
        };
        let filter = FeedbackFilter {
            kind: q.kind,
            agency_id,
            statuses: q.status.into_iter().collect(),
            limit: q.limit,
            offset: q.offset,
            ..Default::default()
        };
        let (items, total) = self.store.list_feedback(&filter).await?;
        // Viewers read their agency's inbox but do not answer: they see it as the public does.
        Ok((self.all_shown(ctx, items).await?, total))
    }

    /// One item, if the caller may see it: a request (unless taken down), or a report on a
    /// dataset they may read; the answering agency sees everything addressed to it.
    pub async fn get_feedback(&self, ctx: &Ctx, id: i64) -> Result<Feedback> {
        let f = self.store.feedback(id).await?.ok_or_else(|| Error::not_found("feedback"))?;
        if self.may_answer(ctx, &f) {
            return Ok(f);
        }
        let member_of_agency = ctx.principal.member().is_some_and(|m| Some(m.agency_id) == f.agency_id);
        if f.status == FeedbackStatus::Hidden && !member_of_agency {
            return Err(Error::not_found("feedback"));
        }
        if f.kind == FeedbackKind::Problem {
            let dataset = f.dataset_id.as_deref().unwrap_or("");
            let readable = match self.store.dataset(dataset).await? {
                Some(d) => policy::can_read(&ctx.principal, crate::catalog::access(&d)),
                None => false,
            };
            if !readable && !member_of_agency {
                return Err(Error::not_found("feedback"));
            }
        }
        self.shown(ctx, f).await
    }

    /// Answer, route or take down an item addressed to the caller's agency.
    pub async fn answer_feedback(&self, ctx: &Ctx, id: i64, input: AnswerInput) -> Result<Feedback> {
        let f = self.get_feedback(ctx, id).await?;
        if let Err(e) = policy::check_answer(&ctx.principal, f.agency_id) {
            if ctx.principal.member().is_some() {
                let denied = ctx.event("feedback.answer", "feedback", id.to_string()).outcome("denied");
                self.store.append_audit(denied).await?;
            }
            return Err(e);
        }
        let mut problems = Vec::new();
        let answer = clean_opt(input.answer.as_deref());
        match &answer {
            Some(a) => check_text(&mut problems, "answer", a, 1, BODY_MAX),
            None if !matches!(input.status, FeedbackStatus::Open | FeedbackStatus::Hidden) => {
                problems.push(Detail::new("answer", "is required to answer, resolve or decline"));
            }
            None => {}
        }
        let mut agency_id = f.agency_id;
        if let Some(code) = clean_opt(input.agency.as_deref()) {
            if f.kind == FeedbackKind::Problem {
                problems.push(Detail::new("agency", "a problem report stays with the dataset's owner"));
            } else {
                match self.get_agency(&code).await {
                    Ok(a) => agency_id = Some(a.id),
                    Err(_) => problems.push(Detail::new("agency", format!("no agency has the code '{code}'"))),
                }
            }
        }
        let mut dataset_id = None;
        if let Some(ds) = clean_opt(input.dataset.as_deref()) {
            if f.kind == FeedbackKind::Problem {
                problems.push(Detail::new("dataset", "a problem report is already about its dataset"));
            } else {
                match self.store.dataset(&ds).await? {
                    Some(d) => dataset_id = Some(d.id),
                    None => problems.push(Detail::new("dataset", format!("no dataset has the id or slug '{ds}'"))),
                }
            }
        }
        if !problems.is_empty() {
            return Err(Error::validation(problems));
        }
        let by = ctx.principal.member().map_or_else(|| "system".to_string(), |m| m.username.clone());
        let event = ctx.event("feedback.answer", "feedback", id.to_string()).detail(serde_json::json!({
            "status": input.status,
            "answer": answer,
            "agency_id": agency_id,
            "dataset_id": dataset_id,
        }));
        let a = FeedbackAnswer {
            status: input.status,
            answer,
            agency_id,
            dataset_id,
            answered_by: by,
            at: OffsetDateTime::now_utc(),
        };
        let answered = self.store.answer_feedback(id, &a, event).await;
        self.dataset_feedback.forget_all();
        answered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_view_drops_personal_fields() {
        let f = Feedback {
            id: 1,
            kind: FeedbackKind::Request,
            dataset_id: None,
            agency_id: None,
            category: None,
            title: "Trường học".into(),
            body: "Danh sách trường học".into(),
            contact: Some("lan@example.vn".into()),
            status: FeedbackStatus::Answered,
            answer: Some("Đang chuẩn bị".into()),
            answered_by: Some("steward".into()),
            answered_at: None,
            created_at: OffsetDateTime::UNIX_EPOCH,
        };
        let p = public(f.clone());
        assert_eq!((p.contact, p.answered_by), (None, None));
        assert_eq!((p.answer, p.title), (f.answer, f.title));
    }
}
