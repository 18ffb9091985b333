//! The key index kept beside each version (`keys.bin`): for every row, the hash of its primary
//! key and the hash of the whole row, sorted by key. Publishing compares the new version's
//! index with the previous one's to count rows added, removed and changed, reading both files
//! in step: memory stays the same for ten rows or a hundred million.
//!
//! A table without a primary key is indexed by row hash with a count per distinct row, and
//! compared as a multiset.
//!
//! The file is written from sorted runs: hashes are gathered up to [`RUN_ENTRIES`], sorted and
//! spilled to disk, then the runs are merged into the final file.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::read::ReadError;
use crate::stage::io_err;

/// The file a version's key index is kept in, beside its Parquet file.
pub const KEYS_FILE: &str = "keys.bin";
/// Version 2: XXH3 hashes, sorted (version 1 files are not read: the Parquet file is).
const MAGIC: &[u8; 8] = b"KHOKEYS2";
/// Entries gathered in memory before a sorted run is spilled (8 MiB).
const RUN_ENTRIES: usize = 1 << 19;
const ENTRY: usize = 16;

/// Rows added, removed and changed from one version to the next.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Diff {
    pub added: u64,
    pub removed: u64,
    pub changed: u64,
}

/// What a finished key index holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeySummary {
    /// Keys (or distinct rows, without a key).
    pub entries: u64,
    /// Without a key: rows that repeat an earlier row exactly.
    pub duplicate_rows: u64,
}

/// Builds a key index file from rows given in any order.
pub struct KeyFileWriter {
    path: PathBuf,
    names: Vec<String>,
    keyed: bool,
    buf: Vec<(u64, u64)>,
    runs: Vec<PathBuf>,
    run_entries: usize,
}

impl KeyFileWriter {
    /// An index for `path`, by the key fields `names` (none: by whole row).
    pub fn new(path: &Path, names: &[String]) -> KeyFileWriter {
        KeyFileWriter {
            path: path.to_path_buf(),
            names: names.to_vec(),
            keyed: !names.is_empty(),
            buf: Vec::new(),
            runs: Vec::new(),
            run_entries: RUN_ENTRIES,
        }
    }

    #[cfg(test)]
    fn with_run_entries(mut self, n: usize) -> Self {
        self.run_entries = n;
        self
    }

