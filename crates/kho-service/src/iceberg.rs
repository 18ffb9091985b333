//! The warehouse as Apache Iceberg tables, for the Iceberg REST catalog (`/iceberg/v1/…`):
//! datasets are namespaces (by slug), their tables are tables, versions are snapshots. The
//! caller's rights apply as everywhere: a namespace is a dataset the caller may read, and a table
//! whose personal fields would be masked for the caller is refused here (an Iceberg reader reads
//! the stored files whole), to be read through the rows API instead.
//!
//! The Iceberg files (table metadata, manifest lists, manifests) are written into the object
//! store under `iceberg/<dataset id>/<table id>/`, beside the versions they describe, the first
//! time a table is asked for at its latest version. They are derived from the versions alone, so
//! any node may write them, twice writes the same bytes, and a backup need not hold them.

use kho_core::model::{Dataset, ResourceVersion};
use kho_core::{Error, ErrorCode, Result};
use kho_iceberg::{ColumnType, Version};

use crate::Ctx;
use crate::Kho;
use crate::catalog::{DatasetQuery, MAX_PAGE};

/// A table as an Iceberg catalog hands it out.
#[derive(Debug, Clone)]
pub struct IcebergTable {
    pub metadata_location: String,
    pub metadata: serde_json::Value,
}

fn iceberg_err(e: kho_iceberg::IcebergError) -> Error {
    tracing::error!(error = %e, "iceberg files");
    Error::internal(e.to_string())
}

/// The Iceberg type of each stored column of a version.
fn columns(v: &ResourceVersion) -> Vec<(String, ColumnType)> {
    let validator = kho_ingest::Validator::new(&v.schema, &[], std::sync::Arc::new(kho_ingest::References::default()));
    validator
        .columns()
        .into_iter()
        .map(|(name, t)| {
            let t = match t {
                kho_ingest::validate::ColumnType::Int => ColumnType::Long,
                kho_ingest::validate::ColumnType::Num => ColumnType::Double,
                kho_ingest::validate::ColumnType::Bool => ColumnType::Boolean,
                kho_ingest::validate::ColumnType::Date => ColumnType::Date,
                kho_ingest::validate::ColumnType::DateTime => ColumnType::Timestamp,
                kho_ingest::validate::ColumnType::Text => ColumnType::String,
            };
            (name, t)
        })
        .collect()
}

impl Kho {
    /// The datasets the caller may read that have at least one table, as namespaces: slug and
    /// title.
    pub async fn iceberg_namespaces(&self, ctx: &Ctx) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        let mut offset = 0;
        loop {
            let q = DatasetQuery { limit: MAX_PAGE, offset, ..Default::default() };
            let (page, total) = self.list_datasets(ctx, &q).await?;
            let n = page.len() as i64;
            out.extend(page.into_iter().filter(|d| !d.resources.is_empty()).map(|d| (d.input.slug, d.input.title)));
            offset += n;
            if n == 0 || offset >= total {
                break;
            }
        }
        Ok(out)
    }

    /// A namespace (a dataset the caller may read), by slug.
    pub async fn iceberg_namespace(&self, ctx: &Ctx, namespace: &str) -> Result<Dataset> {
        self.get_dataset(ctx, namespace).await.map_err(|e| no_such(e, "namespace", namespace))
    }

    /// The tables of a namespace that have a published version.
    pub async fn iceberg_tables(&self, ctx: &Ctx, namespace: &str) -> Result<Vec<String>> {
        let d = self.iceberg_namespace(ctx, namespace).await?;
        let mut out = Vec::new();
        for r in &d.resources {
            if !self.store.versions(&r.id).await?.is_empty() {
                out.push(r.input.name.clone());
            }
        }
        Ok(out)
    }

    /// A table as Iceberg table metadata, its snapshots the table's versions; its files are
    /// written into the object store if they are not there yet.
    pub async fn iceberg_table(&self, ctx: &Ctx, namespace: &str, table: &str) -> Result<IcebergTable> {
        let d = self.iceberg_namespace(ctx, namespace).await?;
        let latest = self.version_in(ctx, &d, table, None).await.map_err(|e| no_such(e, "table", table))?;
        let source = self.read_source(ctx, &d, &latest, table).await?;
        if !source.masks.is_empty() {
            return Err(Error::forbidden(
                "this table has personal fields that are masked for you: read it through the rows API, or declare a purpose (X-Kho-Purpose)",
            ));
        }
        let mut stored = self.store.versions(&latest.resource_id).await?;
        stored.sort_by_key(|v| v.version);
        let versions: Vec<Version> = stored
            .iter()
            .map(|v| Version {
                number: v.version,
                data_uri: self.blobs.uri_of(&v.object_key),
                bytes: v.bytes,
                rows: v.rows,
                published_ms: i64::try_from(v.published_at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0),
                columns: columns(v),
            })
            .collect();
        let folder = format!("iceberg/{}/{}", d.id, latest.resource_id);
        let list_uri = |n: i64| self.blobs.uri_of(&format!("{folder}/snap-{n}.avro"));
        let lists: Vec<String> = versions.iter().map(|v| list_uri(v.number)).collect();
        let metadata = kho_iceberg::table_metadata(&latest.resource_id, &self.blobs.uri_of(&folder), &versions, &lists);
        let metadata_key = format!("{folder}/v{}.metadata.json", latest.version);
        if self.blobs.size(&metadata_key).await.is_err() {
            let ids = kho_iceberg::FieldIds::of(&versions);
            let mut parent = None;
            for v in &versions {
                let manifest_key = format!("{folder}/manifest-{}.avro", v.number);
                let manifest = kho_iceberg::manifest(v, &ids).map_err(iceberg_err)?;
                let length = manifest.len() as i64;
                self.blobs.put_bytes(&manifest_key, manifest).await?;
                let list = kho_iceberg::manifest_list(v, &self.blobs.uri_of(&manifest_key), length, parent)
                    .map_err(iceberg_err)?;
                self.blobs.put_bytes(&format!("{folder}/snap-{}.avro", v.number), list).await?;
                parent = Some(kho_iceberg::snapshot_id(v));
            }
            // The metadata last: once it is there, everything it names is.
            let text = serde_json::to_vec(&metadata).map_err(|e| Error::internal(e.to_string()))?;
            self.blobs.put_bytes(&metadata_key, text).await?;
        }
        Ok(IcebergTable { metadata_location: self.blobs.uri_of(&metadata_key), metadata })
    }
}

/// "Not found" in Iceberg's words: no such namespace, no such table.
fn no_such(e: Error, what: &str, name: &str) -> Error {
    if e.code == ErrorCode::NotFound {
        Error::new(ErrorCode::NotFound, format!("no {what} '{name}' (or you may not read it)"))
    } else {
        e
    }
}
