//! The rows API: pages of records with filters, full-text search, sort, field selection, offset
//! or keyset paging and totals; and group-by aggregates. Queries are built as DataFusion
//! expressions from parsed parts, never as SQL text, so no value can change their meaning.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::ScalarValue;
use datafusion::functions_aggregate::count::count_all;
use datafusion::functions_aggregate::expr_fn::{avg, count, max, min, sum};
use datafusion::logical_expr::{Expr, SortExpr, lit};
use datafusion::prelude::{DataFrame, ident};
use kho_core::{Detail, Error, ErrorCode, Result};
use serde::Serialize;

use crate::engine::{QueryEngine, Source};
use crate::json::{FieldInfo, Records, fields_of, records};
use crate::{df_err, fold_udf};

/// At most this many records in one page or one aggregate answer.
pub const MAX_PAGE: usize = 10_000;
/// Filters, sort keys, group fields and measures in one request. Conditions are joined into one
/// expression, and DataFusion walks expressions by recursion.
pub const MAX_FILTERS: usize = 50;
pub const MAX_SORT_KEYS: usize = 10;
pub const MAX_GROUPS: usize = 10;
pub const MAX_MEASURES: usize = 20;
const MAX_Q_CHARS: usize = 200;
const MAX_Q_WORDS: usize = 10;

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidQuery, message)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOp {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    /// One of several values (comma-separated in the text form).
    In,
    /// Empty (`null:true`) or not (`null:false`).
    Null,
    /// Text containing the value, with or without diacritics.
    Contains,
}

impl FilterOp {
    const NAMES: &'static [(&'static str, FilterOp)] = &[
        ("eq", FilterOp::Eq),
        ("ne", FilterOp::Ne),
        ("gt", FilterOp::Gt),
        ("gte", FilterOp::Gte),
        ("lt", FilterOp::Lt),
        ("lte", FilterOp::Lte),
        ("in", FilterOp::In),
        ("null", FilterOp::Null),
        ("contains", FilterOp::Contains),
    ];

    pub fn parse(s: &str) -> Option<FilterOp> {
        FilterOp::NAMES.iter().find(|(n, _)| *n == s).map(|(_, op)| *op)
    }

    pub fn name(self) -> &'static str {
        FilterOp::NAMES.iter().find(|(_, op)| *op == self).map(|(n, _)| *n).unwrap_or("eq")
    }
}

/// One condition on a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub field: String,
    pub op: FilterOp,
    pub values: Vec<String>,
}

impl Filter {
    pub fn eq(field: impl Into<String>, value: impl Into<String>) -> Filter {
        Filter { field: field.into(), op: FilterOp::Eq, values: vec![value.into()] }
    }

    /// The text form `field:op:value` (`field:value` means `eq`; `in` takes `a,b,c`).
    pub fn parse(s: &str) -> Result<Filter> {
        let (field, rest) = s.split_once(':').ok_or_else(|| {
            invalid(format!("filter '{s}': write field:op:value, e.g. ma_tinh:eq:14 or dan_so:gte:1000"))
        })?;
        let (op, value) = match rest.split_once(':') {
            Some((op, value)) if FilterOp::parse(op).is_some() => (FilterOp::parse(op).unwrap_or(FilterOp::Eq), value),
            _ => (FilterOp::Eq, rest),
        };
        if field.is_empty() {
            return Err(invalid(format!("filter '{s}': the field name is empty")));
        }
        let values =
            if op == FilterOp::In { value.split(',').map(str::to_string).collect() } else { vec![value.to_string()] };
        Ok(Filter { field: field.to_string(), op, values })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    pub field: String,
    pub descending: bool,
}

impl SortKey {
    /// `a,-b`: by a ascending, then b descending.
    pub fn parse_list(s: &str) -> Result<Vec<SortKey>> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (descending, field) = match p.strip_prefix('-') {
                    Some(f) => (true, f),
                    None => (false, p.strip_prefix('+').unwrap_or(p)),
                };
                if field.is_empty() {
                    return Err(invalid(format!("sort '{s}': a '-' must be followed by a field name")));
                }
                Ok(SortKey { field: field.to_string(), descending })
            })
            .collect()
    }
}

