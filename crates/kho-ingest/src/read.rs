//! Reading a CSV upload: detect the encoding (UTF-8 with or without BOM, UTF-16 with BOM) and
//! the delimiter, check the header, and hand out rows. Anything else is refused with a message
//! that says what is wrong and where.

use std::io::Read;
use std::path::Path;

/// Why a file cannot be read as a table at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    /// Stable code: `empty_file`, `no_data_rows`, `unknown_encoding`, `blank_header`,
    /// `duplicate_header`, `malformed_csv`, `io`.
    pub code: &'static str,
    pub message: String,
    pub message_vi: String,
    /// 1-based line of the file, when the problem has one.
    pub line: Option<u64>,
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ReadError {}

fn err(code: &'static str, line: Option<u64>, en: String, vi: String) -> ReadError {
    ReadError { code, message: en, message_vi: vi, line }
}

/// A CSV table decoded to UTF-8 text, with its delimiter and header known.
#[derive(Debug)]
pub struct CsvSource {
    text: String,
    pub delimiter: u8,
    pub encoding: &'static str,
    pub headers: Vec<String>,
}

const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// Decode the bytes: a BOM decides UTF-8 or UTF-16 (LE/BE); without one the text must be UTF-8.
/// Legacy Vietnamese encodings (TCVN3, VNI, Windows-1258) are refused rather than guessed.
pub fn decode(bytes: &[u8]) -> Result<(String, &'static str), ReadError> {
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return utf8(rest).map(|s| (s, "UTF-8 (BOM)"));
    }
    let utf16 = |rest: &[u8], le: bool| -> Result<String, ReadError> {
        if !rest.len().is_multiple_of(2) {
            return Err(err(
                "unknown_encoding",
                None,
                "the file starts with a UTF-16 byte-order mark but has an odd number of bytes".into(),
                "tệp có dấu BOM UTF-16 nhưng số byte lẻ: tệp bị hỏng hoặc không phải UTF-16".into(),
            ));
        }
        let units = rest
            .chunks_exact(2)
            .map(|c| if le { u16::from_le_bytes([c[0], c[1]]) } else { u16::from_be_bytes([c[0], c[1]]) });
        char::decode_utf16(units).collect::<Result<String, _>>().map_err(|e| {
            err(
                "unknown_encoding",
                None,
                format!("invalid UTF-16: unpaired surrogate {:#06x}", e.unpaired_surrogate()),
                "tệp UTF-16 không hợp lệ".into(),
            )
        })
    };
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return utf16(rest, true).map(|s| (s, "UTF-16LE"));
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return utf16(rest, false).map(|s| (s, "UTF-16BE"));
    }
    utf8(bytes).map(|s| (s, "UTF-8"))
}

fn utf8(bytes: &[u8]) -> Result<String, ReadError> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.to_string()),
        Err(e) => {
            let at = e.valid_up_to();
            let line = bytes[..at].iter().filter(|b| **b == b'\n').count() as u64 + 1;
            Err(err(
                "unknown_encoding",
                Some(line),
                format!(
                    "the file is not UTF-8 or UTF-16 (invalid byte {:#04x} at offset {at}); save it as \"CSV UTF-8\" \
                     (legacy encodings such as TCVN3, VNI or Windows-1258 are not accepted)",
                    bytes[at]
                ),
                format!(
                    "tệp không phải UTF-8 hoặc UTF-16 (byte {:#04x} không hợp lệ ở vị trí {at}); hãy lưu lại dưới dạng \
                     \"CSV UTF-8\" (không nhận bảng mã cũ TCVN3, VNI, Windows-1258)",
                    bytes[at]
                ),
            ))
        }
    }
}

/// Pick the delimiter that splits the first lines into the same number (> 1) of fields most
/// consistently; a comma when nothing fits better (a one-column file).
pub fn sniff_delimiter(text: &str) -> u8 {
    let sample: String = text.lines().take(50).collect::<Vec<_>>().join("\n");
    let mut best = (b',', 0usize, 0usize);
    for d in DELIMITERS {
        let mut reader =
            csv::ReaderBuilder::new().delimiter(d).has_headers(false).flexible(true).from_reader(sample.as_bytes());
        let counts: Vec<usize> = reader.records().filter_map(Result::ok).map(|r| r.len()).collect();
        let Some(&first) = counts.first() else { continue };
        if first < 2 {
            continue;
        }
        let consistent = counts.iter().filter(|&&c| c == first).count();
        if (consistent, first) > (best.1, best.2) {
            best = (d, consistent, first);
        }
    }
    best.0
}