    /// Add a row by the hash of its key and the hash of the whole row.
    pub fn push(&mut self, key: u64, row: u64) -> Result<(), ReadError> {
        self.buf.push(if self.keyed { (key, row) } else { (row, 1) });
        if self.buf.len() >= self.run_entries {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> Result<(), ReadError> {
        let run = self.path.with_extension(format!("run{}", self.runs.len()));
        let entries = sorted(std::mem::take(&mut self.buf), self.keyed);
        write_entries(&run, None, entries.into_iter().map(Ok))?;
        self.runs.push(run);
        Ok(())
    }

    /// Merge the runs into the index file.
    pub fn finish(mut self) -> Result<KeySummary, ReadError> {
        if !self.runs.is_empty() && !self.buf.is_empty() {
            self.spill()?;
        }
        let header = Some((self.names.as_slice(), self.keyed));
        let summary = if self.runs.is_empty() {
            let entries = sorted(std::mem::take(&mut self.buf), self.keyed);
            write_entries(&self.path, header, entries.into_iter().map(Ok))?
        } else {
            let mut heads = BinaryHeap::new();
            let mut readers = Vec::new();
            for (i, run) in self.runs.iter().enumerate() {
                let mut r = EntryReader::raw(run)?;
                if let Some(e) = r.next().transpose()? {
                    heads.push(Reverse((e, i)));
                }
                readers.push(r);
            }
            let merged = std::iter::from_fn(|| {
                let Reverse((e, i)) = heads.pop()?;
                match readers[i].next().transpose() {
                    Ok(Some(next)) => heads.push(Reverse((next, i))),
                    Ok(None) => {}
                    Err(err) => return Some(Err(err)),
                }
                Some(Ok(e))
            });
            let s = write_entries(&self.path, header, merged)?;
            for run in &self.runs {
                let _ = std::fs::remove_file(run);
            }
            s
        };
        Ok(summary)
    }
}

/// Sort one run; equal keys keep one entry, equal rows (without a key) add their counts.
fn sorted(mut v: Vec<(u64, u64)>, keyed: bool) -> Vec<(u64, u64)> {
    v.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(v.len());
    for (a, b) in v {
        match out.last_mut() {
            Some(last) if last.0 == a => {
                if !keyed {
                    last.1 += b;
                }
            }
            _ => out.push((a, b)),
        }
    }
    out
}

/// Write sorted entries (folding equal ones, as [`sorted`] does), with the header when given.
fn write_entries(
    path: &Path,
    header: Option<(&[String], bool)>,
    entries: impl Iterator<Item = Result<(u64, u64), ReadError>>,
) -> Result<KeySummary, ReadError> {
    let e = |e| io_err("writing the key index", e);
    let mut w = BufWriter::with_capacity(1 << 16, File::create(path).map_err(e)?);
    let keyed = header.is_none_or(|(_, k)| k);
    if let Some((names, keyed)) = header {
        w.write_all(MAGIC).map_err(e)?;
        w.write_all(&(names.len() as u32).to_le_bytes()).map_err(e)?;
        for n in names {
            w.write_all(&(n.len() as u32).to_le_bytes()).map_err(e)?;
            w.write_all(n.as_bytes()).map_err(e)?;
        }
        w.write_all(&[keyed as u8]).map_err(e)?;
    }
    let mut summary = KeySummary::default();
    let mut pending: Option<(u64, u64)> = None;
    let put = |w: &mut BufWriter<File>, (a, b): (u64, u64), s: &mut KeySummary| {
        s.entries += 1;
        if !keyed {
            s.duplicate_rows += b.saturating_sub(1);
        }
        w.write_all(&a.to_le_bytes()).and_then(|_| w.write_all(&b.to_le_bytes())).map_err(e)
    };
    for entry in entries {
        let (a, b) = entry?;
        match pending.as_mut() {
            Some(p) if p.0 == a => {
                if !keyed {
                    p.1 += b;
                }
            }
            _ => {
                if let Some(p) = pending.replace((a, b)) {
                    put(&mut w, p, &mut summary)?;
                }
            }
        }
    }
    if let Some(p) = pending {
        put(&mut w, p, &mut summary)?;
    }
    w.flush().map_err(e)?;
    Ok(summary)
}

/// Reads a key index file's entries in order.
pub struct EntryReader {
    r: BufReader<File>,
    left: u64,
}

impl EntryReader {
    fn raw(path: &Path) -> Result<EntryReader, ReadError> {
        let f = File::open(path).map_err(|e| io_err("reading the key index", e))?;
        let len = f.metadata().map_err(|e| io_err("reading the key index", e))?.len();
        Ok(EntryReader { r: BufReader::with_capacity(1 << 16, f), left: len / ENTRY as u64 })
    }

    /// The index at `path` if it was built on the key fields `names`; `None` when it was
    /// built on others (the schema's key changed) or is not a key index.
    pub fn open(path: &Path, names: &[String]) -> Result<Option<EntryReader>, ReadError> {
        let e = |e| io_err("reading the key index", e);
        let f = File::open(path).map_err(e)?;
        let len = f.metadata().map_err(e)?.len();
        let mut r = BufReader::with_capacity(1 << 16, f);
        let mut read_header = || -> Option<(Vec<String>, bool, u64)> {
            fn u32_of(r: &mut impl Read, used: &mut u64) -> Option<u32> {
                let mut b = [0u8; 4];
                r.read_exact(&mut b).ok()?;
                *used += 4;
                Some(u32::from_le_bytes(b))
            }
            let mut magic = [0u8; 8];
            r.read_exact(&mut magic).ok()?;
            if &magic != MAGIC {
                return None;
            }
            let mut used = 8u64;
            let n = u32_of(&mut r, &mut used)? as usize;
            let mut found = Vec::with_capacity(n.min(64));
            for _ in 0..n {
                let l = u32_of(&mut r, &mut used)? as usize;
                if l > 4096 {
                    return None;
                }
                let mut name = vec![0u8; l];
                r.read_exact(&mut name).ok()?;
                used += l as u64;
                found.push(String::from_utf8(name).ok()?);
            }
            let mut keyed = [0u8; 1];
            r.read_exact(&mut keyed).ok()?;
            used += 1;
            Some((found, keyed[0] == 1, used))
        };
        let Some((found, keyed, used)) = read_header() else { return Ok(None) };
        let body = len.saturating_sub(used);
        if found != names || keyed == names.is_empty() || body % ENTRY as u64 != 0 {
            return Ok(None);
        }
        Ok(Some(EntryReader { r, left: body / ENTRY as u64 }))
    }

    fn next(&mut self) -> Option<Result<(u64, u64), ReadError>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let mut b = [0u8; ENTRY];
        Some(match self.r.read_exact(&mut b) {
            Ok(()) => {
                let (a, c) = b.split_at(8);
                Ok((
                    u64::from_le_bytes(a.try_into().unwrap_or_default()),
                    u64::from_le_bytes(c.try_into().unwrap_or_default()),
                ))
            }
            Err(e) => Err(io_err("reading the key index", e)),
        })
    }
}

impl Iterator for EntryReader {
    type Item = Result<(u64, u64), ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        EntryReader::next(self)
    }
}

