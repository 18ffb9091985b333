//! kho's metadata store on PostgreSQL, for a province that runs several kho nodes on one
//! database. It implements every trait of `kho-meta` and passes the same story as the embedded
//! SQLite store, with native types (`timestamptz`, `jsonb`, `uuid`, `boolean`, `date`).
//!
//! Nothing here relies on a lock inside one process: whatever must happen one at a time across
//! nodes is serialised by the database itself. Audit appends take a transaction-scoped advisory
//! lock before reading the chain's last entry ([`append_audit_in`]); new dictionary term
//! versions lock their term; two publishes of the same table version meet the primary key; work
//! done by one node at a time holds a session advisory lock (the `leases` module).
//!
//! The code is split by concern, one module per group of traits.

mod audit;
mod catalog;
mod dump;
mod feedback;
mod leases;
mod people;
mod places;
mod versions;

#[cfg(feature = "testing")]
pub mod testing;

use std::str::FromStr;

use kho_core::{Error, Result};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgPool, Row};
use time::OffsetDateTime;

pub(crate) use audit::append_audit_in;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The metadata store on a PostgreSQL database. Cheap to share: it holds a connection pool.
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connect to `url` (`postgres://user:password@host:port/database`, with libpq's parameters
    /// such as `sslmode`) and bring the schema up to date. Migrations take PostgreSQL's own lock,
    /// so nodes starting together migrate once.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| Error::internal(format!("database_url is not a PostgreSQL address: {e}")))?
            .application_name("kho");
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(2))
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|e| Error::internal(format!("cannot connect to the PostgreSQL metadata database: {e}")))?;
        MIGRATOR.run(&pool).await.map_err(|e| Error::internal(format!("migrating the PostgreSQL database: {e}")))?;
        Ok(PgStore { pool })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn begin(&self) -> Result<sqlx::Transaction<'_, sqlx::Postgres>> {
        self.pool.begin().await.map_err(db_err)
    }
}

/// Only constant column lists, conditions and `$n` placeholders are ever formatted into SQL here;
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
        // Connection exceptions (08…) and the server shutting down or restarting (57P…).
        sqlx::Error::Database(d) if d.code().is_some_and(|c| c.starts_with("08") || c.starts_with("57P")) => {
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

fn get<'r, T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>>(row: &'r PgRow, col: &str) -> Result<T> {
    row.try_get(col).map_err(db_err)
}

/// A text id column read back as kho writes ids (hyphenated, lower case).
fn get_id(row: &PgRow, col: &str) -> Result<String> {
    Ok(get::<uuid::Uuid>(row, col)?.to_string())
}

fn get_opt_id(row: &PgRow, col: &str) -> Result<Option<String>> {
    Ok(get::<Option<uuid::Uuid>>(row, col)?.map(|u| u.to_string()))
}

/// An id as the database holds it. kho makes every dataset, table and upload id a UUID; a
/// lookup by anything else (a slug, a mistyped address) finds nothing rather than failing.
fn uuid(id: &str) -> Option<uuid::Uuid> {
    uuid::Uuid::parse_str(id).ok()
}

/// An id about to be written, which must be a UUID.
fn uuid_in(id: &str, what: &str) -> Result<uuid::Uuid> {
    uuid(id).ok_or_else(|| Error::internal(format!("{what} id '{id}' is not a UUID")))
}

fn parse_enum<T: FromStr<Err = Error>>(s: &str) -> Result<T> {
    s.parse().map_err(|e: Error| Error::internal(format!("stored value: {}", e.message)))
}

fn from_json<T: serde::de::DeserializeOwned>(v: serde_json::Value, what: &str) -> Result<T> {
    serde_json::from_value(v).map_err(|e| Error::internal(format!("stored {what}: {e}")))
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| Error::internal(format!("encoding: {e}")))
}

/// Times are kept to the microsecond, as PostgreSQL stores them, so that what is read back equals
/// what was written (and hashed).
fn micros(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.replace_nanosecond(t.nanosecond() / 1000 * 1000).unwrap_or(t)
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// Numbered placeholders (`$1`, `$2`…) for statements assembled from optional conditions.
#[derive(Default)]
struct Placeholders(usize);

impl Placeholders {
    fn next(&mut self) -> String {
        self.0 += 1;
        format!("${}", self.0)
    }
}

/// A value bound to an assembled statement, in placeholder order.
#[derive(Clone)]
enum Bind {
    Int(i64),
    Text(String),
}

fn bind_all<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    binds: &[Bind],
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    for b in binds {
        q = match b {
            Bind::Int(i) => q.bind(*i),
            Bind::Text(t) => q.bind(t.clone()),
        };
    }
    q
}
