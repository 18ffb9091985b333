//! Spreadsheets, read within bounds known before anything large is allocated.
//!
//! calamine reads XLS and ODS workbooks whole when they are opened, and makes each sheet a dense
//! grid from its first to its last cell. A 2 KB file with values in A1 and XFD1048576, one that
//! declares such dimensions, or one that repeats a cell a million times would ask for
//! gigabytes and end the server. So each format is first measured the way calamine would
//! allocate it: a zip-based workbook (XLSX, XLSB, ODS) by the declared unpacked size of its
//! parts; an ODS workbook by its cells, repeats and text; an XLS workbook by each sheet's
//! declared dimensions, cell positions and the shared strings its cells copy. XLSX and XLSB
//! sheets are then read cell by cell, counting as they go. Every bound has its own message
//! naming the sheet and the cells, and merged ranges are clipped to the cells that hold values.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use calamine::{Data, DataType, Dimensions, Reader};

use crate::read::{MAX_CELL_BYTES, MAX_COLUMNS, ReadError};

/// Rows of a sheet, as in Excel.
pub const MAX_ROWS: u32 = 1_048_576;
/// Cells holding a value, in the sheet read.
pub const MAX_CELLS: usize = 10_000_000;
/// Rows × columns from the first to the last value of a sheet: the grid the sheet becomes.
pub const MAX_AREA: u64 = 20_000_000;
/// The grids of all sheets together, for the formats read whole (XLS, ODS).
pub const MAX_BOOK_AREA: u64 = 40_000_000;
/// Text the cells of a workbook hold once read (ODS and XLS copy a value into every cell that
/// repeats or shares it).
pub const MAX_TEXT_BYTES: u64 = 512 << 20;
/// The parts of a zip-based workbook, unpacked, by their declared sizes (which the zip reader
/// then holds them to).
pub const MAX_UNPACKED_BYTES: u64 = 1 << 30;
/// Parts in a zip-based workbook.
const MAX_PARTS: usize = 10_000;
/// Cells visited in a sheet, empty ones included (formatting alone makes a cell).
const MAX_VISITED: u64 = 50_000_000;
/// Merged ranges in a sheet.
const MAX_MERGES: usize = 100_000;
/// Sheets in an XLS workbook that calamine reads.
const MAX_SHEETS: usize = 1_000;

/// A sheet as read: its values (row, column, text), and its merged ranges.
pub struct Sheet {
    pub name: String,
    pub cells: Vec<(u32, u32, String)>,
    /// Merged ranges clipped to the values, each with the value of its top-left cell.
    pub merges: Vec<(Dimensions, String)>,
}

fn too_large(en: String, vi: String) -> ReadError {
    ReadError { code: "sheet_too_large", message: en, message_vi: vi, line: None }
}

fn invalid(en: impl std::fmt::Display, vi: impl std::fmt::Display) -> ReadError {
    ReadError {
        code: "invalid_spreadsheet",
        message: format!("the spreadsheet cannot be read: {en}"),
        message_vi: format!("không đọc được tệp bảng tính: {vi}"),
        line: None,
    }
}

/// `16384` as `16.384` (Vietnamese) or `16,384`.
pub fn grouped(n: u64, sep: char) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(sep);
        }
        out.push(c);
    }
    out
}

/// `A`, `Z`, `AA`, … `XFD` for 0-based column `c`.
pub fn column_name(c: u32) -> String {
    let mut n = u64::from(c) + 1;
    let mut out = Vec::new();
    while n > 0 {
        let rem = ((n - 1) % 26) as u8;
        out.push(b'A' + rem);
        n = (n - 1) / 26;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// `B2` for 0-based (row, column).
pub fn cell_name(row: u32, col: u32) -> String {
    format!("{}{}", column_name(col), u64::from(row) + 1)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Xlsx,
    Xlsb,
    Ods,
    Xls,
}

/// Read the values of one sheet (the first if `sheet` is `None`), within the bounds above. A
/// workbook malformed enough to make the reader panic (an overflowing cell reference, say) is
/// refused as one that cannot be read.
pub fn read(path: &Path, sheet: Option<&str>) -> Result<Sheet, ReadError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read_unguarded(path, sheet))).unwrap_or_else(|_| {
        Err(invalid(
            "its structure is broken (a cell reference or a record out of range)",
            "cấu trúc tệp bị hỏng (địa chỉ ô hoặc bản ghi vượt giới hạn)",
        ))
    })
}

fn read_unguarded(path: &Path, sheet: Option<&str>) -> Result<Sheet, ReadError> {
    match kind(path)? {
        Kind::Xlsx => {
            let mut book: calamine::Xlsx<_> = calamine::open_workbook(path).map_err(|e| invalid(&e, &e))?;
            let name = choose(&book.sheet_names(), sheet)?;
            let mut collect = Collector::new(&name);
            {
                let mut reader = book.worksheet_cells_reader(&name).map_err(|e| sheet_error(&name, &e))?;
                while let Some(cell) = reader.next_cell().map_err(|e| sheet_error(&name, &e))? {
                    let (row, col) = cell.get_position();
                    collect.visit(row, col, &Data::from(cell.get_value().clone()))?;
                }
            }
            let merges = book.merge_cells_by_sheet_name(&name).unwrap_or_default();
            collect.finish(merges)
        }
        Kind::Xlsb => {
            let mut book: calamine::Xlsb<_> = calamine::open_workbook(path).map_err(|e| invalid(&e, &e))?;
            let name = choose(&book.sheet_names(), sheet)?;
            let mut collect = Collector::new(&name);
            let mut reader = book.worksheet_cells_reader(&name).map_err(|e| sheet_error(&name, &e))?;
            while let Some(cell) = reader.next_cell().map_err(|e| sheet_error(&name, &e))? {
                let (row, col) = cell.get_position();
                collect.visit(row, col, &Data::from(cell.get_value().clone()))?;
            }
            collect.finish(Vec::new())
        }
        Kind::Ods => {
            measure_ods(path)?;
            let mut book: calamine::Ods<_> = calamine::open_workbook(path).map_err(|e| invalid(&e, &e))?;
            let name = choose(&book.sheet_names(), sheet)?;
            let range = book.worksheet_range(&name).map_err(|e| sheet_error(&name, &e))?;
            collect_range(&name, &range)?.finish(Vec::new())
        }
        Kind::Xls => {
            measure_xls(path)?;
            let mut book: calamine::Xls<_> = calamine::open_workbook(path).map_err(|e| invalid(&e, &e))?;
            let name = choose(&book.sheet_names(), sheet)?;
            let range = book.worksheet_range(&name).map_err(|e| sheet_error(&name, &e))?;
            let merges = book.merge_cells_by_sheet_name(&name).unwrap_or_default();
            collect_range(&name, &range)?.finish(merges)
        }
    }
}

