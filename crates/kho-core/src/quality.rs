//! The quality criteria of the provincial plans — *đúng, đủ, sạch, sống* (valid, complete,
//! clean, live) — as four scores from 0 to 100, each with the evidence behind it.
//!
//! The first three are measured on the data when a version is published and stored with it;
//! freshness depends on today's date and is computed when asked.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::model::Frequency;

/// What publishing measured on a version's data (all rows of the upload, valid or not).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QualityStats {
    pub rows: u64,
    pub cells_checked: u64,
    pub cells_invalid: u64,
    /// Cells of required fields, and how many of them were empty.
    pub required_cells: u64,
    pub required_missing: u64,
    /// All cells, and how many were empty (for datasets without required fields).
    pub cells: u64,
    pub cells_missing: u64,
    /// Required columns absent from the file.
    pub missing_columns: Vec<String>,
    /// Rows repeated exactly, and rows repeating a key (primary or unique).
    pub duplicate_rows: u64,
    pub duplicate_keys: u64,
    /// Text values with leading or trailing spaces.
    pub untrimmed_values: u64,
    /// Groups of values written several ways (case, accents, spacing): "Hà Nội", "Ha Noi", "HÀ NỘI".
    pub inconsistent_spellings: u64,
    pub spelling_examples: Vec<Vec<String>>,
    /// Numbers far from the column's median (more than 5 robust deviations), or from their
    /// group's when a category column explains the difference.
    pub outliers: u64,
    pub outlier_examples: Vec<String>,
    /// The rows behind the outliers (of the rows sampled), so a steward can find and check each.
    #[serde(default)]
    pub outlier_rows: Vec<OutlierRow>,
    /// Numeric columns whose values were compared within the groups of a category column, and
    /// how many values that stopped being flagged (a hospital beside commune health stations).
    #[serde(default)]
    pub outlier_groupings: Vec<OutlierGrouping>,
}

/// One value flagged as far from its peers, and where it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OutlierRow {
    pub column: String,
    pub value: f64,
    /// Line in the uploaded file (the header is line 1); absent when the version merged
    /// earlier rows with a new file.
    pub line: Option<u64>,
    /// The row's key fields and values (its first text fields when the table has no key), to
    /// find it by.
    pub row: Vec<(String, String)>,
    /// The median the value was compared with.
    pub typical: f64,
    /// The category column and its value, when the value was compared within that group only.
    pub group: Option<(String, String)>,
}

