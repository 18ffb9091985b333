//! Row-by-row validation of a table against a Table Schema whose dictionary terms are already
//! resolved (see `kho_core::table_schema::effective`).
//!
//! Semantics follow Table Schema v2: a value listed in `missingValues` is null before any other
//! check; `primaryKey` implies required and unique; unique checks ignore nulls; `pattern` must
//! match the whole value. Columns are matched to fields by name, in any order.

use std::collections::{HashMap, HashSet};

use regex::Regex;
use serde_json::Value;

use crate::read::CsvSource;
use crate::report::{Problem, Report};
use crate::vn;

/// Reference sets some rules need, supplied by the caller from the metadata store.
#[derive(Debug, Clone, Default)]
pub struct References {
    /// Current (2025) province codes.
    pub provinces: HashSet<String>,
    /// Current (2025) commune codes.
    pub communes: HashSet<String>,
    /// Province codes before the 2025 merger (63 provinces), for historical data.
    pub legacy_provinces: HashSet<String>,
    /// Abolished (pre-2025) codes → the current codes they became.
    pub successors: HashMap<String, Vec<String>>,
    /// First three digits of a CCCD that are birth-registration province codes.
    pub cccd_prefixes: HashSet<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    Integer,
    Number,
    Boolean,
    Date,
    Datetime,
    Time,
    Year,
    YearMonth,
    Duration,
    Object,
    Array,
    GeoPoint,
    GeoJson,
    Any,
}

/// A rule derived from a dictionary term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Special {
    None,
    Cccd,
    Mst,
    Phone,
    Province,
    ProvinceLegacy,
    Commune,
    DateOfBirth,
    Gender,
}

#[derive(Debug)]
struct Field {
    name: String,
    kind: Kind,
    format: Option<String>,
    missing: Vec<String>,
    required: bool,
    unique: bool,
    min_len: Option<usize>,
    max_len: Option<usize>,
    pattern: Option<(Regex, String)>,
    enum_values: Option<Vec<String>>,
    minimum: Option<(Value, bool)>,
    maximum: Option<(Value, bool)>,
    true_values: Vec<String>,
    false_values: Vec<String>,
    decimal_char: char,
    group_char: Option<char>,
    special: Special,
    /// Index of the column in the file.
    column: Option<usize>,
}

/// A cell converted to its field's type. Integers and numbers compare with each other;
/// values of other different kinds do not compare (no bound applies across kinds).
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Int(i64),
    Num(f64),
    Bool(bool),
    Date(chrono::NaiveDate),
    DateTime(chrono::NaiveDateTime),
    Text(String),
}

type Typed = Cell;

impl PartialOrd for Cell {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        use Cell::*;
        match (self, other) {
            (Int(a), Int(b)) => a.partial_cmp(b),
            (Num(a), Num(b)) => a.partial_cmp(b),
            (Int(a), Num(b)) => (*a as f64).partial_cmp(b),
            (Num(a), Int(b)) => a.partial_cmp(&(*b as f64)),
            (Bool(a), Bool(b)) => a.partial_cmp(b),
            (Date(a), Date(b)) => a.partial_cmp(b),
            (DateTime(a), DateTime(b)) => a.partial_cmp(b),
            (Text(a), Text(b)) => a.partial_cmp(b),
            _ => None,
        }
    }
}

impl std::fmt::Display for Cell {
    /// The canonical text of a value: the same for a value read from a file and from a stored
    /// version, so that versions can be compared row by row.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cell::Int(v) => write!(f, "{v}"),
            Cell::Num(v) => write!(f, "{v}"),
            Cell::Bool(v) => write!(f, "{v}"),
            Cell::Date(v) => write!(f, "{}", v.format("%Y-%m-%d")),
            Cell::DateTime(v) => write!(f, "{}", v.format("%Y-%m-%dT%H:%M:%S%.f")),
            Cell::Text(v) => f.write_str(v),
        }
    }
}

/// The stored (Arrow/Parquet) type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Int,
    Num,
    Bool,
    Date,
    DateTime,
    Text,
}

/// What one row turned out to be.
#[derive(Debug, Clone)]
pub struct RowOutcome {
    pub valid: bool,
    /// Typed values, one per schema field, in schema order (`None`: missing or invalid).
    pub cells: Vec<Option<Cell>>,
    /// The row's problems, "column: message" in Vietnamese, for the quarantine file.
    pub messages: Vec<String>,
}

/// The key values of a published table that a foreign key of this one points to.
#[derive(Debug, Clone, Default)]
pub struct ForeignKeySet {
    /// This table's fields.
    pub fields: Vec<String>,
    /// The referenced table, as the steward wrote it ("co-so" or "dataset-slug/co-so").
    pub table: String,
    pub reference_fields: Vec<String>,
    /// Every combination of the referenced fields' values, compared as text, parts joined by
    /// [`KEY_SEPARATOR`].
    pub values: HashSet<String>,
}

/// Joins the parts of a multi-field key (a control character no cell text holds).
pub const KEY_SEPARATOR: char = '\u{1f}';

/// The fields of a unique key, and the first row where each combination of values was seen.
type UniqueKey = (Vec<usize>, crate::HashIndex<u64>);

pub struct Validator {
    fields: Vec<Field>,
    header_len: usize,
    primary_key: Vec<usize>,
    /// Keys seen so far, by hash (8 bytes a row instead of the key's text), with their line.
    pk_seen: crate::HashIndex<u64>,
    unique_keys: Vec<UniqueKey>,
    unique_seen: Vec<crate::HashIndex<u64>>,
    refs: std::sync::Arc<References>,
    report: Report,
    /// The current row's problems, for the quarantine file.
    row_messages: Vec<String>,
    /// Fields whose raw text the row-level checks need (keys, CCCD with birth date and sex):
    /// only those are copied per row.
    keep_text: Vec<bool>,
    /// Foreign keys: this table's field indexes and the referenced values.
    foreign: Vec<(Vec<usize>, std::sync::Arc<ForeignKeySet>)>,
}

