//! The metadata as rows, table by table, in one form that every backend reads and writes: for
//! moving an instance to another backend (`kho migrate`) and for backups (`kho backup`,
//! `kho restore`). The tables and their columns are declared once, here; each backend turns its
//! own column types into these [`Kind`]s and back, so an archive made from SQLite restores into
//! PostgreSQL and the reverse.
//!
//! Values: integers as JSON numbers, text and UUIDs as strings, booleans as booleans, times as
//! RFC 3339 strings in UTC, days as `YYYY-MM-DD`, JSON columns as JSON; null as null.

use async_trait::async_trait;
use kho_core::Result;
use serde_json::Value;

/// What a column holds, whatever type the backend stores it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Text,
    Bool,
    /// A moment (`timestamptz` in PostgreSQL, RFC 3339 text in SQLite).
    Time,
    /// A calendar day.
    Date,
    Uuid,
    /// A JSON document (`jsonb` in PostgreSQL, text in SQLite).
    Json,
}

#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    /// Columns in the order of a dumped row.
    pub columns: &'static [(&'static str, Kind)],
    /// The order rows are dumped and loaded in (parents before the rows that refer to them).
    pub order_by: &'static str,
}

impl Table {
    pub fn column_names(&self) -> Vec<&'static str> {
        self.columns.iter().map(|(n, _)| *n).collect()
    }

    /// A row to load must have a value for each column, in order.
    pub fn check_width(&self, row: &[Value]) -> Result<()> {
        if row.len() == self.columns.len() {
            return Ok(());
        }
        Err(kho_core::Error::internal(format!(
            "{}: a row has {} values for {} columns",
            self.name,
            row.len(),
            self.columns.len()
        )))
    }
}

use Kind::*;

