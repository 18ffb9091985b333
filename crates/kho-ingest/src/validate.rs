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
    /// The date or time formats tried, in order (read once, not per cell).
    formats: Vec<String>,
    missing: Vec<String>,
    required: bool,
    unique: bool,
    min_len: Option<usize>,
    max_len: Option<usize>,
    pattern: Option<(Regex, String)>,
    enum_values: Option<Vec<String>>,
    /// The enum values read as the field's type, for values written differently ("1.0" for 1).
    enum_typed: Vec<Cell>,
    /// Minimum and maximum read as the field's type, and whether each is exclusive.
    bounds: [Option<(Cell, bool)>; 2],
    true_values: Vec<String>,
    false_values: Vec<String>,
    decimal_char: char,
    group_char: Option<char>,
    special: Special,
    /// A value of the right form (Table Schema's `example`), shown when a value breaks the pattern.
    example: Option<String>,
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

impl PartialOrd for Cell {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        self.as_cell_ref().partial_cmp(&other.as_cell_ref())
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

type Typed<'a> = CellRef<'a>;

/// A cell converted to its field's type, its text borrowed from the row: checking a row
/// allocates nothing for the text cells that pass.
#[derive(Debug, Clone, PartialEq)]
pub enum CellRef<'a> {
    Int(i64),
    Num(f64),
    Bool(bool),
    Date(chrono::NaiveDate),
    DateTime(chrono::NaiveDateTime),
    Text(std::borrow::Cow<'a, str>),
}

impl CellRef<'_> {
    pub fn to_cell(&self) -> Cell {
        match self {
            CellRef::Int(v) => Cell::Int(*v),
            CellRef::Num(v) => Cell::Num(*v),
            CellRef::Bool(v) => Cell::Bool(*v),
            CellRef::Date(v) => Cell::Date(*v),
            CellRef::DateTime(v) => Cell::DateTime(*v),
            CellRef::Text(v) => Cell::Text(v.to_string()),
        }
    }
}

impl Cell {
    pub fn as_cell_ref(&self) -> CellRef<'_> {
        match self {
            Cell::Int(v) => CellRef::Int(*v),
            Cell::Num(v) => CellRef::Num(*v),
            Cell::Bool(v) => CellRef::Bool(*v),
            Cell::Date(v) => CellRef::Date(*v),
            Cell::DateTime(v) => CellRef::DateTime(*v),
            Cell::Text(v) => CellRef::Text(std::borrow::Cow::Borrowed(v)),
        }
    }
}

impl PartialOrd for CellRef<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        use CellRef::*;
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

/// Counters of checked rows and cells, kept per thread and added up.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub rows: u64,
    pub valid_rows: u64,
    pub invalid_rows: u64,
    pub cells: u64,
    pub cells_checked: u64,
    pub cells_invalid: u64,
    pub required_cells: u64,
    pub cells_missing: u64,
    pub required_missing: u64,
}

impl Counts {
    pub fn add(&mut self, o: &Counts) {
        self.rows += o.rows;
        self.valid_rows += o.valid_rows;
        self.invalid_rows += o.invalid_rows;
        self.cells += o.cells;
        self.cells_checked += o.cells_checked;
        self.cells_invalid += o.cells_invalid;
        self.required_cells += o.required_cells;
        self.cells_missing += o.cells_missing;
        self.required_missing += o.required_missing;
    }

    fn add_to(&self, r: &mut Report) {
        r.rows += self.rows;
        r.valid_rows += self.valid_rows;
        r.invalid_rows += self.invalid_rows;
        r.cells += self.cells;
        r.cells_checked += self.cells_checked;
        r.cells_invalid += self.cells_invalid;
        r.required_cells += self.required_cells;
        r.cells_missing += self.cells_missing;
        r.required_missing += self.required_missing;
    }
}

/// What a key slot of a row is checked for against the earlier rows.
#[derive(Debug, Clone, Copy)]
enum SlotKind {
    /// A field marked unique (or a one-field primary key).
    Unique(usize),
    /// A primary key of several fields.
    Primary,
    /// One of the schema's `uniqueKeys`.
    UniqueKey(usize),
}

/// One key value of a row, hashed, waiting to be compared with the earlier rows' values.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeySlot {
    /// Hash of the value's text; 0 when there is nothing to compare (a null part, a value
    /// of the wrong type).
    hash: u64,
    /// Where among the row's problems a duplicate is reported: right after the cell's own.
    at: u32,
    /// The cell had no problem of its own, so a duplicate makes one more cell invalid.
    clean: bool,
}

