//! Arrow batches as JSON records, the shape every query answer uses.

use arrow::datatypes::{DataType, Schema};
use arrow::record_batch::RecordBatch;
use kho_core::{Error, Result};
use serde::Serialize;

/// A column of an answer: its name and its Table Schema type.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FieldInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

pub fn fields_of(schema: &Schema) -> Vec<FieldInfo> {
    schema.fields().iter().map(|f| FieldInfo { name: f.name().clone(), kind: type_name(f.data_type()) }).collect()
}

/// The Table Schema type a column of this Arrow type holds (what kho writes: integer → Int64,
/// number → Float64, date → Date32, datetime → Timestamp, string → Utf8), extended to what SQL
/// expressions may produce.
pub fn type_name(t: &DataType) -> &'static str {
    use DataType::*;
    match t {
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 => "integer",
        Float16 | Float32 | Float64 | Decimal32(..) | Decimal64(..) | Decimal128(..) | Decimal256(..) => "number",
        Boolean => "boolean",
        Date32 | Date64 => "date",
        Timestamp(..) => "datetime",
        Time32(_) | Time64(_) => "time",
        Utf8 | LargeUtf8 | Utf8View => "string",
        Null => "any",
        List(_) | LargeList(_) | FixedSizeList(..) | ListView(_) | LargeListView(_) => "array",
        Struct(_) | Map(..) => "object",
        _ => "any",
    }
}

/// Records as a JSON array of objects, written straight from Arrow (no intermediate values):
/// answers are passed to clients as these bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Records(pub Vec<u8>);

impl Records {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The records parsed, for callers that work on them.
    pub fn values(&self) -> Result<Vec<serde_json::Value>> {
        serde_json::from_slice(&self.0).map_err(|e| Error::internal(format!("reading back JSON: {e}")))
    }
}

/// Records as JSON objects, with explicit nulls so that every record has every field.
pub fn records(batches: &[RecordBatch]) -> Result<Records> {
    let mut writer = arrow::json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, arrow::json::writer::JsonArray>(Vec::new());
    let refs: Vec<&RecordBatch> = batches.iter().collect();
    writer.write_batches(&refs).map_err(|e| Error::internal(format!("writing JSON: {e}")))?;
    writer.finish().map_err(|e| Error::internal(format!("writing JSON: {e}")))?;
    let bytes = writer.into_inner();
    Ok(Records(if bytes.is_empty() { b"[]".to_vec() } else { bytes }))
}

/// The first `n` rows of `batches`.
pub fn first_rows(batches: &[RecordBatch], n: usize) -> Vec<RecordBatch> {
    let mut left = n;
    let mut out = Vec::new();
    for b in batches {
        if left == 0 {
            break;
        }
        let take = b.num_rows().min(left);
        out.push(b.slice(0, take));
        left -= take;
    }
    out
}
