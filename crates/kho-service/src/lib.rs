//! kho's use cases. Every operation takes the caller's [`Ctx`] (who, from where), asks the one
//! policy in `kho_core::policy` whether it is allowed, validates its input, writes through the
//! metadata store and records the audit event in the same transaction. Front ends (web pages,
//! JSON API, CLI) call these and nothing below them.

pub mod agencies;
pub mod audit;
pub mod auth;
pub mod bootstrap;
pub mod catalog;
pub mod dcat;
pub mod dictionary;
pub mod feedback;
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
    pub store: Arc<dyn MetaStore>,
    pub blobs: kho_storage::BlobStore,
    pub config: Arc<ServiceConfig>,
    /// Rows queries and SQL over published versions.
    pub query: Arc<kho_query::QueryEngine>,
    /// Full-text and faceted search over the catalog, kept in step with it.
    pub search: Arc<kho_search::SearchIndex>,
    /// Publishes are serialised so that version numbers never collide and none is lost.
    publish_lock: Arc<tokio::sync::Mutex<()>>,
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
        let query = kho_query::QueryEngine::new(blobs.object_store(), config.query.clone())?;
        Ok(Kho {
            store,
            blobs,
            query,
            search: Arc::new(kho_search::SearchIndex::new()?),
            config: Arc::new(config),
            references: Arc::default(),
            publish_lock: Arc::default(),
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
