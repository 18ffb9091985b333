//! The query engine: one DataFusion runtime (memory pool, object store) shared by all queries,
//! and the cache of versions held in memory.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::execution::memory_pool::{FairSpillPool, MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use futures_util::StreamExt;
use kho_core::{Error, ErrorCode, Result};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::df_err;
use crate::exec::Executor;
use crate::{AggregateQuery, Page, RowsQuery, SqlResult, SqlTable};

/// The URL under which the blob store is known to DataFusion.
const STORE_URL: &str = "kho://objects";

/// The runtime of one SQL statement: the shared one's object store, disk and caches, and a
/// memory pool of its own, of `limit` bytes, drawing on the shared pool. One statement cannot
/// take all the memory the queries share, and all together stay within it.
pub(crate) fn statement_runtime(shared: &Arc<RuntimeEnv>, limit: usize) -> Result<Arc<RuntimeEnv>> {
    let pool = Arc::new(StatementPool { shared: shared.memory_pool.clone(), limit, used: AtomicUsize::new(0) });
    RuntimeEnvBuilder::from_runtime_env(shared).with_memory_pool(pool).build_arc().map_err(df_err)
}

/// A statement's share of the shared memory pool.
#[derive(Debug)]
struct StatementPool {
    shared: Arc<dyn MemoryPool>,
    limit: usize,
    used: AtomicUsize,
}

impl std::fmt::Display for StatementPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "statement pool: {} of {} bytes", self.used.load(Ordering::Acquire), self.limit)
    }
}

impl MemoryPool for StatementPool {
    fn name(&self) -> &str {
        "statement"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.shared.register(consumer);
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.shared.unregister(consumer);
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.used.fetch_add(additional, Ordering::AcqRel);
        self.shared.grow(reservation, additional);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.used.fetch_sub(shrink, Ordering::AcqRel);
        self.shared.shrink(reservation, shrink);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> datafusion::error::Result<()> {
        let before = self.used.fetch_add(additional, Ordering::AcqRel);
        if before.saturating_add(additional) > self.limit {
            self.used.fetch_sub(additional, Ordering::AcqRel);
            return Err(datafusion::error::DataFusionError::ResourcesExhausted(format!(
                "one statement may use {} MB; {} MB more were asked for by {}",
                self.limit >> 20,
                additional.div_ceil(1 << 20),
                reservation.consumer().name()
            )));
        }
        if let Err(e) = self.shared.try_grow(reservation, additional) {
            self.used.fetch_sub(additional, Ordering::AcqRel);
            return Err(e);
        }
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    fn memory_limit(&self) -> MemoryLimit {
        MemoryLimit::Finite(self.limit)
    }
}

/// Batches read from Parquet (8,192 rows each) are merged by this many when held in memory.
const MERGE_BATCHES: usize = 8;

/// How many times its Parquet size a version is taken to need in memory, for the cache's
/// decision before reading it.
const IN_MEMORY_GROWTH: u64 = 4;

/// One published version to read: its Parquet object and the table's primary key (used to make
/// sort orders total, which keyset paging needs).
#[derive(Debug, Clone)]
pub struct Source {
    pub key: String,
    pub primary_key: Vec<String>,
    /// Personal fields to show masked (the reader declared no purpose): every query over the
    /// source sees the masked values only, as text.
    pub masks: Vec<(String, kho_core::masking::MaskKind)>,
}

#[derive(Debug, Clone)]
pub struct QueryLimits {
    /// Versions are held in memory, least recently used evicted, up to this many bytes; a
    /// version larger than half of it is always scanned from Parquet.
    pub cache_bytes: u64,
    /// Memory all running queries may use together for sorting, grouping and joining; past it
    /// operators spill to disk or the query fails with `query_limit`.
    pub memory_bytes: usize,
    /// Wall-clock limit of one SQL statement.
    pub sql_timeout: Duration,
    /// At most this many rows in an SQL answer (the answer says when it was cut).
    pub sql_max_rows: usize,
    /// Threads one SQL statement may use.
    pub sql_threads: usize,
}

impl QueryLimits {
    /// Memory one SQL statement may use: a quarter of what all queries share (at least 64 MB),
    /// so that a few statements at once still fit.
    pub fn statement_memory_bytes(&self) -> usize {
        (self.memory_bytes / 4).max(64 << 20)
    }
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            cache_bytes: 1 << 30,
            memory_bytes: 2 << 30,
            sql_timeout: Duration::from_secs(30),
            sql_max_rows: 10_000,
            sql_threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
        }
    }
}

