//! Spreadsheets (XLSX, XLS, XLSB, ODS), JSON (an array of objects, or one object per line) and
//! Parquet become CSV before checking, so that every format goes through the same reader and rules.
//!
//! In a spreadsheet the steward may pick the sheet and the header row (by default the first
//! sheet, and the table found in it as [`crate::layout`] describes); merged cells give their
//! value to every cell they cover, so a merged heading names each of its columns; formula cells
//! contribute their computed value, and a formula error ("#DIV/0!") stays visible as text for
//! the rules to reject.

use std::io::{BufRead, Read};
use std::path::Path;

use serde_json::Value;

use crate::read::{MAX_CELL_BYTES, MAX_COLUMNS, ReadError};

#[derive(Debug, Clone, Default)]
pub struct SheetOptions {
    /// Sheet name; the first sheet if none.
    pub sheet: Option<String>,
    /// 1-based row of the column names; found by [`crate::layout`] if none.
    pub header_row: Option<u32>,
    /// The columns the table should have, which tell its header row apart from titles.
    pub expected: Vec<crate::layout::Expected>,
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

/// Convert the table of a spreadsheet's sheet to CSV at `out`; returns the sheet used and the
/// table found (each record's sheet row, and what was left out). The sheet is read within the
/// bounds of [`crate::sheet`].
pub fn spreadsheet_to_csv(
    path: &Path,
    opts: &SheetOptions,
    out: &Path,
) -> Result<(String, crate::layout::Table), ReadError> {
    let sheet = crate::sheet::read(path, opts.sheet.as_deref())?;
    let table = crate::layout::write_table(&sheet, opts.header_row, &opts.expected, out)?;
    Ok((sheet.name, table))
}

fn json_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

fn bad_json(line: Option<u64>, e: String) -> ReadError {
    ReadError {
        code: "invalid_json",
        message: format!("the file is not JSON rows: {e}"),
        message_vi: format!("tệp không phải dữ liệu JSON dạng dòng: {e}"),
        line,
    }
}

/// Hand every object of a JSON file (an array of objects, or one object per line) to `each`
/// with its item or line number, one at a time: the file is never held in memory whole.
fn each_json_object(
    path: &Path,
    mut each: impl FnMut(u64, serde_json::Map<String, Value>) -> Result<(), ReadError>,
) -> Result<(), ReadError> {
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
    if !array {
        for (i, l) in open()?.lines().enumerate() {
            let line = i as u64 + 1;
            // Bytes that are not UTF-8 are the file's problem, not the server's.
            let l = l.map_err(|e| match e.kind() {
                std::io::ErrorKind::InvalidData => bad_json(Some(line), "the line is not UTF-8 text".into()),
                _ => err("io", e.to_string(), e.to_string()),
            })?;
            if l.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Value>(l.trim_start_matches('\u{feff}')) {
                Ok(Value::Object(o)) => each(line, o)?,
                Ok(_) => return Err(bad_json(Some(line), "the line is not an object".into())),
                Err(e) => return Err(bad_json(Some(line), e.to_string())),
            }
        }
        return Ok(());
    }
    // The array's items are taken one by one as the parser reaches them.
    struct Items<'a, F> {
        each: &'a mut F,
        stopped: &'a mut Option<ReadError>,
    }
    impl<'de, F: FnMut(u64, serde_json::Map<String, Value>) -> Result<(), ReadError>> serde::de::Visitor<'de>
        for Items<'_, F>
    {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array of objects")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let mut i = 0u64;
            while let Some(v) = seq.next_element::<Value>()? {
                i += 1;
                let result = match v {
                    Value::Object(o) => (self.each)(i, o),
                    _ => Err(bad_json(None, format!("item {i} is not an object"))),
                };
                if let Err(e) = result {
                    *self.stopped = Some(e);
                    return Err(serde::de::Error::custom("stopped"));
                }
            }
            Ok(())
        }
    }
    let mut stopped = None;
    let mut de = serde_json::Deserializer::from_reader(open()?);
    let parsed = serde::Deserializer::deserialize_seq(&mut de, Items { each: &mut each, stopped: &mut stopped })
        .and_then(|()| de.end());
    match (stopped, parsed) {
        (Some(e), _) => Err(e),
        (None, Err(e)) => Err(bad_json(Some(e.line() as u64), e.to_string())),
        (None, Ok(())) => Ok(()),
    }
}

