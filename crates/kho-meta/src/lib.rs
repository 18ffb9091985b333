//! The metadata store seam. Fine-grained traits, one per concern, that every backend implements
//! (SQLite by default, PostgreSQL at scale); the service layer and front ends depend only on
//! these. Every write takes the [`AuditEvent`] that records it, and a backend must append that
//! event in the same transaction as the write, so that the log never misses a change and never
//! records one that did not happen.

use async_trait::async_trait;
use kho_core::Result;
use kho_core::audit::{AuditEvent, AuditRecord};
use kho_core::model::{
    AdminEra, AdminLevel, AdminUnit, Agency, ApiToken, CrosswalkEntry, Dataset, DatasetRevision, DictionaryTerm,
    Feedback, FeedbackAnswer, FeedbackKind, FeedbackStatus, NewAgency, NewDictionaryTerm, NewFeedback, RatingSummary,
    ResourceVersion, Role, Upload, User,
};
use time::OffsetDateTime;

#[derive(Debug, Clone, Default)]
pub struct AdminUnitFilter {
    pub era: Option<AdminEra>,
    pub level: Option<AdminLevel>,
    pub parent_code: Option<String>,
    /// Matched against names with or without diacritics.
    pub q: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

#[async_trait]
pub trait AdminUnitStore: Send + Sync {
    async fn admin_unit_count(&self) -> Result<i64>;
    /// Replace the whole catalogue and crosswalk (they ship with the binary).
    async fn load_admin_units(&self, units: &[AdminUnit], crosswalk: &[CrosswalkEntry]) -> Result<()>;
    async fn admin_unit(&self, era: AdminEra, code: &str) -> Result<Option<AdminUnit>>;
    async fn list_admin_units(&self, filter: &AdminUnitFilter) -> Result<(Vec<AdminUnit>, i64)>;
    async fn crosswalk_from(&self, old_code: &str) -> Result<Vec<CrosswalkEntry>>;
    /// The whole crosswalk (about 10,600 pairs), for validators.
    async fn crosswalk_all(&self) -> Result<Vec<CrosswalkEntry>>;
}

#[async_trait]
pub trait AgencyStore: Send + Sync {
    async fn create_agency(&self, new: &NewAgency, audit: AuditEvent) -> Result<Agency>;
    async fn update_agency(&self, id: i64, new: &NewAgency, audit: AuditEvent) -> Result<Agency>;
    async fn agency(&self, id: i64) -> Result<Option<Agency>>;
    async fn agency_by_code(&self, code: &str) -> Result<Option<Agency>>;
    async fn list_agencies(&self) -> Result<Vec<Agency>>;
}

/// A user row with its password hash, which never leaves the service layer.
#[derive(Debug, Clone)]
pub struct UserCredentials {
    pub user: User,
    pub password_hash: String,
}

#[derive(Debug, Clone)]
pub struct NewUserRecord {
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub agency_id: i64,
    pub role: Role,
    pub password_hash: String,
    pub must_change_password: bool,
}

#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    pub display_name: Option<String>,
    pub email: Option<Option<String>>,
    pub agency_id: Option<i64>,
    pub role: Option<Role>,
    pub active: Option<bool>,
    pub password_hash: Option<String>,
    pub must_change_password: Option<bool>,
}

#[async_trait]
pub trait UserStore: Send + Sync {
    async fn create_user(&self, new: &NewUserRecord, audit: AuditEvent) -> Result<User>;
    async fn update_user(&self, id: i64, update: &UserUpdate, audit: AuditEvent) -> Result<User>;
    async fn user(&self, id: i64) -> Result<Option<User>>;
    async fn user_credentials(&self, username: &str) -> Result<Option<UserCredentials>>;
    async fn list_users(&self, agency_id: Option<i64>) -> Result<Vec<User>>;
    async fn user_count(&self) -> Result<i64>;
}

