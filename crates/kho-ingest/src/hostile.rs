//! Workbooks made to break readers: a few kilobytes that declare, span or repeat their way to
//! billions of cells. Built here rather than kept as binary files, so that what each one does
//! is written down; the tests of the readers, the server's tests and the fuzzers' seeds use
//! them.

use std::io::Write;

fn zip(parts: &[(&str, String)]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut out);
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, body) in parts {
            // A part that cannot be written leaves the workbook short of it, which is itself
            // a broken workbook: good enough for what these are for.
            if w.start_file(*name, opts).is_ok() {
                let _ = w.write_all(body.as_bytes());
            }
        }
        let _ = w.finish();
    }
    out.into_inner()
}

/// An XLSX workbook of one sheet "Data" whose `<sheetData>` is `rows` and with these merged
/// ranges (`A1:B2`), e.g. `<row r="1"><c r="A1" t="inlineStr"><is><t>x</t></is></c></row>`.
pub fn xlsx(rows: &str, merges: &[&str]) -> Vec<u8> {
    let merge_xml = if merges.is_empty() {
        String::new()
    } else {
        let each: String = merges.iter().map(|m| format!("<mergeCell ref=\"{m}\"/>")).collect();
        format!("<mergeCells count=\"{}\">{each}</mergeCells>", merges.len())
    };
    let sheet = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><worksheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"><sheetData>{rows}</sheetData>{merge_xml}</worksheet>"
    );
    zip(&[
        (
            "[Content_Types].xml",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"><Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/><Default Extension=\"xml\" ContentType=\"application/xml\"/><Override PartName=\"/xl/workbook.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml\"/><Override PartName=\"/xl/worksheets/sheet1.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml\"/></Types>".into(),
        ),
        (
            "_rels/.rels",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\"><Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument\" Target=\"xl/workbook.xml\"/></Relationships>".into(),
        ),
        (
            "xl/workbook.xml",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><workbook xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\" xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\"><sheets><sheet name=\"Data\" sheetId=\"1\" r:id=\"rId1\"/></sheets></workbook>".into(),
        ),
        (
            "xl/_rels/workbook.xml.rels",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\"><Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet\" Target=\"worksheets/sheet1.xml\"/></Relationships>".into(),
        ),
        ("xl/worksheets/sheet1.xml", sheet),
    ])
}

/// A zip-based workbook with one more part (a shared-strings table, say).
pub fn with_part(book: &[u8], name: &str, body: &str) -> Vec<u8> {
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    if let Ok(mut archive) = zip::ZipArchive::new(std::io::Cursor::new(book.to_vec())) {
        for i in 0..archive.len() {
            if let Ok(part) = archive.by_index(i) {
                let _ = out.raw_copy_file(part);
            }
        }
    }
    if out.start_file(name, zip::write::SimpleFileOptions::default()).is_ok() {
        let _ = out.write_all(body.as_bytes());
    }
    out.finish().map(|c| c.into_inner()).unwrap_or_default()
}

/// An inline-string cell for [`xlsx`].
pub fn xlsx_cell(reference: &str, text: &str) -> String {
    format!("<c r=\"{reference}\" t=\"inlineStr\"><is><t>{text}</t></is></c>")
}

/// An ODS workbook whose one table "Data" has these rows (`<table:table-row>…`).
pub fn ods(rows: &str) -> Vec<u8> {
    let content = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><office:document-content xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" xmlns:table=\"urn:oasis:names:tc:opendocument:xmlns:table:1.0\" xmlns:text=\"urn:oasis:names:tc:opendocument:xmlns:text:1.0\" office:version=\"1.2\"><office:body><office:spreadsheet><table:table table:name=\"Data\">{rows}</table:table></office:spreadsheet></office:body></office:document-content>"
    );
    zip(&[
        ("mimetype", "application/vnd.oasis.opendocument.spreadsheet".into()),
        (
            "META-INF/manifest.xml",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><manifest:manifest xmlns:manifest=\"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0\" manifest:version=\"1.2\"><manifest:file-entry manifest:full-path=\"/\" manifest:media-type=\"application/vnd.oasis.opendocument.spreadsheet\"/><manifest:file-entry manifest:full-path=\"content.xml\" manifest:media-type=\"text/xml\"/></manifest:manifest>".into(),
        ),
        ("content.xml", content),
    ])
}

/// A string cell for [`ods`], repeated across `repeat` columns.
pub fn ods_cell(text: &str, repeat: u32) -> String {
    format!(
        "<table:table-cell table:number-columns-repeated=\"{repeat}\" office:value-type=\"string\"><text:p>{text}</text:p></table:table-cell>"
    )
}

fn record(typ: u16, data: &[u8]) -> Vec<u8> {
    let mut r = typ.to_le_bytes().to_vec();
    r.extend_from_slice(&(data.len() as u16).to_le_bytes());
    r.extend_from_slice(data);
    r
}

/// A BIFF8 NUMBER record: `value` in (row, column).
pub fn xls_number(row: u16, col: u16, value: f64) -> Vec<u8> {
    let mut d = row.to_le_bytes().to_vec();
    d.extend_from_slice(&col.to_le_bytes());
    d.extend_from_slice(&0u16.to_le_bytes());
    d.extend_from_slice(&value.to_le_bytes());
    record(0x0203, &d)
}

/// A BIFF8 DIMENSIONS record declaring rows `first..last` and columns `first_col..last_col`
/// (the last ones one past the end, as the format has it).
pub fn xls_dimensions(first: u32, last: u32, first_col: u16, last_col: u16) -> Vec<u8> {
    let mut d = first.to_le_bytes().to_vec();
    d.extend_from_slice(&last.to_le_bytes());
    d.extend_from_slice(&first_col.to_le_bytes());
    d.extend_from_slice(&last_col.to_le_bytes());
    d.extend_from_slice(&0u16.to_le_bytes());
    record(0x0200, &d)
}

/// An XLS (BIFF8) workbook of one sheet "Data" holding these records between its BOF and EOF.
pub fn xls(sheet_records: &[Vec<u8>]) -> Vec<u8> {
    let bof = |dt: u16| {
        let mut d = 0x0600u16.to_le_bytes().to_vec();
        d.extend_from_slice(&dt.to_le_bytes());
        d.extend_from_slice(&[0u8; 12]);
        record(0x0809, &d)
    };
    let name = b"Data";
    let bound_sheet = |pos: u32| {
        let mut d = pos.to_le_bytes().to_vec();
        d.extend_from_slice(&[0, 0, name.len() as u8, 0]);
        d.extend_from_slice(name);
        record(0x0085, &d)
    };
    let eof = record(0x000A, &[]);
    let globals_len = bof(5).len() + bound_sheet(0).len() + eof.len();
    let mut stream = bof(5);
    stream.extend(bound_sheet(globals_len as u32));
    stream.extend(&eof);
    stream.extend(bof(0x10));
    for r in sheet_records {
        stream.extend(r);
    }
    stream.extend(&eof);
    let mut out = std::io::Cursor::new(Vec::new());
    if let Ok(mut book) = cfb::CompoundFile::create(&mut out) {
        if let Ok(mut s) = book.create_stream("/Workbook") {
            let _ = s.write_all(&stream);
        }
        let _ = book.flush();
    }
    out.into_inner()
}
