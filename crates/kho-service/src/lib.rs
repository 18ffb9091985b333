//! kho's use cases. Every operation takes the caller's [`Ctx`] (who, from where), asks the one
//! policy in `kho_core::policy` whether it is allowed, validates its input, writes through the
//! metadata store and records the audit event in the same transaction. Front ends (web pages,
//! JSON API, CLI) call these and nothing below them.

pub mod agencies;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod bootstrap;
pub mod catalog;
pub mod dcat;
pub mod dictionary;
pub mod download;
pub mod feedback;
pub mod iceberg;
pub mod ingest;
mod kept;
pub mod opendata;
pub mod quality;
pub mod query;
pub mod search;
pub mod start;
pub mod usage;
pub mod users;
pub mod versions;

use std::sync::Arc;

use kho_core::audit::AuditEvent;
use kho_core::policy::Principal;
pub use kho_ingest::changes::{Change, Mode as PublishMode};
pub use kho_ingest::convert::SheetOptions;
use kho_meta::MetaStore;
pub use kho_storage::{ObjectsConfig, ObjectsLocation};
pub use versions::PublishOptions;

/// Settings the use cases need; the CLI fills them from file, environment and flags.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// GSO code of the province this instance serves (e.g. "14" for Sơn La).
    pub province_code: String,
    pub session_ttl: time::Duration,
    /// Failed sign-ins allowed within `lockout_window` before further attempts are refused.
    pub lockout_threshold: i64,
    pub lockout_window: time::Duration,
    /// Where uploads are staged while they wait for a decision.
    pub upload_dir: std::path::PathBuf,
    pub query: kho_query::QueryLimits,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            province_code: "14".into(),
            session_ttl: time::Duration::hours(12),
            lockout_threshold: 5,
            lockout_window: time::Duration::minutes(15),
            upload_dir: std::env::temp_dir().join("kho-uploads"),
            query: kho_query::QueryLimits::default(),
        }
    }
}

/// The application: the store plus settings. Cheap to clone.
#[derive(Clone)]
pub struct Kho {
    pub(crate) store: Arc<dyn MetaStore>,
    pub(crate) blobs: kho_storage::BlobStore,
    pub(crate) config: Arc<ServiceConfig>,
    /// Rows queries and SQL over published versions.
    pub(crate) query: Arc<kho_query::QueryEngine>,
    /// Full-text and faceted search over the catalog, kept in step with it.
    pub(crate) search: Arc<kho_search::SearchIndex>,
    /// Administrative codes and the crosswalk for validators: loaded once, they only change
    /// with a new kho release.
    references: Arc<tokio::sync::OnceCell<Arc<kho_ingest::References>>>,
    /// Whether the search index has been built; until then (and in one-off commands, which never
    /// build it: a server builds its own at start) changes are not indexed one by one.
    search_live: Arc<std::sync::atomic::AtomicBool>,
    /// The last audit entry whose change the index has taken in (see `follow_changes`).
    audit_seen: Arc<std::sync::atomic::AtomicI64>,
    /// Each indexed dataset with the latest version of each table, refreshed with the index, so
    /// that search results are served without reading the store.
    found: Arc<std::sync::RwLock<search::Found>>,
    /// Views and downloads not yet written to the store (see `usage`).
    usage: Arc<std::sync::Mutex<usage::Pending>>,
    /// The agencies as last read (see `shared_agencies`).
    agencies: Arc<kept::Kept<Vec<kho_core::model::Agency>>>,
    /// Every version of every dictionary term, as last read (see `term_lookup`).
    terms: Arc<kept::Kept<dictionary::TermLookup>>,
    /// Each dataset's public problem reports and ratings, as last read (see `feedback_on`).
    dataset_feedback: Arc<kept::KeptMap<String, feedback::DatasetFeedback>>,
}

