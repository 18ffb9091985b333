//! Turning a checked file into a version: the valid rows as Parquet (typed columns that DuckDB,
//! pyarrow and DataFusion read directly), the invalid rows as a quarantine CSV the steward can
//! fix and upload again, and a key index to tell what changed since the previous version.
//!
//! Rows are converted and written in batches, so memory stays bounded by the batch size and
//! the key index, whatever the file's size.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, BooleanBuilder, Date32Array, Date32Builder, Float64Array, Float64Builder,
    Int64Array, Int64Builder, StringArray, StringBuilder, TimestampMicrosecondArray, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde_json::Value;

use crate::read::{CsvSource, ReadError};
use crate::report::Report;
use crate::validate::{Cell, ColumnType, References, Validator};

const BATCH_ROWS: usize = 65_536;

fn io_err(what: &str, e: impl std::fmt::Display) -> ReadError {
    ReadError {
        code: "io", message: format!("{what}: {e}"), message_vi: format!("lỗi ghi dữ liệu: {e}"), line: None
    }
}

/// Rows of a version by key, for telling versions apart: primary key → row hash, or (without a
/// key) row hash → count.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyIndex {
    /// Hash of the key → hash of the row.
    pub by_key: crate::HashIndex<u64>,
    pub by_row: crate::HashIndex<u32>,
}

/// Rows added, removed and changed from one version to the next.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Diff {
    pub added: u64,
    pub removed: u64,
    pub changed: u64,
}

impl KeyIndex {
    fn add(&mut self, pk: &[usize], cells: &[Option<Cell>]) {
        let hash = row_hash(cells);
        if pk.is_empty() {
            *self.by_row.entry(hash).or_default() += 1;
        } else {
            let mut key = crate::Fnv::default();
            for i in pk {
                cell_bytes(cells[*i].as_ref(), &mut |b| key.write(b));
            }
            self.by_key.insert(key.0, hash);
        }
    }

    /// What `self` (the new version) changed compared with `prev`.
    pub fn diff_from(&self, prev: &KeyIndex) -> Diff {
        let mut d = Diff::default();
        for (k, h) in &self.by_key {
            match prev.by_key.get(k) {
                None => d.added += 1,
                Some(old) if old != h => d.changed += 1,
                Some(_) => {}
            }
        }
        d.removed += prev.by_key.keys().filter(|k| !self.by_key.contains_key(*k)).count() as u64;
        for (h, n) in &self.by_row {
            let before = prev.by_row.get(h).copied().unwrap_or(0);
            d.added += n.saturating_sub(before) as u64;
        }
        for (h, n) in &prev.by_row {
            let now = self.by_row.get(h).copied().unwrap_or(0);
            d.removed += n.saturating_sub(now) as u64;
        }
        d
    }
}

/// The file a version's key index is kept in, beside its Parquet file.
pub const KEYS_FILE: &str = "keys.bin";
const KEYS_MAGIC: &[u8; 8] = b"KHOKEYS1";

impl KeyIndex {
    /// Write the index with the key fields it was built on, so that the next publish compares
    /// against it without decoding this version's Parquet file again.
    pub fn save(&self, key_names: &[String], path: &Path) -> Result<(), ReadError> {
        use std::io::Write;
        let e = |e| io_err("writing the key index", e);
        let mut w = std::io::BufWriter::new(File::create(path).map_err(e)?);
        w.write_all(KEYS_MAGIC).map_err(e)?;
        w.write_all(&(key_names.len() as u32).to_le_bytes()).map_err(e)?;
        for n in key_names {
            w.write_all(&(n.len() as u32).to_le_bytes()).map_err(e)?;
            w.write_all(n.as_bytes()).map_err(e)?;
        }
        w.write_all(&(self.by_key.len() as u64).to_le_bytes()).map_err(e)?;
        for (k, v) in &self.by_key {
            w.write_all(&k.to_le_bytes()).map_err(e)?;
            w.write_all(&v.to_le_bytes()).map_err(e)?;
        }
        w.write_all(&(self.by_row.len() as u64).to_le_bytes()).map_err(e)?;
        for (k, v) in &self.by_row {
            w.write_all(&k.to_le_bytes()).map_err(e)?;
            w.write_all(&v.to_le_bytes()).map_err(e)?;
        }
        w.flush().map_err(e)
    }

