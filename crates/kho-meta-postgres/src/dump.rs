//! The metadata as rows ([`kho_meta::dump`]): read in one repeatable-read transaction (a
//! consistent snapshot while nodes keep writing), written into an empty database with the
//! native types of each column.

use futures_util::TryStreamExt;
use kho_core::{Error, Result};
use kho_meta::dump::{DumpSink, DumpStore, Kind, Table, bad_value};
use serde_json::Value;
use sqlx::Row;
use sqlx::postgres::{PgArguments, PgRow};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::{PgStore, db_err, micros, sql};

/// The column as selected: every integer width read as `bigint`, days and UUIDs as text.
fn select(name: &str, kind: Kind) -> String {
    match kind {
        Kind::Int => format!("{name}::bigint"),
        Kind::Date | Kind::Uuid => format!("{name}::text"),
        _ => name.to_string(),
    }
}

/// The placeholder of a value, cast to the column's type where it is bound as text.
fn placeholder(n: usize, kind: Kind) -> String {
    match kind {
        Kind::Date => format!("${n}::date"),
        Kind::Uuid => format!("${n}::uuid"),
        _ => format!("${n}"),
    }
}

fn dumped(row: &PgRow, i: usize, kind: Kind) -> Result<Value> {
    let v = match kind {
        Kind::Int => row.try_get::<Option<i64>, _>(i).map_err(db_err)?.map(Value::from),
        Kind::Bool => row.try_get::<Option<bool>, _>(i).map_err(db_err)?.map(Value::Bool),
        Kind::Text | Kind::Uuid | Kind::Date => row.try_get::<Option<String>, _>(i).map_err(db_err)?.map(Value::String),
        Kind::Time => match row.try_get::<Option<OffsetDateTime>, _>(i).map_err(db_err)? {
            Some(t) => Some(Value::String(
                t.to_offset(time::UtcOffset::UTC).format(&Rfc3339).map_err(|e| Error::internal(e.to_string()))?,
            )),
            None => None,
        },
        Kind::Json => row.try_get::<Option<Value>, _>(i).map_err(db_err)?,
    };
    Ok(v.unwrap_or(Value::Null))
}

fn bind<'q>(
    q: sqlx::query::Query<'q, sqlx::Postgres, PgArguments>,
    table: &Table,
    (name, kind): (&str, Kind),
    v: &Value,
) -> Result<sqlx::query::Query<'q, sqlx::Postgres, PgArguments>> {
    let bad = || bad_value(table, name, v);
    Ok(match (kind, v) {
        (Kind::Int, Value::Null) => q.bind(None::<i64>),
        (Kind::Bool, Value::Null) => q.bind(None::<bool>),
        (Kind::Time, Value::Null) => q.bind(None::<OffsetDateTime>),
        (Kind::Json, Value::Null) => q.bind(None::<Value>),
        (_, Value::Null) => q.bind(None::<String>),
        (Kind::Int, Value::Number(n)) => q.bind(n.as_i64().ok_or_else(bad)?),
        (Kind::Bool, Value::Bool(b)) => q.bind(*b),
        (Kind::Text | Kind::Uuid | Kind::Date, Value::String(s)) => q.bind(s.clone()),
        (Kind::Time, Value::String(s)) => q.bind(micros(OffsetDateTime::parse(s, &Rfc3339).map_err(|_| bad())?)),
        (Kind::Json, v) => q.bind(v.clone()),
        _ => return Err(bad()),
    })
}

#[async_trait::async_trait]
impl DumpStore for PgStore {
    async fn dump(&self, sink: &mut dyn DumpSink) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        for table in kho_meta::dump::TABLES {
            sink.table(table)?;
            let columns: Vec<String> = table.columns.iter().map(|(n, k)| select(n, *k)).collect();
            let sql = sql!("SELECT {} FROM {} ORDER BY {}", columns.join(", "), table.name, table.order_by);
            let mut rows = sqlx::query(sql).fetch(&mut *tx);
            while let Some(row) = rows.try_next().await.map_err(db_err)? {
                let values = table
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, (_, k))| dumped(&row, i, *k))
                    .collect::<Result<Vec<_>>>()?;
                sink.row(values)?;
            }
        }
        tx.rollback().await.map_err(db_err)
    }

    async fn rows_in(&self, table: &'static Table) -> Result<i64> {
        let sql = sql!("SELECT COUNT(*) FROM {}", table.name);
        sqlx::query_scalar(sql).fetch_one(&self.pool).await.map_err(db_err)
    }

    async fn load(&self, table: &'static Table, rows: &[Vec<Value>]) -> Result<()> {
        let names = table.column_names();
        let marks: Vec<String> = table.columns.iter().enumerate().map(|(i, (_, k))| placeholder(i + 1, *k)).collect();
        let sql = format!("INSERT INTO {} ({}) VALUES ({})", table.name, names.join(", "), marks.join(", "));
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        for row in rows {
            table.check_width(row)?;
            let mut q = sqlx::query(crate::safe(sql.clone()));
            for (c, v) in table.columns.iter().zip(row) {
                q = bind(q, table, *c, v)?;
            }
            q.execute(&mut *tx).await.map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn finish_load(&self) -> Result<()> {
        // Identity columns would number the next row 1 again: move them past the loaded ids.
        for table in ["agencies", "users", "api_tokens", "feedback", "dataset_ratings"] {
            let sql = sql!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) FROM {table}"
            );
            sqlx::query(sql).execute(&self.pool).await.map_err(db_err)?;
        }
        Ok(())
    }
}
