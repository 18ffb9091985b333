//! The audit log (one hash chain, ordered by the database's write lock), settings and usage counts.

use super::*;

/// Append one audit entry on `conn`, inside the caller's transaction.
pub(crate) async fn append_audit_in(conn: &mut SqliteConnection, event: AuditEvent) -> Result<AuditRecord> {
    let last = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?;
    let (seq, prev_hash) = match last {
        Some(r) => (get::<i64>(&r, "seq")? + 1, get::<String>(&r, "hash")?),
        None => (1, GENESIS_HASH.to_string()),
    };
    // Store the time exactly as hashed: whole microseconds survive the RFC 3339 round trip.
    let now = OffsetDateTime::now_utc();
    let at = now.replace_nanosecond(now.nanosecond() / 1000 * 1000).unwrap_or(now);
    let mut record = AuditRecord {
        seq,
        at,
        actor: event.actor,
        action: event.action,
        object_type: event.object_type,
        object_id: event.object_id,
        ip: event.ip,
        outcome: event.outcome,
        detail: to_json(&event.detail)?,
        prev_hash,
        hash: String::new(),
    };
    record.hash = record.compute_hash();
    sqlx::query(
        "INSERT INTO audit_log (seq, at, actor, action, object_type, object_id, ip, outcome, detail, prev_hash, hash)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(record.seq)
    .bind(ts(record.at))
    .bind(&record.actor)
    .bind(&record.action)
    .bind(&record.object_type)
    .bind(&record.object_id)
    .bind(&record.ip)
    .bind(&record.outcome)
    .bind(&record.detail)
    .bind(&record.prev_hash)
    .bind(&record.hash)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(record)
}

fn audit_row(r: &SqliteRow) -> Result<AuditRecord> {
    Ok(AuditRecord {
        seq: get(r, "seq")?,
        at: parse_ts(&get::<String>(r, "at")?)?,
        actor: get(r, "actor")?,
        action: get(r, "action")?,
        object_type: get(r, "object_type")?,
        object_id: get(r, "object_id")?,
        ip: get(r, "ip")?,
        outcome: get(r, "outcome")?,
        detail: get(r, "detail")?,
        prev_hash: get(r, "prev_hash")?,
        hash: get(r, "hash")?,
    })
}

const AUDIT_COLS: &str = "seq, at, actor, action, object_type, object_id, ip, outcome, detail, prev_hash, hash";

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(&self, event: AuditEvent) -> Result<AuditRecord> {
        let (_w, mut tx) = self.write().await?;
        let r = append_audit_in(&mut tx, event).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(r)
    }

    async fn list_audit(&self, f: &AuditFilter) -> Result<Vec<AuditRecord>> {
        // Times are stored as RFC 3339 in UTC, so a day bound compares as text: every entry of
        // day D starts with "D", which sorts after "D" itself and before the next day.
        let since = f.since.map(|d| d.to_string());
        let until = f.until.and_then(|d| d.next_day()).map(|d| d.to_string());
        let (by_session, by_token) = match f.actor_user_id {
            Some(id) => (Some(format!("user:{id}:%")), Some(format!("token:%:user:{id}:%"))),
            None => (None, None),
        };
        let rows = sqlx::query(sql!(
            "SELECT {AUDIT_COLS} FROM audit_log
             WHERE (? IS NULL OR seq < ?) AND (? IS NULL OR actor = ?) AND (? IS NULL OR action = ?) AND (? IS NULL OR object_id = ?)
               AND (? IS NULL OR object_type = ?) AND (? IS NULL OR at >= ?) AND (? IS NULL OR at < ?)
               AND (? IS NULL OR actor LIKE ? OR actor LIKE ?)
             ORDER BY seq DESC LIMIT ?"
        ))
        .bind(f.before_seq)
        .bind(f.before_seq)
        .bind(&f.actor)
        .bind(&f.actor)
        .bind(&f.action)
        .bind(&f.action)
        .bind(&f.object_id)
        .bind(&f.object_id)
        .bind(&f.object_type)
        .bind(&f.object_type)
        .bind(&since)
        .bind(&since)
        .bind(&until)
        .bind(&until)
        .bind(&by_session)
        .bind(&by_session)
        .bind(&by_token)
        .bind(f.limit)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(audit_row).collect()
    }

    async fn audit_chunk(&self, from_seq: i64, limit: i64) -> Result<Vec<AuditRecord>> {
        let rows = sqlx::query(sql!("SELECT {AUDIT_COLS} FROM audit_log WHERE seq >= ? ORDER BY seq LIMIT ?"))
            .bind(from_seq)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(audit_row).collect()
    }
}

#[async_trait]
impl UsageStore for SqliteStore {
    async fn add_usage(&self, counts: &[UsageCount]) -> Result<()> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        for c in counts {
            sqlx::query(
                "INSERT INTO dataset_usage (dataset_id, day, views, downloads) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (dataset_id, day) DO UPDATE SET views = views + excluded.views, \
                 downloads = downloads + excluded.downloads",
            )
            .bind(&c.dataset_id)
            .bind(c.day.to_string())
            .bind(c.views)
            .bind(c.downloads)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn usage_totals(&self) -> Result<Vec<(String, i64, i64)>> {
        sqlx::query_as("SELECT dataset_id, SUM(views), SUM(downloads) FROM dataset_usage GROUP BY dataset_id")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)
    }
}

#[async_trait]
impl SettingsStore for SqliteStore {
    async fn setting(&self, key: &str) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT value FROM settings WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)
    }

    async fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        let _w = self.write.lock().await;
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }
}