    /// Read an index written by [`KeyIndex::save`]; `None` when it was built on other key
    /// fields (the schema's key changed) or the file is not one.
    pub fn load(path: &Path, key_names: &[String]) -> Result<Option<KeyIndex>, ReadError> {
        let bytes = std::fs::read(path).map_err(|e| io_err("reading the key index", e))?;
        let mut at = 0usize;
        let mut take = |n: usize| -> Option<&[u8]> {
            let part = bytes.get(at..at + n)?;
            at += n;
            Some(part)
        };
        let u32_of = |b: &[u8]| u32::from_le_bytes(b.try_into().unwrap_or([0; 4]));
        let u64_of = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
        let parsed = (|| {
            if take(8)? != KEYS_MAGIC {
                return None;
            }
            let n = u32_of(take(4)?) as usize;
            let mut names = Vec::with_capacity(n.min(64));
            for _ in 0..n {
                let len = u32_of(take(4)?) as usize;
                names.push(String::from_utf8(take(len)?.to_vec()).ok()?);
            }
            if names != key_names {
                return None;
            }
            let mut keys = KeyIndex::default();
            let n = u64_of(take(8)?) as usize;
            keys.by_key.reserve(n);
            for _ in 0..n {
                let (k, v) = (u64_of(take(8)?), u64_of(take(8)?));
                keys.by_key.insert(k, v);
            }
            let n = u64_of(take(8)?) as usize;
            keys.by_row.reserve(n);
            for _ in 0..n {
                let (k, v) = (u64_of(take(8)?), u32_of(take(4)?));
                keys.by_row.insert(k, v);
            }
            Some(keys)
        })();
        Ok(parsed)
    }
}

/// FNV-1a over the canonical text of every cell: stable across runs and releases (unlike the
/// standard library's hasher), which matters because versions are compared later.
fn row_hash(cells: &[Option<Cell>]) -> u64 {
    let mut h = crate::Fnv::default();
    for c in cells {
        cell_bytes(c.as_ref(), &mut |b| h.write(b));
        h.write(&[0x1f]);
    }
    h.0
}

/// A cell's canonical bytes for hashing: a type tag and the value's binary form (no text
/// formatting per cell). Integers and numbers hash alike when equal, as they compare alike.
fn cell_bytes(c: Option<&Cell>, eat: &mut impl FnMut(&[u8])) {
    match c {
        None => eat(&[0]),
        Some(Cell::Int(v)) => {
            eat(&[1]);
            eat(&(*v as f64).to_bits().to_le_bytes());
        }
        Some(Cell::Num(v)) => {
            eat(&[1]);
            eat(&v.to_bits().to_le_bytes());
        }
        Some(Cell::Bool(v)) => eat(&[2, *v as u8]),
        Some(Cell::Date(d)) => {
            eat(&[3]);
            eat(&(*d - epoch()).num_days().to_le_bytes());
        }
        Some(Cell::DateTime(t)) => {
            eat(&[4]);
            eat(&t.and_utc().timestamp_micros().to_le_bytes());
        }
        Some(Cell::Text(t)) => {
            eat(&[5]);
            eat(t.as_bytes());
        }
    }
}

pub fn arrow_schema(columns: &[(String, ColumnType)]) -> Schema {
    Schema::new(
        columns
            .iter()
            .map(|(name, t)| {
                let dt = match t {
                    ColumnType::Int => DataType::Int64,
                    ColumnType::Num => DataType::Float64,
                    ColumnType::Bool => DataType::Boolean,
                    ColumnType::Date => DataType::Date32,
                    ColumnType::DateTime => DataType::Timestamp(TimeUnit::Microsecond, None),
                    ColumnType::Text => DataType::Utf8,
                };
                Field::new(name, dt, true)
            })
            .collect::<Vec<_>>(),
    )
}

enum Builder {
    Int(Int64Builder),
    Num(Float64Builder),
    Bool(BooleanBuilder),
    Date(Date32Builder),
    DateTime(TimestampMicrosecondBuilder),
    Text(StringBuilder),
}

fn epoch() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()
}

impl Builder {
    fn new(t: ColumnType) -> Builder {
        match t {
            ColumnType::Int => Builder::Int(Int64Builder::new()),
            ColumnType::Num => Builder::Num(Float64Builder::new()),
            ColumnType::Bool => Builder::Bool(BooleanBuilder::new()),
            ColumnType::Date => Builder::Date(Date32Builder::new()),
            ColumnType::DateTime => Builder::DateTime(TimestampMicrosecondBuilder::new()),
            ColumnType::Text => Builder::Text(StringBuilder::new()),
        }
    }

