//! Checking an uploaded file against a resource's schema before it is published.

use std::path::Path;
use std::sync::Arc;

use kho_core::model::{AdminEra, AdminLevel};
use kho_core::policy::{self, Action};
use kho_core::{Error, ErrorCode, Result};
pub use kho_ingest::Report;
use kho_ingest::convert::{self, SheetOptions};
pub use kho_ingest::infer::Inferred;
pub use kho_ingest::report::RULES;
use kho_ingest::{References, Validator};
use kho_meta::AdminUnitFilter;

use crate::{Ctx, Kho};

impl Kho {
    /// The reference sets validators use, read from the store on first use.
    pub async fn references(&self) -> Result<Arc<References>> {
        self.references
            .get_or_try_init(|| async {
                let codes = |era, level| {
                    let store = self.store.clone();
                    async move {
                        let f = AdminUnitFilter {
                            era: Some(era),
                            level: Some(level),
                            limit: 100_000,
                            ..Default::default()
                        };
                        store.list_admin_units(&f).await.map(|(u, _)| u.into_iter().map(|u| u.code).collect::<Vec<_>>())
                    }
                };
                let mut refs = References {
                    provinces: codes(AdminEra::Current, AdminLevel::Province).await?.into_iter().collect(),
                    communes: codes(AdminEra::Current, AdminLevel::Commune).await?.into_iter().collect(),
                    legacy_provinces: codes(AdminEra::Legacy, AdminLevel::Province).await?.into_iter().collect(),
                    // A CCCD starts with the birth-registration province in three digits: the
                    // pre-2025 province codes with a leading zero.
                    cccd_prefixes: codes(AdminEra::Legacy, AdminLevel::Province)
                        .await?
                        .into_iter()
                        .map(|c| format!("0{c}"))
                        .collect(),
                    ..Default::default()
                };
                for c in self.store.crosswalk_all().await? {
                    refs.successors.entry(c.old_code).or_default().push(c.new_code);
                }
                Ok::<_, Error>(Arc::new(refs))
            })
            .await
            .cloned()
    }

    /// Validate the file at `path` against the resource `resource` of a dataset the caller may
    /// change. Nothing is stored; the check is recorded in the audit log.
    pub async fn validate_upload(
        &self,
        ctx: &Ctx,
        dataset: &str,
        resource: &str,
        path: &Path,
        opts: &SheetOptions,
    ) -> Result<Report> {
        let d = self.store.dataset(dataset).await?.ok_or_else(|| Error::not_found("dataset"))?;
        policy::check_dataset(&ctx.principal, Action::Update, crate::catalog::access(&d))?;
        let r = d.resources.iter().find(|r| r.input.name == resource).ok_or_else(|| {
            Error::new(ErrorCode::NotFound, format!("dataset '{}' has no table '{resource}'", d.input.slug))
        })?;
        let schema = self.effective_schema(&r.input.schema).await?;
        let refs = self.references().await?;
        let foreign = self.foreign_key_sets(ctx, &d, &schema).await?;
        let path = path.to_path_buf();
        let (scratch, mut opts) = (self.scratch_file("csv").await?, opts.clone());
        opts.expected = kho_ingest::layout::Expected::of_schema(&schema);
        // Parsing and checking are CPU work: keep them off the server's event loop.
        let report = tokio::task::spawn_blocking(move || {
            let (source, notes) = convert::open(&path, &opts, scratch.path())?;
            let mut report =
                Validator::new(&schema, &source.headers, refs).with_foreign_keys(&foreign).check_csv(&source);
            report.notes = notes;
            Ok::<_, kho_ingest::ReadError>(report)
        })
        .await
        .map_err(|e| Error::internal(format!("validation task: {e}")))?
        .map_err(crate::versions::read_error)?;
        let event = ctx.event("resource.validate", "dataset", &d.id).detail(serde_json::json!({
            "resource": resource, "rows": report.rows, "invalid_rows": report.invalid_rows, "problems": report.problems_total,
        }));
        self.store.append_audit(event).await?;
        Ok(report)
    }
}

impl Kho {
    /// A draft Table Schema for the file at `path` (signed-in users), from its first 10,000 rows.
    pub async fn infer_schema(
        &self,
        ctx: &Ctx,
        path: &Path,
        opts: &SheetOptions,
    ) -> Result<kho_ingest::infer::Inferred> {
        ctx.principal.require_member()?;
        let refs = self.references().await?;
        let path = path.to_path_buf();
        let (scratch, opts) = (self.scratch_file("csv").await?, opts.clone());
        tokio::task::spawn_blocking(move || {
            let (source, _) = convert::open(&path, &opts, scratch.path())?;
            Ok::<_, kho_ingest::ReadError>(kho_ingest::infer::infer(&source, &refs, 10_000))
        })
        .await
        .map_err(|e| Error::internal(format!("inference task: {e}")))?
        .map_err(crate::versions::read_error)
    }
}

impl Kho {
    /// A path for a spreadsheet or JSON file converted to CSV (removed after use).
    /// A scratch file in the upload folder, removed when the guard is dropped, whether the
    /// work that used it succeeded, failed or panicked.
    pub(crate) async fn scratch_file(&self, extension: &str) -> Result<Scratch> {
        tokio::fs::create_dir_all(&self.config.upload_dir)
            .await
            .map_err(|e| Error::internal(format!("upload folder {}: {e}", self.config.upload_dir.display())))?;
        Ok(Scratch(self.config.upload_dir.join(format!("{SCRATCH_PREFIX}{}.{extension}", uuid::Uuid::now_v7()))))
    }
}

/// Scratch files start with this; any left by a stopped server are removed at the next start.
pub(crate) const SCRATCH_PREFIX: &str = "convert-";

/// A scratch file, removed on drop.
pub struct Scratch(std::path::PathBuf);

impl Scratch {
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