struct Slot {
    /// The version scanned from its Parquet object (opened once: the footer is read once).
    parquet: tokio::sync::OnceCell<Arc<dyn TableProvider>>,
    /// The version in memory, once loaded.
    memory: std::sync::OnceLock<Arc<dyn TableProvider>>,
    /// A load into memory has been started (or the version was judged too large for it).
    loading: std::sync::atomic::AtomicBool,
    bytes: AtomicU64,
    last_used: AtomicU64,
}

#[derive(Default)]
struct Cache {
    slots: HashMap<String, Arc<Slot>>,
    tick: u64,
}

pub struct QueryEngine {
    store: Arc<dyn ObjectStore>,
    /// Put before every version's key: where kho's objects are in the store (`""`, or a
    /// bucket's folder such as `son-la/`).
    key_prefix: String,
    pub(crate) runtime: Arc<RuntimeEnv>,
    pub(crate) limits: QueryLimits,
    /// Rows queries run on one partition so that, without a sort, rows come in the order they
    /// were loaded and offset paging is stable; their cost is small per request, and concurrent
    /// requests use the other cores.
    pub(crate) rows_ctx: SessionContext,
    cache: Arc<Mutex<Cache>>,
    /// Totals of filtered queries, by version and filter: versions never change.
    counts: Mutex<HashMap<String, u64>>,
    /// Every query runs on these threads (see [`crate::exec`]).
    exec: Executor,
}