/// Convert JSON (an array of objects, or one object per line) to CSV at `out`. Columns are the
/// keys in the order first met. Two passes over the file (the keys, then the rows), so that
/// memory holds one object at a time, whatever the file's size.
pub fn json_to_csv(path: &Path, out: &Path) -> Result<(), ReadError> {
    let mut keys: Vec<String> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    each_json_object(path, |at, o| {
        for k in o.keys() {
            if !index.contains_key(k) {
                if keys.len() == MAX_COLUMNS {
                    return Err(ReadError {
                        code: "too_many_columns",
                        message: format!("object {at} brings the keys to more than {MAX_COLUMNS} columns"),
                        message_vi: format!("đối tượng thứ {at} làm số cột vượt quá {MAX_COLUMNS}"),
                        line: Some(at),
                    });
                }
                index.insert(k.clone(), keys.len());
                keys.push(k.clone());
            }
        }
        Ok(())
    })?;
    let file = std::fs::File::create(out).map_err(|e| err("io", e.to_string(), e.to_string()))?;
    let mut w = csv::Writer::from_writer(std::io::BufWriter::new(file));
    w.write_record(&keys).map_err(|e| err("io", e.to_string(), e.to_string()))?;
    let mut row = vec![String::new(); keys.len()];
    each_json_object(path, |at, o| {
        row.iter_mut().for_each(String::clear);
        for (k, v) in &o {
            let text = json_text(v);
            if text.len() > MAX_CELL_BYTES {
                return Err(ReadError {
                    code: "cell_too_large",
                    message: format!("object {at}, key '{k}': the value is longer than {} KB", MAX_CELL_BYTES >> 10),
                    message_vi: format!("đối tượng thứ {at}, khóa '{k}': giá trị dài quá {} KB", MAX_CELL_BYTES >> 10),
                    line: Some(at),
                });
            }
            if let Some(&i) = index.get(k) {
                row[i] = text;
            }
        }
        w.write_record(&row).map_err(|e| err("io", e.to_string(), e.to_string()))
    })?;
    w.flush().map_err(|e| err("io", e.to_string(), e.to_string()))?;
    Ok(())
}

/// A file as CSV: itself, or a converted copy.
#[derive(Debug)]
pub struct Converted {
    pub csv: std::path::PathBuf,
    /// For a sheet, the sheet row of each record (the header first).
    pub rows: Option<Vec<u64>>,
    /// What the conversion left out or changed.
    pub notes: Vec<crate::Note>,
}

/// Bytes read to tell a legacy encoding from UTF-8.
const SAMPLE_BYTES: usize = 256 << 10;

/// A CSV typed in a legacy Vietnamese 8-bit encoding (TCVN3 or VNI, often saved by old office
/// software and sent as if it were UTF-8), converted line by line to UTF-8 at `out`. `None`,
/// and nothing written, for UTF-8 and UTF-16 files and for 8-bit text that neither encoding
/// explains (the CSV reader then names the first byte that is not UTF-8).
fn legacy_csv(path: &Path, out: &Path) -> Result<Option<crate::legacy::Legacy>, ReadError> {
    let io = |e: std::io::Error| err("io", format!("cannot read the file: {e}"), format!("không đọc được tệp: {e}"));
    let mut file = std::io::BufReader::new(std::fs::File::open(path).map_err(io)?);
    let mut sample = Vec::with_capacity(SAMPLE_BYTES);
    (&mut file).take(SAMPLE_BYTES as u64).read_to_end(&mut sample).map_err(io)?;
    let bom = [&[0xEF, 0xBB, 0xBF][..], &[0xFF, 0xFE], &[0xFE, 0xFF]].iter().any(|b| sample.starts_with(b));
    // UTF-8, perhaps cut inside its last character by the sample's end.
    let utf8 = match std::str::from_utf8(&sample) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    };
    if bom || utf8 {
        return Ok(None);
    }
    // Each byte is the Latin-1 character at its code: what a legacy font drew there.
    let latin1 = |bytes: &[u8]| -> String { bytes.iter().map(|&b| char::from(b)).collect() };
    let text = latin1(&sample);
    let Some(enc) = crate::legacy::detect(text.lines()) else { return Ok(None) };
    let mut w = std::io::BufWriter::new(std::fs::File::create(out).map_err(io)?);
    let mut all = std::io::BufReader::new(std::fs::File::open(path).map_err(io)?);
    let mut line = Vec::new();
    loop {
        line.clear();
        if all.read_until(b'\n', &mut line).map_err(io)? == 0 {
            break;
        }
        std::io::Write::write_all(&mut w, enc.decode(&latin1(&line)).as_bytes()).map_err(io)?;
    }
    std::io::Write::flush(&mut w).map_err(io)?;
    Ok(Some(enc))
}

