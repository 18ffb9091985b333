//! Outliers in a table's numbers, with the rows behind them.
//!
//! A value is an outlier when it lies more than five robust deviations (the median absolute
//! deviation, scaled to a standard deviation) from its column's median. Office tables often mix
//! kinds of rows whose numbers differ by nature — a provincial hospital's beds beside commune
//! health stations' — so a low-cardinality text column can explain a difference: when a
//! category's own median is itself far from the column's, that category's values are compared
//! with each other only (or not at all when there are too few of them to judge). The grouping
//! that leaves the fewest outliers is kept, and the evidence says so.
//!
//! The first rows of a version (up to [`SAMPLE_ROWS`]) are kept in memory with their file line
//! and a label to find them by; counts beyond the sample are scaled to the whole column.

use std::collections::HashMap;

use arrow::array::{Array, Float64Array, Int64Array, RecordBatch, StringArray};
use kho_core::quality::{OutlierGrouping, OutlierRow};

use crate::validate::ColumnType;

/// Rows sampled for outliers: enough for any office table, bounded for a national one.
const SAMPLE_ROWS: usize = 100_000;

/// A text column with more distinct values than this is not a category.
const CATEGORY_LIMIT: usize = 50;

/// Robust deviations from the median beyond which a value is an outlier.
const FAR: f64 = 5.0;

/// Fewest values a column (or a group) needs before its outliers are judged.
const MIN_VALUES: usize = 10;

/// Outlier rows kept in a version's evidence.
const ROWS_KEPT: usize = 500;

/// A text column's values as small ids, while it still looks like a category.
#[derive(Default)]
struct Category {
    ids: HashMap<String, u32>,
    names: Vec<String>,
    /// Per sampled row; `u32::MAX` for an empty cell.
    of_row: Vec<u32>,
}

/// The sampled rows of a table being staged.
pub(crate) struct OutlierSample {
    names: Vec<String>,
    numeric: Vec<usize>,
    label_columns: Vec<usize>,
    lines: Vec<u64>,
    /// Per sampled row, the values of `label_columns`.
    labels: Vec<Vec<String>>,
    /// Per numeric column, per sampled row (`NaN`: empty).
    values: Vec<Vec<f64>>,
    /// Per numeric column, its non-empty values in every row (to scale the sample's count).
    totals: Vec<u64>,
    /// Per text column, by column index.
    categories: Vec<(usize, Option<Category>)>,
}

/// What the analysis found.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Outliers {
    pub count: u64,
    pub rows: Vec<OutlierRow>,
    pub groupings: Vec<OutlierGrouping>,
}

impl OutlierSample {
    /// `key`: the primary key's columns, which name a row best; without one, the first two
    /// text columns do.
    pub(crate) fn new(columns: &[(String, ColumnType)], key: &[usize]) -> Self {
        let numeric: Vec<usize> = columns
            .iter()
            .enumerate()
            .filter(|(_, (_, t))| matches!(t, ColumnType::Int | ColumnType::Num))
            .map(|(i, _)| i)
            .collect();
        let text: Vec<usize> =
            columns.iter().enumerate().filter(|(_, (_, t))| *t == ColumnType::Text).map(|(i, _)| i).collect();
        let label_columns = if key.is_empty() { text.iter().copied().take(2).collect() } else { key.to_vec() };
        OutlierSample {
            names: columns.iter().map(|(n, _)| n.clone()).collect(),
            values: numeric.iter().map(|_| Vec::new()).collect(),
            totals: vec![0; numeric.len()],
            categories: text.iter().map(|i| (*i, Some(Category::default()))).collect(),
            numeric,
            label_columns,
            lines: Vec::new(),
            labels: Vec::new(),
        }
    }

    /// Add a batch of valid rows with their file lines.
    pub(crate) fn add(&mut self, batch: &RecordBatch, lines: &[u64]) {
        if self.numeric.is_empty() {
            return;
        }
        for (j, &i) in self.numeric.iter().enumerate() {
            let col = batch.column(i);
            self.totals[j] += (col.len() - col.null_count()) as u64;
        }
        let take = batch.num_rows().min(SAMPLE_ROWS.saturating_sub(self.lines.len())).min(lines.len());
        if take == 0 {
            return;
        }
        self.lines.extend_from_slice(&lines[..take]);
        for (j, &i) in self.numeric.iter().enumerate() {
            let col = batch.column(i).as_any();
            let out = &mut self.values[j];
            if let Some(a) = col.downcast_ref::<Int64Array>() {
                out.extend((0..take).map(|r| if a.is_null(r) { f64::NAN } else { a.value(r) as f64 }));
            } else if let Some(a) = col.downcast_ref::<Float64Array>() {
                out.extend((0..take).map(|r| if a.is_null(r) { f64::NAN } else { a.value(r) }));
            } else {
                out.extend(std::iter::repeat_n(f64::NAN, take));
            }
        }
        for (i, slot) in self.categories.iter_mut() {
            let Some(cat) = slot.as_mut() else { continue };
            let Some(a) = batch.column(*i).as_any().downcast_ref::<StringArray>() else {
                *slot = None;
                continue;
            };
            for r in 0..take {
                if a.is_null(r) {
                    cat.of_row.push(u32::MAX);
                    continue;
                }
                let v = a.value(r);
                let id = match cat.ids.get(v) {
                    Some(id) => *id,
                    None => {
                        let id = cat.names.len() as u32;
                        cat.ids.insert(v.to_string(), id);
                        cat.names.push(v.to_string());
                        id
                    }
                };
                cat.of_row.push(id);
            }
            if cat.names.len() > CATEGORY_LIMIT {
                *slot = None;
            }
        }
        let formatted: Vec<_> = self
            .label_columns
            .iter()
            .map(|i| arrow::util::display::ArrayFormatter::try_new(batch.column(*i).as_ref(), &Default::default()).ok())
            .collect();
        for r in 0..take {
            self.labels.push(
                formatted.iter().map(|f| f.as_ref().map(|f| f.value(r).to_string()).unwrap_or_default()).collect(),
            );
        }
    }

