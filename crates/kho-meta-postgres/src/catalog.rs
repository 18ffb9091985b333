//! Datasets with their tables and revisions, and the shared data dictionary.

use async_trait::async_trait;
use kho_core::Result;
use kho_core::audit::AuditEvent;
use kho_core::model::{Dataset, DatasetInput, DatasetRevision, DictionaryTerm, NewDictionaryTerm, Resource};
use kho_core::text::fold;
use kho_meta::{CatalogStore, DatasetFilter, DictionaryStore, SaveMode, Visibility, refused};
use sqlx::PgConnection;
use sqlx::postgres::PgRow;

use crate::{
    Bind, PgStore, Placeholders, append_audit_in, db_err, escape_like, from_json, get, get_id, micros, sql, to_json,
    uuid, uuid_in,
};

const DATASET_COLS: &str = "d.id, d.owner_agency_id, d.revision, d.body, d.created_at, d.modified_at";

fn dataset_row(r: &PgRow) -> Result<Dataset> {
    let mut input: DatasetInput = from_json(get(r, "body")?, "dataset")?;
    input.owner_agency_id = Some(get(r, "owner_agency_id")?);
    Ok(Dataset {
        id: get_id(r, "id")?,
        input,
        revision: get(r, "revision")?,
        created_at: get(r, "created_at")?,
        modified_at: get(r, "modified_at")?,
        resources: Vec::new(),
    })
}

/// Folded title, slug, tags and description: what the catalog's own listing searches.
fn search_text(d: &Dataset) -> String {
    let i = &d.input;
    fold(&format!(
        "{} {} {} {} {}",
        i.title,
        i.title_en.as_deref().unwrap_or(""),
        i.slug,
        i.tags.join(" "),
        i.description
    ))
}

