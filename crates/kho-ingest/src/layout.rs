//! Sheets as offices write them: the table inside a report.
//!
//! A department's sheet is rarely a bare table. Above it sit the agency's name, the national
//! motto, the report's title and date; the header may take two rows (a merged heading over its
//! sub-columns) and be followed by a row numbering the columns "(1) (2) (3)"; the first column
//! is often "STT" (a running number); a "Tổng cộng" row sums the columns; and below the table
//! come the place and date and the signatures ("Người lập biểu", "Thủ trưởng đơn vị"). Text in
//! old files may still be in TCVN3 or VNI. This module finds the table and writes it as CSV,
//! keeping each record's sheet row so problems are reported where the steward sees them, and
//! says in notes what it left out and why.

use std::fs::File;
use std::path::Path;

use kho_core::text::{fold, name_key};

use crate::legacy::{self, Legacy};
use crate::read::ReadError;
use crate::report::Note;
use crate::sheet::{Sheet, column_name};

/// Rows looked at to find the header.
const HEAD_ROWS: usize = 40;

/// Between the rows of a header's name.
const JOIN: &str = " - ";

/// What a column of the expected table is: its field name, its title and whether it holds dates.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    pub name: String,
    pub title: Option<String>,
    pub date: bool,
}

impl Expected {
    /// The fields of a Table Schema.
    pub fn of_schema(schema: &serde_json::Value) -> Vec<Expected> {
        schema
            .get("fields")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|f| {
                Some(Expected {
                    name: f.get("name")?.as_str()?.to_string(),
                    title: f.get("title").and_then(serde_json::Value::as_str).map(str::to_string),
                    date: f.get("type").and_then(serde_json::Value::as_str) == Some("date"),
                })
            })
            .collect()
    }

    fn matches(&self, header: &str) -> bool {
        let key = name_key(header);
        !key.is_empty() && (key == name_key(&self.name) || self.title.as_deref().is_some_and(|t| key == name_key(t)))
    }

    /// A header cell names this column: as a whole, or by its last part when it joins a merged
    /// heading with a sub-column's name ("Thông tin cơ sở - Mã cơ sở").
    fn named_by(&self, header: &str) -> bool {
        header.trim() == self.name
            || self.matches(header)
            || header.rsplit(JOIN).next().is_some_and(|last| self.matches(last))
    }
}

/// The table found in a sheet, written as CSV.
#[derive(Debug, Default)]
pub struct Table {
    /// Sheet row (1-based) of each CSV record, the header first.
    pub rows: Vec<u64>,
    pub notes: Vec<Note>,
}

fn io(e: &dyn std::fmt::Display) -> ReadError {
    ReadError { code: "io", message: e.to_string(), message_vi: e.to_string(), line: None }
}

fn note(kind: &str, vi: String, en: String) -> Note {
    Note { kind: kind.to_string(), message_vi: vi, message_en: en }
}

/// "dòng 3" or "dòng 1–4".
fn span(first: u64, last: u64, word: &str) -> String {
    if first == last { format!("{word} {first}") } else { format!("{word} {first}–{last}") }
}

fn distinct(row: &[String]) -> usize {
    let mut seen: Vec<&str> = row.iter().map(|c| c.trim()).filter(|c| !c.is_empty()).collect();
    seen.sort_unstable();
    seen.dedup();
    seen.len()
}

fn is_number(s: &str) -> bool {
    let s = s.trim();
    !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || ".,-%".contains(c))
}

/// "(1) (2) (3)…", "1 2 3…" or "A B C…": a row numbering a form's columns, in sequence.
fn numbers_columns(row: &[String]) -> bool {
    let marks: Vec<&str> = row
        .iter()
        .map(|c| c.trim())
        .filter(|c| !c.is_empty())
        .map(|c| c.trim_start_matches('(').trim_end_matches(')'))
        .collect();
    let rank = |m: &str| -> Option<u32> {
        match m.as_bytes() {
            [l] if l.is_ascii_uppercase() => Some(u32::from(*l - b'A') + 1),
            _ if (1..=3).contains(&m.len()) && m.bytes().all(|b| b.is_ascii_digit()) => m.parse().ok(),
            _ => None,
        }
    };
    let ranks: Option<Vec<u32>> = marks.iter().map(|m| rank(m)).collect();
    let same_kind = marks.iter().all(|m| m.bytes().all(|b| b.is_ascii_digit()))
        || marks.iter().all(|m| m.bytes().all(|b| b.is_ascii_uppercase()));
    marks.len() >= 2 && same_kind && ranks.is_some_and(|r| r.windows(2).all(|w| w[1] == w[0] + 1))
}