/// The values of a sheet calamine has read whole (ODS, XLS, after they were measured).
fn collect_range(name: &str, range: &calamine::Range<Data>) -> Result<Collector, ReadError> {
    let (r0, c0) = range.start().unwrap_or((0, 0));
    let mut collect = Collector::new(name);
    for (r, c, v) in range.used_cells() {
        collect.visit(r0 + r as u32, c0 + c as u32, v)?;
    }
    Ok(collect)
}

fn sheet_error(name: &str, e: &dyn std::fmt::Display) -> ReadError {
    ReadError {
        code: "invalid_spreadsheet",
        message: format!("sheet '{name}' cannot be read: {e}"),
        message_vi: format!("không đọc được trang tính '{name}': {e}"),
        line: None,
    }
}

fn choose(names: &[String], wanted: Option<&str>) -> Result<String, ReadError> {
    match wanted {
        Some(s) if names.iter().any(|n| n == s) => Ok(s.to_string()),
        Some(s) => Err(ReadError {
            code: "unknown_sheet",
            message: format!("the workbook has no sheet '{s}'; its sheets are: {}", names.join(", ")),
            message_vi: format!("tệp không có trang tính '{s}'; các trang tính: {}", names.join(", ")),
            line: None,
        }),
        None => names.first().cloned().ok_or_else(|| ReadError {
            code: "empty_file",
            message: "the workbook has no sheet".into(),
            message_vi: "tệp không có trang tính nào".into(),
            line: None,
        }),
    }
}

/// Which workbook format the bytes are (never the file name, which uploads do not keep).
fn kind(path: &Path) -> Result<Kind, ReadError> {
    let io = |e: std::io::Error| ReadError {
        code: "io",
        message: format!("cannot read the file: {e}"),
        message_vi: format!("không đọc được tệp: {e}"),
        line: None,
    };
    let mut head = [0u8; 4];
    let n = File::open(path).and_then(|mut f| f.read(&mut head)).map_err(io)?;
    if head[..n] == [0xD0, 0xCF, 0x11, 0xE0] {
        return Ok(Kind::Xls);
    }
    let file = File::open(path).map_err(io)?;
    let mut zip = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| invalid(&e, &e))?;
    if zip.len() > MAX_PARTS {
        return Err(too_large(
            format!("the workbook has {} parts; at most {MAX_PARTS}", zip.len()),
            format!("tệp bảng tính có {} thành phần; tối đa {MAX_PARTS}", zip.len()),
        ));
    }
    let mut unpacked = 0u64;
    let mut names = Vec::with_capacity(zip.len());
    for i in 0..zip.len() {
        let part = zip.by_index_raw(i).map_err(|e| invalid(&e, &e))?;
        unpacked = unpacked.saturating_add(part.size());
        names.push(part.name().map_err(|e| invalid(&e, &e))?.to_string());
    }
    if unpacked > MAX_UNPACKED_BYTES {
        return Err(too_large(
            format!(
                "the workbook unpacks to {} MB; at most {} MB (save the sheet as CSV UTF-8 to load more)",
                unpacked >> 20,
                MAX_UNPACKED_BYTES >> 20
            ),
            format!(
                "tệp bảng tính khi giải nén lớn {} MB; tối đa {} MB (hãy lưu trang tính dưới dạng CSV UTF-8 để nạp dữ liệu lớn hơn)",
                unpacked >> 20,
                MAX_UNPACKED_BYTES >> 20
            ),
        ));
    }
    // calamine reserves room for the shared strings a workbook declares before reading any:
    // a declared count no part could hold is refused, as is one past the cells a sheet may have.
    for name in names.iter().filter(|n| n.to_ascii_lowercase().ends_with("sharedstrings.xml")) {
        let mut part = zip.by_name(name).map_err(|e| invalid(&e, &e))?;
        let size = part.size();
        let mut head = Vec::new();
        (&mut part).take(64 * 1024).read_to_end(&mut head).map_err(|e| invalid(&e, &e))?;
        if let Some(n) = declared_count(&head)
            && (n > MAX_CELLS as u64 || n > size / 8)
        {
            return Err(too_large(
                format!(
                    "the workbook declares {} shared texts, more than it can hold or a sheet may have",
                    grouped(n, ',')
                ),
                format!(
                    "tệp bảng tính khai báo {} chuỗi văn bản dùng chung, nhiều hơn tệp có thể chứa hoặc một trang tính được phép",
                    grouped(n, '.')
                ),
            ));
        }
    }
    let has = |n: &str| names.iter().any(|x| x.eq_ignore_ascii_case(n));
    if has("xl/workbook.bin") {
        Ok(Kind::Xlsb)
    } else if has("xl/workbook.xml") {
        // calamine computes a cell's position from its reference before any bound can see it,
        // and a reference longer than any sheet's overflows that arithmetic.
        for name in names.iter().filter(|n| {
            let n = n.to_ascii_lowercase();
            n.starts_with("xl/worksheets/") && n.ends_with(".xml")
        }) {
            let part = zip.by_name(name).map_err(|e| invalid(&e, &e))?;
            check_references(part, name)?;
        }
        Ok(Kind::Xlsx)
    } else if has("content.xml") {
        Ok(Kind::Ods)
    } else {
        Err(invalid(
            "it is a zip file, but not an Excel or OpenDocument workbook",
            "đây là tệp nén zip nhưng không phải bảng tính Excel hay OpenDocument",
        ))
    }
}

/// Every cell reference in a sheet part (the values of attributes `r` and `…ref`, such as
/// `r="B7"`, `ref="A1:C1"`, `sqref="A1 B2:B9"`) must fit a sheet: at most three letters
/// (XFD) and seven digits (1048576), read in one pass over the part.
fn check_references(part: impl Read, name: &str) -> Result<(), ReadError> {
    let mut reader = BufReader::with_capacity(1 << 16, part);
    let mut buf = [0u8; 1 << 16];
    // The last bytes before a quote, to know which attribute it opens; the value being read.
    let mut tail: u64 = 0;
    // The quote that opened the value being read ('"' or '\''), and the value.
    let mut value: Option<(u8, Vec<u8>)> = None;
    loop {
        let n = reader.read(&mut buf).map_err(|e| invalid(&e, &e))?;
        if n == 0 {
            return Ok(());
        }
        for &b in &buf[..n] {
            match &mut value {
                Some((quote, v)) if b == *quote => {
                    check_reference_value(v, name)?;
                    value = None;
                }
                // Long lists (data validations over many ranges) are checked up to this length.
                Some((_, v)) if v.len() < 4096 => v.push(b),
                Some(_) => {}
                None => {
                    // `r=` after white space, or any attribute name ending in `ref=`, then a quote.
                    let opens = (b == b'"' || b == b'\'')
                        && ((tail & 0xFFFF_FFFF) == u64::from_be_bytes([0, 0, 0, 0, b'r', b'e', b'f', b'='])
                            || ((tail & 0xFFFF) == u64::from_be_bytes([0, 0, 0, 0, 0, 0, b'r', b'='])
                                && ((tail >> 16) as u8).is_ascii_whitespace()));
                    if opens {
                        value = Some((b, Vec::new()));
                    }
                }
            }
            tail = (tail << 8) | u64::from(b);
        }
    }
}

