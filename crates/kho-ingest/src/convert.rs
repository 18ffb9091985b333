//! Spreadsheets (XLSX, XLS, XLSB, ODS), JSON (an array of objects, or one object per line) and
//! Parquet become CSV before checking, so that every format goes through the same reader and rules.
//!
//! In a spreadsheet the steward picks the sheet and the header row (by default the first sheet
//! and its first non-empty row); merged cells give their value to every cell they cover, so a
//! merged heading names each of its columns; formula cells contribute their computed value, and
//! a formula error ("#DIV/0!") stays visible as text for the rules to reject.

use std::io::{BufRead, Read};
use std::path::Path;

use calamine::{Data, DataType, Reader};
use serde_json::Value;

use crate::read::ReadError;

#[derive(Debug, Clone, Default)]
pub struct SheetOptions {
    /// Sheet name; the first sheet if none.
    pub sheet: Option<String>,
    /// 1-based row of the column names; the first non-empty row if none.
    pub header_row: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Spreadsheet,
    Json,
    Parquet,
}

fn err(code: &'static str, en: String, vi: String) -> ReadError {
    ReadError { code, message: en, message_vi: vi, line: None }
}

/// Tell the format from the file's first bytes (names lie; bytes do not).
pub fn detect(path: &Path) -> Result<Format, ReadError> {
    let mut head = [0u8; 8];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| err("io", format!("cannot read the file: {e}"), format!("không đọc được tệp: {e}")))?;
    let head = &head[..n];
    if head.starts_with(b"PAR1") {
        return Ok(Format::Parquet);
    }
    if head.starts_with(b"PK\x03\x04") || head.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) {
        return Ok(Format::Spreadsheet);
    }
    let first = head.iter().find(|b| !(b.is_ascii_whitespace() || [0xEF, 0xBB, 0xBF].contains(*b)));
    Ok(match first {
        Some(b'[') | Some(b'{') => Format::Json,
        _ => Format::Csv,
    })
}

