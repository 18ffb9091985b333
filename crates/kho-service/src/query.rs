//! Queries over published versions: the rows API, aggregates and read-only SQL. Every table a
//! query touches is resolved through `version_for_read`, so the one policy decides, a table the
//! caller may not read looks exactly like one that does not exist, and reads of non-open data
//! are audited.

use std::sync::Arc;

use kho_core::model::{Dataset, ResourceVersion};
use kho_core::policy::Principal;
use kho_core::{Detail, Error, ErrorCode, Result};
use kho_ingest::ForeignKeySet;
pub use kho_query::{AggregateQuery, FieldInfo, Filter, FilterOp, Measure, QueryLimits, Records, RowsQuery, SortKey};
use kho_query::{Page, Source, SqlResult, SqlTable};
use serde_json::Value;

use crate::{Ctx, Kho};

/// At most this many tables in one SQL statement.
const MAX_SQL_TABLES: usize = 20;

/// The Parquet object of a version and its table's primary key, nothing masked: for kho's own
/// reads (foreign keys), never for a reader's.
pub fn source_of(v: &ResourceVersion) -> Source {
    Source { key: v.object_key.clone(), primary_key: names(v.schema.get("primaryKey")), masks: Vec::new() }
}

/// Whether `ctx` reads the personal fields of `d` masked when it declares no purpose: the
/// owning agency holds the data for its own tasks and reads it whole (its reads of non-open
/// data are audited already); everyone it is shared with, administrators included, says why.
pub fn masked_for(ctx: &Ctx, d: &Dataset) -> bool {
    !matches!(&ctx.principal, Principal::Member(m) if m.user_id != 0 && m.agency_id == d.owner_agency_id())
}

/// Shortest and longest purpose a reader may declare.
const PURPOSE_CHARS: (usize, usize) = (10, 500);

/// What the data download of a version is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Export {
    /// The selected (or masked) records were written to the file asked for; how many.
    Written(u64),
    /// Nothing selected and nothing to mask: the version's stored object is the download.
    Object,
}

/// `name` or `name@3` (version 3).
fn split_version(name: &str) -> Result<(&str, Option<i64>)> {
    match name.rsplit_once('@') {
        Some((n, v)) => {
            let version = v.parse::<i64>().ok().filter(|v| *v > 0).ok_or_else(|| {
                Error::new(ErrorCode::InvalidQuery, format!("table \"{name}\": after '@' write a version number"))
            })?;
            Ok((n, Some(version)))
        }
        None => Ok((name, None)),
    }
}

/// A Table Schema field list: one name, or an array of them.
fn names(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
        _ => Vec::new(),
    }
}

impl Kho {
    /// How `ctx` reads version `v` of table `resource` of dataset `d`. Personal fields (Law 91/2025/QH15) are
    /// masked for readers outside the owning agency unless they declared a purpose; reading them
    /// unmasked with a purpose is recorded in the audit log with it and the fields read.
    pub(crate) async fn read_source(
        &self,
        ctx: &Ctx,
        d: &Dataset,
        v: &ResourceVersion,
        resource: &str,
    ) -> Result<Source> {
        let mut source = source_of(v);
        let personal = self.personal_fields(&v.schema).await?;
        if personal.is_empty() || !masked_for(ctx, d) {
            return Ok(source);
        }
        match ctx.purpose.as_deref() {
            Some(_) => {
                let fields: Vec<&str> = personal.iter().map(|f| f.name.as_str()).collect();
                let what = serde_json::json!({"resource": resource, "version": v.version, "fields": fields});
                self.audit_personal_read(ctx, &v.dataset_id, what).await?;
            }
            None => {
                source.masks = personal
                    .iter()
                    .map(|f| (f.name.clone(), kho_core::masking::MaskKind::for_term(f.term.as_deref())))
                    .collect();
                // Masked values need not be unique: a masked key cannot page, positions do.
                if source.primary_key.iter().any(|k| source.masks.iter().any(|(m, _)| m == k)) {
                    source.primary_key.clear();
                }
            }
        }
        Ok(source)
    }

