//! Datasets with their tables and revisions, and the shared data dictionary.

use super::*;

fn term_row(r: &SqliteRow) -> Result<DictionaryTerm> {
    Ok(DictionaryTerm {
        name: get(r, "name")?,
        version: get(r, "version")?,
        title: get(r, "title")?,
        title_en: get(r, "title_en")?,
        description: get(r, "description")?,
        description_en: get(r, "description_en")?,
        field_type: get(r, "field_type")?,
        format: get(r, "format")?,
        constraints: json(&get::<String>(r, "constraints")?, "constraints")?,
        references: get(r, "refs")?,
        examples: json(&get::<String>(r, "examples")?, "examples")?,
        personal: get(r, "personal")?,
        created_at: parse_ts(&get::<String>(r, "created_at")?)?,
    })
}

async fn load_resources(conn: &mut SqliteConnection, dataset_id: &str) -> Result<Vec<Resource>> {
    let rows = sqlx::query(
        "SELECT id, dataset_id, body, created_at, modified_at FROM resources WHERE dataset_id = ? ORDER BY position",
    )
    .bind(dataset_id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    rows.iter()
        .map(|r| {
            Ok(Resource {
                id: get(r, "id")?,
                dataset_id: get(r, "dataset_id")?,
                input: json::<ResourceInput>(&get::<String>(r, "body")?, "resource")?,
                created_at: parse_ts(&get::<String>(r, "created_at")?)?,
                modified_at: parse_ts(&get::<String>(r, "modified_at")?)?,
            })
        })
        .collect()
}

fn dataset_row(r: &SqliteRow) -> Result<Dataset> {
    let mut input: DatasetInput = json(&get::<String>(r, "body")?, "dataset")?;
    input.owner_agency_id = Some(get(r, "owner_agency_id")?);
    Ok(Dataset {
        id: get(r, "id")?,
        input,
        revision: get(r, "revision")?,
        created_at: parse_ts(&get::<String>(r, "created_at")?)?,
        modified_at: parse_ts(&get::<String>(r, "modified_at")?)?,
        resources: Vec::new(),
    })
}

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

const DATASET_COLS: &str = "id, owner_agency_id, revision, body, created_at, modified_at";

/// SQL condition (and its binds) for what a caller may list.
fn visibility_sql(v: Visibility) -> (String, Vec<i64>) {
    match v {
        Visibility::All => ("1 = 1".into(), vec![]),
        Visibility::OpenOnly => ("d.access_level = 'open'".into(), vec![]),
        Visibility::Agency(a) => (
            "(d.access_level IN ('open', 'shared') OR d.owner_agency_id = ? OR (d.access_level = 'restricted' AND EXISTS
              (SELECT 1 FROM dataset_allowed_agencies x WHERE x.dataset_id = d.id AND x.agency_id = ?)))"
                .into(),
            vec![a, a],
        ),
    }
}

