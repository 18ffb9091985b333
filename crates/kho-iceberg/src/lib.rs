//! kho's tables as Apache Iceberg tables (format version 2), so that engines that read Iceberg —
//! Spark, Trino, DuckDB, PyIceberg — read the warehouse by name, with time travel, once a province
//! outgrows one node's query engine.
//!
//! A kho table is a list of immutable versions, each one whole Parquet file. That maps onto
//! Iceberg without copying any data: version N is snapshot N, whose manifest list names one
//! manifest, which names that version's Parquet file. The files written here are derived from
//! the versions alone, so they never change once written and any node may write them again.
//! kho's Parquet files carry no Iceberg field ids: the table's name mapping
//! (`schema.name-mapping.default`) tells readers which column is which field.
//!
//! This crate knows nothing of HTTP or of where files live: it turns versions into the bytes
//! of Iceberg's files and the JSON of its table metadata.

use std::collections::BTreeMap;

use apache_avro::types::{Record, Value as Avro};
use apache_avro::{Schema, Writer};
use serde_json::{Value, json};

#[derive(Debug, thiserror::Error)]
pub enum IcebergError {
    #[error("writing an Iceberg {what}: {source}")]
    Avro { what: &'static str, source: Box<apache_avro::Error> },
    #[error("an Iceberg {0} does not fit its own schema")]
    Shape(&'static str),
}

pub type Result<T> = std::result::Result<T, IcebergError>;

fn avro(what: &'static str) -> impl FnOnce(apache_avro::Error) -> IcebergError {
    move |e| IcebergError::Avro { what, source: Box::new(e) }
}

/// A column's Iceberg type, from the type kho stores it as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Long,
    Double,
    Boolean,
    Date,
    /// Microseconds, without a time zone (kho stores local times as written).
    Timestamp,
    String,
}

impl ColumnType {
    fn name(self) -> &'static str {
        match self {
            ColumnType::Long => "long",
            ColumnType::Double => "double",
            ColumnType::Boolean => "boolean",
            ColumnType::Date => "date",
            ColumnType::Timestamp => "timestamp",
            ColumnType::String => "string",
        }
    }
}

/// One version of a kho table, as Iceberg needs to know it.
#[derive(Debug, Clone)]
pub struct Version {
    pub number: i64,
    /// Where readers find the Parquet file (`s3://bucket/key`, `file:///path`).
    pub data_uri: String,
    pub bytes: i64,
    pub rows: i64,
    pub published_ms: i64,
    pub columns: Vec<(String, ColumnType)>,
}

/// Field ids by column name, stable across versions: a column keeps its id from the version it
/// first appeared in, a new column takes the next one.
#[derive(Debug, Default)]
pub struct FieldIds {
    ids: BTreeMap<String, i32>,
    last: i32,
}

impl FieldIds {
    pub fn of(versions: &[Version]) -> FieldIds {
        let mut f = FieldIds::default();
        for v in versions {
            for (name, _) in &v.columns {
                if !f.ids.contains_key(name) {
                    f.last += 1;
                    f.ids.insert(name.clone(), f.last);
                }
            }
        }
        f
    }

    fn id(&self, name: &str) -> i32 {
        self.ids.get(name).copied().unwrap_or(0)
    }

    /// The name mapping readers apply to files without field ids.
    fn name_mapping(&self) -> String {
        let mut by_id: Vec<(&i32, &String)> = self.ids.iter().map(|(n, i)| (i, n)).collect();
        by_id.sort();
        let mapping: Vec<Value> =
            by_id.into_iter().map(|(id, name)| json!({"field-id": id, "names": [name]})).collect();
        Value::Array(mapping).to_string()
    }
}

/// The Iceberg schema of a version (its schema id is its version number).
fn schema(v: &Version, ids: &FieldIds) -> Value {
    let fields: Vec<Value> = v
        .columns
        .iter()
        .map(|(name, t)| json!({"id": ids.id(name), "name": name, "type": t.name(), "required": false}))
        .collect();
    json!({"type": "struct", "schema-id": v.number, "fields": fields, "identifier-field-ids": []})
}

