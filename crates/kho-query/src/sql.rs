//! Read-only SQL over the versions a caller may read. A statement is parsed and checked before
//! anything runs: exactly one statement, a query (or EXPLAIN of one); the tables it names are
//! returned so the service can check each against the caller's rights; only those tables are
//! then registered in a fresh session, which also refuses DDL, DML and SET at planning time.
//! Reading files by path (`SELECT * FROM '/etc/passwd'`) is not enabled.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Instant;

use datafusion::catalog::MemorySchemaProvider;
use datafusion::common::TableReference;
use datafusion::execution::context::SQLOptions;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionConfig;
use datafusion::sql::parser::{DFParser, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::{Expr as SqlExpr, Select, Statement, TableFactor, Visit, Visitor};
use kho_core::{Error, ErrorCode, Result};
use serde::Serialize;

use crate::df_err;
use crate::engine::{QueryEngine, Source};
use crate::json::{FieldInfo, Records, fields_of, first_rows, records};

pub const MAX_SQL_BYTES: usize = 64 * 1024;

/// Bytes of one SQL answer as Arrow arrays (its JSON is about as large again).
pub const MAX_ANSWER_BYTES: usize = 64 << 20;

/// How deep expressions may nest (`a + b` inside `f(…)` inside `NOT …` is three). A flat chain
/// `1 + 1 + … + 1` or `a OR b OR …` parses without nesting, but it is a tree as deep as its
/// terms, and DataFusion plans, simplifies and displays expressions by recursion.
pub const MAX_EXPR_DEPTH: usize = 128;
/// Expressions in one statement, all counted.
pub const MAX_EXPR_NODES: usize = 10_000;
/// SELECT blocks in one statement (each side of a UNION, each subquery).
pub const MAX_SELECTS: usize = 64;
/// Tables and joins in one statement (each FROM item and each side of a JOIN).
pub const MAX_TABLE_FACTORS: usize = 64;

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

/// Check that `sql` is one read-only statement of a bounded shape and list the tables it reads
/// (not counting the names of its own WITH clauses).
///
/// A statement within [`MAX_SQL_BYTES`] may still parse into a tree tens of thousands of levels
/// deep, which takes more stack to walk and drop than an ordinary thread has: call this on a
/// thread with [`crate::QUERY_STACK_BYTES`] of stack, as [`QueryEngine::sql_tables`] does.
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
    check_shape(&statement)?;
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

/// Measure the statement before anything plans it: expression depth and count, SELECT blocks
/// and table factors, each against its bound (see the constants above). The walk stops at the
/// first bound passed, so it never goes deeper than the bound itself.
fn check_shape(statement: &DfStatement) -> Result<()> {
    let mut shape = Shape::default();
    let flow = match statement {
        DfStatement::Statement(s) => s.visit(&mut shape),
        DfStatement::Explain(e) => match e.statement.as_ref() {
            DfStatement::Statement(s) => s.visit(&mut shape),
            _ => ControlFlow::Continue(()),
        },
        _ => ControlFlow::Continue(()),
    };
    match flow {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

#[derive(Default)]
struct Shape {
    depth: usize,
    nodes: usize,
    selects: usize,
    factors: usize,
}

fn too_large(what: String) -> ControlFlow<Error> {
    ControlFlow::Break(Error::new(ErrorCode::QueryLimit, what))
}

impl Visitor for Shape {
    type Break = Error;

    fn pre_visit_expr(&mut self, expr: &SqlExpr) -> ControlFlow<Error> {
        if let SqlExpr::Function(f) = expr
            && let Some(e) = sized_aggregate_problem(f)
        {
            return ControlFlow::Break(e);
        }
        self.depth += 1;
        self.nodes += 1;
        if self.depth > MAX_EXPR_DEPTH {
            return too_large(format!(
                "an expression in this statement nests more than {MAX_EXPR_DEPTH} levels deep \
                 (a chain of {MAX_EXPR_DEPTH} operators such as + or OR counts as {MAX_EXPR_DEPTH}); \
                 write long lists as IN (…) or split the statement"
            ));
        }
        if self.nodes > MAX_EXPR_NODES {
            return too_large(format!("the statement has more than {MAX_EXPR_NODES} expressions"));
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, _: &SqlExpr) -> ControlFlow<Error> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, _: &Select) -> ControlFlow<Error> {
        self.selects += 1;
        if self.selects > MAX_SELECTS {
            return too_large(format!(
                "the statement has more than {MAX_SELECTS} SELECT blocks (UNION parts and subqueries)"
            ));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, _: &TableFactor) -> ControlFlow<Error> {
        self.factors += 1;
        if self.factors > MAX_TABLE_FACTORS {
            return too_large(format!(
                "the statement reads more than {MAX_TABLE_FACTORS} tables, joins and subqueries"
            ));
        }
        ControlFlow::Continue(())
    }
}

/// The largest size parameter of an approximate aggregate (TDigest centroids): the engine
/// allocates for it up front, before any memory limit sees it.
pub const MAX_AGGREGATE_SIZE: f64 = 100_000.0;

/// `approx_percentile_cont(value, percentile[, centroids])` and its kin take size parameters
/// that the engine allocates for as given: `approx_percentile_cont(x, 0.5, 10000000000)` would
/// ask for 160 GB. Each parameter must be a number no larger than [`MAX_AGGREGATE_SIZE`].
fn sized_aggregate_problem(f: &datafusion::sql::sqlparser::ast::Function) -> Option<Error> {
    use datafusion::sql::sqlparser::ast::{FunctionArg, FunctionArgExpr, FunctionArguments, UnaryOperator, Value};
    let name = f.name.0.last().map(|p| p.to_string().trim_matches('"').to_lowercase()).unwrap_or_default();
    // How many leading arguments are values (columns); the rest are parameters.
    let values = match name.as_str() {
        "approx_percentile_cont" | "approx_percentile_disc" | "approx_median" => 1,
        "approx_percentile_cont_with_weight" => 2,
        _ => return None,
    };
    let FunctionArguments::List(list) = &f.args else { return None };
    let skip = if f.within_group.is_empty() { values } else { 0 };
    for arg in list.args.iter().skip(skip) {
        let expr = match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => e,
            FunctionArg::Named { arg: FunctionArgExpr::Expr(e), .. }
            | FunctionArg::ExprNamed { arg: FunctionArgExpr::Expr(e), .. } => e,
            _ => continue,
        };
        let literal = |e: &SqlExpr| match e {
            SqlExpr::Value(v) => match &v.value {
                Value::Number(n, _) => n.parse::<f64>().ok(),
                _ => None,
            },
            _ => None,
        };
        let number = match expr {
            SqlExpr::UnaryOp { op: UnaryOperator::Minus | UnaryOperator::Plus, expr } => literal(expr),
            e => literal(e),
        };
        if !number.is_some_and(|n| n.abs() <= MAX_AGGREGATE_SIZE) {
            return Some(Error::new(
                ErrorCode::QueryLimit,
                format!(
                    "{name}: its parameters must be numbers written out, at most {MAX_AGGREGATE_SIZE} (the number of centroids, for one)"
                ),
            ));
        }
    }
    None
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
    pub(crate) async fn sql_now(&self, sql: &str, tables: &[(SqlTable, Source)]) -> Result<SqlResult> {
        let started = Instant::now();
        let config =
            SessionConfig::new().with_target_partitions(self.limits.sql_threads.max(1)).with_information_schema(false);
        // The statement's own share of the pool all queries share: whatever it holds (sorts,
        // groups, joins, aggregates' states, the values its functions build from constant
        // folding at planning to the last batch) counts against both.
        let runtime = crate::engine::statement_runtime(&self.runtime, self.limits.statement_memory_bytes())?;
        let ctx = crate::bounded::session(config, runtime);
        ctx.register_udf(crate::fold_udf());
        let catalog = ctx.catalog("datafusion").ok_or_else(|| Error::internal("default catalog missing"))?;
        for (t, source) in tables {
            let provider = self.source_table(source).await?;
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
        let df = ctx.sql_with_options(sql, options).await.map_err(df_err)?;
        // A verbose explanation prints each scan's statistics — the stored minimum and maximum
        // of every column — beneath any mask: not for tables read masked.
        let verbose = match df.logical_plan() {
            LogicalPlan::Explain(e) => e.verbose,
            LogicalPlan::Analyze(a) => a.verbose,
            _ => false,
        };
        if verbose && tables.iter().any(|(_, s)| !s.masks.is_empty()) {
            return Err(Error::new(
                ErrorCode::InvalidQuery,
                "EXPLAIN VERBOSE is not available on tables whose personal fields you read masked; use EXPLAIN",
            )
            .with_details(vec![
                kho_core::Detail::new("sql", "EXPLAIN VERBOSE shows stored values of masked fields")
                    .with_vi("không dùng được EXPLAIN VERBOSE với bảng có trường dữ liệu cá nhân đang được che; hãy dùng EXPLAIN"),
            ]));
        }
        // EXPLAIN ANALYZE must stay the root of its plan, and an explanation is a few rows.
        let explains = matches!(df.logical_plan(), LogicalPlan::Explain(_) | LogicalPlan::Analyze(_));
        let df = if explains { df } else { df.limit(0, Some(max_rows + 1)).map_err(df_err)? };
        let schema = Arc::new(df.schema().as_arrow().clone());
        // The answer is read batch by batch and bounded in size: it is copied again into JSON.
        let mut stream = df.execute_stream().await.map_err(df_err)?;
        let (mut batches, mut rows, mut bytes) = (Vec::new(), 0usize, 0usize);
        while let Some(batch) = futures_util::StreamExt::next(&mut stream).await {
            let batch = batch.map_err(df_err)?;
            rows += batch.num_rows();
            bytes += batch.get_array_memory_size();
            if bytes > MAX_ANSWER_BYTES {
                return Err(Error::new(
                    ErrorCode::QueryLimit,
                    format!(
                        "the answer is larger than {} MB; select fewer columns or rows, or shorter values",
                        MAX_ANSWER_BYTES >> 20
                    ),
                ));
            }
            batches.push(batch);
            if rows > max_rows {
                break;
            }
        }
        let truncated = rows > max_rows;
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

#[cfg(test)]
mod bounds {
    use std::time::Duration;

    use super::*;
    use crate::QueryLimits;

    fn engine(limits: QueryLimits) -> Arc<QueryEngine> {
        let dir = tempfile::tempdir().unwrap().keep();
        let store = Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir).unwrap());
        QueryEngine::new(store, "", limits).unwrap()
    }

    /// Check and run a statement over no tables; the one value of the answer.
    async fn one(engine: &Arc<QueryEngine>, sql: &str) -> Result<serde_json::Value> {
        engine.sql_tables(sql).await?;
        let r = engine.sql(sql, &[]).await?;
        let rows = r.records.values()?;
        let row = rows.first().and_then(|r| r.as_object()).cloned().unwrap_or_default();
        Ok(row.values().next().cloned().unwrap_or_default())
    }

    fn chain(term: &str, op: &str, n: usize) -> String {
        vec![term; n].join(op)
    }

    #[test]
    fn flat_chains_and_wide_statements_are_refused_before_planning() {
        // As the engine runs it: on a thread with the query stack (see `exec`).
        std::thread::Builder::new().stack_size(crate::QUERY_STACK_BYTES).spawn(refused).unwrap().join().unwrap();
    }

    fn refused() {
        for sql in [
            format!("SELECT {}", chain("1", "+", 300)),
            format!("SELECT 1 WHERE {}", chain("1=1", " OR ", 1500)),
            format!("SELECT {}", chain("'a'", " || ", 500)),
            chain("SELECT 1", " UNION ALL ", 500),
            format!("SELECT count(*) FROM {}", chain("t", ", ", 100)),
            // The longest statement accepted, all one chain: the walk stops at the bound.
            format!("SELECT {}", chain("1", "+", 32_000)),
        ] {
            let e = sql_tables(&sql).unwrap_err();
            assert_eq!(e.code, ErrorCode::QueryLimit, "{}: {e}", &sql[..40]);
        }
        let ok = format!("SELECT {}", chain("1", "+", 100));
        assert!(sql_tables(&ok).is_ok());
        let in_list =
            format!("SELECT 1 WHERE 5 IN ({})", (0..5000).map(|i| i.to_string()).collect::<Vec<_>>().join(","));
        assert!(sql_tables(&in_list).is_ok(), "a long IN list is one level deep");
    }

    #[tokio::test]
    async fn deep_statements_within_the_bounds_plan_and_run() {
        let e = engine(QueryLimits::default());
        let sql = format!("SELECT {}", chain("1", "+", MAX_EXPR_DEPTH - 2));
        assert_eq!(one(&e, &sql).await.unwrap(), serde_json::json!(MAX_EXPR_DEPTH - 2));
        let sql = format!("SELECT count(*) FROM ({})", chain("SELECT 1 AS x", " UNION ALL ", MAX_SELECTS - 1));
        assert_eq!(one(&e, &sql).await.unwrap(), serde_json::json!(MAX_SELECTS - 1));
    }

    #[tokio::test]
    async fn functions_that_grow_values_are_bounded_before_they_run() {
        let e = engine(QueryLimits { memory_bytes: 64 << 20, ..Default::default() });
        assert_eq!(one(&e, "SELECT length(repeat('x', 1000))").await.unwrap(), serde_json::json!(1000));
        assert_eq!(one(&e, "SELECT 'Hà' || ' Nội'").await.unwrap(), serde_json::json!("Hà Nội"));
        assert_eq!(one(&e, "SELECT 'a' || NULL").await.unwrap(), serde_json::Value::Null);
        assert_eq!(one(&e, "SELECT 1 || 'a'").await.unwrap(), serde_json::json!("1a"));
        assert_eq!(one(&e, "SELECT concat('a', NULL, 'b')").await.unwrap(), serde_json::json!("ab"));
        for sql in [
            "SELECT length(repeat('x', 1000000000))",
            "SELECT length(repeat('x', 2000000000))",
            "SELECT length(lpad('', 1000000000, 'x'))",
            "SELECT length(rpad('x', 2147483647))",
            "SELECT length(replace(repeat('x', 1000000), 'x', repeat('y', 1000)))",
            "SELECT length(regexp_replace(repeat('x', 100000), '', repeat('y', 1000), 'g'))",
            "SELECT length(translate(translate(translate(repeat('a', 1000000), 'a', 'ệ'), 'ệ', 'ệệ'), 'ệ', 'ệ'))",
            "SELECT length(to_char(now(), repeat('%c', 1000000)))",
            "SELECT levenshtein(repeat('x', 1000000), repeat('y', 1000000))",
            "SELECT length(overlay(repeat('x', 3000000) placing repeat('y', 3000000) from 1 for 0))",
            "SELECT length(overlay(overlay(repeat('x', 1000000) placing repeat('x', 1000000) from 1 for 0) placing repeat('x', 3000000) from 1 for 0))",
            // Doubling through common table expressions: each step is under the bound for one
            // value, together they pass the statement's share of memory.
            "WITH a AS (SELECT repeat('x', 3000000) s), b AS (SELECT s || s AS s FROM a), \
             c AS (SELECT s || s AS s FROM b) SELECT length(c.s) FROM c",
        ] {
            let err = one(&e, sql).await.unwrap_err();
            assert_eq!(err.code, ErrorCode::QueryLimit, "{sql}: {err}");
        }
        // Many values, each allowed, together past the memory the statement may use.
        let many = (0..40).map(|i| format!("length(repeat('x', 4000000)) AS c{i}")).collect::<Vec<_>>().join(", ");
        let err = one(&e, &format!("SELECT {many}")).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::QueryLimit, "{err}");
        // The engine answers afterwards, and the memory came back.
        assert_eq!(one(&e, "SELECT length(repeat('x', 4000000))").await.unwrap(), serde_json::json!(4_000_000));
    }

    #[tokio::test]
    async fn aggregates_overflows_and_answers_are_the_callers_limits_not_internal_errors() {
        let e = engine(QueryLimits { memory_bytes: 256 << 20, ..Default::default() });
        let values = (0..200).map(|i| format!("({i})")).collect::<Vec<_>>().join(",");
        let cases = [
            // The engine allocates for the centroids as asked.
            (
                "SELECT approx_percentile_cont(x, 0.5, 10000000000) FROM (VALUES (1), (2)) t(x)".to_string(),
                ErrorCode::QueryLimit,
            ),
            (
                "SELECT approx_percentile_cont(x, 0.5, 9223372036854775807) FROM (VALUES (1)) t(x)".to_string(),
                ErrorCode::QueryLimit,
            ),
            (
                "SELECT approx_percentile_cont(0.5, 10000000000) WITHIN GROUP (ORDER BY x) FROM (VALUES (1)) t(x)"
                    .to_string(),
                ErrorCode::QueryLimit,
            ),
            (
                "SELECT approx_percentile_cont(x, 0.5, CAST(1e10 AS BIGINT)) FROM (VALUES (1)) t(x)".to_string(),
                ErrorCode::QueryLimit,
            ),
            // Each value small, together past what one statement may hold or answer.
            (
                format!("SELECT length(string_agg(repeat('x', 1000000), ',')) FROM (VALUES {values}) t(x)"),
                ErrorCode::QueryLimit,
            ),
            (format!("SELECT repeat('x', 1000000) FROM (VALUES {values}) t(x)"), ErrorCode::QueryLimit),
            ("SELECT -(-9223372036854775807-1)".to_string(), ErrorCode::InvalidQuery),
            ("SELECT CAST(-9223372036854775808 AS BIGINT) / -1".to_string(), ErrorCode::InvalidQuery),
            ("SELECT CAST(1e30 AS DECIMAL(38,0)) * CAST(1e30 AS DECIMAL(38,0))".to_string(), ErrorCode::InvalidQuery),
            ("SELECT interval '2147483647 months' + interval '2147483647 months'".to_string(), ErrorCode::InvalidQuery),
        ];
        for (sql, code) in cases {
            let err = one(&e, &sql).await.unwrap_err();
            assert_eq!(err.code, code, "{sql}: {err}");
        }
        assert_eq!(
            one(&e, "SELECT approx_percentile_cont(x, 0.5, 100) FROM (VALUES (1), (3)) t(x)").await.unwrap(),
            serde_json::json!(2.0)
        );
    }

    #[tokio::test]
    async fn a_long_statement_is_stopped_at_its_time_limit() {
        let e = engine(QueryLimits { sql_timeout: Duration::from_millis(500), ..Default::default() });
        let started = std::time::Instant::now();
        let err = one(&e, "SELECT count(*) FROM generate_series(1, 100000000000)").await.unwrap_err();
        assert_eq!(err.code, ErrorCode::QueryLimit, "{err}");
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        assert_eq!(one(&e, "SELECT 2").await.unwrap(), serde_json::json!(2));
    }
}
