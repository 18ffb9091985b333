//! kho's metadata store on SQLite, the embedded default: one file, no server. Writes queue on
//! one lock in the process and take SQLite's write lock (`BEGIN IMMEDIATE`) before they read
//! anything, so each audit append sees the true previous entry, also when another process (a
//! command run beside the server) writes to the same file.
//!
//! The code is split by concern, one module per group of traits, as in the PostgreSQL store.

mod audit;
mod catalog;
mod dump;
mod feedback;
mod leases;
mod people;
mod places;
mod versions;

use audit::append_audit_in;

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
use kho_core::{Error, Result};
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
    /// The folder of the lease files (see [`leases`]).
    leases: std::path::PathBuf,
}

/// Only constant column lists, conditions and `?` placeholders are ever formatted into SQL here;
/// every value is bound, never interpolated.
fn safe(sql: String) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(sql)
}

macro_rules! sql {
    ($($t:tt)*) => { $crate::safe(format!($($t)*)) };
}
pub(crate) use sql;

fn db_err(e: sqlx::Error) -> Error {
    tracing::error!(error = %e, "metadata store error");
    match e {
        // The database cannot be reached (or every connection is busy): not the request's fault
        // and not a bug; the caller may retry.
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_) => {
            Error::store_unavailable()
        }
        e => Error::internal(format!("metadata store: {e}")),
    }
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
        let mut leases = path.as_os_str().to_owned();
        leases.push("-leases");
        Ok(SqliteStore { pool, write: Mutex::new(()), leases: leases.into() })
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

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}