fn is_stt(header: &str) -> bool {
    matches!(fold(header).trim_end_matches('.'), "stt" | "tt" | "so tt" | "so thu tu")
}

/// A total row names itself in one of its first cells.
fn is_total(row: &[String]) -> Option<String> {
    row.iter().map(|c| c.trim()).filter(|c| !c.is_empty()).take(3).find_map(|c| {
        let f = fold(c);
        let f = f.trim_end_matches([':', '.', ' ']);
        let total = matches!(f, "tong cong" | "tong so" | "tong" | "cong" | "toan tinh" | "cong toan tinh")
            || f.starts_with("tong cong");
        total.then(|| c.to_string())
    })
}

/// "…, ngày 30 tháng 9 năm 2026" (the digits may be blank, to be filled by hand).
fn is_place_and_date(folded: &str) -> bool {
    let Some(day) = folded.find("ngay") else { return false };
    let Some(month) = folded[day..].find("thang").map(|m| day + m) else { return false };
    folded[month..].contains("nam") && folded.len() < 80
}

/// The place, date and signatures under a report: a row with values in fewer than half its
/// cells, one of them a date line or a signature's caption.
fn is_signature(row: &[String]) -> Option<String> {
    let filled = row.iter().filter(|c| !c.trim().is_empty()).count();
    if filled * 2 >= row.len().max(2) {
        return None;
    }
    const MARKS: [&str; 9] = [
        "nguoi lap bieu",
        "nguoi lap bang",
        "thu truong don vi",
        "thu truong co quan",
        "ke toan truong",
        "(ky",
        "ky ten",
        "ky, ghi ro ho ten",
        "noi nhan:",
    ];
    row.iter().map(|c| c.trim()).filter(|c| !c.is_empty()).find_map(|c| {
        let f = fold(c);
        (is_place_and_date(&f) || MARKS.iter().any(|m| f.contains(m))).then(|| c.to_string())
    })
}

/// An Excel serial day number (days since 1899-12-30) as an ISO date: a date cell that lost its
/// format, or a date column formatted as a number.
fn serial_date(s: &str) -> Option<String> {
    let n: i64 = s.trim().parse().ok()?;
    if !(1..=2_958_465).contains(&n) {
        return None;
    }
    let base = chrono::NaiveDate::from_ymd_opt(1899, 12, 30)?;
    Some(base.checked_add_signed(chrono::TimeDelta::days(n))?.format("%Y-%m-%d").to_string())
}

/// A header's rows: the first, and those a merged heading in it spans or holds sub-columns for.
fn header_extent(sheet: &Sheet, first: u32, last_row: u32) -> u32 {
    let mut last = first;
    for (d, _) in &sheet.merges {
        if d.start.0 != first {
            continue;
        }
        if d.end.0 > first {
            // "STT" merged down over the sub-header rows.
            last = last.max(d.end.0);
        } else if d.end.1 > d.start.1 {
            // A heading over several columns: their own names are in the row below.
            last = last.max(first + 1);
        }
    }
    last.min(first + 2).min(last_row)
}

/// The names of a header spanning `rows`: each column's distinct values, top to bottom.
fn joined_names(rows: &[Vec<String>]) -> Vec<String> {
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    (0..width)
        .map(|c| {
            let mut parts: Vec<&str> = Vec::new();
            for r in rows {
                let v = r.get(c).map_or("", |v| v.trim());
                if !v.is_empty() && parts.last() != Some(&v) {
                    parts.push(v);
                }
            }
            parts.join(JOIN)
        })
        .collect()
}

