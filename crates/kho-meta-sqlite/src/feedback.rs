//! Problem reports, data requests and star ratings from the portal's visitors.

use super::*;

const FEEDBACK_COLS: &str = "id, kind, dataset_id, agency_id, category, title, body, contact, status, answer, \
     answered_by, answered_at, created_at";

fn feedback_row(r: &SqliteRow) -> Result<Feedback> {
    Ok(Feedback {
        id: get(r, "id")?,
        kind: parse_enum::<FeedbackKind>(&get::<String>(r, "kind")?)?,
        dataset_id: get(r, "dataset_id")?,
        agency_id: get(r, "agency_id")?,
        category: get::<Option<String>>(r, "category")?.as_deref().map(parse_enum::<ProblemCategory>).transpose()?,
        title: get(r, "title")?,
        body: get(r, "body")?,
        contact: get(r, "contact")?,
        status: parse_enum::<FeedbackStatus>(&get::<String>(r, "status")?)?,
        answer: get(r, "answer")?,
        answered_by: get(r, "answered_by")?,
        answered_at: parse_opt_ts(get(r, "answered_at")?)?,
        created_at: parse_ts(&get::<String>(r, "created_at")?)?,
    })
}

#[async_trait]
impl FeedbackStore for SqliteStore {
    async fn add_feedback(&self, new: &NewFeedback, at: OffsetDateTime, audit: AuditEvent) -> Result<Feedback> {
        let (_w, mut tx) = self.write().await?;
        let res = sqlx::query(
            "INSERT INTO feedback (kind, dataset_id, agency_id, category, title, body, contact, status, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, 'open', ?)",
        )
        .bind(new.kind.as_str())
        .bind(&new.dataset_id)
        .bind(new.agency_id)
        .bind(new.category.map(ProblemCategory::as_str))
        .bind(&new.title)
        .bind(&new.body)
        .bind(&new.contact)
        .bind(ts(at))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        let id = res.last_insert_rowid();
        let mut audit = audit;
        audit.object_id = id.to_string();
        append_audit_in(&mut tx, audit).await?;
        let f = reread(&mut tx, sql!("SELECT {FEEDBACK_COLS} FROM feedback WHERE id = ?"), id, feedback_row).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(f)
    }

    async fn feedback(&self, id: i64) -> Result<Option<Feedback>> {
        self.find(sql!("SELECT {FEEDBACK_COLS} FROM feedback WHERE id = ?"), Key::Id(id), feedback_row).await
    }

    async fn list_feedback(&self, f: &FeedbackFilter) -> Result<(Vec<Feedback>, i64)> {
        let statuses = vec!["?"; f.statuses.len()].join(", ");
        let status_cond = if f.statuses.is_empty() { "1 = 1".to_string() } else { format!("status IN ({statuses})") };
        let cond = format!(
            "(? IS NULL OR kind = ?) AND (? IS NULL OR dataset_id = ?) AND (? IS NULL OR agency_id = ?) AND {status_cond}"
        );
        let kind = f.kind.map(FeedbackKind::as_str);
        let count_sql = sql!("SELECT COUNT(*) FROM feedback WHERE {cond}");
        let list_sql = sql!("SELECT {FEEDBACK_COLS} FROM feedback WHERE {cond} ORDER BY id DESC LIMIT ? OFFSET ?");
        let mut count = sqlx::query_scalar::<_, i64>(count_sql)
            .bind(kind)
            .bind(kind)
            .bind(&f.dataset_id)
            .bind(&f.dataset_id)
            .bind(f.agency_id)
            .bind(f.agency_id);
        let mut list = sqlx::query(list_sql)
            .bind(kind)
            .bind(kind)
            .bind(&f.dataset_id)
            .bind(&f.dataset_id)
            .bind(f.agency_id)
            .bind(f.agency_id);
        for st in &f.statuses {
            count = count.bind(st.as_str());
            list = list.bind(st.as_str());
        }
        let total = count.fetch_one(&self.pool).await.map_err(db_err)?;
        let rows = list.bind(f.limit).bind(f.offset).fetch_all(&self.pool).await.map_err(db_err)?;
        Ok((rows.iter().map(feedback_row).collect::<Result<_>>()?, total))
    }

    async fn answer_feedback(&self, id: i64, a: &FeedbackAnswer, audit: AuditEvent) -> Result<Feedback> {
        let (_w, mut tx) = self.write().await?;
        let res = sqlx::query(
            "UPDATE feedback SET status = ?, answer = ?, agency_id = ?, dataset_id = COALESCE(?, dataset_id), \
             answered_by = ?, answered_at = ? WHERE id = ?",
        )
        .bind(a.status.as_str())
        .bind(&a.answer)
        .bind(a.agency_id)
        .bind(&a.dataset_id)
        .bind(&a.answered_by)
        .bind(ts(a.at))
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if res.rows_affected() == 0 {
            return Err(Error::not_found("feedback"));
        }
        append_audit_in(&mut tx, audit).await?;
        let f = reread(&mut tx, sql!("SELECT {FEEDBACK_COLS} FROM feedback WHERE id = ?"), id, feedback_row).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(f)
    }

    async fn add_rating(&self, dataset_id: &str, stars: i64, at: OffsetDateTime) -> Result<()> {
        let _w = self.write.lock().await;
        sqlx::query("INSERT INTO dataset_ratings (dataset_id, stars, day) VALUES (?, ?, ?)")
            .bind(dataset_id)
            .bind(stars)
            .bind(at.date().to_string())
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn rating_summary(&self, dataset_id: &str) -> Result<RatingSummary> {
        let rows: Vec<(i64, i64)> =
            sqlx::query_as("SELECT stars, COUNT(*) FROM dataset_ratings WHERE dataset_id = ? GROUP BY stars")
                .bind(dataset_id)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
        let mut summary = RatingSummary::default();
        let mut sum = 0;
        for (stars, n) in rows {
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
