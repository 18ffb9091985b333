//! How a new file changes a table: replace it, add rows to it, or update it by key.
//!
//! A steward who fixes three quarantined rows and uploads them must not wipe the other
//! seven. So a publication has a mode: *replace* (the file is the whole table), *append* (the
//! file's rows are added; with a primary key, none may already be there) or *upsert* (rows with
//! a new key are added, rows whose key is there replace theirs, the rest stay). What each mode
//! would do is worked out from the key indexes kept beside the versions, before anything is
//! published, with a few keys of each kind as examples; the merged table is then written as CSV
//! and checked again as a whole, so a merged version is as sound as an uploaded one.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::keys::EntryReader;
use crate::read::ReadError;
use crate::stage::{key_and_row_hash, read_parquet};
use crate::validate::{Cell, CellRef};

/// Keys shown as examples of each kind of change.
const EXAMPLES: usize = 5;
/// Previous versions up to this many keys are held in memory to find examples; beyond it the
/// counts are given alone.
const EXAMPLE_KEYS_LIMIT: u64 = 2_000_000;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The file is the whole table: rows missing from it are removed.
    #[default]
    Replace,
    /// The file's rows are added; with a primary key, none of their keys may be in the table.
    Append,
    /// By primary key: new keys are added, known keys take the file's row, others stay.
    Upsert,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "replace" => Some(Mode::Replace),
            "append" => Some(Mode::Append),
            "upsert" => Some(Mode::Upsert),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Replace => "replace",
            Mode::Append => "append",
            Mode::Upsert => "upsert",
        }
    }
}

/// Keys (their values, joined by ", ") of rows of each kind, a few of each.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Examples {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    /// Append only: keys of the file already in the table.
    pub conflicting: Vec<String>,
}

/// What publishing a file in a mode would do to the table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Change {
    pub mode: Mode,
    pub added: u64,
    pub removed: u64,
    pub changed: u64,
    /// Rows of the file whose key is already in the table (append refuses them).
    pub conflicting: u64,
    /// Rows in the table afterwards.
    pub rows_after: u64,
    pub examples: Examples,
}

/// The previous version: its Parquet file and its key index on the current key.
pub struct Previous<'a> {
    pub parquet: &'a Path,
    pub keys: &'a Path,
    pub rows: u64,
}

fn key_text(pk: &[usize], row: &[Option<Cell>]) -> String {
    pk.iter().map(|&i| row[i].as_ref().map(Cell::to_string).unwrap_or_default()).collect::<Vec<_>>().join(", ")
}

fn positions(names: &[String], wanted: &[String]) -> Vec<usize> {
    wanted.iter().filter_map(|n| names.iter().position(|x| x == n)).collect()
}

/// Hash of each row's key and of the whole row, for every row of a Parquet file, with the key's
/// values; `each` may stop the reading by returning `false`.
fn scan(
    parquet: &Path,
    key_names: &[String],
    mut each: impl FnMut(u64, u64, &dyn Fn() -> String) -> bool,
) -> Result<(), ReadError> {
    let mut buf = Vec::new();
    let stopped = std::cell::Cell::new(false);
    let result = read_parquet(parquet, |names, rows| {
        let pk = positions(names, key_names);
        for row in rows {
            let cells: Vec<Option<CellRef>> = row.iter().map(|c| c.as_ref().map(Cell::as_cell_ref)).collect();
            let (key, hash) = key_and_row_hash(&pk, &cells, &mut buf);
            if !each(key, hash, &|| key_text(&pk, &row)) {
                stopped.set(true);
                return Err(ReadError {
                    code: "stopped",
                    message: String::new(),
                    message_vi: String::new(),
                    line: None,
                });
            }
        }
        Ok(())
    });
    match result {
        Err(_) if stopped.get() => Ok(()),
        other => other,
    }
}

/// What publishing the staged rows (`staged`, its index `staged_keys`) in `mode` would do to a
/// table whose last version is `previous`, keyed by `key_names` (none: rows are compared
/// whole).
pub fn preview(
    staged: &Path,
    staged_keys: &Path,
    staged_rows: u64,
    previous: Option<&Previous>,
    key_names: &[String],
    mode: Mode,
) -> Result<Change, ReadError> {
    let keyed = !key_names.is_empty();
    let mut change = Change { mode, ..Default::default() };
    let Some(previous) = previous else {
        change.added = staged_rows;
        change.rows_after = staged_rows;
        return Ok(change);
    };
    let open = |p: &Path| EntryReader::open(p, key_names);
    let diff = match (open(staged_keys)?, open(previous.keys)?) {
        (Some(new), Some(old)) => crate::keys::diff(new, Some(old), keyed)?,
        // An index on another key: every row counts as new and every old one as gone.
        _ => crate::keys::Diff { added: staged_rows, removed: previous.rows, changed: 0 },
    };
    let known = staged_rows.saturating_sub(diff.added);
    match mode {
        Mode::Replace => {
            (change.added, change.removed, change.changed) = (diff.added, diff.removed, diff.changed);
            change.rows_after = staged_rows;
        }
        Mode::Upsert => {
            (change.added, change.changed) = (diff.added, diff.changed);
            change.rows_after = previous.rows + diff.added;
        }
        Mode::Append if keyed => {
            change.added = diff.added;
            change.conflicting = known;
            change.rows_after = previous.rows + diff.added;
        }
        Mode::Append => {
            change.added = staged_rows;
            change.rows_after = previous.rows + staged_rows;
        }
    }
    if keyed && previous.rows <= EXAMPLE_KEYS_LIMIT {
        change.examples = examples(staged, previous, key_names, &change)?;
    }
    Ok(change)
}

