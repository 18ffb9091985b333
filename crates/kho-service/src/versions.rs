//! Loading data: an upload is checked and staged, then the steward publishes it (all rows, or
//! only the valid ones with the rest in quarantine) as the next immutable version, or rejects it.
//!
//! A publish writes the version's objects first and commits its manifest row after, in one
//! transaction with the audit entry; a version exists only once that row is committed. A crash in
//! between leaves objects no row points to, which [`Kho::clean_orphans`] removes at the next start.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::StreamExt;
use kho_core::model::{AccessLevel, Dataset, Resource, ResourceVersion, Upload};
use kho_core::policy::{self, Action};
use kho_core::{Detail, Error, ErrorCode, Result};
use kho_ingest::changes::{self, Change, Mode};
use kho_ingest::keys;
use kho_ingest::read::ReadError;
use kho_ingest::{Validator, stage};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::io::AsyncWriteExt;

use crate::catalog::access;

/// How a checked upload is published (see [`Kho::publish_upload`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct PublishOptions {
    pub skip_invalid: bool,
    pub mode: Mode,
    pub confirm_removal: bool,
}
use crate::{Ctx, Kho};

/// The one translation of a file reader's error. A file kho cannot read is the steward's to fix:
/// the English message names the line (`line 3: …`), and so does the Vietnamese one in the
/// detail, which pages show as it is. A failure of the server's own disk is logged and is a
/// server error; a table too long for a spreadsheet is a request to narrow.
pub(crate) fn read_error(e: ReadError) -> Error {
    if e.is_server_fault() {
        tracing::error!(error = %e, "file work failed on the server");
        return Error::internal(format!("the server could not write or read its working files: {e}"));
    }
    let path = e.line.map_or("file".to_string(), |l| format!("file:line {l}"));
    let vi = match e.line {
        Some(l) => format!("Dòng {l}: {}", e.message_vi),
        None => e.message_vi.clone(),
    };
    Error::new(ErrorCode::InvalidFile, e.to_string()).with_details(vec![Detail::new(path, vi)])
}

/// A reader's error on a file kho wrote itself (a published version being exported): anything
/// but a table too long for the format asked for is the server's fault.
pub(crate) fn stored_file_error(e: ReadError) -> Error {
    if e.code == "too_many_rows" {
        return Error::new(ErrorCode::BadRequest, e.message);
    }
    tracing::error!(error = %e, "reading a stored file failed");
    Error::internal(format!("a stored file could not be read: {e}"))
}

/// Run file work (checking, indexing) off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::result::Result<T, ReadError> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::internal(format!("file task: {e}")))?.map_err(read_error)
}

fn find_resource<'a>(d: &'a Dataset, name: &str) -> Result<&'a Resource> {
    d.resources
        .iter()
        .find(|r| r.input.name == name || r.id == name)
        .ok_or_else(|| Error::new(ErrorCode::NotFound, format!("dataset '{}' has no table '{name}'", d.input.slug)))
}

/// SHA-256 of the schema's JSON text (serde_json orders object keys, so equal schemas hash equal).
fn schema_hash(schema: &serde_json::Value) -> String {
    hex::encode(Sha256::digest(serde_json::to_string(schema).unwrap_or_default().as_bytes()))
}

/// The files of a checked upload that publishing needs: its rows, their key index, the rows
/// left out, the quality figures.
pub(crate) const STAGED_FILES: [&str; 4] = ["data.parquet", stage::KEYS_FILE, "quarantine.csv", "quality.json"];

/// Where a checked upload's files are kept in a shared object store.
fn staged_prefix(upload_id: &str) -> String {
    format!("uploads/{upload_id}")
}

impl Kho {
    fn staging_dir(&self, upload_id: &str) -> PathBuf {
        self.config.upload_dir.join(upload_id)
    }

    /// With a shared object store, the checked files of an upload are kept there too
    /// (`uploads/{id}/…`), so that the node that publishes it need not be the one that checked
    /// it: behind a load balancer, the steward's next click may reach any node.
    async fn share_staged(&self, upload_id: &str, dir: &Path) -> Result<()> {
        if self.blobs.is_local() {
            return Ok(());
        }
        for name in STAGED_FILES {
            let file = dir.join(name);
            if tokio::fs::try_exists(&file).await.unwrap_or(false) {
                self.blobs.put_file(&format!("{}/{name}", staged_prefix(upload_id)), &file).await?;
            }
        }
        Ok(())
    }

