//! Downloads: a version's data in the format asked for, its quarantined rows, a dataset as a
//! Data Package. Each is a byte stream with its name and media type, so every front end (the
//! JSON API, the pages, the command line, a gateway) serves the same bytes under the same rules.
//! Conversion runs while the client reads, through a bounded buffer: memory stays flat whatever
//! the size of the table.

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use kho_core::model::ResourceVersion;
use kho_core::{Error, ErrorCode, Result};
use kho_query::RowsQuery;

use crate::query::Export;
use crate::{Ctx, Kho};

/// Bytes on their way to a client.
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

/// The formats a version's data can be downloaded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataFormat {
    /// The Parquet file, as stored when nothing is selected or masked.
    Parquet,
    /// CSV; unless `raw`, text cells a spreadsheet would run as formulas are neutralised; with
    /// `bom`, a byte-order mark first, for spreadsheet programs that guess the encoding.
    Csv { raw: bool, bom: bool },
    /// One JSON array of records.
    Json,
    /// One JSON record per line.
    Ndjson,
    /// An Excel workbook with the fields' titles as headers.
    Xlsx,
}

impl DataFormat {
    /// The format named `name` (`parquet`, `csv`, `json`, `ndjson`, `xlsx`).
    pub fn parse(name: &str, raw: bool, bom: bool) -> Result<DataFormat> {
        Ok(match name {
            "parquet" => DataFormat::Parquet,
            "csv" => DataFormat::Csv { raw, bom },
            "json" => DataFormat::Json,
            "ndjson" => DataFormat::Ndjson,
            "xlsx" => DataFormat::Xlsx,
            _ => return Err(Error::new(ErrorCode::BadRequest, "format must be parquet, csv, json, ndjson or xlsx")),
        })
    }

    fn extension(self) -> &'static str {
        match self {
            DataFormat::Parquet => "parquet",
            DataFormat::Csv { .. } => "csv",
            DataFormat::Json => "json",
            DataFormat::Ndjson => "ndjson",
            DataFormat::Xlsx => "xlsx",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            DataFormat::Parquet => "application/vnd.apache.parquet",
            DataFormat::Csv { .. } => CSV,
            DataFormat::Json => "application/json",
            DataFormat::Ndjson => "application/x-ndjson",
            DataFormat::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }
}

const CSV: &str = "text/csv; charset=utf-8";

/// A file on its way to a client.
pub struct Download {
    /// The name to save it under.
    pub file_name: String,
    pub content_type: &'static str,
    /// Whether a browser should save it rather than show it (JSON is shown).
    pub attachment: bool,
    /// Its size, when known before the first byte.
    pub length: Option<u64>,
    pub body: ByteStream,
}

impl Kho {
    /// A version's data (`None`: the latest) in `format`: all of it, or only the rows `selection`
    /// picks (filters, search, order, fields, as in the rows API). Personal fields are masked
    /// unless the caller may read them whole; the download is counted.
    pub async fn download_version(
        &self,
        ctx: &Ctx,
        dataset: &str,
        resource: &str,
        version: Option<i64>,
        format: DataFormat,
        selection: Option<&RowsQuery>,
    ) -> Result<(ResourceVersion, Download)> {
        // A selection, or a table with personal fields to mask, is written by the query engine;
        // otherwise the whole version is the stored file itself.
        let tmp = self.scratch_file("parquet").await?;
        let (version, export) = self.export_rows(ctx, dataset, resource, version, selection, tmp.path()).await?;
        let written = matches!(export, Export::Written(_));
        self.count_download(&version.dataset_id);
        let base = match selection {
            Some(_) => format!("{resource}-v{}-loc", version.version),
            None => format!("{resource}-v{}", version.version),
        };
        let mut download = Download {
            file_name: format!("{base}.{}", format.extension()),
            content_type: format.content_type(),
            attachment: !matches!(format, DataFormat::Json | DataFormat::Ndjson),
            length: None,
            body: futures_util::stream::empty().boxed(),
        };
        if format == DataFormat::Parquet {
            if written {
                download.body = file_stream(tmp).await?;
            } else {
                download.length = Some(version.bytes.max(0) as u64);
                download.body = self.object_stream(&version.object_key).await?;
            }
            return Ok((version, download));
        }
        if !written {
            self.fetch_object(&version.object_key, tmp.path()).await?;
        }
        download.body = match format {
            DataFormat::Xlsx => self.xlsx_of(tmp, resource, &version).await?,
            DataFormat::Csv { raw, bom } => {
                let prefix = if bom { "\u{feff}" } else { "" };
                converted(tmp, prefix, move |path, w| kho_ingest::stage::parquet_to_csv(path, w, raw))
            }
            DataFormat::Json => converted(tmp, "", |path, w| kho_ingest::stage::parquet_to_json(path, w, false)),
            DataFormat::Ndjson | DataFormat::Parquet => {
                converted(tmp, "", |path, w| kho_ingest::stage::parquet_to_json(path, w, true))
            }
        };
        Ok((version, download))
    }