impl CsvSource {
    pub fn open(path: &Path) -> Result<CsvSource, ReadError> {
        let mut bytes = Vec::new();
        std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut bytes)).map_err(|e| {
            err("io", None, format!("cannot read {}: {e}", path.display()), format!("không đọc được tệp: {e}"))
        })?;
        Self::from_bytes(&bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<CsvSource, ReadError> {
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return Err(err("empty_file", None, "the file is empty".into(), "tệp rỗng".into()));
        }
        let (text, encoding) = decode(bytes)?;
        if text.trim().is_empty() {
            return Err(err("empty_file", None, "the file is empty".into(), "tệp rỗng".into()));
        }
        let delimiter = sniff_delimiter(&text);
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(true)
            .flexible(true)
            .from_reader(text.as_bytes());
        let headers: Vec<String> = reader
            .headers()
            .map_err(|e| {
                err(
                    "malformed_csv",
                    Some(1),
                    format!("cannot read the header: {e}"),
                    format!("không đọc được dòng tiêu đề: {e}"),
                )
            })?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        for (i, h) in headers.iter().enumerate() {
            if h.is_empty() {
                return Err(err(
                    "blank_header",
                    Some(1),
                    format!("column {} has no name in the header", i + 1),
                    format!("cột thứ {} không có tên ở dòng tiêu đề", i + 1),
                ));
            }
            if let Some(j) = headers[..i].iter().position(|x| x == h) {
                return Err(err(
                    "duplicate_header",
                    Some(1),
                    format!("columns {} and {} are both named '{h}'", j + 1, i + 1),
                    format!("cột {} và cột {} trùng tên '{h}'", j + 1, i + 1),
                ));
            }
        }
        let source = CsvSource { text, delimiter, encoding, headers };
        if source.rows().next().is_none() {
            return Err(err(
                "no_data_rows",
                Some(2),
                "the file has a header but no data rows".into(),
                "tệp chỉ có dòng tiêu đề, không có dữ liệu".into(),
            ));
        }
        Ok(source)
    }

    /// Data rows with their 1-based line number in the file (the header is line 1). A row the
    /// CSV reader cannot parse is returned as an error for that line, not a stop.
    pub fn rows(&self) -> impl Iterator<Item = (u64, Result<Vec<String>, String>)> + '_ {
        let reader = csv::ReaderBuilder::new()
            .delimiter(self.delimiter)
            .has_headers(true)
            .flexible(true)
            .from_reader(self.text.as_bytes());
        reader.into_records().map(|r| match r {
            Ok(rec) => {
                let line = rec.position().map_or(0, |p| p.line());
                (line, Ok(rec.iter().map(str::to_string).collect()))
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                (line, Err(e.to_string()))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        let plain = "ma_xa,ten\n00004,Ba Đình\n";
        assert_eq!(CsvSource::from_bytes(plain.as_bytes()).unwrap().encoding, "UTF-8");
        let mut bom = vec![0xEF, 0xBB, 0xBF];
        bom.extend_from_slice(plain.as_bytes());
        let s = CsvSource::from_bytes(&bom).unwrap();
        assert_eq!((s.encoding, s.headers[0].as_str()), ("UTF-8 (BOM)", "ma_xa"));
        let mut le = vec![0xFF, 0xFE];
        le.extend(plain.encode_utf16().flat_map(u16::to_le_bytes));
        let s = CsvSource::from_bytes(&le).unwrap();
        assert_eq!(s.encoding, "UTF-16LE");
        assert_eq!(s.rows().next().unwrap().1.unwrap(), vec!["00004", "Ba Đình"]);
        let mut be = vec![0xFE, 0xFF];
        be.extend(plain.encode_utf16().flat_map(u16::to_be_bytes));
        assert_eq!(CsvSource::from_bytes(&be).unwrap().encoding, "UTF-16BE");
        // Windows-1258 bytes for "Hà" are not UTF-8.
        let e = CsvSource::from_bytes(b"ten\nH\xe0 N\xf4i\n").unwrap_err();
        assert_eq!((e.code, e.line), ("unknown_encoding", Some(2)));
        assert!(e.message.contains("offset 5"), "{}", e.message);
    }

    #[test]
    fn delimiters_and_quotes() {
        for (text, d) in [
            ("a;b;c\n1;2,5;3\n4;5;6\n", b';'),
            ("a\tb\n1\t2\n", b'\t'),
            ("a|b\n1|2\n", b'|'),
            ("a,b\n\"1;x\",2\n", b','),
            ("only\n1\n2\n", b','),
        ] {
            assert_eq!(CsvSource::from_bytes(text.as_bytes()).unwrap().delimiter, d, "{text:?}");
        }
    }

    #[test]
    fn bad_files_are_named() {
        assert_eq!(CsvSource::from_bytes(b"").unwrap_err().code, "empty_file");
        assert_eq!(CsvSource::from_bytes(b"  \n\n").unwrap_err().code, "empty_file");
        assert_eq!(CsvSource::from_bytes(b"a,b\n").unwrap_err().code, "no_data_rows");
        let e = CsvSource::from_bytes(b"a,,c\n1,2,3\n").unwrap_err();
        assert_eq!(e.code, "blank_header");
        assert!(e.message.contains("column 2"));
        let e = CsvSource::from_bytes(b"a,b,a\n1,2,3\n").unwrap_err();
        assert_eq!(e.code, "duplicate_header");
        assert!(e.message.contains("columns 1 and 3"));
    }

    #[test]
    fn rows_carry_line_numbers() {
        let s = CsvSource::from_bytes(b"a,b\n1,2\n\"x\ny\",3\n4,5\n").unwrap();
        let lines: Vec<u64> = s.rows().map(|(l, _)| l).collect();
        assert_eq!(lines, vec![2, 3, 5]);
    }
}