fn check_reference_value(v: &[u8], name: &str) -> Result<(), ReadError> {
    for token in v.split(|b| b.is_ascii_whitespace() || *b == b':').filter(|t| !t.is_empty()) {
        let token: Vec<u8> = token.iter().copied().filter(|b| *b != b'$').collect();
        let letters = token.iter().take_while(|b| b.is_ascii_alphabetic()).count();
        let digits = token[letters..].iter().take_while(|b| b.is_ascii_digit()).count();
        if letters > 3 || digits > 7 {
            let shown: String = String::from_utf8_lossy(&token).chars().take(40).collect();
            return Err(invalid(
                format!("its sheet {name} refers to cell '{shown}', outside any sheet (the last cell is XFD1048576)"),
                format!(
                    "trang tính {name} tham chiếu ô '{shown}', nằm ngoài mọi trang tính (ô cuối cùng là XFD1048576)"
                ),
            ));
        }
    }
    Ok(())
}

/// The `uniqueCount` (else `count`) an `<sst>` element declares, from the start of the part.
fn declared_count(head: &[u8]) -> Option<u64> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(head);
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf).ok()? {
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == "sst" => {
                let value = |key: &str| {
                    e.attributes()
                        .flatten()
                        .find(|a| a.key.as_ref() == key)
                        .and_then(|a| a.value.trim().parse::<u64>().ok())
                };
                return value("uniqueCount").or_else(|| value("count"));
            }
            Event::Eof => return None,
            _ => buf.clear(),
        }
    }
}

/// The values of a sheet, gathered with the bounds checked at every cell.
struct Collector {
    sheet: String,
    cells: Vec<(u32, u32, String)>,
    text: u64,
    visited: u64,
    first: Option<(u32, u32)>,
    rows: (u32, u32),
    cols: (u32, u32),
}

impl Collector {
    fn new(sheet: &str) -> Collector {
        Collector {
            sheet: sheet.to_string(),
            cells: Vec::new(),
            text: 0,
            visited: 0,
            first: None,
            rows: (u32::MAX, 0),
            cols: (u32::MAX, 0),
        }
    }

    fn visit(&mut self, row: u32, col: u32, value: &Data) -> Result<(), ReadError> {
        self.visited += 1;
        if self.visited > MAX_VISITED {
            return Err(too_large(
                format!("sheet '{}' has more than {MAX_VISITED} cells, empty ones included", self.sheet),
                format!("trang tính '{}' có hơn {MAX_VISITED} ô, kể cả ô trống", self.sheet),
            ));
        }
        if value.is_empty() {
            return Ok(());
        }
        let text = cell_text(value);
        if text.is_empty() {
            return Ok(());
        }
        let at = cell_name(row, col);
        if row >= MAX_ROWS {
            return Err(too_large(
                format!("sheet '{}' has a value in cell {at}, past row {MAX_ROWS}", self.sheet),
                format!("trang tính '{}' có dữ liệu ở ô {at}, quá dòng {MAX_ROWS}", self.sheet),
            ));
        }
        if text.len() > MAX_CELL_BYTES {
            return Err(too_large(
                format!("sheet '{}', cell {at}: the value is longer than {} KB", self.sheet, MAX_CELL_BYTES >> 10),
                format!("trang tính '{}', ô {at}: giá trị dài quá {} KB", self.sheet, MAX_CELL_BYTES >> 10),
            ));
        }
        self.text += text.len() as u64;
        if self.text > MAX_TEXT_BYTES {
            return Err(too_large(
                format!("sheet '{}' holds more than {} MB of text", self.sheet, MAX_TEXT_BYTES >> 20),
                format!("trang tính '{}' chứa hơn {} MB dữ liệu", self.sheet, MAX_TEXT_BYTES >> 20),
            ));
        }
        if self.cells.len() >= MAX_CELLS {
            return Err(too_large(
                format!("sheet '{}' has more than {MAX_CELLS} cells with values; save it as CSV UTF-8", self.sheet),
                format!("trang tính '{}' có hơn {MAX_CELLS} ô có dữ liệu; hãy lưu dưới dạng CSV UTF-8", self.sheet),
            ));
        }
        self.first.get_or_insert((row, col));
        self.rows = (self.rows.0.min(row), self.rows.1.max(row));
        self.cols = (self.cols.0.min(col), self.cols.1.max(col));
        let (top, left) = (cell_name(self.rows.0, self.cols.0), cell_name(self.rows.1, self.cols.1));
        let width = u64::from(self.cols.1 - self.cols.0) + 1;
        if width > MAX_COLUMNS as u64 {
            let sheet = &self.sheet;
            return Err(too_large(
                format!(
                    "sheet '{sheet}' has a value in cell {at}, which makes the table {} columns wide (from {top}); at most {}. Delete what is in the cells far from the table (such as {at}) and upload again",
                    grouped(width, ','),
                    grouped(MAX_COLUMNS as u64, ',')
                ),
                format!(
                    "trang tính '{sheet}' có dữ liệu ở ô {at}, khiến bảng rộng {} cột (tính từ ô {top}); tối đa {} cột. Hãy xóa nội dung các ô nằm xa bảng (như ô {at}) rồi tải lên lại.",
                    grouped(width, '.'),
                    grouped(MAX_COLUMNS as u64, '.')
                ),
            ));
        }
        let area = (u64::from(self.rows.1 - self.rows.0) + 1) * width;
        if area > MAX_AREA {
            let sheet = &self.sheet;
            return Err(too_large(
                format!(
                    "sheet '{sheet}' has values from cell {top} to cell {left}: {} cells; at most {}. Delete what is in the cells far from the table, or save the sheet as CSV UTF-8 to load more",
                    grouped(area, ','),
                    grouped(MAX_AREA, ',')
                ),
                format!(
                    "trang tính '{sheet}' có dữ liệu từ ô {top} đến ô {left}: {} ô; tối đa {} ô. Hãy xóa nội dung các ô nằm xa bảng, hoặc lưu trang tính dưới dạng CSV UTF-8 để nạp dữ liệu lớn hơn.",
                    grouped(area, '.'),
                    grouped(MAX_AREA, '.')
                ),
            ));
        }
        self.cells.push((row, col, text));
        Ok(())
    }