    /// Record that `ctx` read personal data unmasked, with the purpose it declared (checked:
    /// long enough to say something, short enough to keep). `what` says which table and fields.
    pub(crate) async fn audit_personal_read(&self, ctx: &Ctx, dataset_id: &str, what: Value) -> Result<()> {
        let (min, max) = PURPOSE_CHARS;
        let purpose = ctx.purpose.as_deref().unwrap_or("");
        let n = purpose.chars().count();
        if n < min || n > max {
            return Err(Error::validation(vec![
                Detail::new(
                    "purpose",
                    format!(
                        "say why you need the personal data in {min} to {max} characters (purpose=…), e.g. 'checking the benefit file no. 123'"
                    ),
                )
                .with_vi(format!(
                    "hãy ghi rõ mục đích sử dụng dữ liệu cá nhân, từ {min} đến {max} ký tự, ví dụ «xác minh hồ sơ trợ cấp số 123»"
                )),
            ]));
        }
        let mut detail = what;
        if let Some(o) = detail.as_object_mut() {
            o.insert("purpose".into(), purpose.into());
        }
        self.store.append_audit(ctx.event("personal.read", "dataset", dataset_id).detail(detail)).await?;
        Ok(())
    }

    /// Before an outsider to the owning agency (an administrator) reads rows of an upload or a
    /// quarantine — the file's own cells, personal fields unmasked — a purpose is required and
    /// the read audited, as for the published rows.
    pub(crate) async fn outsider_reads_raw_rows(
        &self,
        ctx: &Ctx,
        d: &Dataset,
        resource_id: &str,
        what: &str,
    ) -> Result<()> {
        if !masked_for(ctx, d) {
            return Ok(());
        }
        let Some(r) = d.resources.iter().find(|r| r.id == resource_id) else { return Ok(()) };
        let personal = self.personal_fields(&r.input.schema).await?;
        if personal.is_empty() {
            return Ok(());
        }
        let fields: Vec<&str> = personal.iter().map(|f| f.name.as_str()).collect();
        let what = serde_json::json!({"resource": r.input.name, "rows": what, "fields": fields});
        self.audit_personal_read(ctx, &d.id, what).await
    }

    /// For each foreign key of `schema` (a table of `d`), the values of the referenced table's
    /// latest version. `reference.resource` names a table of the same dataset (`co-so`) or of
    /// another (`dataset-slug/co-so`); the caller must be able to read it. A self-reference
    /// (`""`) cannot be checked row by row and is left to the schema.
    pub(crate) async fn foreign_key_sets(
        &self,
        ctx: &Ctx,
        d: &Dataset,
        schema: &Value,
    ) -> Result<Vec<Arc<ForeignKeySet>>> {
        let Some(fks) = schema.get("foreignKeys").and_then(Value::as_array) else { return Ok(Vec::new()) };
        let mut out = Vec::with_capacity(fks.len());
        for (i, fk) in fks.iter().enumerate() {
            let reference = fk.get("reference");
            let resource = reference.and_then(|r| r.get("resource")).and_then(Value::as_str).unwrap_or("");
            if resource.is_empty() {
                continue;
            }
            let (dataset, table) = match resource.split_once('/') {
                Some((ds, t)) => (ds.to_string(), t.to_string()),
                None => (d.input.slug.clone(), resource.to_string()),
            };
            let path = format!("foreignKeys[{i}].reference");
            let v = self.version_for_read(ctx, &dataset, &table, None).await.map_err(|e| match e.code {
                ErrorCode::NotFound | ErrorCode::Forbidden => Error::validation(vec![Detail::new(
                    format!("{path}.resource"),
                    format!("table '{resource}' is not found, not readable to you, or has no published version yet"),
                )]),
                _ => e,
            })?;
            let reference_fields = names(reference.and_then(|r| r.get("fields")));
            // Checking a file's values against another table's tells which of them it holds:
            // against personal fields the caller reads masked, that would show hidden values.
            let (_, referenced) = resource.split_once('/').unwrap_or(("", resource));
            let owner = self.store.dataset(&v.dataset_id).await?.ok_or_else(|| Error::not_found("dataset"))?;
            let source = self.read_source(ctx, &owner, &v, referenced).await?;
            let hidden: Vec<&str> = reference_fields
                .iter()
                .filter(|f| source.masks.iter().any(|(m, _)| m == *f))
                .map(String::as_str)
                .collect();
            if !hidden.is_empty() {
                let list = hidden.join(", ");
                return Err(Error::validation(vec![
                    Detail::new(
                        format!("{path}.fields"),
                        format!(
                            "field(s) {list} of table '{resource}' are personal data of another agency: a foreign key cannot point to them without a declared purpose"
                        ),
                    )
                    .with_vi(format!(
                        "trường {list} của bảng «{resource}» là dữ liệu cá nhân của cơ quan khác: khóa ngoại không được trỏ tới khi chưa khai báo mục đích sử dụng"
                    )),
                ]));
            }
            let values = self
                .query
                .key_values(&source_of(&v), &reference_fields, kho_ingest::validate::KEY_SEPARATOR)
                .await
                .map_err(|e| match e.code {
                    ErrorCode::InvalidQuery => {
                        Error::validation(vec![Detail::new(format!("{path}.fields"), e.message)])
                    }
                    _ => e,
                })?;
            out.push(Arc::new(ForeignKeySet {
                fields: names(fk.get("fields")),
                table: resource.to_string(),
                reference_fields,
                values,
            }));
        }
        Ok(out)
    }