fn cell_text(d: &Data) -> String {
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

/// Convert a spreadsheet sheet to CSV at `out`; returns the sheet used and the sheet row
/// (1-based) of the header, which is line 1 of the CSV.
pub fn spreadsheet_to_csv(path: &Path, opts: &SheetOptions, out: &Path) -> Result<(String, u64), ReadError> {
    let mut book = calamine::open_workbook_auto(path).map_err(|e| {
        err(
            "invalid_spreadsheet",
            format!("the spreadsheet cannot be read: {e}"),
            format!("không đọc được tệp bảng tính: {e}"),
        )
    })?;
    let names = book.sheet_names();
    let sheet = match &opts.sheet {
        Some(s) if names.contains(s) => s.clone(),
        Some(s) => {
            return Err(err(
                "unknown_sheet",
                format!("the workbook has no sheet '{s}'; its sheets are: {}", names.join(", ")),
                format!("tệp không có trang tính '{s}'; các trang tính: {}", names.join(", ")),
            ));
        }
        None => names.first().cloned().ok_or_else(|| {
            err("empty_file", "the workbook has no sheet".into(), "tệp không có trang tính nào".into())
        })?,
    };
    let range = book.worksheet_range(&sheet).map_err(|e| {
        err(
            "invalid_spreadsheet",
            format!("sheet '{sheet}' cannot be read: {e}"),
            format!("không đọc được trang tính '{sheet}': {e}"),
        )
    })?;
    let merged = match &mut book {
        calamine::Sheets::Xlsx(x) => x.merge_cells_by_sheet_name(&sheet).unwrap_or_default(),
        calamine::Sheets::Xls(x) => x.merge_cells_by_sheet_name(&sheet).unwrap_or_default(),
        _ => Vec::new(),
    };
    let (r0, c0) = range.start().unwrap_or((0, 0));
    let (height, width) = range.get_size();
    let mut grid: Vec<Vec<String>> = range.rows().map(|r| r.iter().map(cell_text).collect()).collect();
    // Merged cells: every covered cell takes the top-left value.
    for m in &merged {
        let (top, left) = (m.start.0.saturating_sub(r0) as usize, m.start.1.saturating_sub(c0) as usize);
        let Some(value) = grid.get(top).and_then(|r| r.get(left)).cloned() else { continue };
        for r in m.start.0..=m.end.0 {
            for c in m.start.1..=m.end.1 {
                let (r, c) = ((r.saturating_sub(r0)) as usize, (c.saturating_sub(c0)) as usize);
                if let Some(cell) = grid.get_mut(r).and_then(|row| row.get_mut(c)) {
                    *cell = value.clone();
                }
            }
        }
    }
    let header = match opts.header_row {
        Some(h) if h as usize > r0 as usize && (h as usize - 1 - r0 as usize) < height => h as usize - 1 - r0 as usize,
        Some(h) => {
            return Err(err(
                "invalid_header_row",
                format!("row {h} is outside sheet '{sheet}' (rows {}–{})", r0 + 1, r0 as usize + height),
                format!("dòng {h} nằm ngoài trang tính '{sheet}' (dòng {}–{})", r0 + 1, r0 as usize + height),
            ));
        }
        None => grid.iter().position(|r| r.iter().any(|c| !c.trim().is_empty())).unwrap_or(0),
    };
    let file = std::fs::File::create(out).map_err(|e| err("io", e.to_string(), e.to_string()))?;
    let mut w = csv::Writer::from_writer(std::io::BufWriter::new(file));
    let mut rows: Vec<&Vec<String>> = grid.iter().skip(header).collect();
    while rows.last().is_some_and(|r| r.iter().all(|c| c.trim().is_empty())) {
        rows.pop();
    }
    for r in rows {
        let mut r = r.clone();
        r.resize(width, String::new());
        w.write_record(&r).map_err(|e| err("io", e.to_string(), e.to_string()))?;
    }
    w.flush().map_err(|e| err("io", e.to_string(), e.to_string()))?;
    Ok((sheet, r0 as u64 + header as u64 + 1))
}

/// One JSON object with its position (item or line number), or why it is not one.
type JsonRow = Result<(u64, serde_json::Map<String, Value>), ReadError>;

fn json_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// Convert JSON (an array of objects, or one object per line) to CSV at `out`. Columns are the
/// keys in the order first met.
pub fn json_to_csv(path: &Path, out: &Path) -> Result<(), ReadError> {
    let bad = |line: Option<u64>, e: String| ReadError {
        code: "invalid_json",
        message: format!("the file is not JSON rows: {e}"),
        message_vi: format!("tệp không phải dữ liệu JSON dạng dòng: {e}"),
        line,
    };
    let open =
        || std::fs::File::open(path).map(std::io::BufReader::new).map_err(|e| err("io", e.to_string(), e.to_string()));
    let mut first = [0u8; 1];
    let mut r = open()?;
    let array = loop {
        if r.read(&mut first).map_err(|e| err("io", e.to_string(), e.to_string()))? == 0 {
            return Err(err("empty_file", "the file is empty".into(), "tệp rỗng".into()));
        }
        if !first[0].is_ascii_whitespace() && ![0xEF, 0xBB, 0xBF].contains(&first[0]) {
            break first[0] == b'[';
        }
    };
    let objects: Box<dyn Iterator<Item = JsonRow>> = if array {
        let all: Vec<Value> =
            serde_json::from_reader(open()?).map_err(|e| bad(Some(e.line() as u64), e.to_string()))?;
        Box::new(all.into_iter().enumerate().map(move |(i, v)| match v {
            Value::Object(o) => Ok((i as u64 + 1, o)),
            _ => Err(bad(None, format!("item {} is not an object", i + 1))),
        }))
    } else {
        Box::new(open()?.lines().enumerate().filter(|(_, l)| l.as_ref().map_or(true, |l| !l.trim().is_empty())).map(
            |(i, l)| {
                let l = l.map_err(|e| err("io", e.to_string(), e.to_string()))?;
                match serde_json::from_str::<Value>(l.trim_start_matches('\u{feff}')) {
                    Ok(Value::Object(o)) => Ok((i as u64 + 1, o)),
                    Ok(_) => Err(bad(Some(i as u64 + 1), "the line is not an object".into())),
                    Err(e) => Err(bad(Some(i as u64 + 1), e.to_string())),
                }
            },
        ))
    };
    // Two passes would read the file twice; rows are buffered per key set instead: collect the
    // keys while writing rows in first-key order, then rewrite the header if keys appeared late.
    let mut keys: Vec<String> = Vec::new();
    let mut rows: Vec<Vec<String>> = Vec::new();
    for item in objects {
        let (_, o) = item?;
        for k in o.keys() {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
        rows.push(keys.iter().map(|k| o.get(k).map(json_text).unwrap_or_default()).collect());
    }
    let file = std::fs::File::create(out).map_err(|e| err("io", e.to_string(), e.to_string()))?;
    let mut w = csv::Writer::from_writer(std::io::BufWriter::new(file));
    w.write_record(&keys).map_err(|e| err("io", e.to_string(), e.to_string()))?;
    for mut r in rows {
        r.resize(keys.len(), String::new());
        w.write_record(&r).map_err(|e| err("io", e.to_string(), e.to_string()))?;
    }
    w.flush().map_err(|e| err("io", e.to_string(), e.to_string()))?;
    Ok(())
}

/// The file as CSV: itself, or a converted copy at `scratch`; and how many lines to add to a
/// CSV line number to get the row in the original (the sheet row of a spreadsheet).
pub fn as_csv(path: &Path, opts: &SheetOptions, scratch: &Path) -> Result<(std::path::PathBuf, u64), ReadError> {
    match detect(path)? {
        Format::Csv => Ok((path.to_path_buf(), 0)),
        Format::Spreadsheet => {
            spreadsheet_to_csv(path, opts, scratch).map(|(_, header)| (scratch.to_path_buf(), header - 1))
        }
        Format::Json => json_to_csv(path, scratch).map(|_| (scratch.to_path_buf(), 0)),
        Format::Parquet => parquet_to_csv(path, scratch).map(|_| (scratch.to_path_buf(), 0)),
    }
}

/// Open any accepted file as a CSV source (converting it to `scratch` first if it is not CSV),
/// with the number of sheet rows above the header. Converted files are numbered by record, so
/// that a cell holding a line break does not shift the row numbers after it.
pub fn open(path: &Path, opts: &SheetOptions, scratch: &Path) -> Result<(crate::CsvSource, u64), ReadError> {
    let (csv, offset) = as_csv(path, opts, scratch)?;
    let source = crate::CsvSource::open(&csv)?;
    Ok((if csv == path { source } else { source.numbered_by_record() }, offset))
}

/// Convert a Parquet file to CSV, batch by batch (memory stays at one row group's worth).
/// Dates and times are written in ISO form, which the checks read back; nested columns (lists,
/// structs) have no place in a flat table and are refused by name.
pub fn parquet_to_csv(path: &Path, out: &Path) -> Result<u64, ReadError> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let invalid = |e: &dyn std::fmt::Display| {
        err(
            "invalid_parquet",
            format!("the Parquet file cannot be read: {e}"),
            format!("không đọc được tệp Parquet: {e}"),
        )
    };
    let file = std::fs::File::open(path).map_err(|e| invalid(&e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| invalid(&e))?;
    for f in builder.schema().fields() {
        if f.data_type().is_nested() {
            return Err(err(
                "nested_column",
                format!("column '{}' holds nested values ({}); load flat tables only", f.name(), f.data_type()),
                format!("cột '{}' chứa giá trị lồng nhau ({}); chỉ nạp được bảng phẳng", f.name(), f.data_type()),
            ));
        }
    }
    let reader = builder.with_batch_size(8192).build().map_err(|e| invalid(&e))?;
    let sink = std::fs::File::create(out).map_err(|e| invalid(&e))?;
    let mut writer = arrow::csv::WriterBuilder::new().with_header(true).build(std::io::BufWriter::new(sink));
    let mut rows = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| invalid(&e))?;
        rows += batch.num_rows() as u64;
        writer.write(&batch).map_err(|e| invalid(&e))?;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parquet_in_any_codec_becomes_csv_and_nested_columns_are_refused() {
        use arrow::array::{ArrayRef, Date32Array, Float64Array, Int64Array, ListArray, StringArray};
        use arrow::datatypes::Int32Type;
        use parquet::basic::{BrotliLevel, Compression, GzipLevel, ZstdLevel};
        use std::sync::Arc;
        let dir = tempfile::tempdir().unwrap();
        let write_with = |name: &str, cols: Vec<(&str, ArrayRef)>, codec: Compression| {
            let batch = arrow::record_batch::RecordBatch::try_from_iter(cols).unwrap();
            let path = dir.path().join(name);
            let props = parquet::file::properties::WriterProperties::builder().set_compression(codec).build();
            let mut w = parquet::arrow::ArrowWriter::try_new(
                std::fs::File::create(&path).unwrap(),
                batch.schema(),
                Some(props),
            )
            .unwrap();
            w.write(&batch).unwrap();
            w.close().unwrap();
            path
        };
        let write = |name: &str, cols| write_with(name, cols, Compression::UNCOMPRESSED);
        // Tools write different codecs by default (pyarrow and DuckDB Snappy, polars ZSTD): all read.
        let out = dir.path().join("a.csv");
        for codec in [
            Compression::UNCOMPRESSED,
            Compression::SNAPPY,
            Compression::LZ4_RAW,
            Compression::ZSTD(ZstdLevel::default()),
            Compression::GZIP(GzipLevel::default()),
            Compression::BROTLI(BrotliLevel::default()),
        ] {
            let flat = write_with(
                "a.parquet",
                vec![
                    ("ma_tinh", Arc::new(StringArray::from(vec![Some("01"), None])) as ArrayRef),
                    ("dan_so", Arc::new(Int64Array::from(vec![8_718_000, 555_809])) as ArrayRef),
                    ("dien_tich", Arc::new(Float64Array::from(vec![3359.8, 6700.4])) as ArrayRef),
                    ("ngay", Arc::new(Date32Array::from(vec![19723, 19724])) as ArrayRef),
                ],
                codec,
            );
            assert_eq!(detect(&flat).unwrap(), Format::Parquet);
            let (csv, offset) = as_csv(&flat, &SheetOptions::default(), &out).unwrap();
            assert_eq!(offset, 0);
            assert_eq!(
                std::fs::read_to_string(csv).unwrap(),
                "ma_tinh,dan_so,dien_tich,ngay\n01,8718000,3359.8,2024-01-01\n,555809,6700.4,2024-01-02\n",
                "{codec}"
            );
        }
        let list = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![Some(vec![Some(1)])]);
        let nested = write("b.parquet", vec![("ds", Arc::new(list) as ArrayRef)]);
        let e = as_csv(&nested, &SheetOptions::default(), &out).unwrap_err();
        assert_eq!(e.code, "nested_column");
        assert!(e.message.contains("'ds'"), "{}", e.message);
        std::fs::write(dir.path().join("c.parquet"), b"PAR1 not really").unwrap();
        let e = as_csv(&dir.path().join("c.parquet"), &SheetOptions::default(), &out).unwrap_err();
        assert_eq!(e.code, "invalid_parquet");
    }

    #[test]
    fn xlsx_with_sheets_merged_header_and_formula_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("book.xlsx");
        let mut book = rust_xlsxwriter::Workbook::new();
        let notes = book.add_worksheet();
        notes.set_name("Ghi chú").unwrap();
        notes.write_string(0, 0, "Bảng kê cơ sở y tế").unwrap();
        let data = book.add_worksheet();
        data.set_name("Dữ liệu").unwrap();
        let fmt = rust_xlsxwriter::Format::new();
        data.merge_range(0, 0, 0, 1, "Báo cáo quý 3", &fmt).unwrap();
        for (c, h) in ["ma_co_so", "ten_co_so", "so_giuong", "ty_le"].iter().enumerate() {
            data.write_string(1, c as u16, *h).unwrap();
        }
        data.write_string(2, 0, "BV01").unwrap();
        data.write_string(2, 1, "Bệnh viện tỉnh").unwrap();
        data.write_number(2, 2, 500).unwrap();
        data.write_formula(2, 3, rust_xlsxwriter::Formula::new("=C3/0").set_result("#DIV/0!")).unwrap();
        data.write_string(3, 0, "BV02").unwrap();
        data.write_string(3, 1, "Trạm y tế").unwrap();
        data.write_number(3, 2, 12.5).unwrap();
        data.write_formula(3, 3, rust_xlsxwriter::Formula::new("=C4/100").set_result("0.125")).unwrap();
        book.save(&path).unwrap();

        let out = dir.path().join("out.csv");
        let opts = SheetOptions { sheet: Some("Dữ liệu".into()), header_row: Some(2) };
        assert_eq!(spreadsheet_to_csv(&path, &opts, &out).unwrap(), ("Dữ liệu".to_string(), 2));
        let csv = std::fs::read_to_string(&out).unwrap();
        assert_eq!(
            csv,
            "ma_co_so,ten_co_so,so_giuong,ty_le\nBV01,Bệnh viện tỉnh,500,#DIV/0!\nBV02,Trạm y tế,12.5,0.125\n"
        );
        // The merged title fills both cells it covers when that row is chosen as the header.
        let opts = SheetOptions { sheet: Some("Dữ liệu".into()), header_row: None };
        spreadsheet_to_csv(&path, &opts, &out).unwrap();
        assert!(std::fs::read_to_string(&out).unwrap().starts_with("Báo cáo quý 3,Báo cáo quý 3,,\n"));
        // Unknown sheet: the message lists the sheets.
        let e =
            spreadsheet_to_csv(&path, &SheetOptions { sheet: Some("X".into()), header_row: None }, &out).unwrap_err();
        assert_eq!(e.code, "unknown_sheet");
        assert!(e.message.contains("Ghi chú, Dữ liệu"));
        assert_eq!(detect(&path).unwrap(), Format::Spreadsheet);
    }

    #[test]
    fn json_array_and_lines() {
        let dir = tempfile::tempdir().unwrap();
        let (a, l, out) = (dir.path().join("a.json"), dir.path().join("l.ndjson"), dir.path().join("o.csv"));
        std::fs::write(&a, r#"[{"ma": "01", "so": 5}, {"ma": "02", "ghi_chu": "có", "so": null}]"#).unwrap();
        json_to_csv(&a, &out).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "ma,so,ghi_chu\n01,5,\n02,,có\n");
        std::fs::write(&l, "{\"ma\": \"01\", \"ok\": true}\n\n{\"ma\": \"02\", \"ds\": [1,2]}\n").unwrap();
        json_to_csv(&l, &out).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "ma,ok,ds\n01,true,\n02,,\"[1,2]\"\n");
        std::fs::write(&l, "{\"ma\": 1}\n{oops}\n").unwrap();
        let e = json_to_csv(&l, &out).unwrap_err();
        assert_eq!((e.code, e.line), ("invalid_json", Some(2)));
        assert_eq!(detect(&a).unwrap(), Format::Json);
    }
}
