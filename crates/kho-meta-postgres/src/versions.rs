//! Uploads waiting for a decision and the immutable versions of each table.

use async_trait::async_trait;
use kho_core::audit::AuditEvent;
use kho_core::model::{ResourceVersion, Upload};
use kho_core::{Error, ErrorCode, Result};
use kho_meta::{VersionStore, refused};
use sqlx::postgres::PgRow;

use crate::{
    PgStore, append_audit_in, db_err, from_json, get, get_id, get_opt_id, micros, sql, to_json, unique_or, uuid,
    uuid_in,
};

const UPLOAD_COLS: &str = "id, dataset_id, resource_id, resource_name, file_name, bytes, status, rows, valid_rows, invalid_rows, report, created_by, created_at, version";
const VERSION_COLS: &str = "resource_id, version, dataset_id, rows, bytes, schema_hash, schema, object_key, quarantine_key, quarantined_rows, rows_added, rows_removed, rows_changed, upload_id, published_by, published_at, quality";

fn upload_row(r: &PgRow) -> Result<Upload> {
    Ok(Upload {
        id: get_id(r, "id")?,
        dataset_id: get_id(r, "dataset_id")?,
        resource_id: get_id(r, "resource_id")?,
        resource_name: get(r, "resource_name")?,
        file_name: get(r, "file_name")?,
        bytes: get(r, "bytes")?,
        status: get(r, "status")?,
        rows: get(r, "rows")?,
        valid_rows: get(r, "valid_rows")?,
        invalid_rows: get(r, "invalid_rows")?,
        report: from_json(get(r, "report")?, "report")?,
        created_by: get(r, "created_by")?,
        created_at: get(r, "created_at")?,
        version: get(r, "version")?,
    })
}

fn version_row(r: &PgRow) -> Result<ResourceVersion> {
    Ok(ResourceVersion {
        resource_id: get_id(r, "resource_id")?,
        version: get(r, "version")?,
        dataset_id: get_id(r, "dataset_id")?,
        rows: get(r, "rows")?,
        bytes: get(r, "bytes")?,
        schema_hash: get(r, "schema_hash")?,
        schema: get(r, "schema")?,
        object_key: get(r, "object_key")?,
        quarantine_key: get(r, "quarantine_key")?,
        quarantined_rows: get(r, "quarantined_rows")?,
        rows_added: get(r, "rows_added")?,
        rows_removed: get(r, "rows_removed")?,
        rows_changed: get(r, "rows_changed")?,
        upload_id: get_opt_id(r, "upload_id")?,
        quality: from_json(get(r, "quality")?, "quality")?,
        published_by: get(r, "published_by")?,
        published_at: get(r, "published_at")?,
    })
}

#[async_trait]
impl VersionStore for PgStore {
    async fn create_upload(&self, u: &Upload, audit: AuditEvent) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(sql!(
            "INSERT INTO uploads ({UPLOAD_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ))
        .bind(uuid_in(&u.id, "upload")?)
        .bind(uuid_in(&u.dataset_id, "dataset")?)
        .bind(uuid_in(&u.resource_id, "table")?)
        .bind(&u.resource_name)
        .bind(&u.file_name)
        .bind(u.bytes)
        .bind(&u.status)
        .bind(u.rows)
        .bind(u.valid_rows)
        .bind(u.invalid_rows)
        .bind(to_json(&u.report)?)
        .bind(&u.created_by)
        .bind(micros(u.created_at))
        .bind(u.version)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn upload(&self, id: &str) -> Result<Option<Upload>> {
        let Some(id) = uuid(id) else { return Ok(None) };
        let row = sqlx::query(sql!("SELECT {UPLOAD_COLS} FROM uploads WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(upload_row).transpose()
    }

    async fn reject_upload(&self, id: &str, audit: AuditEvent) -> Result<()> {
        let id = uuid(id).ok_or_else(|| Error::not_found("upload"))?;
        let mut tx = self.begin().await?;
        let r = sqlx::query("UPDATE uploads SET status = 'rejected' WHERE id = $1 AND status = 'checked'")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if r.rows_affected() == 0 {
            return Err(refused::upload_decided());
        }
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn add_version(&self, v: &ResourceVersion, audit: AuditEvent) -> Result<()> {
        let mut tx = self.begin().await?;
        if let Some(upload) = &v.upload_id {
            // Taking the upload from `checked` to `published` is what lets only one of two
            // concurrent publishes of it through.
            let r = sqlx::query(
                "UPDATE uploads SET status = 'published', version = $1 WHERE id = $2 AND status = 'checked'",
            )
            .bind(v.version)
            .bind(uuid(upload).ok_or_else(refused::upload_decided)?)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            if r.rows_affected() == 0 {
                return Err(refused::upload_decided());
            }
        }
        sqlx::query(sql!(
            "INSERT INTO resource_versions ({VERSION_COLS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
        ))
        .bind(uuid_in(&v.resource_id, "table")?)
        .bind(v.version)
        .bind(uuid_in(&v.dataset_id, "dataset")?)
        .bind(v.rows)
        .bind(v.bytes)
        .bind(&v.schema_hash)
        .bind(&v.schema)
        .bind(&v.object_key)
        .bind(&v.quarantine_key)
        .bind(v.quarantined_rows)
        .bind(v.rows_added)
        .bind(v.rows_removed)
        .bind(v.rows_changed)
        .bind(v.upload_id.as_deref().map(|u| uuid_in(u, "upload")).transpose()?)
        .bind(&v.published_by)
        .bind(micros(v.published_at))
        .bind(to_json(&v.quality)?)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            unique_or(e, || {
                Error::new(ErrorCode::Conflict, format!("version {} of this table exists already", v.version))
            })
        })?;
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn versions(&self, resource_id: &str) -> Result<Vec<ResourceVersion>> {
        let Some(id) = uuid(resource_id) else { return Ok(Vec::new()) };
        let rows = sqlx::query(sql!(
            "SELECT {VERSION_COLS} FROM resource_versions WHERE resource_id = $1 ORDER BY version DESC"
        ))
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(version_row).collect()
    }

    async fn version(&self, resource_id: &str, version: i64) -> Result<Option<ResourceVersion>> {
        let Some(id) = uuid(resource_id) else { return Ok(None) };
        let row =
            sqlx::query(sql!("SELECT {VERSION_COLS} FROM resource_versions WHERE resource_id = $1 AND version = $2"))
                .bind(id)
                .bind(version)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
        row.as_ref().map(version_row).transpose()
    }

    async fn version_object_keys(&self) -> Result<Vec<String>> {
        let rows: Vec<(String, Option<String>)> =
            sqlx::query_as("SELECT object_key, quarantine_key FROM resource_versions")
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
        Ok(rows.into_iter().flat_map(|(o, q)| std::iter::once(o).chain(q)).collect())
    }
}
