//! Read-only SQL over the versions a caller may read. A statement is parsed and checked before
//! anything runs: exactly one statement, a query (or EXPLAIN of one); the tables it names are
//! returned so the service can check each against the caller's rights; only those tables are
//! then registered in a fresh session, which also refuses DDL, DML and SET at planning time.
//! Reading files by path (`SELECT * FROM '/etc/passwd'`) is not enabled.

use std::sync::Arc;
use std::time::Instant;

use datafusion::catalog::MemorySchemaProvider;
use datafusion::common::TableReference;
use datafusion::execution::context::SQLOptions;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::{DFParser, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::Statement;
use kho_core::{Error, ErrorCode, Result};
use serde::Serialize;

use crate::df_err;
use crate::engine::{QueryEngine, Source};
use crate::json::{FieldInfo, Records, fields_of, first_rows, records};

const MAX_SQL_BYTES: usize = 64 * 1024;

/// A table named in a statement: `"schema"."table"` or a bare `table`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SqlTable {
    pub schema: Option<String>,
    pub table: String,
}

impl std::fmt::Display for SqlTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.schema {
            Some(s) => write!(f, "\"{s}\".\"{}\"", self.table),
            None => write!(f, "\"{}\"", self.table),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SqlResult {
    pub fields: Vec<FieldInfo>,
    #[serde(skip)]
    pub records: Records,
    /// True when the answer had more rows than the limit and was cut.
    pub truncated: bool,
    pub elapsed_ms: u64,
}

fn not_read_only(kind: &str) -> Error {
    Error::new(
        ErrorCode::SqlNotReadOnly,
        format!("only read-only queries may run here (SELECT, WITH … SELECT, EXPLAIN); this statement is {kind}"),
    )
}

/// Check that `sql` is one read-only statement and list the tables it reads (not counting the
/// names of its own WITH clauses).
pub fn sql_tables(sql: &str) -> Result<Vec<SqlTable>> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(Error::new(ErrorCode::InvalidQuery, format!("sql: at most {MAX_SQL_BYTES} bytes")));
    }
    let mut statements = DFParser::parse_sql(sql).map_err(|e| Error::new(ErrorCode::InvalidQuery, e.to_string()))?;
    if statements.len() > 1 {
        return Err(Error::new(ErrorCode::SqlNotReadOnly, "send one statement at a time"));
    }
    let Some(statement) = statements.pop_front() else {
        return Err(Error::new(ErrorCode::InvalidQuery, "sql: the statement is empty"));
    };
    let query_like = match &statement {
        DfStatement::Statement(s) => match s.as_ref() {
            Statement::Query(_) => true,
            Statement::Explain { statement, analyze, .. } => {
                // EXPLAIN ANALYZE runs the statement; only a query may be explained.
                let _ = analyze;
                matches!(statement.as_ref(), Statement::Query(_))
            }
            other => return Err(not_read_only(statement_kind(other))),
        },
        DfStatement::Explain(e) => matches!(
            e.statement.as_ref(),
            DfStatement::Statement(s) if matches!(s.as_ref(), Statement::Query(_))
        ),
        DfStatement::CopyTo(_) => return Err(not_read_only("COPY … TO")),
        DfStatement::CreateExternalTable(_) => return Err(not_read_only("CREATE EXTERNAL TABLE")),
        _ => false,
    };
    if !query_like {
        return Err(not_read_only("not a query"));
    }
    let (tables, _ctes) =
        datafusion::sql::resolve::resolve_table_references(&statement, true).map_err(crate::df_err)?;
    let mut out: Vec<SqlTable> = Vec::new();
    for t in tables {
        let t = match t {
            TableReference::Bare { table } => SqlTable { schema: None, table: table.to_string() },
            TableReference::Partial { schema, table } => {
                SqlTable { schema: Some(schema.to_string()), table: table.to_string() }
            }
            TableReference::Full { catalog, schema, table } => {
                return Err(Error::new(
                    ErrorCode::InvalidQuery,
                    format!("table \"{catalog}\".\"{schema}\".\"{table}\": name tables as \"dataset\".\"table\""),
                ));
            }
        };
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out.sort_by(|a, b| (&a.schema, &a.table).cmp(&(&b.schema, &b.table)));
    Ok(out)
}