/// Failed sign-ins, counted per key (username and address) to slow down guessing.
#[async_trait]
pub trait LoginThrottleStore: Send + Sync {
    async fn record_login_failure(&self, key: &str, at: OffsetDateTime) -> Result<()>;
    async fn login_failures_since(&self, key: &str, since: OffsetDateTime) -> Result<(i64, Option<OffsetDateTime>)>;
    async fn clear_login_failures(&self, key: &str) -> Result<()>;
}

#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub user_id: i64,
    pub csrf_token: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    /// `secret_hash` is the SHA-256 of the cookie value; the cookie itself is never stored.
    async fn create_session(&self, secret_hash: &str, record: &SessionRecord) -> Result<()>;
    async fn session(&self, secret_hash: &str) -> Result<Option<SessionRecord>>;
    async fn delete_session(&self, secret_hash: &str) -> Result<()>;
    async fn delete_user_sessions(&self, user_id: i64) -> Result<()>;
    async fn purge_expired_sessions(&self, now: OffsetDateTime) -> Result<u64>;
}

#[derive(Debug, Clone)]
pub struct NewTokenRecord {
    pub name: String,
    pub prefix: String,
    pub secret_hash: String,
    pub user_id: i64,
    pub agency_id: i64,
    pub role: Role,
    pub expires_at: Option<OffsetDateTime>,
}

#[async_trait]
pub trait TokenStore: Send + Sync {
    async fn create_token(&self, new: &NewTokenRecord, audit: AuditEvent) -> Result<ApiToken>;
    async fn token_by_secret_hash(&self, secret_hash: &str) -> Result<Option<ApiToken>>;
    async fn token(&self, id: i64) -> Result<Option<ApiToken>>;
    async fn list_tokens(&self, user_id: Option<i64>) -> Result<Vec<ApiToken>>;
    async fn revoke_token(&self, id: i64, at: OffsetDateTime, audit: AuditEvent) -> Result<ApiToken>;
    async fn touch_token(&self, id: i64, at: OffsetDateTime) -> Result<()>;
}

/// Which datasets a listing may return: the policy's one rule, which each backend translates
/// into SQL so that paging is exact (the story checks the translation against the rule).
pub use kho_core::policy::Visibility;