impl QueryEngine {
    pub fn new(store: Arc<dyn ObjectStore>, key_prefix: &str, limits: QueryLimits) -> Result<Arc<QueryEngine>> {
        let key_prefix = match key_prefix.trim_matches('/') {
            "" => String::new(),
            p => format!("{p}/"),
        };
        let url = url::Url::parse(STORE_URL).map_err(|e| Error::internal(format!("store URL: {e}")))?;
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(FairSpillPool::new(limits.memory_bytes)))
            .build_arc()
            .map_err(df_err)?;
        runtime.register_object_store(&url, store.clone());
        let config = SessionConfig::new().with_target_partitions(1).with_repartition_file_scans(false);
        let rows_ctx = SessionContext::new_with_config_rt(config, runtime.clone());
        rows_ctx.register_udf(crate::fold_udf());
        let exec = Executor::new(limits.sql_threads)?;
        Ok(Arc::new(QueryEngine {
            store,
            key_prefix,
            runtime,
            limits,
            rows_ctx,
            cache: Arc::default(),
            counts: Mutex::new(HashMap::new()),
            exec,
        }))
    }

    /// Run `work` on the query threads within the time limit of one query. Past the limit the
    /// work is aborted and the caller gets `query_limit`.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        let limit = self.limits.sql_timeout;
        tokio::time::timeout(limit, self.exec.run(work)).await.map_err(|_| {
            Error::new(
                ErrorCode::QueryLimit,
                format!("the query ran longer than {} s and was stopped", limit.as_secs_f64()),
            )
        })?
    }

    /// One page of records of a version.
    pub async fn rows(self: &Arc<Self>, source: &Source, query: &RowsQuery) -> Result<Page> {
        let (this, source, query) = (self.clone(), source.clone(), query.clone());
        self.run(async move { this.rows_now(&source, &query).await }).await
    }

    /// Every record matching a query's filters, search and sort (paging ignored), written as a
    /// Parquet file to `out`; the number of records.
    pub async fn export(self: &Arc<Self>, source: &Source, query: &RowsQuery, out: &std::path::Path) -> Result<u64> {
        let (this, source, query, out) = (self.clone(), source.clone(), query.clone(), out.to_path_buf());
        self.run(async move { this.export_now(&source, &query, &out).await }).await
    }

    /// Group-by aggregates of a version.
    pub async fn aggregate(self: &Arc<Self>, source: &Source, query: &AggregateQuery) -> Result<Page> {
        let (this, source, query) = (self.clone(), source.clone(), query.clone());
        self.run(async move { this.aggregate_now(&source, &query).await }).await
    }

    /// Every distinct combination of `fields`' values in a version, as text (parts joined by
    /// `separator`; rows with an empty part left out): what a foreign key of another table
    /// may point to.
    pub async fn key_values(
        self: &Arc<Self>,
        source: &Source,
        fields: &[String],
        separator: char,
    ) -> Result<HashSet<String>> {
        let (this, source, fields) = (self.clone(), source.clone(), fields.to_vec());
        self.run(async move { this.key_values_now(&source, &fields, separator).await }).await
    }

    /// Check that `sql` is one read-only statement of a bounded shape and list the tables it
    /// reads (see [`crate::sql_tables`]); parsed on the query threads, whose stack any statement
    /// within the size limit fits.
    pub async fn sql_tables(self: &Arc<Self>, sql: &str) -> Result<Vec<SqlTable>> {
        let sql = sql.to_string();
        self.run(async move { crate::sql::sql_tables(&sql) }).await
    }

    /// Run a statement already checked by [`QueryEngine::sql_tables`], over exactly the given
    /// tables; planning and execution share the time limit and the memory pool.
    pub async fn sql(self: &Arc<Self>, sql: &str, tables: &[(SqlTable, Source)]) -> Result<SqlResult> {
        let (this, sql, tables) = (self.clone(), sql.to_string(), tables.to_vec());
        self.run(async move { this.sql_now(&sql, &tables).await }).await
    }

    /// A version as a DataFusion table: from memory once it is loaded there, else scanned from
    /// its Parquet object (see [`QueryEngine::load_after_use`] for when it is loaded).
    pub(crate) async fn table(&self, key: &str) -> Result<Arc<dyn TableProvider>> {
        let slot = {
            let mut cache = self.cache.lock().map_err(|_| Error::internal("query cache poisoned"))?;
            cache.tick += 1;
            let tick = cache.tick;
            let slot = cache
                .slots
                .entry(key.to_string())
                .or_insert_with(|| {
                    Arc::new(Slot {
                        parquet: tokio::sync::OnceCell::new(),
                        memory: std::sync::OnceLock::new(),
                        loading: false.into(),
                        bytes: AtomicU64::new(0),
                        last_used: AtomicU64::new(tick),
                    })
                })
                .clone();
            slot.last_used.store(tick, Ordering::Relaxed);
            slot
        };
        if let Some(t) = slot.memory.get() {
            return Ok(t.clone());
        }
        let parquet = slot
            .parquet
            .get_or_try_init(|| async {
                let df = self
                    .rows_ctx
                    .read_parquet(format!("{STORE_URL}/{}{key}", self.key_prefix), ParquetReadOptions::default())
                    .await
                    .map_err(df_err)?;
                Ok::<_, Error>(df.into_view())
            })
            .await?
            .clone();
        Ok(parquet)
    }

    /// The table a query over `source` reads: the version itself, or a view of it in which the
    /// personal fields to mask are replaced by their masked text (same names, same order).
    pub(crate) async fn source_table(&self, source: &Source) -> Result<Arc<dyn TableProvider>> {
        let provider = self.table(&source.key).await?;
        if source.masks.is_empty() {
            return Ok(provider);
        }
        let schema = provider.schema();
        let columns: Vec<datafusion::prelude::Expr> = schema
            .fields()
            .iter()
            .map(|f| {
                let c = datafusion::prelude::ident(f.name());
                match source.masks.iter().find(|(n, _)| n == f.name()) {
                    Some((_, kind)) => crate::mask_udf()
                        .call(vec![
                            datafusion::prelude::cast(c, arrow::datatypes::DataType::Utf8),
                            datafusion::prelude::lit(kind.as_str()),
                        ])
                        .alias(f.name()),
                    None => c,
                }
            })
            .collect();
        let view = self.rows_ctx.read_table(provider).map_err(df_err)?.select(columns).map_err(df_err)?;
        Ok(view.into_view())
    }

    /// After a query on a version has answered, start loading the version into memory in the
    /// background if it is not there yet. Not while the query runs: on a small server the load
    /// would take the cores that first query needs, and no query waits for a load.
    pub(crate) async fn load_after_use(&self, key: &str) {
        let slot = match self.cache.lock() {
            Ok(cache) => cache.slots.get(key).cloned(),
            Err(_) => None,
        };
        let Some(slot) = slot.filter(|s| s.memory.get().is_none()) else { return };
        let Some(parquet) = slot.parquet.get().cloned() else { return };
        if !slot.loading.swap(true, Ordering::AcqRel)
            && let Err(e) = self.start_loading(key, slot.clone(), parquet).await
        {
            // The version stays readable from Parquet; a later query tries again.
            tracing::warn!(key, error = %e, "could not start loading a version into memory");
            slot.loading.store(false, Ordering::Release);
        }
    }

    /// Load a version into memory in the background if it fits the cache. Compressed,
    /// dictionary-encoded Parquet grows several times over in memory: judge by the file.
    async fn start_loading(&self, key: &str, slot: Arc<Slot>, parquet: Arc<dyn TableProvider>) -> Result<()> {
        let head = self
            .store
            .head(&ObjectPath::from(format!("{}{key}", self.key_prefix)))
            .await
            .map_err(|e| Error::internal(format!("reading {key}: {e}")))?;
        if head.size.saturating_mul(IN_MEMORY_GROWTH) > self.limits.cache_bytes / 2 {
            tracing::debug!(key, bytes = head.size, "version too large to cache; scanning Parquet");
            return Ok(());
        }
        let (ctx, cache, budget, key) =
            (self.rows_ctx.clone(), self.cache.clone(), self.limits.cache_bytes, key.to_string());
        tokio::spawn(async move {
            let loaded = async {
                // The Parquet table already opened (its footer read once).
                let df = ctx.read_table(parquet).map_err(df_err)?;
                let schema = Arc::new(df.schema().as_arrow().clone());
                // Fewer, larger batches: every scan of a memory table walks its batches (and
                // their statistics), which for small pages costs more than the filtering. They
                // are merged as they arrive, so memory never holds the version twice.
                let mut stream = df.execute_stream().await.map_err(df_err)?;
                let (mut batches, mut pending) = (Vec::new(), Vec::with_capacity(MERGE_BATCHES));
                while let Some(b) = stream.next().await {
                    pending.push(b.map_err(df_err)?);
                    if pending.len() == MERGE_BATCHES {
                        batches.push(merge(&schema, &mut pending, &key)?);
                    }
                }
                if !pending.is_empty() {
                    batches.push(merge(&schema, &mut pending, &key)?);
                }
                let bytes: u64 = batches.iter().map(|b| b.get_array_memory_size() as u64).sum();
                Ok::<_, Error>((MemTable::try_new(schema, vec![batches]).map_err(df_err)?, bytes))
            }
            .await;
            match loaded {
                Ok((table, bytes)) => {
                    slot.bytes.store(bytes, Ordering::Relaxed);
                    let _ = slot.memory.set(Arc::new(table));
                    evict(&cache, budget, &key);
                }
                // The version stays readable from Parquet; a later read tries again.
                Err(e) => {
                    tracing::warn!(key, error = %e, "loading a version into memory failed");
                    slot.loading.store(false, Ordering::Release);
                }
            }
        });
        Ok(())
    }

    /// Bytes and number of versions held in memory now.
    pub fn cache_usage(&self) -> (u64, usize) {
        self.cache
            .lock()
            .map(|c| {
                let loaded = c.slots.values().filter(|s| s.memory.get().is_some());
                loaded.fold((0, 0), |(b, n), s| (b + s.bytes.load(Ordering::Relaxed), n + 1))
            })
            .unwrap_or((0, 0))
    }

    pub(crate) fn cached_count(&self, key: &str) -> Option<u64> {
        self.counts.lock().ok()?.get(key).copied()
    }

    pub(crate) fn remember_count(&self, key: String, n: u64) {
        if let Ok(mut counts) = self.counts.lock() {
            // Bounded: when full, start over rather than track recency for a cheap cache.
            if counts.len() >= 10_000 {
                counts.clear();
            }
            counts.insert(key, n);
        }
    }
}