    /// A page of records of a version (`None`: the latest).
    pub async fn rows(
        &self,
        ctx: &Ctx,
        dataset: &str,
        resource: &str,
        version: Option<i64>,
        query: &RowsQuery,
    ) -> Result<(ResourceVersion, Page)> {
        let d = self.store.dataset(dataset).await?.ok_or_else(|| Error::not_found("dataset"))?;
        self.rows_in(ctx, &d, resource, version, query).await
    }

    /// Rows of a table of a dataset already read (the CKAN API finds the dataset by its table's
    /// id), if the caller may read it.
    pub async fn rows_in(
        &self,
        ctx: &Ctx,
        d: &Dataset,
        resource: &str,
        version: Option<i64>,
        query: &RowsQuery,
    ) -> Result<(ResourceVersion, Page)> {
        let v = self.version_in(ctx, d, resource, version).await?;
        let source = self.read_source(ctx, d, &v, resource).await?;
        let page = self.query.rows(&source, query).await?;
        Ok((v, page))
    }

    /// The records of a version matching `query` (filters, search, sort and fields; paging
    /// ignored), written as Parquet to `out`, for a download "as filtered". Read like a page of
    /// rows: the same access check, reads of non-open data audited, personal fields masked
    /// unless a purpose was declared. Without a query and with nothing to mask, nothing is
    /// written: the stored object is the download ([`Export::Object`]).
    pub(crate) async fn export_rows(
        &self,
        ctx: &Ctx,
        dataset: &str,
        resource: &str,
        version: Option<i64>,
        query: Option<&RowsQuery>,
        out: &std::path::Path,
    ) -> Result<(ResourceVersion, Export)> {
        let d = self.store.dataset(dataset).await?.ok_or_else(|| Error::not_found("dataset"))?;
        let v = self.version_in(ctx, &d, resource, version).await?;
        let source = self.read_source(ctx, &d, &v, resource).await?;
        if query.is_none() && source.masks.is_empty() {
            return Ok((v, Export::Object));
        }
        let everything = RowsQuery::default();
        let n = self.query.export(&source, query.unwrap_or(&everything), out).await?;
        Ok((v, Export::Written(n)))
    }

