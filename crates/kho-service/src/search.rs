//! Keeping the search index in step with the catalog, and searching it as the caller.
//!
//! The index is rebuilt from the metadata store when the server starts, and each use case that
//! changes a dataset (its description, resources, a published version, its owner's name) puts the
//! new state in as soon as the change is committed. A failure to index never undoes the change:
//! it is logged, and the next change or restart indexes the dataset again.

use std::collections::HashMap;

use kho_core::model::{Agency, Dataset, Resource, ResourceVersion};
use kho_core::{Error, Result};
use kho_meta::{AuditFilter, Visibility};
pub use kho_search::{DateField, Facet, Filter, SearchDoc, SearchQuery, SearchResult, SortKey};

use crate::{Ctx, Kho};

/// The latest version of each table, by resource id.
pub type Latest = HashMap<String, ResourceVersion>;

/// A dataset as search results show it: its description and the latest version of each table.
/// Shared, and replaced (never changed in place) when the dataset changes, so a pointer to one
/// stands for that state of the dataset.
pub type FoundDataset = std::sync::Arc<(Dataset, Latest)>;

/// Each indexed dataset with its latest versions, by dataset id.
pub(crate) type Found = HashMap<String, FoundDataset>;

/// The formats every published table can be downloaded in.
pub const DOWNLOAD_FORMATS: [&str; 5] = ["CSV", "JSON", "XLSX", "Parquet", "Data Package"];

impl Kho {
    /// Index every dataset of the catalog (at start-up).
    pub async fn rebuild_search(&self) -> Result<usize> {
        // Changes logged from here on are taken in again by `follow_changes`: one made while
        // the catalog is read is never missed (taking one in twice does no harm).
        let newest = self.store.list_audit(&AuditFilter { limit: 1, ..Default::default() }).await?;
        let seen = newest.first().map_or(0, |r| r.seq);
        self.audit_seen.fetch_max(seen, std::sync::atomic::Ordering::AcqRel);
        let agencies = self.agency_map().await?;
        let usage = self.usage_totals().await?;
        let mut docs = Vec::new();
        for d in self.all_datasets(Visibility::All, None).await? {
            let (mut doc, latest) = self.search_doc(&d, &agencies).await?;
            if let Some((views, downloads)) = usage.get(&d.id) {
                doc.views = (*views).max(0) as u64;
                doc.downloads = (*downloads).max(0) as u64;
            }
            docs.push(doc);
            self.remember(d, latest);
        }
        let n = docs.len();
        self.search.upsert(docs)?;
        self.search_live.store(true, std::sync::atomic::Ordering::Release);
        Ok(n)
    }

    /// Put the dataset's current state into the index (or take it out if it is gone).
    pub(crate) async fn reindex(&self, id_or_slug: &str) {
        self.reindex_all(&[id_or_slug.to_string()]).await;
    }

    /// Put these datasets' current state into the index in one commit (taking out those that
    /// are gone).
    async fn reindex_all(&self, ids: &[String]) {
        if !self.search_live.load(std::sync::atomic::Ordering::Acquire) || ids.is_empty() {
            return;
        }
        let done = async {
            let agencies = self.agency_map().await?;
            let mut docs = Vec::new();
            for id_or_slug in ids {
                match self.store.dataset(id_or_slug).await? {
                    Some(d) => {
                        let (mut doc, latest) = self.search_doc(&d, &agencies).await?;
                        // Usage is counted as it happens; a change to the dataset keeps the counts.
                        if let Some(old) = self.search.get(&d.id) {
                            doc.views = old.views;
                            doc.downloads = old.downloads;
                        }
                        docs.push((doc, d, latest));
                    }
                    None => {
                        if let Ok(mut found) = self.found.write() {
                            found.retain(|id, f| id != id_or_slug && f.0.input.slug != *id_or_slug);
                        }
                        self.search.remove(id_or_slug)?;
                    }
                }
            }
            let (index, states): (Vec<_>, Vec<_>) = docs.into_iter().map(|(doc, d, l)| (doc, (d, l))).unzip();
            self.search.upsert(index)?;
            for (d, latest) in states {
                self.remember(d, latest);
            }
            Ok::<_, Error>(())
        }
        .await;
        if let Err(e) = done {
            tracing::warn!(datasets = ids.len(), error = %e, "could not update the search index");
        }
    }

    /// Take in the changes other processes made to the catalog (`kho import` or `kho dataset
    /// create` from the command line beside a running server, another server on the same
    /// database): every change is logged in the audit log in the same transaction, so reading
    /// the log from the last entry seen finds them all, in order. Returns the datasets indexed
    /// again. Changes made by this process are found too and indexed once more, which is
    /// harmless.
    pub async fn follow_changes(&self) -> Result<usize> {
        use std::sync::atomic::Ordering;
        if !self.search_live.load(Ordering::Acquire) {
            return Ok(0);
        }
        let mut datasets = std::collections::BTreeSet::new();
        let mut agencies_changed = false;
        loop {
            let from = self.audit_seen.load(Ordering::Acquire) + 1;
            let chunk = self.store.audit_chunk(from, 1000).await?;
            let Some(last) = chunk.last().map(|r| r.seq) else { break };
            for r in &chunk {
                if r.outcome != "ok" {
                    continue;
                }
                match r.action.as_str() {
                    "dataset.read" | "dataset.list" => {}
                    a if r.object_type == "dataset" && (a.starts_with("dataset.") || a == "version.publish") => {
                        datasets.insert(r.object_id.clone());
                    }
                    "agency.create" | "agency.update" => agencies_changed = true,
                    "term.create" => self.terms.forget(),
                    "feedback.create" | "feedback.answer" => self.dataset_feedback.forget_all(),
                    _ => {}
                }
            }
            self.audit_seen.fetch_max(last, Ordering::AcqRel);
        }
        if agencies_changed {
            // Datasets are found by their owner's name too: index them all again.
            self.agencies.forget();
            return self.rebuild_search().await;
        }
        let datasets: Vec<String> = datasets.into_iter().collect();
        self.reindex_all(&datasets).await;
        Ok(datasets.len())
    }