    /// The sheet, with its merged ranges clipped to the cells that hold values (a merged title
    /// spanning the whole sheet covers only the columns and rows the data has).
    fn finish(mut self, merges: Vec<Dimensions>) -> Result<Sheet, ReadError> {
        if merges.len() > MAX_MERGES {
            return Err(too_large(
                format!("sheet '{}' has {} merged ranges; at most {MAX_MERGES}", self.sheet, merges.len()),
                format!("trang tính '{}' có {} vùng gộp ô; tối đa {MAX_MERGES}", self.sheet, merges.len()),
            ));
        }
        self.cells.sort_unstable_by_key(|&(r, c, _)| (r, c));
        let mut clipped = Vec::new();
        let mut covered = 0u64;
        if self.first.is_some() {
            for m in merges {
                let start = (m.start.0.max(self.rows.0), m.start.1.max(self.cols.0));
                let end = (m.end.0.min(self.rows.1), m.end.1.min(self.cols.1));
                if start.0 > end.0 || start.1 > end.1 {
                    continue;
                }
                covered += (u64::from(end.0 - start.0) + 1) * (u64::from(end.1 - start.1) + 1);
                if covered > MAX_AREA {
                    return Err(too_large(
                        format!("the merged ranges of sheet '{}' cover more than {MAX_AREA} cells", self.sheet),
                        format!("các vùng gộp ô của trang tính '{}' phủ hơn {MAX_AREA} ô", self.sheet),
                    ));
                }
                // The value comes from the range's own top-left cell, even if clipping moved it.
                clipped.push((Dimensions { start, end }, m.start));
            }
        }
        let lookup = |pos: (u32, u32), cells: &[(u32, u32, String)]| -> String {
            cells.binary_search_by_key(&pos, |&(r, c, _)| (r, c)).ok().map(|i| cells[i].2.clone()).unwrap_or_default()
        };
        let merges = clipped
            .into_iter()
            .filter_map(|(d, origin)| {
                let value = lookup(origin, &self.cells);
                (!value.is_empty()).then_some((d, value))
            })
            .collect::<Vec<_>>();
        // Each covered cell is written with the range's value: a long value merged over many
        // cells is that much text.
        let merged_text = merges.iter().fold(0u64, |sum, (d, v)| {
            let cells = (u64::from(d.end.0 - d.start.0) + 1) * (u64::from(d.end.1 - d.start.1) + 1);
            sum.saturating_add(cells.saturating_mul(v.len() as u64))
        });
        if self.text.saturating_add(merged_text) > MAX_TEXT_BYTES {
            return Err(too_large(
                format!(
                    "the merged ranges of sheet '{}' repeat their values into more than {} MB of text",
                    self.sheet,
                    MAX_TEXT_BYTES >> 20
                ),
                format!(
                    "các vùng gộp ô của trang tính '{}' lặp giá trị thành hơn {} MB dữ liệu; hãy bỏ gộp các ô lớn",
                    self.sheet,
                    MAX_TEXT_BYTES >> 20
                ),
            ));
        }
        Ok(Sheet { name: self.sheet, cells: self.cells, merges })
    }
}

impl Sheet {
    /// The sheet's rows from `from` (a 1-based sheet row; the first row with a value if `None`)
    /// to its last row with a value, each as wide as the values span, with each merged range's
    /// value in every cell it covers (so a merged heading names each of its columns). `None` for
    /// a sheet without values. Rows are made one at a time, as they are read.
    pub fn dense_rows(&self, from: Option<u32>) -> Result<Option<DenseRows<'_>>, ReadError> {
        let (Some(first), Some(last)) = (self.cells.first(), self.cells.last()) else { return Ok(None) };
        let (r0, r1) = (first.0, last.0);
        let c0 = self.cells.iter().map(|c| c.1).min().unwrap_or(0);
        let c1 = self.cells.iter().map(|c| c.1).max().unwrap_or(0);
        let start = match from {
            Some(h) if h > r0 && h - 1 <= r1 => h - 1,
            Some(h) => {
                let name = &self.name;
                return Err(ReadError {
                    code: "invalid_header_row",
                    message: format!("row {h} is outside sheet '{name}' (rows {}–{})", r0 + 1, r1 + 1),
                    message_vi: format!("dòng {h} nằm ngoài trang tính '{name}' (dòng {}–{})", r0 + 1, r1 + 1),
                    line: None,
                });
            }
            // The first row with something other than spaces.
            None => self.cells.iter().find(|c| !c.2.trim().is_empty()).map_or(r0, |c| c.0),
        };
        let mut merges: Vec<&(Dimensions, String)> = self.merges.iter().collect();
        merges.sort_unstable_by_key(|m| m.0.start.0);
        Ok(Some(DenseRows {
            cells: &self.cells,
            c0,
            width: (c1 - c0 + 1) as usize,
            row: start,
            last: r1,
            next_cell: self.cells.partition_point(|c| c.0 < start),
            merges,
            next_merge: 0,
            active: Vec::new(),
        }))
    }

    /// Write the sheet as CSV from its header row (see [`Sheet::dense_rows`]) to its last row
    /// with a value, every row as it is. Returns the sheet row of the header, line 1 of the CSV.
    pub fn write_csv(&self, header_row: Option<u32>, out: &Path) -> Result<u64, ReadError> {
        let io = |e: &dyn std::fmt::Display| ReadError {
            code: "io",
            message: e.to_string(),
            message_vi: e.to_string(),
            line: None,
        };
        let file = File::create(out).map_err(|e| io(&e))?;
        let mut w = csv::Writer::from_writer(std::io::BufWriter::new(file));
        let mut header = 1;
        for (i, (r, row)) in self.dense_rows(header_row)?.into_iter().flatten().enumerate() {
            if i == 0 {
                header = u64::from(r) + 1;
            }
            w.write_record(&row).map_err(|e| io(&e))?;
        }
        w.flush().map_err(|e| io(&e))?;
        Ok(header)
    }
}

/// The rows of a sheet, dense; see [`Sheet::dense_rows`].
pub struct DenseRows<'a> {
    cells: &'a [(u32, u32, String)],
    c0: u32,
    width: usize,
    row: u32,
    last: u32,
    next_cell: usize,
    merges: Vec<&'a (Dimensions, String)>,
    next_merge: usize,
    active: Vec<&'a (Dimensions, String)>,
}

impl Iterator for DenseRows<'_> {
    /// The 0-based sheet row and its cells.
    type Item = (u32, Vec<String>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.row > self.last {
            return None;
        }
        let r = self.row;
        self.row += 1;
        let mut row = vec![String::new(); self.width];
        while self.next_cell < self.cells.len() && self.cells[self.next_cell].0 == r {
            let (_, c, v) = &self.cells[self.next_cell];
            row[(c - self.c0) as usize].clone_from(v);
            self.next_cell += 1;
        }
        self.active.retain(|m| m.0.end.0 >= r);
        while self.next_merge < self.merges.len() && self.merges[self.next_merge].0.start.0 <= r {
            if self.merges[self.next_merge].0.end.0 >= r {
                self.active.push(self.merges[self.next_merge]);
            }
            self.next_merge += 1;
        }
        for (d, value) in &self.active {
            for c in d.start.1..=d.end.1 {
                row[(c - self.c0) as usize].clone_from(value);
            }
        }
        Some((r, row))
    }
}

