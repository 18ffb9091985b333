//! The entry points the fuzzers drive (`fuzz/fuzz_targets/`), each with the properties that must
//! hold for any input: it returns (never panics, never runs unbounded), and a file it refuses
//! is refused with a code and a message in Vietnamese and English. The same functions run over
//! the seeds and their mutations in the test suite (see `kho_core::fuzz`).

use std::io::Write;

use crate::read::{MAX_COLUMNS, ReadError};

fn refused(e: &ReadError) {
    assert!(!e.code.is_empty() && !e.message.is_empty() && !e.message_vi.is_empty(), "{e:?}");
}

/// The CSV reader: encoding, delimiter, header, rows; and the reading of 8-bit text in the
/// legacy Vietnamese encodings.
pub fn csv(data: &[u8]) {
    let latin1: String = data.iter().map(|&b| char::from(b)).collect();
    if let Some(enc) = crate::legacy::detect(latin1.lines()) {
        let decoded = enc.decode(&latin1);
        // Each legacy character becomes a letter, or at most two marks.
        assert!(decoded.chars().count() <= 2 * latin1.chars().count(), "{decoded:?}");
    }
    match crate::CsvSource::from_bytes(data) {
        Ok(source) => {
            assert!(source.headers.len() <= MAX_COLUMNS);
            for (line, row) in source.rows().take(10_000) {
                assert!(
                    line >= 2,
                    "data rows start on line 2 or later: {line} {row:?} in {:?}",
                    String::from_utf8_lossy(data)
                );
                if let Ok(cells) = row {
                    assert!(cells.iter().all(|c| c.len() <= crate::read::MAX_CELL_BYTES));
                }
            }
        }
        Err(e) => refused(&e),
    }
}

fn in_file(data: &[u8], name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join(name);
    let mut f = std::fs::File::create(&path).expect("a temporary file");
    f.write_all(data).expect("written");
    (dir, path)
}

/// The spreadsheet reader (XLSX, XLSB, XLS, ODS), through to the CSV it becomes.
pub fn spreadsheet(data: &[u8]) {
    let (dir, path) = in_file(data, "upload");
    match crate::sheet::read(&path, None) {
        Ok(sheet) => {
            assert!(sheet.cells.len() <= crate::sheet::MAX_CELLS);
            if let Err(e) = crate::layout::write_table(&sheet, None, &[], &dir.path().join("out.csv")) {
                refused(&e);
            }
        }
        Err(e) => refused(&e),
    }
}

/// JSON rows (an array of objects, or one per line), through to the CSV they become.
pub fn json_rows(data: &[u8]) {
    let (dir, path) = in_file(data, "upload.json");
    if let Err(e) = crate::convert::json_to_csv(&path, &dir.path().join("out.csv")) {
        refused(&e);
    }
}

/// The Table Schema check, then, for a schema it accepts, the rules built from it checking a
/// few rows: constraints, patterns (compiled regular expressions), keys.
pub fn table_schema(data: &[u8]) {
    let Ok(schema) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let problems = kho_core::table_schema::check(&schema);
    assert!(problems.iter().all(|p| !p.message.is_empty()));
    if !problems.is_empty() {
        return;
    }
    let headers: Vec<String> = schema
        .get("fields")
        .and_then(|f| f.as_array())
        .map(|f| f.iter().filter_map(|f| f.get("name")?.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    if headers.is_empty() || headers.len() > MAX_COLUMNS {
        return;
    }
    let mut csv = headers.join(",");
    for row in ["1,2,3", "", "-1,x,2026-01-01", "\"=1\",0912345678,01"] {
        csv.push('\n');
        csv.push_str(row);
    }
    csv.push('\n');
    if let Ok(source) = crate::CsvSource::from_bytes(csv.as_bytes()) {
        let report = crate::Validator::new(&schema, &source.headers, crate::References::default()).check_csv(&source);
        assert!(report.problems.iter().all(|p| !p.message_vi.is_empty() && !p.message_en.is_empty()));
    }
}

#[cfg(test)]
mod tests {
    fn short_run(target: &str, tokens: &[&[u8]], run: fn(&[u8])) {
        kho_core::fuzz::short_run(env!("CARGO_MANIFEST_DIR"), target, tokens, run);
    }

    #[test]
    fn csv_short_run() {
        short_run(
            "csv",
            &[b"\"", b",", b";", b"\t", b"\n", b"\r\n", b"\xEF\xBB\xBF", b"\xFF\xFE", b"\0", b"="],
            super::csv,
        );
    }

    #[test]
    fn spreadsheet_short_run() {
        short_run(
            "spreadsheet",
            &[
                b"<c r=\"XFD1048576\">",
                b"number-columns-repeated=\"16384\"",
                b"<mergeCell ref=\"A1:XFD1048576\"/>",
                b"PK\x03\x04",
            ],
            super::spreadsheet,
        );
    }

    #[test]
    fn json_rows_short_run() {
        short_run(
            "json_rows",
            &[b"[", b"]", b"{", b"}", b"\"k\":", b",", b"\n", b"null", b"[[[[[[[[["],
            super::json_rows,
        );
    }

    #[test]
    fn table_schema_short_run() {
        short_run(
            "table_schema",
            &[
                b"\"pattern\":\"(a+)+$\"",
                b"\"type\":\"date\"",
                b"\"primaryKey\":",
                b"\"constraints\":{",
                b"\"enum\":[",
                b"\"format\":\"%d/%m/%Y\"",
            ],
            super::table_schema,
        );
    }
}