fn statement_kind(s: &Statement) -> &'static str {
    match s {
        Statement::Insert(_) => "INSERT",
        Statement::Update { .. } => "UPDATE",
        Statement::Delete(_) => "DELETE",
        Statement::CreateTable(_) => "CREATE TABLE",
        Statement::CreateView { .. } => "CREATE VIEW",
        Statement::Drop { .. } => "DROP",
        Statement::Copy { .. } => "COPY",
        Statement::Set(_) => "SET",
        _ => "not a query",
    }
}

impl QueryEngine {
    /// Run a statement already checked by [`sql_tables`], over exactly the given tables.
    pub async fn sql(&self, sql: &str, tables: &[(SqlTable, Source)]) -> Result<SqlResult> {
        let started = Instant::now();
        let config =
            SessionConfig::new().with_target_partitions(self.limits.sql_threads.max(1)).with_information_schema(false);
        let ctx = SessionContext::new_with_config_rt(config, self.runtime.clone());
        ctx.register_udf(crate::fold_udf());
        let catalog = ctx.catalog("datafusion").ok_or_else(|| Error::internal("default catalog missing"))?;
        for (t, source) in tables {
            let provider = self.table(&source.key).await?;
            let reference = match &t.schema {
                Some(schema) => {
                    if catalog.schema(schema).is_none() {
                        catalog.register_schema(schema, Arc::new(MemorySchemaProvider::new())).map_err(df_err)?;
                    }
                    TableReference::partial(schema.as_str(), t.table.as_str())
                }
                None => TableReference::bare(t.table.as_str()),
            };
            ctx.register_table(reference, provider).map_err(df_err)?;
        }
        let options = SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
        let max_rows = self.limits.sql_max_rows;
        let run = async {
            let df = ctx.sql_with_options(sql, options).await.map_err(df_err)?;
            // EXPLAIN ANALYZE must stay the root of its plan, and an explanation is a few rows.
            let explains = matches!(df.logical_plan(), LogicalPlan::Explain(_) | LogicalPlan::Analyze(_));
            let df = if explains { df } else { df.limit(0, Some(max_rows + 1)).map_err(df_err)? };
            let schema = Arc::new(df.schema().as_arrow().clone());
            let batches = df.collect().await.map_err(df_err)?;
            Ok::<_, Error>((schema, batches))
        };
        let (schema, batches) = tokio::time::timeout(self.limits.sql_timeout, run).await.map_err(|_| {
            Error::new(
                ErrorCode::QueryLimit,
                format!("the query ran longer than {} s and was stopped", self.limits.sql_timeout.as_secs_f64()),
            )
        })??;
        let truncated = batches.iter().map(|b| b.num_rows()).sum::<usize>() > max_rows;
        for (_, source) in tables {
            self.load_after_use(&source.key).await;
        }
        Ok(SqlResult {
            fields: fields_of(&schema),
            records: records(&first_rows(&batches, max_rows))?,
            truncated,
            elapsed_ms: started.elapsed().as_millis() as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_queries_pass() {
        let t = sql_tables(r#"WITH x AS (SELECT * FROM "dan-so".tinh) SELECT * FROM x JOIN b ON true"#).unwrap();
        assert_eq!(
            t,
            vec![
                SqlTable { schema: None, table: "b".into() },
                SqlTable { schema: Some("dan-so".into()), table: "tinh".into() }
            ]
        );
        for bad in [
            "INSERT INTO t VALUES (1)",
            "DELETE FROM t",
            "UPDATE t SET a = 1",
            "CREATE TABLE t (a int)",
            "DROP TABLE t",
            "COPY (SELECT 1) TO '/tmp/x.csv'",
            "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'",
            "SET datafusion.execution.batch_size = 1",
            "SELECT 1; DROP TABLE t",
        ] {
            let e = sql_tables(bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::SqlNotReadOnly, "{bad}: {e}");
        }
        assert_eq!(sql_tables("SELEC 1").unwrap_err().code, ErrorCode::InvalidQuery);
        assert_eq!(sql_tables("").unwrap_err().code, ErrorCode::InvalidQuery);
    }
}
