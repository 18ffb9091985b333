//! Backups, restores and moving an instance to other backends, with one archive format.
//!
//! An archive is a folder an operator can copy, `tar` or `rsync` anywhere:
//!
//! ```text
//! kho-backup.json            what is in it: tables and their row counts, every file with its
//!                            size and SHA-256, the audit chain's length and last hash
//! metadata/<table>.jsonl     a header line naming the columns, then one JSON array per row
//! objects/datasets/…         the files of every version the metadata names
//! objects/uploads/<id>/…     the checked files of uploads waiting for a decision
//! ```
//!
//! The metadata is read in one snapshot, then the objects it names are copied: versions are
//! written before the metadata names them and never rewritten, so an archive taken while kho
//! runs is consistent. The manifest is written last; a folder without it is not an archive.
//! Moving to other backends (`kho migrate`) is a backup into a scratch folder restored into the
//! new ones, so both paths are the same code and the same checks.

use std::collections::BTreeMap;
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use kho_core::audit::{AuditRecord, ChainVerifier};
use kho_core::{Error, Result};
use kho_meta::dump::{self, DumpSink, Table};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::Kho;

const MANIFEST: &str = "kho-backup.json";
const FORMAT: u32 = 1;
/// Rows written to the target per transaction.
const BATCH: usize = 500;

/// What an archive holds, written last into it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub kho_version: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    /// Rows per table.
    pub tables: BTreeMap<String, u64>,
    /// Every file of the archive but the manifest, by its path inside the archive.
    pub files: BTreeMap<String, FileEntry>,
    pub audit_entries: u64,
    /// The hash of the chain's last entry (empty when the log is empty).
    pub audit_last_hash: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileEntry {
    pub bytes: u64,
    pub sha256: String,
}

/// What a backup, a check or a restore found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ArchiveReport {
    pub tables: BTreeMap<String, u64>,
    pub objects: u64,
    pub object_bytes: u64,
    pub audit_entries: u64,
    /// Each thing wrong, naming the file or the row; empty when all is well.
    pub problems: Vec<String>,
}

fn io(what: impl std::fmt::Display, e: impl std::fmt::Display) -> Error {
    tracing::error!(error = %e, "{what}");
    Error::internal(format!("{what}: {e}"))
}

/// Writes dumped rows into `metadata/<table>.jsonl`, counting and hashing as it goes, and
/// keeps the audit chain's verifier up to date.
struct FileSink {
    dir: PathBuf,
    current: Option<(&'static Table, BufWriter<std::fs::File>, Sha256, u64, u64)>,
    tables: BTreeMap<String, u64>,
    files: BTreeMap<String, FileEntry>,
    audit: AuditRows,
    /// The version and upload rows, to know which objects to copy.
    versions: Vec<Vec<Value>>,
    uploads: Vec<Vec<Value>>,
}

impl FileSink {
    fn close_current(&mut self) -> Result<()> {
        if let Some((table, mut w, hash, bytes, rows)) = self.current.take() {
            w.flush().map_err(|e| io(format!("writing metadata/{}.jsonl", table.name), e))?;
            self.tables.insert(table.name.to_string(), rows);
            self.files.insert(
                format!("metadata/{}.jsonl", table.name),
                FileEntry { bytes, sha256: hex::encode(hash.finalize()) },
            );
        }
        Ok(())
    }

    fn write_line(&mut self, line: &[u8]) -> Result<()> {
        let Some((table, w, hash, bytes, _)) = self.current.as_mut() else {
            return Err(Error::internal("a row before its table"));
        };
        w.write_all(line).and_then(|()| w.write_all(b"\n")).map_err(|e| io(format!("writing {}", table.name), e))?;
        hash.update(line);
        hash.update(b"\n");
        *bytes += line.len() as u64 + 1;
        Ok(())
    }
}

impl DumpSink for FileSink {
    fn table(&mut self, table: &'static Table) -> Result<()> {
        self.close_current()?;
        let path = self.dir.join("metadata").join(format!("{}.jsonl", table.name));
        let file = std::fs::File::create(&path).map_err(|e| io(path.display(), e))?;
        self.current = Some((table, BufWriter::new(file), Sha256::new(), 0, 0));
        let header = serde_json::json!({"table": table.name, "columns": table.column_names()});
        self.write_line(header.to_string().as_bytes())
    }

