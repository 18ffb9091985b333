//! The catalog: datasets, their resources (tables) with Frictionless Table Schemas, and the
//! revision history every change leaves behind.

use kho_core::model::{AccessLevel, CatalogKind, Dataset, DatasetInput, DatasetRevision, Resource, ResourceInput};
use kho_core::policy::{self, Action, DatasetAccess};
use kho_core::table_schema;
use kho_core::text::{fold, slug_problem};
use kho_core::{Detail, Error, ErrorCode, Result};
use kho_meta::{DatasetFilter, SaveMode, Visibility};
use time::OffsetDateTime;

use crate::{Ctx, Kho};

pub const MAX_PAGE: i64 = 1000;

pub(crate) fn access(d: &Dataset) -> DatasetAccess<'_> {
    DatasetAccess {
        owner_agency_id: d.owner_agency_id(),
        level: d.input.access_level,
        allowed_agency_ids: &d.input.allowed_agency_ids,
    }
}

#[derive(Debug, Clone, Default)]
pub struct DatasetQuery {
    pub owner_agency_id: Option<i64>,
    pub q: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

impl Kho {
    /// Check a dataset description; every problem is reported at once, each with its field.
    async fn check_dataset_input(&self, input: &mut DatasetInput) -> Result<()> {
        let mut problems = Vec::new();
        input.slug = input.slug.trim().to_string();
        if let Some(p) = slug_problem(&input.slug) {
            problems.push(Detail::new("slug", p));
        }
        input.title = input.title.trim().to_string();
        if input.title.is_empty() || input.title.chars().count() > 300 {
            problems.push(Detail::new("title", "must be 1 to 300 characters"));
        }
        if input.description.chars().count() > 20_000 {
            problems.push(Detail::new("description", "must be at most 20,000 characters"));
        }
        input.catalogs.sort();
        input.catalogs.dedup();
        if input.catalogs.contains(&CatalogKind::Open) && input.access_level != AccessLevel::Open {
            problems.push(Detail::new("catalogs", "only datasets with access level 'open' can be in the open catalog"));
        }
        if input.access_level == AccessLevel::Open && !input.catalogs.contains(&CatalogKind::Open) {
            // Open data belongs in the open catalog by definition (Decree 47/2020, 42/2022).
            input.catalogs.push(CatalogKind::Open);
            input.catalogs.sort();
        }
        input.allowed_agency_ids.sort();
        input.allowed_agency_ids.dedup();
        if !input.allowed_agency_ids.is_empty() && input.access_level != AccessLevel::Restricted {
            problems.push(Detail::new("allowed_agency_ids", "applies only to datasets with access level 'restricted'"));
        }
        let mut tags: Vec<String> = Vec::new();
        for (i, t) in input.tags.iter().enumerate() {
            let t = t.trim();
            if t.is_empty() || t.chars().count() > 60 {
                problems.push(Detail::new(format!("tags[{i}]"), "must be 1 to 60 characters"));
            } else if !tags.iter().any(|x| fold(x) == fold(t)) {
                tags.push(t.to_string());
            }
        }
        if tags.len() > 50 {
            problems.push(Detail::new("tags", "at most 50 tags"));
        }
        input.tags = tags;
        if let (Some(s), Some(e)) = (input.temporal_start, input.temporal_end)
            && s > e
        {
            problems.push(Detail::new("temporal_end", "is before temporal_start"));
        }
        input.contact_email = input.contact_email.take().map(|e| e.trim().to_string()).filter(|e| !e.is_empty());
        if let Some(e) = input.contact_email.as_deref()
            && !kho_core::text::is_email(e)
        {
            problems.push(Detail::new("contact_email", "is not an e-mail address (name@agency.gov.vn)"));
        }
        // A licence is an identifier (SPDX style: letters, digits, `.`, `+`, `_`, `-`), stored in
        // its canonical spelling when it is one the portal knows. It becomes part of an IRI in
        // the catalog, and harvesters map known ones to licence documents.
        input.license = input.license.take().map(|l| l.trim().to_string()).filter(|l| !l.is_empty());
        if let Some(l) = input.license.as_deref() {
            match kho_core::license::license(l) {
                Some(known) => input.license = Some(known.id.to_string()),
                None if kho_core::license::is_license_id(l) => {}
                None => {
                    let ids: Vec<&str> = kho_core::license::LICENSES.iter().map(|l| l.id).collect();
                    problems.push(Detail::new(
                        "license",
                        format!(
                            "is not a licence identifier (letters, digits, '.', '+', '_', '-'; e.g. {})",
                            ids.join(", ")
                        ),
                    ));
                }
            }
        }
        for (name, v) in [("license", &input.license), ("sector", &input.sector), ("contact_name", &input.contact_name)]
        {
            if v.as_ref().is_some_and(|v| v.chars().count() > 200) {
                problems.push(Detail::new(name, "must be at most 200 characters"));
            }
        }
        let texts = [
            ("title", Some(&input.title)),
            ("title_en", input.title_en.as_ref()),
            ("description", Some(&input.description)),
            ("description_en", input.description_en.as_ref()),
            ("contact_name", input.contact_name.as_ref()),
            ("sector", input.sector.as_ref()),
        ];
        for (name, text) in texts {
            if text.is_some_and(|t| kho_core::text::has_control_characters(t)) {
                problems.push(Detail::new(name, "holds a control character (such as NUL); remove it"));
            }
        }
        for (i, t) in input.tags.iter().enumerate() {
            if kho_core::text::has_control_characters(t) {
                problems.push(Detail::new(format!("tags[{i}]"), "holds a control character (such as NUL); remove it"));
            }
        }
        if !problems.is_empty() {
            return Err(Error::validation(problems));
        }
        if let Some(owner) = input.owner_agency_id {
            self.require_agency(owner, "owner_agency_id").await?;
        }
        for (i, a) in input.allowed_agency_ids.iter().enumerate() {
            self.require_agency(*a, &format!("allowed_agency_ids[{i}]")).await?;
        }
        if let Some(code) = input.spatial.as_deref().filter(|c| !c.is_empty()) {
            self.require_admin_unit(code, "spatial").await?;
        }
        Ok(())
    }

