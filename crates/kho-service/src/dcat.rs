//! The catalog as DCAT-AP 3 for harvesters, as the caller may see it: anonymous harvesters (the
//! national portal) get the open datasets only, exactly as search shows them.

use std::collections::HashMap;

use kho_core::model::{AdminEra, AgencyKind};
use kho_core::{Error, ErrorCode, Result};
pub use kho_dcat::Format;
use kho_dcat::{CatalogInfo, DatasetEntry, Paging};
use kho_search::{DateField, Filter, SearchQuery, SortKey};
use time::OffsetDateTime;

use crate::{Ctx, Kho};

/// Datasets per catalog page, as ckanext-dcat pages them.
pub const DCAT_PAGE_SIZE: usize = 100;

/// What a harvester asks of the catalog.
#[derive(Debug, Clone, Default)]
pub struct CatalogRequest {
    /// Search words, as in the portal's search box.
    pub text: String,
    /// Only datasets changed since then (a harvester's incremental run).
    pub modified_since: Option<OffsetDateTime>,
    /// From 1.
    pub page: usize,
    /// The request's URL without `page`, for the paging links.
    pub url: String,
}

impl Kho {
    /// One page of the catalog in the format asked for.
    pub async fn dcat_catalog(&self, ctx: &Ctx, site: &str, req: &CatalogRequest, format: Format) -> Result<Vec<u8>> {
        let page = req.page.max(1);
        let mut filters = Vec::new();
        if req.modified_since.is_some() {
            filters.push(Filter::Between(DateField::Modified, req.modified_since, None));
        }
        let found = self.search_datasets(
            ctx,
            SearchQuery {
                text: req.text.clone(),
                filters,
                sort: vec![(SortKey::Modified, true)],
                offset: (page - 1).saturating_mul(DCAT_PAGE_SIZE),
                limit: DCAT_PAGE_SIZE,
                ..Default::default()
            },
        )?;
        let datasets = self.found_datasets(&found).await?;
        let agencies = self.agency_map().await?;
        let mut places = HashMap::new();
        for f in &datasets {
            if let Some(code) = &f.0.input.spatial
                && !places.contains_key(code)
            {
                places.insert(code.clone(), self.place_name(code).await);
            }
        }
        let entries: Vec<DatasetEntry<'_>> = datasets
            .iter()
            .map(|f| (&f.0, &f.1))
            .map(|(d, latest)| DatasetEntry {
                dataset: d,
                publisher: d.input.owner_agency_id.and_then(|id| agencies.get(&id)),
                latest,
                spatial_name: d.input.spatial.as_ref().and_then(|c| places.get(c).cloned().flatten()),
            })
            .collect();
        let province = self.place_name(&self.config.province_code).await.unwrap_or_default();
        let committee = agencies.values().find(|a| a.kind == AgencyKind::ProvinceCommittee);
        let info = CatalogInfo {
            title_vi: format!("Cổng dữ liệu mở {province}").trim().to_string(),
            title_en: format!("Open data portal of {province}").trim().to_string(),
            description_vi: format!("Dữ liệu mở do các cơ quan nhà nước {province} công bố."),
            description_en: format!("Open data published by the government agencies of {province}."),
            publisher_name: committee.map_or_else(|| format!("Ủy ban nhân dân {province}"), |a| a.name.clone()),
            publisher_name_en: committee.and_then(|a| a.name_en.clone()),
            spatial: Some((self.config.province_code.clone(), province.clone())),
            modified: found.hits.iter().map(|h| h.modified).max(),
        };
        let paging = Paging { page, per_page: DCAT_PAGE_SIZE, total: found.total, url: req.url.clone() };
        kho_dcat::catalog_document(site, &info, &entries, &paging, format).map_err(io_error)
    }

    /// One dataset (by id or slug) in the format asked for; one the caller may not read is
    /// "not found", exactly as a missing one.
    pub async fn dcat_dataset(&self, ctx: &Ctx, site: &str, id: &str, format: Format) -> Result<Vec<u8>> {
        let d = match self.get_dataset(ctx, id).await {
            Err(e) if e.code == ErrorCode::Forbidden => return Err(Error::not_found("dataset")),
            other => other?,
        };
        let latest = self.latest_versions(&d).await?;
        let agencies = self.agency_map().await?;
        let spatial_name = match &d.input.spatial {
            Some(code) => self.place_name(code).await,
            None => None,
        };
        let entry = DatasetEntry {
            dataset: &d,
            publisher: d.input.owner_agency_id.and_then(|id| agencies.get(&id)),
            latest: &latest,
            spatial_name,
        };
        kho_dcat::dataset_document(site, &entry, format).map_err(io_error)
    }

    /// The full name of a current administrative unit, if it is one.
    pub(crate) async fn place_name(&self, code: &str) -> Option<String> {
        self.store.admin_unit(AdminEra::Current, code).await.ok().flatten().map(|u| u.full_name)
    }
}

fn io_error(e: std::io::Error) -> Error {
    Error::internal(format!("writing RDF: {e}"))
}