fn examples(staged: &Path, previous: &Previous, key_names: &[String], change: &Change) -> Result<Examples, ReadError> {
    let mut old: HashMap<u64, u64> = HashMap::new();
    if let Some(r) = EntryReader::open(previous.keys, key_names)? {
        for e in r {
            let (k, h) = e?;
            old.insert(k, h);
        }
    }
    let mut ex = Examples::default();
    let mut seen: HashSet<u64> = HashSet::new();
    let want = |list: &Vec<String>, total: u64| (list.len() as u64) < total.min(EXAMPLES as u64);
    scan(staged, key_names, |key, hash, text| {
        seen.insert(key);
        match old.get(&key) {
            None if want(&ex.added, change.added) => ex.added.push(text()),
            Some(&h) if h != hash && want(&ex.changed, change.changed) => ex.changed.push(text()),
            Some(_) if change.mode == Mode::Append && want(&ex.conflicting, change.conflicting) => {
                ex.conflicting.push(text())
            }
            _ => {}
        }
        true
    })?;
    if change.removed > 0 {
        scan(previous.parquet, key_names, |key, _, text| {
            if !seen.contains(&key) {
                ex.removed.push(text());
            }
            want(&ex.removed, change.removed)
        })?;
    }
    Ok(ex)
}

/// Write the table that publishing in `mode` makes — the previous version's rows that stay,
/// then the staged rows — to `out` as CSV, to be checked again as a whole. Both files must
/// have the same columns.
pub fn merge_to_csv(
    staged: &Path,
    previous: &Path,
    key_names: &[String],
    mode: Mode,
    out: &Path,
) -> Result<u64, ReadError> {
    let io = |e: &dyn std::fmt::Display| ReadError {
        code: "io",
        message: format!("writing the merged table: {e}"),
        message_vi: format!("ghi bảng đã gộp: {e}"),
        line: None,
    };
    let columns = |p: &Path| -> Result<Vec<String>, ReadError> {
        let file = std::fs::File::open(p).map_err(|e| io(&e))?;
        let b = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| io(&e))?;
        Ok(b.schema().fields().iter().map(|f| f.name().clone()).collect())
    };
    let (new_columns, old_columns) = (columns(staged)?, columns(previous)?);
    if new_columns != old_columns {
        return Err(ReadError {
            code: "columns_changed",
            message: format!(
                "the table's columns changed since its last version ({} now, {} then): publish the whole table as a replacement",
                new_columns.join(", "),
                old_columns.join(", ")
            ),
            message_vi: format!(
                "các cột của bảng đã thay đổi so với phiên bản trước ({} so với {}): hãy xuất bản toàn bộ bảng để thay thế",
                new_columns.join(", "),
                old_columns.join(", ")
            ),
            line: None,
        });
    }
    // The staged keys, to leave out the rows they replace.
    let mut replaced: HashSet<u64> = HashSet::new();
    if mode == Mode::Upsert {
        scan(staged, key_names, |key, _, _| {
            replaced.insert(key);
            true
        })?;
    }
    let mut w = csv::Writer::from_writer(std::io::BufWriter::new(std::fs::File::create(out).map_err(|e| io(&e))?));
    w.write_record(&new_columns).map_err(|e| io(&e))?;
    let mut rows = 0u64;
    let mut buf = Vec::new();
    let mut write = |path: &Path, skip: &HashSet<u64>| {
        read_parquet(path, |names, batch| {
            let pk = positions(names, key_names);
            for row in batch {
                if !skip.is_empty() {
                    let cells: Vec<Option<CellRef>> = row.iter().map(|c| c.as_ref().map(Cell::as_cell_ref)).collect();
                    if skip.contains(&key_and_row_hash(&pk, &cells, &mut buf).0) {
                        continue;
                    }
                }
                let rec: Vec<String> =
                    row.iter().map(|c| c.as_ref().map(Cell::to_string).unwrap_or_default()).collect();
                w.write_record(&rec).map_err(|e| io(&e))?;
                rows += 1;
            }
            Ok(())
        })
    };
    write(previous, &replaced)?;
    write(staged, &HashSet::new())?;
    w.flush().map_err(|e| io(&e))?;
    Ok(rows)
}