fn msg(rule: &str, row: u64, column: Option<&str>, value: Option<&str>, vi: String, en: String) -> Problem {
    Problem {
        row,
        column: column.map(str::to_string),
        value: value.map(|v| v.chars().take(200).collect()),
        rule: rule.to_string(),
        message_vi: vi,
        message_en: en,
    }
}

fn str_list(v: Option<&Value>) -> Option<Vec<String>> {
    v.and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(|x| match x {
                Value::String(s) => Some(s.clone()),
                Value::Object(o) => o.get("value").and_then(Value::as_str).map(str::to_string),
                other => Some(other.to_string()),
            })
            .collect()
    })
}

fn kind_of(t: &str) -> Kind {
    match t {
        "string" => Kind::String,
        "integer" => Kind::Integer,
        "number" => Kind::Number,
        "boolean" => Kind::Boolean,
        "date" => Kind::Date,
        "datetime" => Kind::Datetime,
        "time" => Kind::Time,
        "year" => Kind::Year,
        "yearmonth" => Kind::YearMonth,
        "duration" => Kind::Duration,
        "object" => Kind::Object,
        "array" | "list" => Kind::Array,
        "geopoint" => Kind::GeoPoint,
        "geojson" => Kind::GeoJson,
        _ => Kind::Any,
    }
}

fn special_of(term: Option<&str>) -> Special {
    match term.and_then(|t| t.split('@').next()) {
        Some("cccd") => Special::Cccd,
        Some("mst") => Special::Mst,
        Some("phone") => Special::Phone,
        Some("province_code") => Special::Province,
        Some("province_code_pre2025") => Special::ProvinceLegacy,
        Some("commune_code") => Special::Commune,
        Some("date_of_birth") => Special::DateOfBirth,
        Some("gender") => Special::Gender,
        _ => Special::None,
    }
}