/// The snapshot id of a version: its number (unique in the table, stable, positive).
pub fn snapshot_id(v: &Version) -> i64 {
    v.number
}

const MANIFEST_SCHEMA: &str = r#"{
  "type": "record", "name": "manifest_entry", "fields": [
    {"name": "status", "type": "int", "field-id": 0},
    {"name": "snapshot_id", "type": ["null", "long"], "default": null, "field-id": 1},
    {"name": "sequence_number", "type": ["null", "long"], "default": null, "field-id": 3},
    {"name": "file_sequence_number", "type": ["null", "long"], "default": null, "field-id": 4},
    {"name": "data_file", "field-id": 2, "type": {"type": "record", "name": "r2", "fields": [
      {"name": "content", "type": "int", "field-id": 134},
      {"name": "file_path", "type": "string", "field-id": 100},
      {"name": "file_format", "type": "string", "field-id": 101},
      {"name": "partition", "field-id": 102, "type": {"type": "record", "name": "r102", "fields": []}},
      {"name": "record_count", "type": "long", "field-id": 103},
      {"name": "file_size_in_bytes", "type": "long", "field-id": 104}
    ]}}
  ]
}"#;

const MANIFEST_LIST_SCHEMA: &str = r#"{
  "type": "record", "name": "manifest_file", "fields": [
    {"name": "manifest_path", "type": "string", "field-id": 500},
    {"name": "manifest_length", "type": "long", "field-id": 501},
    {"name": "partition_spec_id", "type": "int", "field-id": 502},
    {"name": "content", "type": "int", "field-id": 517},
    {"name": "sequence_number", "type": "long", "field-id": 515},
    {"name": "min_sequence_number", "type": "long", "field-id": 516},
    {"name": "added_snapshot_id", "type": "long", "field-id": 503},
    {"name": "added_files_count", "type": "int", "field-id": 504},
    {"name": "existing_files_count", "type": "int", "field-id": 505},
    {"name": "deleted_files_count", "type": "int", "field-id": 506},
    {"name": "added_rows_count", "type": "long", "field-id": 512},
    {"name": "existing_rows_count", "type": "long", "field-id": 513},
    {"name": "deleted_rows_count", "type": "long", "field-id": 514}
  ]
}"#;

/// The manifest of a version: one data file, added by its snapshot.
pub fn manifest(v: &Version, ids: &FieldIds) -> Result<Vec<u8>> {
    let schema = Schema::parse_str(MANIFEST_SCHEMA).map_err(avro("manifest schema"))?;
    let mut w = Writer::new(&schema, Vec::new());
    for (k, val) in [
        ("schema", schema_text(v, ids)),
        ("partition-spec", "[]".to_string()),
        ("partition-spec-id", "0".to_string()),
        ("format-version", "2".to_string()),
        ("content", "data".to_string()),
    ] {
        w.add_user_metadata(k.to_string(), val).map_err(avro("manifest metadata"))?;
    }
    let data_file = Avro::Record(vec![
        ("content".into(), Avro::Int(0)),
        ("file_path".into(), Avro::String(v.data_uri.clone())),
        ("file_format".into(), Avro::String("PARQUET".into())),
        ("partition".into(), Avro::Record(vec![])),
        ("record_count".into(), Avro::Long(v.rows)),
        ("file_size_in_bytes".into(), Avro::Long(v.bytes)),
    ]);
    let mut entry = Record::new(&schema).ok_or(IcebergError::Shape("manifest entry"))?;
    entry.put("status", Avro::Int(1));
    entry.put("snapshot_id", Avro::Union(1, Box::new(Avro::Long(snapshot_id(v)))));
    entry.put("sequence_number", Avro::Union(1, Box::new(Avro::Long(v.number))));
    entry.put("file_sequence_number", Avro::Union(1, Box::new(Avro::Long(v.number))));
    entry.put("data_file", data_file);
    w.append(entry).map_err(avro("manifest entry"))?;
    w.into_inner().map_err(avro("manifest"))
}