impl Kho {
    pub fn new(
        store: Arc<dyn MetaStore>,
        blobs: kho_storage::BlobStore,
        config: ServiceConfig,
    ) -> kho_core::Result<Self> {
        let (objects, key_prefix) = blobs.for_readers();
        let query = kho_query::QueryEngine::new(objects, &key_prefix, config.query.clone())?;
        Ok(Kho {
            store,
            blobs,
            query,
            search: Arc::new(kho_search::SearchIndex::new()?),
            config: Arc::new(config),
            references: Arc::default(),
            usage: Arc::default(),
            agencies: Arc::default(),
            terms: Arc::default(),
            dataset_feedback: Arc::new(kept::KeptMap::new(10_000)),
            search_live: Arc::default(),
            audit_seen: Arc::default(),
            found: Arc::default(),
        })
    }
}

impl Kho {
    /// The settings this instance runs with.
    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    /// Open kho on its metadata database and its object store (by default the folder
    /// `data_dir/objects`).
    pub async fn open(
        database: &Database,
        objects: &ObjectsConfig,
        data_dir: &std::path::Path,
        config: ServiceConfig,
    ) -> kho_core::Result<Kho> {
        let store: Arc<dyn MetaStore> = match database {
            Database::Sqlite(path) => Arc::new(kho_meta_sqlite::SqliteStore::open(path).await?),
            Database::Postgres { url, connections } => {
                Arc::new(kho_meta_postgres::PgStore::connect(url, *connections).await?)
            }
        };
        let blobs = kho_storage::BlobStore::open(objects, &data_dir.join("objects"))?;
        Kho::new(store, blobs, config)
    }

    /// Whether the metadata store answers a query (not just whether the process is alive), for
    /// health checks.
    pub async fn check_store(&self) -> kho_core::Result<()> {
        self.store.setting("province_code").await.map(|_| ())
    }
}

/// Where the metadata lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file: kho on one server.
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL database, shared by several kho nodes.
    Postgres { url: String, connections: u32 },
}

impl Database {
    /// From the `database_url` setting: none (or empty) is the SQLite file `kho.db` in
    /// `data_dir`; `sqlite://path` another SQLite file; `postgres://…` (or `postgresql://…`) a
    /// PostgreSQL database.
    pub fn from_config(url: Option<&str>, data_dir: &std::path::Path, connections: u32) -> kho_core::Result<Self> {
        let Some(url) = url.map(str::trim).filter(|u| !u.is_empty()) else {
            return Ok(Database::Sqlite(data_dir.join("kho.db")));
        };
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Database::Postgres { url: url.to_string(), connections: connections.max(2) });
        }
        if let Some(path) = url.strip_prefix("sqlite://").filter(|p| !p.is_empty()) {
            return Ok(Database::Sqlite(std::path::PathBuf::from(path)));
        }
        // The address may hold a password: only its scheme is repeated.
        let scheme = url.split_once("://").map_or("", |(s, _)| s);
        Err(kho_core::Error::new(
            kho_core::ErrorCode::BadRequest,
            format!(
                "'{scheme}://…' is not a database kho can use: write postgres://user:password@host:5432/database, or leave it empty for the SQLite file in the data folder"
            ),
        ))
    }

    /// What to print about it: the kind and where, without a password.
    pub fn describe(&self) -> String {
        match self {
            Database::Sqlite(path) => format!("SQLite {}", path.display()),
            Database::Postgres { url, .. } => {
                let after_at =
                    url.rsplit_once('@').map_or_else(|| url.split_once("://").map_or("", |(_, r)| r), |(_, r)| r);
                format!("PostgreSQL {after_at}")
            }
        }
    }
}

/// Figures about the platform as a whole, for its operators' monitoring; `None` where the store
/// could not answer.
#[derive(Debug, Clone, Default)]
pub struct PlatformCounts {
    pub users: Option<i64>,
    pub datasets: Option<i64>,
    /// The sequence number of the last audit entry.
    pub audit_entries: Option<i64>,
    /// Bytes and versions held in the query engine's cache.
    pub query_cache_bytes: u64,
    pub query_cache_versions: usize,
}