    /// Check a resource's Table Schema, then its dictionary references.
    async fn check_resource(&self, r: &ResourceInput) -> Result<()> {
        if let Some(p) = slug_problem(&r.name) {
            return Err(Error::validation(vec![Detail::new("name", p)]));
        }
        let problems = table_schema::check(&r.schema);
        if !problems.is_empty() {
            let details: Vec<Detail> = problems
                .into_iter()
                .map(|d| {
                    Detail::new(
                        if d.path.is_empty() { "schema".into() } else { format!("schema.{}", d.path) },
                        d.message,
                    )
                })
                .collect();
            let first = &details[0];
            return Err(Error::new(ErrorCode::InvalidTableSchema, format!("{}: {}", first.path, first.message))
                .with_details(details));
        }
        let lookup = self.term_lookup().await?;
        let problems = table_schema::check_terms(&r.schema, &lookup);
        if !problems.is_empty() {
            let details: Vec<Detail> =
                problems.into_iter().map(|d| Detail::new(format!("schema.{}", d.path), d.message)).collect();
            let unknown = details.iter().any(|d| d.path.ends_with(table_schema::TERM_PROPERTY));
            let code = if unknown { ErrorCode::UnknownDictionaryTerm } else { ErrorCode::InvalidTableSchema };
            let first = &details[0];
            return Err(Error::new(code, format!("{}: {}", first.path, first.message)).with_details(details));
        }
        Ok(())
    }

    /// An open dataset may not hold personal data (Law 91/2025/QH15): refuse `level` open with
    /// `resources` whose schemas have personal fields, naming each field and what to do.
    async fn refuse_personal_in_open(&self, level: AccessLevel, resources: &[&ResourceInput]) -> Result<()> {
        if level != AccessLevel::Open {
            return Ok(());
        }
        let lookup = self.term_lookup().await?;
        let mut details = Vec::new();
        for r in resources {
            let table = r.title.clone().unwrap_or_else(|| r.name.clone());
            for f in table_schema::personal_fields(&r.schema, &lookup) {
                let field_title = r.schema["fields"]
                    .as_array()
                    .and_then(|fs| fs.iter().find(|x| x["name"] == f.name.as_str()))
                    .and_then(|x| x["title"].as_str())
                    .unwrap_or(&f.name)
                    .to_string();
                let (why_en, why_vi) = match &f.term_title {
                    Some(t) => (format!("dictionary term '{t}'"), format!("thuật ngữ '{t}'")),
                    None => ("marked personal".to_string(), "được đánh dấu là dữ liệu cá nhân".to_string()),
                };
                details.push(
                    Detail::new(
                        "access_level",
                        format!(
                            "table '{table}', field '{}' is personal data ({why_en}): remove it from the table or mask it, or make the dataset shared or restricted",
                            f.name
                        ),
                    )
                    .with_vi(format!(
                        "Bảng '{table}', trường '{field_title}' là dữ liệu cá nhân ({why_vi}). Hãy bỏ hoặc che trường này, hoặc đặt mức truy cập là dùng chung hay hạn chế."
                    )),
                );
            }
        }
        if details.is_empty() {
            return Ok(());
        }
        let message = format!("an open dataset may not hold personal data: {}", details[0].message);
        Err(Error::new(ErrorCode::PersonalDataInOpenDataset, message).with_details(details))
    }