/// Every table of the metadata, in load order: a table comes after those it refers to.
pub const TABLES: &[Table] = &[
    Table { name: "settings", columns: &[("key", Text), ("value", Text)], order_by: "key" },
    Table {
        name: "admin_units",
        columns: &[
            ("era", Text),
            ("code", Text),
            ("level", Text),
            ("name", Text),
            ("full_name", Text),
            ("name_en", Text),
            ("unit_type", Text),
            ("unit_type_en", Text),
            ("parent_code", Text),
            ("name_folded", Text),
        ],
        order_by: "era, code",
    },
    Table {
        name: "admin_crosswalk",
        columns: &[("old_code", Text), ("new_code", Text), ("partial", Bool)],
        order_by: "old_code, new_code",
    },
    Table {
        name: "agencies",
        columns: &[
            ("id", Int),
            ("code", Text),
            ("name", Text),
            ("name_en", Text),
            ("kind", Text),
            ("parent_id", Int),
            ("admin_unit_code", Text),
            ("created_at", Time),
        ],
        // A parent agency exists before its children, so it has the smaller id.
        order_by: "id",
    },
    Table {
        name: "users",
        columns: &[
            ("id", Int),
            ("username", Text),
            ("display_name", Text),
            ("email", Text),
            ("agency_id", Int),
            ("role", Text),
            ("active", Bool),
            ("password_hash", Text),
            ("must_change_password", Bool),
            ("created_at", Time),
        ],
        order_by: "id",
    },
    Table { name: "login_failures", columns: &[("key", Text), ("at", Time)], order_by: "key, at" },
    Table {
        name: "sessions",
        columns: &[
            ("secret_hash", Text),
            ("user_id", Int),
            ("csrf_token", Text),
            ("created_at", Time),
            ("expires_at", Time),
        ],
        order_by: "secret_hash",
    },
    Table {
        name: "api_tokens",
        columns: &[
            ("id", Int),
            ("name", Text),
            ("prefix", Text),
            ("secret_hash", Text),
            ("user_id", Int),
            ("agency_id", Int),
            ("role", Text),
            ("created_at", Time),
            ("expires_at", Time),
            ("revoked_at", Time),
            ("last_used_at", Time),
        ],
        order_by: "id",
    },
    Table {
        name: "datasets",
        columns: &[
            ("id", Uuid),
            ("slug", Text),
            ("owner_agency_id", Int),
            ("access_level", Text),
            ("revision", Int),
            ("body", Json),
            ("search_text", Text),
            ("created_at", Time),
            ("modified_at", Time),
            ("deleted_at", Time),
        ],
        order_by: "id",
    },
    Table {
        name: "dataset_allowed_agencies",
        columns: &[("dataset_id", Uuid), ("agency_id", Int)],
        order_by: "dataset_id, agency_id",
    },
    Table {
        name: "resources",
        columns: &[
            ("id", Uuid),
            ("dataset_id", Uuid),
            ("name", Text),
            ("position", Int),
            ("body", Json),
            ("created_at", Time),
            ("modified_at", Time),
        ],
        order_by: "id",
    },
    Table {
        name: "dataset_revisions",
        columns: &[
            ("dataset_id", Uuid),
            ("revision", Int),
            ("change", Text),
            ("changed_by", Text),
            ("changed_at", Time),
            ("snapshot", Json),
        ],
        order_by: "dataset_id, revision",
    },
    Table {
        name: "dictionary_terms",
        columns: &[
            ("name", Text),
            ("version", Int),
            ("title", Text),
            ("title_en", Text),
            ("description", Text),
            ("description_en", Text),
            ("field_type", Text),
            ("format", Text),
            ("constraints", Json),
            ("refs", Text),
            ("examples", Json),
            ("personal", Bool),
            ("created_at", Time),
        ],
        order_by: "name, version",
    },
    Table {
        name: "audit_log",
        // `detail` is the JSON text exactly as hashed: text, never re-encoded.
        columns: &[
            ("seq", Int),
            ("at", Time),
            ("actor", Text),
            ("action", Text),
            ("object_type", Text),
            ("object_id", Text),
            ("ip", Text),
            ("outcome", Text),
            ("detail", Text),
            ("prev_hash", Text),
            ("hash", Text),
        ],
        order_by: "seq",
    },
    Table {
        name: "uploads",
        columns: &[
            ("id", Uuid),
            ("dataset_id", Uuid),
            ("resource_id", Uuid),
            ("resource_name", Text),
            ("file_name", Text),
            ("bytes", Int),
            ("status", Text),
            ("rows", Int),
            ("valid_rows", Int),
            ("invalid_rows", Int),
            ("report", Json),
            ("created_by", Text),
            ("created_at", Time),
            ("version", Int),
        ],
        order_by: "id",
    },
    Table {
        name: "resource_versions",
        columns: &[
            ("resource_id", Uuid),
            ("version", Int),
            ("dataset_id", Uuid),
            ("rows", Int),
            ("bytes", Int),
            ("schema_hash", Text),
            ("schema", Json),
            ("object_key", Text),
            ("quarantine_key", Text),
            ("quarantined_rows", Int),
            ("rows_added", Int),
            ("rows_removed", Int),
            ("rows_changed", Int),
            ("upload_id", Uuid),
            ("published_by", Text),
            ("published_at", Time),
            ("quality", Json),
        ],
        order_by: "resource_id, version",
    },
    Table {
        name: "dataset_usage",
        columns: &[("dataset_id", Uuid), ("day", Date), ("views", Int), ("downloads", Int)],
        order_by: "dataset_id, day",
    },
    Table {
        name: "feedback",
        columns: &[
            ("id", Int),
            ("kind", Text),
            ("dataset_id", Uuid),
            ("agency_id", Int),
            ("category", Text),
            ("title", Text),
            ("body", Text),
            ("contact", Text),
            ("status", Text),
            ("answer", Text),
            ("answered_by", Text),
            ("answered_at", Time),
            ("created_at", Time),
        ],
        order_by: "id",
    },
    Table {
        name: "dataset_ratings",
        columns: &[("id", Int), ("dataset_id", Uuid), ("stars", Int), ("day", Date)],
        order_by: "id",
    },
];

/// The tables a load refuses to write into unless they are empty: what makes an instance.
pub const MUST_BE_EMPTY: &[&str] = &["agencies", "users", "datasets", "audit_log"];

/// The table of this name.
pub fn table(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.name == name)
}

/// Where a dump's rows go, table by table in [`TABLES`] order.
pub trait DumpSink: Send {
    fn table(&mut self, table: &'static Table) -> Result<()>;
    fn row(&mut self, values: Vec<Value>) -> Result<()>;
}

/// Reading and writing the metadata as rows ([`TABLES`]).
#[async_trait]
pub trait DumpStore: Send + Sync {
    /// Every row of every table, read in one consistent snapshot (a copy taken while kho runs
    /// never holds a version without its dataset, or a chain with a gap).
    async fn dump(&self, sink: &mut dyn DumpSink) -> Result<()>;
    /// Rows in each table that must be empty before a load (see [`MUST_BE_EMPTY`]).
    async fn rows_in(&self, table: &'static Table) -> Result<i64>;
    /// Add rows, as dumped, to a table; in one transaction per call.
    async fn load(&self, table: &'static Table, rows: &[Vec<Value>]) -> Result<()>;
    /// After the last load: counters that number new rows move past the loaded ones, and
    /// whatever the backend must refresh.
    async fn finish_load(&self) -> Result<()>;
}

/// A dumped value that is not of its column's kind: an archive written by another program.
pub fn bad_value(table: &Table, column: &str, value: &Value) -> kho_core::Error {
    let shown: String = value.to_string().chars().take(60).collect();
    kho_core::Error::internal(format!("{}.{column}: the value {shown} is not what this column holds", table.name))
}