    fn row(&mut self, values: Vec<Value>) -> Result<()> {
        let line = serde_json::to_vec(&values).map_err(|e| Error::internal(e.to_string()))?;
        self.write_line(&line)?;
        let Some((table, _, _, _, rows)) = self.current.as_mut() else { return Ok(()) };
        *rows += 1;
        match table.name {
            "audit_log" => self.audit.push(&values),
            "resource_versions" => self.versions.push(values),
            "uploads" => self.uploads.push(values),
            _ => {}
        }
        Ok(())
    }
}

/// The audit chain followed row by row through dumped `audit_log` rows: how many entries held,
/// the last hash, and the first break (after which it stops looking).
#[derive(Default)]
struct AuditRows {
    chain: ChainVerifier,
    last_hash: String,
    broken: Option<String>,
}

impl AuditRows {
    fn push(&mut self, row: &[Value]) {
        if self.broken.is_some() {
            return;
        }
        match audit_record(row) {
            Ok(r) => match self.chain.push(&r) {
                Ok(()) => self.last_hash = r.hash,
                Err(b) => self.broken = Some(format!("audit log entry {}: {}", b.seq, b.reason)),
            },
            Err(e) => self.broken = Some(e.message),
        }
    }
}

/// An audit entry from its dumped row (columns as in [`dump::TABLES`]).
fn audit_record(v: &[Value]) -> Result<AuditRecord> {
    let s = |i: usize| v.get(i).and_then(Value::as_str).unwrap_or_default().to_string();
    let at = time::OffsetDateTime::parse(&s(1), &time::format_description::well_known::Rfc3339)
        .map_err(|e| Error::internal(format!("audit entry time '{}': {e}", s(1))))?;
    Ok(AuditRecord {
        seq: v.first().and_then(Value::as_i64).unwrap_or_default(),
        at,
        actor: s(2),
        action: s(3),
        object_type: s(4),
        object_id: s(5),
        ip: v.get(6).and_then(Value::as_str).map(str::to_string),
        outcome: s(7),
        detail: s(8),
        prev_hash: s(9),
        hash: s(10),
    })
}

/// The value of `column` in a row of `table`.
fn cell<'a>(table: &str, row: &'a [Value], column: &str) -> &'a Value {
    let i = dump::table(table).and_then(|t| t.columns.iter().position(|(n, _)| *n == column));
    i.and_then(|i| row.get(i)).unwrap_or(&Value::Null)
}

/// The folder of an object key (a version's files share one).
fn folder(key: &str) -> &str {
    key.rsplit_once('/').map_or("", |(f, _)| f)
}

