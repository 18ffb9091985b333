//! Administrative units, the 2025 crosswalk, and agencies.

use super::*;

fn crosswalk_row(r: &SqliteRow) -> Result<CrosswalkEntry> {
    Ok(CrosswalkEntry {
        old_code: get(r, "old_code")?,
        new_code: get(r, "new_code")?,
        partial: get::<i64>(r, "partial")? != 0,
    })
}

fn unit_row(r: &SqliteRow) -> Result<AdminUnit> {
    Ok(AdminUnit {
        code: get(r, "code")?,
        era: parse_enum(&get::<String>(r, "era")?)?,
        level: parse_enum(&get::<String>(r, "level")?)?,
        name: get(r, "name")?,
        full_name: get(r, "full_name")?,
        name_en: get(r, "name_en")?,
        unit_type: get(r, "unit_type")?,
        unit_type_en: get(r, "unit_type_en")?,
        parent_code: get(r, "parent_code")?,
    })
}

fn agency_row(r: &SqliteRow) -> Result<Agency> {
    Ok(Agency {
        id: get(r, "id")?,
        code: get(r, "code")?,
        name: get(r, "name")?,
        name_en: get(r, "name_en")?,
        kind: parse_enum::<AgencyKind>(&get::<String>(r, "kind")?)?,
        parent_id: get(r, "parent_id")?,
        admin_unit_code: get(r, "admin_unit_code")?,
        created_at: parse_ts(&get::<String>(r, "created_at")?)?,
    })
}

const UNIT_COLS: &str = "era, code, level, name, full_name, name_en, unit_type, unit_type_en, parent_code";

