//! The query engine: one DataFusion runtime (memory pool, object store) shared by all queries,
//! and the cache of versions held in memory.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use kho_core::{Error, Result};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::df_err;

/// The URL under which the blob store is known to DataFusion.
const STORE_URL: &str = "kho://objects";

/// How many times its Parquet size a version is taken to need in memory, for the cache's
/// decision before reading it.
const IN_MEMORY_GROWTH: u64 = 4;

/// One published version to read: its Parquet object and the table's primary key (used to make
/// sort orders total, which keyset paging needs).
#[derive(Debug, Clone)]
pub struct Source {
    pub key: String,
    pub primary_key: Vec<String>,
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
    table: tokio::sync::OnceCell<Arc<dyn TableProvider>>,
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
    pub(crate) runtime: Arc<RuntimeEnv>,
    pub(crate) limits: QueryLimits,
    /// Rows queries run on one partition so that, without a sort, rows come in the order they
    /// were loaded and offset paging is stable; their cost is small per request, and concurrent
    /// requests use the other cores.
    pub(crate) rows_ctx: SessionContext,
    cache: Mutex<Cache>,
    /// Totals of filtered queries, by version and filter: versions never change.
    counts: Mutex<HashMap<String, u64>>,
}

impl QueryEngine {
    pub fn new(store: Arc<dyn ObjectStore>, limits: QueryLimits) -> Result<QueryEngine> {
        let url = url::Url::parse(STORE_URL).map_err(|e| Error::internal(format!("store URL: {e}")))?;
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(FairSpillPool::new(limits.memory_bytes)))
            .build_arc()
            .map_err(df_err)?;
        runtime.register_object_store(&url, store.clone());
        let config = SessionConfig::new().with_target_partitions(1).with_repartition_file_scans(false);
        let rows_ctx = SessionContext::new_with_config_rt(config, runtime.clone());
        rows_ctx.register_udf(crate::fold_udf());
        Ok(QueryEngine {
            store,
            runtime,
            limits,
            rows_ctx,
            cache: Mutex::new(Cache::default()),
            counts: Mutex::new(HashMap::new()),
        })
    }

    pub fn limits(&self) -> &QueryLimits {
        &self.limits
    }

    /// A version as a DataFusion table: from memory if cached or small enough to cache, else
    /// scanned from its Parquet object.
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
                        table: tokio::sync::OnceCell::new(),
                        bytes: AtomicU64::new(0),
                        last_used: AtomicU64::new(tick),
                    })
                })
                .clone();
            slot.last_used.store(tick, Ordering::Relaxed);
            slot
        };
        let mut loaded_now = false;
        let table = slot
            .table
            .get_or_try_init(|| async {
                loaded_now = true;
                let (table, bytes) = self.load(key).await?;
                slot.bytes.store(bytes, Ordering::Relaxed);
                Ok::<_, Error>(table)
            })
            .await?
            .clone();
        if loaded_now {
            self.evict(key)?;
        }
        Ok(table)
    }

    async fn load(&self, key: &str) -> Result<(Arc<dyn TableProvider>, u64)> {
        let head = self
            .store
            .head(&ObjectPath::from(key))
            .await
            .map_err(|e| Error::internal(format!("reading {key}: {e}")))?;
        let df = self
            .rows_ctx
            .read_parquet(format!("{STORE_URL}/{key}"), ParquetReadOptions::default())
            .await
            .map_err(df_err)?;
        // Compressed, dictionary-encoded Parquet grows several times over in memory; judge by
        // the file before reading it rather than find out after.
        if head.size.saturating_mul(IN_MEMORY_GROWTH) > self.limits.cache_bytes / 2 {
            tracing::debug!(key, bytes = head.size, "version too large to cache; scanning Parquet");
            return Ok((df.into_view(), 0));
        }
        let schema = Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await.map_err(df_err)?;
        let bytes: u64 = batches.iter().map(|b| b.get_array_memory_size() as u64).sum();
        let table = MemTable::try_new(schema, vec![batches]).map_err(df_err)?;
        Ok((Arc::new(table), bytes))
    }

    /// Drop the least recently used versions until the cache fits its budget again.
    fn evict(&self, keep: &str) -> Result<()> {
        let mut cache = self.cache.lock().map_err(|_| Error::internal("query cache poisoned"))?;
        loop {
            let total: u64 = cache.slots.values().map(|s| s.bytes.load(Ordering::Relaxed)).sum();
            if total <= self.limits.cache_bytes {
                return Ok(());
            }
            let victim = cache
                .slots
                .iter()
                .filter(|(k, s)| k.as_str() != keep && s.table.initialized())
                .min_by_key(|(_, s)| s.last_used.load(Ordering::Relaxed))
                .map(|(k, _)| k.clone());
            match victim {
                Some(k) => {
                    cache.slots.remove(&k);
                }
                None => return Ok(()),
            }
        }
    }

    /// Bytes of versions held in memory now.
    pub fn cached_bytes(&self) -> u64 {
        self.cache.lock().map(|c| c.slots.values().map(|s| s.bytes.load(Ordering::Relaxed)).sum()).unwrap_or(0)
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