impl Kho {
    /// Write an archive of this instance into `dest` (a new or empty folder).
    pub async fn backup(&self, dest: &Path) -> Result<ArchiveReport> {
        if dest.read_dir().is_ok_and(|mut d| d.next().is_some()) {
            return Err(Error::validation(vec![kho_core::Detail::new(
                "archive",
                format!("{} is not empty: give a new folder for the archive", dest.display()),
            )]));
        }
        std::fs::create_dir_all(dest.join("metadata")).map_err(|e| io(dest.display(), e))?;
        let mut sink = FileSink {
            dir: dest.to_path_buf(),
            current: None,
            tables: BTreeMap::new(),
            files: BTreeMap::new(),
            audit: AuditRows::default(),
            versions: Vec::new(),
            uploads: Vec::new(),
        };
        self.store.dump(&mut sink).await?;
        sink.close_current()?;

        // The objects the metadata names: each version's folder, each waiting upload's files.
        let mut report = ArchiveReport { tables: sink.tables.clone(), ..Default::default() };
        // A broken chain is kept as it is (the archive is evidence too), and said.
        report.problems.extend(sink.audit.broken.clone());
        let mut folders: Vec<String> = sink
            .versions
            .iter()
            .filter_map(|v| cell("resource_versions", v, "object_key").as_str().map(|k| folder(k).to_string()))
            .collect();
        folders.sort();
        folders.dedup();
        for f in &folders {
            for key in self.blobs.list(f).await? {
                let entry = self.copy_out(&key, &dest.join("objects").join(&key)).await?;
                report.objects += 1;
                report.object_bytes += entry.bytes;
                sink.files.insert(format!("objects/{key}"), entry);
            }
        }
        for u in sink.uploads.iter().filter(|u| cell("uploads", u, "status").as_str() == Some("checked")) {
            let Some(id) = cell("uploads", u, "id").as_str() else { continue };
            let staged = match self.staged(id).await {
                Ok(dir) => dir,
                // A waiting upload whose files are gone can only be uploaded again: it is
                // restored as it is, and says so when someone tries to publish it.
                Err(_) => continue,
            };
            for name in crate::versions::STAGED_FILES {
                let file = staged.join(name);
                if !file.exists() {
                    continue;
                }
                let inside = format!("objects/uploads/{id}/{name}");
                let entry = copy_file(&file, &dest.join(&inside)).await?;
                report.objects += 1;
                report.object_bytes += entry.bytes;
                sink.files.insert(inside, entry);
            }
        }
        report.audit_entries = sink.audit.chain.checked;
        let manifest = Manifest {
            format: FORMAT,
            kho_version: env!("CARGO_PKG_VERSION").to_string(),
            created_at: time::OffsetDateTime::now_utc(),
            tables: sink.tables,
            files: sink.files,
            audit_entries: sink.audit.chain.checked,
            audit_last_hash: sink.audit.last_hash,
        };
        let text = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::internal(e.to_string()))?;
        tokio::fs::write(dest.join(MANIFEST), text).await.map_err(|e| io(dest.join(MANIFEST).display(), e))?;
        Ok(report)
    }

    /// Copy an object into a file of the archive, hashing it on the way.
    async fn copy_out(&self, key: &str, dest: &Path) -> Result<FileEntry> {
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(|e| io(parent.display(), e))?;
        }
        let mut out = tokio::fs::File::create(dest).await.map_err(|e| io(dest.display(), e))?;
        let mut stream = self.blobs.get_stream(key).await?;
        let (mut hash, mut bytes) = (Sha256::new(), 0u64);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            hash.update(&chunk);
            bytes += chunk.len() as u64;
            out.write_all(&chunk).await.map_err(|e| io(dest.display(), e))?;
        }
        out.flush().await.map_err(|e| io(dest.display(), e))?;
        Ok(FileEntry { bytes, sha256: hex::encode(hash.finalize()) })
    }

    /// Bring an archive into this instance, which must be empty (no agency, user, dataset,
    /// audit entry or version object), then check that everything arrived: the row counts, the
    /// audit chain and every version's objects.
    pub async fn restore(&self, archive: &Path) -> Result<ArchiveReport> {
        let (manifest, checked) = verify_archive(archive).await?;
        if !checked.problems.is_empty() {
            return Err(Error::validation(
                checked.problems.iter().map(|p| kho_core::Detail::new("archive", p.clone())).collect(),
            ));
        }
        for name in dump::MUST_BE_EMPTY {
            let Some(table) = dump::table(name) else { continue };
            let n = self.store.rows_in(table).await?;
            if n > 0 {
                return Err(Error::new(
                    kho_core::ErrorCode::Conflict,
                    format!("the target is not empty ({n} rows in {name}): restore into a new database"),
                ));
            }
        }
        if !self.blobs.list("datasets").await?.is_empty() {
            return Err(Error::new(
                kho_core::ErrorCode::Conflict,
                "the target object store already holds versions: restore into an empty one",
            ));
        }
        // Objects first: a version row never names an object that is not there.
        for (inside, entry) in &manifest.files {
            let Some(key) = inside.strip_prefix("objects/") else { continue };
            let file = archive.join(inside);
            if let Some(rest) = key.strip_prefix("uploads/")
                && self.blobs.is_local()
            {
                copy_file(&file, &self.config.upload_dir.join(rest)).await?;
                continue;
            }
            let written = self.blobs.put_file(key, &file).await?;
            if written != entry.bytes {
                return Err(Error::internal(format!("{inside}: {written} bytes written, {} expected", entry.bytes)));
            }
        }
        // The metadata, table by table in load order, in batches.
        for table in dump::TABLES {
            let mut reader = RowReader::open(archive, table)?;
            if table.name == "agencies" {
                let rows = parents_first(reader.next_batch(usize::MAX)?);
                for chunk in rows.chunks(BATCH) {
                    self.store.load(table, chunk).await?;
                }
                continue;
            }
            loop {
                let rows = reader.next_batch(BATCH)?;
                if rows.is_empty() {
                    break;
                }
                self.store.load(table, &rows).await?;
            }
        }
        self.store.finish_load().await?;
        self.check_restored(&manifest).await
    }

    /// Compare what this instance holds with an archive's manifest.
    async fn check_restored(&self, manifest: &Manifest) -> Result<ArchiveReport> {
        let mut report = ArchiveReport::default();
        for table in dump::TABLES {
            let n = self.store.rows_in(table).await?;
            let expected = manifest.tables.get(table.name).copied().unwrap_or(0);
            if n != expected as i64 {
                report.problems.push(format!("{}: {n} rows, {expected} in the archive", table.name));
            }
            report.tables.insert(table.name.to_string(), n as u64);
        }
        let chain = self.verify_audit().await?;
        report.audit_entries = chain.entries_checked;
        if let Some(seq) = chain.broken_at {
            report.problems.push(format!("audit log entry {seq}: {}", chain.reason.unwrap_or_default()));
        } else if chain.entries_checked != manifest.audit_entries {
            report.problems.push(format!(
                "audit log: {} entries, {} in the archive",
                chain.entries_checked, manifest.audit_entries
            ));
        }
        for (inside, entry) in &manifest.files {
            let Some(key) = inside.strip_prefix("objects/").filter(|k| k.starts_with("datasets/")) else { continue };
            match self.blobs.size(key).await {
                Ok(size) if size == entry.bytes => {
                    report.objects += 1;
                    report.object_bytes += size;
                }
                Ok(size) => report.problems.push(format!("{key}: {size} bytes, {} in the archive", entry.bytes)),
                Err(_) => report.problems.push(format!("{key}: missing")),
            }
        }
        Ok(report)
    }

    /// Copy this instance into `target` (other backends: PostgreSQL and an S3 bucket), through
    /// an archive in `scratch`, removed afterwards; then check the target as a restore does.
    pub async fn migrate_to(&self, target: &Kho, scratch: &Path) -> Result<ArchiveReport> {
        if self.blobs.same_place(&target.blobs) {
            return Err(Error::validation(vec![kho_core::Detail::new(
                "objects",
                "the target's object store is this instance's own: give another one (object_store_url = s3://…)",
            )]));
        }
        let result = async {
            self.backup(scratch).await?;
            target.restore(scratch).await
        }
        .await;
        let _ = tokio::fs::remove_dir_all(scratch).await;
        result
    }
}