    pub async fn create_dataset(
        &self,
        ctx: &Ctx,
        mut input: DatasetInput,
        resources: Vec<ResourceInput>,
    ) -> Result<Dataset> {
        let m = ctx.principal.require_member()?;
        let owner = input.owner_agency_id.unwrap_or(m.agency_id);
        input.owner_agency_id = Some(owner);
        policy::check_create(&ctx.principal, owner)?;
        self.check_dataset_input(&mut input).await?;
        let mut names = std::collections::HashSet::new();
        for (i, r) in resources.iter().enumerate() {
            self.check_resource(r).await.map_err(|e| prefix_details(e, &format!("resources[{i}].")))?;
            if !names.insert(r.name.clone()) {
                return Err(Error::validation(vec![Detail::new(
                    format!("resources[{i}].name"),
                    "is used by another resource of this dataset",
                )]));
            }
        }
        self.refuse_personal_in_open(input.access_level, &resources.iter().collect::<Vec<_>>()).await?;
        let now = OffsetDateTime::now_utc();
        let id = uuid::Uuid::now_v7().to_string();
        let dataset = Dataset {
            resources: resources
                .into_iter()
                .map(|r| Resource {
                    id: uuid::Uuid::now_v7().to_string(),
                    dataset_id: id.clone(),
                    input: r,
                    created_at: now,
                    modified_at: now,
                })
                .collect(),
            id,
            input,
            revision: 1,
            created_at: now,
            modified_at: now,
        };
        let event =
            ctx.event("dataset.create", "dataset", &dataset.id).detail(serde_json::json!({"slug": dataset.input.slug}));
        self.store.save_dataset(&dataset, SaveMode::Create, "create", event).await?;
        self.reindex(&dataset.id).await;
        Ok(dataset)
    }

    /// Read one dataset. Reads of non-open data are recorded in the audit log.
    /// Every dataset a visibility shows (of one owner, if given), read from the store page by
    /// page; for whole-catalog work (the index, the open data figures), not for callers' lists.
    pub(crate) async fn all_datasets(&self, visibility: Visibility, owner: Option<i64>) -> Result<Vec<Dataset>> {
        let mut out = Vec::new();
        loop {
            let filter =
                DatasetFilter { visibility, owner_agency_id: owner, q: None, limit: 500, offset: out.len() as i64 };
            let (page, _) = self.store.list_datasets(&filter).await?;
            if page.is_empty() {
                return Ok(out);
            }
            out.extend(page);
        }
    }

    pub async fn get_dataset(&self, ctx: &Ctx, id_or_slug: &str) -> Result<Dataset> {
        let d = self.store.dataset(id_or_slug).await?.ok_or_else(|| Error::not_found("dataset"))?;
        if let Err(e) = policy::check_dataset(&ctx.principal, Action::Read, access(&d)) {
            if ctx.principal.member().is_some() {
                self.store.append_audit(ctx.event("dataset.read", "dataset", &d.id).outcome("denied")).await?;
            }
            return Err(e);
        }
        if policy::read_is_audited(d.input.access_level) {
            self.store.append_audit(ctx.event("dataset.read", "dataset", &d.id)).await?;
        }
        Ok(d)
    }

