//! kho's metadata store on SQLite, the embedded default: one file, no server. Writes are
//! serialised through one lock (SQLite has a single writer anyway), which also makes each audit
//! append see the true previous hash.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use kho_core::audit::{AuditEvent, AuditRecord, GENESIS_HASH};
use kho_core::model::{
    AdminEra, AdminUnit, Agency, AgencyKind, ApiToken, CrosswalkEntry, Dataset, DatasetInput, DatasetRevision,
    DictionaryTerm, Feedback, FeedbackAnswer, FeedbackKind, FeedbackStatus, NewAgency, NewDictionaryTerm, NewFeedback,
    ProblemCategory, RatingSummary, Resource, ResourceInput, ResourceVersion, Role, Upload, User,
};
use kho_core::text::fold;
use kho_core::{Error, ErrorCode, Result};
use kho_meta::*;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{Row, SqliteConnection, SqlitePool};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::Mutex;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub struct SqliteStore {
    pool: SqlitePool,
    write: Mutex<()>,
}

/// Only constant column lists, conditions and `?` placeholders are ever formatted into SQL here;
/// every value is bound, never interpolated.
fn safe(sql: String) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(sql)
}

macro_rules! sql {
    ($($t:tt)*) => { safe(format!($($t)*)) };
}

fn db_err(e: sqlx::Error) -> Error {
    tracing::error!(error = %e, "metadata store error");
    Error::internal(format!("metadata store: {e}"))
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| d.is_unique_violation())
}

/// A unique-constraint violation becomes the given domain error; anything else is internal.
fn unique_or(e: sqlx::Error, err: impl FnOnce() -> Error) -> Error {
    if is_unique_violation(&e) { err() } else { db_err(e) }
}

/// A key bound into a single-row lookup.
enum Key<'a> {
    Id(i64),
    Text(&'a str),
}

/// Read back the row with this id inside the caller's transaction (to return what was written).
async fn reread<T>(
    conn: &mut SqliteConnection,
    sql: sqlx::AssertSqlSafe<String>,
    id: i64,
    map: fn(&SqliteRow) -> Result<T>,
) -> Result<T> {
    let row = sqlx::query(sql).bind(id).fetch_one(&mut *conn).await.map_err(db_err)?;
    map(&row)
}

fn ts(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC).format(&Rfc3339).unwrap_or_default()
}

fn parse_ts(s: &str) -> Result<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).map_err(|e| Error::internal(format!("stored time '{s}': {e}")))
}

fn parse_opt_ts(s: Option<String>) -> Result<Option<OffsetDateTime>> {
    s.as_deref().map(parse_ts).transpose()
}

fn get<'r, T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>>(row: &'r SqliteRow, col: &str) -> Result<T> {
    row.try_get(col).map_err(db_err)
}

fn parse_enum<T: FromStr<Err = Error>>(s: &str) -> Result<T> {
    s.parse().map_err(|e: Error| Error::internal(format!("stored value: {}", e.message)))
}

fn json<T: serde::de::DeserializeOwned>(s: &str, what: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| Error::internal(format!("stored {what}: {e}")))
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::internal(format!("encoding: {e}")))
}

