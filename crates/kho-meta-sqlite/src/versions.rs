//! Uploads waiting for a decision and the immutable versions of each table.

use super::*;

const UPLOAD_COLS: &str = "id, dataset_id, resource_id, resource_name, file_name, bytes, status, rows, valid_rows, invalid_rows, report, created_by, created_at, version";
const VERSION_COLS: &str = "resource_id, version, dataset_id, rows, bytes, schema_hash, schema, object_key, quarantine_key, quarantined_rows, rows_added, rows_removed, rows_changed, upload_id, published_by, published_at, quality";

fn upload_row(r: &SqliteRow) -> Result<Upload> {
    Ok(Upload {
        id: get(r, "id")?,
        dataset_id: get(r, "dataset_id")?,
        resource_id: get(r, "resource_id")?,
        resource_name: get(r, "resource_name")?,
        file_name: get(r, "file_name")?,
        bytes: get(r, "bytes")?,
        status: get(r, "status")?,
        rows: get(r, "rows")?,
        valid_rows: get(r, "valid_rows")?,
        invalid_rows: get(r, "invalid_rows")?,
        report: json(&get::<String>(r, "report")?, "report")?,
        created_by: get(r, "created_by")?,
        created_at: parse_ts(&get::<String>(r, "created_at")?)?,
        version: get(r, "version")?,
    })
}

fn version_row(r: &SqliteRow) -> Result<ResourceVersion> {
    Ok(ResourceVersion {
        resource_id: get(r, "resource_id")?,
        version: get(r, "version")?,
        dataset_id: get(r, "dataset_id")?,
        rows: get(r, "rows")?,
        bytes: get(r, "bytes")?,
        schema_hash: get(r, "schema_hash")?,
        schema: json(&get::<String>(r, "schema")?, "schema")?,
        object_key: get(r, "object_key")?,
        quarantine_key: get(r, "quarantine_key")?,
        quarantined_rows: get(r, "quarantined_rows")?,
        rows_added: get(r, "rows_added")?,
        rows_removed: get(r, "rows_removed")?,
        rows_changed: get(r, "rows_changed")?,
        upload_id: get(r, "upload_id")?,
        quality: json(&get::<String>(r, "quality")?, "quality")?,
        published_by: get(r, "published_by")?,
        published_at: parse_ts(&get::<String>(r, "published_at")?)?,
    })
}

#[async_trait]
impl VersionStore for SqliteStore {
    async fn create_upload(&self, u: &Upload, audit: AuditEvent) -> Result<()> {
        let (_w, mut tx) = self.write().await?;
        sqlx::query(sql!("INSERT INTO uploads ({UPLOAD_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"))
            .bind(&u.id)
            .bind(&u.dataset_id)
            .bind(&u.resource_id)
            .bind(&u.resource_name)
            .bind(&u.file_name)
            .bind(u.bytes)
            .bind(&u.status)
            .bind(u.rows)
            .bind(u.valid_rows)
            .bind(u.invalid_rows)
            .bind(to_json(&u.report)?)
            .bind(&u.created_by)
            .bind(ts(u.created_at))
            .bind(u.version)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn upload(&self, id: &str) -> Result<Option<Upload>> {
        self.find(sql!("SELECT {UPLOAD_COLS} FROM uploads WHERE id = ?"), Key::Text(id), upload_row).await
    }

    async fn reject_upload(&self, id: &str, audit: AuditEvent) -> Result<()> {
        let (_w, mut tx) = self.write().await?;
        let r = sqlx::query("UPDATE uploads SET status = 'rejected' WHERE id = ? AND status = 'checked'")
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
        let (_w, mut tx) = self.write().await?;
        if let Some(upload) = &v.upload_id {
            let r =
                sqlx::query("UPDATE uploads SET status = 'published', version = ? WHERE id = ? AND status = 'checked'")
                    .bind(v.version)
                    .bind(upload)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
            if r.rows_affected() == 0 {
                return Err(refused::upload_decided());
            }
        }
        sqlx::query(sql!(
            "INSERT INTO resource_versions ({VERSION_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(&v.resource_id)
        .bind(v.version)
        .bind(&v.dataset_id)
        .bind(v.rows)
        .bind(v.bytes)
        .bind(&v.schema_hash)
        .bind(to_json(&v.schema)?)
        .bind(&v.object_key)
        .bind(&v.quarantine_key)
        .bind(v.quarantined_rows)
        .bind(v.rows_added)
        .bind(v.rows_removed)
        .bind(v.rows_changed)
        .bind(&v.upload_id)
        .bind(&v.published_by)
        .bind(ts(v.published_at))
        .bind(to_json(&v.quality)?)
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_or(e, || refused::version_exists(v.version)))?;
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn versions(&self, resource_id: &str) -> Result<Vec<ResourceVersion>> {
        let rows = sqlx::query(sql!(
            "SELECT {VERSION_COLS} FROM resource_versions WHERE resource_id = ? ORDER BY version DESC"
        ))
        .bind(resource_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(version_row).collect()
    }

    async fn version(&self, resource_id: &str, version: i64) -> Result<Option<ResourceVersion>> {
        let row =
            sqlx::query(sql!("SELECT {VERSION_COLS} FROM resource_versions WHERE resource_id = ? AND version = ?"))
                .bind(resource_id)
                .bind(version)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
        row.as_ref().map(version_row).transpose()
    }

    async fn version_object_keys(&self) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT object_key, quarantine_key FROM resource_versions")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        let mut out = Vec::new();
        for r in &rows {
            out.push(get::<String>(r, "object_key")?);
            if let Some(q) = get::<Option<String>>(r, "quarantine_key")? {
                out.push(q);
            }
        }
        Ok(out)
    }
}
