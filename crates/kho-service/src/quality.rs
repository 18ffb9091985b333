//! Quality scores (đúng, đủ, sạch, sống) of datasets, rolled up per agency.

use kho_core::Result;
use kho_core::model::{AccessLevel, Dataset};
use kho_core::quality::{self, QualityScores};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::catalog::DatasetQuery;
use crate::{Ctx, Kho};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResourceQuality {
    pub resource: String,
    /// The latest version the scores describe, if any was published.
    pub version: Option<i64>,
    pub scores: QualityScores,
    /// The evidence behind "sạch": the rows holding outliers, and the columns compared within
    /// category groups.
    pub outliers: Vec<quality::OutlierRow>,
    pub outlier_groupings: Vec<quality::OutlierGrouping>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DatasetQuality {
    pub dataset_id: String,
    pub slug: String,
    pub title: String,
    pub owner_agency_id: i64,
    pub resources: Vec<ResourceQuality>,
    /// Average of the tables' overall scores (0 for a dataset with no table).
    pub overall: f64,
    /// Never late while a draft.
    pub overdue: bool,
    /// Nothing published yet: a draft is neither scored against the others nor late, and is
    /// not listed for anyone but its owner until its first version.
    pub draft: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_published: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AgencyQuality {
    pub agency_id: i64,
    pub agency: String,
    pub datasets: usize,
    pub average: f64,
    pub overdue: usize,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QualityOverview {
    pub agencies: Vec<AgencyQuality>,
    /// Every visible dataset, worst first.
    pub datasets: Vec<DatasetQuality>,
}

impl Kho {
    /// Scores of a dataset the caller has already read (no second read, no second audit entry).
    pub async fn quality_of(&self, d: &Dataset, now: OffsetDateTime) -> Result<DatasetQuality> {
        let mut versions = std::collections::HashMap::new();
        for r in &d.resources {
            versions.insert(r.id.clone(), self.store.versions(&r.id).await?);
        }
        Ok(quality_from(d, now, &versions))
    }
}

/// A dataset's scores from its tables' versions (newest first, by table id), for callers that
/// have read them already.
pub fn quality_from(
    d: &Dataset,
    now: OffsetDateTime,
    versions: &std::collections::HashMap<String, Vec<kho_core::model::ResourceVersion>>,
) -> DatasetQuality {
    let open = d.input.access_level == AccessLevel::Open;
    let mut resources = Vec::new();
    let mut last_published = None;
    for r in &d.resources {
        let latest = versions.get(&r.id).and_then(|v| v.first()).cloned();
        let stats = latest.as_ref().map(|v| v.quality.clone()).unwrap_or_default();
        let published = latest.as_ref().map(|v| v.published_at);
        last_published = last_published.max(published);
        let mut scores = quality::scores(&stats, quality::freshness(published, d.input.frequency, open, now));
        if latest.is_none() {
            // Nothing published: a draft table, neither scored nor late.
            scores.overdue = false;
            for s in [&mut scores.dung, &mut scores.du, &mut scores.sach] {
                s.score = 0.0;
                s.evidence_vi = "chưa có dữ liệu".into();
                s.evidence_en = "no data yet".into();
            }
            scores.overall = 0.0;
        }
        resources.push(ResourceQuality {
            resource: r.input.name.clone(),
            version: latest.map(|v| v.version),
            scores,
            outliers: stats.outlier_rows,
            outlier_groupings: stats.outlier_groupings,
        });
    }
    let overall = if resources.is_empty() {
        0.0
    } else {
        (resources.iter().map(|r| r.scores.overall).sum::<f64>() / resources.len() as f64 * 10.0).round() / 10.0
    };
    let draft = last_published.is_none();
    // Tables with nothing published are never late, so neither is a draft.
    let overdue = resources.iter().any(|r| r.scores.overdue);
    DatasetQuality {
        draft,
        dataset_id: d.id.clone(),
        slug: d.input.slug.clone(),
        title: d.input.title.clone(),
        owner_agency_id: d.owner_agency_id(),
        resources,
        overall,
        overdue,
        last_published,
    }
}

impl Kho {
    /// Scores of one dataset the caller may read.
    pub async fn dataset_quality(&self, ctx: &Ctx, dataset: &str) -> Result<DatasetQuality> {
        let d = self.get_dataset(ctx, dataset).await?;
        self.quality_of(&d, OffsetDateTime::now_utc()).await
    }

    /// Every dataset the caller may read, worst first, and the average per owner agency.
    pub async fn quality_overview(&self, ctx: &Ctx) -> Result<QualityOverview> {
        let now = OffsetDateTime::now_utc();
        let mut datasets = Vec::new();
        let mut offset = 0;
        loop {
            let q = DatasetQuery { limit: 1000, offset, ..Default::default() };
            let (page, total) = self.list_datasets(ctx, &q).await?;
            for d in &page {
                datasets.push(self.quality_of(d, now).await?);
            }
            offset += page.len() as i64;
            if page.is_empty() || offset >= total {
                break;
            }
        }
        // Worst first; drafts last, unscored.
        datasets.sort_by(|a, b| {
            a.draft.cmp(&b.draft).then(a.overall.total_cmp(&b.overall)).then(b.overdue.cmp(&a.overdue))
        });
        let names = self.list_agencies().await?;
        let mut agencies: Vec<AgencyQuality> = Vec::new();
        for d in datasets.iter().filter(|d| !d.draft) {
            match agencies.iter_mut().find(|a| a.agency_id == d.owner_agency_id) {
                Some(a) => {
                    a.average += d.overall;
                    a.datasets += 1;
                    a.overdue += d.overdue as usize;
                }
                None => agencies.push(AgencyQuality {
                    agency_id: d.owner_agency_id,
                    agency: names
                        .iter()
                        .find(|a| a.id == d.owner_agency_id)
                        .map(|a| a.name.clone())
                        .unwrap_or_default(),
                    datasets: 1,
                    average: d.overall,
                    overdue: d.overdue as usize,
                }),
            }
        }
        for a in &mut agencies {
            a.average = (a.average / a.datasets as f64 * 10.0).round() / 10.0;
        }
        agencies.sort_by(|a, b| a.average.total_cmp(&b.average));
        Ok(QualityOverview { agencies, datasets })
    }
}