impl Validator {
    /// Prepare a validator for `schema` (terms resolved) and the file's header. Header
    /// mismatches are recorded in the report straight away (row 1).
    pub fn new(schema: &Value, headers: &[String], refs: impl Into<std::sync::Arc<References>>) -> Validator {
        let refs = refs.into();
        let mut report = Report { columns: headers.to_vec(), ..Default::default() };
        let schema_missing = str_list(schema.get("missingValues")).unwrap_or_else(|| vec![String::new()]);
        let pk_names: Vec<String> = match schema.get("primaryKey") {
            Some(Value::String(s)) => vec![s.clone()],
            other => str_list(other).unwrap_or_default(),
        };
        let mut fields = Vec::new();
        for f in schema.get("fields").and_then(Value::as_array).into_iter().flatten() {
            let name = f.get("name").and_then(Value::as_str).unwrap_or("").to_string();
            let c = f.get("constraints");
            let get = |k: &str| c.and_then(|c| c.get(k));
            let pattern = get("pattern")
                .and_then(Value::as_str)
                .and_then(|p| Regex::new(&format!("^(?:{p})$")).ok().map(|r| (r, p.to_string())));
            let in_pk = pk_names.contains(&name);
            fields.push(Field {
                column: headers.iter().position(|h| *h == name),
                kind: kind_of(f.get("type").and_then(Value::as_str).unwrap_or("any")),
                format: f.get("format").and_then(Value::as_str).map(str::to_string),
                missing: str_list(f.get("missingValues")).unwrap_or_else(|| schema_missing.clone()),
                required: in_pk || get("required").and_then(Value::as_bool).unwrap_or(false),
                unique: (in_pk && pk_names.len() == 1) || get("unique").and_then(Value::as_bool).unwrap_or(false),
                min_len: get("minLength").and_then(Value::as_u64).map(|v| v as usize),
                max_len: get("maxLength").and_then(Value::as_u64).map(|v| v as usize),
                pattern,
                enum_values: str_list(get("enum")),
                minimum: get("exclusiveMinimum")
                    .map(|v| (v.clone(), true))
                    .or_else(|| get("minimum").map(|v| (v.clone(), false))),
                maximum: get("exclusiveMaximum")
                    .map(|v| (v.clone(), true))
                    .or_else(|| get("maximum").map(|v| (v.clone(), false))),
                true_values: str_list(f.get("trueValues"))
                    .unwrap_or_else(|| ["true", "True", "TRUE", "1"].map(String::from).to_vec()),
                false_values: str_list(f.get("falseValues"))
                    .unwrap_or_else(|| ["false", "False", "FALSE", "0"].map(String::from).to_vec()),
                decimal_char: f
                    .get("decimalChar")
                    .and_then(Value::as_str)
                    .and_then(|s| s.chars().next())
                    .unwrap_or('.'),
                group_char: f.get("groupChar").and_then(Value::as_str).and_then(|s| s.chars().next()),
                special: special_of(f.get(kho_core::table_schema::TERM_PROPERTY).and_then(Value::as_str)),
                name,
            });
        }
        for f in &fields {
            if f.column.is_none() {
                report.header_mismatch = true;
                if f.required {
                    report.missing_required_columns.push(f.name.clone());
                }
                report.push(msg(
                    "missing_column",
                    1,
                    Some(&f.name),
                    None,
                    format!("thiếu cột '{}' của lược đồ", f.name),
                    format!("the schema's column '{}' is missing", f.name),
                ));
            }
        }
        for h in headers {
            if !fields.iter().any(|f| f.name == *h) {
                report.header_mismatch = true;
                report.push(msg(
                    "extra_column",
                    1,
                    Some(h),
                    None,
                    format!("cột '{h}' không có trong lược đồ"),
                    format!("column '{h}' is not in the schema"),
                ));
            }
        }
        let index_of = |names: &[String]| -> Vec<usize> {
            names.iter().filter_map(|n| fields.iter().position(|f| f.name == *n)).collect()
        };
        let primary_key = if pk_names.len() > 1 { index_of(&pk_names) } else { vec![] };
        let unique_keys = schema
            .get("uniqueKeys")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|k| str_list(Some(k)))
            .map(|names| (index_of(&names), Default::default()))
            .collect();
        let unique_seen = fields.iter().map(|_| Default::default()).collect();
        Validator {
            header_len: headers.len(),
            fields,
            primary_key,
            pk_seen: Default::default(),
            unique_keys,
            unique_seen,
            refs,
            report,
            row_messages: Vec::new(),
            keep_text: Vec::new(),
            foreign: Vec::new(),
        }
        .with_kept_text()
    }

    /// Check the schema's foreign keys against the referenced tables' values. A key whose
    /// fields are not all in this table is ignored (the schema check reports it).
    pub fn with_foreign_keys(mut self, sets: &[std::sync::Arc<ForeignKeySet>]) -> Self {
        for set in sets {
            let idx: Option<Vec<usize>> =
                set.fields.iter().map(|n| self.fields.iter().position(|f| &f.name == n)).collect();
            if let Some(idx) = idx.filter(|i| !i.is_empty()) {
                self.foreign.push((idx, set.clone()));
            }
        }
        self.with_kept_text()
    }

    fn with_kept_text(mut self) -> Self {
        let person = self.fields.iter().any(|f| f.special == Special::Cccd);
        self.keep_text = self
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| {
                self.primary_key.contains(&i)
                    || self.unique_keys.iter().any(|(k, _)| k.contains(&i))
                    || self.foreign.iter().any(|(k, _)| k.contains(&i))
                    || (person && matches!(f.special, Special::Cccd | Special::DateOfBirth | Special::Gender))
            })
            .collect();
        self
    }

    /// The columns as they will be stored: name and type, in schema order.
    pub fn columns(&self) -> Vec<(String, ColumnType)> {
        self.fields
            .iter()
            .map(|f| {
                let t = match f.kind {
                    Kind::Integer | Kind::Year => ColumnType::Int,
                    Kind::Number => ColumnType::Num,
                    Kind::Boolean => ColumnType::Bool,
                    Kind::Date => ColumnType::Date,
                    Kind::Datetime => ColumnType::DateTime,
                    _ => ColumnType::Text,
                };
                (f.name.clone(), t)
            })
            .collect()
    }

    /// Indexes (in schema order) of the primary-key fields.
    pub fn primary_key_fields(&self) -> Vec<usize> {
        if !self.primary_key.is_empty() {
            return self.primary_key.clone();
        }
        self.fields.iter().enumerate().filter(|(_, f)| f.unique && f.required).map(|(i, _)| i).take(1).collect()
    }

    /// The report so far (header problems before any row; everything after the last row).
    pub fn report(&self) -> &Report {
        &self.report
    }

    pub fn into_report(self) -> Report {
        self.report
    }

    pub fn set_source(&mut self, source: &CsvSource) {
        self.report.encoding = source.encoding.to_string();
        self.report.delimiter = match source.delimiter {
            b'\t' => "\\t".to_string(),
            d => (d as char).to_string(),
        };
    }

    fn push(&mut self, p: Problem) {
        let col = p.column.clone().map(|c| format!("{c}: ")).unwrap_or_default();
        self.row_messages.push(format!("{col}{}", p.message_vi));
        self.report.push(p);
    }

    /// Check every row of a CSV source and return the report.
    pub fn check_csv(mut self, source: &CsvSource) -> Report {
        self.set_source(source);
        for (line, row) in source.rows() {
            match row {
                Ok(cells) => {
                    self.check_row(line, &cells);
                }
                Err(e) => self.malformed_row(line, &e),
            }
        }
        self.report
    }

    /// Record a row the CSV reader could not parse.
    pub fn malformed_row(&mut self, line: u64, e: &str) {
        self.report.rows += 1;
        self.report.invalid_rows += 1;
        self.push(msg(
            "malformed_row",
            line,
            None,
            None,
            format!("dòng không đọc được: {e}"),
            format!("unreadable row: {e}"),
        ));
    }

    /// Check one data row (`line` is its line in the file).
    pub fn check_row(&mut self, line: u64, cells: &[String]) -> RowOutcome {
        self.report.rows += 1;
        self.row_messages.clear();
        let before = self.report.problems_total;
        if cells.iter().all(|c| c.trim().is_empty()) {
            self.push(msg("blank_row", line, None, None, "dòng trống".into(), "blank row".into()));
            self.report.invalid_rows += 1;
            return RowOutcome {
                valid: false,
                cells: vec![None; self.fields.len()],
                messages: std::mem::take(&mut self.row_messages),
            };
        }
        if cells.len() != self.header_len {
            self.push(msg(
                "field_count",
                line,
                None,
                None,
                format!("dòng có {} ô, dòng tiêu đề có {} cột", cells.len(), self.header_len),
                format!("the row has {} cells but the header has {} columns", cells.len(), self.header_len),
            ));
        }
        let mut values: Vec<Option<String>> = Vec::with_capacity(self.fields.len());
        let mut typed: Vec<Option<Cell>> = Vec::with_capacity(self.fields.len());
        for i in 0..self.fields.len() {
            let (v, t) = self.check_cell(line, i, cells);
            values.push(v);
            typed.push(t);
        }
        self.check_keys(line, &values);
        self.check_foreign(line, &values);
        self.check_person(line, &values);
        let valid = self.report.problems_total == before;
        if valid {
            self.report.valid_rows += 1;
        } else {
            self.report.invalid_rows += 1;
        }
        RowOutcome { valid, cells: typed, messages: std::mem::take(&mut self.row_messages) }
    }

    /// Check one cell; returns its (non-null) text for key checks.
    fn check_cell(&mut self, line: u64, i: usize, cells: &[String]) -> (Option<String>, Option<Cell>) {
        let (required, column) = (self.fields[i].required, self.fields[i].column);
        self.report.cells += 1;
        if required {
            self.report.required_cells += 1;
        }
        let Some(col) = column else {
            self.report.cells_missing += 1;
            if required {
                self.report.required_missing += 1;
            }
            return (None, None);
        };
        let raw = cells.get(col).map(String::as_str).unwrap_or("");
        self.report.cells_checked += 1;
        let f = &self.fields[i];
        let mut problems: Vec<Problem> = Vec::new();
        let name = f.name.as_str();
        let problem = |rule: &str, vi: String, en: String| msg(rule, line, Some(name), Some(raw), vi, en);
        let value = if f.missing.iter().any(|m| m == raw) { None } else { Some(raw) };
        let Some(v) = value else {
            self.report.cells_missing += 1;
            if f.required {
                self.report.required_missing += 1;
                problems.push(problem("required", "bắt buộc phải có giá trị".into(), "a value is required".into()));
            }
            return (self.finish_cell(problems, None), None);
        };
        let typed = match cast(f, v) {
            Ok(t) => t,
            Err((vi, en)) => {
                problems.push(problem("type", vi, en));
                let kept = self.keep_text[i].then(|| v.to_string());
                return (self.finish_cell(problems, kept), None);
            }
        };
        let len = v.chars().count();
        if let Some(min) = f.min_len.filter(|m| len < *m) {
            problems.push(problem(
                "min_length",
                format!("cần ít nhất {min} ký tự (có {len})"),
                format!("needs at least {min} characters (has {len})"),
            ));
        }
        if let Some(max) = f.max_len.filter(|m| len > *m) {
            problems.push(problem(
                "max_length",
                format!("tối đa {max} ký tự (có {len})"),
                format!("at most {max} characters (has {len})"),
            ));
        }
        if let Some((re, p)) = &f.pattern
            && !re.is_match(v)
        {
            problems.push(problem("pattern", format!("không đúng mẫu {p}"), format!("does not match the pattern {p}")));
        }
        if let Some(allowed) = &f.enum_values {
            let hit = allowed.iter().any(|a| a == v || cast(f, a).ok().as_ref() == Some(&typed));
            if !hit {
                let list = allowed.join(", ");
                problems.push(problem("enum", format!("phải là một trong: {list}"), format!("must be one of: {list}")));
            }
        }
        for (bound, is_min) in [(&f.minimum, true), (&f.maximum, false)] {
            let Some((b, exclusive)) = bound else { continue };
            let b = match b {
                // A bound is written in the field's own format or, for dates, in ISO form.
                Value::String(s) => cast(f, s).ok().or_else(|| iso_bound(f.kind, s)),
                Value::Number(n) => n.as_i64().map(Typed::Int).or_else(|| n.as_f64().map(Typed::Num)),
                _ => None,
            };
            let Some(b) = b else { continue };
            let bad = match (is_min, exclusive) {
                (true, false) => typed < b,
                (true, true) => typed <= b,
                (false, false) => typed > b,
                (false, true) => typed >= b,
            };
            if bad {
                let shown = b.to_string();
                let (rule, vi, en) = if is_min {
                    ("minimum", format!("nhỏ hơn giá trị tối thiểu {shown}"), format!("is below the minimum {shown}"))
                } else {
                    ("maximum", format!("lớn hơn giá trị tối đa {shown}"), format!("is above the maximum {shown}"))
                };
                problems.push(problem(rule, vi, en));
            }
        }
        match f.special {
            Special::Cccd => {
                if let Some((vi, en)) =
                    vn::cccd_problem(v, |p| self.refs.cccd_prefixes.is_empty() || self.refs.cccd_prefixes.contains(p))
                {
                    problems.push(problem("cccd", format!("số CCCD {vi}"), format!("citizen ID {en}")));
                }
            }
            Special::Mst => {
                if let Some((vi, en)) = vn::mst_problem(v) {
                    problems.push(problem("mst", format!("mã số thuế {vi}"), format!("tax code {en}")));
                }
            }
            Special::Phone => {
                if let Some((vi, en)) = vn::phone_problem(v) {
                    problems.push(problem("phone", format!("số điện thoại {vi}"), format!("phone number {en}")));
                }
            }
            Special::ProvinceLegacy
                if !self.refs.legacy_provinces.is_empty() && !self.refs.legacy_provinces.contains(v) =>
            {
                problems.push(problem(
                    "admin_unit",
                    format!("'{v}' không phải mã tỉnh trong danh mục trước 01/7/2025"),
                    format!("'{v}' is not a province code of the catalogue before 1 July 2025"),
                ));
            }
            Special::Province | Special::Commune => {
                let (current, what_vi, what_en) = if f.special == Special::Province {
                    (&self.refs.provinces, "tỉnh", "province")
                } else {
                    (&self.refs.communes, "xã", "commune")
                };
                if !current.is_empty() && !current.contains(v) {
                    match self.refs.successors.get(v) {
                        Some(new) => {
                            let new = new.join(", ");
                            problems.push(problem(
                                "abolished_code",
                                format!("mã {what_vi} '{v}' đã bị bãi bỏ từ 01/7/2025; mã mới: {new}"),
                                format!("{what_en} code '{v}' was abolished on 1 July 2025; the current code is {new}"),
                            ));
                        }
                        None => problems.push(problem(
                            "admin_unit",
                            format!("'{v}' không phải mã {what_vi} trong danh mục hành chính"),
                            format!("'{v}' is not a {what_en} code of the administrative catalogue"),
                        )),
                    }
                }
            }
            _ => {}
        }
        // A specific identifier message (CCCD, MST, phone) says more than the term's generic
        // pattern: show that one only.
        if problems.iter().any(|p| matches!(p.rule.as_str(), "cccd" | "mst" | "phone")) {
            problems.retain(|p| p.rule != "pattern");
        }
        if f.unique {
            let seen = &mut self.unique_seen[i];
            let h = crate::fnv1a([v]);
            if let Some(first) = seen.get(&h) {
                problems.push(problem(
                    "unique",
                    format!("trùng giá trị với dòng {first}"),
                    format!("duplicates the value of row {first}"),
                ));
            } else {
                seen.insert(h, line);
            }
        }
        let kept = self.keep_text[i].then(|| v.to_string());
        (self.finish_cell(problems, kept), Some(typed))
    }

    fn finish_cell(&mut self, problems: Vec<Problem>, value: Option<String>) -> Option<String> {
        if !problems.is_empty() {
            self.report.cells_invalid += 1;
        }
        for p in problems {
            self.push(p);
        }
        value
    }

    fn check_keys(&mut self, line: u64, values: &[Option<String>]) {
        if !self.primary_key.is_empty() {
            let key: Option<Vec<String>> = self.primary_key.iter().map(|i| values[*i].clone()).collect();
            if let Some(key) = key {
                let names: Vec<&str> = self.primary_key.iter().map(|i| self.fields[*i].name.as_str()).collect();
                let h = crate::fnv1a(&key);
                if let Some(first) = self.pk_seen.get(&h) {
                    let (cols, vals) = (names.join(", "), key.join(", "));
                    self.push(msg(
                        "primary_key",
                        line,
                        Some(&cols),
                        Some(&vals),
                        format!("khóa chính ({cols}) trùng với dòng {first}"),
                        format!("the primary key ({cols}) duplicates row {first}"),
                    ));
                } else {
                    self.pk_seen.insert(h, line);
                }
            }
        }
        for k in 0..self.unique_keys.len() {
            let idx = self.unique_keys[k].0.clone();
            // Unique keys ignore rows where any part is null.
            let Some(key) = idx.iter().map(|i| values[*i].clone()).collect::<Option<Vec<String>>>() else { continue };
            let cols = idx.iter().map(|i| self.fields[*i].name.as_str()).collect::<Vec<_>>().join(", ");
            let h = crate::fnv1a(&key);
            if let Some(first) = self.unique_keys[k].1.get(&h).copied() {
                let vals = key.join(", ");
                self.push(msg(
                    "unique_key",
                    line,
                    Some(&cols),
                    Some(&vals),
                    format!("bộ giá trị ({cols}) trùng với dòng {first}"),
                    format!("the values of ({cols}) duplicate row {first}"),
                ));
            } else {
                self.unique_keys[k].1.insert(h, line);
            }
        }
    }

    /// Each foreign key's values must exist in the referenced table (rows where a part is empty
    /// are not checked, as in Table Schema).
    fn check_foreign(&mut self, line: u64, values: &[Option<String>]) {
        for k in 0..self.foreign.len() {
            let (idx, set) = (&self.foreign[k].0, &self.foreign[k].1);
            let Some(parts) = idx.iter().map(|i| values[*i].as_deref()).collect::<Option<Vec<&str>>>() else {
                continue;
            };
            let key = parts.join(&KEY_SEPARATOR.to_string());
            if set.values.contains(&key) {
                continue;
            }
            let cols = idx.iter().map(|i| self.fields[*i].name.as_str()).collect::<Vec<_>>().join(", ");
            let (table, rf) = (set.table.clone(), set.reference_fields.join(", "));
            let shown = parts.join(", ");
            self.push(msg(
                "foreign_key",
                line,
                Some(&cols),
                Some(&shown),
                format!("giá trị '{shown}' không có trong cột {rf} của bảng {table}"),
                format!("'{shown}' is not a value of {rf} in table {table}"),
            ));
        }
    }

    /// A CCCD's century/sex digit and birth year must agree with the row's date of birth and
    /// gender, when the schema has them.
    fn check_person(&mut self, line: u64, values: &[Option<String>]) {
        let find = |s: Special| self.fields.iter().position(|f| f.special == s);
        let (dob_i, gender_i) = (find(Special::DateOfBirth), find(Special::Gender));
        let Some(ci) = find(Special::Cccd) else { return };
        let Some(cccd) = values[ci].as_deref().filter(|v| v.len() == 12 && v.bytes().all(|b| b.is_ascii_digit()))
        else {
            return;
        };
        let cccd_col = self.fields[ci].name.clone();
        if let Some(di) = dob_i {
            let year = values[di].as_deref().and_then(|d| cast(&self.fields[di], d).ok()).and_then(|t| match t {
                Cell::Date(d) => Some(chrono::Datelike::year(&d)),
                Cell::DateTime(d) => Some(chrono::Datelike::year(&d)),
                _ => None,
            });
            if let (Some(year), Some(encoded)) = (year, vn::cccd_birth_year(cccd))
                && year != encoded
            {
                let dob = self.fields[di].name.clone();
                self.push(msg(
                    "cccd",
                    line,
                    Some(&cccd_col),
                    Some(cccd),
                    format!("số CCCD mã hóa năm sinh {encoded}, nhưng cột {dob} ghi năm {year}"),
                    format!("the citizen ID encodes birth year {encoded}, but column {dob} says {year}"),
                ));
            }
        }
        if let Some(gi) = gender_i {
            let female = match values[gi].as_deref().map(kho_core::text::fold).as_deref() {
                Some("nu") => Some(true),
                Some("nam") => Some(false),
                _ => None,
            };
            if let (Some(female), Some((_, encoded_female))) = (female, vn::cccd_century_sex(cccd))
                && female != encoded_female
            {
                let g = self.fields[gi].name.clone();
                let (vi, en) = if encoded_female { ("nữ", "female") } else { ("nam", "male") };
                self.push(msg(
                    "cccd",
                    line,
                    Some(&cccd_col),
                    Some(cccd),
                    format!("chữ số thứ 4 của CCCD cho biết giới tính {vi}, khác cột {g}"),
                    format!("the citizen ID's 4th digit says {en}, unlike column {g}"),
                ));
            }
        }
    }
}