    /// Fetch for writing: not-found and forbidden exactly as the policy says; denials are audited.
    async fn dataset_for(&self, ctx: &Ctx, id_or_slug: &str, action: Action) -> Result<Dataset> {
        let d = self.store.dataset(id_or_slug).await?.ok_or_else(|| Error::not_found("dataset"))?;
        if let Err(e) = policy::check_dataset(&ctx.principal, action, access(&d)) {
            let name = if action == Action::Delete { "dataset.delete" } else { "dataset.update" };
            self.store.append_audit(ctx.event(name, "dataset", &d.id).outcome("denied")).await?;
            return Err(e);
        }
        Ok(d)
    }

    fn check_revision(d: &Dataset, expected: Option<i64>) -> Result<()> {
        match expected {
            Some(r) if r != d.revision => Err(Error::new(
                ErrorCode::Conflict,
                format!("dataset is at revision {}, not {r}; reload it and try again", d.revision),
            )),
            _ => Ok(()),
        }
    }

    pub async fn update_dataset(
        &self,
        ctx: &Ctx,
        id_or_slug: &str,
        mut input: DatasetInput,
        expected_revision: Option<i64>,
    ) -> Result<Dataset> {
        let mut d = self.dataset_for(ctx, id_or_slug, Action::Update).await?;
        Self::check_revision(&d, expected_revision)?;
        if !input.resources.is_empty() {
            return Err(Error::validation(vec![Detail::new(
                "resources",
                "resources cannot be changed here; create or replace each one with PUT /api/v1/datasets/{id}/resources/{name}",
            )]));
        }
        let new_owner = input.owner_agency_id.unwrap_or(d.owner_agency_id());
        if new_owner != d.owner_agency_id() {
            // Handing a dataset to another agency is a decision for the platform's operators.
            ctx.principal
                .require_admin()
                .map_err(|_| Error::forbidden("only an administrator may change a dataset's owner"))?;
        }
        input.owner_agency_id = Some(new_owner);
        self.check_dataset_input(&mut input).await?;
        self.refuse_personal_in_open(input.access_level, &d.resources.iter().map(|r| &r.input).collect::<Vec<_>>())
            .await?;
        let previous = d.revision;
        d.input = input;
        d.revision += 1;
        d.modified_at = OffsetDateTime::now_utc();
        let event = ctx.event("dataset.update", "dataset", &d.id).detail(serde_json::json!({"revision": d.revision}));
        self.store.save_dataset(&d, SaveMode::Update { expected_revision: previous }, "update", event).await?;
        self.reindex(&d.id).await;
        Ok(d)
    }

    pub async fn delete_dataset(&self, ctx: &Ctx, id_or_slug: &str, expected_revision: Option<i64>) -> Result<()> {
        let mut d = self.dataset_for(ctx, id_or_slug, Action::Delete).await?;
        Self::check_revision(&d, expected_revision)?;
        let previous = d.revision;
        d.revision += 1;
        d.modified_at = OffsetDateTime::now_utc();
        let event = ctx.event("dataset.delete", "dataset", &d.id);
        self.store.save_dataset(&d, SaveMode::Delete { expected_revision: previous }, "delete", event).await?;
        self.reindex(&d.id).await;
        Ok(())
    }

    /// Create or replace the resource named `input.name`.
    pub async fn put_resource(
        &self,
        ctx: &Ctx,
        id_or_slug: &str,
        input: ResourceInput,
        expected_revision: Option<i64>,
    ) -> Result<Dataset> {
        let mut d = self.dataset_for(ctx, id_or_slug, Action::Update).await?;
        Self::check_revision(&d, expected_revision)?;
        self.check_resource(&input).await?;
        self.refuse_personal_in_open(d.input.access_level, &[&input]).await?;
        let now = OffsetDateTime::now_utc();
        let change = match d.resources.iter_mut().find(|r| r.input.name == input.name) {
            Some(r) => {
                r.input = input;
                r.modified_at = now;
                "resource_update"
            }
            None => {
                d.resources.push(Resource {
                    id: uuid::Uuid::now_v7().to_string(),
                    dataset_id: d.id.clone(),
                    input,
                    created_at: now,
                    modified_at: now,
                });
                "resource_create"
            }
        };
        let previous = d.revision;
        d.revision += 1;
        d.modified_at = now;
        let event = ctx
            .event(&format!("dataset.{change}"), "dataset", &d.id)
            .detail(serde_json::json!({"revision": d.revision}));
        self.store.save_dataset(&d, SaveMode::Update { expected_revision: previous }, change, event).await?;
        self.reindex(&d.id).await;
        Ok(d)
    }