/// Whether the file at `path` is a key index built on the key fields `names`.
pub fn is_index_for(path: &Path, names: &[String]) -> Result<bool, ReadError> {
    Ok(path.exists() && EntryReader::open(path, names)?.is_some())
}

/// What the version indexed at `new` changed compared with the one indexed at `old` (none: the
/// first version), the new index being built on `names`. An old index that could not be built
/// on them (its version lacks the key's columns, so it was indexed by row) counts every new row
/// as added and every old one as removed.
pub fn diff_files(new: &Path, old: Option<&Path>, names: &[String]) -> Result<Diff, ReadError> {
    let keyed = !names.is_empty();
    let Some(new_index) = EntryReader::open(new, names)? else { return Ok(Diff::default()) };
    let Some(old) = old else { return diff(new_index, None, keyed) };
    if let Some(old_index) = EntryReader::open(old, names)? {
        return diff(new_index, Some(old_index), keyed);
    }
    let count = |r: EntryReader, keyed: bool| -> Result<u64, ReadError> {
        r.map(|e| e.map(|(_, n)| if keyed { 1 } else { n })).sum()
    };
    let added = count(new_index, keyed)?;
    let removed = match EntryReader::open(old, &[])? {
        Some(r) => count(r, false)?,
        None => 0,
    };
    Ok(Diff { added, removed, changed: 0 })
}