fn merge(
    schema: &arrow::datatypes::SchemaRef,
    pending: &mut Vec<arrow::record_batch::RecordBatch>,
    key: &str,
) -> Result<arrow::record_batch::RecordBatch> {
    let merged =
        arrow::compute::concat_batches(schema, pending.iter()).map_err(|e| Error::internal(format!("{key}: {e}")))?;
    pending.clear();
    Ok(merged)
}

/// Drop the least recently used versions held in memory until the cache fits its budget again
/// (a dropped version is read from Parquet until it is loaded again).
fn evict(cache: &Mutex<Cache>, budget: u64, keep: &str) {
    let Ok(mut cache) = cache.lock() else { return };
    loop {
        let total: u64 = cache.slots.values().map(|s| s.bytes.load(Ordering::Relaxed)).sum();
        if total <= budget {
            return;
        }
        let victim = cache
            .slots
            .iter()
            .filter(|(k, s)| k.as_str() != keep && s.memory.get().is_some())
            .min_by_key(|(_, s)| s.last_used.load(Ordering::Relaxed))
            .map(|(k, _)| k.clone());
        match victim {
            Some(k) => {
                cache.slots.remove(&k);
            }
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Filter, RowsQuery, SortKey};
    use arrow::array::{ArrayRef, Int64Array, StringArray};
    use arrow::record_batch::RecordBatch;

    /// A Parquet object of `n` rows in a local store.
    async fn put(store: &Arc<dyn ObjectStore>, key: &str, n: i64) {
        let ids: ArrayRef = Arc::new(StringArray::from((0..n).map(|i| format!("H{i:05}")).collect::<Vec<_>>()));
        let vals: ArrayRef = Arc::new(Int64Array::from((0..n).map(|i| (i * 7) % 50).collect::<Vec<_>>()));
        let batch = RecordBatch::try_from_iter([("ma", ids), ("so", vals)]).unwrap();
        let mut buf = Vec::new();
        let props = parquet::file::properties::WriterProperties::builder()
            .set_compression(parquet::basic::Compression::SNAPPY)
            .build();
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        store.put(&ObjectPath::from(key), buf.into()).await.unwrap();
    }

    async fn wait_loaded(engine: &QueryEngine, key: &str) -> bool {
        for _ in 0..500 {
            let loaded = engine.cache.lock().unwrap().slots.get(key).is_some_and(|s| s.memory.get().is_some());
            if loaded {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    #[tokio::test]
    async fn parquet_and_memory_answer_alike_and_the_cache_keeps_its_budget() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> =
            Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        put(&store, "a/data.parquet", 20_000).await;
        put(&store, "b/data.parquet", 20_000).await;
        // Room for about one of the two tables in memory.
        let limits = QueryLimits { cache_bytes: 2_000_000, ..Default::default() };
        let engine = QueryEngine::new(store, "", limits).unwrap();
        let source = |k: &str| Source { key: k.into(), primary_key: vec!["ma".into()], masks: Vec::new() };
        let query = RowsQuery {
            filters: vec![Filter::parse("so:gte:45").unwrap()],
            sort: SortKey::parse_list("-so").unwrap(),
            limit: 7,
            offset: 3,
            ..Default::default()
        };
        let first = engine.rows(&source("a/data.parquet"), &query).await.unwrap();
        assert!(wait_loaded(&engine, "a/data.parquet").await, "a small version is loaded into memory");
        let again = engine.rows(&source("a/data.parquet"), &query).await.unwrap();
        assert_eq!(first.records, again.records);
        assert_eq!(first.total, Some(2_000));
        assert_eq!(first.records.values().unwrap()[0], serde_json::json!({"ma": "H00157", "so": 49}));

        engine.rows(&source("b/data.parquet"), &query).await.unwrap();
        assert!(wait_loaded(&engine, "b/data.parquet").await);
        let (bytes, versions) = engine.cache_usage();
        assert!(bytes <= 2_000_000 && versions == 1, "{bytes} bytes in {versions} versions cached");
        // The evicted version is still answered, from Parquet.
        let back = engine.rows(&source("a/data.parquet"), &query).await.unwrap();
        assert_eq!(back.records, first.records);
    }

    #[tokio::test]
    async fn masked_fields_are_masked_for_every_query() {
        use kho_core::masking::MaskKind;
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> =
            Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        put(&store, "p/data.parquet", 30).await;
        let engine = QueryEngine::new(store, "", QueryLimits::default()).unwrap();
        let masked = Source {
            key: "p/data.parquet".into(),
            primary_key: Vec::new(),
            masks: vec![("ma".into(), MaskKind::Identifier), ("so".into(), MaskKind::Identifier)],
        };
        let page = engine.rows(&masked, &RowsQuery { limit: 2, ..Default::default() }).await.unwrap();
        assert_eq!(page.records.values().unwrap()[0], serde_json::json!({"ma": "H*****", "so": "*"}));
        // A filter cannot probe a hidden value: it sees the masked text only.
        let probe = RowsQuery { filters: vec![Filter::parse("ma:eq:H00001").unwrap()], ..Default::default() };
        assert_eq!(engine.rows(&masked, &probe).await.unwrap().total, Some(0));
        let open = Source { masks: Vec::new(), ..masked.clone() };
        assert_eq!(engine.rows(&open, &probe).await.unwrap().total, Some(1));
        // Nor can SQL.
        let t = crate::SqlTable { schema: None, table: "p".into() };
        let sql = "SELECT count(*) AS n FROM \"p\" WHERE ma = 'H00001'";
        let r = engine.sql(sql, &[(t.clone(), masked.clone())]).await.unwrap();
        assert_eq!(r.records.values().unwrap()[0], serde_json::json!({"n": 0}));
        let r = engine.sql("SELECT ma FROM \"p\" LIMIT 1", &[(t, masked)]).await.unwrap();
        assert_eq!(r.records.values().unwrap()[0], serde_json::json!({"ma": "H*****"}));
    }
}