#[async_trait]
impl CatalogStore for SqliteStore {
    async fn save_dataset(&self, d: &Dataset, mode: SaveMode, change: &str, audit: AuditEvent) -> Result<()> {
        let (_w, mut tx) = self.write().await?;
        let mut body = d.input.clone();
        body.owner_agency_id = None;
        let body = to_json(&body)?;
        let owner = d.owner_agency_id();
        match mode {
            SaveMode::Create => {
                let res = sqlx::query(
                    "INSERT INTO datasets (id, slug, owner_agency_id, access_level, revision, body, search_text, created_at, modified_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(&d.id)
                .bind(&d.input.slug)
                .bind(owner)
                .bind(d.input.access_level.as_str())
                .bind(d.revision)
                .bind(&body)
                .bind(search_text(d))
                .bind(ts(d.created_at))
                .bind(ts(d.modified_at))
                .execute(&mut *tx)
                .await;
                match res {
                    Ok(_) => {}
                    Err(e) if is_unique_violation(&e) => return Err(refused::dataset_slug_taken(&d.input.slug)),
                    Err(e) => return Err(db_err(e)),
                }
            }
            SaveMode::Update { expected_revision } | SaveMode::Delete { expected_revision } => {
                let deleted_at = matches!(mode, SaveMode::Delete { .. }).then(|| ts(d.modified_at));
                let res = sqlx::query(
                    "UPDATE datasets SET slug = ?, owner_agency_id = ?, access_level = ?, revision = ?, body = ?, search_text = ?,
                     modified_at = ?, deleted_at = ? WHERE id = ? AND revision = ? AND deleted_at IS NULL",
                )
                .bind(&d.input.slug)
                .bind(owner)
                .bind(d.input.access_level.as_str())
                .bind(d.revision)
                .bind(&body)
                .bind(search_text(d))
                .bind(ts(d.modified_at))
                .bind(deleted_at)
                .bind(&d.id)
                .bind(expected_revision)
                .execute(&mut *tx)
                .await;
                match res {
                    Ok(r) if r.rows_affected() == 0 => return Err(refused::dataset_changed(expected_revision)),
                    Ok(_) => {}
                    Err(e) if is_unique_violation(&e) => return Err(refused::dataset_slug_taken(&d.input.slug)),
                    Err(e) => return Err(db_err(e)),
                }
            }
        }
        sqlx::query("DELETE FROM dataset_allowed_agencies WHERE dataset_id = ?")
            .bind(&d.id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        for a in &d.input.allowed_agency_ids {
            sqlx::query("INSERT OR IGNORE INTO dataset_allowed_agencies (dataset_id, agency_id) VALUES (?, ?)")
                .bind(&d.id)
                .bind(a)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        sqlx::query("DELETE FROM resources WHERE dataset_id = ?")
            .bind(&d.id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        for (pos, r) in d.resources.iter().enumerate() {
            sqlx::query(
                "INSERT INTO resources (id, dataset_id, name, position, body, created_at, modified_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&r.id)
            .bind(&d.id)
            .bind(&r.input.name)
            .bind(pos as i64)
            .bind(to_json(&r.input)?)
            .bind(ts(r.created_at))
            .bind(ts(r.modified_at))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        sqlx::query(
            "INSERT INTO dataset_revisions (dataset_id, revision, change, changed_by, changed_at, snapshot) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&d.id)
        .bind(d.revision)
        .bind(change)
        .bind(&audit.actor)
        .bind(ts(d.modified_at))
        .bind(to_json(d)?)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn dataset(&self, id_or_slug: &str) -> Result<Option<Dataset>> {
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        let row =
            sqlx::query(sql!("SELECT {DATASET_COLS} FROM datasets WHERE (id = ? OR slug = ?) AND deleted_at IS NULL"))
                .bind(id_or_slug)
                .bind(id_or_slug)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db_err)?;
        let Some(row) = row else { return Ok(None) };
        let mut d = dataset_row(&row)?;
        d.input.allowed_agency_ids = sqlx::query_scalar(
            "SELECT agency_id FROM dataset_allowed_agencies WHERE dataset_id = ? ORDER BY agency_id",
        )
        .bind(&d.id)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
        d.resources = load_resources(&mut conn, &d.id).await?;
        Ok(Some(d))
    }

    async fn list_datasets(&self, f: &DatasetFilter) -> Result<(Vec<Dataset>, i64)> {
        let (vis, vis_binds) = visibility_sql(f.visibility);
        let mut conds = vec!["d.deleted_at IS NULL".to_string(), vis];
        let mut int_binds = vis_binds;
        if let Some(owner) = f.owner_agency_id {
            conds.push("d.owner_agency_id = ?".into());
            int_binds.push(owner);
        }
        let mut text_binds = Vec::new();
        if let Some(q) = &f.q {
            for word in fold(q).split_whitespace() {
                conds.push("d.search_text LIKE ? ESCAPE '\\'".into());
                text_binds.push(format!("%{}%", escape_like(word)));
            }
        }
        let where_ = conds.join(" AND ");
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        let count_sql = format!("SELECT COUNT(*) FROM datasets d WHERE {where_}");
        let mut count = sqlx::query_scalar::<_, i64>(safe(count_sql));
        for b in &int_binds {
            count = count.bind(b);
        }
        for b in &text_binds {
            count = count.bind(b);
        }
        let total = count.fetch_one(&mut *conn).await.map_err(db_err)?;
        let sql = format!(
            "SELECT {} FROM datasets d WHERE {where_} ORDER BY d.modified_at DESC, d.id LIMIT ? OFFSET ?",
            DATASET_COLS.split(", ").map(|c| format!("d.{c}")).collect::<Vec<_>>().join(", ")
        );
        let mut q = sqlx::query(safe(sql));
        for b in &int_binds {
            q = q.bind(b);
        }
        for b in &text_binds {
            q = q.bind(b);
        }
        let rows = q.bind(f.limit).bind(f.offset).fetch_all(&mut *conn).await.map_err(db_err)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let mut d = dataset_row(r)?;
            d.input.allowed_agency_ids = sqlx::query_scalar(
                "SELECT agency_id FROM dataset_allowed_agencies WHERE dataset_id = ? ORDER BY agency_id",
            )
            .bind(&d.id)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?;
            d.resources = load_resources(&mut conn, &d.id).await?;
            out.push(d);
        }
        Ok((out, total))
    }

    async fn dataset_revisions(&self, dataset_id: &str) -> Result<Vec<DatasetRevision>> {
        let rows = sqlx::query(
            "SELECT dataset_id, revision, change, changed_by, changed_at, snapshot FROM dataset_revisions
             WHERE dataset_id = ? ORDER BY revision DESC",
        )
        .bind(dataset_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(DatasetRevision {
                    dataset_id: get(r, "dataset_id")?,
                    revision: get(r, "revision")?,
                    change: get(r, "change")?,
                    changed_by: get(r, "changed_by")?,
                    changed_at: parse_ts(&get::<String>(r, "changed_at")?)?,
                    snapshot: json(&get::<String>(r, "snapshot")?, "revision")?,
                })
            })
            .collect()
    }
}

const TERM_COLS: &str = "name, version, title, title_en, description, description_en, field_type, format, constraints, refs, examples, created_at, personal";

#[async_trait]
impl DictionaryStore for SqliteStore {
    async fn add_term_version(&self, t: &NewDictionaryTerm, audit: AuditEvent) -> Result<DictionaryTerm> {
        let (_w, mut tx) = self.write().await?;
        let version: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) + 1 FROM dictionary_terms WHERE name = ?")
                .bind(&t.name)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?;
        sqlx::query(sql!("INSERT INTO dictionary_terms ({TERM_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"))
            .bind(&t.name)
            .bind(version)
            .bind(&t.title)
            .bind(&t.title_en)
            .bind(&t.description)
            .bind(&t.description_en)
            .bind(&t.field_type)
            .bind(&t.format)
            .bind(to_json(&t.constraints)?)
            .bind(&t.references)
            .bind(to_json(&t.examples)?)
            .bind(ts(OffsetDateTime::now_utc()))
            .bind(t.personal)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let mut audit = audit;
        audit.object_id = format!("{}@{version}", t.name);
        append_audit_in(&mut tx, audit).await?;
        let row = sqlx::query(sql!("SELECT {TERM_COLS} FROM dictionary_terms WHERE name = ? AND version = ?"))
            .bind(&t.name)
            .bind(version)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
        let term = term_row(&row)?;
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
        let rows = sqlx::query(sql!("SELECT {TERM_COLS} FROM dictionary_terms WHERE name = ? ORDER BY version"))
            .bind(name)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(term_row).collect()
    }
}