    /// The local folder of a checked upload's files, fetched from the shared store when this
    /// node did not check it (or has restarted since).
    pub(crate) async fn staged(&self, upload_id: &str) -> Result<PathBuf> {
        let dir = self.staging_dir(upload_id);
        if tokio::fs::try_exists(dir.join("data.parquet")).await.unwrap_or(false) || self.blobs.is_local() {
            return Ok(dir);
        }
        let prefix = staged_prefix(upload_id);
        let stored = self.blobs.list(&prefix).await?;
        if !stored.iter().any(|k| k.ends_with("/data.parquet")) {
            return Err(Error::new(
                ErrorCode::Conflict,
                "the checked file of this upload is no longer kept; upload the file again",
            ));
        }
        // Fetched into a folder of its own, then moved into place whole, so that two requests
        // fetching at once never see half a folder.
        let fetching = self.config.upload_dir.join(format!(
            "{}{upload_id}-{}",
            crate::ingest::SCRATCH_PREFIX,
            uuid::Uuid::now_v7()
        ));
        for key in &stored {
            let name = key.rsplit('/').next().unwrap_or_default();
            if STAGED_FILES.contains(&name) {
                self.fetch_object(key, &fetching.join(name)).await?;
            }
        }
        match tokio::fs::rename(&fetching, &dir).await {
            Ok(()) => {}
            // Another request fetched it first: theirs is the same.
            Err(_) if tokio::fs::try_exists(dir.join("data.parquet")).await.unwrap_or(false) => {
                let _ = tokio::fs::remove_dir_all(&fetching).await;
            }
            Err(e) => return Err(Error::internal(format!("{}: {e}", dir.display()))),
        }
        Ok(dir)
    }

    /// Store one file of a new version as `key`: a checked file that is already in the shared
    /// store (see [`Kho::share_staged`]) is copied there by the store itself instead of being
    /// uploaded a second time; anything else (a merged table, a rebuilt key index) is uploaded.
    async fn store_version_file(&self, upload_id: &str, staging: &Path, file: &Path, key: &str) -> Result<u64> {
        if !self.blobs.is_local()
            && file.parent() == Some(staging)
            && let Some(name) = file.file_name().and_then(|n| n.to_str()).filter(|n| STAGED_FILES.contains(n))
        {
            let from = format!("{}/{name}", staged_prefix(upload_id));
            match self.blobs.copy(&from, key).await {
                Ok(()) => return self.blobs.size(key).await,
                Err(e) => {
                    tracing::warn!(error = %e.message, "copying a checked file in the store failed; uploading it")
                }
            }
        }
        self.blobs.put_file(key, file).await
    }

    /// Forget an upload's checked files, here and in the shared store, once it is decided.
    async fn drop_staged(&self, upload_id: &str) {
        let _ = tokio::fs::remove_dir_all(self.staging_dir(upload_id)).await;
        if !self.blobs.is_local() {
            for name in STAGED_FILES {
                if let Err(e) = self.blobs.delete(&format!("{}/{name}", staged_prefix(upload_id))).await {
                    tracing::warn!(error = %e.message, upload = upload_id, "a checked file was left in the store; the clean-up at start removes it");
                }
            }
        }
    }

    /// The key index of a stored version by the key fields `names`, fetched into `staging`:
    /// the one kept beside its data, or, for a version stored without one or under another
    /// key, one built from its Parquet file.
    async fn previous_key_index(&self, v: &ResourceVersion, names: &[String], staging: &Path) -> Result<PathBuf> {
        let folder = v.object_key.rsplit_once('/').map_or("", |(f, _)| f);
        let keys_key = format!("{folder}/{}", stage::KEYS_FILE);
        if self.blobs.list(folder).await?.contains(&keys_key) {
            let path = self.fetch_object(&keys_key, &staging.join("previous-keys.bin")).await?;
            let (p, n) = (path.clone(), names.to_vec());
            if blocking(move || keys::is_index_for(&p, &n)).await? {
                return Ok(path);
            }
        }
        let file = self.fetch_object(&v.object_key, &staging.join("previous.parquet")).await?;
        let (names, out) = (names.to_vec(), staging.join("previous-rebuilt.bin"));
        blocking(move || stage::key_file_of(&file, &names, &out).map(|_| out)).await
    }