    fn push(&mut self, c: Option<&Cell>) {
        match (self, c) {
            (Builder::Int(b), Some(Cell::Int(v))) => b.append_value(*v),
            (Builder::Num(b), Some(Cell::Num(v))) => b.append_value(*v),
            (Builder::Num(b), Some(Cell::Int(v))) => b.append_value(*v as f64),
            (Builder::Bool(b), Some(Cell::Bool(v))) => b.append_value(*v),
            (Builder::Date(b), Some(Cell::Date(d))) => b.append_value((*d - epoch()).num_days() as i32),
            (Builder::DateTime(b), Some(Cell::DateTime(t))) => b.append_value(t.and_utc().timestamp_micros()),
            (Builder::Text(b), Some(c)) => b.append_value(c.to_string()),
            (Builder::Int(b), _) => b.append_null(),
            (Builder::Num(b), _) => b.append_null(),
            (Builder::Bool(b), _) => b.append_null(),
            (Builder::Date(b), _) => b.append_null(),
            (Builder::DateTime(b), _) => b.append_null(),
            (Builder::Text(b), None) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Int(b) => Arc::new(b.finish()),
            Builder::Num(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Date(b) => Arc::new(b.finish()),
            Builder::DateTime(b) => Arc::new(b.finish()),
            Builder::Text(b) => Arc::new(b.finish()),
        }
    }
}

/// Measures of cleanliness gathered while staging, bounded in memory: each text column keeps at
/// most this many distinct values, each numeric column at most this many samples.
const CLEAN_TRACK_LIMIT: usize = 100_000;

/// A text column with more distinct values than this is not a code or category column (names,
/// IDs, free text): spelling variants are not tracked for it.
const SPELLING_DISTINCT_LIMIT: usize = 2_000;

#[derive(Default)]
struct Cleanliness {
    untrimmed: u64,
    /// Per text column: folded value → the raw spellings met (`None` once the column proved
    /// not to be a category column).
    spellings: Vec<Option<HashMap<String, Vec<String>>>>,
    /// Per text column: raw values already folded (folding is the costly part).
    seen_raw: Vec<std::collections::HashSet<String>>,
    /// Per numeric column: values sampled.
    numbers: Vec<Vec<f64>>,
    numbers_total: Vec<u64>,
}

impl Cleanliness {
    fn new(columns: &[(String, ColumnType)]) -> Self {
        Cleanliness {
            spellings: columns.iter().map(|_| Some(HashMap::new())).collect(),
            seen_raw: columns.iter().map(|_| std::collections::HashSet::new()).collect(),
            numbers: columns.iter().map(|_| Vec::new()).collect(),
            numbers_total: vec![0; columns.len()],
            ..Default::default()
        }
    }

    fn raw_row(&mut self, raw: &[String]) {
        self.untrimmed += raw.iter().filter(|v| !v.is_empty() && v.trim() != v.as_str()).count() as u64;
    }

    fn valid_row(&mut self, columns: &[(String, ColumnType)], cells: &[Option<Cell>]) {
        for (i, (c, (_, t))) in cells.iter().zip(columns).enumerate() {
            match (c, t) {
                (Some(Cell::Text(v)), ColumnType::Text) => {
                    let Some(map) = self.spellings[i].as_mut() else { continue };
                    if self.seen_raw[i].contains(v) {
                        continue;
                    }
                    self.seen_raw[i].insert(v.clone());
                    let key = kho_core::text::fold(v);
                    if let Some(forms) = map.get_mut(&key) {
                        if forms.len() < 4 && !forms.contains(v) {
                            forms.push(v.clone());
                        }
                    } else if map.len() < SPELLING_DISTINCT_LIMIT {
                        map.insert(key, vec![v.clone()]);
                    } else {
                        // Too many distinct values for a code or category column.
                        self.spellings[i] = None;
                        self.seen_raw[i] = Default::default();
                    }
                }
                (Some(Cell::Int(v)), _) => self.number(i, *v as f64),
                (Some(Cell::Num(v)), _) => self.number(i, *v),
                _ => {}
            }
        }
    }

    fn number(&mut self, i: usize, v: f64) {
        self.numbers_total[i] += 1;
        if self.numbers[i].len() < CLEAN_TRACK_LIMIT {
            self.numbers[i].push(v);
        }
    }