/// The tables and allowed agencies of a dataset just read.
async fn complete(conn: &mut PgConnection, d: &mut Dataset) -> Result<()> {
    let id = uuid_in(&d.id, "dataset")?;
    d.input.allowed_agency_ids =
        sqlx::query_scalar("SELECT agency_id FROM dataset_allowed_agencies WHERE dataset_id = $1 ORDER BY agency_id")
            .bind(id)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?;
    let rows = sqlx::query(
        "SELECT id, dataset_id, body, created_at, modified_at FROM resources WHERE dataset_id = $1 ORDER BY position",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    d.resources = rows
        .iter()
        .map(|r| {
            Ok(Resource {
                id: get_id(r, "id")?,
                dataset_id: get_id(r, "dataset_id")?,
                input: from_json(get(r, "body")?, "resource")?,
                created_at: get(r, "created_at")?,
                modified_at: get(r, "modified_at")?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(())
}

/// The condition (with its values) for what a caller may list.
fn visibility_sql(v: Visibility, p: &mut Placeholders, binds: &mut Vec<Bind>) -> String {
    match v {
        Visibility::All => "TRUE".into(),
        Visibility::OpenOnly => "d.access_level = 'open'".into(),
        Visibility::Agency(a) => {
            let (owner, allowed) = (p.next(), p.next());
            binds.push(Bind::Int(a));
            binds.push(Bind::Int(a));
            format!(
                "(d.access_level IN ('open', 'shared') OR d.owner_agency_id = {owner} OR (d.access_level = 'restricted'
                  AND EXISTS (SELECT 1 FROM dataset_allowed_agencies x WHERE x.dataset_id = d.id AND x.agency_id = {allowed})))"
            )
        }
    }
}

#[async_trait]
impl CatalogStore for PgStore {
    async fn save_dataset(&self, d: &Dataset, mode: SaveMode, change: &str, audit: AuditEvent) -> Result<()> {
        let id = uuid_in(&d.id, "dataset")?;
        let mut body = d.input.clone();
        body.owner_agency_id = None;
        let body = to_json(&body)?;
        let mut tx = self.begin().await?;
        match mode {
            SaveMode::Create => {
                sqlx::query(
                    "INSERT INTO datasets (id, slug, owner_agency_id, access_level, revision, body, search_text, created_at, modified_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(id)
                .bind(&d.input.slug)
                .bind(d.owner_agency_id())
                .bind(d.input.access_level.as_str())
                .bind(d.revision)
                .bind(&body)
                .bind(search_text(d))
                .bind(micros(d.created_at))
                .bind(micros(d.modified_at))
                .execute(&mut *tx)
                .await
                .map_err(|e| crate::unique_or(e, || refused::dataset_slug_taken(&d.input.slug)))?;
            }
            SaveMode::Update { expected_revision } | SaveMode::Delete { expected_revision } => {
                let deleted_at = matches!(mode, SaveMode::Delete { .. }).then(|| micros(d.modified_at));
                // The revision check makes concurrent editors on any node conflict instead of
                // overwriting each other.
                let r = sqlx::query(
                    "UPDATE datasets SET slug = $1, owner_agency_id = $2, access_level = $3, revision = $4, body = $5,
                     search_text = $6, modified_at = $7, deleted_at = $8
                     WHERE id = $9 AND revision = $10 AND deleted_at IS NULL",
                )
                .bind(&d.input.slug)
                .bind(d.owner_agency_id())
                .bind(d.input.access_level.as_str())
                .bind(d.revision)
                .bind(&body)
                .bind(search_text(d))
                .bind(micros(d.modified_at))
                .bind(deleted_at)
                .bind(id)
                .bind(expected_revision)
                .execute(&mut *tx)
                .await
                .map_err(|e| crate::unique_or(e, || refused::dataset_slug_taken(&d.input.slug)))?;
                if r.rows_affected() == 0 {
                    return Err(refused::dataset_changed(expected_revision));
                }
            }
        }
        sqlx::query("DELETE FROM dataset_allowed_agencies WHERE dataset_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO dataset_allowed_agencies (dataset_id, agency_id) SELECT $1, UNNEST($2::bigint[])
             ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(&d.input.allowed_agency_ids)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query("DELETE FROM resources WHERE dataset_id = $1").bind(id).execute(&mut *tx).await.map_err(db_err)?;
        for (pos, r) in d.resources.iter().enumerate() {
            sqlx::query(
                "INSERT INTO resources (id, dataset_id, name, position, body, created_at, modified_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(uuid_in(&r.id, "table")?)
            .bind(id)
            .bind(&r.input.name)
            .bind(i32::try_from(pos).unwrap_or(i32::MAX))
            .bind(to_json(&r.input)?)
            .bind(micros(r.created_at))
            .bind(micros(r.modified_at))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        sqlx::query(
            "INSERT INTO dataset_revisions (dataset_id, revision, change, changed_by, changed_at, snapshot)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(d.revision)
        .bind(change)
        .bind(&audit.actor)
        .bind(micros(d.modified_at))
        .bind(to_json(d)?)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn dataset(&self, id_or_slug: &str) -> Result<Option<Dataset>> {
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        let row = sqlx::query(sql!(
            "SELECT {DATASET_COLS} FROM datasets d WHERE (d.id = $1 OR d.slug = $2) AND d.deleted_at IS NULL"
        ))
        .bind(uuid(id_or_slug))
        .bind(id_or_slug)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?;
        let Some(row) = row else { return Ok(None) };
        let mut d = dataset_row(&row)?;
        complete(&mut conn, &mut d).await?;
        Ok(Some(d))
    }

    async fn list_datasets(&self, f: &DatasetFilter) -> Result<(Vec<Dataset>, i64)> {
        let mut p = Placeholders::default();
        let mut binds = Vec::new();
        let mut conds = vec!["d.deleted_at IS NULL".to_string(), visibility_sql(f.visibility, &mut p, &mut binds)];
        if let Some(owner) = f.owner_agency_id {
            conds.push(format!("d.owner_agency_id = {}", p.next()));
            binds.push(Bind::Int(owner));
        }
        if let Some(q) = &f.q {
            for word in fold(q).split_whitespace() {
                conds.push(format!("d.search_text LIKE {} ESCAPE '\\'", p.next()));
                binds.push(Bind::Text(format!("%{}%", escape_like(word))));
            }
        }
        let where_ = conds.join(" AND ");
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        let count = sqlx::query(sql!("SELECT COUNT(*) AS n FROM datasets d WHERE {where_}"));
        let total: i64 = get(&crate::bind_all(count, &binds).fetch_one(&mut *conn).await.map_err(db_err)?, "n")?;
        let (limit, offset) = (p.next(), p.next());
        let list = sqlx::query(sql!(
            "SELECT {DATASET_COLS} FROM datasets d WHERE {where_} ORDER BY d.modified_at DESC, d.id
             LIMIT {limit} OFFSET {offset}"
        ));
        let rows =
            crate::bind_all(list, &binds).bind(f.limit).bind(f.offset).fetch_all(&mut *conn).await.map_err(db_err)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let mut d = dataset_row(r)?;
            complete(&mut conn, &mut d).await?;
            out.push(d);
        }
        Ok((out, total))
    }

    async fn dataset_revisions(&self, dataset_id: &str) -> Result<Vec<DatasetRevision>> {
        let Some(id) = uuid(dataset_id) else { return Ok(Vec::new()) };
        let rows = sqlx::query(
            "SELECT dataset_id, revision, change, changed_by, changed_at, snapshot FROM dataset_revisions
             WHERE dataset_id = $1 ORDER BY revision DESC",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(DatasetRevision {
                    dataset_id: get_id(r, "dataset_id")?,
                    revision: get(r, "revision")?,
                    change: get(r, "change")?,
                    changed_by: get(r, "changed_by")?,
                    changed_at: get(r, "changed_at")?,
                    snapshot: get(r, "snapshot")?,
                })
            })
            .collect()
    }
}

const TERM_COLS: &str = "name, version, title, title_en, description, description_en, field_type, format, constraints, refs, examples, created_at, personal";

fn term_row(r: &PgRow) -> Result<DictionaryTerm> {
    Ok(DictionaryTerm {
        name: get(r, "name")?,
        version: get(r, "version")?,
        title: get(r, "title")?,
        title_en: get(r, "title_en")?,
        description: get(r, "description")?,
        description_en: get(r, "description_en")?,
        field_type: get(r, "field_type")?,
        format: get(r, "format")?,
        constraints: get(r, "constraints")?,
        references: get(r, "refs")?,
        examples: from_json(get(r, "examples")?, "examples")?,
        personal: get(r, "personal")?,
        created_at: get(r, "created_at")?,
    })
}

#[async_trait]
impl DictionaryStore for PgStore {
    async fn add_term_version(&self, t: &NewDictionaryTerm, audit: AuditEvent) -> Result<DictionaryTerm> {
        let mut tx = self.begin().await?;
        // Two stewards adding a version of the same term at once get consecutive numbers.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('kho dictionary term ' || $1, 0))")
            .bind(&t.name)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let row = sqlx::query(sql!(
            "INSERT INTO dictionary_terms ({TERM_COLS})
             SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12
               FROM dictionary_terms WHERE name = $1
             RETURNING {TERM_COLS}"
        ))
        .bind(&t.name)
        .bind(&t.title)
        .bind(&t.title_en)
        .bind(&t.description)
        .bind(&t.description_en)
        .bind(&t.field_type)
        .bind(&t.format)
        .bind(&t.constraints)
        .bind(&t.references)
        .bind(to_json(&t.examples)?)
        .bind(micros(time::OffsetDateTime::now_utc()))
        .bind(t.personal)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        let term = term_row(&row)?;
        let mut audit = audit;
        audit.object_id = format!("{}@{}", t.name, term.version);
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(term)
    }

    async fn terms(&self) -> Result<Vec<DictionaryTerm>> {
        let rows = sqlx::query(sql!("SELECT {TERM_COLS} FROM dictionary_terms ORDER BY name, version"))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(term_row).collect()
    }

    async fn term_versions(&self, name: &str) -> Result<Vec<DictionaryTerm>> {
        let rows = sqlx::query(sql!("SELECT {TERM_COLS} FROM dictionary_terms WHERE name = $1 ORDER BY version"))
            .bind(name)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(term_row).collect()
    }
}