#[derive(Debug, Clone)]
pub struct DatasetFilter {
    pub visibility: Visibility,
    pub owner_agency_id: Option<i64>,
    /// Folded (diacritic-free, lower-case) words that must all occur in title, slug or tags.
    pub q: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveMode {
    /// A new dataset; fails with `slug_taken` if the slug is in use.
    Create,
    /// Replace the stored dataset, which must still be at this revision.
    Update { expected_revision: i64 },
    /// Mark it deleted (it stays in the revision history); must be at this revision.
    Delete { expected_revision: i64 },
}

#[async_trait]
pub trait CatalogStore: Send + Sync {
    /// Store `dataset` (with its resources) and a revision snapshot of it, in one transaction.
    /// `dataset.revision` must already be the new revision number.
    async fn save_dataset(&self, dataset: &Dataset, mode: SaveMode, change: &str, audit: AuditEvent) -> Result<()>;
    /// By id or slug; deleted datasets are not returned.
    async fn dataset(&self, id_or_slug: &str) -> Result<Option<Dataset>>;
    async fn list_datasets(&self, filter: &DatasetFilter) -> Result<(Vec<Dataset>, i64)>;
    async fn dataset_revisions(&self, dataset_id: &str) -> Result<Vec<DatasetRevision>>;
}

#[async_trait]
pub trait DictionaryStore: Send + Sync {
    /// Adds the next version of the term (version 1 for a new name).
    async fn add_term_version(&self, term: &NewDictionaryTerm, audit: AuditEvent) -> Result<DictionaryTerm>;
    /// Every version of every term, ordered by name then version.
    async fn terms(&self) -> Result<Vec<DictionaryTerm>>;
    async fn term_versions(&self, name: &str) -> Result<Vec<DictionaryTerm>>;
}

/// Uploads and the immutable versions they become.
#[async_trait]
pub trait VersionStore: Send + Sync {
    async fn create_upload(&self, upload: &Upload, audit: AuditEvent) -> Result<()>;
    async fn upload(&self, id: &str) -> Result<Option<Upload>>;
    /// Mark a checked upload rejected. Fails with `conflict` if it is no longer waiting.
    async fn reject_upload(&self, id: &str, audit: AuditEvent) -> Result<()>;
    /// Record a published version and, when it came from an upload, mark that upload published,
    /// in one transaction. Fails with `conflict` if that version number exists already (another
    /// publish got there first) or the upload is no longer waiting.
    async fn add_version(&self, version: &ResourceVersion, audit: AuditEvent) -> Result<()>;
    /// Versions of a table, newest first.
    async fn versions(&self, resource_id: &str) -> Result<Vec<ResourceVersion>>;
    async fn version(&self, resource_id: &str, version: i64) -> Result<Option<ResourceVersion>>;
    /// The object keys of every committed version (data and quarantine), for orphan clean-up.
    async fn version_object_keys(&self) -> Result<Vec<String>>;
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Entries with `seq` lower than this (paging backwards from the newest).
    pub before_seq: Option<i64>,
    pub actor: Option<String>,
    /// Everything one person did, by session or by any of their tokens.
    pub actor_user_id: Option<i64>,
    pub action: Option<String>,
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    /// From this day on (UTC), inclusive.
    pub since: Option<time::Date>,
    /// Up to this day (UTC), inclusive.
    pub until: Option<time::Date>,
    pub limit: i64,
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn append_audit(&self, event: AuditEvent) -> Result<AuditRecord>;
    /// Newest first.
    async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>>;
    /// Oldest first, from `from_seq` on, for verification.
    async fn audit_chunk(&self, from_seq: i64, limit: i64) -> Result<Vec<AuditRecord>>;
}

/// Small instance-wide settings (the configured province, first-start markers).
#[async_trait]
pub trait SettingsStore: Send + Sync {
    async fn setting(&self, key: &str) -> Result<Option<String>>;
    async fn set_setting(&self, key: &str, value: &str) -> Result<()>;
}

/// Views and downloads of one dataset on one day. Only counts: no address, user or cookie is
/// kept, so usage figures carry no personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageCount {
    pub dataset_id: String,
    pub day: time::Date,
    pub views: i64,
    pub downloads: i64,
}

/// Privacy-respecting usage counters of the open data portal.
#[async_trait]
pub trait UsageStore: Send + Sync {
    /// Add these counts to what is stored (one row per dataset and day).
    async fn add_usage(&self, counts: &[UsageCount]) -> Result<()>;
    /// All-time views and downloads per dataset id.
    async fn usage_totals(&self) -> Result<Vec<(String, i64, i64)>>;
}

/// Which feedback a listing returns, newest first.
#[derive(Debug, Clone, Default)]
pub struct FeedbackFilter {
    pub kind: Option<FeedbackKind>,
    pub dataset_id: Option<String>,
    /// Addressed to this agency.
    pub agency_id: Option<i64>,
    /// Only these statuses; empty means all.
    pub statuses: Vec<FeedbackStatus>,
    pub limit: i64,
    pub offset: i64,
}