/// What the version indexed by `new` changed compared with the one indexed by `old` (none: the
/// first version), both built on the same key fields (`keyed` when there are some).
pub fn diff(new: EntryReader, old: Option<EntryReader>, keyed: bool) -> Result<Diff, ReadError> {
    let mut d = Diff::default();
    let mut new = new.peekable();
    let mut old: Box<dyn Iterator<Item = Result<(u64, u64), ReadError>>> = match old {
        Some(o) => Box::new(o),
        None => Box::new(std::iter::empty()),
    };
    let mut o = old.next().transpose()?;
    while let Some(n) = new.next().transpose()? {
        // Entries of the old version before this one are gone.
        while let Some(prev) = o.filter(|p| p.0 < n.0) {
            d.removed += if keyed { 1 } else { prev.1 };
            o = old.next().transpose()?;
        }
        match o {
            Some(prev) if prev.0 == n.0 => {
                if keyed {
                    d.changed += u64::from(prev.1 != n.1);
                } else {
                    d.added += n.1.saturating_sub(prev.1);
                    d.removed += prev.1.saturating_sub(n.1);
                }
                o = old.next().transpose()?;
            }
            _ => d.added += if keyed { 1 } else { n.1 },
        }
    }
    while let Some(prev) = o {
        d.removed += if keyed { 1 } else { prev.1 };
        o = old.next().transpose()?;
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(dir: &Path, name: &str, keyed: bool, rows: &[(u64, u64)], run: usize) -> (PathBuf, KeySummary) {
        let path = dir.join(name);
        let names = if keyed { vec!["ma".to_string()] } else { vec![] };
        let mut w = KeyFileWriter::new(&path, &names).with_run_entries(run);
        for (k, r) in rows {
            w.push(*k, *r).unwrap();
        }
        (path.clone(), w.finish().unwrap())
    }

    #[test]
    fn runs_merge_into_the_same_file_as_one_sort() {
        let dir = tempfile::tempdir().unwrap();
        let rows: Vec<(u64, u64)> = (0..1000u64).map(|i| ((i * 7919) % 1000 + 1, i % 13)).collect();
        let (one, s1) = build(dir.path(), "one.bin", true, &rows, usize::MAX);
        let (many, s2) = build(dir.path(), "many.bin", true, &rows, 37);
        assert_eq!(std::fs::read(one).unwrap(), std::fs::read(many).unwrap());
        assert_eq!((s1, s2.entries), (KeySummary { entries: 1000, duplicate_rows: 0 }, 1000));
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left.len(), 2, "runs removed: {left:?}");
        // Without a key, repeated rows are counted, also across runs.
        let rows: Vec<(u64, u64)> = (0..100u64).map(|i| (0, i % 10 + 1)).collect();
        let (_, s) = build(dir.path(), "rows.bin", false, &rows, 7);
        assert_eq!(s, KeySummary { entries: 10, duplicate_rows: 90 });
    }

    #[test]
    fn diffs_read_both_files_in_step() {
        let dir = tempfile::tempdir().unwrap();
        let names = vec!["ma".to_string()];
        let (v1, _) = build(dir.path(), "v1", true, &[(1, 10), (2, 20), (3, 30)], 2);
        let (v2, _) = build(dir.path(), "v2", true, &[(1, 10), (2, 21), (4, 40)], 2);
        let open = |p: &Path| EntryReader::open(p, &names).unwrap().unwrap();
        assert_eq!(diff(open(&v2), Some(open(&v1)), true).unwrap(), Diff { added: 1, removed: 1, changed: 1 });
        assert_eq!(diff(open(&v1), None, true).unwrap(), Diff { added: 3, removed: 0, changed: 0 });
        let (a, _) = build(dir.path(), "a", false, &[(0, 5), (0, 6), (0, 6)], 2);
        let (b, _) = build(dir.path(), "b", false, &[(0, 6), (0, 7)], 2);
        let open_rows = |p: &Path| EntryReader::open(p, &[]).unwrap().unwrap();
        assert_eq!(diff(open_rows(&b), Some(open_rows(&a)), false).unwrap(), Diff { added: 1, removed: 2, changed: 0 });
        // Built on another key, or not an index: not used.
        assert!(EntryReader::open(&v1, &["so".to_string()]).unwrap().is_none());
        assert!(EntryReader::open(&v1, &[]).unwrap().is_none());
        std::fs::write(dir.path().join("x.bin"), b"KHOKEYS2\x05").unwrap();
        assert!(EntryReader::open(&dir.path().join("x.bin"), &names).unwrap().is_none());
        std::fs::write(dir.path().join("y.bin"), b"KHOKEYS1").unwrap();
        assert!(EntryReader::open(&dir.path().join("y.bin"), &names).unwrap().is_none());
    }
}