    /// Check the file at `path` against the table and stage it for publishing.
    pub async fn stage_upload(
        &self,
        ctx: &Ctx,
        dataset: &str,
        resource: &str,
        path: &Path,
        file_name: &str,
        opts: &kho_ingest::convert::SheetOptions,
    ) -> Result<Upload> {
        let d = self.store.dataset(dataset).await?.ok_or_else(|| Error::not_found("dataset"))?;
        policy::check_dataset(&ctx.principal, Action::Update, access(&d))?;
        let r = find_resource(&d, resource)?;
        let schema = self.effective_schema(&r.input.schema).await?;
        let refs = self.references().await?;
        let foreign = self.foreign_key_sets(ctx, &d, &schema).await?;
        let id = uuid::Uuid::now_v7().to_string();
        let dir = self.staging_dir(&id);
        let (src, stage_dir, mut opts) = (path.to_path_buf(), dir.clone(), opts.clone());
        opts.expected = kho_ingest::layout::Expected::of_schema(&schema);
        let staged = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&stage_dir).map_err(|e| ReadError {
                code: "io",
                message: e.to_string(),
                message_vi: e.to_string(),
                line: None,
            })?;
            let (source, notes) = kho_ingest::convert::open(&src, &opts, &stage_dir.join("source.csv"))?;
            // What the columns hold, by content (a sample), to notice personal data the table's
            // schema does not say is personal.
            let seen = kho_ingest::infer::infer(&source, &refs, 2_000).suggestions;
            let staged = stage::stage_csv(&source, &schema, refs, &foreign, &stage_dir).map(|mut s| {
                s.report.notes = notes;
                s
            });
            let _ = std::fs::remove_file(stage_dir.join("source.csv"));
            staged.map(|s| (s, seen))
        })
        .await
        .map_err(|e| Error::internal(format!("staging task: {e}")))?;
        let (mut staged, seen) = match staged {
            Ok(s) => s,
            Err(e) => {
                let _ = tokio::fs::remove_dir_all(&dir).await;
                return Err(read_error(e));
            }
        };
        let unmarked =
            self.unmarked_personal(&r.input.schema, &seen, d.input.access_level == AccessLevel::Open).await?;
        staged.report.notes.extend(unmarked);
        // Kept with the staged files until publishing stores it with the version.
        let quality = serde_json::to_vec(&staged.quality).map_err(|e| Error::internal(e.to_string()))?;
        tokio::fs::write(dir.join("quality.json"), quality).await.map_err(|e| Error::internal(e.to_string()))?;
        if let Err(e) = self.share_staged(&id, &dir).await {
            self.drop_staged(&id).await;
            return Err(e);
        }
        let bytes = tokio::fs::metadata(path).await.map(|m| m.len() as i64).unwrap_or(0);
        let report = &staged.report;
        let upload = Upload {
            id: id.clone(),
            dataset_id: d.id.clone(),
            resource_id: r.id.clone(),
            resource_name: r.input.name.clone(),
            file_name: file_name.chars().take(200).collect(),
            bytes,
            status: "checked".into(),
            rows: report.rows as i64,
            valid_rows: report.valid_rows as i64,
            invalid_rows: report.invalid_rows as i64,
            report: serde_json::to_value(report).map_err(|e| Error::internal(e.to_string()))?,
            created_by: ctx.principal.audit_label(),
            created_at: OffsetDateTime::now_utc(),
            version: None,
        };
        let event = ctx.event("upload.create", "dataset", &d.id).detail(serde_json::json!({
            "upload": id, "resource": r.input.name, "rows": report.rows, "invalid_rows": report.invalid_rows,
        }));
        if let Err(e) = self.store.create_upload(&upload, event).await {
            self.drop_staged(&id).await;
            return Err(e);
        }
        Ok(upload)
    }

    /// Columns whose content is personal data by a dictionary term (a CCCD, a phone number, an
    /// e-mail address, a date of birth…) while the table's schema does not say the field is
    /// personal: said in the upload's report, since the open data rule and the masking of
    /// personal fields only know what the schema says. A field marked `"personal": false` was
    /// looked at by its steward and is not flagged.
    async fn unmarked_personal(
        &self,
        schema: &serde_json::Value,
        seen: &[kho_ingest::infer::TermSuggestion],
        open: bool,
    ) -> Result<Vec<kho_ingest::report::Note>> {
        let terms = self.term_lookup().await?;
        let personal: Vec<String> =
            kho_core::table_schema::personal_fields(schema, &terms).into_iter().map(|p| p.name).collect();
        let fields = schema.get("fields").and_then(serde_json::Value::as_array).cloned().unwrap_or_default();
        let key = kho_core::text::name_key;
        let mut out = Vec::new();
        for s in seen.iter().filter(|s| s.applied && s.reason.contains("content")) {
            let Some(term) = terms.get(&s.term).and_then(|v| v.iter().max_by_key(|t| t.version)) else { continue };
            if !term.personal {
                continue;
            }
            let field = fields.iter().find(|f| {
                let name = f.get("name").and_then(serde_json::Value::as_str).unwrap_or("");
                let title = f.get("title").and_then(serde_json::Value::as_str).unwrap_or("");
                key(name) == key(&s.field) || (!title.is_empty() && key(title) == key(&s.field))
            });
            let Some(field) = field else { continue };
            let name = field.get("name").and_then(serde_json::Value::as_str).unwrap_or("").to_string();
            if personal.contains(&name) || field.get("personal").and_then(serde_json::Value::as_bool) == Some(false) {
                continue;
            }
            let label = field.get("title").and_then(serde_json::Value::as_str).unwrap_or(&name).to_string();
            let (then_vi, then_en) = if open {
                (
                    "Bộ dữ liệu này là dữ liệu mở: đừng xuất bản cột này; hãy bỏ cột, hoặc đổi mức truy cập.",
                    "This dataset is open: do not publish this column; remove it, or change the access level.",
                )
            } else {
                (
                    "Hãy gắn thuật ngữ này cho trường trong phần sửa lược đồ, để kho bảo vệ nó như dữ liệu cá nhân.",
                    "Give the field this term when editing the schema, so that kho protects it as personal data.",
                )
            };
            out.push(kho_ingest::report::Note {
                kind: "personal_unmarked".into(),
                message_vi: format!(
                    "Cột '{label}' có vẻ chứa {} — dữ liệu cá nhân (Luật 91/2025/QH15) — nhưng lược đồ của bảng chưa ghi trường này là dữ liệu cá nhân. {then_vi}",
                    term.title
                ),
                message_en: format!(
                    "Column '{label}' looks like {} — personal data (Law 91/2025/QH15) — but the table's schema does not say the field is personal. {then_en}",
                    term.title_en.clone().unwrap_or(term.title.clone())
                ),
            });
        }
        Ok(out)
    }

    /// An upload the caller may act on (the dataset's stewards and administrators).
    async fn upload_for(&self, ctx: &Ctx, id: &str) -> Result<(Upload, Dataset)> {
        let u = self.store.upload(id).await?.ok_or_else(|| Error::not_found("upload"))?;
        let d = self.store.dataset(&u.dataset_id).await?.ok_or_else(|| Error::not_found("upload"))?;
        policy::check_dataset(&ctx.principal, Action::Update, access(&d))
            .map_err(|e| if e.code == ErrorCode::NotFound { Error::not_found("upload") } else { e })?;
        Ok((u, d))
    }

    /// An upload with its report, whose problems quote the file's cells.
    pub async fn get_upload(&self, ctx: &Ctx, id: &str) -> Result<Upload> {
        let (u, d) = self.upload_for(ctx, id).await?;
        self.outsider_reads_raw_rows(ctx, &d, &u.resource_id, "upload").await?;
        Ok(u)
    }

    /// The staged quarantine file of an upload, if it has invalid rows.
    pub(crate) async fn upload_quarantine(&self, ctx: &Ctx, id: &str) -> Result<PathBuf> {
        let (u, d) = self.upload_for(ctx, id).await?;
        self.outsider_reads_raw_rows(ctx, &d, &u.resource_id, "upload quarantine").await?;
        if u.status != "checked" {
            return Err(Error::new(ErrorCode::NotFound, "this upload has no quarantined rows waiting"));
        }
        let path = self.staged(&u.id).await?.join("quarantine.csv");
        if !path.exists() {
            return Err(Error::new(ErrorCode::NotFound, "this upload has no quarantined rows waiting"));
        }
        Ok(path)
    }

    pub async fn reject_upload(&self, ctx: &Ctx, id: &str) -> Result<Upload> {
        let (u, d) = self.upload_for(ctx, id).await?;
        self.store
            .reject_upload(
                &u.id,
                ctx.event("upload.reject", "dataset", &d.id).detail(serde_json::json!({"upload": u.id})),
            )
            .await?;
        self.drop_staged(&u.id).await;
        Ok(self.upload_for(ctx, id).await?.0)
    }

    /// The checked upload `id` with its dataset, table, effective schema and key fields, for
    /// working out or making its publication.
    async fn upload_target(&self, ctx: &Ctx, id: &str) -> Result<(Upload, Dataset, serde_json::Value, Vec<String>)> {
        let (u, d) = self.upload_for(ctx, id).await?;
        let r = find_resource(&d, &u.resource_id)?;
        let schema = self.effective_schema(&r.input.schema).await?;
        let key_names = Validator::new(&schema, &[], Arc::new(kho_ingest::References::default())).key_names();
        Ok((u, d, schema, key_names))
    }

    /// The staged upload's key index on `key_names` (rebuilt from its Parquet file if the
    /// table's key changed since it was checked).
    async fn staged_key_index(&self, staging: &Path, key_names: &[String]) -> Result<PathBuf> {
        let (names, staged_keys) = (key_names.to_vec(), staging.join(stage::KEYS_FILE));
        let (staged_parquet, rebuilt) = (staging.join("data.parquet"), staging.join("keys-rebuilt.bin"));
        blocking(move || {
            if keys::is_index_for(&staged_keys, &names)? {
                return Ok(staged_keys);
            }
            stage::key_file_of(&staged_parquet, &names, &rebuilt)?;
            Ok(rebuilt)
        })
        .await
    }

    /// What publishing the upload `id` in `mode` would do to its table: rows added, removed,
    /// changed, with example keys. Nothing changes.
    pub async fn upload_changes(&self, ctx: &Ctx, id: &str, mode: Mode) -> Result<Change> {
        let mut changes = self.changes_of_upload(ctx, id, Some(mode)).await?;
        changes.pop().ok_or_else(|| Error::internal("no change was worked out"))
    }

    /// What each mode the table can take would do with the upload `id` (by key first, when
    /// the table has a key; then adding; then replacing), for choosing one; none for a table's
    /// first version, where every mode does the same. The previous version is read once.
    pub async fn upload_choices(&self, ctx: &Ctx, id: &str) -> Result<Vec<Change>> {
        self.changes_of_upload(ctx, id, None).await
    }

    /// [`Kho::upload_changes`] for `mode`, or [`Kho::upload_choices`] without one.
    async fn changes_of_upload(&self, ctx: &Ctx, id: &str, mode: Option<Mode>) -> Result<Vec<Change>> {
        let (u, _, _, key_names) = self.upload_target(ctx, id).await?;
        if u.status != "checked" {
            return Err(Error::new(ErrorCode::Conflict, format!("this upload was already {}", u.status)));
        }
        let previous = self.store.versions(&u.resource_id).await?.into_iter().next();
        let modes: Vec<Mode> = match mode {
            Some(m) => vec![m],
            None if previous.is_none() => return Ok(Vec::new()),
            None => [Mode::Upsert, Mode::Append, Mode::Replace]
                .into_iter()
                .filter(|m| *m != Mode::Upsert || !key_names.is_empty())
                .collect(),
        };
        let staging = self.staged(&u.id).await?;
        // The previous version's files are fetched beside the staged ones, in a folder of this
        // look alone (a publication may be reading the staged folder meanwhile).
        let work = staging.join(format!("changes-{}", uuid::Uuid::now_v7()));
        tokio::fs::create_dir_all(&work).await.map_err(|e| Error::internal(format!("{}: {e}", work.display())))?;
        let changes =
            self.changes_in(&staging, &work, previous.as_ref(), &key_names, u.valid_rows as u64, &modes).await;
        let _ = tokio::fs::remove_dir_all(&work).await;
        changes
    }

    /// What each of `modes` would do, with the previous version's files fetched into `work`.
    async fn changes_in(
        &self,
        staging: &Path,
        work: &Path,
        previous: Option<&ResourceVersion>,
        key_names: &[String],
        staged_rows: u64,
        modes: &[Mode],
    ) -> Result<Vec<Change>> {
        if modes.contains(&Mode::Upsert) && key_names.is_empty() {
            return Err(Error::validation(vec![Detail::new(
                "mode",
                "updating by key needs a primary key in the table's schema; replace the table or add rows instead",
            )]));
        }
        let new_keys = self.staged_key_index(staging, key_names).await?;
        let staged = staging.join("data.parquet");
        let previous_files = match previous {
            None => None,
            Some(p) => {
                let parquet = self.fetch_object(&p.object_key, &work.join("previous.parquet")).await?;
                let keys = self.previous_key_index(p, key_names, work).await?;
                Some((parquet, keys, p.rows as u64))
            }
        };
        let (names, modes) = (key_names.to_vec(), modes.to_vec());
        blocking(move || {
            let previous = previous_files.as_ref().map(|(parquet, keys, rows)| changes::Previous {
                parquet: parquet.as_path(),
                keys: keys.as_path(),
                rows: *rows,
            });
            modes
                .into_iter()
                .map(|mode| changes::preview(&staged, &new_keys, staged_rows, previous.as_ref(), &names, mode))
                .collect()
        })
        .await
    }

    /// Publish a checked upload as the table's next version, in `opts.mode` (see
    /// [`kho_ingest::changes`]). With invalid rows, only when `skip_invalid` says to leave them
    /// out (they are kept as the version's quarantine file); removing rows from the table only
    /// when `confirm_removal` says so; adding rows whose keys are there, never.
    pub async fn publish_upload(&self, ctx: &Ctx, id: &str, opts: PublishOptions) -> Result<ResourceVersion> {
        let (u, d, schema, key_names) = self.upload_target(ctx, id).await?;
        if u.status != "checked" {
            return Err(Error::new(ErrorCode::Conflict, format!("this upload was already {}", u.status)));
        }
        if u.report.get("header_mismatch").and_then(serde_json::Value::as_bool) == Some(true) {
            return Err(Error::validation(vec![Detail::new(
                "file",
                "the file's columns do not match the table's schema (see the report); fix the file and upload it again",
            )]));
        }
        if u.invalid_rows > 0 && !opts.skip_invalid {
            return Err(Error::validation(vec![Detail::new(
                "skip_invalid",
                format!(
                    "{} of {} rows are invalid: publish only the valid rows (the others stay in quarantine) or fix the file and upload it again",
                    u.invalid_rows, u.rows
                ),
            )]));
        }
        if u.valid_rows == 0 {
            return Err(Error::validation(vec![Detail::new("file", "no row is valid: nothing to publish")]));
        }
        let r = find_resource(&d, &u.resource_id)?;
        let staging = self.staged(&u.id).await?;
        // One publication of a table at a time, across every node sharing the store: the next
        // version is worked out from the last one, and its objects go to that version's folder.
        let _lease = self.store.lease(&format!("publish:{}", r.id)).await?;
        let u = self.store.upload(&u.id).await?.ok_or_else(|| Error::not_found("upload"))?;
        if u.status != "checked" {
            return Err(kho_meta::refused::upload_decided());
        }
        let previous = self.store.versions(&r.id).await?.into_iter().next();
        let version = previous.as_ref().map_or(1, |p| p.version + 1);

        // What this publication does, worked out before anything is written.
        let change = self
            .changes_in(&staging, &staging, previous.as_ref(), &key_names, u.valid_rows as u64, &[opts.mode])
            .await?
            .pop()
            .ok_or_else(|| Error::internal("no change was worked out"))?;
        if change.conflicting > 0 {
            return Err(Error::new(
                ErrorCode::Conflict,
                format!(
                    "{} rows of the file have keys already in the table (such as {}): publish them as an update by key (mode 'upsert')",
                    change.conflicting,
                    change.examples.conflicting.join("; ")
                ),
            ));
        }
        if change.removed > 0 && !opts.confirm_removal {
            let examples = if change.examples.removed.is_empty() {
                String::new()
            } else {
                format!(" (such as {})", change.examples.removed.join("; "))
            };
            return Err(Error::validation(vec![Detail::new(
                "confirm_removal",
                format!(
                    "publishing this file as the whole table removes {} of its rows{examples}: confirm the removal, or add the rows (mode 'append') or update them by key (mode 'upsert') instead",
                    change.removed
                ),
            )]));
        }

        // The version's rows: the staged ones, or the previous version merged with them and
        // checked again as a whole.
        let merging = opts.mode != Mode::Replace && previous.is_some();
        let (data, quality, rows) = if merging {
            let merged_dir = staging.join("merged");
            let refs = self.references().await?;
            let foreign = self.foreign_key_sets(ctx, &d, &schema).await?;
            let (staged, previous_parquet) = (staging.join("data.parquet"), staging.join("previous.parquet"));
            let (names, mode, dir, schema) = (key_names.clone(), opts.mode, merged_dir.clone(), schema.clone());
            let merged = blocking(move || {
                std::fs::create_dir_all(&dir).map_err(|e| ReadError {
                    code: "io",
                    message: format!("the merge folder: {e}"),
                    message_vi: format!("thư mục gộp bảng: {e}"),
                    line: None,
                })?;
                let csv = dir.join("merged.csv");
                changes::merge_to_csv(&staged, &previous_parquet, &names, mode, &csv)?;
                let source = kho_ingest::CsvSource::open(&csv)?;
                let merged = stage::stage_csv(&source, &schema, refs, &foreign, &dir);
                let _ = std::fs::remove_file(&csv);
                merged
            })
            .await?;
            if merged.report.invalid_rows > 0 {
                let first = merged.report.problems.first().map(|p| p.message_en.clone()).unwrap_or_default();
                return Err(Error::validation(vec![Detail::new(
                    "mode",
                    format!(
                        "{} rows of the merged table do not pass the table's checks (first: {first}); publish the whole table as a replacement",
                        merged.report.invalid_rows
                    ),
                )]));
            }
            let mut quality = merged.quality;
            // Lines of the merged table, not of the steward's file: the key names the row.
            for r in &mut quality.outlier_rows {
                r.line = None;
            }
            (merged_dir, quality, merged.rows as i64)
        } else {
            let quality = tokio::fs::read(staging.join("quality.json"))
                .await
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            (staging.clone(), quality, u.valid_rows)
        };
        // The evidence is read by everyone who reads the version: no personal value in it.
        let mut quality: kho_core::quality::QualityStats = quality;
        let personal = self.personal_fields(&schema).await?;
        quality.mask_personal(|field| {
            personal.iter().find(|p| p.name == field).map(|p| kho_core::masking::MaskKind::for_term(p.term.as_deref()))
        });
        let new_keys = self.staged_key_index(&data, &key_names).await?;

        let prefix = kho_storage::version_prefix(&d.id, &r.id, version);
        let object_key = format!("{prefix}/data.parquet");
        let bytes = self.store_version_file(&u.id, &staging, &data.join("data.parquet"), &object_key).await?;
        self.store_version_file(&u.id, &staging, &new_keys, &format!("{prefix}/{}", stage::KEYS_FILE)).await?;
        let quarantine = staging.join("quarantine.csv");
        let quarantine_key = if u.invalid_rows > 0 && quarantine.exists() {
            let key = format!("{prefix}/quarantine.csv");
            self.store_version_file(&u.id, &staging, &quarantine, &key).await?;
            Some(key)
        } else {
            None
        };
        let v = ResourceVersion {
            quality,
            dataset_id: d.id.clone(),
            resource_id: r.id.clone(),
            version,
            rows,
            bytes: bytes as i64,
            schema_hash: schema_hash(&schema),
            schema,
            object_key: object_key.clone(),
            quarantine_key: quarantine_key.clone(),
            quarantined_rows: u.invalid_rows,
            rows_added: change.added as i64,
            rows_removed: change.removed as i64,
            rows_changed: change.changed as i64,
            upload_id: Some(u.id.clone()),
            published_by: ctx.principal.audit_label(),
            published_at: OffsetDateTime::now_utc(),
        };
        let event = ctx.event("version.publish", "dataset", &d.id).detail(serde_json::json!({
            "resource": r.input.name, "version": version, "rows": v.rows, "upload": u.id, "mode": opts.mode.as_str(),
            "added": change.added, "removed": change.removed, "changed": change.changed,
        }));
        if let Err(e) = self.store.add_version(&v, event).await {
            // Not committed: the objects must not outlive the failed publish.
            let _ = self.blobs.delete(&object_key).await;
            if let Some(q) = &quarantine_key {
                let _ = self.blobs.delete(q).await;
            }
            return Err(e);
        }
        self.drop_staged(&u.id).await;
        self.reindex(&d.id).await;
        Ok(v)
    }

    /// Copy an object to a local file (for reading Parquet), returning the path.
    pub(crate) async fn fetch_object(&self, key: &str, dest: &Path) -> Result<PathBuf> {
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| Error::internal(format!("{}: {e}", parent.display())))?;
        }
        let mut out =
            tokio::fs::File::create(dest).await.map_err(|e| Error::internal(format!("{}: {e}", dest.display())))?;
        let mut stream = self.blobs.get_stream(key).await?;
        while let Some(chunk) = stream.next().await {
            out.write_all(&chunk?).await.map_err(|e| Error::internal(format!("{}: {e}", dest.display())))?;
        }
        out.flush().await.map_err(|e| Error::internal(format!("{}: {e}", dest.display())))?;
        Ok(dest.to_path_buf())
    }

    /// Versions of a table, newest first (readers of the dataset).
    pub async fn list_versions(&self, ctx: &Ctx, dataset: &str, resource: &str) -> Result<Vec<ResourceVersion>> {
        let d = self.get_dataset(ctx, dataset).await?;
        let r = find_resource(&d, resource)?;
        self.store.versions(&r.id).await
    }

    /// One version (`None`: the latest) of a table the caller may read. Reading its data is
    /// recorded in the audit log for non-open datasets.
    pub async fn version_for_read(
        &self,
        ctx: &Ctx,
        dataset: &str,
        resource: &str,
        version: Option<i64>,
    ) -> Result<ResourceVersion> {
        let d = self.store.dataset(dataset).await?.ok_or_else(|| Error::not_found("dataset"))?;
        self.version_in(ctx, &d, resource, version).await
    }

    /// A version of a table of a dataset already read (`None`: the latest), if the caller may
    /// read it. Reading it is audited as [`Kho::version_for_read`] says.
    pub async fn version_in(
        &self,
        ctx: &Ctx,
        d: &Dataset,
        resource: &str,
        version: Option<i64>,
    ) -> Result<ResourceVersion> {
        policy::check_dataset(&ctx.principal, Action::Read, access(d))?;
        let r = find_resource(d, resource)?;
        let v = match version {
            Some(n) => self.store.version(&r.id, n).await?,
            None => self.store.versions(&r.id).await?.into_iter().next(),
        }
        .ok_or_else(|| Error::new(ErrorCode::NotFound, "this table has no such version (nothing published yet?)"))?;
        if policy::read_is_audited(d.input.access_level) {
            let event = ctx
                .event("version.read", "dataset", &d.id)
                .detail(serde_json::json!({"resource": r.input.name, "version": v.version}));
            self.store.append_audit(event).await?;
        }
        Ok(v)
    }

    /// The object key of a version's quarantined rows; only those who may change the dataset see
    /// them (they are rows that failed its rules, possibly with personal data).
    pub(crate) async fn version_quarantine(
        &self,
        ctx: &Ctx,
        dataset: &str,
        resource: &str,
        version: Option<i64>,
    ) -> Result<(ResourceVersion, String)> {
        let v = self.version_for_read(ctx, dataset, resource, version).await?;
        let d = self.store.dataset(dataset).await?.ok_or_else(|| Error::not_found("dataset"))?;
        if !self.can_edit(ctx, &d) {
            return Err(Error::forbidden("only the dataset's stewards see quarantined rows"));
        }
        self.outsider_reads_raw_rows(ctx, &d, &v.resource_id, "version quarantine").await?;
        let key =
            v.quarantine_key.clone().ok_or_else(|| Error::new(ErrorCode::NotFound, "this version left no rows out"))?;
        Ok((v, key))
    }

    /// Remove objects that no committed version points to (interrupted publishes) and staged
    /// uploads that were decided. Run at start. In a cluster the shared store is cleaned by one
    /// node at a time (a lease); each node cleans its own folders.
    pub async fn clean_orphans(&self) -> Result<usize> {
        let mut removed = 0;
        if let Some(_lease) = self.store.try_lease("clean-orphan-objects").await? {
            let known: std::collections::HashSet<String> = self
                .store
                .version_object_keys()
                .await?
                .into_iter()
                .filter_map(|k| k.rsplit_once('/').map(|(p, _)| p.to_string()))
                .collect();
            let orphans = self.blobs.orphans(&known).await?;
            for k in &orphans {
                self.blobs.delete(k).await?;
            }
            removed += orphans.len();
            removed += self.clean_shared_staging().await?;
        }
        removed += self.blobs.remove_unfinished_uploads()?;
        removed += self.clean_staging().await?;
        Ok(removed)
    }

    /// Remove checked files kept in a shared store for uploads that were decided, or that were
    /// never recorded (a node stopped between checking and recording; after an hour, since
    /// another node may be recording one right now).
    async fn clean_shared_staging(&self) -> Result<usize> {
        const GRACE_SECS: u64 = 3600;
        if self.blobs.is_local() {
            return Ok(0);
        }
        let mut removed = 0;
        for (key, age) in self.blobs.list_with_age("uploads").await? {
            let Some(id) = key.split('/').nth(1) else { continue };
            let keep = match self.store.upload(id).await? {
                Some(u) => u.status == "checked",
                None => age.as_secs() < GRACE_SECS,
            };
            if !keep {
                self.blobs.delete(&key).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Remove staging folders that no upload waits on: a check the server stopped in the
    /// middle of (killed, or the machine went down) leaves a folder with no upload recorded,
    /// and nothing would ever read or remove it.
    async fn clean_staging(&self) -> Result<usize> {
        let dir = &self.config.upload_dir;
        let mut entries = match tokio::fs::read_dir(dir).await {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(Error::internal(format!("reading {}: {e}", dir.display()))),
        };
        let mut removed = 0;
        while let Some(entry) = entries.next_entry().await.map_err(|e| Error::internal(e.to_string()))? {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with(crate::ingest::SCRATCH_PREFIX) {
                let path = entry.path();
                let _ = if path.is_dir() {
                    tokio::fs::remove_dir_all(path).await
                } else {
                    tokio::fs::remove_file(path).await
                };
                removed += 1;
                continue;
            }
            // Upload ids are UUIDs; anything else here (the bodies being received) is not ours.
            if uuid::Uuid::parse_str(&name).is_err() {
                continue;
            }
            let waiting = self.store.upload(&name).await?.is_some_and(|u| u.status == "checked");
            if !waiting {
                tokio::fs::remove_dir_all(entry.path())
                    .await
                    .map_err(|e| Error::internal(format!("removing {}: {e}", entry.path().display())))?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

impl Kho {
    /// The dataset as a Frictionless Data Package: `datapackage.json` (the description and each
    /// table's Table Schema) and `data/<table>.csv` with each table's latest version, zipped to
    /// `out`. Tables with nothing published are left out. Unless `raw`, text cells that would
    /// run as formulas in a spreadsheet are neutralised (see `kho_core::text::csv_escape`).
    pub(crate) async fn write_datapackage(&self, ctx: &Ctx, dataset: &str, out: &Path, raw: bool) -> Result<Dataset> {
        let d = self.get_dataset(ctx, dataset).await?;
        let owner = self.store.agency(d.owner_agency_id()).await?.map(|a| a.name).unwrap_or_default();
        let mut parts = Vec::new();
        let mut resources = Vec::new();
        for r in &d.resources {
            let Some(v) = self.store.versions(&r.id).await?.into_iter().next() else { continue };
            let tmp = self.scratch_file("parquet").await?;
            let source = self.read_source(ctx, &d, &v, &r.input.name).await?;
            let mut schema = v.schema.clone();
            if source.masks.is_empty() {
                self.fetch_object(&v.object_key, tmp.path()).await?;
            } else {
                self.query.export(&source, &kho_query::RowsQuery::default(), tmp.path()).await?;
                // Masked fields hold text such as "0010******45": described as such, so the
                // package still validates.
                for f in schema.get_mut("fields").and_then(serde_json::Value::as_array_mut).into_iter().flatten() {
                    let masked = source.masks.iter().any(|(m, _)| f.get("name").and_then(|n| n.as_str()) == Some(m));
                    if let (true, Some(o)) = (masked, f.as_object_mut()) {
                        o.insert("type".into(), "string".into());
                        o.remove("format");
                        o.remove("constraints");
                        o.insert("kho:masked".into(), true.into());
                    }
                }
                let key = schema.get("primaryKey").cloned().unwrap_or_default();
                let key_masked = source.masks.iter().any(|(m, _)| match &key {
                    serde_json::Value::String(k) => k == m,
                    serde_json::Value::Array(ks) => ks.iter().any(|k| k == m.as_str()),
                    _ => false,
                });
                if let (true, Some(o)) = (key_masked, schema.as_object_mut()) {
                    o.remove("primaryKey");
                }
            }
            resources.push(serde_json::json!({
                "name": r.input.name,
                "title": r.input.title.clone().unwrap_or_else(|| r.input.name.clone()),
                "path": format!("data/{}.csv", r.input.name),
                "profile": "tabular-data-resource",
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
                "schema": schema,
                "version": v.version,
                "rows": v.rows,
            }));
            parts.push((format!("data/{}.csv", r.input.name), tmp));
        }
        let i = &d.input;
        let descriptor = serde_json::json!({
            "profile": "tabular-data-package",
            "name": i.slug,
            "id": d.id,
            "title": i.title,
            "description": i.description,
            "keywords": i.tags,
            "licenses": i.license.iter().map(|l| serde_json::json!({"name": l})).collect::<Vec<_>>(),
            "contributors": [{"title": owner, "role": "publisher"}],
            "created": d.created_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            "version": d.revision.to_string(),
            "resources": resources,
        });
        let out = out.to_path_buf();
        let written = tokio::task::spawn_blocking(move || -> std::result::Result<(), String> {
            let file = std::fs::File::create(&out).map_err(|e| e.to_string())?;
            let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(file));
            let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
            zip.start_file("datapackage.json", opts).map_err(|e| e.to_string())?;
            serde_json::to_writer_pretty(&mut zip, &descriptor).map_err(|e| e.to_string())?;
            for (name, parquet) in &parts {
                zip.start_file(name.as_str(), opts).map_err(|e| e.to_string())?;
                kho_ingest::stage::parquet_to_csv(parquet.path(), &mut zip, raw).map_err(|e| e.message)?;
            }
            zip.finish().map_err(|e| e.to_string())?;
            Ok(())
        })
        .await
        .map_err(|e| Error::internal(format!("data package task: {e}")))?;
        written.map_err(|e| Error::internal(format!("data package: {e}")))?;
        Ok(d)
    }
}

#[cfg(test)]
mod read_error_tests {
    use super::*;

    fn failure(code: &'static str) -> ReadError {
        ReadError { code, message: "m".into(), message_vi: "v".into(), line: Some(3) }
    }

    #[test]
    fn the_file_s_problems_are_the_steward_s_and_the_disk_s_are_the_server_s() {
        let e = read_error(failure("empty_file"));
        assert_eq!((e.code, e.details[0].path.as_str()), (ErrorCode::InvalidFile, "file:line 3"));
        assert_eq!(read_error(failure("io")).code, ErrorCode::Internal, "a full disk is not an invalid file");
        assert_eq!(stored_file_error(failure("too_many_rows")).code, ErrorCode::BadRequest);
        assert_eq!(stored_file_error(failure("invalid_parquet")).code, ErrorCode::Internal);
    }
}
