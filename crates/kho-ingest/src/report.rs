//! The validation report: every problem with row, column, value and rule, in Vietnamese and
//! English, summarised by rule; downloadable as CSV.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Problems kept in full; beyond this only the counts grow (a million bad rows would otherwise
/// make a report larger than the data).
pub const MAX_PROBLEMS: usize = 10_000;

/// Every rule a problem may name, as in [`Problem::rule`].
pub const RULES: &[&str] = &[
    "type",
    "required",
    "unique",
    "enum",
    "pattern",
    "minimum",
    "maximum",
    "min_length",
    "max_length",
    "primary_key",
    "unique_key",
    "admin_unit",
    "abolished_code",
    "cccd",
    "mst",
    "phone",
    "field_count",
    "blank_row",
    "missing_column",
    "extra_column",
    "malformed_row",
    "foreign_key",
];

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

/// Something the reader did to the file before checking it: rows or columns it left out as not
/// part of the table (titles, a running number, totals, signatures), a column it matched by
/// title, text it converted from a legacy encoding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Note {
    /// title_rows, header_rows, column_numbers, stt_column, total_row, signature,
    /// column_matched, legacy_encoding.
    pub kind: String,
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
    /// What was done to the file before checking it (see [`Note`]).
    #[serde(default)]
    pub notes: Vec<Note>,
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
                // Values and the messages quoting them come from the file: neutralised, as this
                // is opened in a spreadsheet.
                let esc = kho_core::text::csv_escape;
                let _ = w.write_record([
                    p.row.to_string().as_str(),
                    &esc(p.column.as_deref().unwrap_or("")),
                    &esc(p.value.as_deref().unwrap_or("")),
                    &p.rule,
                    &esc(&p.message_vi),
                    &esc(&p.message_en),
                ]);
            }
            let _ = w.flush();
        }
        out
    }
}

impl Report {
    /// The report as an Excel workbook: the problems (filterable, header frozen) and a summary
    /// sheet with the counts by rule, column names in Vietnamese as in the CSV.
    pub fn to_xlsx(&self) -> Result<Vec<u8>, String> {
        use rust_xlsxwriter::{Format, Workbook};
        let x = |e: rust_xlsxwriter::XlsxError| format!("writing the XLSX report: {e}");
        let mut book = Workbook::new();
        let bold = Format::new().set_bold();
        let sheet = book.add_worksheet();
        sheet.set_name("Lỗi").map_err(x)?;
        let header = ["dong", "cot", "gia_tri", "quy_tac", "mo_ta", "description"];
        for (c, h) in header.iter().enumerate() {
            sheet.write_string_with_format(0, c as u16, *h, &bold).map_err(x)?;
        }
        for (i, p) in self.problems.iter().enumerate() {
            let r = i as u32 + 1;
            sheet.write_number(r, 0, p.row as f64).map_err(x)?;
            sheet.write_string(r, 1, p.column.as_deref().unwrap_or("")).map_err(x)?;
            // Values stay text: "00004" must not become 4.
            sheet.write_string(r, 2, p.value.as_deref().unwrap_or("")).map_err(x)?;
            sheet.write_string(r, 3, &p.rule).map_err(x)?;
            sheet.write_string(r, 4, &p.message_vi).map_err(x)?;
            sheet.write_string(r, 5, &p.message_en).map_err(x)?;
        }
        sheet.set_freeze_panes(1, 0).map_err(x)?;
        sheet.autofilter(0, 0, self.problems.len() as u32, 5).map_err(x)?;
        for (c, w) in [8.0, 18.0, 20.0, 16.0, 60.0, 60.0].iter().enumerate() {
            sheet.set_column_width(c as u16, *w).map_err(x)?;
        }

        let summary = book.add_worksheet();
        summary.set_name("Tổng hợp").map_err(x)?;
        let facts: [(&str, u64); 6] = [
            ("so_dong (rows)", self.rows),
            ("dong_hop_le (valid rows)", self.valid_rows),
            ("dong_loi (invalid rows)", self.invalid_rows),
            ("o_da_kiem_tra (cells checked)", self.cells_checked),
            ("o_loi (cells invalid)", self.cells_invalid),
            ("tong_so_loi (problems)", self.problems_total),
        ];
        for (i, (k, v)) in facts.iter().enumerate() {
            summary.write_string_with_format(i as u32, 0, *k, &bold).map_err(x)?;
            summary.write_number(i as u32, 1, *v as f64).map_err(x)?;
        }
        let top = facts.len() as u32 + 1;
        summary.write_string_with_format(top, 0, "quy_tac (rule)", &bold).map_err(x)?;
        summary.write_string_with_format(top, 1, "so_loi (count)", &bold).map_err(x)?;
        for (i, rc) in self.by_rule.iter().enumerate() {
            summary.write_string(top + 1 + i as u32, 0, &rc.rule).map_err(x)?;
            summary.write_number(top + 1 + i as u32, 1, rc.count as f64).map_err(x)?;
        }
        summary.set_column_width(0, 32.0).map_err(x)?;
        book.save_to_buffer().map_err(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xlsx_report_reads_back_with_calamine() {
        use calamine::{Reader, open_workbook_from_rs};
        let mut r = Report::default();
        r.push(Problem {
            row: 7,
            column: Some("ma_xa".into()),
            value: Some("00001".into()),
            rule: "abolished_code".into(),
            message_vi: "mã xã '00001' đã bị bãi bỏ".into(),
            message_en: "abolished".into(),
        });
        r.rows = 10;
        let bytes = r.to_xlsx().unwrap();
        let mut book: calamine::Xlsx<_> = open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(book.sheet_names(), vec!["Lỗi".to_string(), "Tổng hợp".to_string()]);
        let sheet = book.worksheet_range("Lỗi").unwrap();
        let row: Vec<String> = sheet.rows().nth(1).unwrap().iter().map(|c| c.to_string()).collect();
        assert_eq!(row[..5], ["7", "ma_xa", "00001", "abolished_code", "mã xã '00001' đã bị bãi bỏ"]);
        let summary = book.worksheet_range("Tổng hợp").unwrap();
        assert_eq!(summary.get((0, 1)).unwrap().to_string(), "10");
    }

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