/// A cell's value as text, as the checks read it.
pub fn cell_text(d: &Data) -> String {
    match d {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Float(f) => f.to_string(),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(_) => match d.as_datetime() {
            Some(t) if t.time() == chrono::NaiveTime::MIN => t.format("%Y-%m-%d").to_string(),
            Some(t) => t.format("%Y-%m-%dT%H:%M:%S").to_string(),
            None => String::new(),
        },
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Error(e) => format!("{e}"),
    }
}

/// Measure an ODS workbook's `content.xml` as calamine will expand it: every sheet's cells,
/// column and row repeats, and the text each cell holds (`<text:s text:c="…"/>` stands for that
/// many spaces), all before calamine allocates any of it.
fn measure_ods(path: &Path) -> Result<(), ReadError> {
    use quick_xml::events::Event;
    let file = File::open(path).map_err(|e| invalid(&e, &e))?;
    let mut zip = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| invalid(&e, &e))?;
    let content = zip.by_name("content.xml").map_err(|e| invalid(&e, &e))?;
    let mut reader = quick_xml::Reader::from_reader(BufReader::new(content));
    reader.config_mut().expand_empty_elements = true;
    let mut buf = Vec::new();
    let attr = |e: &quick_xml::events::BytesStart<'_>, name: &str| -> Option<u64> {
        e.attributes().flatten().find(|a| a.key.as_ref() == name).and_then(|a| a.value.trim().parse::<u64>().ok())
    };
    let has =
        |e: &quick_xml::events::BytesStart<'_>, name: &str| e.attributes().flatten().any(|a| a.key.as_ref() == name);
    let attr_bytes = |e: &quick_xml::events::BytesStart<'_>| -> u64 {
        e.attributes().flatten().filter(|a| a.key.as_ref().starts_with("office:")).map(|a| a.value.len() as u64).sum()
    };
    // The workbook so far, and the sheet being read.
    let (mut book_area, mut book_text) = (0u64, 0u64);
    let mut table = String::new();
    let mut rows = Vec::<(u64, u64, Option<(u64, u64)>, u64)>::new(); // (repeats, pushed, non-empty columns, text)
    let mut row_repeats = 0u64;
    let mut total_rows = 0u64;
    let (mut col, mut pending_empty, mut pushed, mut span, mut row_text) = (0u64, 0u64, 0u64, None::<(u64, u64)>, 0u64);
    let mut cell: Option<(u64, bool)> = None; // (column repeats, holds a value)
    let mut cell_text = 0u64;
    loop {
        buf.clear();
        match reader.read_event_into(&mut buf).map_err(|e| invalid(&e, &e))? {
            Event::Start(e) => match e.name().as_ref() {
                "table:table" => {
                    table = e
                        .attributes()
                        .flatten()
                        .find(|a| a.key.as_ref() == "table:name")
                        .map(|a| a.value.to_string())
                        .unwrap_or_default();
                    rows.clear();
                    total_rows = 0;
                }
                "table:table-row" => {
                    let wanted = attr(&e, "table:number-rows-repeated").unwrap_or(1);
                    row_repeats = wanted.min(u64::from(MAX_ROWS).saturating_sub(total_rows));
                    total_rows += row_repeats;
                    (col, pending_empty, pushed, span, row_text) = (0, 0, 0, None, 0);
                }
                "table:table-cell" | "table:covered-table-cell" => {
                    let repeats = attr(&e, "table:number-columns-repeated").unwrap_or(1);
                    let valued =
                        has(&e, "office:value-type") || has(&e, "table:formula") || has(&e, "calcext:value-type");
                    cell = Some((repeats, valued));
                    cell_text = attr_bytes(&e);
                }
                "text:s" if cell.is_some() => {
                    cell_text = cell_text.saturating_add(attr(&e, "text:c").unwrap_or(1));
                }
                "text:p" | "text:tab" | "text:line-break" if cell.is_some() => cell_text = cell_text.saturating_add(1),
                _ => {}
            },
            Event::Text(t) if cell.is_some() => cell_text = cell_text.saturating_add(t.len() as u64),
            Event::End(e) => match e.name().as_ref() {
                "table:table-cell" | "table:covered-table-cell" => {
                    let Some((repeats, valued)) = cell.take() else { continue };
                    let at = cell_name(
                        total_rows.saturating_sub(row_repeats).min(u64::from(u32::MAX)) as u32,
                        col.min(u64::from(u32::MAX)) as u32,
                    );
                    if cell_text > MAX_CELL_BYTES as u64 {
                        return Err(too_large(
                            format!("sheet '{table}', cell {at}: the value is longer than {} KB", MAX_CELL_BYTES >> 10),
                            format!("trang tính '{table}', ô {at}: giá trị dài quá {} KB", MAX_CELL_BYTES >> 10),
                        ));
                    }
                    // calamine caps each row at 16,384 columns.
                    let room = 16_384u64.saturating_sub(col);
                    let repeats = repeats.min(room);
                    if valued {
                        let empties = pending_empty.min(room);
                        pushed = pushed.saturating_add(empties + repeats.min(room - empties));
                        let first = col;
                        let last = col + repeats.saturating_sub(1);
                        span = Some(span.map_or((first, last), |(a, b)| (a.min(first), b.max(last))));
                        row_text = row_text.saturating_add(cell_text.saturating_mul(repeats));
                        pending_empty = 0;
                    } else {
                        pending_empty = pending_empty.saturating_add(repeats);
                    }
                    col = col.saturating_add(repeats);
                }
                "table:table-row" => {
                    rows.push((row_repeats, pushed, span, row_text));
                    let cells: u64 = rows.iter().map(|r| r.1).sum();
                    if cells > MAX_AREA {
                        return Err(too_large(
                            format!("sheet '{table}' has more than {MAX_AREA} cells once its repeats are spread out"),
                            format!("trang tính '{table}' có hơn {MAX_AREA} ô khi trải các ô lặp lại"),
                        ));
                    }
                }
                "table:table" => {
                    // The grid calamine builds: from the first to the last row with a value (every
                    // repeat in between), as wide as the widest.
                    let first = rows.iter().position(|r| r.2.is_some());
                    let last = rows.iter().rposition(|r| r.2.is_some());
                    if let (Some(first), Some(last)) = (first, last) {
                        let c0 = rows.iter().filter_map(|r| r.2).map(|s| s.0).min().unwrap_or(0);
                        let c1 = rows.iter().filter_map(|r| r.2).map(|s| s.1).max().unwrap_or(0);
                        let height: u64 = rows[first..=last].iter().map(|r| r.0).sum();
                        let area = height.saturating_mul(c1 - c0 + 1);
                        let text: u64 = rows[first..=last].iter().map(|r| r.3.saturating_mul(r.0)).sum();
                        book_area = book_area.saturating_add(area);
                        book_text = book_text.saturating_add(text);
                        if area > MAX_AREA || book_area > MAX_BOOK_AREA {
                            return Err(too_large(
                                format!(
                                    "sheet '{table}' spreads to {area} cells ({height} rows × {} columns) once its repeated rows and cells are laid out; at most {MAX_AREA} a sheet and {MAX_BOOK_AREA} a workbook",
                                    c1 - c0 + 1
                                ),
                                format!(
                                    "trang tính '{table}' trải ra {area} ô ({height} dòng × {} cột) khi xếp các dòng và ô lặp lại; tối đa {MAX_AREA} ô mỗi trang tính và {MAX_BOOK_AREA} ô mỗi tệp",
                                    c1 - c0 + 1
                                ),
                            ));
                        }
                        if book_text > MAX_TEXT_BYTES {
                            return Err(too_large(
                                format!(
                                    "the workbook holds more than {} MB of text once its repeated cells are laid out",
                                    MAX_TEXT_BYTES >> 20
                                ),
                                format!(
                                    "tệp bảng tính chứa hơn {} MB dữ liệu khi trải các ô lặp lại",
                                    MAX_TEXT_BYTES >> 20
                                ),
                            ));
                        }
                    }
                }
                _ => {}
            },
            Event::Eof => return Ok(()),
            _ => {}
        }
    }
}