fn schema_text(v: &Version, ids: &FieldIds) -> String {
    schema(v, ids).to_string()
}

/// The manifest list of a version's snapshot: its one manifest.
pub fn manifest_list(v: &Version, manifest_uri: &str, manifest_bytes: i64, parent: Option<i64>) -> Result<Vec<u8>> {
    let schema = Schema::parse_str(MANIFEST_LIST_SCHEMA).map_err(avro("manifest list schema"))?;
    let mut w = Writer::new(&schema, Vec::new());
    let mut meta = vec![
        ("snapshot-id", snapshot_id(v).to_string()),
        ("sequence-number", v.number.to_string()),
        ("format-version", "2".to_string()),
    ];
    if let Some(p) = parent {
        meta.push(("parent-snapshot-id", p.to_string()));
    }
    for (k, val) in meta {
        w.add_user_metadata(k.to_string(), val).map_err(avro("manifest list metadata"))?;
    }
    let mut m = Record::new(&schema).ok_or(IcebergError::Shape("manifest list entry"))?;
    m.put("manifest_path", Avro::String(manifest_uri.to_string()));
    m.put("manifest_length", Avro::Long(manifest_bytes));
    m.put("partition_spec_id", Avro::Int(0));
    m.put("content", Avro::Int(0));
    m.put("sequence_number", Avro::Long(v.number));
    m.put("min_sequence_number", Avro::Long(v.number));
    m.put("added_snapshot_id", Avro::Long(snapshot_id(v)));
    m.put("added_files_count", Avro::Int(1));
    m.put("existing_files_count", Avro::Int(0));
    m.put("deleted_files_count", Avro::Int(0));
    m.put("added_rows_count", Avro::Long(v.rows));
    m.put("existing_rows_count", Avro::Long(0));
    m.put("deleted_rows_count", Avro::Long(0));
    w.append(m).map_err(avro("manifest list entry"))?;
    w.into_inner().map_err(avro("manifest list"))
}