fn iso_bound(kind: Kind, s: &str) -> Option<Typed> {
    match kind {
        Kind::Date => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().map(Cell::Date),
        Kind::Datetime => chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").ok().map(Cell::DateTime),
        Kind::Time => chrono::NaiveTime::parse_from_str(s, "%H:%M:%S").ok().map(|_| Cell::Text(s.to_string())),
        _ => None,
    }
}

/// Convert a strptime-style pattern ("%d/%m/%Y") for chrono, or the type's default.
fn date_formats(f: &Field, default: &'static [&'static str]) -> Vec<String> {
    match f.format.as_deref() {
        Some(p) if p.contains('%') => vec![p.to_string()],
        // "any": the formats people actually write in Vietnam, day first.
        Some("any") => ["%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y"].iter().map(|s| s.to_string()).collect(),
        _ => default.iter().map(|s| s.to_string()).collect(),
    }
}

/// Parse a fixed-width date ("2025-07-01" or "01/07/2025"); `None` if it is not exactly that
/// shape, so the general parser can still try (and, e.g., accept "1/7/2025").
fn fast_date(v: &str, y: usize, m: usize, d: usize, sep: u8, day_first: bool) -> Option<chrono::NaiveDate> {
    let b = v.as_bytes();
    if b.len() != 10 {
        return None;
    }
    let (s1, s2) = if day_first { (2, 5) } else { (4, 7) };
    if b[s1] != sep || b[s2] != sep {
        return None;
    }
    let num = |from: usize, len: usize| -> Option<u32> {
        b[from..from + len].iter().try_fold(0u32, |acc, c| c.is_ascii_digit().then(|| acc * 10 + (c - b'0') as u32))
    };
    chrono::NaiveDate::from_ymd_opt(num(y, 4)? as i32, num(m, 2)?, num(d, 2)?)
}