    /// Repeated rows come from the key index: without a key, its row counts; with one, a repeated
    /// row repeats its key and was refused by the key check (counted as a duplicate key), so no
    /// second per-row structure is needed.
    fn finish(
        mut self,
        columns: &[(String, ColumnType)],
        report: &Report,
        keys: &KeyIndex,
        stats: &mut kho_core::quality::QualityStats,
    ) {
        stats.duplicate_rows = keys.by_row.values().map(|n| u64::from(n.saturating_sub(1))).sum();
        stats.untrimmed_values = self.untrimmed;
        for (i, map) in self.spellings.iter().enumerate() {
            let Some(map) = map else { continue };
            for forms in map.values().filter(|f| f.len() > 1) {
                stats.inconsistent_spellings += 1;
                if stats.spelling_examples.len() < 5 {
                    let mut ex = vec![columns[i].0.clone()];
                    ex.extend(forms.iter().cloned());
                    stats.spelling_examples.push(ex);
                }
            }
        }
        for (i, vals) in self.numbers.iter_mut().enumerate() {
            if vals.len() < 10 {
                continue;
            }
            vals.sort_by(|a, b| a.total_cmp(b));
            let median = vals[vals.len() / 2];
            let mut dev: Vec<f64> = vals.iter().map(|v| (v - median).abs()).collect();
            dev.sort_by(|a, b| a.total_cmp(b));
            let mad = dev[dev.len() / 2] * 1.4826;
            if mad == 0.0 {
                continue;
            }
            let far: Vec<f64> = vals.iter().copied().filter(|v| (v - median).abs() > 5.0 * mad).collect();
            // Scale a sampled count back up to the whole column.
            let scale = self.numbers_total[i] as f64 / vals.len() as f64;
            stats.outliers += (far.len() as f64 * scale).round() as u64;
            for v in far.iter().take(2) {
                if stats.outlier_examples.len() < 5 {
                    stats.outlier_examples.push(format!("{}={v}", columns[i].0));
                }
            }
        }
        let count = |rule: &str| report.by_rule.iter().find(|r| r.rule == rule).map_or(0, |r| r.count);
        stats.duplicate_keys = count("primary_key") + count("unique") + count("unique_key");
    }
}

/// What staging produced.
#[derive(Debug)]
pub struct Staged {
    /// Quality measures of the upload (all rows), for the version's đúng/đủ/sạch scores.
    pub quality: kho_core::quality::QualityStats,
    pub report: Report,
    /// The valid rows, as Parquet.
    pub parquet: PathBuf,
    pub rows: u64,
    /// The invalid rows as CSV, with a last column `loi` listing each row's problems.
    pub quarantine: Option<PathBuf>,
    pub quarantined: u64,
    pub keys: KeyIndex,
}

/// Check every row of `source` and write the valid ones to `dir/data.parquet`, the invalid ones
/// to `dir/quarantine.csv`.
pub fn stage_csv(
    source: &CsvSource,
    schema: &Value,
    refs: Arc<References>,
    foreign: &[Arc<crate::ForeignKeySet>],
    dir: &Path,
) -> Result<Staged, ReadError> {
    std::fs::create_dir_all(dir).map_err(|e| io_err("creating the staging folder", e))?;
    let mut validator = Validator::new(schema, &source.headers, refs).with_foreign_keys(foreign);
    validator.set_source(source);
    let columns = validator.columns();
    let pk = validator.primary_key_fields();
    let arrow = Arc::new(arrow_schema(&columns));
    let parquet_path = dir.join("data.parquet");
    let file = File::create(&parquet_path).map_err(|e| io_err("creating the Parquet file", e))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(128 * 1024))
        .build();
    let mut writer = ArrowWriter::try_new(file, arrow.clone(), Some(props)).map_err(|e| io_err("Parquet", e))?;
    let mut builders: Vec<Builder> = columns.iter().map(|(_, t)| Builder::new(*t)).collect();
    let mut pending = 0usize;
    let mut rows = 0u64;
    let mut keys = KeyIndex::default();
    let quarantine_path = dir.join("quarantine.csv");
    let mut quarantine: Option<csv::Writer<File>> = None;
    let mut quarantined = 0u64;
    let mut clean = Cleanliness::new(&columns);
    let flush = |builders: &mut Vec<Builder>, writer: &mut ArrowWriter<File>| -> Result<(), ReadError> {
        let arrays: Vec<ArrayRef> = builders.iter_mut().map(Builder::finish).collect();
        let batch = RecordBatch::try_new(arrow.clone(), arrays).map_err(|e| io_err("building a batch", e))?;
        writer.write(&batch).map_err(|e| io_err("writing Parquet", e))
    };
    for (line, row) in source.rows() {
        let (raw, outcome) = match row {
            Ok(cells) => {
                clean.raw_row(&cells);
                let outcome = validator.check_row(line, &cells);
                (cells, Some(outcome))
            }
            Err(e) => {
                validator.malformed_row(line, &e);
                (vec![], None)
            }
        };
        match outcome {
            Some(o) if o.valid => {
                for (b, c) in builders.iter_mut().zip(&o.cells) {
                    b.push(c.as_ref());
                }
                keys.add(&pk, &o.cells);
                clean.valid_row(&columns, &o.cells);
                rows += 1;
                pending += 1;
                if pending == BATCH_ROWS {
                    flush(&mut builders, &mut writer)?;
                    pending = 0;
                }
            }
            other => {
                if quarantine.is_none() {
                    let mut w = csv::Writer::from_path(&quarantine_path)
                        .map_err(|e| io_err("creating the quarantine file", e))?;
                    let mut header = source.headers.clone();
                    header.push("loi".into());
                    w.write_record(&header).map_err(|e| io_err("quarantine", e))?;
                    quarantine = Some(w);
                }
                let mut record = raw;
                record.resize(source.headers.len(), String::new());
                let messages = other.map(|o| o.messages.join("; ")).unwrap_or_else(|| "dòng không đọc được".into());
                record.push(messages);
                if let Some(w) = quarantine.as_mut() {
                    w.write_record(&record).map_err(|e| io_err("quarantine", e))?;
                }
                quarantined += 1;
            }
        }
    }
    if pending > 0 || rows == 0 {
        flush(&mut builders, &mut writer)?;
    }
    writer.close().map_err(|e| io_err("closing Parquet", e))?;
    if let Some(mut w) = quarantine {
        w.flush().map_err(|e| io_err("quarantine", e))?;
    }
    let report = validator.into_report();
    let mut quality = kho_core::quality::QualityStats {
        rows: report.rows,
        cells_checked: report.cells_checked,
        cells_invalid: report.cells_invalid,
        required_cells: report.required_cells,
        required_missing: report.required_missing,
        cells: report.cells,
        cells_missing: report.cells_missing,
        missing_columns: report.missing_required_columns.clone(),
        ..Default::default()
    };
    clean.finish(&columns, &report, &keys, &mut quality);
    let key_names: Vec<String> = pk.iter().map(|i| columns[*i].0.clone()).collect();
    keys.save(&key_names, &dir.join(KEYS_FILE))?;
    Ok(Staged {
        quality,
        report,
        parquet: parquet_path,
        rows,
        quarantine: (quarantined > 0).then_some(quarantine_path),
        quarantined,
        keys,
    })
}

