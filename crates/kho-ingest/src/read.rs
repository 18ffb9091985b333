//! Reading a CSV upload: detect the encoding (UTF-8 with or without BOM, UTF-16 with BOM) and
//! the delimiter, check the header, and hand out rows. Anything else is refused with a message
//! that says what is wrong and where.

use std::io::Read;
use std::path::Path;

/// Why a file cannot be read as a table at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    /// Stable code: `empty_file`, `no_data_rows`, `unknown_encoding`, `blank_header`,
    /// `duplicate_header`, `too_many_columns`, `unclosed_quote`, `cell_too_large`,
    /// `nul_character`, `malformed_csv`, `sheet_too_large`, `invalid_spreadsheet`, `io`.
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

impl ReadError {
    /// Whether the failure is the server's own (its disk full, a folder it cannot write), not
    /// the file's: every problem with a file's content has its own code, and `io` is kept for
    /// the server's files. Such a failure is the platform's to fix and must never reach a steward
    /// as "your file is invalid".
    pub fn is_server_fault(&self) -> bool {
        self.code == "io"
    }
}

fn err(code: &'static str, line: Option<u64>, en: String, vi: String) -> ReadError {
    ReadError { code, message: en, message_vi: vi, line }
}

/// A CSV table: its encoding, delimiter and header known, its rows read on demand from the
/// file (never held in memory as a whole, whatever its size).
#[derive(Debug)]
pub struct CsvSource {
    origin: Origin,
    encoding_kind: Encoding,
    pub delimiter: u8,
    pub encoding: &'static str,
    pub headers: Vec<String>,
    /// Number rows by record rather than by line: for CSV made from a spreadsheet or JSON, where
    /// a cell holding a line break must not shift the numbers of the rows after it.
    by_record: bool,
    /// The original row of each record (the header first), for CSV made from a sheet whose
    /// rows were not all kept.
    row_numbers: Option<std::sync::Arc<Vec<u64>>>,
}

/// A data row: its line in the file, and its cells or why it could not be read.
pub type Row = (u64, Result<Vec<String>, String>);

#[derive(Debug)]
enum Origin {
    File(std::path::PathBuf),
    Bytes(std::sync::Arc<Vec<u8>>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Utf8 { bom: bool },
    Utf16 { le: bool },
}

const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// Columns of a table, whatever the format. Wider tables are statistical cross-tabulations to
/// be reshaped, not records; every row is checked and indexed column by column.
pub const MAX_COLUMNS: usize = 2_000;
/// Bytes of one cell, whatever the format (Excel's own limit is 32,767 characters).
pub const MAX_CELL_BYTES: usize = 1 << 20;
const CHUNK: usize = 1 << 20;

/// Decode a whole buffer (used for small inputs and in tests): a BOM decides UTF-8 or UTF-16
/// (LE/BE); without one the text must be UTF-8. Legacy Vietnamese encodings (TCVN3, VNI,
/// Windows-1258) are refused rather than guessed.
pub fn decode(bytes: &[u8]) -> Result<(String, &'static str), ReadError> {
    let enc = detect(bytes);
    let mut out = String::new();
    decoded_reader(Box::new(std::io::Cursor::new(bytes.to_vec())), enc)
        .read_to_string(&mut out)
        .map_err(|e| encoding_error(e.to_string(), None))?;
    if let Encoding::Utf8 { .. } = enc {
        check_utf8(std::io::Cursor::new(bytes))?;
    }
    Ok((out, enc_name(enc)))
}

fn detect(head: &[u8]) -> Encoding {
    if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
        Encoding::Utf8 { bom: true }
    } else if head.starts_with(&[0xFF, 0xFE]) {
        Encoding::Utf16 { le: true }
    } else if head.starts_with(&[0xFE, 0xFF]) {
        Encoding::Utf16 { le: false }
    } else {
        Encoding::Utf8 { bom: false }
    }
}

fn enc_name(e: Encoding) -> &'static str {
    match e {
        Encoding::Utf8 { bom: true } => "UTF-8 (BOM)",
        Encoding::Utf8 { bom: false } => "UTF-8",
        Encoding::Utf16 { le: true } => "UTF-16LE",
        Encoding::Utf16 { le: false } => "UTF-16BE",
    }
}

