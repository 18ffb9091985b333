//! The audit log (one hash chain for the whole cluster), settings and usage counts.

use async_trait::async_trait;
use kho_core::Result;
use kho_core::audit::{AuditEvent, AuditRecord, GENESIS_HASH};
use kho_meta::{AuditFilter, AuditStore, SettingsStore, UsageCount, UsageStore};
use sqlx::PgConnection;
use sqlx::postgres::PgRow;
use time::OffsetDateTime;

use crate::{PgStore, db_err, get, micros, sql};

/// The advisory lock that serialises audit appends across every connection and node ("kho
/// audit" in ASCII, so that it is recognisable in `pg_locks`).
const AUDIT_LOCK: i64 = 0x6b68_6f20_6175_6469;

/// Append one audit entry on `conn`, inside the caller's transaction. The advisory lock is held
/// until that transaction ends, so the next append anywhere reads this entry as the last one and
/// the chain never forks; entries of transactions that roll back never existed.
pub(crate) async fn append_audit_in(conn: &mut PgConnection, event: AuditEvent) -> Result<AuditRecord> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(AUDIT_LOCK).execute(&mut *conn).await.map_err(db_err)?;
    let last = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?;
    let (seq, prev_hash) = match last {
        Some(r) => (get::<i64>(&r, "seq")? + 1, get::<String>(&r, "hash")?),
        None => (1, GENESIS_HASH.to_string()),
    };
    let mut record = AuditRecord {
        seq,
        at: micros(OffsetDateTime::now_utc()),
        actor: event.actor,
        action: event.action,
        object_type: event.object_type,
        object_id: event.object_id,
        ip: event.ip,
        outcome: event.outcome,
        detail: serde_json::to_string(&event.detail)
            .map_err(|e| kho_core::Error::internal(format!("encoding: {e}")))?,
        prev_hash,
        hash: String::new(),
    };
    record.hash = record.compute_hash();
    sqlx::query(sql!("INSERT INTO audit_log ({AUDIT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"))
        .bind(record.seq)
        .bind(record.at)
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

const AUDIT_COLS: &str = "seq, at, actor, action, object_type, object_id, ip, outcome, detail, prev_hash, hash";

fn audit_row(r: &PgRow) -> Result<AuditRecord> {
    Ok(AuditRecord {
        seq: get(r, "seq")?,
        at: get(r, "at")?,
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

#[async_trait]
impl AuditStore for PgStore {
    async fn append_audit(&self, event: AuditEvent) -> Result<AuditRecord> {
        let mut tx = self.begin().await?;
        let r = append_audit_in(&mut tx, event).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(r)
    }

    async fn list_audit(&self, f: &AuditFilter) -> Result<Vec<AuditRecord>> {
        // Days are UTC days, as in the embedded store.
        let since = f.since.map(|d| d.midnight().assume_utc());
        let until = f.until.and_then(|d| d.next_day()).map(|d| d.midnight().assume_utc());
        let (by_session, by_token) = match f.actor_user_id {
            Some(id) => (Some(format!("user:{id}:%")), Some(format!("token:%:user:{id}:%"))),
            None => (None, None),
        };
        let rows = sqlx::query(sql!(
            "SELECT {AUDIT_COLS} FROM audit_log
             WHERE ($1::bigint IS NULL OR seq < $1) AND ($2::text IS NULL OR actor = $2)
               AND ($3::text IS NULL OR action = $3) AND ($4::text IS NULL OR object_id = $4)
               AND ($5::text IS NULL OR object_type = $5) AND ($6::timestamptz IS NULL OR at >= $6)
               AND ($7::timestamptz IS NULL OR at < $7)
               AND ($8::text IS NULL OR actor LIKE $8 OR actor LIKE $9)
             ORDER BY seq DESC LIMIT $10"
        ))
        .bind(f.before_seq)
        .bind(&f.actor)
        .bind(&f.action)
        .bind(&f.object_id)
        .bind(&f.object_type)
        .bind(since)
        .bind(until)
        .bind(&by_session)
        .bind(&by_token)
        .bind(f.limit)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(audit_row).collect()
    }

    async fn audit_chunk(&self, from_seq: i64, limit: i64) -> Result<Vec<AuditRecord>> {
        let rows = sqlx::query(sql!("SELECT {AUDIT_COLS} FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2"))
            .bind(from_seq)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(audit_row).collect()
    }
}

#[async_trait]
impl SettingsStore for PgStore {
    async fn setting(&self, key: &str) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)
    }

    async fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }
}

#[async_trait]
impl UsageStore for PgStore {
    async fn add_usage(&self, counts: &[UsageCount]) -> Result<()> {
        let mut tx = self.begin().await?;
        for c in counts {
            // Counts of something that is not a dataset id cannot be kept against one.
            let Some(id) = crate::uuid(&c.dataset_id) else {
                tracing::warn!(dataset = %c.dataset_id, "usage counted for an id that is not a dataset's; left out");
                continue;
            };
            sqlx::query(
                "INSERT INTO dataset_usage (dataset_id, day, views, downloads) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (dataset_id, day) DO UPDATE SET views = dataset_usage.views + excluded.views, \
                 downloads = dataset_usage.downloads + excluded.downloads",
            )
            .bind(id)
            .bind(c.day)
            .bind(c.views)
            .bind(c.downloads)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn usage_totals(&self) -> Result<Vec<(String, i64, i64)>> {
        let rows: Vec<(uuid::Uuid, i64, i64)> = sqlx::query_as(
            "SELECT dataset_id, SUM(views)::bigint, SUM(downloads)::bigint FROM dataset_usage GROUP BY dataset_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(rows.into_iter().map(|(id, v, d)| (id.to_string(), v, d)).collect())
    }
}