/// The file as CSV: itself, or a converted copy at `scratch`.
pub fn as_csv(path: &Path, opts: &SheetOptions, scratch: &Path) -> Result<Converted, ReadError> {
    let converted = |rows, notes| Converted { csv: scratch.to_path_buf(), rows, notes };
    match detect(path)? {
        Format::Csv => match legacy_csv(path, scratch)? {
            Some(enc) => Ok(converted(None, vec![crate::layout::encoding_note(enc)])),
            None => Ok(Converted { csv: path.to_path_buf(), rows: None, notes: Vec::new() }),
        },
        Format::Spreadsheet => spreadsheet_to_csv(path, opts, scratch).map(|(_, t)| converted(Some(t.rows), t.notes)),
        Format::Json => json_to_csv(path, scratch).map(|_| converted(None, Vec::new())),
        Format::Parquet => parquet_to_csv(path, scratch).map(|_| converted(None, Vec::new())),
    }
}

/// Open any accepted file as a CSV source (converting it to `scratch` first if it is not CSV),
/// with what the conversion left out or changed. A sheet's records are numbered by their sheet
/// rows; other converted files by record, so that a cell holding a line break does not shift
/// the row numbers after it.
pub fn open(
    path: &Path,
    opts: &SheetOptions,
    scratch: &Path,
) -> Result<(crate::CsvSource, Vec<crate::Note>), ReadError> {
    let converted = as_csv(path, opts, scratch)?;
    let source = crate::CsvSource::open(&converted.csv)?;
    let source = match converted.rows {
        Some(rows) => source.numbered_by(rows),
        None if converted.csv == path => source,
        None => source.numbered_by_record(),
    };
    Ok((source, converted.notes))
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
    let width = builder.schema().fields().len();
    if width > MAX_COLUMNS {
        return Err(err(
            "too_many_columns",
            format!("the Parquet file has {width} columns; at most {MAX_COLUMNS}"),
            format!("tệp Parquet có {width} cột; tối đa {MAX_COLUMNS} cột"),
        ));
    }
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
    fn json_lines_that_are_not_utf8_are_the_file_s_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.json");
        std::fs::write(&path, b"{\"a\": 1}\n{\"a\": \"\xff\xfe\"}\n").unwrap();
        let e = json_to_csv(&path, &dir.path().join("out.csv")).unwrap_err();
        assert_eq!((e.code, e.line), ("invalid_json", Some(2)), "{e}");
        assert!(!e.is_server_fault());
    }

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
            let converted = as_csv(&flat, &SheetOptions::default(), &out).unwrap();
            assert!(converted.rows.is_none() && converted.notes.is_empty());
            assert_eq!(
                std::fs::read_to_string(converted.csv).unwrap(),
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
        let opts = SheetOptions { sheet: Some("Dữ liệu".into()), header_row: Some(2), ..Default::default() };
        let (name, table) = spreadsheet_to_csv(&path, &opts, &out).unwrap();
        assert_eq!((name.as_str(), table.rows.as_slice()), ("Dữ liệu", &[2, 3, 4][..]));
        let csv = std::fs::read_to_string(&out).unwrap();
        assert_eq!(
            csv,
            "ma_co_so,ten_co_so,so_giuong,ty_le\nBV01,Bệnh viện tỉnh,500,#DIV/0!\nBV02,Trạm y tế,12.5,0.125\n"
        );
        // Without a header row, the merged title above is passed over and said so.
        let opts = SheetOptions { sheet: Some("Dữ liệu".into()), header_row: None, ..Default::default() };
        let (_, table) = spreadsheet_to_csv(&path, &opts, &out).unwrap();
        assert!(std::fs::read_to_string(&out).unwrap().starts_with("ma_co_so,ten_co_so,so_giuong,ty_le\n"));
        assert_eq!(table.notes[0].kind, "title_rows");
        assert_eq!(table.rows, [2, 3, 4]);
        // Unknown sheet: the message lists the sheets.
        let e = spreadsheet_to_csv(&path, &SheetOptions { sheet: Some("X".into()), ..Default::default() }, &out)
            .unwrap_err();
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