/// A page request. `limit` is at most [`MAX_PAGE`].
#[derive(Debug, Clone)]
pub struct RowsQuery {
    pub filters: Vec<Filter>,
    /// Words that must each appear in some text field (diacritics and case ignored).
    pub q: Option<String>,
    pub sort: Vec<SortKey>,
    pub fields: Option<Vec<String>>,
    pub limit: usize,
    pub offset: usize,
    /// The `next` cursor of the previous page (keyset paging).
    pub after: Option<String>,
    pub total: bool,
}

impl Default for RowsQuery {
    fn default() -> Self {
        RowsQuery {
            filters: Vec::new(),
            q: None,
            sort: Vec::new(),
            fields: None,
            limit: 100,
            offset: 0,
            after: None,
            total: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFunc {
    Count,
    Sum,
    Avg,
    Min,
    Max,
}

/// One aggregate: `count` (rows), or `count|sum|avg|min|max` of a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measure {
    pub func: AggFunc,
    pub field: Option<String>,
}

impl Measure {
    /// `count`, `count:f`, `sum:f`, `avg:f`, `min:f`, `max:f`.
    pub fn parse(s: &str) -> Result<Measure> {
        let (name, field) = match s.split_once(':') {
            Some((n, f)) => (n, Some(f.to_string())),
            None => (s, None),
        };
        let func = match name {
            "count" => AggFunc::Count,
            "sum" => AggFunc::Sum,
            "avg" => AggFunc::Avg,
            "min" => AggFunc::Min,
            "max" => AggFunc::Max,
            _ => return Err(invalid(format!("aggregate '{s}': use count, or count|sum|avg|min|max:field"))),
        };
        if func != AggFunc::Count && field.as_deref().is_none_or(str::is_empty) {
            return Err(invalid(format!("aggregate '{s}': {name} needs a field, e.g. {name}:dan_so")));
        }
        Ok(Measure { func, field })
    }

    /// The answer's column name: `count`, `sum_dan_so`…
    pub fn column_name(&self) -> String {
        let f = match self.func {
            AggFunc::Count => "count",
            AggFunc::Sum => "sum",
            AggFunc::Avg => "avg",
            AggFunc::Min => "min",
            AggFunc::Max => "max",
        };
        match &self.field {
            Some(field) => format!("{f}_{field}"),
            None => f.to_string(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct AggregateQuery {
    pub filters: Vec<Filter>,
    pub q: Option<String>,
    pub group_by: Vec<String>,
    pub measures: Vec<Measure>,
    /// By the group fields or the measures' column names; default: the group fields.
    pub sort: Vec<SortKey>,
    pub limit: usize,
}

/// An answer: the fields, the records, and for pages the total and the next cursor.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    pub fields: Vec<FieldInfo>,
    #[serde(skip)]
    pub records: Records,
    /// Rows matching the filters (all pages), when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// Pass as `after` to get the next page (present when the table has a primary key and this
    /// page is full).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A table's fields, for checking names before a query is built.
pub(crate) struct Table<'a> {
    schema: &'a Schema,
}

impl<'a> Table<'a> {
    pub(crate) fn new(schema: &'a Schema) -> Table<'a> {
        Table { schema }
    }

    fn field(&self, name: &str) -> Result<&'a Field> {
        self.schema.field_with_name(name).map_err(|_| {
            let names: Vec<&str> = self.schema.fields().iter().map(|f| f.name().as_str()).collect();
            invalid(format!("no field '{name}' in this table (its fields: {})", names.join(", ")))
        })
    }

    /// A filter value as people type it: numbers as the table shows them ("2.000.000", "3,5",
    /// "12,5%") and dates as dd/mm/yyyy, besides the plain forms. A value that does not fit the
    /// field's type is refused with a message in both languages, showing the expected form.
    fn value(&self, field: &Field, v: &str) -> Result<ScalarValue> {
        let t = field.data_type();
        let v = v.trim();
        let parsed = match t {
            DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
                kho_core::text::vn_integer(v).map(|n| n.to_string())
            }
            DataType::Float32 | DataType::Float64 => kho_core::text::vn_number(v).map(|n| n.to_string()),
            DataType::Date32 | DataType::Timestamp(..) => Some(iso_date(v)),
            _ => Some(v.to_string()),
        };
        parsed.and_then(|text| ScalarValue::try_from_string(text, t).ok()).ok_or_else(|| {
            let (en, vi) = match t {
                DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
                    ("a whole number, e.g. 2000000 or 2.000.000", "không phải số nguyên; hãy viết như 2.000.000")
                }
                DataType::Float32 | DataType::Float64 => {
                    ("a number, e.g. 3.5 or 3,5", "không phải số; hãy viết như 3,5 hoặc 2.000.000")
                }
                DataType::Date32 => {
                    ("a date, e.g. 15/03/2026 or 2026-03-15", "không phải ngày; hãy viết như 15/03/2026")
                }
                DataType::Timestamp(..) => {
                    ("a date and time, e.g. 15/03/2026 08:30", "không phải ngày giờ; hãy viết như 15/03/2026 08:30")
                }
                DataType::Boolean => ("true or false", "không phải đúng/sai; hãy viết true hoặc false"),
                _ => ("a valid value", "không hợp lệ"),
            };
            Error::new(ErrorCode::InvalidQuery, format!("filter on '{}': '{v}' is not {en}", field.name()))
                .with_details(vec![
                    Detail::new(format!("filter.{}", field.name()), format!("'{v}' is not {en}"))
                        .with_vi(format!("«{v}» {vi}")),
                ])
        })
    }

    fn filter_expr(&self, f: &Filter) -> Result<Expr> {
        let field = self.field(&f.field)?;
        let c = ident(field.name());
        let one = || -> Result<Expr> {
            let v = f.values.first().map(String::as_str).unwrap_or("");
            Ok(lit(self.value(field, v)?))
        };
        Ok(match f.op {
            FilterOp::Eq => c.eq(one()?),
            FilterOp::Ne => c.not_eq(one()?),
            FilterOp::Gt => c.gt(one()?),
            FilterOp::Gte => c.gt_eq(one()?),
            FilterOp::Lt => c.lt(one()?),
            FilterOp::Lte => c.lt_eq(one()?),
            FilterOp::In => {
                if f.values.len() > 1000 {
                    return Err(invalid(format!("filter on '{}': at most 1000 values in 'in'", f.field)));
                }
                let list = f.values.iter().map(|v| Ok(lit(self.value(field, v)?))).collect::<Result<Vec<_>>>()?;
                c.in_list(list, false)
            }
            FilterOp::Null => match f.values.first().map(String::as_str) {
                Some("true") | Some("") | None => c.is_null(),
                Some("false") => c.is_not_null(),
                Some(other) => {
                    return Err(invalid(format!("filter on '{}': null takes true or false, not '{other}'", f.field)));
                }
            },
            FilterOp::Contains => {
                if !is_text(field.data_type()) {
                    return Err(invalid(format!("filter on '{}': contains works on text fields only", f.field)));
                }
                let word = kho_core::text::fold(f.values.first().map(String::as_str).unwrap_or(""));
                fold_udf().call(vec![c]).like(lit(like_pattern(&word)))
            }
        })
    }

    /// Every word of `q` must appear in at least one text field.
    fn search_expr(&self, q: &str) -> Result<Option<Expr>> {
        if q.chars().count() > MAX_Q_CHARS {
            return Err(invalid(format!("q: at most {MAX_Q_CHARS} characters")));
        }
        let folded = kho_core::text::fold(q);
        let words: Vec<&str> = folded.split_whitespace().collect();
        if words.len() > MAX_Q_WORDS {
            return Err(invalid(format!("q: at most {MAX_Q_WORDS} words")));
        }
        let text_fields: Vec<&Field> =
            self.schema.fields().iter().map(|f| f.as_ref()).filter(|f| is_text(f.data_type())).collect();
        if words.is_empty() {
            return Ok(None);
        }
        if text_fields.is_empty() {
            return Err(invalid("q: this table has no text fields to search"));
        }
        let mut all = Vec::new();
        for w in words {
            let pattern = like_pattern(w);
            let any =
                text_fields.iter().map(|f| fold_udf().call(vec![ident(f.name())]).like(lit(pattern.clone()))).collect();
            all.extend(balanced(any, Expr::or));
        }
        Ok(balanced(all, Expr::and))
    }

    /// What a rows query selects: the condition of its filters and search, the fields it
    /// returns (all by default), its sort keys checked against the table.
    fn selection(&self, query: &RowsQuery) -> Result<(Option<Expr>, Vec<String>)> {
        let condition = self.conditions(&query.filters, query.q.as_deref())?;
        let fields = match &query.fields {
            Some(names) => names.iter().map(|n| self.field(n).map(|f| f.name().clone())).collect::<Result<Vec<_>>>()?,
            None => self.schema.fields().iter().map(|f| f.name().clone()).collect(),
        };
        if query.sort.len() > MAX_SORT_KEYS {
            return Err(invalid(format!("sort: at most {MAX_SORT_KEYS} fields (got {})", query.sort.len())));
        }
        for k in &query.sort {
            self.field(&k.field)?;
        }
        Ok((condition, fields))
    }

    pub(crate) fn conditions(&self, filters: &[Filter], q: Option<&str>) -> Result<Option<Expr>> {
        if filters.len() > MAX_FILTERS {
            return Err(invalid(format!(
                "filter: at most {MAX_FILTERS} filters in one request (got {})",
                filters.len()
            )));
        }
        let mut exprs = filters.iter().map(|f| self.filter_expr(f)).collect::<Result<Vec<_>>>()?;
        if let Some(e) = q.map(|q| self.search_expr(q)).transpose()?.flatten() {
            exprs.push(e);
        }
        Ok(balanced(exprs, Expr::and))
    }
}

/// Join expressions as a balanced tree, log2(n) deep rather than n: a table may have hundreds
/// of text fields for `q` to look in, and DataFusion walks expressions by recursion.
fn balanced(mut exprs: Vec<Expr>, join: fn(Expr, Expr) -> Expr) -> Option<Expr> {
    while exprs.len() > 1 {
        let mut joined = Vec::with_capacity(exprs.len().div_ceil(2));
        let mut it = exprs.into_iter();
        while let Some(a) = it.next() {
            joined.push(match it.next() {
                Some(b) => join(a, b),
                None => a,
            });
        }
        exprs = joined;
    }
    exprs.pop()
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// `%word%` with LIKE's own wildcards escaped, so "50%" means the characters "50%".
fn like_pattern(word: &str) -> String {
    let mut p = String::with_capacity(word.len() + 2);
    p.push('%');
    for c in word.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// dd/mm/yyyy (as Vietnamese users write dates) to yyyy-mm-dd; anything else unchanged.
fn iso_date(v: &str) -> String {
    let parts: Vec<&str> = v.splitn(3, '/').collect();
    if let [d, m, rest] = parts.as_slice() {
        let (y, time) = rest.split_at(rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len()));
        if d.len() <= 2 && m.len() <= 2 && y.len() == 4 && d.chars().chain(m.chars()).all(|c| c.is_ascii_digit()) {
            return format!("{y}-{m:0>2}-{d:0>2}{time}");
        }
    }
    v.to_string()
}

/// The keyset cursor: the last record's values of the sort fields (then the primary key), as a
/// hex-encoded JSON array, opaque to clients.
fn encode_cursor(values: &[serde_json::Value]) -> String {
    hex_encode(serde_json::Value::Array(values.to_vec()).to_string().as_bytes())
}

fn decode_cursor(s: &str, n: usize) -> Result<Vec<serde_json::Value>> {
    let bad = || invalid("after: not a cursor from this table's pages (pass the 'next' value of the previous page)");
    let bytes = hex_decode(s).ok_or_else(bad)?;
    let values: Vec<serde_json::Value> = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if values.len() != n {
        return Err(bad());
    }
    Ok(values)
}

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 8192 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl QueryEngine {
    pub(crate) async fn rows_now(&self, source: &Source, query: &RowsQuery) -> Result<Page> {
        if query.limit > MAX_PAGE {
            return Err(invalid(format!("limit: at most {MAX_PAGE} records per page (got {})", query.limit)));
        }
        if query.after.is_some() && query.offset > 0 {
            return Err(invalid("use either after (keyset paging) or offset, not both"));
        }
        let provider = self.source_table(source).await?;
        let schema = provider.schema();
        let table = Table { schema: &schema };
        let (condition, fields) = table.selection(query)?;

        // A sort made total by the primary key, when there is one: equal sort values would
        // otherwise come back in any order, and pages would overlap or skip rows.
        let mut keys: Vec<SortKey> = Vec::new();
        for k in &query.sort {
            table.field(&k.field)?;
            if !keys.iter().any(|x| x.field == k.field) {
                keys.push(k.clone());
            }
        }
        // Tables with a primary key are always read in key order (after any sort asked for):
        // then every page has a `next` cursor, with or without an explicit sort, and the
        // default order does not depend on how the rows were loaded.
        let keyset = !source.primary_key.is_empty();
        if keyset {
            for pk in &source.primary_key {
                if !keys.iter().any(|x| &x.field == pk) {
                    keys.push(SortKey { field: pk.clone(), descending: false });
                }
            }
        }
        if query.after.is_some() && !keyset {
            return Err(invalid(
                "after: keyset paging needs a primary key and this table has none; page with offset instead",
            ));
        }

        let base = self.rows_ctx.read_table(provider.clone()).map_err(df_err)?;
        let base = match &condition {
            Some(c) => base.filter(c.clone()).map_err(df_err)?,
            None => base,
        };

        let total = if query.total {
            let count_key = format!("{}\n{:?}\n{:?}", source.key, source.masks, condition);
            match self.cached_count(&count_key) {
                Some(n) => Some(n),
                None => {
                    let n = base.clone().count().await.map_err(df_err)? as u64;
                    self.remember_count(count_key, n);
                    Some(n)
                }
            }
        } else {
            None
        };

        let mut df = base;
        if let Some(after) = &query.after {
            let values = decode_cursor(after, keys.len())?;
            df = df.filter(keyset_condition(&table, &keys, &values)?).map_err(df_err)?;
        }
        if !keys.is_empty() {
            let order: Vec<SortExpr> = keys.iter().map(|k| ident(&k.field).sort(!k.descending, k.descending)).collect();
            df = df.sort(order).map_err(df_err)?;
        }
        // The sort fields are kept until the cursor is taken, then dropped if not asked for.
        let mut selected = fields.clone();
        for k in &keys {
            if !selected.contains(&k.field) {
                selected.push(k.field.clone());
            }
        }
        let df = df
            .select(selected.iter().map(ident).collect::<Vec<_>>())
            .map_err(df_err)?
            .limit(query.offset, Some(query.limit))
            .map_err(df_err)?;
        let batches = df.collect().await.map_err(df_err)?;
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        // The cursor: the last record's values of the sort fields.
        let next = match batches.iter().rev().find(|b| b.num_rows() > 0) {
            Some(b) if keyset && rows == query.limit && !keys.is_empty() => {
                let idx = keys
                    .iter()
                    .map(|k| b.schema().index_of(&k.field).map_err(|e| Error::internal(e.to_string())))
                    .collect::<Result<Vec<_>>>()?;
                let last = b.slice(b.num_rows() - 1, 1).project(&idx).map_err(|e| Error::internal(e.to_string()))?;
                let values = records(&[last])?.values()?;
                let row = values.first().and_then(|v| v.as_object()).cloned().unwrap_or_default();
                let cursor: Vec<serde_json::Value> =
                    keys.iter().map(|k| row.get(&k.field).cloned().unwrap_or(serde_json::Value::Null)).collect();
                Some(encode_cursor(&cursor))
            }
            _ => None,
        };
        // Then only the fields asked for (the sort fields were kept for the cursor).
        let projected = batches
            .iter()
            .map(|b| {
                let idx = fields
                    .iter()
                    .map(|f| b.schema().index_of(f).map_err(|e| Error::internal(e.to_string())))
                    .collect::<Result<Vec<_>>>()?;
                b.project(&idx).map_err(|e| Error::internal(e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        let recs = records(&projected)?;
        let out_schema =
            Schema::new(fields.iter().filter_map(|n| schema.field_with_name(n).ok().cloned()).collect::<Vec<Field>>());
        self.load_after_use(&source.key).await;
        Ok(Page { fields: fields_of(&out_schema), records: recs, total, next })
    }

    /// Every record matching `query`'s filters and search, in its order, with its fields, written
    /// to a Parquet file at `out` (paging is ignored): what a download "as filtered" holds.
    /// Batches are written as they come, so memory stays bounded by the query's own.
    pub(crate) async fn export_now(&self, source: &Source, query: &RowsQuery, out: &std::path::Path) -> Result<u64> {
        use datafusion::parquet::arrow::ArrowWriter;
        use futures_util::StreamExt;
        let provider = self.source_table(source).await?;
        let schema = provider.schema();
        let table = Table { schema: &schema };
        let (condition, fields) = table.selection(query)?;
        let mut df = self.rows_ctx.read_table(provider.clone()).map_err(df_err)?;
        if let Some(c) = condition {
            df = df.filter(c).map_err(df_err)?;
        }
        if !query.sort.is_empty() {
            let order: Vec<SortExpr> =
                query.sort.iter().map(|k| ident(&k.field).sort(!k.descending, k.descending)).collect();
            df = df.sort(order).map_err(df_err)?;
        }
        // Text as plain strings, as in the stored files, whatever the engine reads it as.
        let columns = fields
            .iter()
            .map(|f| match df.schema().field_with_unqualified_name(f).map(|x| x.data_type().clone()) {
                Ok(DataType::Utf8View | DataType::LargeUtf8) => {
                    datafusion::prelude::cast(ident(f), DataType::Utf8).alias(f)
                }
                _ => ident(f),
            })
            .collect::<Vec<_>>();
        let df = df.select(columns).map_err(df_err)?;
        let out_schema = Arc::new(df.schema().as_arrow().clone());
        let mut stream = df.execute_stream().await.map_err(df_err)?;
        let file = std::fs::File::create(out).map_err(|e| Error::internal(format!("export file: {e}")))?;
        let mut writer =
            ArrowWriter::try_new(file, out_schema, None).map_err(|e| Error::internal(format!("export file: {e}")))?;
        let mut n = 0u64;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(df_err)?;
            n += batch.num_rows() as u64;
            writer.write(&batch).map_err(|e| Error::internal(format!("export file: {e}")))?;
        }
        writer.close().map_err(|e| Error::internal(format!("export file: {e}")))?;
        self.load_after_use(&source.key).await;
        Ok(n)
    }

    pub(crate) async fn aggregate_now(&self, source: &Source, query: &AggregateQuery) -> Result<Page> {
        let limit = if query.limit == 0 { 1000 } else { query.limit };
        if limit > MAX_PAGE {
            return Err(invalid(format!("limit: at most {MAX_PAGE} groups (got {limit})")));
        }
        if query.measures.is_empty() {
            return Err(invalid("measure: name at least one aggregate, e.g. measure=count or measure=sum:dan_so"));
        }
        if query.measures.len() > MAX_MEASURES || query.group_by.len() > MAX_GROUPS || query.sort.len() > MAX_SORT_KEYS
        {
            return Err(invalid(format!(
                "at most {MAX_MEASURES} measures, {MAX_GROUPS} group fields and {MAX_SORT_KEYS} sort fields in one request"
            )));
        }
        let provider = self.source_table(source).await?;
        let schema = provider.schema();
        let table = Table { schema: &schema };
        let condition = table.conditions(&query.filters, query.q.as_deref())?;
        let group: Vec<Expr> =
            query.group_by.iter().map(|g| table.field(g).map(|f| ident(f.name()))).collect::<Result<_>>()?;
        let mut aggs = Vec::new();
        for m in &query.measures {
            let name = m.column_name();
            let e = match (&m.func, &m.field) {
                (AggFunc::Count, None) => count_all(),
                (func, Some(f)) => {
                    let field = table.field(f)?;
                    let numeric = field.data_type().is_numeric();
                    let c = ident(field.name());
                    match func {
                        AggFunc::Count => count(c),
                        AggFunc::Sum | AggFunc::Avg if !numeric => {
                            return Err(invalid(format!(
                                "aggregate '{}': '{f}' is {}, not a number",
                                name,
                                crate::json::type_name(field.data_type())
                            )));
                        }
                        AggFunc::Sum => sum(c),
                        AggFunc::Avg => avg(c),
                        AggFunc::Min => min(c),
                        AggFunc::Max => max(c),
                    }
                }
                (_, None) => return Err(invalid(format!("aggregate '{name}' needs a field"))),
            };
            aggs.push(e.alias(name));
        }
        let mut df: DataFrame = self.rows_ctx.read_table(provider.clone()).map_err(df_err)?;
        if let Some(c) = condition {
            df = df.filter(c).map_err(df_err)?;
        }
        let df = df.aggregate(group, aggs).map_err(df_err)?;
        let out_names: Vec<String> = df.schema().fields().iter().map(|f| f.name().clone()).collect();
        let sort: Vec<SortKey> = if query.sort.is_empty() {
            query.group_by.iter().map(|g| SortKey { field: g.clone(), descending: false }).collect()
        } else {
            query.sort.clone()
        };
        let mut order = Vec::new();
        for k in &sort {
            if !out_names.contains(&k.field) {
                return Err(invalid(format!(
                    "sort: '{}' is not in the answer (sort by: {})",
                    k.field,
                    out_names.join(", ")
                )));
            }
            order.push(ident(&k.field).sort(!k.descending, k.descending));
        }
        let df = if order.is_empty() { df } else { df.sort(order).map_err(df_err)? };
        let df = df.limit(0, Some(limit)).map_err(df_err)?;
        let out_schema: Arc<Schema> = Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await.map_err(df_err)?;
        let recs = records(&batches)?;
        self.load_after_use(&source.key).await;
        Ok(Page { fields: fields_of(&out_schema), records: recs, total: None, next: None })
    }
}

impl QueryEngine {
    pub(crate) async fn key_values_now(
        &self,
        source: &Source,
        fields: &[String],
        separator: char,
    ) -> Result<std::collections::HashSet<String>> {
        let provider = self.source_table(source).await?;
        let schema = provider.schema();
        let table = Table { schema: &schema };
        let exprs = fields
            .iter()
            .map(|f| table.field(f).map(|fd| datafusion::prelude::cast(ident(fd.name()), DataType::Utf8).alias(f)))
            .collect::<Result<Vec<_>>>()?;
        let batches = self
            .rows_ctx
            .read_table(provider.clone())
            .and_then(|df| df.select(exprs))
            .and_then(|df| df.distinct())
            .map_err(df_err)?
            .collect()
            .await
            .map_err(df_err)?;
        let mut out = std::collections::HashSet::new();
        let sep = separator.to_string();
        for b in &batches {
            let cols: Vec<&arrow::array::StringArray> =
                b.columns().iter().filter_map(|c| c.as_any().downcast_ref::<arrow::array::StringArray>()).collect();
            if cols.len() != fields.len() {
                return Err(Error::internal("key values: unexpected column types"));
            }
            for row in 0..b.num_rows() {
                let parts: Option<Vec<&str>> =
                    cols.iter().map(|c| (!arrow::array::Array::is_null(*c, row)).then(|| c.value(row))).collect();
                if let Some(parts) = parts {
                    out.insert(parts.join(&sep));
                }
            }
        }
        self.load_after_use(&source.key).await;
        Ok(out)
    }
}

/// Rows after the cursor in the order of `keys`: (k1 > v1) or (k1 = v1 and k2 > v2) or …,
/// with `<` for descending keys.
fn keyset_condition(table: &Table, keys: &[SortKey], values: &[serde_json::Value]) -> Result<Expr> {
    let mut scalars = Vec::new();
    for (k, v) in keys.iter().zip(values) {
        if v.is_null() {
            return Err(invalid(format!(
                "after: the previous page ended on an empty '{}'; keyset paging over empty values is not possible, page with offset instead",
                k.field
            )));
        }
        let field = table.field(&k.field)?;
        scalars.push(lit(table.value(field, &json_text(v))?));
    }
    let mut any: Option<Expr> = None;
    for i in 0..keys.len() {
        let mut clause = if keys[i].descending {
            ident(&keys[i].field).lt(scalars[i].clone())
        } else {
            ident(&keys[i].field).gt(scalars[i].clone())
        };
        for j in 0..i {
            clause = ident(&keys[j].field).eq(scalars[j].clone()).and(clause);
        }
        any = Some(match any {
            Some(a) => a.or(clause),
            None => clause,
        });
    }
    any.ok_or_else(|| invalid("after: no sort fields"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse() {
        assert_eq!(Filter::parse("ma_tinh:14").unwrap(), Filter::eq("ma_tinh", "14"));
        let f = Filter::parse("ma_tinh:in:01,14").unwrap();
        assert_eq!((f.op, f.values.len()), (FilterOp::In, 2));
        // A value may contain colons; an unknown op is part of the value.
        let f = Filter::parse("gio:eq:10:30").unwrap();
        assert_eq!(f.values, vec!["10:30"]);
        let f = Filter::parse("gio:10:30").unwrap();
        assert_eq!((f.op, f.values[0].as_str()), (FilterOp::Eq, "10:30"));
        assert!(Filter::parse("noop").is_err());
        assert!(Filter::parse(":eq:1").is_err());
    }

    #[test]
    fn sorts_and_measures_parse() {
        let s = SortKey::parse_list("a,-b").unwrap();
        assert_eq!(s[1], SortKey { field: "b".into(), descending: true });
        assert!(SortKey::parse_list("-").is_err());
        assert_eq!(Measure::parse("sum:x").unwrap().column_name(), "sum_x");
        assert!(Measure::parse("sum").is_err());
        assert!(Measure::parse("median:x").is_err());
    }

    #[test]
    fn cursors_round_trip_and_reject_junk() {
        let v = vec![serde_json::json!("Hà Nội"), serde_json::json!(3)];
        assert_eq!(decode_cursor(&encode_cursor(&v), 2).unwrap(), v);
        assert!(decode_cursor("zz", 2).is_err());
        assert!(decode_cursor(&encode_cursor(&v), 3).is_err());
    }

    #[test]
    fn like_wildcards_are_escaped_and_dates_normalised() {
        assert_eq!(like_pattern("50%_a"), "%50\\%\\_a%");
        assert_eq!(iso_date("5/1/2024"), "2024-01-05");
        assert_eq!(iso_date("2024-01-05"), "2024-01-05");
        assert_eq!(iso_date("05/01/2024 10:00"), "2024-01-05 10:00");
    }
}