    /// Group-by aggregates of a version (`None`: the latest).
    pub async fn aggregate(
        &self,
        ctx: &Ctx,
        dataset: &str,
        resource: &str,
        version: Option<i64>,
        query: &AggregateQuery,
    ) -> Result<(ResourceVersion, Page)> {
        let d = self.store.dataset(dataset).await?.ok_or_else(|| Error::not_found("dataset"))?;
        let v = self.version_in(ctx, &d, resource, version).await?;
        let source = self.read_source(ctx, &d, &v, resource).await?;
        let page = self.query.aggregate(&source, query).await?;
        Ok((v, page))
    }

    /// Run one read-only SQL statement. Tables are named `"dataset-slug"."table"` (the latest
    /// version), `"dataset-slug"."table@2"` (version 2), or `"dataset-slug"` alone for a dataset
    /// with one table. Every table is checked before anything runs.
    pub async fn sql(&self, ctx: &Ctx, sql: &str) -> Result<SqlResult> {
        let tables = self.query.sql_tables(sql).await?;
        if tables.len() > MAX_SQL_TABLES {
            return Err(Error::new(
                ErrorCode::InvalidQuery,
                format!("a statement may read at most {MAX_SQL_TABLES} tables ({} named)", tables.len()),
            ));
        }
        let mut resolved = Vec::with_capacity(tables.len());
        for t in tables {
            let v = self.resolve_sql_table(ctx, &t).await?;
            let owner = self.store.dataset(&v.dataset_id).await?.ok_or_else(|| Error::not_found("dataset"))?;
            let source = self.read_source(ctx, &owner, &v, &t.to_string()).await?;
            resolved.push((t, source));
        }
        self.query.sql(sql, &resolved).await
    }

    async fn resolve_sql_table(&self, ctx: &Ctx, t: &SqlTable) -> Result<ResourceVersion> {
        let not_found = || {
            Error::new(
                ErrorCode::NotFound,
                format!(
                    "table {t} not found (name tables \"dataset-slug\".\"table\"; check the spelling and that you may read it)"
                ),
            )
        };
        let (dataset, resource, version) = match &t.schema {
            Some(schema) => {
                let (name, version) = split_version(&t.table)?;
                (schema.clone(), name.to_string(), version)
            }
            None => {
                let (slug, version) = split_version(&t.table)?;
                let d = match self.store.dataset(slug).await? {
                    Some(d) => d,
                    // A table may also be named by its id, as CKAN's datastore_search_sql does.
                    None => {
                        let (d, r) = self.resource_by_id(ctx, slug).await.map_err(|_| not_found())?;
                        return self
                            .version_for_read(ctx, &d.id, &r.input.name, version)
                            .await
                            .map_err(|e| if e.code == ErrorCode::NotFound { not_found() } else { e });
                    }
                };
                match d.resources.as_slice() {
                    [only] => (slug.to_string(), only.input.name.clone(), version),
                    _ => {
                        // Existence of a dataset the caller may not read must not show: check
                        // the right before explaining that the name is ambiguous.
                        kho_core::policy::check_dataset(
                            &ctx.principal,
                            kho_core::policy::Action::Read,
                            crate::catalog::access(&d),
                        )
                        .map_err(|_| not_found())?;
                        let names: Vec<&str> = d.resources.iter().map(|r| r.input.name.as_str()).collect();
                        return Err(Error::new(
                            ErrorCode::InvalidQuery,
                            format!(
                                "dataset \"{slug}\" has {} tables; name one, e.g. \"{slug}\".\"{}\"",
                                names.len(),
                                names.first().copied().unwrap_or("table")
                            ),
                        ));
                    }
                }
            }
        };
        self.version_for_read(ctx, &dataset, &resource, version).await.map_err(|e| match e.code {
            ErrorCode::NotFound | ErrorCode::Forbidden => not_found(),
            _ => e,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_suffix() {
        assert_eq!(split_version("dan_so@2").unwrap(), ("dan_so", Some(2)));
        assert_eq!(split_version("dan_so").unwrap(), ("dan_so", None));
        assert!(split_version("dan_so@x").is_err());
        assert!(split_version("dan_so@0").is_err());
    }
}
