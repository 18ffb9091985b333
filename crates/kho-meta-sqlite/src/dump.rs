//! The metadata as rows ([`kho_meta::dump`]): read in one read transaction (in WAL mode a
//! consistent snapshot while the server keeps writing), written into an empty database.

use futures_util::TryStreamExt;
use kho_meta::dump::{DumpSink, DumpStore, Kind, Table, bad_value};
use serde_json::Value;
use sqlx::sqlite::SqliteArguments;

use super::*;

/// One stored value as its dump form.
fn dumped(row: &SqliteRow, i: usize, table: &Table, (name, kind): (&str, Kind)) -> Result<Value> {
    let v = match kind {
        Kind::Int => row.try_get::<Option<i64>, _>(i).map_err(db_err)?.map(Value::from),
        Kind::Bool => row.try_get::<Option<bool>, _>(i).map_err(db_err)?.map(Value::Bool),
        Kind::Text | Kind::Uuid | Kind::Date => row.try_get::<Option<String>, _>(i).map_err(db_err)?.map(Value::String),
        Kind::Time => match row.try_get::<Option<String>, _>(i).map_err(db_err)? {
            Some(t) => Some(Value::String(ts(parse_ts(&t)?))),
            None => None,
        },
        Kind::Json => match row.try_get::<Option<String>, _>(i).map_err(db_err)? {
            Some(t) => Some(serde_json::from_str(&t).map_err(|_| bad_value(table, name, &Value::String(t)))?),
            None => None,
        },
    };
    Ok(v.unwrap_or(Value::Null))
}

/// Bind a dumped value as this store keeps its kind.
fn bind<'q>(
    q: sqlx::query::Query<'q, sqlx::Sqlite, SqliteArguments>,
    table: &Table,
    (name, kind): (&str, Kind),
    v: &Value,
) -> Result<sqlx::query::Query<'q, sqlx::Sqlite, SqliteArguments>> {
    let bad = || bad_value(table, name, v);
    Ok(match (kind, v) {
        (_, Value::Null) => q.bind(None::<String>),
        (Kind::Int, Value::Number(n)) => q.bind(n.as_i64().ok_or_else(bad)?),
        (Kind::Bool, Value::Bool(b)) => q.bind(*b),
        (Kind::Text | Kind::Uuid | Kind::Date, Value::String(s)) => q.bind(s.clone()),
        (Kind::Time, Value::String(s)) => q.bind(ts(parse_ts(s).map_err(|_| bad())?)),
        (Kind::Json, v) => q.bind(to_json(v)?),
        _ => return Err(bad()),
    })
}

#[async_trait]
impl DumpStore for SqliteStore {
    async fn dump(&self, sink: &mut dyn DumpSink) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        for table in kho_meta::dump::TABLES {
            sink.table(table)?;
            let sql =
                sql!("SELECT {} FROM {} ORDER BY {}", table.column_names().join(", "), table.name, table.order_by);
            let mut rows = sqlx::query(sql).fetch(&mut *tx);
            while let Some(row) = rows.try_next().await.map_err(db_err)? {
                let values = table
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| dumped(&row, i, table, *c))
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
        let marks = vec!["?"; names.len()].join(", ");
        let sql = format!("INSERT INTO {} ({}) VALUES ({marks})", table.name, names.join(", "));
        let (_guard, mut tx) = self.write().await?;
        for row in rows {
            table.check_width(row)?;
            let mut q = sqlx::query(safe(sql.clone()));
            for (c, v) in table.columns.iter().zip(row) {
                q = bind(q, table, *c, v)?;
            }
            q.execute(&mut *tx).await.map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn finish_load(&self) -> Result<()> {
        // SQLite numbers new rows past the largest id present: nothing to move.
        Ok(())
    }
}
