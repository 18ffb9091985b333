//! Reading published versions: the rows API (filters, full-text search, sort, field selection,
//! offset and keyset paging, totals, group-by aggregates) and read-only SQL, both on DataFusion.
//!
//! This crate knows Parquet objects, not datasets or users: the service decides which versions a
//! caller may read and hands them over as [`Source`]s; SQL statements are parsed here first
//! ([`sql_tables`]) so the service can check every table they name before anything runs.
//!
//! Versions are immutable, which makes caching safe: a version that fits the cache budget is held
//! in memory as Arrow batches after its first read (one load even when many requests arrive
//! together), and the totals of filtered queries are remembered per version and filter. Larger
//! versions are scanned from Parquet through `object_store` on every query.

mod bounded;
mod engine;
mod exec;
mod fold;
#[doc(hidden)]
pub mod fuzzing;
mod json;
mod mask;
mod rows;
mod sql;
mod yielding;

pub use bounded::MAX_VALUE_BYTES;
pub use engine::{QueryEngine, QueryLimits, Source};
pub use exec::STACK_BYTES as QUERY_STACK_BYTES;
pub use fold::fold_udf;
pub use json::{FieldInfo, Records};
pub use mask::mask_udf;
pub use rows::{AggFunc, AggregateQuery, Filter, FilterOp, Measure, Page, RowsQuery, SortKey};
pub use sql::{
    MAX_EXPR_DEPTH, MAX_EXPR_NODES, MAX_SELECTS, MAX_SQL_BYTES, MAX_TABLE_FACTORS, SqlResult, SqlTable, sql_tables,
};

use datafusion::error::DataFusionError;
use kho_core::{Error, ErrorCode};

/// The one translation of DataFusion's errors: mistakes in the query are the caller's
/// (`invalid_query`), limits are `query_limit`, anything else is ours.
pub(crate) fn df_err(e: DataFusionError) -> Error {
    match e.find_root() {
        DataFusionError::SchemaError(..) | DataFusionError::Plan(_) | DataFusionError::SQL(..) => {
            Error::new(ErrorCode::InvalidQuery, clean_message(&e))
        }
        DataFusionError::NotImplemented(m) => Error::new(ErrorCode::InvalidQuery, format!("not supported: {m}")),
        DataFusionError::ResourcesExhausted(m) => {
            Error::new(ErrorCode::QueryLimit, format!("the query needs more memory than it may use ({m})"))
        }
        DataFusionError::ArrowError(a, _) => match a.as_ref() {
            arrow::error::ArrowError::CastError(m)
            | arrow::error::ArrowError::ParseError(m)
            | arrow::error::ArrowError::ComputeError(m)
            | arrow::error::ArrowError::InvalidArgumentError(m) => Error::new(ErrorCode::InvalidQuery, m.clone()),
            arrow::error::ArrowError::DivideByZero => Error::new(ErrorCode::InvalidQuery, "division by zero"),
            arrow::error::ArrowError::ArithmeticOverflow(m) => {
                Error::new(ErrorCode::InvalidQuery, format!("arithmetic overflow: {m}"))
            }
            other => Error::internal(format!("query: {other}")),
        },
        DataFusionError::Execution(m) => Error::new(ErrorCode::InvalidQuery, m.clone()),
        other => Error::internal(format!("query: {other}")),
    }
}

/// DataFusion prefixes messages with the stage that failed ("Error during planning: …"), and
/// may append backtraces or hints for developers; callers need the sentence about their query.
fn clean_message(e: &DataFusionError) -> String {
    let text = e.find_root().to_string();
    let text = text
        .trim_start_matches("Schema error: ")
        .trim_start_matches("Error during planning: ")
        .trim_start_matches("SQL error: ")
        .trim_start_matches("Optimizer rule 'type_coercion' failed\ncaused by\n");
    text.lines().next().unwrap_or_default().to_string()
}