/// Measure an XLS (BIFF) workbook as calamine will read it when it is opened: for every sheet
/// its declared dimensions (which calamine reserves), the span of its cells and of its formulas
/// (each made a dense grid), and the shared strings its cells copy.
fn measure_xls(path: &Path) -> Result<(), ReadError> {
    let mut book = cfb::open(path).map_err(|e| invalid(&e, &e))?;
    let stream = ["/Workbook", "/Book"]
        .into_iter()
        .find(|s| book.is_stream(s))
        .ok_or_else(|| invalid("no workbook stream", "không có luồng dữ liệu bảng tính"))?;
    let mut data = Vec::new();
    book.open_stream(stream).and_then(|mut s| s.read_to_end(&mut data)).map_err(|e| invalid(&e, &e))?;
    let mut sheets = Vec::new();
    let mut strings: Vec<u64> = Vec::new();
    for record in Records::new(&data) {
        let (typ, body, cont) = record?;
        match typ {
            0x0085 if body.len() >= 4 => sheets.push(u32::from_le_bytes([body[0], body[1], body[2], body[3]]) as usize),
            0x00FC => strings = sst_lengths(body, &cont),
            // The first sheet's BOF ends the workbook globals.
            0x000A => break,
            _ => {}
        }
    }
    if sheets.len() > MAX_SHEETS {
        return Err(too_large(
            format!("the workbook has {} sheets; at most {MAX_SHEETS}", sheets.len()),
            format!("tệp bảng tính có {} trang tính; tối đa {MAX_SHEETS}", sheets.len()),
        ));
    }
    let (mut book_area, mut book_text) = (0u64, 0u64);
    for (i, pos) in sheets.into_iter().enumerate() {
        let Some(stream) = data.get(pos..) else { continue };
        let name = format!("{}", i + 1);
        let mut cells = Span::default();
        let mut formulas = Span::default();
        let (mut declared, mut depth, mut seen_bof) = (0u64, 0usize, false);
        for record in Records::new(stream) {
            let (typ, r, _) = record?;
            if depth > 0 {
                match typ {
                    0x0809 => depth += 1,
                    0x000A => depth -= 1,
                    _ => {}
                }
                continue;
            }
            let u16_at = |i: usize| r.get(i..i + 2).map_or(0, |b| u32::from(u16::from_le_bytes([b[0], b[1]])));
            let u32_at = |i: usize| r.get(i..i + 4).map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
            match typ {
                0x0809 if seen_bof => depth += 1,
                0x0809 => seen_bof = true,
                0x000A => break,
                0x0200 => {
                    let (rf, rl, cf, cl) = match r.len() {
                        10 => (u16_at(0), u16_at(2), u16_at(4), u16_at(6)),
                        14 | 16 => (u32_at(0), u32_at(4), u16_at(8), u16_at(10)),
                        _ => continue,
                    };
                    let cf = if cf > 0xFF || cl < cf { 0 } else { cf };
                    if rl >= 1 && cl >= 1 {
                        // calamine takes rows rf..rl and columns cf..cl as given: an empty or
                        // backward range is a subtraction past zero.
                        if rl - 1 < rf || cl - 1 < cf {
                            return Err(invalid(
                                format!("sheet {name} declares its last row or column before its first"),
                                format!("trang tính thứ {name} khai báo dòng hoặc cột cuối trước dòng hoặc cột đầu"),
                            ));
                        }
                        declared = declared.max(u64::from(rl - rf) * u64::from(cl - cf));
                    }
                }
                0x0203 | 0x0204 | 0x00D6 | 0x0205 | 0x027E => cells.add(u16_at(0), u16_at(2), 32),
                0x00FD => {
                    let sst = strings.get(u32_at(6) as usize).copied().unwrap_or(0);
                    cells.add(u16_at(0), u16_at(2), sst)
                }
                0x00BD if r.len() >= 6 => {
                    let (row, first, last) = (u16_at(0), u16_at(2), u16_at(r.len() - 2));
                    if last < first {
                        return Err(invalid(
                            format!("sheet {name} has a cell run that ends before it starts"),
                            format!("trang tính thứ {name} có dãy ô kết thúc trước khi bắt đầu"),
                        ));
                    }
                    cells.add(row, first, 32);
                    cells.add(row, last, 32 * u64::from(last - first));
                }
                0x0006 => {
                    cells.add(u16_at(0), u16_at(2), 32);
                    formulas.add(u16_at(0), u16_at(2), r.len() as u64 * 8);
                }
                0x0207 => cells.text = cells.text.saturating_add(r.len() as u64 * 3),
                _ => {}
            }
        }
        for (what, area) in [("declared size", declared), ("cells", cells.area()), ("formulas", formulas.area())] {
            book_area = book_area.saturating_add(area);
            if area > MAX_AREA || book_area > MAX_BOOK_AREA {
                return Err(too_large(
                    format!(
                        "sheet {name} of the workbook spans {area} cells ({what}); at most {MAX_AREA} a sheet and {MAX_BOOK_AREA} a workbook (save it as .xlsx or CSV UTF-8)"
                    ),
                    format!(
                        "trang tính thứ {name} trải trên {area} ô; tối đa {MAX_AREA} ô mỗi trang tính và {MAX_BOOK_AREA} ô mỗi tệp (hãy lưu dưới dạng .xlsx hoặc CSV UTF-8)"
                    ),
                ));
            }
        }
        book_text = book_text.saturating_add(cells.text).saturating_add(formulas.text);
        if book_text > MAX_TEXT_BYTES {
            return Err(too_large(
                format!("the workbook's cells hold more than {} MB of text", MAX_TEXT_BYTES >> 20),
                format!("các ô của tệp bảng tính chứa hơn {} MB dữ liệu", MAX_TEXT_BYTES >> 20),
            ));
        }
    }
    Ok(())
}