#[async_trait]
impl AdminUnitStore for SqliteStore {
    async fn admin_unit_count(&self) -> Result<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM admin_units").fetch_one(&self.pool).await.map_err(db_err)
    }

    async fn load_admin_units(&self, units: &[AdminUnit], crosswalk: &[CrosswalkEntry]) -> Result<()> {
        let (_w, mut tx) = self.write().await?;
        sqlx::query("DELETE FROM admin_units").execute(&mut *tx).await.map_err(db_err)?;
        sqlx::query("DELETE FROM admin_crosswalk").execute(&mut *tx).await.map_err(db_err)?;
        for u in units {
            sqlx::query(sql!(
                "INSERT INTO admin_units ({UNIT_COLS}, name_folded) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ))
            .bind(u.era.as_str())
            .bind(&u.code)
            .bind(u.level.as_str())
            .bind(&u.name)
            .bind(&u.full_name)
            .bind(&u.name_en)
            .bind(&u.unit_type)
            .bind(&u.unit_type_en)
            .bind(&u.parent_code)
            .bind(fold(&u.full_name))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        for c in crosswalk {
            sqlx::query("INSERT INTO admin_crosswalk (old_code, new_code, partial) VALUES (?, ?, ?)")
                .bind(&c.old_code)
                .bind(&c.new_code)
                .bind(c.partial as i64)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn admin_unit(&self, era: AdminEra, code: &str) -> Result<Option<AdminUnit>> {
        let row = sqlx::query(sql!("SELECT {UNIT_COLS} FROM admin_units WHERE era = ? AND code = ?"))
            .bind(era.as_str())
            .bind(code)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(unit_row).transpose()
    }

    async fn list_admin_units(&self, f: &AdminUnitFilter) -> Result<(Vec<AdminUnit>, i64)> {
        let mut conds = vec!["1 = 1".to_string()];
        let mut binds: Vec<String> = Vec::new();
        if let Some(era) = f.era {
            conds.push("era = ?".into());
            binds.push(era.as_str().into());
        }
        if let Some(level) = f.level {
            conds.push("level = ?".into());
            binds.push(level.as_str().into());
        }
        if let Some(p) = &f.parent_code {
            conds.push("parent_code = ?".into());
            binds.push(p.clone());
        }
        if let Some(q) = &f.q {
            for word in fold(q).split_whitespace() {
                conds.push("(name_folded LIKE ? ESCAPE '\\' OR code = ?)".into());
                binds.push(format!("%{}%", escape_like(word)));
                binds.push(word.to_string());
            }
        }
        let where_ = conds.join(" AND ");
        let count_sql = format!("SELECT COUNT(*) FROM admin_units WHERE {where_}");
        let mut count = sqlx::query_scalar::<_, i64>(safe(count_sql));
        for b in &binds {
            count = count.bind(b);
        }
        let total = count.fetch_one(&self.pool).await.map_err(db_err)?;
        let sql = format!(
            "SELECT {UNIT_COLS} FROM admin_units WHERE {where_} ORDER BY era, level DESC, code LIMIT ? OFFSET ?"
        );
        let mut q = sqlx::query(safe(sql));
        for b in &binds {
            q = q.bind(b);
        }
        let rows = q.bind(f.limit).bind(f.offset).fetch_all(&self.pool).await.map_err(db_err)?;
        Ok((rows.iter().map(unit_row).collect::<Result<_>>()?, total))
    }

    async fn crosswalk_all(&self) -> Result<Vec<CrosswalkEntry>> {
        let rows = sqlx::query("SELECT old_code, new_code, partial FROM admin_crosswalk ORDER BY old_code, new_code")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(crosswalk_row).collect()
    }

    async fn crosswalk_from(&self, old_code: &str) -> Result<Vec<CrosswalkEntry>> {
        let rows =
            sqlx::query("SELECT old_code, new_code, partial FROM admin_crosswalk WHERE old_code = ? ORDER BY new_code")
                .bind(old_code)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
        rows.iter().map(crosswalk_row).collect()
    }
}

const AGENCY_COLS: &str = "id, code, name, name_en, kind, parent_id, admin_unit_code, created_at";

#[async_trait]
impl AgencyStore for SqliteStore {
    async fn create_agency(&self, new: &NewAgency, audit: AuditEvent) -> Result<Agency> {
        let (_w, mut tx) = self.write().await?;
        let res = sqlx::query(
            "INSERT INTO agencies (code, name, name_en, kind, parent_id, admin_unit_code, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&new.code)
        .bind(&new.name)
        .bind(&new.name_en)
        .bind(new.kind.as_str())
        .bind(new.parent_id)
        .bind(&new.admin_unit_code)
        .bind(ts(OffsetDateTime::now_utc()))
        .execute(&mut *tx)
        .await;
        let id = match res {
            Ok(r) => r.last_insert_rowid(),
            Err(e) => {
                return Err(unique_or(e, || refused::agency_code_taken(&new.code)));
            }
        };
        let mut audit = audit;
        audit.object_id = id.to_string();
        append_audit_in(&mut tx, audit).await?;
        let agency = reread(&mut tx, sql!("SELECT {AGENCY_COLS} FROM agencies WHERE id = ?"), id, agency_row).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(agency)
    }

    async fn update_agency(&self, id: i64, new: &NewAgency, audit: AuditEvent) -> Result<Agency> {
        let (_w, mut tx) = self.write().await?;
        let res = sqlx::query(
            "UPDATE agencies SET code = ?, name = ?, name_en = ?, kind = ?, parent_id = ?, admin_unit_code = ? WHERE id = ?",
        )
        .bind(&new.code)
        .bind(&new.name)
        .bind(&new.name_en)
        .bind(new.kind.as_str())
        .bind(new.parent_id)
        .bind(&new.admin_unit_code)
        .bind(id)
        .execute(&mut *tx)
        .await;
        match res {
            Ok(r) if r.rows_affected() == 0 => return Err(Error::not_found("agency")),
            Ok(_) => {}
            Err(e) => {
                return Err(unique_or(e, || refused::agency_code_taken(&new.code)));
            }
        }
        append_audit_in(&mut tx, audit).await?;
        let agency = reread(&mut tx, sql!("SELECT {AGENCY_COLS} FROM agencies WHERE id = ?"), id, agency_row).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(agency)
    }

    async fn agency(&self, id: i64) -> Result<Option<Agency>> {
        self.find(sql!("SELECT {AGENCY_COLS} FROM agencies WHERE id = ?"), Key::Id(id), agency_row).await
    }

    async fn agency_by_code(&self, code: &str) -> Result<Option<Agency>> {
        self.find(sql!("SELECT {AGENCY_COLS} FROM agencies WHERE code = ?"), Key::Text(code), agency_row).await
    }

    async fn list_agencies(&self) -> Result<Vec<Agency>> {
        let rows = sqlx::query(sql!("SELECT {AGENCY_COLS} FROM agencies ORDER BY id"))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(agency_row).collect()
    }
}