/// Read a version's Parquet file as typed cells, batch by batch.
pub fn read_parquet(
    path: &Path,
    mut each: impl FnMut(&[String], Vec<Vec<Option<Cell>>>) -> Result<(), ReadError>,
) -> Result<(), ReadError> {
    let file = File::open(path).map_err(|e| io_err("opening Parquet", e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| io_err("reading Parquet", e))?
        .build()
        .map_err(|e| io_err("reading Parquet", e))?;
    for batch in reader {
        let batch = batch.map_err(|e| io_err("reading Parquet", e))?;
        let names: Vec<String> = batch.schema().fields().iter().map(|f| f.name().clone()).collect();
        let mut rows: Vec<Vec<Option<Cell>>> = vec![Vec::with_capacity(names.len()); batch.num_rows()];
        for col in batch.columns() {
            for (r, row) in rows.iter_mut().enumerate() {
                row.push(cell_at(col.as_ref(), r));
            }
        }
        each(&names, rows)?;
    }
    Ok(())
}

fn cell_at(col: &dyn Array, i: usize) -> Option<Cell> {
    if col.is_null(i) {
        return None;
    }
    let any = col.as_any();
    if let Some(a) = any.downcast_ref::<Int64Array>() {
        return Some(Cell::Int(a.value(i)));
    }
    if let Some(a) = any.downcast_ref::<Float64Array>() {
        return Some(Cell::Num(a.value(i)));
    }
    if let Some(a) = any.downcast_ref::<BooleanArray>() {
        return Some(Cell::Bool(a.value(i)));
    }
    if let Some(a) = any.downcast_ref::<Date32Array>() {
        return Some(Cell::Date(epoch() + chrono::Duration::days(a.value(i) as i64)));
    }
    if let Some(a) = any.downcast_ref::<TimestampMicrosecondArray>() {
        return chrono::DateTime::from_timestamp_micros(a.value(i)).map(|t| Cell::DateTime(t.naive_utc()));
    }
    if let Some(a) = any.downcast_ref::<StringArray>() {
        return Some(Cell::Text(a.value(i).to_string()));
    }
    None
}

/// The key index of a stored version, using the same key fields as the new one.
pub fn key_index_of(path: &Path, pk_names: &[String]) -> Result<KeyIndex, ReadError> {
    let mut keys = KeyIndex::default();
    read_parquet(path, |names, rows| {
        let pk: Vec<usize> = pk_names.iter().filter_map(|n| names.iter().position(|x| x == n)).collect();
        let pk = if pk.len() == pk_names.len() { pk } else { vec![] };
        for row in rows {
            keys.add(&pk, &row);
        }
        Ok(())
    })?;
    Ok(keys)
}

/// A stored version as CSV (UTF-8, ISO dates, "." decimals), which kho reads back unchanged.
pub fn parquet_to_csv(path: &Path, out: impl std::io::Write) -> Result<u64, ReadError> {
    let mut w = csv::Writer::from_writer(out);
    let mut header_done = false;
    let mut n = 0u64;
    read_parquet(path, |names, rows| {
        if !header_done {
            w.write_record(names).map_err(|e| io_err("CSV", e))?;
            header_done = true;
        }
        for row in rows {
            let rec: Vec<String> = row.iter().map(|c| c.as_ref().map(Cell::to_string).unwrap_or_default()).collect();
            w.write_record(&rec).map_err(|e| io_err("CSV", e))?;
            n += 1;
        }
        Ok(())
    })?;
    w.flush().map_err(|e| io_err("CSV", e))?;
    Ok(n)
}

impl Validator {
    /// Names of the fields used as the row key when comparing versions.
    pub fn key_names(&self) -> Vec<String> {
        let cols = self.columns();
        self.primary_key_fields().into_iter().map(|i| cols[i].0.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stage `csv` against `schema` with no reference data and no foreign keys.
    pub(super) fn stage(csv: &str, schema: &Value, dir: &Path) -> Staged {
        stage_csv(&CsvSource::from_bytes(csv.as_bytes()).unwrap(), schema, Arc::new(References::default()), &[], dir)
            .unwrap()
    }

    #[test]
    fn the_saved_key_index_equals_the_one_read_from_parquet() {
        let dir = tempfile::tempdir().unwrap();
        let csv = "ma,so,tien,ngay,co\nA1,5,\"1.234,5\",01/07/2025,true\nA2,,,02/07/2025,false\nA3,7,3,,\n";
        let staged = stage(csv, &schema(), dir.path());
        let names = vec!["ma".to_string()];
        let saved = KeyIndex::load(&dir.path().join(KEYS_FILE), &names).unwrap().expect("saved with the key");
        assert_eq!(saved, staged.keys);
        assert_eq!(saved, key_index_of(&staged.parquet, &names).unwrap());
        // Built on another key: not used.
        assert_eq!(KeyIndex::load(&dir.path().join(KEYS_FILE), &["so".to_string()]).unwrap(), None);
        std::fs::write(dir.path().join("x.bin"), b"KHOKEYS1\x05").unwrap();
        assert_eq!(KeyIndex::load(&dir.path().join("x.bin"), &names).unwrap(), None);
    }
    use serde_json::json;

    fn schema() -> Value {
        json!({"fields": [
            {"name": "ma", "type": "string"},
            {"name": "so", "type": "integer"},
            {"name": "tien", "type": "number", "decimalChar": ",", "groupChar": "."},
            {"name": "ngay", "type": "date", "format": "%d/%m/%Y"},
            {"name": "co", "type": "boolean"}
        ], "primaryKey": "ma"})
    }

    #[test]
    fn stage_writes_typed_parquet_and_quarantine() {
        let dir = tempfile::tempdir().unwrap();
        let csv = "ma,so,tien,ngay,co\nA,1,\"1.234,5\",17/05/2020,true\nB,x,2,01/01/2021,false\nC,3,,,\n";
        let staged = stage(csv, &schema(), dir.path());
        assert_eq!((staged.rows, staged.quarantined), (2, 1));
        assert_eq!(staged.report.invalid_rows, 1);
        let q = std::fs::read_to_string(staged.quarantine.as_ref().unwrap()).unwrap();
        assert_eq!(q.lines().next().unwrap(), "ma,so,tien,ngay,co,loi");
        assert!(q.contains("B,x,2,01/01/2021,false,so: 'x' không phải số nguyên"), "{q}");
        let mut out = Vec::new();
        assert_eq!(parquet_to_csv(&staged.parquet, &mut out).unwrap(), 2);
        assert_eq!(String::from_utf8(out).unwrap(), "ma,so,tien,ngay,co\nA,1,1234.5,2020-05-17,true\nC,3,,,\n");
        // The CSV export reads back into the same values under an ISO schema.
        let keys = key_index_of(&staged.parquet, &["ma".to_string()]).unwrap();
        assert_eq!(keys, staged.keys);
        assert_eq!((staged.quality.rows, staged.quality.cells_checked, staged.quality.cells_invalid), (3, 15, 1));
    }

    #[test]
    fn datetimes_and_dates_in_every_accepted_form_are_stored() {
        let dir = tempfile::tempdir().unwrap();
        let schema =
            json!({"fields": [{"name": "luc", "type": "datetime"}, {"name": "ngay", "type": "date", "format": "any"}]});
        let csv = "luc,ngay\n2025-07-01T08:30:00+07:00,01/07/2025\n2025-07-01T08:30:00,2025-07-02\n2025-07-01 09:00:00,3/7/2025\n";
        let staged = stage(csv, &schema, dir.path());
        assert_eq!(staged.rows, 3, "{:?}", staged.report.problems);
        let mut out = Vec::new();
        parquet_to_csv(&staged.parquet, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "luc,ngay\n2025-07-01T01:30:00,2025-07-01\n2025-07-01T08:30:00,2025-07-02\n2025-07-01T09:00:00,2025-07-03\n"
        );
    }

    #[test]
    fn cleanliness_measures() {
        let dir = tempfile::tempdir().unwrap();
        let schema = json!({"fields": [{"name": "ten", "type": "string"}, {"name": "so", "type": "integer", "constraints": {"required": true}}]});
        let mut csv = String::from("ten,so\n");
        for i in 0..20 {
            csv.push_str(&format!("Xã {i},{}\n", 100 + i % 3));
        }
        csv.push_str("Hà Nội,100\nHA NOI,101\n\" Sơn La\",102\nHà Nội,100\nX,100000\nY,\n");
        let q = stage(&csv, &schema, dir.path()).quality;
        assert_eq!(q.duplicate_rows, 1, "Hà Nội,100 twice");
        assert_eq!(q.untrimmed_values, 1);
        assert_eq!(q.inconsistent_spellings, 1);
        assert_eq!(q.spelling_examples, vec![vec!["ten".to_string(), "Hà Nội".into(), "HA NOI".into()]]);
        assert_eq!(q.outliers, 1);
        assert_eq!(q.outlier_examples, vec!["so=100000".to_string()]);
        assert_eq!((q.required_cells, q.required_missing), (26, 1));
    }

    #[test]
    fn diffs_by_key_and_by_row() {
        let dir = tempfile::tempdir().unwrap();
        let keyed = |csv: &str, sub: &str| stage(csv, &schema(), &dir.path().join(sub)).keys;
        let v1 = keyed("ma,so,tien,ngay,co\nA,1,1,,\nB,2,2,,\nC,3,3,,\n", "v1");
        let v2 = keyed("ma,so,tien,ngay,co\nA,1,1,,\nB,20,2,,\nD,4,4,,\n", "v2");
        assert_eq!(v2.diff_from(&v1), Diff { added: 1, removed: 1, changed: 1 });
        assert_eq!(v1.diff_from(&KeyIndex::default()), Diff { added: 3, removed: 0, changed: 0 });
        let noschema = json!({"fields": [{"name": "a"}]});
        let idx = |csv: &str, sub: &str| stage(csv, &noschema, &dir.path().join(sub)).keys;
        let a = idx("a\nx\ny\ny\n", "a");
        let b = idx("a\ny\nz\n", "b");
        assert_eq!(b.diff_from(&a), Diff { added: 1, removed: 2, changed: 0 });
    }
}

fn cell_json(c: Option<&Cell>) -> serde_json::Value {
    match c {
        None => serde_json::Value::Null,
        Some(Cell::Int(v)) => serde_json::json!(v),
        Some(Cell::Num(v)) => {
            serde_json::Number::from_f64(*v).map_or(serde_json::Value::Null, serde_json::Value::Number)
        }
        Some(Cell::Bool(v)) => serde_json::json!(v),
        Some(c) => serde_json::Value::String(c.to_string()),
    }
}

/// A stored version as JSON: one object per row, either one per line (`lines`) or as an array.
pub fn parquet_to_json(path: &Path, mut out: impl std::io::Write, lines: bool) -> Result<u64, ReadError> {
    let mut n = 0u64;
    if !lines {
        out.write_all(b"[").map_err(|e| io_err("JSON", e))?;
    }
    read_parquet(path, |names, rows| {
        for row in rows {
            let obj: serde_json::Map<String, serde_json::Value> =
                names.iter().cloned().zip(row.iter().map(|c| cell_json(c.as_ref()))).collect();
            if !lines && n > 0 {
                out.write_all(b",").map_err(|e| io_err("JSON", e))?;
            }
            serde_json::to_writer(&mut out, &obj).map_err(|e| io_err("JSON", e))?;
            if lines {
                out.write_all(b"\n").map_err(|e| io_err("JSON", e))?;
            }
            n += 1;
        }
        Ok(())
    })?;
    if !lines {
        out.write_all(b"]\n").map_err(|e| io_err("JSON", e))?;
    }
    out.flush().map_err(|e| io_err("JSON", e))?;
    Ok(n)
}

/// Excel's limit on rows in a sheet (the header included).
pub const XLSX_MAX_ROWS: u64 = 1_048_576;

/// A stored version as an Excel workbook at `out`, written row by row (constant memory; the
/// workbook's temporary files go to `tmp`). Numbers stay numbers; dates are written as text in
/// ISO form so that no locale reinterprets them.
pub fn parquet_to_xlsx(path: &Path, out: &Path, tmp: &Path, sheet_name: &str) -> Result<u64, ReadError> {
    let x = |e: rust_xlsxwriter::XlsxError| io_err("XLSX", e);
    let mut book = rust_xlsxwriter::Workbook::new();
    book.set_tempdir(tmp).map_err(x)?;
    let sheet = book.add_worksheet_with_constant_memory().map_err(x)?;
    let name: String = sheet_name.chars().filter(|c| !"[]:*?/\\".contains(*c)).take(31).collect();
    sheet.set_name(if name.is_empty() { "du-lieu" } else { &name }).map_err(x)?;
    let mut r: u32 = 0;
    let mut header_done = false;
    read_parquet(path, |names, rows| {
        if !header_done {
            for (c, n) in names.iter().enumerate() {
                sheet.write_string(0, c as u16, n).map_err(x)?;
            }
            header_done = true;
        }
        for row in rows {
            r += 1;
            if r as u64 >= XLSX_MAX_ROWS {
                return Err(ReadError {
                    code: "too_many_rows",
                    message: format!(
                        "more than {} rows do not fit in an Excel sheet; download CSV or Parquet",
                        XLSX_MAX_ROWS - 1
                    ),
                    message_vi: format!(
                        "quá {} dòng, không vừa một trang tính Excel; hãy tải CSV hoặc Parquet",
                        XLSX_MAX_ROWS - 1
                    ),
                    line: None,
                });
            }
            for (c, v) in row.iter().enumerate() {
                let c = c as u16;
                let written = match v {
                    None => continue,
                    Some(Cell::Int(i)) => sheet.write_number(r, c, *i as f64).map(|_| ()),
                    Some(Cell::Num(f)) => sheet.write_number(r, c, *f).map(|_| ()),
                    Some(Cell::Bool(b)) => sheet.write_boolean(r, c, *b).map(|_| ()),
                    Some(other) => sheet.write_string(r, c, other.to_string()).map(|_| ()),
                };
                written.map_err(x)?;
            }
        }
        Ok(())
    })?;
    book.save(out).map_err(x)?;
    Ok(r as u64)
}

#[cfg(test)]
mod export_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_lines_array_and_xlsx() {
        let dir = tempfile::tempdir().unwrap();
        let schema = json!({"fields": [{"name": "ma", "type": "string"}, {"name": "so", "type": "integer"}, {"name": "ngay", "type": "date"}, {"name": "ty_le", "type": "number"}]});
        let csv = "ma,so,ngay,ty_le\n01,5,2025-07-01,0.5\n02,,,\n";
        let staged = super::tests::stage(csv, &schema, dir.path());
        let mut out = Vec::new();
        assert_eq!(parquet_to_json(&staged.parquet, &mut out, true).unwrap(), 2);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"ma\":\"01\",\"ngay\":\"2025-07-01\",\"so\":5,\"ty_le\":0.5}\n{\"ma\":\"02\",\"ngay\":null,\"so\":null,\"ty_le\":null}\n"
        );
        let mut out = Vec::new();
        parquet_to_json(&staged.parquet, &mut out, false).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v[0]["so"], 5);
        let xlsx = dir.path().join("x.xlsx");
        assert_eq!(parquet_to_xlsx(&staged.parquet, &xlsx, dir.path(), "bảng").unwrap(), 2);
        // Read it back with the same library kho reads uploads with.
        let back = crate::convert::spreadsheet_to_csv(&xlsx, &Default::default(), &dir.path().join("b.csv")).unwrap();
        assert_eq!(back, ("bảng".to_string(), 1));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("b.csv")).unwrap(),
            "ma,so,ngay,ty_le\n01,5,2025-07-01,0.5\n02,,,\n"
        );
    }
}