    /// Judge every sampled numeric column.
    pub(crate) fn finish(self) -> Outliers {
        let mut found = Outliers::default();
        for (j, &col) in self.numeric.iter().enumerate() {
            let present: Vec<usize> = (0..self.values[j].len()).filter(|r| !self.values[j][*r].is_nan()).collect();
            if present.len() < MIN_VALUES {
                continue;
            }
            let values = &self.values[j];
            let Some((centre_of_all, spread)) = centre(present.iter().map(|r| values[*r])) else { continue };
            let whole: Vec<Flag> = present
                .iter()
                .filter(|r| (values[**r] - centre_of_all).abs() > FAR * spread)
                .map(|r| Flag { row: *r, typical: centre_of_all, group: None })
                .collect();
            if whole.is_empty() {
                continue;
            }
            // The category that leaves the fewest outliers, if it leaves fewer.
            let mut best: Option<(usize, Vec<Flag>)> = None;
            for (c, (_, cat)) in self.categories.iter().enumerate() {
                let Some(cat) = cat else { continue };
                let Some(flags) = within_groups(values, &present, cat, centre_of_all, spread) else { continue };
                if flags.len() < best.as_ref().map_or(whole.len(), |(_, b)| b.len()) {
                    best = Some((c, flags));
                }
            }
            let (flags, category) = match best {
                Some((c, flags)) => {
                    let by = self.categories[c].0;
                    found.groupings.push(OutlierGrouping {
                        column: self.names[col].clone(),
                        by: self.names[by].clone(),
                        excused: (whole.len() - flags.len()) as u64,
                    });
                    (flags, Some(&self.categories[c]))
                }
                None => (whole, None),
            };
            // Scale a sampled count back up to the whole column.
            let scale = self.totals[j] as f64 / present.len() as f64;
            found.count += (flags.len() as f64 * scale).round() as u64;
            for f in flags {
                if found.rows.len() >= ROWS_KEPT {
                    break;
                }
                let group = f.group.zip(category).and_then(|(g, (by, cat))| {
                    Some((self.names[*by].clone(), cat.as_ref()?.names.get(g as usize)?.clone()))
                });
                found.rows.push(OutlierRow {
                    column: self.names[col].clone(),
                    value: values[f.row],
                    line: Some(self.lines[f.row]),
                    row: self
                        .label_columns
                        .iter()
                        .zip(self.labels.get(f.row).into_iter().flatten())
                        .filter(|(_, v)| !v.is_empty())
                        .map(|(c, v)| (self.names[*c].clone(), v.clone()))
                        .collect(),
                    typical: f.typical,
                    group,
                });
            }
        }
        found
    }
}

/// A flagged value: its sampled row, the median it was compared with, and the id of its
/// category's value when compared within that group only.
struct Flag {
    row: usize,
    typical: f64,
    group: Option<u32>,
}

/// The median and the robust deviation of some values (`None` when they do not vary).
fn centre(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let v: Vec<f64> = values.collect();
    let m = median(v.iter().copied());
    let spread = median(v.iter().map(|x| (x - m).abs())) * 1.4826;
    (spread > 0.0).then_some((m, spread))
}

