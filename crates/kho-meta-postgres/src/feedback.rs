//! Problem reports, data requests and star ratings from the portal's visitors.

use async_trait::async_trait;
use kho_core::audit::AuditEvent;
use kho_core::model::{
    Feedback, FeedbackAnswer, FeedbackKind, FeedbackStatus, NewFeedback, ProblemCategory, RatingSummary,
};
use kho_core::{Error, Result};
use kho_meta::{FeedbackFilter, FeedbackStore};
use sqlx::postgres::PgRow;
use time::OffsetDateTime;

use crate::{PgStore, append_audit_in, db_err, get, get_opt_id, micros, parse_enum, sql, uuid};

const FEEDBACK_COLS: &str = "id, kind, dataset_id, agency_id, category, title, body, contact, status, answer, \
     answered_by, answered_at, created_at";

fn feedback_row(r: &PgRow) -> Result<Feedback> {
    Ok(Feedback {
        id: get(r, "id")?,
        kind: parse_enum::<FeedbackKind>(&get::<String>(r, "kind")?)?,
        dataset_id: get_opt_id(r, "dataset_id")?,
        agency_id: get(r, "agency_id")?,
        category: get::<Option<String>>(r, "category")?.as_deref().map(parse_enum::<ProblemCategory>).transpose()?,
        title: get(r, "title")?,
        body: get(r, "body")?,
        contact: get(r, "contact")?,
        status: parse_enum::<FeedbackStatus>(&get::<String>(r, "status")?)?,
        answer: get(r, "answer")?,
        answered_by: get(r, "answered_by")?,
        answered_at: get(r, "answered_at")?,
        created_at: get(r, "created_at")?,
    })
}

/// A dataset id given with feedback, which must be one kho made.
fn dataset_ref(id: Option<&str>) -> Result<Option<uuid::Uuid>> {
    id.map(|i| uuid(i).ok_or_else(|| Error::not_found("dataset"))).transpose()
}

#[async_trait]
impl FeedbackStore for PgStore {
    async fn add_feedback(&self, new: &NewFeedback, at: OffsetDateTime, audit: AuditEvent) -> Result<Feedback> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(sql!(
            "INSERT INTO feedback (kind, dataset_id, agency_id, category, title, body, contact, status, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8) RETURNING {FEEDBACK_COLS}"
        ))
        .bind(new.kind.as_str())
        .bind(dataset_ref(new.dataset_id.as_deref())?)
        .bind(new.agency_id)
        .bind(new.category.map(ProblemCategory::as_str))
        .bind(&new.title)
        .bind(&new.body)
        .bind(&new.contact)
        .bind(micros(at))
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        let f = feedback_row(&row)?;
        let mut audit = audit;
        audit.object_id = f.id.to_string();
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(f)
    }

    async fn feedback(&self, id: i64) -> Result<Option<Feedback>> {
        let row = sqlx::query(sql!("SELECT {FEEDBACK_COLS} FROM feedback WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(feedback_row).transpose()
    }

    async fn list_feedback(&self, f: &FeedbackFilter) -> Result<(Vec<Feedback>, i64)> {
        let cond = "($1::text IS NULL OR kind = $1) AND ($2::uuid IS NULL OR dataset_id = $2)
             AND ($3::bigint IS NULL OR agency_id = $3) AND (cardinality($4::text[]) = 0 OR status = ANY($4))";
        let kind = f.kind.map(FeedbackKind::as_str);
        // A dataset id kho never made has no feedback.
        let dataset = match f.dataset_id.as_deref() {
            Some(d) => match uuid(d) {
                Some(u) => Some(u),
                None => return Ok((Vec::new(), 0)),
            },
            None => None,
        };
        let statuses: Vec<&str> = f.statuses.iter().map(|s| s.as_str()).collect();
        let total: i64 = sqlx::query_scalar(sql!("SELECT COUNT(*) FROM feedback WHERE {cond}"))
            .bind(kind)
            .bind(dataset)
            .bind(f.agency_id)
            .bind(&statuses)
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        let rows =
            sqlx::query(sql!("SELECT {FEEDBACK_COLS} FROM feedback WHERE {cond} ORDER BY id DESC LIMIT $5 OFFSET $6"))
                .bind(kind)
                .bind(dataset)
                .bind(f.agency_id)
                .bind(&statuses)
                .bind(f.limit)
                .bind(f.offset)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
        Ok((rows.iter().map(feedback_row).collect::<Result<_>>()?, total))
    }

    async fn answer_feedback(&self, id: i64, a: &FeedbackAnswer, audit: AuditEvent) -> Result<Feedback> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(sql!(
            "UPDATE feedback SET status = $1, answer = $2, agency_id = $3, dataset_id = COALESCE($4, dataset_id),
             answered_by = $5, answered_at = $6 WHERE id = $7 RETURNING {FEEDBACK_COLS}"
        ))
        .bind(a.status.as_str())
        .bind(&a.answer)
        .bind(a.agency_id)
        .bind(dataset_ref(a.dataset_id.as_deref())?)
        .bind(&a.answered_by)
        .bind(micros(a.at))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?
        .ok_or_else(|| Error::not_found("feedback"))?;
        let f = feedback_row(&row)?;
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(f)
    }

    async fn add_rating(&self, dataset_id: &str, stars: i64, at: OffsetDateTime) -> Result<()> {
        let id = uuid(dataset_id).ok_or_else(|| Error::not_found("dataset"))?;
        let stars = i16::try_from(stars).map_err(|_| Error::internal(format!("{stars} stars")))?;
        sqlx::query("INSERT INTO dataset_ratings (dataset_id, stars, day) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(stars)
            .bind(at.to_offset(time::UtcOffset::UTC).date())
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn rating_summary(&self, dataset_id: &str) -> Result<RatingSummary> {
        let mut summary = RatingSummary::default();
        let Some(id) = uuid(dataset_id) else { return Ok(summary) };
        let rows: Vec<(i16, i64)> =
            sqlx::query_as("SELECT stars, COUNT(*) FROM dataset_ratings WHERE dataset_id = $1 GROUP BY stars")
                .bind(id)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
        let mut sum = 0;
        for (stars, n) in rows {
            let stars = i64::from(stars);
            if let Some(slot) = usize::try_from(stars - 1).ok().and_then(|i| summary.stars.get_mut(i)) {
                *slot = n;
                summary.count += n;
                sum += stars * n;
            }
        }
        if summary.count > 0 {
            summary.average = sum as f64 / summary.count as f64;
        }
        Ok(summary)
    }
}
