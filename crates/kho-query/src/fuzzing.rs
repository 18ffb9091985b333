//! The entry points the fuzzers drive (`fuzz/fuzz_targets/`), each with the properties that must
//! hold for any input: it returns, and a request it refuses is the caller's mistake (a 4xx
//! code), never an internal error. The same functions run over the seeds and their mutations
//! in the test suite (see `kho_core::fuzz`).

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use kho_core::ErrorCode;

use crate::rows::Table;
use crate::{Filter, Measure, SortKey};

fn schema() -> Schema {
    Schema::new(vec![
        Field::new("ma_xa", DataType::Utf8, true),
        Field::new("ten", DataType::Utf8, true),
        Field::new("dan_so", DataType::Int64, true),
        Field::new("dien_tich", DataType::Float64, true),
        Field::new("ngay", DataType::Date32, true),
        Field::new("luc", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        Field::new("co", DataType::Boolean, true),
    ])
}

/// The rows API's request language: one `filter=`, `q=`, `sort=` or `measure=` per line, as a
/// query string brings them, turned into the conditions run against a table.
pub fn filter(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let schema = Arc::new(schema());
    let table = Table::new(&schema);
    let (mut filters, mut q) = (Vec::new(), None);
    for line in text.lines().take(200) {
        let (key, value) = line.split_once('=').unwrap_or(("filter", line));
        let answer = match key {
            "q" => {
                q = Some(value.to_string());
                Ok(())
            }
            "sort" => SortKey::parse_list(value).map(|_| ()),
            "measure" => Measure::parse(value).map(|_| ()),
            _ => Filter::parse(value).map(|f| filters.push(f)),
        };
        if let Err(e) = answer {
            assert_eq!(e.code, ErrorCode::InvalidQuery, "{e}");
        }
    }
    match table.conditions(&filters, q.as_deref()) {
        Ok(expr) => {
            let _ = expr.map(|e| e.to_string());
        }
        Err(e) => assert_eq!(e.code, ErrorCode::InvalidQuery, "{e}"),
    }
}

/// The SQL guard: parsing, the read-only check, the shape bounds and the list of tables, on a
/// thread with the query stack, as the engine runs it.
pub fn sql(data: &[u8]) {
    let text = String::from_utf8_lossy(data).into_owned();
    let checked = std::thread::Builder::new()
        .stack_size(crate::QUERY_STACK_BYTES)
        .spawn(move || crate::sql_tables(&text))
        .expect("a thread")
        .join()
        .expect("the guard does not panic");
    if let Err(e) = checked {
        assert!(matches!(e.code, ErrorCode::InvalidQuery | ErrorCode::SqlNotReadOnly | ErrorCode::QueryLimit), "{e}");
    }
}

#[cfg(test)]
mod tests {
    fn short_run(target: &str, tokens: &[&[u8]], run: fn(&[u8])) {
        kho_core::fuzz::short_run(env!("CARGO_MANIFEST_DIR"), target, tokens, run);
    }

    #[test]
    fn filter_short_run() {
        short_run(
            "filter",
            &[
                b":in:",
                b":gte:",
                b":contains:",
                b":null:",
                b",",
                b"/",
                b"-",
                b"\nfilter=",
                b"\nq=",
                b"\nsort=-",
                b"%_\\",
            ],
            super::filter,
        );
    }

    #[test]
    fn sql_short_run() {
        short_run(
            "sql",
            &[
                b"+1",
                b" OR 1=1",
                b" UNION ALL SELECT 1",
                b"(",
                b")",
                b"repeat('x', 1000000000)",
                b"'",
                b";",
                b"\"",
                b" || ",
            ],
            super::sql,
        );
    }
}