/// The outliers of a column when a category explains differences, or `None` when the column
/// cannot be a category for these rows (one value, or so many that groups are too small to
/// say anything: a name column must not excuse every row).
fn within_groups(
    values: &[f64],
    present: &[usize],
    cat: &Category,
    centre_of_all: f64,
    spread: f64,
) -> Option<Vec<Flag>> {
    let mut groups: HashMap<u32, Vec<usize>> = HashMap::new();
    for &r in present {
        groups.entry(*cat.of_row.get(r)?).or_default().push(r);
    }
    if groups.len() < 2 || groups.len() > (present.len() / 4).max(2) {
        return None;
    }
    let mut flags = Vec::new();
    for (id, rows) in &groups {
        let group_median = median(rows.iter().map(|r| values[*r]));
        let apart = *id != u32::MAX && (group_median - centre_of_all).abs() > FAR * spread;
        if !apart {
            // An ordinary group: its values are judged against the whole column.
            flags.extend(rows.iter().filter(|r| (values[**r] - centre_of_all).abs() > FAR * spread).map(|r| Flag {
                row: *r,
                typical: centre_of_all,
                group: None,
            }));
            continue;
        }
        // A group apart from the rest: judged among its own, if there are enough of them.
        if rows.len() < MIN_VALUES {
            continue;
        }
        let Some((m, s)) = centre(rows.iter().map(|r| values[*r])) else { continue };
        flags.extend(rows.iter().filter(|r| (values[**r] - m).abs() > FAR * s).map(|r| Flag {
            row: *r,
            typical: m,
            group: Some(*id),
        }));
    }
    flags.sort_by_key(|f| f.row);
    Some(flags)
}

/// The (upper) median of some values; `NaN` for none, which compares as no spread.
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::ArrayRef;
    use std::sync::Arc;

    fn columns() -> Vec<(String, ColumnType)> {
        vec![
            ("ma".into(), ColumnType::Text),
            ("loai".into(), ColumnType::Text),
            ("huyen".into(), ColumnType::Text),
            ("giuong".into(), ColumnType::Int),
        ]
    }

    /// 30 commune stations of 5 to 14 beds in 3 districts, then `extra` rows.
    fn sample(extra: &[(&str, &str, &str, i64)]) -> Outliers {
        let mut rows: Vec<(String, String, String, i64)> =
            (0..30).map(|i| (format!("TYT{i:02}"), "Trạm y tế".into(), format!("H{}", i % 3), 5 + i % 10)).collect();
        rows.extend(extra.iter().map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), *d)));
        let text = |f: fn(&(String, String, String, i64)) -> &str| -> ArrayRef {
            Arc::new(StringArray::from(rows.iter().map(|r| f(r).to_string()).collect::<Vec<_>>()))
        };
        let batch = RecordBatch::try_from_iter(vec![
            ("ma", text(|r| &r.0)),
            ("loai", text(|r| &r.1)),
            ("huyen", text(|r| &r.2)),
            ("giuong", Arc::new(Int64Array::from(rows.iter().map(|r| r.3).collect::<Vec<_>>())) as ArrayRef),
        ])
        .unwrap();
        let lines: Vec<u64> = (0..rows.len() as u64).map(|l| l + 2).collect();
        let mut s = OutlierSample::new(&columns(), &[0]);
        s.add(&batch, &lines);
        s.finish()
    }

    #[test]
    fn a_typo_is_listed_with_its_row() {
        let found = sample(&[("TYT99", "Trạm y tế", "H1", 1000)]);
        assert_eq!(found.count, 1);
        assert_eq!(found.rows.len(), 1);
        let r = &found.rows[0];
        assert_eq!((r.column.as_str(), r.value, r.line), ("giuong", 1000.0, Some(32)));
        assert_eq!(r.row, vec![("ma".to_string(), "TYT99".to_string())]);
        assert_eq!(r.group, None);
        assert!(found.groupings.is_empty());
    }

    #[test]
    fn a_hospital_beside_stations_is_not_an_outlier() {
        let found = sample(&[("BV01", "Bệnh viện", "H1", 500)]);
        assert_eq!(found.count, 0, "{found:?}");
        assert_eq!(found.groupings, vec![OutlierGrouping { column: "giuong".into(), by: "loai".into(), excused: 1 }]);
    }

    #[test]
    fn a_typo_among_stations_is_still_found_beside_a_hospital() {
        let found = sample(&[("BV01", "Bệnh viện", "H1", 500), ("TYT98", "Trạm y tế", "H2", 900)]);
        assert_eq!(found.count, 1, "{found:?}");
        assert_eq!(found.rows[0].row[0].1, "TYT98");
    }

    #[test]
    fn a_small_unrelated_group_does_not_excuse_a_typo() {
        // The typo's district is a group whose median is ordinary.
        let found = sample(&[("TYT97", "Trạm y tế", "H0", 5000)]);
        assert_eq!(found.count, 1, "{found:?}");
    }

    #[test]
    fn a_group_of_hospitals_is_judged_among_hospitals() {
        let mut extra: Vec<(String, i64)> = (0..12).map(|i| (format!("BV{i:02}"), 400 + i * 10)).collect();
        extra.push(("BV99".into(), 40_000));
        let extra: Vec<(&str, &str, &str, i64)> =
            extra.iter().map(|(m, g)| (m.as_str(), "Bệnh viện", "H1", *g)).collect();
        let found = sample(&extra);
        assert_eq!(found.count, 1, "{found:?}");
        let r = &found.rows[0];
        assert_eq!(r.row[0].1, "BV99");
        assert_eq!(r.group, Some(("loai".into(), "Bệnh viện".into())));
        assert!(r.typical >= 400.0 && r.typical <= 520.0);
    }
}