/// Copy a local file, hashing it.
async fn copy_file(from: &Path, to: &Path) -> Result<FileEntry> {
    if let Some(parent) = to.parent() {
        tokio::fs::create_dir_all(parent).await.map_err(|e| io(parent.display(), e))?;
    }
    let bytes = tokio::fs::copy(from, to).await.map_err(|e| io(format!("copying {}", from.display()), e))?;
    let sha256 = hash_file(to).await?;
    Ok(FileEntry { bytes, sha256 })
}

async fn hash_file(path: &Path) -> Result<String> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut f = std::fs::File::open(&path).map_err(|e| io(path.display(), e))?;
        let mut hash = Sha256::new();
        std::io::copy(&mut f, &mut hash).map_err(|e| io(path.display(), e))?;
        Ok(hex::encode(hash.finalize()))
    })
    .await
    .map_err(|e| Error::internal(format!("hashing task: {e}")))?
}

/// The rows of a table in an archive, read a batch at a time (after its header line, which
/// must name the columns kho expects).
struct RowReader {
    path: PathBuf,
    lines: std::io::Lines<std::io::BufReader<std::fs::File>>,
    line: usize,
}

impl RowReader {
    fn open(archive: &Path, table: &'static Table) -> Result<RowReader> {
        let path = archive.join("metadata").join(format!("{}.jsonl", table.name));
        let file = std::fs::File::open(&path).map_err(|e| io(path.display(), e))?;
        let mut lines = std::io::BufReader::new(file).lines();
        let header: Value = match lines.next() {
            Some(l) => serde_json::from_str(&l.map_err(|e| io(path.display(), e))?)
                .map_err(|e| Error::internal(format!("{}: line 1: {e}", path.display())))?,
            None => return Err(Error::internal(format!("{}: empty", path.display()))),
        };
        let columns: Vec<&str> =
            header["columns"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        if columns != table.column_names() {
            return Err(Error::internal(format!(
                "{}: its columns are not those of this kho release's {} table",
                path.display(),
                table.name
            )));
        }
        Ok(RowReader { path, lines, line: 1 })
    }

    /// Up to `n` rows; empty at the end.
    fn next_batch(&mut self, n: usize) -> Result<Vec<Vec<Value>>> {
        let mut rows = Vec::new();
        while rows.len() < n {
            let Some(line) = self.lines.next() else { break };
            self.line += 1;
            let line = line.map_err(|e| io(self.path.display(), e))?;
            let row: Vec<Value> = serde_json::from_str(&line)
                .map_err(|e| Error::internal(format!("{}: line {}: {e}", self.path.display(), self.line)))?;
            rows.push(row);
        }
        Ok(rows)
    }
}

/// Agencies ordered so that each comes after its parent (an agency may have been moved under
/// one created after it).
fn parents_first(rows: Vec<Vec<Value>>) -> Vec<Vec<Value>> {
    let id = |r: &Vec<Value>| cell("agencies", r, "id").as_i64();
    let parent = |r: &Vec<Value>| cell("agencies", r, "parent_id").as_i64();
    let mut placed = std::collections::HashSet::new();
    let (mut out, mut waiting) = (Vec::with_capacity(rows.len()), rows);
    while !waiting.is_empty() {
        let before = waiting.len();
        let (ready, rest): (Vec<_>, Vec<_>) =
            waiting.into_iter().partition(|r| parent(r).is_none_or(|p| placed.contains(&p)));
        placed.extend(ready.iter().filter_map(id));
        out.extend(ready);
        waiting = rest;
        if waiting.len() == before {
            // A cycle cannot be stored; keep the rest as they are and let the load say so.
            out.extend(waiting);
            break;
        }
    }
    out
}

/// Check an archive without restoring it: every file there with its size and hash, the row
/// counts, the audit chain from its first entry to the recorded last hash, and every version's
/// data file present with the size its row gives.
pub async fn verify_archive(archive: &Path) -> Result<(Manifest, ArchiveReport)> {
    let text = tokio::fs::read(archive.join(MANIFEST)).await.map_err(|e| {
        Error::validation(vec![kho_core::Detail::new(
            "archive",
            format!("{}: no {MANIFEST} ({e}): not a kho archive, or one that was not finished", archive.display()),
        )])
    })?;
    let manifest: Manifest = serde_json::from_slice(&text)
        .map_err(|e| Error::validation(vec![kho_core::Detail::new("archive", format!("{MANIFEST}: {e}"))]))?;
    let mut report = ArchiveReport::default();
    if manifest.format != FORMAT {
        report.problems.push(format!("archive format {} is not the one this kho reads ({FORMAT})", manifest.format));
        return Ok((manifest, report));
    }
    for (inside, entry) in &manifest.files {
        let path = archive.join(inside);
        match tokio::fs::metadata(&path).await {
            Err(_) => report.problems.push(format!("{inside}: missing")),
            Ok(m) if m.len() != entry.bytes => {
                report.problems.push(format!("{inside}: {} bytes, {} recorded", m.len(), entry.bytes))
            }
            Ok(_) => {
                if hash_file(&path).await? != entry.sha256 {
                    report.problems.push(format!("{inside}: its content changed (SHA-256 differs)"));
                } else if inside.starts_with("objects/") {
                    report.objects += 1;
                    report.object_bytes += entry.bytes;
                }
            }
        }
    }
    let archive_dir = archive.to_path_buf();
    let (tables, chain, missing) = {
        let manifest = manifest.clone();
        tokio::task::spawn_blocking(move || check_rows(&archive_dir, &manifest))
            .await
            .map_err(|e| Error::internal(format!("checking task: {e}")))?
    };
    report.tables = tables;
    report.audit_entries = chain.0;
    report.problems.extend(chain.1);
    report.problems.extend(missing);
    Ok((manifest, report))
}

type ChainCheck = (u64, Vec<String>);

/// Row counts, the audit chain and the versions' files, read from the archive's metadata.
fn check_rows(archive: &Path, manifest: &Manifest) -> (BTreeMap<String, u64>, ChainCheck, Vec<String>) {
    let mut tables = BTreeMap::new();
    let mut problems = Vec::new();
    let mut audit = AuditRows::default();
    for table in dump::TABLES {
        let mut count = 0u64;
        let mut reader = match RowReader::open(archive, table) {
            Ok(r) => r,
            Err(e) => {
                problems.push(e.message);
                continue;
            }
        };
        loop {
            let rows = match reader.next_batch(BATCH) {
                Ok(rows) if rows.is_empty() => break,
                Ok(rows) => rows,
                Err(e) => {
                    problems.push(e.message);
                    break;
                }
            };
            count += rows.len() as u64;
            for row in &rows {
                match table.name {
                    "audit_log" => audit.push(row),
                    "resource_versions" => {
                        let key = cell("resource_versions", row, "object_key").as_str().unwrap_or_default();
                        let bytes = cell("resource_versions", row, "bytes").as_u64().unwrap_or_default();
                        match manifest.files.get(&format!("objects/{key}")) {
                            None => problems.push(format!("objects/{key}: a version's data, not in the archive")),
                            Some(f) if f.bytes != bytes => {
                                problems.push(format!("objects/{key}: {} bytes, the version has {bytes}", f.bytes))
                            }
                            Some(_) => {}
                        }
                    }
                    _ => {}
                }
            }
        }
        let expected = manifest.tables.get(table.name).copied().unwrap_or(0);
        if count != expected {
            problems.push(format!("metadata/{}.jsonl: {count} rows, {expected} recorded", table.name));
        }
        tables.insert(table.name.to_string(), count);
        if table.name == "audit_log" && audit.broken.is_none() && audit.last_hash != manifest.audit_last_hash {
            audit.broken =
                Some("audit log: its last entry is not the one recorded (entries missing at the end)".into());
        }
    }
    (tables, (audit.chain.checked, audit.broken.into_iter().collect()), problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agencies_come_after_their_parents() {
        let agency = |id: i64, parent: Option<i64>| -> Vec<Value> {
            let mut row = vec![Value::Null; 8];
            row[0] = Value::from(id);
            row[5] = parent.map_or(Value::Null, Value::from);
            row
        };
        let rows = vec![agency(1, None), agency(2, Some(5)), agency(5, Some(1)), agency(3, Some(2))];
        let ids: Vec<i64> = parents_first(rows).iter().map(|r| r[0].as_i64().unwrap()).collect();
        assert_eq!(ids, [1, 5, 2, 3]);
        let cycle = vec![agency(1, Some(2)), agency(2, Some(1))];
        assert_eq!(parents_first(cycle).len(), 2, "a cycle is kept, for the load to refuse");
    }
}