/// The table's metadata, its current snapshot the last version. `manifest_lists` holds the URI
/// of each version's manifest list, in the order of `versions` (oldest first).
pub fn table_metadata(table_uuid: &str, location: &str, versions: &[Version], manifest_lists: &[String]) -> Value {
    let ids = FieldIds::of(versions);
    let schemas: Vec<Value> = versions.iter().map(|v| schema(v, &ids)).collect();
    let mut parent: Option<i64> = None;
    let mut snapshots = Vec::new();
    for (v, list) in versions.iter().zip(manifest_lists) {
        let mut s = json!({
            "snapshot-id": snapshot_id(v),
            "sequence-number": v.number,
            "timestamp-ms": v.published_ms,
            "manifest-list": list,
            "schema-id": v.number,
            "summary": {
                // Each version is the whole table: its file replaces the previous one.
                "operation": if parent.is_some() { "overwrite" } else { "append" },
                "added-data-files": "1",
                "added-records": v.rows.to_string(),
                "added-files-size": v.bytes.to_string(),
                "total-data-files": "1",
                "total-records": v.rows.to_string(),
                "total-files-size": v.bytes.to_string(),
                "total-delete-files": "0",
                "total-position-deletes": "0",
                "total-equality-deletes": "0",
            },
        });
        if let Some(p) = parent {
            s["parent-snapshot-id"] = json!(p);
        }
        parent = Some(snapshot_id(v));
        snapshots.push(s);
    }
    let last = versions.last();
    let mut meta = json!({
        "format-version": 2,
        "table-uuid": table_uuid,
        "location": location,
        "last-sequence-number": last.map_or(0, |v| v.number),
        "last-updated-ms": last.map_or(0, |v| v.published_ms),
        "last-column-id": ids.last,
        "schemas": schemas,
        "current-schema-id": last.map_or(0, |v| v.number),
        "partition-specs": [{"spec-id": 0, "fields": []}],
        "default-spec-id": 0,
        "last-partition-id": 999,
        "sort-orders": [{"order-id": 0, "fields": []}],
        "default-sort-order-id": 0,
        "properties": {
            "schema.name-mapping.default": ids.name_mapping(),
            "write.format.default": "parquet",
            "kho.read-only": "true",
        },
        "snapshots": snapshots,
        "snapshot-log": versions.iter().map(|v| json!({"snapshot-id": snapshot_id(v), "timestamp-ms": v.published_ms})).collect::<Vec<_>>(),
        "metadata-log": [],
        "refs": {},
    });
    if let Some(v) = last {
        meta["current-snapshot-id"] = json!(snapshot_id(v));
        meta["refs"] = json!({"main": {"snapshot-id": snapshot_id(v), "type": "branch"}});
    } else {
        meta["schemas"] = json!([{"type": "struct", "schema-id": 0, "fields": []}]);
    }
    meta
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn version(n: i64, columns: &[(&str, ColumnType)]) -> Version {
        Version {
            number: n,
            data_uri: format!("s3://kho/datasets/d/r/v{n}/data.parquet"),
            bytes: 1000 + n,
            rows: 10 * n,
            published_ms: 1_700_000_000_000 + n,
            columns: columns.iter().map(|(c, t)| (c.to_string(), *t)).collect(),
        }
    }

    #[test]
    fn a_column_keeps_its_field_id_across_versions() {
        let v1 = version(1, &[("ma_xa", ColumnType::String), ("so_luong", ColumnType::Long)]);
        let v2 = version(
            2,
            &[("so_luong", ColumnType::Long), ("ghi_chu", ColumnType::String), ("ma_xa", ColumnType::String)],
        );
        let ids = FieldIds::of(&[v1.clone(), v2.clone()]);
        assert_eq!((ids.id("ma_xa"), ids.id("so_luong"), ids.id("ghi_chu")), (1, 2, 3));
        let meta = table_metadata("0190-uuid", "s3://kho/iceberg/d/r", &[v1, v2], &["l1".into(), "l2".into()]);
        assert_eq!(meta["current-snapshot-id"], 2);
        assert_eq!(meta["snapshots"][1]["parent-snapshot-id"], 1);
        assert_eq!(meta["schemas"][1]["fields"][2]["id"], 1, "ma_xa keeps id 1 in version 2");
        let mapping: Value =
            serde_json::from_str(meta["properties"]["schema.name-mapping.default"].as_str().unwrap()).unwrap();
        assert_eq!(mapping[2], json!({"field-id": 3, "names": ["ghi_chu"]}));
    }

    #[test]
    fn manifests_are_avro_files_with_iceberg_field_ids() {
        let v = version(3, &[("ma_xa", ColumnType::String)]);
        let ids = FieldIds::of(std::slice::from_ref(&v));
        let m = manifest(&v, &ids).unwrap();
        let reader = apache_avro::Reader::new(&m[..]).unwrap();
        let schema = reader.writer_schema().clone();
        let meta = reader.user_metadata().clone();
        assert_eq!(meta.get("format-version").map(Vec::as_slice), Some(&b"2"[..]));
        let records: Vec<_> = reader.collect::<std::result::Result<_, _>>().unwrap();
        assert_eq!(records.len(), 1);
        let text = serde_json::to_string(&schema).unwrap();
        assert!(text.contains("\"field-id\":100"), "{text}");
        let list = manifest_list(&v, "s3://kho/iceberg/m.avro", m.len() as i64, Some(2)).unwrap();
        assert!(apache_avro::Reader::new(&list[..]).unwrap().count() == 1);
    }
}