type Why = (String, String);

/// Cast a non-null cell to its type, or say why it is not of that type.
fn cast(f: &Field, v: &str) -> Result<Typed, Why> {
    let bad = |vi: &str, en: &str| Err((format!("'{v}' {vi}"), format!("'{v}' {en}")));
    match f.kind {
        Kind::String => {
            match f.format.as_deref() {
                Some("email") if !is_email(v) => {
                    return bad("không phải địa chỉ thư điện tử", "is not an email address");
                }
                Some("uri") if !v.contains("://") => return bad("không phải địa chỉ URI", "is not a URI"),
                Some("uuid") if !is_uuid(v) => return bad("không phải UUID", "is not a UUID"),
                _ => {}
            }
            Ok(Typed::Text(v.to_string()))
        }
        Kind::Integer => {
            let cleaned: String = match f.group_char {
                Some(g) => v.chars().filter(|c| *c != g).collect(),
                None => v.to_string(),
            };
            match cleaned.trim().parse::<i64>() {
                Ok(n) => Ok(Typed::Int(n)),
                Err(_) => bad("không phải số nguyên", "is not an integer"),
            }
        }
        Kind::Number => {
            let mut s: String = match f.group_char {
                Some(g) => v.chars().filter(|c| *c != g).collect(),
                None => v.to_string(),
            };
            if f.decimal_char != '.' {
                if s.contains('.') {
                    return bad(
                        &format!("dùng dấu '.' trong khi dấu thập phân là '{}'", f.decimal_char),
                        &format!("uses '.' but the decimal mark is '{}'", f.decimal_char),
                    );
                }
                s = s.replace(f.decimal_char, ".");
            }
            match s.trim().parse::<f64>() {
                Ok(n) if n.is_finite() => Ok(Typed::Num(n)),
                _ => bad("không phải số", "is not a number"),
            }
        }
        Kind::Boolean => {
            if f.true_values.iter().any(|t| t == v) {
                Ok(Typed::Bool(true))
            } else if f.false_values.iter().any(|t| t == v) {
                Ok(Typed::Bool(false))
            } else {
                bad("không phải giá trị đúng/sai", "is not a boolean")
            }
        }
        Kind::Date => {
            for fmt in date_formats(f, &["%Y-%m-%d"]) {
                // The two usual forms are read directly: chrono's general parser re-reads the
                // pattern for every cell, which dominates a large load.
                let fast = match fmt.as_str() {
                    "%Y-%m-%d" => fast_date(v, 0, 5, 8, b'-', false),
                    "%d/%m/%Y" => fast_date(v, 6, 3, 0, b'/', true),
                    _ => None,
                };
                if let Some(d) = fast {
                    return Ok(Typed::Date(d));
                }
                if let Ok(d) = chrono::NaiveDate::parse_from_str(v, &fmt) {
                    return Ok(Typed::Date(d));
                }
            }
            let shown = f.format.as_deref().filter(|p| p.contains('%')).unwrap_or("yyyy-mm-dd");
            bad(
                &format!("không phải ngày hợp lệ theo định dạng {shown}"),
                &format!("is not a valid date in the format {shown}"),
            )
        }
        Kind::Datetime => {
            if f.format.as_deref().is_none_or(|p| !p.contains('%'))
                && let Ok(t) = chrono::DateTime::parse_from_rfc3339(v)
            {
                return Ok(Typed::DateTime(t.naive_utc()));
            }
            for fmt in date_formats(f, &["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]) {
                if let Ok(t) = chrono::NaiveDateTime::parse_from_str(v, &fmt) {
                    return Ok(Typed::DateTime(t));
                }
            }
            bad("không phải ngày giờ hợp lệ", "is not a valid date-time")
        }
        Kind::Time => {
            for fmt in date_formats(f, &["%H:%M:%S", "%H:%M"]) {
                if let Ok(t) = chrono::NaiveTime::parse_from_str(v, &fmt) {
                    return Ok(Typed::Text(t.format("%H:%M:%S").to_string()));
                }
            }
            bad("không phải giờ hợp lệ", "is not a valid time")
        }
        Kind::Year => match v.parse::<i32>() {
            Ok(y) if (0..=9999).contains(&y) && v.len() == 4 => Ok(Typed::Int(y as i64)),
            _ => bad("không phải năm (4 chữ số)", "is not a year (4 digits)"),
        },
        Kind::YearMonth => {
            let ok = v.len() == 7
                && v.as_bytes()[4] == b'-'
                && v[..4].parse::<u32>().is_ok()
                && v[5..].parse::<u32>().is_ok_and(|m| (1..=12).contains(&m));
            if ok {
                Ok(Typed::Text(v.to_string()))
            } else {
                bad("không phải năm-tháng (yyyy-mm)", "is not a year-month (yyyy-mm)")
            }
        }
        Kind::Duration => {
            let ok = v.starts_with('P')
                && v.len() > 1
                && v[1..].chars().all(|c| c.is_ascii_digit() || "YMWDTHS.".contains(c));
            if ok {
                Ok(Typed::Text(v.to_string()))
            } else {
                bad("không phải khoảng thời gian ISO 8601", "is not an ISO 8601 duration")
            }
        }
        Kind::Object => match serde_json::from_str::<Value>(v) {
            Ok(Value::Object(_)) => Ok(Typed::Text(v.to_string())),
            _ => bad("không phải đối tượng JSON", "is not a JSON object"),
        },
        Kind::Array => match serde_json::from_str::<Value>(v) {
            Ok(Value::Array(_)) => Ok(Typed::Text(v.to_string())),
            _ if f.format.is_none() && v.contains(',') => Ok(Typed::Text(v.to_string())),
            _ => bad("không phải mảng JSON", "is not a JSON array"),
        },
        Kind::GeoPoint => {
            let parts: Vec<f64> = v.split(',').filter_map(|p| p.trim().parse::<f64>().ok()).collect();
            if parts.len() == 2 && parts[0].abs() <= 180.0 && parts[1].abs() <= 90.0 {
                Ok(Typed::Text(v.to_string()))
            } else {
                bad("không phải tọa độ \"kinh độ, vĩ độ\"", "is not a \"lon, lat\" point")
            }
        }
        Kind::GeoJson => match serde_json::from_str::<Value>(v) {
            Ok(Value::Object(o)) if o.contains_key("type") => Ok(Typed::Text(v.to_string())),
            _ => bad("không phải GeoJSON", "is not GeoJSON"),
        },
        Kind::Any => Ok(Typed::Text(v.to_string())),
    }
}

fn is_email(v: &str) -> bool {
    let Some((local, domain)) = v.split_once('@') else { return false };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !v.contains(char::is_whitespace)
}

fn is_uuid(v: &str) -> bool {
    v.len() == 36
        && v.char_indices().all(|(i, c)| if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_hexdigit() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refs() -> References {
        References {
            provinces: ["14", "01"].map(String::from).into(),
            communes: ["03979", "04045", "00097"].map(String::from).into(),
            successors: [("00001".to_string(), vec!["00097".to_string()])].into(),
            cccd_prefixes: ["001", "014"].map(String::from).into(),
            legacy_provinces: ["01", "14", "28"].map(String::from).into(),
        }
    }

    fn run(schema: Value, csv: &str) -> Report {
        let src = CsvSource::from_bytes(csv.as_bytes()).unwrap();
        Validator::new(&schema, &src.headers, refs()).check_csv(&src)
    }

    fn rules(r: &Report) -> Vec<(u64, String, String)> {
        r.problems.iter().map(|p| (p.row, p.column.clone().unwrap_or_default(), p.rule.clone())).collect()
    }

    #[test]
    fn foreign_keys_must_point_at_existing_values() {
        let schema = json!({"fields": [{"name": "ma"}, {"name": "co_so"}, {"name": "xa"}]});
        let set = ForeignKeySet {
            fields: vec!["co_so".into(), "xa".into()],
            table: "co-so-y-te/co-so".into(),
            reference_fields: vec!["ma_co_so".into(), "ma_xa".into()],
            values: [format!("BV01{KEY_SEPARATOR}03979")].into(),
        };
        let src = CsvSource::from_bytes("ma,co_so,xa\n1,BV01,03979\n2,BV01,04045\n3,,04045\n".as_bytes()).unwrap();
        let r = Validator::new(&schema, &src.headers, refs()).with_foreign_keys(&[set.into()]).check_csv(&src);
        assert_eq!(rules(&r), vec![(3, "co_so, xa".into(), "foreign_key".into())]);
        assert_eq!(
            r.problems[0].message_vi,
            "giá trị 'BV01, 04045' không có trong cột ma_co_so, ma_xa của bảng co-so-y-te/co-so"
        );
        assert_eq!(r.valid_rows, 2, "a key with an empty part is not checked");
    }

    #[test]
    fn types_constraints_and_keys() {
        let schema = json!({
            "fields": [
                {"name": "ma", "type": "string", "constraints": {"pattern": "[A-Z]{2}[0-9]+"}},
                {"name": "so", "type": "integer", "constraints": {"minimum": 0, "maximum": 100}},
                {"name": "tien", "type": "number", "decimalChar": ",", "groupChar": "."},
                {"name": "ngay", "type": "date", "format": "%d/%m/%Y", "constraints": {"minimum": "2000-01-01"}},
                {"name": "loai", "type": "string", "constraints": {"enum": ["A", "B"], "required": true}},
                {"name": "email", "type": "string", "format": "email"},
                {"name": "co", "type": "boolean"}
            ],
            "primaryKey": "ma",
            "missingValues": ["", "NA"]
        });
        let csv = "ma,so,tien,ngay,loai,email,co\n\
                   AB1,5,\"1.234.567,5\",17/05/2020,A,a@b.vn,true\n\
                   AB1,abc,mười,31/02/2020,C,x,maybe\n\
                   ab2,-1,NA,01/01/1999,,NA,0\n\
                   CD3,101,3,01/01/2001,B\n";
        let r = run(schema, csv);
        assert_eq!((r.rows, r.valid_rows, r.invalid_rows), (4, 1, 3));
        assert_eq!(
            rules(&r),
            vec![
                (3, "ma".into(), "unique".into()),
                (3, "so".into(), "type".into()),
                (3, "tien".into(), "type".into()),
                (3, "ngay".into(), "type".into()),
                (3, "loai".into(), "enum".into()),
                (3, "email".into(), "type".into()),
                (3, "co".into(), "type".into()),
                (4, "ma".into(), "pattern".into()),
                (4, "so".into(), "minimum".into()),
                (4, "ngay".into(), "minimum".into()),
                (4, "loai".into(), "required".into()),
                (5, String::new(), "field_count".into()),
                (5, "so".into(), "maximum".into()),
            ]
        );
        assert!(r.problems[3].message_vi.contains("31/02/2020") && r.problems[3].message_en.contains("%d/%m/%Y"));
        assert_eq!(r.problems[0].message_en, "duplicates the value of row 2");
        assert_eq!(r.by_rule.iter().find(|c| c.rule == "type").unwrap().count, 5);
    }

    #[test]
    fn header_mismatch_names_columns() {
        let schema = json!({"fields": [{"name": "a", "type": "integer"}, {"name": "b", "type": "string"}]});
        let r = run(schema, "a,c\n1,x\n");
        assert!(r.header_mismatch);
        assert_eq!(rules(&r), vec![(1, "b".into(), "missing_column".into()), (1, "c".into(), "extra_column".into())]);
        assert_eq!(r.problems[0].message_en, "the schema's column 'b' is missing");
    }

    #[test]
    fn vietnamese_identifiers_and_admin_codes() {
        let schema = json!({"fields": [
            {"name": "cccd", "type": "string", "dictionaryTerm": "cccd@1"},
            {"name": "ngay_sinh", "type": "date", "dictionaryTerm": "date_of_birth@1"},
            {"name": "gioi_tinh", "type": "string", "dictionaryTerm": "gender@1"},
            {"name": "mst", "type": "string", "dictionaryTerm": "mst@1"},
            {"name": "dt", "type": "string", "dictionaryTerm": "phone@1"},
            {"name": "ma_xa", "type": "string", "dictionaryTerm": "commune_code@1"},
            {"name": "ma_tinh", "type": "string", "dictionaryTerm": "province_code@1"}
        ]});
        let csv = "cccd,ngay_sinh,gioi_tinh,mst,dt,ma_xa,ma_tinh\n\
                   014095001234,1995-03-02,Nam,0100233488,0912345678,03979,14\n\
                   014195001234,1995-03-02,Nam,0100233480,0112345678,00001,99\n\
                   099095001234,1996-03-02,Nữ,,,,\n";
        let r = run(schema, csv);
        assert_eq!(
            rules(&r),
            vec![
                (3, "mst".into(), "mst".into()),
                (3, "dt".into(), "phone".into()),
                (3, "ma_xa".into(), "abolished_code".into()),
                (3, "ma_tinh".into(), "admin_unit".into()),
                (3, "cccd".into(), "cccd".into()),
                (4, "cccd".into(), "cccd".into()),
                (4, "cccd".into(), "cccd".into()),
                (4, "cccd".into(), "cccd".into()),
            ]
        );
        assert!(r.problems[2].message_vi.contains("mã mới: 00097"));
        // Row 3: the 4th digit 1 means a woman born in the 1900s, but the row says Nam.
        assert!(r.problems[4].message_en.contains("says female"));
        // Row 4: unknown prefix 099, year 1995 vs 1996, and a male digit for Nữ.
        assert!(r.problems[5].message_en.contains("'099'"));
        assert!(r.problems[6].message_en.contains("birth year 1995"));
    }

    #[test]
    fn composite_keys_blank_rows_and_caps() {
        let schema = json!({"fields": [{"name": "a"}, {"name": "b"}], "primaryKey": ["a", "b"], "uniqueKeys": [["b"]]});
        let r = run(schema, "a,b\n1,x\n1,y\n1,x\n,\n2,\n");
        assert_eq!(
            rules(&r),
            vec![
                (4, "a, b".into(), "primary_key".into()),
                (4, "b".into(), "unique_key".into()),
                (5, String::new(), "blank_row".into()),
                (6, "b".into(), "required".into()),
            ]
        );
        let schema = json!({"fields": [{"name": "n", "type": "integer"}]});
        let mut csv = String::from("n\n");
        for _ in 0..(crate::report::MAX_PROBLEMS + 5) {
            csv.push_str("x\n");
        }
        let r = run(schema, &csv);
        assert_eq!(r.problems.len(), crate::report::MAX_PROBLEMS);
        assert_eq!(r.problems_total, crate::report::MAX_PROBLEMS as u64 + 5);
    }
}