impl SqliteStore {
    /// Open (creating if needed) the database file and bring its schema up to date.
    pub async fn open(path: &Path) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(|e| Error::internal(format!("cannot open metadata database {}: {e}", path.display())))?;
        MIGRATOR.run(&pool).await.map_err(|e| Error::internal(format!("migrating {}: {e}", path.display())))?;
        Ok(SqliteStore { pool, write: Mutex::new(()) })
    }

    /// One row by key, or none.
    async fn find<T>(
        &self,
        sql: sqlx::AssertSqlSafe<String>,
        key: Key<'_>,
        map: fn(&SqliteRow) -> Result<T>,
    ) -> Result<Option<T>> {
        let q = sqlx::query(sql);
        let q = match key {
            Key::Id(id) => q.bind(id),
            Key::Text(t) => q.bind(t.to_string()),
        };
        let row = q.fetch_optional(&self.pool).await.map_err(db_err)?;
        row.as_ref().map(map).transpose()
    }

    /// Start a write: take the process-wide write lock, then an immediate (write-locking)
    /// transaction, so that concurrent writers queue instead of failing.
    async fn write(&self) -> Result<(tokio::sync::MutexGuard<'_, ()>, sqlx::Transaction<'_, sqlx::Sqlite>)> {
        let guard = self.write.lock().await;
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
        Ok((guard, tx))
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Append one audit entry on `conn`, inside the caller's transaction.
async fn append_audit_in(conn: &mut SqliteConnection, event: AuditEvent) -> Result<AuditRecord> {
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

fn crosswalk_row(r: &SqliteRow) -> Result<CrosswalkEntry> {
    Ok(CrosswalkEntry {
        old_code: get(r, "old_code")?,
        new_code: get(r, "new_code")?,
        partial: get::<i64>(r, "partial")? != 0,
    })
}

fn unit_row(r: &SqliteRow) -> Result<AdminUnit> {
    Ok(AdminUnit {
        code: get(r, "code")?,
        era: parse_enum(&get::<String>(r, "era")?)?,
        level: parse_enum(&get::<String>(r, "level")?)?,
        name: get(r, "name")?,
        full_name: get(r, "full_name")?,
        name_en: get(r, "name_en")?,
        unit_type: get(r, "unit_type")?,
        unit_type_en: get(r, "unit_type_en")?,
        parent_code: get(r, "parent_code")?,
    })
}

fn agency_row(r: &SqliteRow) -> Result<Agency> {
    Ok(Agency {
        id: get(r, "id")?,
        code: get(r, "code")?,
        name: get(r, "name")?,
        name_en: get(r, "name_en")?,
        kind: parse_enum::<AgencyKind>(&get::<String>(r, "kind")?)?,
        parent_id: get(r, "parent_id")?,
        admin_unit_code: get(r, "admin_unit_code")?,
        created_at: parse_ts(&get::<String>(r, "created_at")?)?,
    })
}

fn user_row(r: &SqliteRow) -> Result<User> {
    Ok(User {
        id: get(r, "id")?,
        username: get(r, "username")?,
        display_name: get(r, "display_name")?,
        email: get(r, "email")?,
        agency_id: get(r, "agency_id")?,
        role: parse_enum::<Role>(&get::<String>(r, "role")?)?,
        active: get::<i64>(r, "active")? != 0,
        must_change_password: get::<i64>(r, "must_change_password")? != 0,
        created_at: parse_ts(&get::<String>(r, "created_at")?)?,
    })
}

fn token_row(r: &SqliteRow) -> Result<ApiToken> {
    Ok(ApiToken {
        id: get(r, "id")?,
        name: get(r, "name")?,
        prefix: get(r, "prefix")?,
        user_id: get(r, "user_id")?,
        agency_id: get(r, "agency_id")?,
        role: parse_enum::<Role>(&get::<String>(r, "role")?)?,
        created_at: parse_ts(&get::<String>(r, "created_at")?)?,
        expires_at: parse_opt_ts(get(r, "expires_at")?)?,
        revoked_at: parse_opt_ts(get(r, "revoked_at")?)?,
        last_used_at: parse_opt_ts(get(r, "last_used_at")?)?,
    })
}

fn term_row(r: &SqliteRow) -> Result<DictionaryTerm> {
    Ok(DictionaryTerm {
        name: get(r, "name")?,
        version: get(r, "version")?,
        title: get(r, "title")?,
        title_en: get(r, "title_en")?,
        description: get(r, "description")?,
        description_en: get(r, "description_en")?,
        field_type: get(r, "field_type")?,
        format: get(r, "format")?,
        constraints: json(&get::<String>(r, "constraints")?, "constraints")?,
        references: get(r, "refs")?,
        examples: json(&get::<String>(r, "examples")?, "examples")?,
        personal: get(r, "personal")?,
        created_at: parse_ts(&get::<String>(r, "created_at")?)?,
    })
}

const UNIT_COLS: &str = "era, code, level, name, full_name, name_en, unit_type, unit_type_en, parent_code";

#[async_trait]
impl AdminUnitStore for SqliteStore {
    async fn admin_unit_count(&self) -> Result<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM admin_units").fetch_one(&self.pool).await.map_err(db_err)
    }

    async fn load_admin_units(&self, units: &[AdminUnit], crosswalk: &[CrosswalkEntry]) -> Result<()> {
        let (_w, mut tx) = self.write().await?;
        sqlx::query("DELETE FROM admin_units").execute(&mut *tx).await.map_err(db_err)?;
        sqlx::query("DELETE FROM admin_crosswalk").execute(&mut *tx).await.map_err(db_err)?;
        for u in units {
            sqlx::query(sql!(
                "INSERT INTO admin_units ({UNIT_COLS}, name_folded) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ))
            .bind(u.era.as_str())
            .bind(&u.code)
            .bind(u.level.as_str())
            .bind(&u.name)
            .bind(&u.full_name)
            .bind(&u.name_en)
            .bind(&u.unit_type)
            .bind(&u.unit_type_en)
            .bind(&u.parent_code)
            .bind(fold(&u.full_name))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        for c in crosswalk {
            sqlx::query("INSERT INTO admin_crosswalk (old_code, new_code, partial) VALUES (?, ?, ?)")
                .bind(&c.old_code)
                .bind(&c.new_code)
                .bind(c.partial as i64)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn admin_unit(&self, era: AdminEra, code: &str) -> Result<Option<AdminUnit>> {
        let row = sqlx::query(sql!("SELECT {UNIT_COLS} FROM admin_units WHERE era = ? AND code = ?"))
            .bind(era.as_str())
            .bind(code)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(unit_row).transpose()
    }

    async fn list_admin_units(&self, f: &AdminUnitFilter) -> Result<(Vec<AdminUnit>, i64)> {
        let mut conds = vec!["1 = 1".to_string()];
        let mut binds: Vec<String> = Vec::new();
        if let Some(era) = f.era {
            conds.push("era = ?".into());
            binds.push(era.as_str().into());
        }
        if let Some(level) = f.level {
            conds.push("level = ?".into());
            binds.push(level.as_str().into());
        }
        if let Some(p) = &f.parent_code {
            conds.push("parent_code = ?".into());
            binds.push(p.clone());
        }
        if let Some(q) = &f.q {
            for word in fold(q).split_whitespace() {
                conds.push("(name_folded LIKE ? ESCAPE '\\' OR code = ?)".into());
                binds.push(format!("%{}%", escape_like(word)));
                binds.push(word.to_string());
            }
        }
        let where_ = conds.join(" AND ");
        let count_sql = format!("SELECT COUNT(*) FROM admin_units WHERE {where_}");
        let mut count = sqlx::query_scalar::<_, i64>(safe(count_sql));
        for b in &binds {
            count = count.bind(b);
        }
        let total = count.fetch_one(&self.pool).await.map_err(db_err)?;
        let sql = format!(
            "SELECT {UNIT_COLS} FROM admin_units WHERE {where_} ORDER BY era, level DESC, code LIMIT ? OFFSET ?"
        );
        let mut q = sqlx::query(safe(sql));
        for b in &binds {
            q = q.bind(b);
        }
        let rows = q.bind(f.limit).bind(f.offset).fetch_all(&self.pool).await.map_err(db_err)?;
        Ok((rows.iter().map(unit_row).collect::<Result<_>>()?, total))
    }

    async fn crosswalk_all(&self) -> Result<Vec<CrosswalkEntry>> {
        let rows = sqlx::query("SELECT old_code, new_code, partial FROM admin_crosswalk ORDER BY old_code, new_code")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(crosswalk_row).collect()
    }

    async fn crosswalk_from(&self, old_code: &str) -> Result<Vec<CrosswalkEntry>> {
        let rows =
            sqlx::query("SELECT old_code, new_code, partial FROM admin_crosswalk WHERE old_code = ? ORDER BY new_code")
                .bind(old_code)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
        rows.iter().map(crosswalk_row).collect()
    }
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

const AGENCY_COLS: &str = "id, code, name, name_en, kind, parent_id, admin_unit_code, created_at";

#[async_trait]
impl AgencyStore for SqliteStore {
    async fn create_agency(&self, new: &NewAgency, audit: AuditEvent) -> Result<Agency> {
        let (_w, mut tx) = self.write().await?;
        let res = sqlx::query(
            "INSERT INTO agencies (code, name, name_en, kind, parent_id, admin_unit_code, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&new.code)
        .bind(&new.name)
        .bind(&new.name_en)
        .bind(new.kind.as_str())
        .bind(new.parent_id)
        .bind(&new.admin_unit_code)
        .bind(ts(OffsetDateTime::now_utc()))
        .execute(&mut *tx)
        .await;
        let id = match res {
            Ok(r) => r.last_insert_rowid(),
            Err(e) => {
                return Err(unique_or(e, || {
                    Error::new(ErrorCode::SlugTaken, format!("agency code '{}' is already in use", new.code))
                }));
            }
        };
        let mut audit = audit;
        audit.object_id = id.to_string();
        append_audit_in(&mut tx, audit).await?;
        let agency = reread(&mut tx, sql!("SELECT {AGENCY_COLS} FROM agencies WHERE id = ?"), id, agency_row).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(agency)
    }

    async fn update_agency(&self, id: i64, new: &NewAgency, audit: AuditEvent) -> Result<Agency> {
        let (_w, mut tx) = self.write().await?;
        let res = sqlx::query(
            "UPDATE agencies SET code = ?, name = ?, name_en = ?, kind = ?, parent_id = ?, admin_unit_code = ? WHERE id = ?",
        )
        .bind(&new.code)
        .bind(&new.name)
        .bind(&new.name_en)
        .bind(new.kind.as_str())
        .bind(new.parent_id)
        .bind(&new.admin_unit_code)
        .bind(id)
        .execute(&mut *tx)
        .await;
        match res {
            Ok(r) if r.rows_affected() == 0 => return Err(Error::not_found("agency")),
            Ok(_) => {}
            Err(e) => {
                return Err(unique_or(e, || {
                    Error::new(ErrorCode::SlugTaken, format!("agency code '{}' is already in use", new.code))
                }));
            }
        }
        append_audit_in(&mut tx, audit).await?;
        let agency = reread(&mut tx, sql!("SELECT {AGENCY_COLS} FROM agencies WHERE id = ?"), id, agency_row).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(agency)
    }

    async fn agency(&self, id: i64) -> Result<Option<Agency>> {
        self.find(sql!("SELECT {AGENCY_COLS} FROM agencies WHERE id = ?"), Key::Id(id), agency_row).await
    }

    async fn agency_by_code(&self, code: &str) -> Result<Option<Agency>> {
        self.find(sql!("SELECT {AGENCY_COLS} FROM agencies WHERE code = ?"), Key::Text(code), agency_row).await
    }

    async fn list_agencies(&self) -> Result<Vec<Agency>> {
        let rows = sqlx::query(sql!("SELECT {AGENCY_COLS} FROM agencies ORDER BY id"))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(agency_row).collect()
    }
}

const USER_COLS: &str = "id, username, display_name, email, agency_id, role, active, must_change_password, created_at";

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, new: &NewUserRecord, audit: AuditEvent) -> Result<User> {
        let (_w, mut tx) = self.write().await?;
        let res = sqlx::query(
            "INSERT INTO users (username, display_name, email, agency_id, role, active, password_hash, must_change_password, created_at)
             VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?)",
        )
        .bind(&new.username)
        .bind(&new.display_name)
        .bind(&new.email)
        .bind(new.agency_id)
        .bind(new.role.as_str())
        .bind(&new.password_hash)
        .bind(new.must_change_password as i64)
        .bind(ts(OffsetDateTime::now_utc()))
        .execute(&mut *tx)
        .await;
        let id = match res {
            Ok(r) => r.last_insert_rowid(),
            Err(e) if is_unique_violation(&e) => {
                return Err(Error::new(
                    ErrorCode::UsernameTaken,
                    format!("username '{}' is already taken", new.username),
                ));
            }
            Err(e) => return Err(db_err(e)),
        };
        let mut audit = audit;
        audit.object_id = id.to_string();
        append_audit_in(&mut tx, audit).await?;
        let user = reread(&mut tx, sql!("SELECT {USER_COLS} FROM users WHERE id = ?"), id, user_row).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(user)
    }

    async fn update_user(&self, id: i64, u: &UserUpdate, audit: AuditEvent) -> Result<User> {
        let (_w, mut tx) = self.write().await?;
        let row = sqlx::query(sql!("SELECT {USER_COLS}, password_hash FROM users WHERE id = ?"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?
            .ok_or_else(|| Error::not_found("user"))?;
        let cur = user_row(&row)?;
        let hash: String = get(&row, "password_hash")?;
        sqlx::query("UPDATE users SET display_name = ?, email = ?, agency_id = ?, role = ?, active = ?, password_hash = ?, must_change_password = ? WHERE id = ?")
            .bind(u.display_name.clone().unwrap_or(cur.display_name))
            .bind(u.email.clone().unwrap_or(cur.email))
            .bind(u.agency_id.unwrap_or(cur.agency_id))
            .bind(u.role.unwrap_or(cur.role).as_str())
            .bind(u.active.unwrap_or(cur.active) as i64)
            .bind(u.password_hash.clone().unwrap_or(hash))
            .bind(u.must_change_password.unwrap_or(cur.must_change_password) as i64)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        append_audit_in(&mut tx, audit).await?;
        let user = reread(&mut tx, sql!("SELECT {USER_COLS} FROM users WHERE id = ?"), id, user_row).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(user)
    }

    async fn user(&self, id: i64) -> Result<Option<User>> {
        self.find(sql!("SELECT {USER_COLS} FROM users WHERE id = ?"), Key::Id(id), user_row).await
    }

    async fn user_credentials(&self, username: &str) -> Result<Option<UserCredentials>> {
        let row = sqlx::query(sql!("SELECT {USER_COLS}, password_hash FROM users WHERE username = ?"))
            .bind(username)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        match row {
            None => Ok(None),
            Some(r) => Ok(Some(UserCredentials { user: user_row(&r)?, password_hash: get(&r, "password_hash")? })),
        }
    }

    async fn list_users(&self, agency_id: Option<i64>) -> Result<Vec<User>> {
        let rows =
            sqlx::query(sql!("SELECT {USER_COLS} FROM users WHERE (? IS NULL OR agency_id = ?) ORDER BY username"))
                .bind(agency_id)
                .bind(agency_id)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
        rows.iter().map(user_row).collect()
    }

    async fn user_count(&self) -> Result<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await.map_err(db_err)
    }
}

#[async_trait]
impl LoginThrottleStore for SqliteStore {
    async fn record_login_failure(&self, key: &str, at: OffsetDateTime) -> Result<()> {
        let _w = self.write.lock().await;
        sqlx::query("INSERT INTO login_failures (key, at) VALUES (?, ?)")
            .bind(key)
            .bind(ts(at))
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn login_failures_since(&self, key: &str, since: OffsetDateTime) -> Result<(i64, Option<OffsetDateTime>)> {
        let row = sqlx::query("SELECT COUNT(*) AS n, MAX(at) AS last FROM login_failures WHERE key = ? AND at >= ?")
            .bind(key)
            .bind(ts(since))
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        Ok((get(&row, "n")?, parse_opt_ts(get(&row, "last")?)?))
    }

    async fn clear_login_failures(&self, key: &str) -> Result<()> {
        let _w = self.write.lock().await;
        sqlx::query("DELETE FROM login_failures WHERE key = ?").bind(key).execute(&self.pool).await.map_err(db_err)?;
        Ok(())
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create_session(&self, secret_hash: &str, r: &SessionRecord) -> Result<()> {
        let _w = self.write.lock().await;
        sqlx::query(
            "INSERT INTO sessions (secret_hash, user_id, csrf_token, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(secret_hash)
        .bind(r.user_id)
        .bind(&r.csrf_token)
        .bind(ts(r.created_at))
        .bind(ts(r.expires_at))
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn session(&self, secret_hash: &str) -> Result<Option<SessionRecord>> {
        let row = sqlx::query("SELECT user_id, csrf_token, created_at, expires_at FROM sessions WHERE secret_hash = ?")
            .bind(secret_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        match row {
            None => Ok(None),
            Some(r) => Ok(Some(SessionRecord {
                user_id: get(&r, "user_id")?,
                csrf_token: get(&r, "csrf_token")?,
                created_at: parse_ts(&get::<String>(&r, "created_at")?)?,
                expires_at: parse_ts(&get::<String>(&r, "expires_at")?)?,
            })),
        }
    }

    async fn delete_session(&self, secret_hash: &str) -> Result<()> {
        let _w = self.write.lock().await;
        sqlx::query("DELETE FROM sessions WHERE secret_hash = ?")
            .bind(secret_hash)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn delete_user_sessions(&self, user_id: i64) -> Result<()> {
        let _w = self.write.lock().await;
        sqlx::query("DELETE FROM sessions WHERE user_id = ?")
            .bind(user_id)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn purge_expired_sessions(&self, now: OffsetDateTime) -> Result<u64> {
        let _w = self.write.lock().await;
        let r = sqlx::query("DELETE FROM sessions WHERE expires_at < ?")
            .bind(ts(now))
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        sqlx::query("DELETE FROM login_failures WHERE at < ?")
            .bind(ts(now - time::Duration::days(1)))
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(r.rows_affected())
    }
}

const TOKEN_COLS: &str = "id, name, prefix, user_id, agency_id, role, created_at, expires_at, revoked_at, last_used_at";

#[async_trait]
impl TokenStore for SqliteStore {
    async fn create_token(&self, new: &NewTokenRecord, audit: AuditEvent) -> Result<ApiToken> {
        let (_w, mut tx) = self.write().await?;
        let id = sqlx::query(
            "INSERT INTO api_tokens (name, prefix, secret_hash, user_id, agency_id, role, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&new.name)
        .bind(&new.prefix)
        .bind(&new.secret_hash)
        .bind(new.user_id)
        .bind(new.agency_id)
        .bind(new.role.as_str())
        .bind(ts(OffsetDateTime::now_utc()))
        .bind(new.expires_at.map(ts))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?
        .last_insert_rowid();
        let mut audit = audit;
        audit.object_id = id.to_string();
        append_audit_in(&mut tx, audit).await?;
        let token = reread(&mut tx, sql!("SELECT {TOKEN_COLS} FROM api_tokens WHERE id = ?"), id, token_row).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(token)
    }

    async fn token_by_secret_hash(&self, secret_hash: &str) -> Result<Option<ApiToken>> {
        self.find(sql!("SELECT {TOKEN_COLS} FROM api_tokens WHERE secret_hash = ?"), Key::Text(secret_hash), token_row)
            .await
    }

    async fn token(&self, id: i64) -> Result<Option<ApiToken>> {
        self.find(sql!("SELECT {TOKEN_COLS} FROM api_tokens WHERE id = ?"), Key::Id(id), token_row).await
    }

    async fn list_tokens(&self, user_id: Option<i64>) -> Result<Vec<ApiToken>> {
        let rows =
            sqlx::query(sql!("SELECT {TOKEN_COLS} FROM api_tokens WHERE (? IS NULL OR user_id = ?) ORDER BY id"))
                .bind(user_id)
                .bind(user_id)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
        rows.iter().map(token_row).collect()
    }

    async fn revoke_token(&self, id: i64, at: OffsetDateTime, audit: AuditEvent) -> Result<ApiToken> {
        let (_w, mut tx) = self.write().await?;
        let r = sqlx::query("UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?")
            .bind(ts(at))
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if r.rows_affected() == 0 {
            return Err(Error::not_found("token"));
        }
        append_audit_in(&mut tx, audit).await?;
        let token = reread(&mut tx, sql!("SELECT {TOKEN_COLS} FROM api_tokens WHERE id = ?"), id, token_row).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(token)
    }

    async fn touch_token(&self, id: i64, at: OffsetDateTime) -> Result<()> {
        let _w = self.write.lock().await;
        sqlx::query("UPDATE api_tokens SET last_used_at = ? WHERE id = ?")
            .bind(ts(at))
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }
}

async fn load_resources(conn: &mut SqliteConnection, dataset_id: &str) -> Result<Vec<Resource>> {
    let rows = sqlx::query(
        "SELECT id, dataset_id, body, created_at, modified_at FROM resources WHERE dataset_id = ? ORDER BY position",
    )
    .bind(dataset_id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    rows.iter()
        .map(|r| {
            Ok(Resource {
                id: get(r, "id")?,
                dataset_id: get(r, "dataset_id")?,
                input: json::<ResourceInput>(&get::<String>(r, "body")?, "resource")?,
                created_at: parse_ts(&get::<String>(r, "created_at")?)?,
                modified_at: parse_ts(&get::<String>(r, "modified_at")?)?,
            })
        })
        .collect()
}

fn dataset_row(r: &SqliteRow) -> Result<Dataset> {
    let mut input: DatasetInput = json(&get::<String>(r, "body")?, "dataset")?;
    input.owner_agency_id = Some(get(r, "owner_agency_id")?);
    Ok(Dataset {
        id: get(r, "id")?,
        input,
        revision: get(r, "revision")?,
        created_at: parse_ts(&get::<String>(r, "created_at")?)?,
        modified_at: parse_ts(&get::<String>(r, "modified_at")?)?,
        resources: Vec::new(),
    })
}

fn search_text(d: &Dataset) -> String {
    let i = &d.input;
    fold(&format!(
        "{} {} {} {} {}",
        i.title,
        i.title_en.as_deref().unwrap_or(""),
        i.slug,
        i.tags.join(" "),
        i.description
    ))
}

const DATASET_COLS: &str = "id, owner_agency_id, revision, body, created_at, modified_at";

/// SQL condition (and its binds) for what a caller may list.
fn visibility_sql(v: Visibility) -> (String, Vec<i64>) {
    match v {
        Visibility::All => ("1 = 1".into(), vec![]),
        Visibility::OpenOnly => ("d.access_level = 'open'".into(), vec![]),
        Visibility::Agency(a) => (
            "(d.access_level IN ('open', 'shared') OR d.owner_agency_id = ? OR (d.access_level = 'restricted' AND EXISTS
              (SELECT 1 FROM dataset_allowed_agencies x WHERE x.dataset_id = d.id AND x.agency_id = ?)))"
                .into(),
            vec![a, a],
        ),
    }
}

#[async_trait]
impl CatalogStore for SqliteStore {
    async fn save_dataset(&self, d: &Dataset, mode: SaveMode, change: &str, audit: AuditEvent) -> Result<()> {
        let (_w, mut tx) = self.write().await?;
        let mut body = d.input.clone();
        body.owner_agency_id = None;
        let body = to_json(&body)?;
        let owner = d.owner_agency_id();
        match mode {
            SaveMode::Create => {
                let res = sqlx::query(
                    "INSERT INTO datasets (id, slug, owner_agency_id, access_level, revision, body, search_text, created_at, modified_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(&d.id)
                .bind(&d.input.slug)
                .bind(owner)
                .bind(d.input.access_level.as_str())
                .bind(d.revision)
                .bind(&body)
                .bind(search_text(d))
                .bind(ts(d.created_at))
                .bind(ts(d.modified_at))
                .execute(&mut *tx)
                .await;
                match res {
                    Ok(_) => {}
                    Err(e) if is_unique_violation(&e) => {
                        return Err(Error::new(
                            ErrorCode::SlugTaken,
                            format!("dataset slug '{}' is already in use", d.input.slug),
                        )
                        .with_details(vec![kho_core::Detail::new("slug", "is already used by another dataset")]));
                    }
                    Err(e) => return Err(db_err(e)),
                }
            }
            SaveMode::Update { expected_revision } | SaveMode::Delete { expected_revision } => {
                let deleted_at = matches!(mode, SaveMode::Delete { .. }).then(|| ts(d.modified_at));
                let res = sqlx::query(
                    "UPDATE datasets SET slug = ?, owner_agency_id = ?, access_level = ?, revision = ?, body = ?, search_text = ?,
                     modified_at = ?, deleted_at = ? WHERE id = ? AND revision = ? AND deleted_at IS NULL",
                )
                .bind(&d.input.slug)
                .bind(owner)
                .bind(d.input.access_level.as_str())
                .bind(d.revision)
                .bind(&body)
                .bind(search_text(d))
                .bind(ts(d.modified_at))
                .bind(deleted_at)
                .bind(&d.id)
                .bind(expected_revision)
                .execute(&mut *tx)
                .await;
                match res {
                    Ok(r) if r.rows_affected() == 0 => {
                        return Err(Error::new(
                            ErrorCode::Conflict,
                            format!("dataset changed since revision {expected_revision}; reload it and try again"),
                        ));
                    }
                    Ok(_) => {}
                    Err(e) if is_unique_violation(&e) => {
                        return Err(Error::new(
                            ErrorCode::SlugTaken,
                            format!("dataset slug '{}' is already in use", d.input.slug),
                        )
                        .with_details(vec![kho_core::Detail::new("slug", "is already used by another dataset")]));
                    }
                    Err(e) => return Err(db_err(e)),
                }
            }
        }
        sqlx::query("DELETE FROM dataset_allowed_agencies WHERE dataset_id = ?")
            .bind(&d.id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        for a in &d.input.allowed_agency_ids {
            sqlx::query("INSERT OR IGNORE INTO dataset_allowed_agencies (dataset_id, agency_id) VALUES (?, ?)")
                .bind(&d.id)
                .bind(a)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        sqlx::query("DELETE FROM resources WHERE dataset_id = ?")
            .bind(&d.id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        for (pos, r) in d.resources.iter().enumerate() {
            sqlx::query(
                "INSERT INTO resources (id, dataset_id, name, position, body, created_at, modified_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&r.id)
            .bind(&d.id)
            .bind(&r.input.name)
            .bind(pos as i64)
            .bind(to_json(&r.input)?)
            .bind(ts(r.created_at))
            .bind(ts(r.modified_at))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        sqlx::query(
            "INSERT INTO dataset_revisions (dataset_id, revision, change, changed_by, changed_at, snapshot) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&d.id)
        .bind(d.revision)
        .bind(change)
        .bind(&audit.actor)
        .bind(ts(d.modified_at))
        .bind(to_json(d)?)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn dataset(&self, id_or_slug: &str) -> Result<Option<Dataset>> {
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        let row =
            sqlx::query(sql!("SELECT {DATASET_COLS} FROM datasets WHERE (id = ? OR slug = ?) AND deleted_at IS NULL"))
                .bind(id_or_slug)
                .bind(id_or_slug)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db_err)?;
        let Some(row) = row else { return Ok(None) };
        let mut d = dataset_row(&row)?;
        d.input.allowed_agency_ids = sqlx::query_scalar(
            "SELECT agency_id FROM dataset_allowed_agencies WHERE dataset_id = ? ORDER BY agency_id",
        )
        .bind(&d.id)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
        d.resources = load_resources(&mut conn, &d.id).await?;
        Ok(Some(d))
    }

    async fn list_datasets(&self, f: &DatasetFilter) -> Result<(Vec<Dataset>, i64)> {
        let (vis, vis_binds) = visibility_sql(f.visibility);
        let mut conds = vec!["d.deleted_at IS NULL".to_string(), vis];
        let mut int_binds = vis_binds;
        if let Some(owner) = f.owner_agency_id {
            conds.push("d.owner_agency_id = ?".into());
            int_binds.push(owner);
        }
        let mut text_binds = Vec::new();
        if let Some(q) = &f.q {
            for word in fold(q).split_whitespace() {
                conds.push("d.search_text LIKE ? ESCAPE '\\'".into());
                text_binds.push(format!("%{}%", escape_like(word)));
            }
        }
        let where_ = conds.join(" AND ");
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        let count_sql = format!("SELECT COUNT(*) FROM datasets d WHERE {where_}");
        let mut count = sqlx::query_scalar::<_, i64>(safe(count_sql));
        for b in &int_binds {
            count = count.bind(b);
        }
        for b in &text_binds {
            count = count.bind(b);
        }
        let total = count.fetch_one(&mut *conn).await.map_err(db_err)?;
        let sql = format!(
            "SELECT {} FROM datasets d WHERE {where_} ORDER BY d.modified_at DESC, d.id LIMIT ? OFFSET ?",
            DATASET_COLS.split(", ").map(|c| format!("d.{c}")).collect::<Vec<_>>().join(", ")
        );
        let mut q = sqlx::query(safe(sql));
        for b in &int_binds {
            q = q.bind(b);
        }
        for b in &text_binds {
            q = q.bind(b);
        }
        let rows = q.bind(f.limit).bind(f.offset).fetch_all(&mut *conn).await.map_err(db_err)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let mut d = dataset_row(r)?;
            d.input.allowed_agency_ids = sqlx::query_scalar(
                "SELECT agency_id FROM dataset_allowed_agencies WHERE dataset_id = ? ORDER BY agency_id",
            )
            .bind(&d.id)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?;
            d.resources = load_resources(&mut conn, &d.id).await?;
            out.push(d);
        }
        Ok((out, total))
    }

    async fn dataset_revisions(&self, dataset_id: &str) -> Result<Vec<DatasetRevision>> {
        let rows = sqlx::query(
            "SELECT dataset_id, revision, change, changed_by, changed_at, snapshot FROM dataset_revisions
             WHERE dataset_id = ? ORDER BY revision DESC",
        )
        .bind(dataset_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(DatasetRevision {
                    dataset_id: get(r, "dataset_id")?,
                    revision: get(r, "revision")?,
                    change: get(r, "change")?,
                    changed_by: get(r, "changed_by")?,
                    changed_at: parse_ts(&get::<String>(r, "changed_at")?)?,
                    snapshot: json(&get::<String>(r, "snapshot")?, "revision")?,
                })
            })
            .collect()
    }
}

const TERM_COLS: &str = "name, version, title, title_en, description, description_en, field_type, format, constraints, refs, examples, created_at, personal";

#[async_trait]
impl DictionaryStore for SqliteStore {
    async fn add_term_version(&self, t: &NewDictionaryTerm, audit: AuditEvent) -> Result<DictionaryTerm> {
        let (_w, mut tx) = self.write().await?;
        let version: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) + 1 FROM dictionary_terms WHERE name = ?")
                .bind(&t.name)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?;
        sqlx::query(sql!("INSERT INTO dictionary_terms ({TERM_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"))
            .bind(&t.name)
            .bind(version)
            .bind(&t.title)
            .bind(&t.title_en)
            .bind(&t.description)
            .bind(&t.description_en)
            .bind(&t.field_type)
            .bind(&t.format)
            .bind(to_json(&t.constraints)?)
            .bind(&t.references)
            .bind(to_json(&t.examples)?)
            .bind(ts(OffsetDateTime::now_utc()))
            .bind(t.personal)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let mut audit = audit;
        audit.object_id = format!("{}@{version}", t.name);
        append_audit_in(&mut tx, audit).await?;
        let row = sqlx::query(sql!("SELECT {TERM_COLS} FROM dictionary_terms WHERE name = ? AND version = ?"))
            .bind(&t.name)
            .bind(version)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
        let term = term_row(&row)?;
        tx.commit().await.map_err(db_err)?;
        Ok(term)
    }

    async fn terms(&self) -> Result<Vec<DictionaryTerm>> {
        let rows = sqlx::query(sql!("SELECT {TERM_COLS} FROM dictionary_terms ORDER BY name, version"))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(term_row).collect()
    }

    async fn term_versions(&self, name: &str) -> Result<Vec<DictionaryTerm>> {
        let rows = sqlx::query(sql!("SELECT {TERM_COLS} FROM dictionary_terms WHERE name = ? ORDER BY version"))
            .bind(name)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(term_row).collect()
    }
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

const UPLOAD_COLS: &str = "id, dataset_id, resource_id, resource_name, file_name, bytes, status, rows, valid_rows, invalid_rows, report, created_by, created_at, version";
const VERSION_COLS: &str = "resource_id, version, dataset_id, rows, bytes, schema_hash, schema, object_key, quarantine_key, quarantined_rows, rows_added, rows_removed, rows_changed, upload_id, published_by, published_at, quality";

fn upload_row(r: &SqliteRow) -> Result<Upload> {
    Ok(Upload {
        id: get(r, "id")?,
        dataset_id: get(r, "dataset_id")?,
        resource_id: get(r, "resource_id")?,
        resource_name: get(r, "resource_name")?,
        file_name: get(r, "file_name")?,
        bytes: get(r, "bytes")?,
        status: get(r, "status")?,
        rows: get(r, "rows")?,
        valid_rows: get(r, "valid_rows")?,
        invalid_rows: get(r, "invalid_rows")?,
        report: json(&get::<String>(r, "report")?, "report")?,
        created_by: get(r, "created_by")?,
        created_at: parse_ts(&get::<String>(r, "created_at")?)?,
        version: get(r, "version")?,
    })
}

fn version_row(r: &SqliteRow) -> Result<ResourceVersion> {
    Ok(ResourceVersion {
        resource_id: get(r, "resource_id")?,
        version: get(r, "version")?,
        dataset_id: get(r, "dataset_id")?,
        rows: get(r, "rows")?,
        bytes: get(r, "bytes")?,
        schema_hash: get(r, "schema_hash")?,
        schema: json(&get::<String>(r, "schema")?, "schema")?,
        object_key: get(r, "object_key")?,
        quarantine_key: get(r, "quarantine_key")?,
        quarantined_rows: get(r, "quarantined_rows")?,
        rows_added: get(r, "rows_added")?,
        rows_removed: get(r, "rows_removed")?,
        rows_changed: get(r, "rows_changed")?,
        upload_id: get(r, "upload_id")?,
        quality: json(&get::<String>(r, "quality")?, "quality")?,
        published_by: get(r, "published_by")?,
        published_at: parse_ts(&get::<String>(r, "published_at")?)?,
    })
}

#[async_trait]
impl VersionStore for SqliteStore {
    async fn create_upload(&self, u: &Upload, audit: AuditEvent) -> Result<()> {
        let (_w, mut tx) = self.write().await?;
        sqlx::query(sql!("INSERT INTO uploads ({UPLOAD_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"))
            .bind(&u.id)
            .bind(&u.dataset_id)
            .bind(&u.resource_id)
            .bind(&u.resource_name)
            .bind(&u.file_name)
            .bind(u.bytes)
            .bind(&u.status)
            .bind(u.rows)
            .bind(u.valid_rows)
            .bind(u.invalid_rows)
            .bind(to_json(&u.report)?)
            .bind(&u.created_by)
            .bind(ts(u.created_at))
            .bind(u.version)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn upload(&self, id: &str) -> Result<Option<Upload>> {
        self.find(sql!("SELECT {UPLOAD_COLS} FROM uploads WHERE id = ?"), Key::Text(id), upload_row).await
    }

    async fn reject_upload(&self, id: &str, audit: AuditEvent) -> Result<()> {
        let (_w, mut tx) = self.write().await?;
        let r = sqlx::query("UPDATE uploads SET status = 'rejected' WHERE id = ? AND status = 'checked'")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if r.rows_affected() == 0 {
            return Err(Error::new(ErrorCode::Conflict, "this upload was already published or rejected"));
        }
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn add_version(&self, v: &ResourceVersion, audit: AuditEvent) -> Result<()> {
        let (_w, mut tx) = self.write().await?;
        if let Some(upload) = &v.upload_id {
            let r =
                sqlx::query("UPDATE uploads SET status = 'published', version = ? WHERE id = ? AND status = 'checked'")
                    .bind(v.version)
                    .bind(upload)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
            if r.rows_affected() == 0 {
                return Err(Error::new(ErrorCode::Conflict, "this upload was already published or rejected"));
            }
        }
        sqlx::query(sql!(
            "INSERT INTO resource_versions ({VERSION_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(&v.resource_id)
        .bind(v.version)
        .bind(&v.dataset_id)
        .bind(v.rows)
        .bind(v.bytes)
        .bind(&v.schema_hash)
        .bind(to_json(&v.schema)?)
        .bind(&v.object_key)
        .bind(&v.quarantine_key)
        .bind(v.quarantined_rows)
        .bind(v.rows_added)
        .bind(v.rows_removed)
        .bind(v.rows_changed)
        .bind(&v.upload_id)
        .bind(&v.published_by)
        .bind(ts(v.published_at))
        .bind(to_json(&v.quality)?)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            unique_or(e, || {
                Error::new(ErrorCode::Conflict, format!("version {} of this table exists already", v.version))
            })
        })?;
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn versions(&self, resource_id: &str) -> Result<Vec<ResourceVersion>> {
        let rows = sqlx::query(sql!(
            "SELECT {VERSION_COLS} FROM resource_versions WHERE resource_id = ? ORDER BY version DESC"
        ))
        .bind(resource_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(version_row).collect()
    }

    async fn version(&self, resource_id: &str, version: i64) -> Result<Option<ResourceVersion>> {
        let row =
            sqlx::query(sql!("SELECT {VERSION_COLS} FROM resource_versions WHERE resource_id = ? AND version = ?"))
                .bind(resource_id)
                .bind(version)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
        row.as_ref().map(version_row).transpose()
    }

    async fn version_object_keys(&self) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT object_key, quarantine_key FROM resource_versions")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        let mut out = Vec::new();
        for r in &rows {
            out.push(get::<String>(r, "object_key")?);
            if let Some(q) = get::<Option<String>>(r, "quarantine_key")? {
                out.push(q);
            }
        }
        Ok(out)
    }
}
