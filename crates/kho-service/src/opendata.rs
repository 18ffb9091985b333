//! The agencies' open data duties, computed live: every agency publishes at least one open
//! dataset, and every open dataset is updated at least every six months (the provincial plans'
//! own targets). Counted over the open catalog, which anyone may see, so the figures are public.

use kho_core::Result;
use kho_core::model::{AccessLevel, Agency, AgencyKind};
use kho_meta::Visibility;
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::Kho;
use crate::quality::DatasetQuality;

/// Six months, as the plans count them for open data.
pub const OPEN_DATA_MAX_AGE_DAYS: i64 = 183;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AgencyOpenData {
    pub code: String,
    pub name: String,
    pub name_en: Option<String>,
    pub open_datasets: usize,
    /// Open datasets with data published within six months.
    pub updated_within_six_months: usize,
    /// Open datasets overdue against their own declared frequency (drafts, with no data yet,
    /// are not counted at all).
    pub overdue: usize,
    /// Average overall quality score of its open datasets (0–100); none without open datasets.
    pub average_quality: Option<f64>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_published: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OpenDataStatus {
    /// Agencies expected to publish: departments and the people's committees.
    pub agencies: usize,
    pub agencies_with_open_data: usize,
    /// Percent, 0–100 (one decimal).
    pub agencies_with_open_data_percent: f64,
    pub open_datasets: usize,
    pub open_datasets_updated_within_six_months: usize,
    pub open_datasets_updated_percent: f64,
    /// Per agency, those without open data first, then by name.
    pub by_agency: Vec<AgencyOpenData>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub computed_at: OffsetDateTime,
}

fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 { 0.0 } else { (part as f64 * 1000.0 / whole as f64).round() / 10.0 }
}

/// Whether an agency of this kind is expected to publish open data.
fn publishes(kind: AgencyKind) -> bool {
    matches!(kind, AgencyKind::Department | AgencyKind::ProvinceCommittee | AgencyKind::CommuneCommittee)
}

/// Published within six months of `now`.
fn recent(d: &DatasetQuality, now: OffsetDateTime) -> bool {
    d.last_published.is_some_and(|t| t >= now - time::Duration::days(OPEN_DATA_MAX_AGE_DAYS))
}

/// An agency's figures from the open datasets' scores (those of other agencies are skipped).
fn figures(a: &Agency, datasets: &[DatasetQuality], now: OffsetDateTime) -> AgencyOpenData {
    let mine: Vec<&DatasetQuality> = datasets.iter().filter(|d| d.owner_agency_id == a.id).collect();
    AgencyOpenData {
        code: a.code.clone(),
        name: a.name.clone(),
        name_en: a.name_en.clone(),
        open_datasets: mine.len(),
        updated_within_six_months: mine.iter().filter(|d| recent(d, now)).count(),
        overdue: mine.iter().filter(|d| d.overdue).count(),
        average_quality: (!mine.is_empty())
            .then(|| (mine.iter().map(|d| d.overall).sum::<f64>() / mine.len() as f64 * 10.0).round() / 10.0),
        last_published: mine.iter().filter_map(|d| d.last_published).max(),
    }
}

impl Kho {
    /// Quality of the open datasets, of one agency or all (open data is public, so nothing here
    /// is audited).
    async fn open_dataset_quality(&self, owner: Option<i64>, now: OffsetDateTime) -> Result<Vec<DatasetQuality>> {
        let mut out = Vec::new();
        for d in self.all_datasets(Visibility::OpenOnly, owner).await? {
            if d.input.access_level == AccessLevel::Open {
                let q = self.quality_of(&d, now).await?;
                // A draft is not open data yet: not counted, scored or late.
                if !q.draft {
                    out.push(q);
                }
            }
        }
        Ok(out)
    }

    /// One agency's open data figures (for its public page), without scoring the whole catalog.
    pub async fn agency_open_data(&self, agency: &Agency) -> Result<AgencyOpenData> {
        let now = OffsetDateTime::now_utc();
        let datasets = self.open_dataset_quality(Some(agency.id), now).await?;
        Ok(figures(agency, &datasets, now))
    }

    /// The open data duties of every agency, and the province's totals.
    pub async fn open_data_status(&self) -> Result<OpenDataStatus> {
        let now = OffsetDateTime::now_utc();
        let datasets = self.open_dataset_quality(None, now).await?;
        let agencies: Vec<Agency> = self.list_agencies().await?;
        let mut by_agency: Vec<AgencyOpenData> = agencies
            .iter()
            .filter(|a| publishes(a.kind) || datasets.iter().any(|d| d.owner_agency_id == a.id))
            .map(|a| figures(a, &datasets, now))
            .collect();
        by_agency.sort_by(|a, b| {
            (a.open_datasets > 0)
                .cmp(&(b.open_datasets > 0))
                .then_with(|| kho_core::text::fold(&a.name).cmp(&kho_core::text::fold(&b.name)))
        });
        let with_open = by_agency.iter().filter(|a| a.open_datasets > 0).count();
        let updated = datasets.iter().filter(|d| recent(d, now)).count();
        Ok(OpenDataStatus {
            agencies: by_agency.len(),
            agencies_with_open_data: with_open,
            agencies_with_open_data_percent: percent(with_open, by_agency.len()),
            open_datasets: datasets.len(),
            open_datasets_updated_within_six_months: updated,
            open_datasets_updated_percent: percent(updated, datasets.len()),
            by_agency,
            computed_at: now,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn percentages_round_to_one_decimal_and_survive_zero() {
        assert_eq!(super::percent(1, 3), 33.3);
        assert_eq!(super::percent(2, 2), 100.0);
        assert_eq!(super::percent(0, 0), 0.0);
    }
}