impl Kho {
    pub async fn platform_counts(&self) -> PlatformCounts {
        let all = kho_meta::DatasetFilter {
            visibility: kho_meta::Visibility::All,
            owner_agency_id: None,
            q: None,
            limit: 1,
            offset: 0,
        };
        let last_audit = kho_meta::AuditFilter { limit: 1, ..Default::default() };
        let (query_cache_bytes, query_cache_versions) = self.query.cache_usage();
        // Monitoring must answer even when the store does not: the cause is logged.
        fn logged<T>(what: &str, r: kho_core::Result<T>) -> Option<T> {
            r.map_err(|e| tracing::warn!(error = %e.message, "counting {what} for the metrics failed")).ok()
        }
        PlatformCounts {
            users: logged("users", self.store.user_count().await),
            datasets: logged("datasets", self.store.list_datasets(&all).await).map(|(_, n)| n),
            audit_entries: logged("audit entries", self.store.list_audit(&last_audit).await)
                .map(|l| l.first().map_or(0, |r| r.seq)),
            query_cache_bytes,
            query_cache_versions,
        }
    }
}

/// Who is calling and from where.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub principal: Principal,
    pub ip: Option<String>,
    /// Why the caller reads personal data, when they said (Law 91/2025/QH15): with it, personal
    /// fields are read unmasked and the read is audited with it; without it, they are masked.
    pub purpose: Option<String>,
}

impl Ctx {
    pub fn anonymous(ip: Option<String>) -> Self {
        Ctx { principal: Principal::Anonymous, ip, purpose: None }
    }

    pub fn with_purpose(mut self, purpose: Option<String>) -> Self {
        self.purpose = purpose.map(|p| p.trim().to_string()).filter(|p| !p.is_empty());
        self
    }

    /// The context of the command line, acting as the platform itself.
    pub fn system() -> Self {
        Ctx {
            principal: Principal::Member(kho_core::policy::Member {
                user_id: 0,
                username: "system".into(),
                agency_id: 0,
                role: kho_core::model::Role::Admin,
                token_id: None,
            }),
            ip: None,
            purpose: None,
        }
    }

    pub fn event(&self, action: &str, object_type: &str, object_id: impl Into<String>) -> AuditEvent {
        let actor = match &self.principal {
            Principal::Member(m) if m.user_id == 0 => "system".to_string(),
            p => p.audit_label(),
        };
        AuditEvent::new(actor, action, object_type, object_id).ip(self.ip.clone())
    }
}

#[cfg(test)]
mod database_tests {
    use super::Database;
    use std::path::Path;

    #[test]
    fn the_database_is_chosen_by_its_address() {
        let dir = Path::new("/srv/kho");
        assert_eq!(Database::from_config(None, dir, 16).unwrap(), Database::Sqlite(dir.join("kho.db")));
        assert_eq!(Database::from_config(Some("  "), dir, 16).unwrap(), Database::Sqlite(dir.join("kho.db")));
        assert_eq!(
            Database::from_config(Some("sqlite:///var/lib/kho/meta.db"), dir, 16).unwrap(),
            Database::Sqlite("/var/lib/kho/meta.db".into())
        );
        let pg = Database::from_config(Some("postgres://kho:mat-khau@db.tinh:5432/kho"), dir, 1).unwrap();
        assert_eq!(pg, Database::Postgres { url: "postgres://kho:mat-khau@db.tinh:5432/kho".into(), connections: 2 });
        assert_eq!(pg.describe(), "PostgreSQL db.tinh:5432/kho", "no password in what is printed");
        let err = Database::from_config(Some("mysql://kho:mat-khau@db/kho"), dir, 16).unwrap_err();
        assert!(err.message.contains("'mysql://…'") && !err.message.contains("mat-khau"), "{}", err.message);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    /// A service over a real SQLite store and local blob store in a temporary folder (kept
    /// for the life of the test process).
    pub async fn kho() -> crate::Kho {
        let dir = tempfile::tempdir().expect("a temporary folder").keep();
        let store = kho_meta_sqlite::SqliteStore::open(&dir.join("kho.db")).await.expect("the store opens");
        let blobs = kho_storage::BlobStore::local(&dir.join("objects")).expect("the blob store opens");
        crate::Kho::new(Arc::new(store), blobs, crate::ServiceConfig::default()).expect("kho starts")
    }
}