fn encoding_error(detail: String, line: Option<u64>) -> ReadError {
    err(
        "unknown_encoding",
        line,
        format!(
            "the file is not UTF-8 or UTF-16 ({detail}); save it as \"CSV UTF-8\" \
             (legacy encodings such as TCVN3, VNI or Windows-1258 are not accepted)"
        ),
        format!(
            "tệp không phải UTF-8 hoặc UTF-16 ({detail}); hãy lưu lại dưới dạng \"CSV UTF-8\" \
             (không nhận bảng mã cũ TCVN3, VNI, Windows-1258)"
        ),
    )
}

/// Scan a UTF-8 stream once, in chunks, and name the first invalid byte with its line.
fn check_utf8(mut r: impl Read) -> Result<(), ReadError> {
    let mut buf = vec![0u8; CHUNK];
    let mut carry: Vec<u8> = Vec::new();
    let (mut offset, mut line) = (0u64, 1u64);
    loop {
        let n = r.read(&mut buf).map_err(|e| err("io", None, e.to_string(), e.to_string()))?;
        if n == 0 {
            if !carry.is_empty() {
                return Err(encoding_error(format!("incomplete character at offset {offset}"), Some(line)));
            }
            return Ok(());
        }
        let mut data = std::mem::take(&mut carry);
        data.extend_from_slice(&buf[..n]);
        match std::str::from_utf8(&data) {
            Ok(_) => {
                line += data.iter().filter(|b| **b == b'\n').count() as u64;
                offset += data.len() as u64;
            }
            Err(e) => {
                let good = e.valid_up_to();
                line += data[..good].iter().filter(|b| **b == b'\n').count() as u64;
                if e.error_len().is_some() {
                    return Err(encoding_error(
                        format!("invalid byte {:#04x} at offset {}", data[good], offset + good as u64),
                        Some(line),
                    ));
                }
                // A character cut by the chunk boundary: finish it with the next chunk.
                offset += good as u64;
                carry = data[good..].to_vec();
            }
        }
    }
}

/// UTF-16 to UTF-8, streaming. A surrogate pair split between reads is kept for the next one.
struct Utf16Reader {
    inner: Box<dyn Read>,
    le: bool,
    pending: Vec<u8>,
    out: Vec<u8>,
    pos: usize,
}

impl Read for Utf16Reader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.out.len() {
            let mut chunk = vec![0u8; CHUNK];
            let n = self.inner.read(&mut chunk)?;
            if n == 0 {
                if !self.pending.is_empty() {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "the UTF-16 text ends in the middle of a character",
                    ));
                }
                return Ok(0);
            }
            self.pending.extend_from_slice(&chunk[..n]);
            let whole = self.pending.len() / 2 * 2;
            let mut units: Vec<u16> = self.pending[..whole]
                .chunks_exact(2)
                .map(|c| if self.le { u16::from_le_bytes([c[0], c[1]]) } else { u16::from_be_bytes([c[0], c[1]]) })
                .collect();
            let mut keep = self.pending[whole..].to_vec();
            // A high surrogate at the very end waits for its partner.
            if units.last().is_some_and(|u| (0xD800..0xDC00).contains(u)) {
                let u = units.pop().unwrap_or_default();
                let mut bytes = if self.le { u.to_le_bytes().to_vec() } else { u.to_be_bytes().to_vec() };
                bytes.extend_from_slice(&keep);
                keep = bytes;
            }
            self.pending = keep;
            let text: String = char::decode_utf16(units).collect::<Result<String, _>>().map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("unpaired surrogate {:#06x}", e.unpaired_surrogate()),
                )
            })?;
            self.out = text.into_bytes();
            self.pos = 0;
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Line ends made `\n`: Excel on Windows writes `\r\n`, old Mac files a lone `\r`. The CSV
/// reader takes each as a record end, but counts lines by `\n` only and places a record after
/// `\r\n` on the line before: every row of a Windows file would be reported one line too high.
struct Newlines<R> {
    inner: R,
    /// A `\r` ended the last read: a `\n` starting the next one is its pair, already written.
    after_cr: bool,
}