/// Write the table of `sheet` to `out` as CSV.
pub fn write_table(
    sheet: &Sheet,
    header_row: Option<u32>,
    expected: &[Expected],
    out: &Path,
) -> Result<Table, ReadError> {
    let file = File::create(out).map_err(|e| io(&e))?;
    let mut w = csv::Writer::from_writer(std::io::BufWriter::new(file));
    let mut table = Table::default();
    let Some(rows) = sheet.dense_rows(header_row)? else {
        w.flush().map_err(|e| io(&e))?;
        table.rows.push(1);
        return Ok(table);
    };
    let legacy = legacy::detect(sheet.cells.iter().map(|c| c.2.as_str()));
    let decode = |row: Vec<String>| -> Vec<String> {
        match legacy {
            Some(enc) => row.into_iter().map(|c| enc.decode(&c)).collect(),
            None => row,
        }
    };
    let mut rows = rows.map(|(r, cells)| (r, decode(cells))).peekable();
    let first_row = rows.peek().map_or(0, |(r, _)| *r);
    let last_row = sheet.cells.last().map_or(0, |c| c.0);

    // The header: as given, or found among the first rows.
    let mut head: Vec<(u32, Vec<String>)> = Vec::new();
    while head.len() < HEAD_ROWS
        && let Some(r) = rows.next()
    {
        head.push(r);
    }
    let mut unmatched = false;
    let (start, end) = match header_row {
        Some(_) => (0, 0),
        None => find_header(sheet, &head, expected, last_row, &mut unmatched),
    };
    let names = if end > start {
        let block: Vec<Vec<String>> = head[start..=end].iter().map(|(_, c)| c.clone()).collect();
        joined_names(&block)
    } else {
        head.get(start).map(|(_, c)| c.clone()).unwrap_or_default()
    };
    let header_at = head.get(start).map_or(first_row, |(r, _)| *r);
    if let Some(enc) = legacy {
        table.notes.push(encoding_note(enc));
    }
    if unmatched {
        let list = |both: bool| {
            expected
                .iter()
                .map(|e| match &e.title {
                    Some(t) if both => format!("{t} ({})", e.name),
                    Some(t) => t.clone(),
                    None => e.name.clone(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (wanted_vi, wanted_en) = (list(false), list(true));
        let row = u64::from(header_at) + 1;
        let seen = names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()).collect::<Vec<_>>().join(", ");
        table.notes.push(note(
            "header_not_found",
            format!(
                "Không dòng nào có tên cột của bảng. Các cột cần có: {wanted_vi}. Đã đọc dòng {row} làm dòng tên cột ({seen}); nếu không đúng, hãy chọn dòng tên cột."
            ),
            format!(
                "No row names the table's columns. Expected: {wanted_en}. Row {row} was read as the header ({seen}); if that is wrong, choose the header row."
            ),
        ));
    }
    if header_row.is_none() && header_at > first_row {
        let (a, b) = (u64::from(first_row) + 1, u64::from(header_at));
        table.notes.push(note(
            "title_rows",
            format!("Bỏ qua {} phía trên dòng tên cột (tên cơ quan, tên và ngày của báo cáo).", span(a, b, "dòng")),
            format!("{} above the column names were left out (agency, report title and date).", span(a, b, "Rows")),
        ));
    }
    if end > start {
        let (a, b) = (u64::from(header_at) + 1, u64::from(head[end].0) + 1);
        table.notes.push(note(
            "header_rows",
            format!("Tên cột lấy từ {}, ghép tiêu đề gộp với tiêu đề cột con.", span(a, b, "dòng")),
            format!("Column names come from {}, a merged heading joined with its sub-columns.", span(a, b, "rows")),
        ));
    }

    // Columns: "STT" is a running number, not data, unless the schema has it.
    let keep: Vec<usize> =
        (0..names.len()).filter(|&c| !is_stt(&names[c]) || expected.iter().any(|e| e.matches(&names[c]))).collect();
    let c0 = sheet.cells.iter().map(|c| c.1).min().unwrap_or(0);
    for c in (0..names.len()).filter(|c| !keep.contains(c)) {
        let letter = column_name(c0 + c as u32);
        table.notes.push(note(
            "stt_column",
            format!("Bỏ cột {letter} '{}' (số thứ tự, không phải dữ liệu).", names[c]),
            format!("Column {letter} '{}' was left out (a running number, not data).", names[c]),
        ));
    }
    let mut header: Vec<String> = keep.iter().map(|&c| names[c].clone()).collect();
    // Columns named by a field's title, or its name written differently, take the field's name.
    let mut dates = vec![false; header.len()];
    let mut used = vec![false; expected.len()];
    // Exact names first, so a title never takes a column another field is named by.
    for h in header.iter() {
        if let Some(j) = expected.iter().position(|e| e.name == *h) {
            used[j] = true;
        }
    }
    for (i, h) in header.iter_mut().enumerate() {
        if let Some(j) = expected.iter().position(|e| e.name == *h) {
            dates[i] = expected[j].date;
            continue;
        }
        let free = |j: &usize| !used[*j];
        let found = (0..expected.len())
            .filter(free)
            .find(|&j| expected[j].matches(h))
            .or_else(|| (0..expected.len()).filter(free).find(|&j| expected[j].named_by(h)));
        if let Some(j) = found {
            let e = &expected[j];
            used[j] = true;
            dates[i] = e.date;
            // A column headed by the field's own title needs no word.
            if e.title.as_deref().is_none_or(|t| t.trim() != h.trim()) {
                table.notes.push(note(
                    "column_matched",
                    format!("Cột '{h}' được hiểu là trường '{}'.", e.title.as_deref().unwrap_or(&e.name)),
                    format!("Column '{h}' was read as the field '{}'.", e.name),
                ));
            }
            h.clone_from(&e.name);
        }
    }
    w.write_record(&header).map_err(|e| io(&e))?;
    table.rows.push(u64::from(header_at) + 1);

    // The rest of the head, then the remaining rows, as data.
    let after = head.split_off((end + 1).min(head.len()));
    let mut data = after.into_iter().chain(rows).peekable();
    if header_row.is_none()
        && let Some((r, cells)) = data.peek()
        && distinct(cells) * 2 >= keep.len().max(2)
        && numbers_columns(cells)
    {
        let r = u64::from(*r) + 1;
        table.notes.push(note(
            "column_numbers",
            format!("Bỏ dòng {r}: dòng đánh số cột (1), (2), (3)…"),
            format!("Row {r} was left out: it numbers the columns (1), (2), (3)…"),
        ));
        data.next();
    }
    // Rows after a blank row wait until a row of data follows them: the blank rows before the
    // signatures, or a second table's title, are not data.
    let mut pending: Vec<(u64, Vec<String>)> = Vec::new();
    let header_keys: Vec<(String, String)> =
        keep.iter().zip(&header).map(|(&c, field)| (name_key(&names[c]), name_key(field))).collect();
    let mut record = Vec::with_capacity(keep.len());
    for (r, cells) in data {
        let at = u64::from(r) + 1;
        if cells.iter().all(|c| c.trim().is_empty()) {
            pending.push((at, cells));
            continue;
        }
        // Below the data (never in place of it), the place, date and signatures end the table.
        let has_data = table.rows.len() > 1;
        if has_data && let Some(text) = is_signature(&cells) {
            let last = u64::from(last_row) + 1;
            table.notes.push(note(
                "signature",
                format!("Bỏ {} ở cuối trang tính: phần ngày tháng, ký tên ('{text}').", span(at, last, "dòng")),
                format!(
                    "{} at the end of the sheet were left out: date and signatures ('{text}').",
                    span(at, last, "Rows")
                ),
            ));
            pending.clear();
            break;
        }
        if !pending.is_empty() && distinct(&cells) <= 1 && is_total(&cells).is_none() {
            pending.push((at, cells));
            continue;
        }
        // The column names again, after a gap: a second table on the same sheet.
        let repeated = keep
            .iter()
            .zip(&header_keys)
            .filter(|&(&c, (name, field))| {
                let k = cells.get(c).map(|v| name_key(v)).unwrap_or_default();
                !k.is_empty() && (k == *name || k == *field)
            })
            .count();
        if has_data && !pending.is_empty() && repeated * 2 >= keep.len().max(2) {
            let from = pending.first().map_or(at, |p| p.0);
            let last = u64::from(last_row) + 1;
            table.notes.push(note(
                "second_table",
                format!(
                    "Trang tính có một bảng khác từ dòng {at}; chỉ nạp bảng đầu tiên, bỏ {}. Hãy chuyển bảng kia sang trang tính riêng.",
                    span(from, last, "dòng")
                ),
                format!(
                    "The sheet holds another table from row {at}; only the first was loaded, and {} were left out. Move the other table to a sheet of its own.",
                    span(from, last, "rows")
                ),
            ));
            pending.clear();
            break;
        }
        if let Some(text) = is_total(&cells) {
            table.notes.push(note(
                "total_row",
                format!("Bỏ dòng {at}: dòng tổng ('{text}'), tính lại được từ dữ liệu."),
                format!("Row {at} was left out: a total ('{text}'), which the data can recompute."),
            ));
            continue;
        }
        // Rows inside the table stay, blank or not, for the checks to name.
        for (row_at, row) in pending.drain(..).chain(std::iter::once((at, cells))) {
            record.clear();
            for (i, &c) in keep.iter().enumerate() {
                let v = row.get(c).map_or("", String::as_str);
                match dates[i].then(|| serial_date(v)).flatten() {
                    Some(d) => record.push(d),
                    None => record.push(v.to_string()),
                }
            }
            w.write_record(&record).map_err(|e| io(&e))?;
            table.rows.push(row_at);
        }
    }
    // Lines of text after the table, such as a note on the figures.
    let trailing: Vec<&(u64, Vec<String>)> = pending.iter().filter(|(_, c)| distinct(c) > 0).collect();
    if let (Some(first), Some(last)) = (trailing.first(), trailing.last()) {
        let text = first.1.iter().find(|c| !c.trim().is_empty()).cloned().unwrap_or_default();
        table.notes.push(note(
            "trailing_text",
            format!("Bỏ {} sau bảng: dòng chữ không phải dữ liệu ('{text}').", span(first.0, last.0, "dòng")),
            format!("{} after the table were left out: text, not data ('{text}').", span(first.0, last.0, "Rows")),
        ));
    }
    w.flush().map_err(|e| io(&e))?;
    Ok(table)
}

/// The note that a file's text was converted from a legacy encoding.
pub fn encoding_note(enc: Legacy) -> Note {
    note(
        "legacy_encoding",
        format!("Văn bản trong tệp dùng bảng mã cũ {}; đã chuyển sang Unicode.", enc.name()),
        format!("The file's text was in the legacy {} encoding; it was converted to Unicode.", enc.name()),
    )
}

/// The header's first and last index in `head`: the row (with the rows its merged headings
/// span) that names the most expected columns; without a match, the first row about as wide as
/// the table that is followed by another.
/// `unmatched` is set when there are expected columns and no row names any of them.
fn find_header(
    sheet: &Sheet,
    head: &[(u32, Vec<String>)],
    expected: &[Expected],
    last_row: u32,
    unmatched: &mut bool,
) -> (usize, usize) {
    let extent = |i: usize| -> usize {
        let last = header_extent(sheet, head[i].0, last_row);
        head.iter().rposition(|(r, _)| *r <= last).unwrap_or(i).max(i)
    };
    let names = |i: usize| -> Vec<String> {
        let end = extent(i);
        let block: Vec<Vec<String>> = head[i..=end].iter().map(|(_, c)| c.clone()).collect();
        joined_names(&block)
    };
    if !expected.is_empty() {
        let mut best = (0usize, 0usize);
        for (i, (_, cells)) in head.iter().enumerate() {
            if distinct(cells) == 0 {
                continue;
            }
            let joined = names(i);
            let score = expected.iter().filter(|e| joined.iter().chain(cells.iter()).any(|h| e.named_by(h))).count();
            if score > best.1 {
                best = (i, score);
            }
        }
        if best.1 > 0 {
            return (best.0, extent(best.0));
        }
        *unmatched = true;
    }
    let widest = head.iter().map(|(_, c)| distinct(c)).max().unwrap_or(0);
    for (i, (_, cells)) in head.iter().enumerate() {
        let n = distinct(cells);
        let wide = n >= 2 && n * 5 >= widest * 3;
        let texts = cells.iter().filter(|c| !c.trim().is_empty()).all(|c| !is_number(c));
        let end = extent(i);
        // Rows below a header are as wide as it; titles are followed by narrower titles.
        let followed = head.get(end + 1).is_some_and(|(_, next)| distinct(next) * 4 >= n * 3);
        if wide && texts && followed {
            return (i, end);
        }
    }
    let first = head.iter().position(|(_, c)| distinct(c) > 0).unwrap_or(0);
    (first, first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use calamine::Dimensions;

    /// A merged range: its first and last cell, (row, column) from 0.
    type Merge = ((u32, u32), (u32, u32));

    /// A sheet from rows of texts (row, column, text), with merged ranges.
    fn sheet(rows: &[&[&str]], merges: &[Merge]) -> Sheet {
        let mut cells = Vec::new();
        for (r, row) in rows.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                if !v.is_empty() {
                    cells.push((r as u32, c as u32, v.to_string()));
                }
            }
        }
        let value = |at: (u32, u32)| cells.iter().find(|c| (c.0, c.1) == at).map(|c| c.2.clone()).unwrap_or_default();
        let merges = merges.iter().map(|&(start, end)| (Dimensions { start, end }, value(start))).collect();
        Sheet { name: "Báo cáo".into(), cells, merges }
    }

    fn expected(names: &[(&str, &str)]) -> Vec<Expected> {
        names.iter().map(|(n, t)| Expected { name: n.to_string(), title: Some(t.to_string()), date: false }).collect()
    }

    fn write(s: &Sheet, expected: &[Expected]) -> (String, Table) {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("t.csv");
        let t = write_table(s, None, expected, &out).unwrap();
        (std::fs::read_to_string(out).unwrap(), t)
    }

    #[test]
    fn the_header_is_the_row_naming_the_fields_past_titles() {
        let s = sheet(
            &[
                &["SỞ Y TẾ", "", "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"],
                &["BÁO CÁO SỐ GIƯỜNG BỆNH", "", ""],
                &["", "", ""],
                &["STT", "MÃ CƠ SỞ", "Số giường"],
                &["1", "BV01", "500"],
                &["2", "BV02", "20"],
                &["", "Tổng cộng", "520"],
            ],
            &[],
        );
        let (csv, t) = write(&s, &expected(&[("ma_co_so", "Mã cơ sở"), ("so_giuong", "Số giường")]));
        assert_eq!(csv, "ma_co_so,so_giuong\nBV01,500\nBV02,20\n");
        assert_eq!(t.rows, [4, 5, 6]);
        let kinds: Vec<&str> = t.notes.iter().map(|n| n.kind.as_str()).collect();
        // A column headed by its field's title exactly goes without a note.
        assert_eq!(kinds, ["title_rows", "stt_column", "column_matched", "total_row"]);
        // Without a schema, the first row about as wide as the table that data follows.
        let (csv, _) = write(&s, &[]);
        assert!(csv.starts_with("MÃ CƠ SỞ,Số giường\n"), "{csv}");
    }

    #[test]
    fn a_two_row_header_is_joined_and_signatures_end_the_table() {
        let s = sheet(
            &[
                &["STT", "Cơ sở", "", "Ngày"],
                &["", "Mã", "Tên", ""],
                &["(1)", "(2)", "(3)", "(4)"],
                &["1", "BV01", "Bệnh viện", "43746"],
                &["", "", "", ""],
                &["2", "BV02", "Trạm", "15/03/2026"],
                &["", "", "", ""],
                &["", "", "Sơn La, ngày 30 tháng 9 năm 2026", ""],
                &["", "NGƯỜI LẬP BIỂU", "", ""],
                &["", "Nguyễn Thị Hoa", "", ""],
            ],
            &[((0, 0), (1, 0)), ((0, 1), (0, 2)), ((0, 3), (1, 3))],
        );
        let mut fields = expected(&[("ma", "Mã"), ("ten", "Tên cơ sở")]);
        fields.push(Expected { name: "ngay".into(), title: None, date: true });
        let (csv, t) = write(&s, &fields);
        // The blank row inside the table stays (for the checks to name); the one before the
        // signatures goes with them. A serial day in a date column becomes a date.
        assert_eq!(csv, "ma,ten,ngay\nBV01,Bệnh viện,2019-10-08\n,,\nBV02,Trạm,15/03/2026\n");
        assert_eq!(t.rows, [1, 4, 5, 6]);
        let kinds: Vec<&str> = t.notes.iter().map(|n| n.kind.as_str()).collect();
        assert!(kinds.contains(&"header_rows") && kinds.contains(&"column_numbers"), "{kinds:?}");
        let signature = t.notes.iter().find(|n| n.kind == "signature").unwrap();
        assert!(signature.message_vi.contains("dòng 8–10"), "{}", signature.message_vi);
    }

    #[test]
    fn a_date_line_inside_the_data_does_not_end_it() {
        let s =
            sheet(&[&["ma", "ghi_chu"], &["A", "x"], &["B", "Thành lập ngày 5 tháng 3 năm 1990"], &["C", "y"]], &[]);
        // The first data row is never a signature, and a row with data in every column is not.
        let (csv, _) = write(&s, &expected(&[("ma", "Mã"), ("ghi_chu", "Ghi chú")]));
        assert_eq!(csv.lines().count(), 4, "{csv}");
    }

    #[test]
    fn legacy_text_is_converted_before_the_header_is_looked_for() {
        let s = sheet(&[&["Së Y tÕ", ""], &["M· c¬ së", "Tªn c¬ së"], &["BV01", "BÖnh viÖn ®a khoa"]], &[]);
        let (csv, t) = write(&s, &expected(&[("ma_co_so", "Mã cơ sở"), ("ten_co_so", "Tên cơ sở")]));
        assert_eq!(csv, "ma_co_so,ten_co_so\nBV01,Bệnh viện đa khoa\n");
        assert_eq!(t.notes[0].kind, "legacy_encoding");
    }

    #[test]
    fn a_second_table_on_the_sheet_is_named_and_left_out() {
        let s = sheet(
            &[
                &["Mã cơ sở", "Số giường"],
                &["BV01", "500"],
                &["BV02", "20"],
                &["", ""],
                &["Bảng 2. Cơ sở tư nhân", ""],
                &["Mã cơ sở", "Số giường"],
                &["PK01", "3"],
            ],
            &[],
        );
        let (csv, t) = write(&s, &expected(&[("ma_co_so", "Mã cơ sở"), ("so_giuong", "Số giường")]));
        assert_eq!(csv, "ma_co_so,so_giuong\nBV01,500\nBV02,20\n");
        let second = t.notes.iter().find(|n| n.kind == "second_table").unwrap();
        assert!(
            second.message_vi.contains("từ dòng 6") && second.message_vi.contains("dòng 4–7"),
            "{}",
            second.message_vi
        );
        // A note under the table is left out and said so.
        let s = sheet(&[&["ma", "so"], &["A", "1"], &["", ""], &["Số liệu sơ bộ", ""]], &[]);
        let (csv, t) = write(&s, &expected(&[("ma", "Mã"), ("so", "Số")]));
        assert_eq!(csv, "ma,so\nA,1\n");
        assert_eq!(t.notes.last().unwrap().kind, "trailing_text");
    }

    #[test]
    fn a_header_matching_nothing_lists_what_is_expected() {
        let s = sheet(&[&["Cột 1", "Cột 2"], &["A", "1"]], &[]);
        let (_, t) = write(&s, &expected(&[("ma_co_so", "Mã cơ sở"), ("so_giuong", "Số giường")]));
        let n = t.notes.iter().find(|n| n.kind == "header_not_found").unwrap();
        assert!(n.message_vi.contains("cần có: Mã cơ sở, Số giường."), "{}", n.message_vi);
        assert!(n.message_en.contains("Mã cơ sở (ma_co_so), Số giường (so_giuong)"), "{}", n.message_en);
        assert!(n.message_vi.contains("dòng 1 làm dòng tên cột (Cột 1, Cột 2)"), "{}", n.message_vi);
    }
}