/// The rectangle spanned by some cells, and the text they hold.
#[derive(Default)]
struct Span {
    rows: Option<(u32, u32)>,
    cols: (u32, u32),
    text: u64,
}

impl Span {
    fn add(&mut self, row: u32, col: u32, text: u64) {
        self.text = self.text.saturating_add(text);
        match self.rows {
            None => {
                self.rows = Some((row, row));
                self.cols = (col, col);
            }
            Some((a, b)) => {
                self.rows = Some((a.min(row), b.max(row)));
                self.cols = (self.cols.0.min(col), self.cols.1.max(col));
            }
        }
    }

    fn area(&self) -> u64 {
        self.rows.map_or(0, |(a, b)| (u64::from(b - a) + 1) * (u64::from(self.cols.1 - self.cols.0) + 1))
    }
}

/// BIFF records as calamine reads them: type, data, and the data of the CONTINUE records that
/// follow.
struct Records<'a> {
    stream: &'a [u8],
}

impl<'a> Records<'a> {
    fn new(stream: &'a [u8]) -> Records<'a> {
        Records { stream }
    }
}

type Record<'a> = (u16, &'a [u8], Vec<&'a [u8]>);

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        let header = |s: &[u8]| (u16::from_le_bytes([s[0], s[1]]), u16::from_le_bytes([s[2], s[3]]) as usize);
        if self.stream.len() < 4 {
            return if self.stream.is_empty() {
                None
            } else {
                Some(Err(invalid("a record is cut short", "một bản ghi bị cắt ngắn")))
            };
        }
        let (typ, len) = header(self.stream);
        let Some(body) = self.stream.get(4..4 + len) else {
            self.stream = &[];
            return Some(Err(invalid("a record is cut short", "một bản ghi bị cắt ngắn")));
        };
        self.stream = &self.stream[4 + len..];
        let mut cont = Vec::new();
        while self.stream.len() > 4 && header(self.stream).0 == 0x003C {
            let len = header(self.stream).1;
            let Some(part) = self.stream.get(4..4 + len) else {
                self.stream = &[];
                return Some(Err(invalid("a record is cut short", "một bản ghi bị cắt ngắn")));
            };
            cont.push(part);
            self.stream = &self.stream[4 + len..];
        }
        Some(Ok((typ, body, cont)))
    }
}