/// A numeric column compared within the groups of a category column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OutlierGrouping {
    pub column: String,
    /// The category column.
    pub by: String,
    /// Values far from the whole column's median that are ordinary within their group.
    pub excused: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Score {
    /// 0–100.
    pub score: f64,
    /// What the score was computed from, in Vietnamese.
    pub evidence_vi: String,
    pub evidence_en: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QualityScores {
    /// Đúng: share of cells that pass the schema and dictionary rules.
    pub dung: Score,
    /// Đủ: share of required cells present.
    pub du: Score,
    /// Sạch: free of duplicates, stray spaces, variant spellings and outliers.
    pub sach: Score,
    /// Sống: the latest version's age against the declared update frequency.
    pub song: Score,
    pub overall: f64,
    pub overdue: bool,
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 { 100.0 } else { (100.0 * part as f64 / whole as f64 * 10.0).round() / 10.0 }
}

/// The longest a dataset may go without a new version. Open data must be refreshed at least
/// every six months (Decree 47/2020), so irregular open datasets get that bound.
pub fn max_age_days(f: Frequency, open: bool) -> Option<i64> {
    match f {
        Frequency::Continuous | Frequency::Daily => Some(2),
        Frequency::Weekly => Some(8),
        Frequency::Monthly => Some(32),
        Frequency::Quarterly => Some(93),
        Frequency::Semiannual => Some(184),
        Frequency::Annual => Some(366),
        Frequency::Irregular => open.then_some(184),
    }
}

/// Freshness: 100 within the allowed age, falling linearly to 0 at twice that age.
pub fn freshness(last: Option<OffsetDateTime>, f: Frequency, open: bool, now: OffsetDateTime) -> (Score, bool) {
    let Some(last) = last else {
        return (
            Score {
                score: 0.0,
                evidence_vi: "chưa có phiên bản dữ liệu nào".into(),
                evidence_en: "no data version yet".into(),
            },
            true,
        );
    };
    let age = (now - last).whole_days().max(0);
    match max_age_days(f, open) {
        None => (
            Score {
                score: 100.0,
                evidence_vi: format!("cập nhật {age} ngày trước; không định kỳ"),
                evidence_en: format!("updated {age} days ago; irregular"),
            },
            false,
        ),
        Some(max) => {
            let score =
                if age <= max { 100.0 } else { (100.0 * (2.0 - age as f64 / max as f64)).clamp(0.0, 100.0).round() };
            (
                Score {
                    score,
                    evidence_vi: format!("cập nhật {age} ngày trước; hạn tối đa {max} ngày"),
                    evidence_en: format!("updated {age} days ago; due every {max} days"),
                },
                age > max,
            )
        }
    }
}

impl QualityStats {
    /// Hide personal data from the evidence, which every reader of the version sees: values of
    /// `personal` fields in spelling examples and row labels are masked as `mask_of` says, and
    /// outliers of a personal field are counted but not listed.
    pub fn mask_personal(&mut self, mask_of: impl Fn(&str) -> Option<crate::masking::MaskKind>) {
        for ex in &mut self.spelling_examples {
            if let Some((column, values)) = ex.split_first_mut()
                && let Some(kind) = mask_of(column)
            {
                for v in values {
                    *v = crate::masking::mask(kind, v);
                }
            }
        }
        self.outlier_rows.retain(|r| mask_of(&r.column).is_none());
        self.outlier_examples.retain(|e| e.split_once('=').is_none_or(|(c, _)| mask_of(c).is_none()));
        for r in &mut self.outlier_rows {
            for (field, value) in &mut r.row {
                if let Some(kind) = mask_of(field) {
                    *value = crate::masking::mask(kind, value);
                }
            }
            if let Some((by, value)) = r.group.as_mut()
                && let Some(kind) = mask_of(by)
            {
                *value = crate::masking::mask(kind, value);
            }
        }
    }
}

pub fn scores(stats: &QualityStats, song: (Score, bool)) -> QualityScores {
    let dung = Score {
        score: pct(stats.cells_checked - stats.cells_invalid.min(stats.cells_checked), stats.cells_checked),
        evidence_vi: format!(
            "{} / {} ô hợp lệ",
            stats.cells_checked - stats.cells_invalid.min(stats.cells_checked),
            stats.cells_checked
        ),
        evidence_en: format!(
            "{} of {} cells valid",
            stats.cells_checked - stats.cells_invalid.min(stats.cells_checked),
            stats.cells_checked
        ),
    };
    let du = if stats.required_cells > 0 || !stats.missing_columns.is_empty() {
        let present = stats.required_cells - stats.required_missing.min(stats.required_cells);
        let mut score = pct(present, stats.required_cells);
        if !stats.missing_columns.is_empty() {
            score = 0.0;
        }
        let cols = stats.missing_columns.join(", ");
        Score {
            score,
            evidence_vi: format!(
                "{present} / {} ô bắt buộc có giá trị{}",
                stats.required_cells,
                if cols.is_empty() { String::new() } else { format!("; thiếu cột bắt buộc: {cols}") }
            ),
            evidence_en: format!(
                "{present} of {} required cells filled{}",
                stats.required_cells,
                if cols.is_empty() { String::new() } else { format!("; required columns missing: {cols}") }
            ),
        }
    } else {
        let present = stats.cells - stats.cells_missing.min(stats.cells);
        Score {
            score: pct(present, stats.cells),
            evidence_vi: format!("{present} / {} ô có giá trị (lược đồ không có trường bắt buộc)", stats.cells),
            evidence_en: format!("{present} of {} cells filled (no required fields in the schema)", stats.cells),
        }
    };
    let issues = stats.duplicate_rows
        + stats.duplicate_keys
        + stats.untrimmed_values
        + stats.inconsistent_spellings
        + stats.outliers;
    let sach = Score {
        score: pct(stats.rows.saturating_sub(issues), stats.rows),
        evidence_vi: format!(
            "{} dòng trùng, {} khóa trùng, {} giá trị thừa khoảng trắng, {} nhóm viết không thống nhất, {} giá trị bất thường",
            stats.duplicate_rows,
            stats.duplicate_keys,
            stats.untrimmed_values,
            stats.inconsistent_spellings,
            stats.outliers
        ),
        evidence_en: format!(
            "{} duplicate rows, {} duplicate keys, {} values with stray spaces, {} inconsistently written groups, {} outliers",
            stats.duplicate_rows,
            stats.duplicate_keys,
            stats.untrimmed_values,
            stats.inconsistent_spellings,
            stats.outliers
        ),
    };
    let (song, overdue) = song;
    let overall = ((dung.score + du.score + sach.score + song.score) / 4.0 * 10.0).round() / 10.0;
    QualityScores { dung, du, sach, song, overall, overdue }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_and_evidence() {
        let stats = QualityStats {
            rows: 100,
            cells_checked: 1000,
            cells_invalid: 25,
            required_cells: 200,
            required_missing: 10,
            cells: 1000,
            cells_missing: 40,
            duplicate_rows: 2,
            untrimmed_values: 3,
            ..Default::default()
        };
        let now = OffsetDateTime::now_utc();
        let s = scores(&stats, freshness(Some(now - time::Duration::days(10)), Frequency::Monthly, true, now));
        assert_eq!((s.dung.score, s.du.score, s.sach.score, s.song.score), (97.5, 95.0, 95.0, 100.0));
        assert_eq!(s.overall, 96.9);
        assert!(!s.overdue);
        assert_eq!(s.du.evidence_vi, "190 / 200 ô bắt buộc có giá trị");
        let missing = QualityStats { missing_columns: vec!["ma_xa".into()], ..stats.clone() };
        assert_eq!(scores(&missing, freshness(None, Frequency::Annual, false, now)).du.score, 0.0);
    }

    #[test]
    fn freshness_against_frequency() {
        let now = OffsetDateTime::now_utc();
        let days = |d| Some(now - time::Duration::days(d));
        assert_eq!(
            freshness(days(30), Frequency::Monthly, false, now),
            (freshness(days(30), Frequency::Monthly, false, now).0, false)
        );
        let (s, overdue) = freshness(days(48), Frequency::Monthly, false, now);
        assert_eq!((s.score, overdue), (50.0, true));
        assert_eq!(freshness(days(400), Frequency::Irregular, false, now).0.score, 100.0);
        // Open data must be refreshed every six months even when irregular.
        let (s, overdue) = freshness(days(200), Frequency::Irregular, true, now);
        assert!(overdue && s.score < 100.0);
        assert!(freshness(None, Frequency::Daily, true, now).1);
    }

    #[test]
    fn evidence_keeps_no_personal_value() {
        use crate::masking::MaskKind;
        let mut stats = QualityStats {
            spelling_examples: vec![
                vec!["ho_ten".into(), "Lò Văn Dũng".into(), "LÒ VĂN DŨNG".into()],
                vec!["xa".into(), "Chiềng Sinh".into(), "Chieng Sinh".into()],
            ],
            outlier_rows: vec![OutlierRow {
                column: "so_nhan_khau".into(),
                value: 90.0,
                line: Some(7),
                row: vec![("so_cccd".into(), "001099012345".into()), ("xa".into(), "Chiềng Sinh".into())],
                typical: 4.0,
                group: Some(("tinh_trang".into(), "Nhiễm HIV".into())),
            }],
            ..Default::default()
        };
        stats.mask_personal(|f| match f {
            "so_cccd" => Some(MaskKind::Identifier),
            "ho_ten" => Some(MaskKind::Name),
            "tinh_trang" => Some(MaskKind::Identifier),
            _ => None,
        });
        assert_eq!(stats.spelling_examples[0], vec!["ho_ten", "Lò V. D.", "LÒ V. D."]);
        assert_eq!(stats.spelling_examples[1][1], "Chiềng Sinh");
        assert_eq!(stats.outlier_rows[0].row[0].1, "0010******45");
        assert_eq!(stats.outlier_rows[0].row[1].1, "Chiềng Sinh");
        assert_eq!(stats.outlier_rows[0].group, Some(("tinh_trang".into(), "N********".into())));
    }
}