/// The checks of one schema against one file's header that need nothing but the row itself:
/// types, constraints, identifiers, administrative codes, foreign keys. Immutable, so any
/// number of threads check rows with it; only the comparison with earlier rows ([`SeenKeys`])
/// runs in file order.
pub struct Rules {
    fields: Vec<Field>,
    header_len: usize,
    /// A primary key of several fields (a one-field key is a unique field).
    primary_key: Vec<usize>,
    unique_keys: Vec<Vec<usize>>,
    slots: Vec<SlotKind>,
    refs: std::sync::Arc<References>,
    /// Foreign keys: this table's field indexes and the referenced values.
    foreign: Vec<(Vec<usize>, std::sync::Arc<ForeignKeySet>)>,
    /// The CCCD field and the date-of-birth and gender fields it is compared with.
    person: Option<(usize, Option<usize>, Option<usize>)>,
    /// Problems of the header itself (missing and extra columns).
    header_problems: Vec<Problem>,
    header_mismatch: bool,
    missing_required_columns: Vec<String>,
}

/// Keys met so far by hash (8 bytes a row instead of the key's text), with the line where each
/// was first seen: one table per key slot.
#[derive(Default)]
pub struct SeenKeys {
    seen: Vec<LineTable>,
    expected: usize,
}

impl SeenKeys {
    /// Size the tables for about `rows` rows (from the file's size), so that a large file does
    /// not pay for the tables growing, and holding old and new at once, as rows come.
    pub fn expect(&mut self, rows: usize) {
        self.expected = rows;
    }

    /// Compare a row's key values with the earlier rows' and remember the new ones. Returns the
    /// duplicates as (slot, line first seen).
    pub fn check(&mut self, line: u64, slots: &[KeySlot]) -> Vec<(usize, u64)> {
        if self.seen.len() < slots.len() {
            let expected = self.expected;
            self.seen.resize_with(slots.len(), || LineTable::with_capacity(expected));
        }
        let mut dups = Vec::new();
        for (s, slot) in slots.iter().enumerate() {
            if slot.hash != 0
                && let Some(first) = self.seen[s].first_line(slot.hash, line)
            {
                dups.push((s, first));
            }
        }
        dups
    }
}

/// An insert-only set of non-zero 64-bit hashes, each with the line it was first seen on: open
/// addressing over two plain arrays, 12 bytes a slot at most 85% full (a general-purpose map
/// takes 17 bytes a slot, in a power-of-two number of slots). For a ten-million-row file with a
/// key, that is about 145 MB instead of 270. Linear probing keeps a lookup within a few cache
/// lines even that full.
struct LineTable {
    hashes: Vec<u64>,
    /// Lines past 4,294,967,295 are kept as that number.
    lines: Vec<u32>,
    len: usize,
}

impl LineTable {
    fn with_capacity(rows: usize) -> LineTable {
        let slots = (rows.max(1024) / 17 * 20).max(1024);
        LineTable { hashes: vec![0; slots], lines: vec![0; slots], len: 0 }
    }

    /// The slot a hash starts probing at: the hash scaled to the table (the hashes are XXH3,
    /// already uniform, so no power-of-two size is needed).
    fn home(&self, h: u64) -> usize {
        ((u128::from(h) * self.hashes.len() as u128) >> 64) as usize
    }

    /// The line `h` was first seen on, or `None` after remembering it on `line`.
    fn first_line(&mut self, h: u64, line: u64) -> Option<u64> {
        if (self.len + 1) * 20 > self.hashes.len() * 17 {
            self.grow();
        }
        let mut i = self.home(h);
        loop {
            match self.hashes[i] {
                0 => {
                    self.hashes[i] = h;
                    self.lines[i] = u32::try_from(line).unwrap_or(u32::MAX);
                    self.len += 1;
                    return None;
                }
                x if x == h => return Some(u64::from(self.lines[i])),
                _ => i = if i + 1 == self.hashes.len() { 0 } else { i + 1 },
            }
        }
    }

    fn grow(&mut self) {
        let mut bigger = LineTable::with_capacity(self.hashes.len() * 2);
        for (h, l) in self.hashes.iter().zip(&self.lines) {
            if *h != 0 {
                bigger.first_line(*h, u64::from(*l));
            }
        }
        *self = bigger;
    }
}