    /// Search the catalog as the caller: anonymous callers find open datasets only.
    pub fn search_datasets(&self, ctx: &Ctx, mut q: SearchQuery) -> Result<SearchResult> {
        q.visibility = Visibility::of(&ctx.principal);
        self.search.search(&q)
    }

    /// Downloads of all the datasets the caller may see.
    pub fn visible_downloads(&self, ctx: &Ctx) -> u64 {
        self.search.downloads(Visibility::of(&ctx.principal))
    }

    /// A dataset's slug and title, to name it beside what is said about it (feedback the caller
    /// was already allowed to see). The index keeps every dataset's; the store is read only for
    /// one it lacks.
    pub async fn dataset_label(&self, id: &str) -> Option<(String, String)> {
        match self.search.get(id) {
            Some(d) => Some((d.name.clone(), d.title.clone())),
            None => self.store.dataset(id).await.ok().flatten().map(|d| (d.input.slug, d.input.title)),
        }
    }

    /// A table by its id (CKAN's `resource_id`), with its dataset, if the caller may read it.
    pub async fn resource_by_id(&self, ctx: &Ctx, resource_id: &str) -> Result<(Dataset, Resource)> {
        let dataset = self.search.dataset_of_resource(resource_id).ok_or_else(|| Error::not_found("resource"))?;
        let d = self.get_dataset(ctx, &dataset).await?;
        let r =
            d.resources.iter().find(|r| r.id == resource_id).cloned().ok_or_else(|| Error::not_found("resource"))?;
        Ok((d, r))
    }

    /// Datasets found by a search, in its order, each with the latest version of each of its
    /// tables (by resource id). The search has already applied the caller's visibility, so these
    /// reads of the catalog are not audited one by one.
    ///
    /// They come from the copy kept beside the index (refreshed with it at every change), so a
    /// page of results costs no database reads; one not there is read from the store.
    pub async fn found_datasets(&self, found: &SearchResult) -> Result<Vec<FoundDataset>> {
        let mut out = Vec::with_capacity(found.hits.len());
        for hit in &found.hits {
            let kept = self.found.read().ok().and_then(|f| f.get(&hit.id).cloned());
            match kept {
                Some(f) => out.push(f),
                None => {
                    if let Some(d) = self.store.dataset(&hit.id).await? {
                        let latest = self.latest_versions(&d).await?;
                        out.push(std::sync::Arc::new((d, latest)));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Keep a dataset's current state beside the index, for search results.
    fn remember(&self, d: Dataset, latest: Latest) {
        if let Ok(mut found) = self.found.write() {
            found.insert(d.id.clone(), std::sync::Arc::new((d, latest)));
        }
    }

    /// The latest version of each table of a dataset the caller has already been allowed to read.
    pub async fn latest_versions(&self, d: &Dataset) -> Result<Latest> {
        let mut latest = Latest::new();
        for r in &d.resources {
            if let Some(v) = self.store.versions(&r.id).await?.into_iter().max_by_key(|v| v.version) {
                latest.insert(r.id.clone(), v);
            }
        }
        Ok(latest)
    }

    pub(crate) async fn agency_map(&self) -> Result<HashMap<i64, Agency>> {
        Ok(self.list_agencies().await?.into_iter().map(|a| (a.id, a)).collect())
    }

    async fn search_doc(&self, d: &Dataset, agencies: &HashMap<i64, Agency>) -> Result<(SearchDoc, Latest)> {
        let i = &d.input;
        let agency = i.owner_agency_id.and_then(|id| agencies.get(&id));
        let mut modified = d.modified_at;
        let mut published = None;
        let mut field_names = Vec::new();
        let mut latest = Latest::new();
        for r in &d.resources {
            if let Some(v) = self.store.versions(&r.id).await?.into_iter().max_by_key(|v| v.version) {
                published = published.max(Some(v.published_at));
                modified = modified.max(v.published_at);
                latest.insert(r.id.clone(), v);
            }
            if let Some(fields) = r.input.schema.get("fields").and_then(|f| f.as_array()) {
                for f in fields {
                    for key in ["name", "title", "dictionaryTerm"] {
                        if let Some(s) = f.get(key).and_then(|v| v.as_str()) {
                            field_names.push(s.to_string());
                        }
                    }
                }
            }
        }
        let mut reader_agencies = i.allowed_agency_ids.clone();
        reader_agencies.extend(i.owner_agency_id);
        let doc = SearchDoc {
            id: d.id.clone(),
            name: i.slug.clone(),
            title: i.title.clone(),
            title_en: i.title_en.clone(),
            description: i.description.clone(),
            tags: i.tags.clone(),
            field_names,
            agency_code: agency.map(|a| a.code.clone()).unwrap_or_default(),
            agency_name: agency.map(|a| a.name.clone()).unwrap_or_default(),
            sector: i.sector.clone(),
            license: i.license.clone(),
            frequency: i.frequency.as_str().to_string(),
            formats: if published.is_some() {
                DOWNLOAD_FORMATS.iter().map(|f| f.to_string()).collect()
            } else {
                vec![]
            },
            spatial: i.spatial.clone(),
            access_level: i.access_level.as_str().to_string(),
            reader_agencies,
            created: d.created_at,
            modified,
            downloads: 0,
            views: 0,
            published,
            resource_ids: d.resources.iter().map(|r| r.id.clone()).collect(),
        };
        Ok((doc, latest))
    }
}