    pub async fn delete_resource(&self, ctx: &Ctx, id_or_slug: &str, name: &str) -> Result<Dataset> {
        let mut d = self.dataset_for(ctx, id_or_slug, Action::Update).await?;
        let before = d.resources.len();
        d.resources.retain(|r| r.input.name != name && r.id != name);
        if d.resources.len() == before {
            return Err(Error::not_found("resource"));
        }
        let previous = d.revision;
        d.revision += 1;
        d.modified_at = OffsetDateTime::now_utc();
        let event =
            ctx.event("dataset.resource_delete", "dataset", &d.id).detail(serde_json::json!({"resource": name}));
        self.store.save_dataset(&d, SaveMode::Update { expected_revision: previous }, "resource_delete", event).await?;
        self.reindex(&d.id).await;
        Ok(d)
    }

    pub async fn list_datasets(&self, ctx: &Ctx, q: &DatasetQuery) -> Result<(Vec<Dataset>, i64)> {
        let filter = DatasetFilter {
            visibility: Visibility::of(&ctx.principal),
            owner_agency_id: q.owner_agency_id,
            q: q.q.clone().filter(|s| !s.trim().is_empty()),
            limit: q.limit.clamp(1, MAX_PAGE),
            offset: q.offset.max(0),
        };
        let (items, total) = self.store.list_datasets(&filter).await?;
        // A listing shows non-open datasets' descriptions too: record which, in one entry.
        let read: Vec<&str> =
            items.iter().filter(|d| policy::read_is_audited(d.input.access_level)).map(|d| d.id.as_str()).collect();
        if !read.is_empty() {
            let event = ctx.event("dataset.list", "dataset", "").detail(serde_json::json!({ "ids": read }));
            self.store.append_audit(event).await?;
        }
        Ok((items, total))
    }

    pub async fn dataset_revisions(&self, ctx: &Ctx, id_or_slug: &str) -> Result<Vec<DatasetRevision>> {
        let d = self.get_dataset(ctx, id_or_slug).await?;
        self.store.dataset_revisions(&d.id).await
    }

    /// What a dataset's page shows beside its description, for a caller allowed to read it: every
    /// version of each table (read once, for the scores and the version lists), the quality
    /// scores, the revisions, and how often it was viewed and downloaded. The view is counted.
    pub async fn dataset_overview(&self, ctx: &Ctx, id_or_slug: &str) -> Result<DatasetOverview> {
        let dataset = self.get_dataset(ctx, id_or_slug).await?;
        let mut versions = std::collections::HashMap::new();
        for r in &dataset.resources {
            versions.insert(r.id.clone(), self.store.versions(&r.id).await?);
        }
        let quality = crate::quality::quality_from(&dataset, OffsetDateTime::now_utc(), &versions);
        let revisions = self.store.dataset_revisions(&dataset.id).await?;
        // Counted first, so that the figure shown includes this view.
        self.count_view(&dataset.id);
        let (views, downloads) = self.search.get(&dataset.id).map_or((0, 0), |u| (u.views, u.downloads));
        Ok(DatasetOverview { dataset, versions, quality, revisions, views, downloads })
    }

    /// A resource's schema with dictionary terms resolved into its fields.
    pub async fn effective_schema(&self, schema: &serde_json::Value) -> Result<serde_json::Value> {
        let terms = self.term_lookup().await?;
        Ok(table_schema::effective(schema, &terms))
    }

    /// May the caller change this dataset? (For showing or hiding edit buttons.)
    pub fn can_edit(&self, ctx: &Ctx, d: &Dataset) -> bool {
        policy::check_dataset(&ctx.principal, Action::Update, access(d)).is_ok()
    }
}

/// A dataset with what its page shows about it (see `Kho::dataset_overview`).
pub struct DatasetOverview {
    pub dataset: Dataset,
    /// Each table's versions, newest first, by resource id.
    pub versions: std::collections::HashMap<String, Vec<kho_core::model::ResourceVersion>>,
    pub quality: crate::quality::DatasetQuality,
    pub revisions: Vec<DatasetRevision>,
    pub views: u64,
    pub downloads: u64,
}

fn prefix_details(mut e: Error, prefix: &str) -> Error {
    for d in &mut e.details {
        d.path = format!("{prefix}{}", d.path);
    }
    if let Some(first) = e.details.first() {
        e.message = format!("{}: {}", first.path, first.message);
    }
    e
}
