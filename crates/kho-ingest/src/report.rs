//! The validation report: every problem with row, column, value and rule, in Vietnamese and
//! English, summarised by rule; downloadable as CSV.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Problems kept in full; beyond this only the counts grow (a million bad rows would otherwise
/// make a report larger than the data).
pub const MAX_PROBLEMS: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// 1-based line in the file (the header is line 1).
    pub row: u64,
    pub column: Option<String>,
    pub value: Option<String>,
    /// Stable rule name: type, required, unique, enum, pattern, minimum, maximum, min_length,
    /// max_length, primary_key, unique_key, admin_unit, abolished_code, cccd, mst, phone,
    /// field_count, blank_row, missing_column, extra_column, malformed_row.
    pub rule: String,
    pub message_vi: String,
    pub message_en: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RuleCount {
    pub rule: String,
    pub count: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Report {
    pub encoding: String,
    pub delimiter: String,
    pub columns: Vec<String>,
    pub rows: u64,
    pub valid_rows: u64,
    pub invalid_rows: u64,
    pub cells_checked: u64,
    pub cells_invalid: u64,
    /// Problems in file order (at most 10,000; see `problems_total`).
    pub problems: Vec<Problem>,
    pub problems_total: u64,
    pub by_rule: Vec<RuleCount>,
    /// True when the header does not match the schema (missing or extra columns).
    pub header_mismatch: bool,
    /// Cells of the schema's fields, and how many were empty (for completeness).
    #[serde(default)]
    pub cells: u64,
    #[serde(default)]
    pub cells_missing: u64,
    #[serde(default)]
    pub required_cells: u64,
    #[serde(default)]
    pub required_missing: u64,
    /// Required fields with no column in the file.
    #[serde(default)]
    pub missing_required_columns: Vec<String>,
}

impl Report {
    pub fn push(&mut self, p: Problem) {
        self.problems_total += 1;
        match self.by_rule.iter_mut().find(|r| r.rule == p.rule) {
            Some(r) => r.count += 1,
            None => self.by_rule.push(RuleCount { rule: p.rule.clone(), count: 1 }),
        }
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(p);
        }
    }

    /// Shift every problem's row by `lines` (a sheet's rows above its header).
    pub fn offset_rows(&mut self, lines: u64) {
        if lines > 0 {
            for p in &mut self.problems {
                p.row += lines;
            }
        }
    }

    pub fn is_valid(&self) -> bool {
        self.problems_total == 0
    }

    /// The problems as CSV (UTF-8 with BOM so that Excel shows Vietnamese correctly).
    pub fn to_csv(&self) -> Vec<u8> {
        let mut out = vec![0xEF, 0xBB, 0xBF];
        {
            let mut w = csv::Writer::from_writer(&mut out);
            let _ = w.write_record(["dong", "cot", "gia_tri", "quy_tac", "mo_ta", "description"]);
            for p in &self.problems {
                let _ = w.write_record([
                    p.row.to_string().as_str(),
                    p.column.as_deref().unwrap_or(""),
                    p.value.as_deref().unwrap_or(""),
                    &p.rule,
                    &p.message_vi,
                    &p.message_en,
                ]);
            }
            let _ = w.flush();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(rule: &str) -> Problem {
        Problem {
            row: 2,
            column: Some("a".into()),
            value: Some("x,y".into()),
            rule: rule.into(),
            message_vi: "sai".into(),
            message_en: "wrong".into(),
        }
    }

    #[test]
    fn counts_and_csv() {
        let mut r = Report::default();
        r.push(p("type"));
        r.push(p("type"));
        r.push(p("required"));
        assert_eq!(r.problems_total, 3);
        assert_eq!(
            r.by_rule,
            vec![RuleCount { rule: "type".into(), count: 2 }, RuleCount { rule: "required".into(), count: 1 }]
        );
        let csv = String::from_utf8(r.to_csv()[3..].to_vec()).unwrap();
        assert!(csv.starts_with("dong,cot,gia_tri,quy_tac,mo_ta,description\n2,a,\"x,y\",type,sai,wrong\n"));
    }
}
