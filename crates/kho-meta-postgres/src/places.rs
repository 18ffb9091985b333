//! Administrative units, the 2025 crosswalk, and agencies.

use async_trait::async_trait;
use kho_core::audit::AuditEvent;
use kho_core::model::{AdminEra, AdminUnit, Agency, AgencyKind, CrosswalkEntry, NewAgency};
use kho_core::text::fold;
use kho_core::{Error, Result};
use kho_meta::{AdminUnitFilter, AdminUnitStore, AgencyStore, refused};
use sqlx::postgres::PgRow;
use time::OffsetDateTime;

use crate::{Bind, PgStore, Placeholders, append_audit_in, db_err, escape_like, get, parse_enum, sql, unique_or};

const UNIT_COLS: &str = "era, code, level, name, full_name, name_en, unit_type, unit_type_en, parent_code";

fn unit_row(r: &PgRow) -> Result<AdminUnit> {
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

fn crosswalk_row(r: &PgRow) -> Result<CrosswalkEntry> {
    Ok(CrosswalkEntry { old_code: get(r, "old_code")?, new_code: get(r, "new_code")?, partial: get(r, "partial")? })
}

#[async_trait]
impl AdminUnitStore for PgStore {
    async fn admin_unit_count(&self) -> Result<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM admin_units").fetch_one(&self.pool).await.map_err(db_err)
    }

    async fn load_admin_units(&self, units: &[AdminUnit], crosswalk: &[CrosswalkEntry]) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM admin_units").execute(&mut *tx).await.map_err(db_err)?;
        sqlx::query("DELETE FROM admin_crosswalk").execute(&mut *tx).await.map_err(db_err)?;
        // Thousands of rows: sent as arrays in a few statements rather than one round trip each.
        for chunk in units.chunks(2000) {
            let col = |f: fn(&AdminUnit) -> String| chunk.iter().map(f).collect::<Vec<String>>();
            sqlx::query(sql!(
                "INSERT INTO admin_units ({UNIT_COLS}, name_folded)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                                      $7::text[], $8::text[], $9::text[], $10::text[])"
            ))
            .bind(col(|u| u.era.as_str().to_string()))
            .bind(col(|u| u.code.clone()))
            .bind(col(|u| u.level.as_str().to_string()))
            .bind(col(|u| u.name.clone()))
            .bind(col(|u| u.full_name.clone()))
            .bind(col(|u| u.name_en.clone()))
            .bind(col(|u| u.unit_type.clone()))
            .bind(col(|u| u.unit_type_en.clone()))
            .bind(chunk.iter().map(|u| u.parent_code.clone()).collect::<Vec<Option<String>>>())
            .bind(col(|u| fold(&u.full_name)))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        for chunk in crosswalk.chunks(2000) {
            sqlx::query(
                "INSERT INTO admin_crosswalk (old_code, new_code, partial)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::boolean[])",
            )
            .bind(chunk.iter().map(|c| c.old_code.clone()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|c| c.new_code.clone()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|c| c.partial).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn admin_unit(&self, era: AdminEra, code: &str) -> Result<Option<AdminUnit>> {
        let row = sqlx::query(sql!("SELECT {UNIT_COLS} FROM admin_units WHERE era = $1 AND code = $2"))
            .bind(era.as_str())
            .bind(code)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(unit_row).transpose()
    }

    async fn list_admin_units(&self, f: &AdminUnitFilter) -> Result<(Vec<AdminUnit>, i64)> {
        let mut p = Placeholders::default();
        let mut conds = vec!["TRUE".to_string()];
        let mut binds = Vec::new();
        if let Some(era) = f.era {
            conds.push(format!("era = {}", p.next()));
            binds.push(Bind::Text(era.as_str().into()));
        }
        if let Some(level) = f.level {
            conds.push(format!("level = {}", p.next()));
            binds.push(Bind::Text(level.as_str().into()));
        }
        if let Some(parent) = &f.parent_code {
            conds.push(format!("parent_code = {}", p.next()));
            binds.push(Bind::Text(parent.clone()));
        }
        if let Some(q) = &f.q {
            for word in fold(q).split_whitespace() {
                conds.push(format!("(name_folded LIKE {} ESCAPE '\\' OR code = {})", p.next(), p.next()));
                binds.push(Bind::Text(format!("%{}%", escape_like(word))));
                binds.push(Bind::Text(word.to_string()));
            }
        }
        let where_ = conds.join(" AND ");
        let count = sqlx::query(sql!("SELECT COUNT(*) AS n FROM admin_units WHERE {where_}"));
        let total: i64 = get(&crate::bind_all(count, &binds).fetch_one(&self.pool).await.map_err(db_err)?, "n")?;
        let (limit, offset) = (p.next(), p.next());
        let list = sqlx::query(sql!(
            "SELECT {UNIT_COLS} FROM admin_units WHERE {where_} ORDER BY era, level DESC, code LIMIT {limit} OFFSET {offset}"
        ));
        let rows =
            crate::bind_all(list, &binds).bind(f.limit).bind(f.offset).fetch_all(&self.pool).await.map_err(db_err)?;
        Ok((rows.iter().map(unit_row).collect::<Result<_>>()?, total))
    }

    async fn crosswalk_from(&self, old_code: &str) -> Result<Vec<CrosswalkEntry>> {
        let rows = sqlx::query(
            "SELECT old_code, new_code, partial FROM admin_crosswalk WHERE old_code = $1 ORDER BY new_code",
        )
        .bind(old_code)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(crosswalk_row).collect()
    }

    async fn crosswalk_all(&self) -> Result<Vec<CrosswalkEntry>> {
        let rows = sqlx::query("SELECT old_code, new_code, partial FROM admin_crosswalk ORDER BY old_code, new_code")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(crosswalk_row).collect()
    }
}

const AGENCY_COLS: &str = "id, code, name, name_en, kind, parent_id, admin_unit_code, created_at";

fn agency_row(r: &PgRow) -> Result<Agency> {
    Ok(Agency {
        id: get(r, "id")?,
        code: get(r, "code")?,
        name: get(r, "name")?,
        name_en: get(r, "name_en")?,
        kind: parse_enum::<AgencyKind>(&get::<String>(r, "kind")?)?,
        parent_id: get(r, "parent_id")?,
        admin_unit_code: get(r, "admin_unit_code")?,
        created_at: get(r, "created_at")?,
    })
}

#[async_trait]
impl AgencyStore for PgStore {
    async fn create_agency(&self, new: &NewAgency, audit: AuditEvent) -> Result<Agency> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(sql!(
            "INSERT INTO agencies (code, name, name_en, kind, parent_id, admin_unit_code, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {AGENCY_COLS}"
        ))
        .bind(&new.code)
        .bind(&new.name)
        .bind(&new.name_en)
        .bind(new.kind.as_str())
        .bind(new.parent_id)
        .bind(&new.admin_unit_code)
        .bind(crate::micros(OffsetDateTime::now_utc()))
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| unique_or(e, || refused::agency_code_taken(&new.code)))?;
        let agency = agency_row(&row)?;
        let mut audit = audit;
        audit.object_id = agency.id.to_string();
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(agency)
    }

    async fn update_agency(&self, id: i64, new: &NewAgency, audit: AuditEvent) -> Result<Agency> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(sql!(
            "UPDATE agencies SET code = $1, name = $2, name_en = $3, kind = $4, parent_id = $5, admin_unit_code = $6
             WHERE id = $7 RETURNING {AGENCY_COLS}"
        ))
        .bind(&new.code)
        .bind(&new.name)
        .bind(&new.name_en)
        .bind(new.kind.as_str())
        .bind(new.parent_id)
        .bind(&new.admin_unit_code)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| unique_or(e, || refused::agency_code_taken(&new.code)))?
        .ok_or_else(|| Error::not_found("agency"))?;
        let agency = agency_row(&row)?;
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(agency)
    }

    async fn agency(&self, id: i64) -> Result<Option<Agency>> {
        let row = sqlx::query(sql!("SELECT {AGENCY_COLS} FROM agencies WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(agency_row).transpose()
    }

    async fn agency_by_code(&self, code: &str) -> Result<Option<Agency>> {
        let row = sqlx::query(sql!("SELECT {AGENCY_COLS} FROM agencies WHERE code = $1"))
            .bind(code)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(agency_row).transpose()
    }

    async fn list_agencies(&self) -> Result<Vec<Agency>> {
        let rows = sqlx::query(sql!("SELECT {AGENCY_COLS} FROM agencies ORDER BY id"))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(agency_row).collect()
    }
}