impl<R: Read> Read for Newlines<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = self.inner.read(buf)?;
            if n == 0 {
                return Ok(0);
            }
            let mut w = 0;
            for r in 0..n {
                let b = buf[r];
                match b {
                    b'\n' if self.after_cr => self.after_cr = false,
                    b'\r' => {
                        buf[w] = b'\n';
                        w += 1;
                        self.after_cr = true;
                    }
                    _ => {
                        buf[w] = b;
                        w += 1;
                        self.after_cr = false;
                    }
                }
            }
            // A read of nothing but the second half of a `\r\n` must not look like the end.
            if w > 0 {
                return Ok(w);
            }
        }
    }
}

/// The decoded (UTF-8) byte stream, without any byte-order mark, line ends made `\n`.
fn decoded_reader(raw: Box<dyn Read>, enc: Encoding) -> Box<dyn Read> {
    Box::new(Newlines { inner: decoded_reader_raw(raw, enc), after_cr: false })
}

fn decoded_reader_raw(mut raw: Box<dyn Read>, enc: Encoding) -> Box<dyn Read> {
    let skip = match enc {
        Encoding::Utf8 { bom: true } => 3,
        Encoding::Utf8 { bom: false } => 0,
        Encoding::Utf16 { .. } => 2,
    };
    let mut bom = vec![0u8; skip];
    let _ = raw.read_exact(&mut bom);
    match enc {
        Encoding::Utf8 { .. } => raw,
        Encoding::Utf16 { le } => {
            Box::new(Utf16Reader { inner: raw, le, pending: Vec::new(), out: Vec::new(), pos: 0 })
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
        Self::new(Origin::File(path.to_path_buf()))
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<CsvSource, ReadError> {
        Self::new(Origin::Bytes(std::sync::Arc::new(bytes.to_vec())))
    }

    fn raw(origin: &Origin) -> Result<Box<dyn Read>, ReadError> {
        match origin {
            Origin::File(p) => std::fs::File::open(p)
                .map(|f| Box::new(std::io::BufReader::with_capacity(CHUNK, f)) as Box<dyn Read>)
                .map_err(|e| {
                    err("io", None, format!("cannot read {}: {e}", p.display()), format!("không đọc được tệp: {e}"))
                }),
            Origin::Bytes(b) => Ok(Box::new(std::io::Cursor::new(b.as_ref().clone()))),
        }
    }

    fn new(origin: Origin) -> Result<CsvSource, ReadError> {
        let mut head = vec![0u8; 4];
        let mut r = Self::raw(&origin)?;
        let n = r.read(&mut head).map_err(|e| err("io", None, e.to_string(), e.to_string()))?;
        head.truncate(n);
        let enc = detect(&head);
        if let Encoding::Utf8 { .. } = enc {
            check_utf8(Self::raw(&origin)?)?;
        }
        // The first 64 KiB of text, cut at a line end, to sniff the delimiter.
        let mut sample = Vec::new();
        decoded_reader(Self::raw(&origin)?, enc)
            .take(64 * 1024)
            .read_to_end(&mut sample)
            .map_err(|e| encoding_error(e.to_string(), None))?;
        if sample.len() == 64 * 1024
            && let Some(last) = sample.iter().rposition(|b| *b == b'\n')
        {
            sample.truncate(last);
        }
        let sample = String::from_utf8_lossy(&sample).to_string();
        if sample.trim().is_empty() {
            return Err(err("empty_file", None, "the file is empty".into(), "tệp rỗng".into()));
        }
        let delimiter = sniff_delimiter(&sample);
        let mut source = CsvSource {
            origin,
            encoding_kind: enc,
            delimiter,
            encoding: enc_name(enc),
            headers: Vec::new(),
            by_record: false,
            row_numbers: None,
        };
        source.scan()?;
        let mut reader = source.reader()?;
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
        if headers.len() > MAX_COLUMNS {
            return Err(err(
                "too_many_columns",
                Some(1),
                format!(
                    "the header has {} columns; at most {}",
                    crate::sheet::grouped(headers.len() as u64, ','),
                    crate::sheet::grouped(MAX_COLUMNS as u64, ',')
                ),
                format!(
                    "dòng tiêu đề có {} cột; tối đa {} cột.",
                    crate::sheet::grouped(headers.len() as u64, '.'),
                    crate::sheet::grouped(MAX_COLUMNS as u64, '.')
                ),
            ));
        }
        let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::with_capacity(headers.len());
        for (i, h) in headers.iter().enumerate() {
            if h.is_empty() {
                return Err(err(
                    "blank_header",
                    Some(1),
                    format!("column {} has no name in the header", i + 1),
                    format!("cột thứ {} không có tên ở dòng tiêu đề", i + 1),
                ));
            }
            if let Some(j) = seen.insert(h.as_str(), i) {
                return Err(err(
                    "duplicate_header",
                    Some(1),
                    format!("columns {} and {} are both named '{h}'", j + 1, i + 1),
                    format!("cột {} và cột {} trùng tên '{h}'", j + 1, i + 1),
                ));
            }
        }
        source.headers = headers;
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

    /// One pass over the text, as the CSV reader will split it, for what it would take in
    /// silently: a quote that opens a value and never closes (the rest of the file would become
    /// one cell), a cell past [`MAX_CELL_BYTES`], and NUL characters, which no text holds (a
    /// binary file saved as .csv). Each is named by the line where it starts.
    fn scan(&self) -> Result<(), ReadError> {
        let mut text = decoded_reader(Self::raw(&self.origin)?, self.encoding_kind);
        let mut buf = vec![0u8; CHUNK];
        let (mut line, mut cell_line, mut cell_bytes) = (1u64, 1u64, 0usize);
        // Where the reader is: at the start of a cell, inside an unquoted cell, inside quotes,
        // or just after a quote inside quotes (a second one makes a literal quote).
        #[derive(PartialEq)]
        enum At {
            Start,
            Plain,
            Quoted,
            QuoteInQuoted,
        }
        let mut at = At::Start;
        loop {
            let n = text.read(&mut buf).map_err(|e| encoding_error(e.to_string(), Some(line)))?;
            if n == 0 {
                break;
            }
            for &b in &buf[..n] {
                if b == 0 {
                    return Err(err(
                        "nul_character",
                        Some(line),
                        "the file holds a NUL character (byte 0), which no text has; it may not be a CSV file".into(),
                        "tệp chứa ký tự NUL (byte 0), không có trong văn bản; có thể đây không phải tệp CSV".into(),
                    ));
                }
                if at == At::QuoteInQuoted {
                    at = if b == b'"' { At::Quoted } else { At::Plain };
                    if at == At::Quoted {
                        cell_bytes += 1;
                        continue;
                    }
                }
                match at {
                    At::Quoted => {
                        if b == b'"' {
                            at = At::QuoteInQuoted;
                        }
                    }
                    _ if b == self.delimiter || b == b'\n' || b == b'\r' => {
                        at = At::Start;
                        cell_bytes = 0;
                    }
                    At::Start if b == b'"' => {
                        at = At::Quoted;
                        cell_line = line;
                    }
                    _ => {
                        if at == At::Start {
                            cell_line = line;
                        }
                        at = At::Plain;
                    }
                }
                if b == b'\n' {
                    line += 1;
                }
                if at != At::Start {
                    cell_bytes += 1;
                    if cell_bytes > MAX_CELL_BYTES {
                        return Err(err(
                            "cell_too_large",
                            Some(cell_line),
                            format!(
                                "a value starting on this line is longer than {} KB{}",
                                MAX_CELL_BYTES >> 10,
                                if at == At::Quoted {
                                    "; a quote (\") opened there is probably never closed"
                                } else {
                                    ""
                                }
                            ),
                            format!(
                                "một giá trị bắt đầu ở dòng này dài quá {} KB{}.",
                                MAX_CELL_BYTES >> 10,
                                if at == At::Quoted {
                                    "; có lẽ dấu ngoặc kép (\") mở ở đây không được đóng"
                                } else {
                                    ""
                                }
                            ),
                        ));
                    }
                }
            }
        }
        if at == At::Quoted {
            return Err(err(
                "unclosed_quote",
                Some(cell_line),
                "a quote (\") opens a value on this line and is never closed, so the rest of the file would be one cell; close it or remove it".into(),
                "dấu ngoặc kép (\") mở một giá trị ở đây mà không được đóng, nên phần còn lại của tệp sẽ thành một ô; hãy đóng hoặc xóa dấu này.".into(),
            ));
        }
        Ok(())
    }

    fn reader(&self) -> Result<csv::Reader<Box<dyn Read>>, ReadError> {
        let raw = Self::raw(&self.origin)?;
        Ok(csv::ReaderBuilder::new()
            .delimiter(self.delimiter)
            .has_headers(true)
            .flexible(true)
            .buffer_capacity(CHUNK)
            .from_reader(decoded_reader(raw, self.encoding_kind)))
    }

    /// The CSV reader, past the header once the first record is read: for reading raw records
    /// in bulk (see [`CsvSource::line_of`] for their numbers).
    pub(crate) fn record_reader(&self) -> Result<csv::Reader<Box<dyn Read>>, ReadError> {
        self.reader()
    }

    /// The size of the file in bytes, as stored (before decoding).
    pub(crate) fn byte_len(&self) -> Option<u64> {
        match &self.origin {
            Origin::File(p) => std::fs::metadata(p).ok().map(|m| m.len()),
            Origin::Bytes(b) => Some(b.len() as u64),
        }
    }

    /// The row number of a record at `p`: its line in the file, or its record number (see
    /// `by_record`).
    pub(crate) fn line_of(&self, p: Option<&csv::Position>) -> u64 {
        p.map_or(0, |p| match (&self.row_numbers, self.by_record) {
            (Some(rows), _) => rows.get(p.record() as usize).copied().unwrap_or(p.record() + 1),
            (None, true) => p.record() + 1,
            (None, false) => p.line(),
        })
    }

    /// Number the rows by record (the header is row 1, the first data record row 2), not by
    /// line; see `by_record`.
    pub fn numbered_by_record(mut self) -> Self {
        self.by_record = true;
        self
    }

    /// Number each record by the original row it came from: `rows[i]` for record `i`, the
    /// header being record 0.
    pub fn numbered_by(mut self, rows: Vec<u64>) -> Self {
        self.by_record = true;
        self.row_numbers = Some(std::sync::Arc::new(rows));
        self
    }

    /// Data rows with their 1-based line number in the file (the header is line 1), streamed.
    /// A row the CSV reader cannot parse is returned as an error for that line, not a stop.
    pub fn rows(&self) -> Box<dyn Iterator<Item = Row> + '_> {
        let reader = match self.reader() {
            Ok(r) => r,
            Err(e) => return Box::new(std::iter::once((0, Err(e.message)))),
        };
        // The header is record 0 and line 1.
        Box::new(reader.into_records().map(move |r| match r {
            Ok(rec) => (self.line_of(rec.position()), Ok(rec.iter().map(str::to_string).collect())),
            Err(e) => (self.line_of(e.position()), Err(e.to_string())),
        }))
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
    fn utf16_streams_across_chunks_and_surrogate_pairs() {
        // "x" shifts the emoji (surrogate pairs) so that one of them straddles a chunk edge;
        // rows of 1,000 (4 KB each in UTF-8, under the cell limit) fill several chunks.
        let cell: String = std::iter::repeat_n("😀", 1000).collect();
        let mut text = format!("ten,so\nx{cell},0\n");
        for i in 1..600 {
            text.push_str(&format!("{cell},{i}\n"));
        }
        text.push_str("Hà Nội,600\n");
        let mut le = vec![0xFF, 0xFE];
        le.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        assert!(le.len() > 2 * CHUNK);
        let s = CsvSource::from_bytes(&le).unwrap();
        let rows: Vec<Vec<String>> = s.rows().map(|(_, r)| r.unwrap()).collect();
        assert_eq!(rows.len(), 601);
        assert_eq!(rows[0][0].chars().count(), 1001);
        assert!(rows[1..600].iter().all(|r| r[0] == cell), "every emoji survives the chunk edges");
        assert_eq!(rows[600], vec!["Hà Nội", "600"]);
        // A UTF-8 file with a bad byte far past the first chunk is named by line.
        let mut big = b"a,b\n".to_vec();
        for i in 0..200_000 {
            big.extend_from_slice(format!("{i},x\n").as_bytes());
        }
        big.extend_from_slice(b"9,\xff\n");
        let e = CsvSource::from_bytes(&big).unwrap_err();
        assert_eq!((e.code, e.line), ("unknown_encoding", Some(200_002)));
    }

    #[test]
    fn quotes_cells_nul_and_width_are_bounded_and_named_by_line() {
        let e = CsvSource::from_bytes(b"a,b\n1,2\n3,\"open\n4,5\n6,7\n").unwrap_err();
        assert_eq!((e.code, e.line), ("unclosed_quote", Some(3)));
        assert!(e.message_vi.contains("ngoặc kép"), "{}", e.message_vi);
        // Doubled quotes inside quotes, and a quote inside an unquoted cell, are text.
        let s = CsvSource::from_bytes(b"a,b\n\"say \"\"hi\"\"\",x\"y\n").unwrap();
        assert_eq!(s.rows().next().unwrap().1.unwrap(), vec!["say \"hi\"", "x\"y"]);
        let e = CsvSource::from_bytes(b"a,b\n1,x\0y\n").unwrap_err();
        assert_eq!((e.code, e.line), ("nul_character", Some(2)));
        let mut big = b"a,b\n1,".to_vec();
        big.extend(std::iter::repeat_n(b'x', MAX_CELL_BYTES + 1));
        let e = CsvSource::from_bytes(&big).unwrap_err();
        assert_eq!((e.code, e.line), ("cell_too_large", Some(2)));
        let wide: Vec<String> = (0..=MAX_COLUMNS).map(|i| format!("c{i}")).collect();
        let started = std::time::Instant::now();
        let e = CsvSource::from_bytes(format!("{}\n", wide.join(",")).as_bytes()).unwrap_err();
        assert_eq!(e.code, "too_many_columns");
        let ok: Vec<String> = (0..MAX_COLUMNS).map(|i| format!("c{i}")).collect();
        let s = CsvSource::from_bytes(format!("{}\n{}\n", ok.join(","), ok.join(",")).as_bytes()).unwrap();
        assert_eq!(s.headers.len(), MAX_COLUMNS);
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
    }

    #[test]
    fn converted_rows_are_numbered_by_record() {
        let s = CsvSource::from_bytes(b"a,b\n1,\"two\nlines\"\n3,x\n").unwrap();
        assert_eq!(s.rows().map(|(l, _)| l).collect::<Vec<_>>(), vec![2, 4]);
        let s = s.numbered_by_record();
        assert_eq!(s.rows().map(|(l, _)| l).collect::<Vec<_>>(), vec![2, 3]);
    }

    #[test]
    fn windows_and_old_mac_line_ends_keep_the_line_numbers() {
        for text in [
            &b"a,b\r\n1,2\r\n\"x\r\ny\",3\r\n4,5\r\n"[..],
            b"a,b\r1,2\r\"x\ry\",3\r4,5\r",
            b"a,b\n1,2\n\"x\ny\",3\n4,5\n",
        ] {
            let s = CsvSource::from_bytes(text).unwrap();
            let rows: Vec<(u64, Vec<String>)> = s.rows().map(|(l, r)| (l, r.unwrap())).collect();
            assert_eq!(
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
                vec![2, 3, 5],
                "{}",
                String::from_utf8_lossy(text)
            );
            assert_eq!(rows[1].1, vec!["x\ny", "3"]);
        }
        // A `\r\n` split between two reads is still one line end.
        let mut big = b"a,b\r\n".to_vec();
        while big.len() < CHUNK - 1 {
            big.extend_from_slice(b"1,2\r\n");
        }
        big.truncate(CHUNK - 1);
        big.extend_from_slice(b"\r\n9,9\r\n");
        let s = CsvSource::from_bytes(&big).unwrap();
        let last = s.rows().last().unwrap();
        assert_eq!(last.1.unwrap(), vec!["9", "9"]);
    }

    #[test]
    fn rows_carry_line_numbers() {
        let s = CsvSource::from_bytes(b"a,b\n1,2\n\"x\ny\",3\n4,5\n").unwrap();
        let lines: Vec<u64> = s.rows().map(|(l, _)| l).collect();
        assert_eq!(lines, vec![2, 3, 5]);
    }
}