    /// The rows left out of a version as CSV, for the dataset's stewards only.
    pub async fn download_quarantine(
        &self,
        ctx: &Ctx,
        dataset: &str,
        resource: &str,
        version: Option<i64>,
    ) -> Result<Download> {
        let (v, key) = self.version_quarantine(ctx, dataset, resource, version).await?;
        Ok(Download {
            file_name: format!("{resource}-v{}-quarantine.csv", v.version),
            content_type: CSV,
            attachment: true,
            length: None,
            body: self.object_stream(&key).await?,
        })
    }

    /// An upload's invalid rows as CSV, each with a last column saying what is wrong, to fix and
    /// upload again.
    pub async fn download_upload_quarantine(&self, ctx: &Ctx, upload: &str) -> Result<Download> {
        let path = self.upload_quarantine(ctx, upload).await?;
        let file =
            tokio::fs::File::open(&path).await.map_err(|e| Error::internal(format!("{}: {e}", path.display())))?;
        Ok(Download {
            file_name: "quarantine.csv".into(),
            content_type: CSV,
            attachment: true,
            length: None,
            body: tokio_util::io::ReaderStream::new(file).boxed(),
        })
    }

    /// The dataset as a Frictionless Data Package (see `write_datapackage`), counted as a
    /// download.
    pub async fn download_datapackage(&self, ctx: &Ctx, dataset: &str, raw: bool) -> Result<Download> {
        let out = self.scratch_file("zip").await?;
        let d = self.write_datapackage(ctx, dataset, out.path(), raw).await?;
        self.count_download(&d.id);
        Ok(Download {
            file_name: format!("{}-datapackage.zip", d.input.slug),
            content_type: "application/zip",
            attachment: true,
            length: None,
            body: file_stream(out).await?,
        })
    }

    /// A stored object, streamed.
    async fn object_stream(&self, key: &str) -> Result<ByteStream> {
        let stream = self.blobs.get_stream(key).await?;
        Ok(stream.map(|r| r.map_err(|e| std::io::Error::other(e.message))).boxed())
    }

    /// A version as an Excel workbook; written to a file first, as the format cannot be streamed.
    async fn xlsx_of(&self, parquet: crate::ingest::Scratch, sheet: &str, v: &ResourceVersion) -> Result<ByteStream> {
        let out = self.scratch_file("xlsx").await?;
        // The workbook's own temporary files go beside it, in the service's scratch folder.
        let out_path = out.path().to_path_buf();
        let dir = out_path.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
        let (sheet, titles) = (sheet.to_string(), titles_of(v));
        tokio::task::spawn_blocking(move || {
            kho_ingest::stage::parquet_to_xlsx(parquet.path(), &out_path, &dir, &sheet, &titles)
        })
        .await
        .map_err(|e| Error::internal(format!("export task: {e}")))?
        .map_err(crate::versions::stored_file_error)?;
        file_stream(out).await
    }
}

/// A scratch file's bytes: the file is opened, then its name removed, so the data stays readable
/// until streamed and nothing is left behind.
async fn file_stream(scratch: crate::ingest::Scratch) -> Result<ByteStream> {
    let file = tokio::fs::File::open(scratch.path())
        .await
        .map_err(|e| Error::internal(format!("{}: {e}", scratch.path().display())))?;
    drop(scratch);
    Ok(tokio_util::io::ReaderStream::new(file).boxed())
}

/// Convert a Parquet scratch file with `write` on a blocking thread while the client reads,
/// after `prefix`.
fn converted<F>(parquet: crate::ingest::Scratch, prefix: &'static str, write: F) -> ByteStream
where
    F: FnOnce(&std::path::Path, &mut ChannelWriter) -> std::result::Result<u64, kho_ingest::ReadError> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
    tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter { tx: tx.clone(), buf: Vec::with_capacity(CHUNK) };
        w.buf.extend_from_slice(prefix.as_bytes());
        let result = write(parquet.path(), &mut w).map(|_| ()).map_err(|e| std::io::Error::other(e.message));
        if let Err(e) = result.and_then(|()| std::io::Write::flush(&mut w)) {
            let _ = tx.blocking_send(Err(e));
        }
        drop(parquet);
    });
    tokio_stream::wrappers::ReceiverStream::new(rx).boxed()
}

/// Bytes handed to the client at a time.
const CHUNK: usize = 64 * 1024;

/// Feeds written bytes to a response stream in 64 KiB pieces; blocks while the client is slow,
/// which keeps memory bounded.
pub(crate) struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            let chunk = Bytes::from(std::mem::take(&mut self.buf));
            self.tx.blocking_send(Ok(chunk)).map_err(|_| std::io::Error::other("the client went away"))?;
        }
        Ok(())
    }
}

/// Field titles of a version's schema, by field name.
fn titles_of(v: &ResourceVersion) -> std::collections::HashMap<String, String> {
    v.schema
        .get("fields")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| Some((f.get("name")?.as_str()?.to_string(), f.get("title")?.as_str()?.to_string())))
        .collect()
}