/// What visitors send back: problem reports, data requests and star ratings.
#[async_trait]
pub trait FeedbackStore: Send + Sync {
    /// Store a report or request; the audit event's object id is set to the new id.
    async fn add_feedback(&self, new: &NewFeedback, at: OffsetDateTime, audit: AuditEvent) -> Result<Feedback>;
    async fn feedback(&self, id: i64) -> Result<Option<Feedback>>;
    /// A page of matching feedback, newest first, and how many match in all.
    async fn list_feedback(&self, filter: &FeedbackFilter) -> Result<(Vec<Feedback>, i64)>;
    /// Record an answer (status, text, routing). Fails with `not_found` for an unknown id.
    async fn answer_feedback(&self, id: i64, answer: &FeedbackAnswer, audit: AuditEvent) -> Result<Feedback>;
    /// One star rating. Only the stars and the day are kept, nothing about who rated.
    async fn add_rating(&self, dataset_id: &str, stars: i64, at: OffsetDateTime) -> Result<()>;
    async fn rating_summary(&self, dataset_id: &str) -> Result<RatingSummary>;
}

/// A named lease: work that must happen in one place at a time across every process sharing
/// the store — publishing a table's next version, the clean-up run at start, the hourly purge.
/// A lock inside one process cannot say that once several kho nodes share a database, so the
/// backend holds it where they all meet: a lock file beside the SQLite database, a session
/// advisory lock in PostgreSQL. A lease is released when dropped, and when its process dies.
#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Wait until `name` is free, then hold it until the returned [`Lease`] is dropped.
    async fn lease(&self, name: &str) -> Result<Lease>;
    /// Take `name` if it is free now; `None` if another holder has it (for work that one node
    /// does for all: the others skip it).
    async fn try_lease(&self, name: &str) -> Result<Option<Lease>>;
}

/// A held [`LeaseStore`] lease; dropping it releases the name.
pub struct Lease {
    _held: Box<dyn std::any::Any + Send + Sync>,
}

impl Lease {
    /// A lease held for as long as `held` lives (a locked file, a database session).
    pub fn new(held: impl std::any::Any + Send + Sync) -> Lease {
        Lease { _held: Box::new(held) }
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lease")
    }
}

/// Everything a backend provides.
pub trait MetaStore:
    AdminUnitStore
    + AgencyStore
    + UserStore
    + LoginThrottleStore
    + SessionStore
    + TokenStore
    + CatalogStore
    + DictionaryStore
    + AuditStore
    + SettingsStore
    + VersionStore
    + UsageStore
    + FeedbackStore
    + LeaseStore
    + dump::DumpStore
{
}

impl<T> MetaStore for T where
    T: AdminUnitStore
        + AgencyStore
        + UserStore
        + LoginThrottleStore
        + SessionStore
        + TokenStore
        + CatalogStore
        + DictionaryStore
        + AuditStore
        + SettingsStore
        + VersionStore
        + UsageStore
        + FeedbackStore
        + LeaseStore
        + dump::DumpStore
{
}

/// The refusals every backend gives for the same conflicts, worded once so that callers see the
/// same answer whichever database is behind them.
pub mod refused {
    use kho_core::{Detail, Error, ErrorCode};

    pub fn dataset_slug_taken(slug: &str) -> Error {
        Error::new(ErrorCode::SlugTaken, format!("dataset slug '{slug}' is already in use"))
            .with_details(vec![Detail::new("slug", "is already used by another dataset")])
    }

    pub fn dataset_changed(expected_revision: i64) -> Error {
        Error::new(
            ErrorCode::Conflict,
            format!("dataset changed since revision {expected_revision}; reload it and try again"),
        )
    }

    pub fn agency_code_taken(code: &str) -> Error {
        Error::new(ErrorCode::SlugTaken, format!("agency code '{code}' is already in use"))
    }

    pub fn username_taken(username: &str) -> Error {
        Error::new(ErrorCode::UsernameTaken, format!("username '{username}' is already taken"))
    }

    pub fn upload_decided() -> Error {
        Error::new(ErrorCode::Conflict, "this upload was already published or rejected")
    }

    pub fn version_exists(version: i64) -> Error {
        Error::new(ErrorCode::Conflict, format!("version {version} of this table exists already"))
    }
}

pub mod dump;
#[cfg(feature = "story")]
pub mod story;