pub struct Validator {
    rules: std::sync::Arc<Rules>,
    seen: SeenKeys,
    counts: Counts,
    report: Report,
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

/// Which column of `headers` each field (name, title) reads: the column named exactly as the
/// field, else one whose name has the same [`kho_core::text::name_key`] as the field's name or
/// title ("Số giường bệnh" or "SO GIUONG BENH" for `so_giuong_benh`). Each column is read by one
/// field at most.
pub fn match_columns(headers: &[String], fields: &[(&str, Option<&str>)]) -> Vec<Option<usize>> {
    let mut taken = vec![false; headers.len()];
    let mut out = vec![None; fields.len()];
    for (slot, (name, _)) in out.iter_mut().zip(fields) {
        if let Some(i) = headers.iter().position(|h| h == name).filter(|&i| !taken[i]) {
            taken[i] = true;
            *slot = Some(i);
        }
    }
    let keys: Vec<String> = headers.iter().map(|h| kho_core::text::name_key(h)).collect();
    for (slot, (name, title)) in out.iter_mut().zip(fields) {
        if slot.is_some() {
            continue;
        }
        let wanted = [Some(kho_core::text::name_key(name)), title.map(kho_core::text::name_key)];
        let found = keys
            .iter()
            .enumerate()
            .position(|(i, k)| !taken[i] && !k.is_empty() && wanted.iter().flatten().any(|w| w == k));
        if let Some(i) = found {
            taken[i] = true;
            *slot = Some(i);
        }
    }
    out
}

/// The date and time formats a field accepts: its own strptime-style pattern ("%d/%m/%Y"), or
/// the usual ones.
fn formats_of(kind: Kind, format: Option<&str>) -> Vec<String> {
    let default: &[&str] = match kind {
        Kind::Date => &["%Y-%m-%d"],
        Kind::Datetime => &["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"],
        Kind::Time => &["%H:%M:%S", "%H:%M"],
        _ => &[],
    };
    match format {
        Some(p) if p.contains('%') => vec![p.to_string()],
        // "any": the formats people actually write in Vietnam, day first.
        Some("any") if kind != Kind::Time => {
            ["%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y"].iter().map(|s| s.to_string()).collect()
        }
        _ => default.iter().map(|s| s.to_string()).collect(),
    }
}

impl Rules {
    /// The rules of `schema` (terms resolved) for a file with `headers`. Header mismatches
    /// become problems of row 1.
    pub fn new(schema: &Value, headers: &[String], refs: std::sync::Arc<References>) -> Rules {
        let schema_missing = str_list(schema.get("missingValues")).unwrap_or_else(|| vec![String::new()]);
        let pk_names: Vec<String> = match schema.get("primaryKey") {
            Some(Value::String(s)) => vec![s.clone()],
            other => str_list(other).unwrap_or_default(),
        };
        let mut fields = Vec::new();
        let defs: Vec<&Value> = schema.get("fields").and_then(Value::as_array).into_iter().flatten().collect();
        let named: Vec<(&str, Option<&str>)> = defs
            .iter()
            .map(|f| {
                let text = |k: &str| f.get(k).and_then(Value::as_str);
                (text("name").unwrap_or(""), text("title"))
            })
            .collect();
        let columns = match_columns(headers, &named);
        for (i, f) in defs.into_iter().enumerate() {
            let name = f.get("name").and_then(Value::as_str).unwrap_or("").to_string();
            let c = f.get("constraints");
            let get = |k: &str| c.and_then(|c| c.get(k));
            let pattern = get("pattern")
                .and_then(Value::as_str)
                .and_then(|p| Regex::new(&format!("^(?:{p})$")).ok().map(|r| (r, p.to_string())));
            let in_pk = pk_names.contains(&name);
            let kind = kind_of(f.get("type").and_then(Value::as_str).unwrap_or("any"));
            let format = f.get("format").and_then(Value::as_str).map(str::to_string);
            let mut field = Field {
                column: columns[i],
                kind,
                formats: formats_of(kind, format.as_deref()),
                format,
                missing: str_list(f.get("missingValues")).unwrap_or_else(|| schema_missing.clone()),
                required: in_pk || get("required").and_then(Value::as_bool).unwrap_or(false),
                unique: (in_pk && pk_names.len() == 1) || get("unique").and_then(Value::as_bool).unwrap_or(false),
                min_len: get("minLength").and_then(Value::as_u64).map(|v| v as usize),
                max_len: get("maxLength").and_then(Value::as_u64).map(|v| v as usize),
                pattern,
                enum_values: str_list(get("enum")),
                enum_typed: Vec::new(),
                bounds: [None, None],
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
                example: f.get("example").and_then(Value::as_str).map(str::to_string),
                name,
            };
            // Enum values and bounds are read as the field's type once, not for every cell. A
            // bound is written in the field's own format or, for dates, in ISO form.
            field.enum_typed =
                field.enum_values.iter().flatten().filter_map(|a| cast(&field, a).ok().map(|t| t.to_cell())).collect();
            let bound = |b: &Value| match b {
                Value::String(s) => cast(&field, s).ok().or_else(|| iso_bound(field.kind, s)).map(|t| t.to_cell()),
                Value::Number(n) => n.as_i64().map(Cell::Int).or_else(|| n.as_f64().map(Cell::Num)),
                _ => None,
            };
            let minimum = get("exclusiveMinimum").map(|v| (v, true)).or_else(|| get("minimum").map(|v| (v, false)));
            let maximum = get("exclusiveMaximum").map(|v| (v, true)).or_else(|| get("maximum").map(|v| (v, false)));
            field.bounds = [
                minimum.and_then(|(v, ex)| bound(v).map(|b| (b, ex))),
                maximum.and_then(|(v, ex)| bound(v).map(|b| (b, ex))),
            ];
            fields.push(field);
        }
        let mut header_problems = Vec::new();
        let (mut header_mismatch, mut missing_required_columns) = (false, Vec::new());
        for f in &fields {
            if f.column.is_none() {
                header_mismatch = true;
                if f.required {
                    missing_required_columns.push(f.name.clone());
                }
                header_problems.push(msg(
                    "missing_column",
                    1,
                    Some(&f.name),
                    None,
                    format!("thiếu cột '{}' của lược đồ", f.name),
                    format!("the schema's column '{}' is missing", f.name),
                ));
            }
        }
        for (i, h) in headers.iter().enumerate() {
            if !fields.iter().any(|f| f.column == Some(i)) {
                header_mismatch = true;
                header_problems.push(msg(
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
        let unique_keys: Vec<Vec<usize>> = schema
            .get("uniqueKeys")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|k| str_list(Some(k)))
            .map(|names| index_of(&names))
            .collect();
        let mut slots: Vec<SlotKind> =
            fields.iter().enumerate().filter(|(_, f)| f.unique).map(|(i, _)| SlotKind::Unique(i)).collect();
        if !primary_key.is_empty() {
            slots.push(SlotKind::Primary);
        }
        slots.extend((0..unique_keys.len()).map(SlotKind::UniqueKey));
        let find = |s: Special| fields.iter().position(|f| f.special == s);
        let person = find(Special::Cccd).map(|c| (c, find(Special::DateOfBirth), find(Special::Gender)));
        Rules {
            header_len: headers.len(),
            fields,
            primary_key,
            unique_keys,
            slots,
            refs,
            foreign: Vec::new(),
            person,
            header_problems,
            header_mismatch,
            missing_required_columns,
        }
    }

    /// Check the schema's foreign keys against the referenced tables' values. A key whose
    /// fields are not all in this table is ignored (the schema check reports it).
    pub fn with_foreign_keys(mut self, sets: &[std::sync::Arc<ForeignKeySet>]) -> Self {
        self.add_foreign_keys(sets);
        self
    }

    fn add_foreign_keys(&mut self, sets: &[std::sync::Arc<ForeignKeySet>]) {
        for set in sets {
            let idx: Option<Vec<usize>> =
                set.fields.iter().map(|n| self.fields.iter().position(|f| &f.name == n)).collect();
            if let Some(idx) = idx.filter(|i| !i.is_empty()) {
                self.foreign.push((idx, set.clone()));
            }
        }
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

    /// Key slots per row (see [`KeySlot`]).
    pub fn key_slots(&self) -> usize {
        self.slots.len()
    }

    /// A report holding what is known before any row: the header's problems.
    pub fn empty_report(&self) -> Report {
        let mut report = Report {
            header_mismatch: self.header_mismatch,
            missing_required_columns: self.missing_required_columns.clone(),
            ..Default::default()
        };
        for p in &self.header_problems {
            report.push(p.clone());
        }
        report
    }

    /// A field's text in the row, `None` when it has no column or the value is a missing value.
    fn text<'a>(&self, cells: &[&'a str], i: usize) -> Option<&'a str> {
        let f = &self.fields[i];
        let raw = cells.get(f.column?).copied().unwrap_or("");
        (!f.missing.iter().any(|m| m == raw)).then_some(raw)
    }

    /// Record a row the CSV reader could not parse.
    pub fn malformed_row(line: u64, e: &str) -> Problem {
        msg("malformed_row", line, None, None, format!("dòng không đọc được: {e}"), format!("unreadable row: {e}"))
    }

    /// Check a row for everything that needs only the row itself. Its problems are added to
    /// `problems`, one [`KeySlot`] per key slot to `slots`, one typed value per field to
    /// `typed` (`None`: missing or invalid). The row is valid so far if no problem was added.
    pub fn check<'a>(
        &self,
        line: u64,
        cells: &[&'a str],
        counts: &mut Counts,
        problems: &mut Vec<Problem>,
        slots: &mut Vec<KeySlot>,
        typed: &mut Vec<Option<CellRef<'a>>>,
    ) {
        let start = problems.len();
        let first_slot = slots.len();
        slots.resize(first_slot + self.slots.len(), KeySlot::default());
        if cells.iter().all(|c| c.trim().is_empty()) {
            problems.push(msg("blank_row", line, None, None, "dòng trống".into(), "blank row".into()));
            typed.extend(std::iter::repeat_n(None, self.fields.len()));
            return;
        }
        if cells.len() != self.header_len {
            problems.push(msg(
                "field_count",
                line,
                None,
                None,
                format!("dòng có {} ô, dòng tiêu đề có {} cột", cells.len(), self.header_len),
                format!("the row has {} cells but the header has {} columns", cells.len(), self.header_len),
            ));
        }
        let mut unique_slot = first_slot;
        for i in 0..self.fields.len() {
            let before = problems.len();
            let t = self.check_cell(line, i, cells, counts, problems);
            if self.fields[i].unique {
                if let Some(v) = t.as_ref().and_then(|_| self.text(cells, i)) {
                    slots[unique_slot] = KeySlot {
                        hash: nonzero(crate::hash64(v.as_bytes())),
                        at: (problems.len() - start) as u32,
                        clean: problems.len() == before,
                    };
                }
                unique_slot += 1;
            }
            typed.push(t);
        }
        let at = (problems.len() - start) as u32;
        let keys = (!self.primary_key.is_empty()).then_some(&self.primary_key).into_iter().chain(&self.unique_keys);
        for (s, idx) in (unique_slot..).zip(keys) {
            // Keys ignore rows where any part is null.
            let parts: Option<Vec<&str>> = idx.iter().map(|i| self.text(cells, *i)).collect();
            if let Some(parts) = parts {
                slots[s] = KeySlot { hash: nonzero(crate::hash_parts(&parts)), at, clean: true };
            }
        }
        self.check_foreign(line, cells, problems);
        self.check_person(line, cells, problems);
    }

    /// The problems of a row's duplicate keys (found by [`SeenKeys::check`]), inserted where
    /// the row's own order puts them; counts the cells they make invalid.
    pub fn add_duplicates(
        &self,
        line: u64,
        cells: &[&str],
        row_slots: &[KeySlot],
        dups: &[(usize, u64)],
        counts: &mut Counts,
        problems: &mut Vec<Problem>,
    ) {
        for (inserted, (s, first)) in dups.iter().enumerate() {
            let slot = row_slots[*s];
            let p = match self.slots[*s] {
                SlotKind::Unique(i) => {
                    if slot.clean {
                        counts.cells_invalid += 1;
                    }
                    msg(
                        "unique",
                        line,
                        Some(&self.fields[i].name),
                        self.text(cells, i),
                        format!("trùng giá trị với dòng {first}"),
                        format!("duplicates the value of row {first}"),
                    )
                }
                SlotKind::Primary | SlotKind::UniqueKey(_) => {
                    let (idx, primary) = match self.slots[*s] {
                        SlotKind::UniqueKey(k) => (&self.unique_keys[k], false),
                        _ => (&self.primary_key, true),
                    };
                    let cols = idx.iter().map(|i| self.fields[*i].name.as_str()).collect::<Vec<_>>().join(", ");
                    let vals = idx.iter().filter_map(|i| self.text(cells, *i)).collect::<Vec<_>>().join(", ");
                    if primary {
                        msg(
                            "primary_key",
                            line,
                            Some(&cols),
                            Some(&vals),
                            format!("khóa chính ({cols}) trùng với dòng {first}"),
                            format!("the primary key ({cols}) duplicates row {first}"),
                        )
                    } else {
                        msg(
                            "unique_key",
                            line,
                            Some(&cols),
                            Some(&vals),
                            format!("bộ giá trị ({cols}) trùng với dòng {first}"),
                            format!("the values of ({cols}) duplicate row {first}"),
                        )
                    }
                }
            };
            let at = (slot.at as usize + inserted).min(problems.len());
            problems.insert(at, p);
        }
    }

    /// Check one cell; returns its typed value when it has one of the field's type.
    fn check_cell<'a>(
        &self,
        line: u64,
        i: usize,
        cells: &[&'a str],
        counts: &mut Counts,
        problems: &mut Vec<Problem>,
    ) -> Option<CellRef<'a>> {
        let f = &self.fields[i];
        counts.cells += 1;
        if f.required {
            counts.required_cells += 1;
        }
        let Some(col) = f.column else {
            counts.cells_missing += 1;
            if f.required {
                counts.required_missing += 1;
            }
            return None;
        };
        // A cell neutralised in one of kho's own CSV files ('=…) is read as it was stored.
        let raw: &'a str = kho_core::text::csv_unescape(cells.get(col).copied().unwrap_or(""));
        counts.cells_checked += 1;
        let before = problems.len();
        let name = f.name.as_str();
        let problem = |rule: &str, vi: String, en: String| msg(rule, line, Some(name), Some(raw), vi, en);
        if f.missing.iter().any(|m| m == raw) {
            counts.cells_missing += 1;
            if f.required {
                counts.required_missing += 1;
                counts.cells_invalid += 1;
                problems.push(problem("required", "bắt buộc phải có giá trị".into(), "a value is required".into()));
            }
            return None;
        }
        let v = raw;
        // A phone number is kept as its digits: "0212 3852 345" and "0212.3852.345" are one
        // number, and a pattern on the term is about the digits.
        let phone_digits: Option<String> = (f.special == Special::Phone && raw.contains([' ', '.', '-']))
            .then(|| raw.chars().filter(|c| !matches!(c, ' ' | '.' | '-')).collect());
        let typed = match cast(f, v) {
            Ok(t) => t,
            Err((vi, en)) => {
                counts.cells_invalid += 1;
                problems.push(problem("type", vi, en));
                return None;
            }
        };
        if f.min_len.is_some() || f.max_len.is_some() {
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
        }
        if let Some((re, p)) = &f.pattern
            && !re.is_match(phone_digits.as_deref().unwrap_or(v))
        {
            // People are shown a value of the right form, not the expression.
            let (vi, en) = match &f.example {
                Some(ex) => (
                    format!("không đúng định dạng; ví dụ một giá trị đúng: {ex}"),
                    format!("does not have the expected form (for example {ex}; pattern {p})"),
                ),
                None => {
                    ("không đúng định dạng quy định cho cột".to_string(), format!("does not match the pattern {p}"))
                }
            };
            problems.push(problem("pattern", vi, en));
        }
        if let Some(allowed) = &f.enum_values {
            let hit = allowed.iter().any(|a| a == v) || f.enum_typed.iter().any(|a| a.as_cell_ref() == typed);
            if !hit {
                let list = allowed.join(", ");
                problems.push(problem("enum", format!("phải là một trong: {list}"), format!("must be one of: {list}")));
            }
        }
        for (bound, is_min) in [(&f.bounds[0], true), (&f.bounds[1], false)] {
            let Some((b, exclusive)) = bound else { continue };
            let b = b.as_cell_ref();
            let bad = match (is_min, exclusive) {
                (true, false) => typed < b,
                (true, true) => typed <= b,
                (false, false) => typed > b,
                (false, true) => typed >= b,
            };
            if bad {
                let shown = b.to_cell().to_string();
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
        let own = &mut problems[before..];
        if own.iter().any(|p| matches!(p.rule.as_str(), "cccd" | "mst" | "phone")) {
            let kept: Vec<Problem> = own.iter().filter(|p| p.rule != "pattern").cloned().collect();
            problems.truncate(before);
            problems.extend(kept);
        }
        if problems.len() > before {
            counts.cells_invalid += 1;
            return Some(typed);
        }
        Some(match phone_digits {
            Some(digits) => CellRef::Text(std::borrow::Cow::Owned(digits)),
            None => typed,
        })
    }

    /// Each foreign key's values must exist in the referenced table (rows where a part is empty
    /// are not checked, as in Table Schema).
    fn check_foreign(&self, line: u64, cells: &[&str], problems: &mut Vec<Problem>) {
        for (idx, set) in &self.foreign {
            let Some(parts) = idx.iter().map(|i| self.text(cells, *i)).collect::<Option<Vec<&str>>>() else {
                continue;
            };
            let key = parts.join(&KEY_SEPARATOR.to_string());
            if set.values.contains(&key) {
                continue;
            }
            let cols = idx.iter().map(|i| self.fields[*i].name.as_str()).collect::<Vec<_>>().join(", ");
            let (table, rf) = (set.table.as_str(), set.reference_fields.join(", "));
            let shown = parts.join(", ");
            problems.push(msg(
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
    fn check_person(&self, line: u64, cells: &[&str], problems: &mut Vec<Problem>) {
        let Some((ci, dob_i, gender_i)) = self.person else { return };
        let Some(cccd) = self.text(cells, ci).filter(|v| v.len() == 12 && v.bytes().all(|b| b.is_ascii_digit())) else {
            return;
        };
        let cccd_col = self.fields[ci].name.as_str();
        if let Some(di) = dob_i {
            let year = self.text(cells, di).and_then(|d| cast(&self.fields[di], d).ok()).and_then(|t| match t {
                CellRef::Date(d) => Some(chrono::Datelike::year(&d)),
                CellRef::DateTime(d) => Some(chrono::Datelike::year(&d)),
                _ => None,
            });
            if let (Some(year), Some(encoded)) = (year, vn::cccd_birth_year(cccd))
                && year != encoded
            {
                let dob = &self.fields[di].name;
                problems.push(msg(
                    "cccd",
                    line,
                    Some(cccd_col),
                    Some(cccd),
                    format!("số CCCD mã hóa năm sinh {encoded}, nhưng cột {dob} ghi năm {year}"),
                    format!("the citizen ID encodes birth year {encoded}, but column {dob} says {year}"),
                ));
            }
        }
        if let Some(gi) = gender_i {
            let female = match self.text(cells, gi).map(kho_core::text::fold).as_deref() {
                Some("nu") => Some(true),
                Some("nam") => Some(false),
                _ => None,
            };
            if let (Some(female), Some((_, encoded_female))) = (female, vn::cccd_century_sex(cccd))
                && female != encoded_female
            {
                let g = &self.fields[gi].name;
                let (vi, en) = if encoded_female { ("nữ", "female") } else { ("nam", "male") };
                problems.push(msg(
                    "cccd",
                    line,
                    Some(cccd_col),
                    Some(cccd),
                    format!("chữ số thứ 4 của CCCD cho biết giới tính {vi}, khác cột {g}"),
                    format!("the citizen ID's 4th digit says {en}, unlike column {g}"),
                ));
            }
        }
    }
}

/// Key hashes use 0 for "nothing to compare".
fn nonzero(h: u64) -> u64 {
    h.max(1)
}

/// Count a finished row and move its problems into the report; returns whether it is valid
/// and its problems as "column: message" in Vietnamese (for the quarantine file).
pub fn finish_row(report: &mut Report, counts: &mut Counts, problems: &mut Vec<Problem>) -> (bool, Vec<String>) {
    counts.rows += 1;
    if problems.is_empty() {
        counts.valid_rows += 1;
        return (true, Vec::new());
    }
    counts.invalid_rows += 1;
    let messages = problems
        .iter()
        .map(|p| match &p.column {
            Some(c) => format!("{c}: {}", p.message_vi),
            None => p.message_vi.clone(),
        })
        .collect();
    for p in problems.drain(..) {
        report.push(p);
    }
    (false, messages)
}

impl Validator {
    /// Prepare a validator for `schema` (terms resolved) and the file's header. Header
    /// mismatches are recorded in the report straight away (row 1).
    pub fn new(schema: &Value, headers: &[String], refs: impl Into<std::sync::Arc<References>>) -> Validator {
        Validator::from_rules(Rules::new(schema, headers, refs.into()), headers)
    }

    fn from_rules(rules: Rules, headers: &[String]) -> Validator {
        let mut report = rules.empty_report();
        report.columns = headers.to_vec();
        Validator { rules: std::sync::Arc::new(rules), seen: SeenKeys::default(), counts: Counts::default(), report }
    }

    /// Check the schema's foreign keys against the referenced tables' values (before the
    /// rules are shared with [`Validator::rules`]).
    pub fn with_foreign_keys(mut self, sets: &[std::sync::Arc<ForeignKeySet>]) -> Self {
        if let Some(rules) = std::sync::Arc::get_mut(&mut self.rules) {
            rules.add_foreign_keys(sets);
        }
        self
    }

    /// The rules, to share with the threads that check rows.
    pub fn rules(&self) -> std::sync::Arc<Rules> {
        self.rules.clone()
    }

    /// The columns as they will be stored: name and type, in schema order.
    pub fn columns(&self) -> Vec<(String, ColumnType)> {
        self.rules.columns()
    }

    /// Indexes (in schema order) of the primary-key fields.
    pub fn primary_key_fields(&self) -> Vec<usize> {
        self.rules.primary_key_fields()
    }

    /// The keys met so far, for checking rows in file order.
    pub fn seen_keys(&mut self) -> &mut SeenKeys {
        &mut self.seen
    }

    /// Count a finished row into `counts` and its problems into the report (see [`finish_row`]).
    pub fn finish_row(&mut self, counts: &mut Counts, problems: &mut Vec<Problem>) -> (bool, Vec<String>) {
        finish_row(&mut self.report, counts, problems)
    }

    /// Add counters gathered elsewhere (by the threads that checked the rows).
    pub fn add_counts(&mut self, counts: &Counts) {
        self.counts.add(counts);
    }

    pub fn into_report(mut self) -> Report {
        self.counts.add_to(&mut self.report);
        self.report
    }

    pub fn set_source(&mut self, source: &CsvSource) {
        self.report.encoding = source.encoding.to_string();
        self.report.delimiter = match source.delimiter {
            b'\t' => "\\t".to_string(),
            d => (d as char).to_string(),
        };
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
        self.into_report()
    }

    /// Record a row the CSV reader could not parse.
    pub fn malformed_row(&mut self, line: u64, e: &str) {
        finish_row(&mut self.report, &mut self.counts, &mut vec![Rules::malformed_row(line, e)]);
    }

    /// Check one data row (`line` is its line in the file).
    pub fn check_row(&mut self, line: u64, cells: &[String]) -> RowOutcome {
        let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
        let (mut problems, mut slots, mut typed) = (Vec::new(), Vec::new(), Vec::new());
        self.rules.check(line, &cells, &mut self.counts, &mut problems, &mut slots, &mut typed);
        let dups = self.seen.check(line, &slots);
        if !dups.is_empty() {
            self.rules.add_duplicates(line, &cells, &slots, &dups, &mut self.counts, &mut problems);
        }
        let (valid, messages) = finish_row(&mut self.report, &mut self.counts, &mut problems);
        RowOutcome { valid, cells: typed.iter().map(|t| t.as_ref().map(CellRef::to_cell)).collect(), messages }
    }
}

fn iso_bound(kind: Kind, s: &str) -> Option<Typed<'static>> {
    match kind {
        Kind::Date => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().map(CellRef::Date),
        Kind::Datetime => chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").ok().map(CellRef::DateTime),
        Kind::Time => {
            chrono::NaiveTime::parse_from_str(s, "%H:%M:%S").ok().map(|_| CellRef::Text(s.to_string().into()))
        }
        _ => None,
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
fn cast<'a>(f: &Field, v: &'a str) -> Result<Typed<'a>, Why> {
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
            Ok(Typed::Text(v.into()))
        }
        Kind::Integer => {
            let cleaned: std::borrow::Cow<str> = match f.group_char {
                Some(g) => v.chars().filter(|c| *c != g).collect::<String>().into(),
                None => v.into(),
            };
            match cleaned.trim().parse::<i64>() {
                Ok(n) => Ok(Typed::Int(n)),
                // Digits grouped as people write them ("1.234.567"), unless the field says how.
                Err(_) => match f.group_char.is_none().then(|| vn::integer(v)).flatten() {
                    Some(n) => Ok(Typed::Int(n)),
                    None => bad("không phải số nguyên", "is not an integer"),
                },
            }
        }
        Kind::Number => {
            let mut s: std::borrow::Cow<str> = match f.group_char {
                Some(g) => v.chars().filter(|c| *c != g).collect::<String>().into(),
                None => v.into(),
            };
            if f.decimal_char != '.' {
                if s.contains('.') {
                    return bad(
                        &format!("dùng dấu '.' trong khi dấu thập phân là '{}'", f.decimal_char),
                        &format!("uses '.' but the decimal mark is '{}'", f.decimal_char),
                    );
                }
                s = s.replace(f.decimal_char, ".").into();
            }
            match s.trim().parse::<f64>() {
                Ok(n) if n.is_finite() => Ok(Typed::Num(n)),
                // "1.234,5", "3,5", "12,5%": Vietnamese writing, unless the field says how.
                _ => match (f.group_char.is_none() && f.decimal_char == '.').then(|| vn::number(v)).flatten() {
                    Some(n) => Ok(Typed::Num(n)),
                    None => bad("không phải số", "is not a number"),
                },
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
            for fmt in &f.formats {
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
                if let Ok(d) = chrono::NaiveDate::parse_from_str(v, fmt) {
                    return Ok(Typed::Date(d));
                }
            }
            // Whatever the field's own format, a date written unambiguously is read: as a
            // spreadsheet's date cell gives it (ISO), or day first as Vietnam writes it.
            let usual = [(0, 5, 8, b'-', false), (6, 3, 0, b'/', true), (6, 3, 0, b'-', true), (6, 3, 0, b'.', true)];
            if let Some(d) = usual.iter().find_map(|&(y, m, d, sep, day_first)| fast_date(v, y, m, d, sep, day_first)) {
                return Ok(Typed::Date(d));
            }
            if let Ok(d) = chrono::NaiveDate::parse_from_str(v, "%d/%m/%Y") {
                return Ok(Typed::Date(d));
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
            for fmt in &f.formats {
                if let Ok(t) = chrono::NaiveDateTime::parse_from_str(v, fmt) {
                    return Ok(Typed::DateTime(t));
                }
            }
            bad("không phải ngày giờ hợp lệ", "is not a valid date-time")
        }
        Kind::Time => {
            for fmt in &f.formats {
                if let Ok(t) = chrono::NaiveTime::parse_from_str(v, fmt) {
                    return Ok(Typed::Text(t.format("%H:%M:%S").to_string().into()));
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
                Ok(Typed::Text(v.into()))
            } else {
                bad("không phải năm-tháng (yyyy-mm)", "is not a year-month (yyyy-mm)")
            }
        }
        Kind::Duration => {
            let ok = v.starts_with('P')
                && v.len() > 1
                && v[1..].chars().all(|c| c.is_ascii_digit() || "YMWDTHS.".contains(c));
            if ok {
                Ok(Typed::Text(v.into()))
            } else {
                bad("không phải khoảng thời gian ISO 8601", "is not an ISO 8601 duration")
            }
        }
        Kind::Object => match serde_json::from_str::<Value>(v) {
            Ok(Value::Object(_)) => Ok(Typed::Text(v.into())),
            _ => bad("không phải đối tượng JSON", "is not a JSON object"),
        },
        Kind::Array => match serde_json::from_str::<Value>(v) {
            Ok(Value::Array(_)) => Ok(Typed::Text(v.into())),
            _ if f.format.is_none() && v.contains(',') => Ok(Typed::Text(v.into())),
            _ => bad("không phải mảng JSON", "is not a JSON array"),
        },
        Kind::GeoPoint => {
            let parts: Vec<f64> = v.split(',').filter_map(|p| p.trim().parse::<f64>().ok()).collect();
            if parts.len() == 2 && parts[0].abs() <= 180.0 && parts[1].abs() <= 90.0 {
                Ok(Typed::Text(v.into()))
            } else {
                bad("không phải tọa độ \"kinh độ, vĩ độ\"", "is not a \"lon, lat\" point")
            }
        }
        Kind::GeoJson => match serde_json::from_str::<Value>(v) {
            Ok(Value::Object(o)) if o.contains_key("type") => Ok(Typed::Text(v.into())),
            _ => bad("không phải GeoJSON", "is not GeoJSON"),
        },
        Kind::Any => Ok(Typed::Text(v.into())),
    }
}

fn is_email(v: &str) -> bool {
    kho_core::text::is_email(v)
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
    fn the_line_table_remembers_first_lines_while_growing() {
        let mut t = LineTable::with_capacity(10);
        let h = |i: u64| crate::hash64(&i.to_le_bytes()).max(1);
        for i in 0..5_000u64 {
            assert_eq!(t.first_line(h(i), i + 2), None);
        }
        assert!(t.hashes.len() >= 5_000 / 17 * 20, "grew from 1,024 slots");
        for i in (0..5_000u64).step_by(7) {
            assert_eq!(t.first_line(h(i), 99_999), Some(i + 2));
        }
        assert_eq!(t.len, 5_000);
        // Lines beyond 32 bits are kept as the largest one.
        assert_eq!(t.first_line(h(1 << 40), 1 << 40), None);
        assert_eq!(t.first_line(h(1 << 40), 3), Some(u64::from(u32::MAX)));
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
