//! Views and downloads of datasets, for "most used" lists and each dataset's own figures.
//!
//! Privacy first: only counts per dataset and day are kept, never who or from where. Counting
//! happens in memory and is written to the store in one transaction every few seconds (and at
//! shutdown), so that a busy portal page costs no database write per view.

use std::collections::HashMap;

use kho_core::Result;
use kho_meta::UsageCount;
use time::{Date, OffsetDateTime};

use crate::Kho;

/// Counts waiting to be written, by dataset id and day: (views, downloads).
pub type Pending = HashMap<(String, Date), (i64, i64)>;

impl Kho {
    /// A visitor opened the dataset's page.
    pub fn count_view(&self, dataset_id: &str) {
        self.count(dataset_id, 1, 0);
        self.search.count_view(dataset_id);
    }

    /// Someone downloaded one of the dataset's files.
    pub fn count_download(&self, dataset_id: &str) {
        self.count(dataset_id, 0, 1);
        self.search.count_download(dataset_id);
    }

    fn count(&self, dataset_id: &str, views: i64, downloads: i64) {
        let day = OffsetDateTime::now_utc().date();
        if let Ok(mut pending) = self.usage.lock() {
            let entry = pending.entry((dataset_id.to_string(), day)).or_default();
            entry.0 += views;
            entry.1 += downloads;
        }
    }

    /// Write the counts gathered since the last flush. On failure they are put back, to be
    /// written with the next flush.
    pub async fn flush_usage(&self) -> Result<usize> {
        let taken = match self.usage.lock() {
            Ok(mut pending) => std::mem::take(&mut *pending),
            Err(_) => return Ok(0),
        };
        if taken.is_empty() {
            return Ok(0);
        }
        let counts: Vec<UsageCount> = taken
            .iter()
            .map(|((id, day), (views, downloads))| UsageCount {
                dataset_id: id.clone(),
                day: *day,
                views: *views,
                downloads: *downloads,
            })
            .collect();
        if let Err(e) = self.store.add_usage(&counts).await {
            if let Ok(mut pending) = self.usage.lock() {
                for (key, (v, d)) in taken {
                    let entry = pending.entry(key).or_default();
                    entry.0 += v;
                    entry.1 += d;
                }
            }
            return Err(e);
        }
        Ok(counts.len())
    }

    /// All-time (views, downloads) per dataset id, including what is not yet written.
    pub async fn usage_totals(&self) -> Result<HashMap<String, (i64, i64)>> {
        let mut totals: HashMap<String, (i64, i64)> =
            self.store.usage_totals().await?.into_iter().map(|(id, v, d)| (id, (v, d))).collect();
        if let Ok(pending) = self.usage.lock() {
            for ((id, _), (v, d)) in pending.iter() {
                let entry = totals.entry(id.clone()).or_default();
                entry.0 += v;
                entry.1 += d;
            }
        }
        Ok(totals)
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn counts_reach_the_store_on_flush_and_are_visible_before() {
        let kho = crate::tests::kho().await;
        kho.count_view("a");
        kho.count_view("a");
        kho.count_download("a");
        assert_eq!(kho.usage_totals().await.unwrap().get("a"), Some(&(2, 1)));
        assert_eq!(kho.flush_usage().await.unwrap(), 1);
        assert_eq!(kho.flush_usage().await.unwrap(), 0);
        kho.count_view("a");
        assert_eq!(kho.usage_totals().await.unwrap().get("a"), Some(&(3, 1)));
        assert_eq!(kho.store.usage_totals().await.unwrap(), vec![("a".to_string(), 2, 1)]);
    }
}