/// The most bytes each shared string can take once decoded (3 per character), walking the SST
/// record and its CONTINUE records as calamine does. A string it cannot walk ends the list:
/// calamine fails on the same place.
fn sst_lengths(body: &[u8], cont: &[&[u8]]) -> Vec<u64> {
    let mut parts = std::iter::once(body.get(8..).unwrap_or_default()).chain(cont.iter().copied());
    let mut data: &[u8] = parts.next().unwrap_or_default();
    let mut out = Vec::new();
    loop {
        if data.is_empty() {
            match parts.next() {
                Some(p) => data = p,
                None => return out,
            }
            continue;
        }
        if data.len() < 3 {
            return out;
        }
        let cch = usize::from(u16::from_le_bytes([data[0], data[1]]));
        let flags = data[2];
        data = &data[3..];
        let mut extra = 0usize;
        if flags & 0x8 != 0 {
            let Some(b) = data.get(..2) else { return out };
            extra += usize::from(u16::from_le_bytes([b[0], b[1]])) * 4;
            data = &data[2..];
        }
        if flags & 0x4 != 0 {
            let Some(b) = data.get(..4) else { return out };
            extra += i32::from_le_bytes([b[0], b[1], b[2], b[3]]).max(0) as usize;
            data = &data[4..];
        }
        let (mut left, mut wide) = (cch, flags & 0x1 != 0);
        while left > 0 {
            let per = if wide { 2 } else { 1 };
            let take = left.min(data.len() / per);
            data = &data[take * per..];
            left -= take;
            if left > 0 {
                match parts.next() {
                    Some(p) if !p.is_empty() => {
                        wide = p[0] & 0x1 != 0;
                        data = &p[1..];
                    }
                    _ => return out,
                }
            }
        }
        while extra > 0 {
            if data.is_empty() {
                match parts.next() {
                    Some(p) => data = p,
                    None => return out,
                }
                continue;
            }
            let n = extra.min(data.len());
            data = &data[n..];
            extra -= n;
        }
        out.push(cch as u64 * 3);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hostile;

    fn file(bytes: Vec<u8>) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("upload");
        std::fs::write(&path, bytes).unwrap();
        (dir, path)
    }

    /// Read the first sheet to CSV; the CSV text, or the error's code and message.
    fn to_csv(bytes: Vec<u8>) -> Result<String, (String, String)> {
        let (dir, path) = file(bytes);
        let started = std::time::Instant::now();
        let out = dir.path().join("out.csv");
        let r = read(&path, None).and_then(|s| s.write_csv(None, &out));
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "took {:?}", started.elapsed());
        r.map(|_| std::fs::read_to_string(&out).unwrap()).map_err(|e| (e.code.to_string(), e.message))
    }

    #[test]
    fn references_longer_than_any_sheet_are_refused_before_calamine_reads_them() {
        for cell in ["AAAAAAAAAAAA1", "A99999999999"] {
            for quote in ['"', '\''] {
                let rows =
                    format!("<row r=\"1\"><c r={quote}{cell}{quote} t=\"inlineStr\"><is><t>x</t></is></c></row>");
                let (code, message) = to_csv(hostile::xlsx(&rows, &[])).unwrap_err();
                assert_eq!(code, "invalid_spreadsheet", "{message}");
                assert!(message.contains(cell) && message.contains("XFD1048576"), "{message}");
            }
        }
        let merged = format!("<row r=\"1\">{}</row>", hostile::xlsx_cell("A1", "x"));
        assert!(to_csv(hostile::xlsx(&merged, &["A1:ZZZZZZZZ1"])).unwrap_err().1.contains("ZZZZZZZZ1"));
        // The last cell of a sheet is a reference like any other.
        let fine = format!("<row r=\"1048576\">{}</row>", hostile::xlsx_cell("XFD1048576", "y"));
        let read = to_csv(hostile::xlsx(&fine, &[]));
        assert_eq!(read, Ok("y\n".to_string()));
    }

    #[test]
    fn xlsx_cells_far_apart_are_refused_before_any_grid() {
        let rows = format!(
            "<row r=\"1\">{}</row><row r=\"1048576\">{}</row>",
            hostile::xlsx_cell("A1", "x"),
            hostile::xlsx_cell("XFD1048576", "y")
        );
        let (code, message) = to_csv(hostile::xlsx(&rows, &[])).unwrap_err();
        assert_eq!(code, "sheet_too_large");
        assert!(message.contains("A1") && message.contains("XFD1048576"), "{message}");
        // Far in rows only: the area bound.
        let rows = format!(
            "<row r=\"1\">{}{}</row><row r=\"1048576\">{}</row>",
            hostile::xlsx_cell("A1", "x"),
            hostile::xlsx_cell("Z1", "x"),
            hostile::xlsx_cell("A1048576", "y")
        );
        assert_eq!(to_csv(hostile::xlsx(&rows, &[])).unwrap_err().0, "sheet_too_large");
    }

    #[test]
    fn a_merge_over_the_whole_sheet_covers_only_the_data() {
        let rows = format!(
            "<row r=\"1\">{}</row><row r=\"2\">{}{}</row><row r=\"3\">{}{}</row>",
            hostile::xlsx_cell("A1", "Báo cáo"),
            hostile::xlsx_cell("A2", "ma"),
            hostile::xlsx_cell("B2", "ten"),
            hostile::xlsx_cell("A3", "01"),
            hostile::xlsx_cell("B3", "Hà Nội")
        );
        let csv = to_csv(hostile::xlsx(&rows, &["A1:XFD1048576"])).unwrap();
        assert_eq!(csv.lines().count(), 3, "{csv}");
        assert_eq!(csv.lines().next().unwrap(), "Báo cáo,Báo cáo");
        // An ordinary merged title over two columns.
        let csv = to_csv(hostile::xlsx(&rows, &["A1:B1"])).unwrap();
        assert_eq!(csv, "Báo cáo,Báo cáo\nma,ten\n01,Hà Nội\n");
    }

    #[test]
    fn declared_counts_long_merges_and_broken_references_are_refused() {
        // 4 billion shared strings declared for one.
        let xlsx = hostile::xlsx(&format!("<row r=\"1\">{}</row>", hostile::xlsx_cell("A1", "x")), &[]);
        let with_sst = hostile::with_part(
            &xlsx,
            "xl/sharedStrings.xml",
            "<?xml version=\"1.0\"?><sst xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\" count=\"4000000000\" uniqueCount=\"4000000000\"><si><t>a</t></si></sst>",
        );
        assert_eq!(to_csv(with_sst).unwrap_err().0, "sheet_too_large");
        // A long value merged over many cells.
        let long = "y".repeat(500_000);
        let rows = format!(
            "<row r=\"1\">{}</row><row r=\"3000\"><c r=\"A3000\"><v>1</v></c><c r=\"ZZ3000\"><v>2</v></c></row>",
            hostile::xlsx_cell("A1", &long)
        );
        assert_eq!(to_csv(hostile::xlsx(&rows, &["A1:ZZ3000"])).unwrap_err().0, "sheet_too_large");
        // A reference past any column: refused, not a panic.
        let rows = format!("<row r=\"1\">{}</row>", hostile::xlsx_cell("ZZZZZZZZ1", "x"));
        let code = to_csv(hostile::xlsx(&rows, &[])).unwrap_err().0;
        assert!(code == "invalid_spreadsheet" || code == "sheet_too_large", "{code}");
    }

    #[test]
    fn ods_repeats_are_measured_before_calamine_expands_them() {
        let wide = format!(
            "<table:table-row table:number-rows-repeated=\"1000000\">{}</table:table-row>",
            hostile::ods_cell("x", 16384)
        );
        assert_eq!(to_csv(hostile::ods(&wide)).unwrap_err().0, "sheet_too_large");
        // Many distinct rows, each a full repeated row: the cells calamine pushes.
        let rows: String = (0..2000)
            .map(|_| format!("<table:table-row>{}</table:table-row>", hostile::ods_cell("x", 16384)))
            .collect();
        assert_eq!(to_csv(hostile::ods(&rows)).unwrap_err().0, "sheet_too_large");
        let spaces = "<table:table-row><table:table-cell office:value-type=\"string\"><text:p>a<text:s text:c=\"1000000000\"/></text:p></table:table-cell></table:table-row>";
        assert_eq!(to_csv(hostile::ods(spaces)).unwrap_err().0, "sheet_too_large");
        let fine = format!(
            "<table:table-row>{}{}</table:table-row><table:table-row table:number-rows-repeated=\"3\">{}</table:table-row>",
            hostile::ods_cell("ma", 1),
            hostile::ods_cell("ten", 1),
            hostile::ods_cell("x", 2)
        );
        assert_eq!(to_csv(hostile::ods(&fine)).unwrap(), "ma,ten\nx,x\nx,x\nx,x\n");
    }

    #[test]
    fn xls_dimensions_and_spans_are_measured_before_calamine_reserves_them() {
        let ok = hostile::xls(&[hostile::xls_number(0, 0, 1.0), hostile::xls_number(1, 1, 2.5)]);
        assert_eq!(to_csv(ok).unwrap(), "1,\n,2.5\n");
        let declared =
            hostile::xls(&[hostile::xls_dimensions(0, 4_000_000_000, 0, 60_000), hostile::xls_number(0, 0, 1.0)]);
        assert_eq!(to_csv(declared).unwrap_err().0, "sheet_too_large");
        let backwards = hostile::xls(&[hostile::xls_dimensions(10, 2, 0, 1), hostile::xls_number(0, 0, 1.0)]);
        assert_eq!(to_csv(backwards).unwrap_err().0, "invalid_spreadsheet");
        // Found by the fuzzer: no columns at all (first column = last).
        let empty = hostile::xls(&[hostile::xls_dimensions(0, 2, 5, 5), hostile::xls_number(0, 0, 1.0)]);
        assert_eq!(to_csv(empty).unwrap_err().0, "invalid_spreadsheet");
        let far = hostile::xls(&[hostile::xls_number(0, 0, 1.0), hostile::xls_number(65_535, 65_535, 1.0)]);
        assert_eq!(to_csv(far).unwrap_err().0, "sheet_too_large");
    }

    #[test]
    fn cells_are_named_as_in_excel() {
        assert_eq!(column_name(0), "A");
        assert_eq!(column_name(25), "Z");
        assert_eq!(column_name(26), "AA");
        assert_eq!(column_name(16_383), "XFD");
        assert_eq!(cell_name(1_048_575, 16_383), "XFD1048576");
        assert_eq!(grouped(16_384, '.'), "16.384");
        assert_eq!(grouped(20_000_000, ','), "20,000,000");
        assert_eq!(grouped(999, '.'), "999");
    }
}
