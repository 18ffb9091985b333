//! The objects kho keeps: agencies, people, datasets and their resources, dictionary terms,
//! administrative units. Plain data; storage and HTTP live elsewhere.

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};
use utoipa::ToSchema;

use crate::error::{Error, ErrorCode};

/// Declares a closed set of string-valued options with their wire names, so that parsing,
/// printing and the API description never disagree.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $s:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
        pub enum $name { $(#[serde(rename = $s)] $variant,)* }

        // Written by hand: the schema derive does not see the `rename` of a variant made by
        // this macro, and would describe the values as the variants' names ("Private").
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($s),*]))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];
            pub fn as_str(self) -> &'static str { match self { $($name::$variant => $s,)* } }
        }

        impl std::str::FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                match s {
                    $($s => Ok($name::$variant),)*
                    other => Err(Error::new(
                        ErrorCode::ValidationFailed,
                        format!(
                            "'{}' is not a valid {}; expected one of: {}",
                            other,
                            stringify!($name),
                            [$($s),*].join(", ")
                        ),
                    )),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

string_enum!(
    /// What a person or machine may do. Citizens are not users of this kind.
    Role { Admin => "admin", Steward => "steward", Viewer => "viewer" }
);

impl Role {
    /// A token may carry the user's role or a weaker one, never a stronger one.
    pub fn rank(self) -> u8 {
        match self {
            Role::Admin => 3,
            Role::Steward => 2,
            Role::Viewer => 1,
        }
    }
}

string_enum!(
    /// Who may read a dataset: open = anyone; shared = any signed-in government user;
    /// restricted = the owner and the named agencies; private = the owner agency only.
    AccessLevel { Open => "open", Shared => "shared", Restricted => "restricted", Private => "private" }
);

string_enum!(
    /// The catalogs of Decision 142: shared (dùng chung), open (mở), sectoral (chuyên ngành), master data (dữ liệu chủ).
    CatalogKind { Shared => "shared", Open => "open", Sectoral => "sectoral", Master => "master" }
);

string_enum!(
    /// Update frequency, the DCAT `accrualPeriodicity` set (EU frequency vocabulary).
    Frequency {
        Continuous => "continuous",
        Daily => "daily",
        Weekly => "weekly",
        Monthly => "monthly",
        Quarterly => "quarterly",
        Semiannual => "semiannual",
        Annual => "annual",
        Irregular => "irregular",
    }
);

impl Frequency {
    /// The EU Publications Office frequency authority code, used in DCAT output.
    pub fn eu_code(self) -> &'static str {
        match self {
            Frequency::Continuous => "CONT",
            Frequency::Daily => "DAILY",
            Frequency::Weekly => "WEEKLY",
            Frequency::Monthly => "MONTHLY",
            Frequency::Quarterly => "QUARTERLY",
            Frequency::Semiannual => "ANNUAL_2",
            Frequency::Annual => "ANNUAL",
            Frequency::Irregular => "IRREG",
        }
    }
}

string_enum!(
    /// The place of an agency in the province's tree.
    AgencyKind {
        ProvinceCommittee => "province_committee",
        Department => "department",
        DataCenter => "data_center",
        CommuneCommittee => "commune_committee",
        Other => "other",
    }
);

string_enum!(
    /// Levels of the GSO administrative catalogue. Districts exist only before 1 July 2025.
    AdminLevel { Province => "province", District => "district", Commune => "commune" }
);

string_enum!(
    /// Which edition of the catalogue a unit belongs to.
    AdminEra { Current => "2025", Legacy => "pre2025" }
);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Agency {
    pub id: i64,
    /// Short stable identifier used in URLs, e.g. `so-y-te`.
    pub code: String,
    pub name: String,
    pub name_en: Option<String>,
    pub kind: AgencyKind,
    pub parent_id: Option<i64>,
    /// GSO code of the unit it governs (a commune for a commune committee, the province otherwise).
    pub admin_unit_code: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewAgency {
    pub code: String,
    pub name: String,
    pub name_en: Option<String>,
    pub kind: AgencyKind,
    pub parent_id: Option<i64>,
    pub admin_unit_code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub agency_id: i64,
    pub role: Role,
    pub active: bool,
    /// Set when someone else chose the password; the web pages ask for a new one first.
    pub must_change_password: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    /// The first characters of the secret, enough to recognise it in a list.
    pub prefix: String,
    pub user_id: i64,
    pub agency_id: i64,
    pub role: Role,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<OffsetDateTime>,
}

/// The editable description of a dataset, as a steward submits it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DatasetInput {
    pub slug: String,
    pub title: String,
    #[serde(default)]
    pub title_en: Option<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub description_en: Option<String>,
    /// Owner agency id; defaults to the caller's agency.
    #[serde(default)]
    pub owner_agency_id: Option<i64>,
    #[serde(default)]
    pub catalogs: Vec<CatalogKind>,
    pub access_level: AccessLevel,
    /// For `restricted` datasets: the agencies besides the owner that may read it.
    #[serde(default)]
    pub allowed_agency_ids: Vec<i64>,
    /// SPDX-style licence identifier, e.g. `CC-BY-4.0`.
    #[serde(default)]
    pub license: Option<String>,
    pub frequency: Frequency,
    /// Sector (lĩnh vực), e.g. `y-te`, `giao-duc`, `dan-cu`.
    #[serde(default)]
    pub sector: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// GSO code of the administrative unit the data covers.
    #[serde(default)]
    pub spatial: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date)]
    pub temporal_start: Option<Date>,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date)]
    pub temporal_end: Option<Date>,
    #[serde(default)]
    pub contact_name: Option<String>,
    #[serde(default)]
    pub contact_email: Option<String>,
    /// Only when creating a dataset: its first resources. Later, resources are added and
    /// changed one at a time.
    #[serde(default, skip_serializing)]
    pub resources: Vec<ResourceInput>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Dataset {
    pub id: String,
    #[serde(flatten)]
    /// On a stored dataset `owner_agency_id` is always set.
    pub input: DatasetInput,
    /// Increases by one with every change; send it back as `expected_revision` to avoid lost updates.
    pub revision: i64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub modified_at: OffsetDateTime,
    pub resources: Vec<Resource>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceInput {
    /// Name unique within the dataset, a slug (e.g. `dan-so-2024`).
    pub name: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// A Frictionless Table Schema (v2) object.
    #[schema(value_type = Object)]
    pub schema: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Resource {
    pub id: String,
    pub dataset_id: String,
    #[serde(flatten)]
    pub input: ResourceInput,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub modified_at: OffsetDateTime,
}

/// A past state of a dataset, kept for every change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DatasetRevision {
    pub dataset_id: String,
    pub revision: i64,
    /// `create`, `update`, `resource_put`, `resource_delete`, `delete`.
    pub change: String,
    pub changed_by: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub changed_at: OffsetDateTime,
    /// The whole dataset (with its resources) as it was after this change.
    #[schema(value_type = Object)]
    pub snapshot: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AdminUnit {
    pub code: String,
    pub era: AdminEra,
    pub level: AdminLevel,
    pub name: String,
    pub full_name: String,
    pub name_en: String,
    /// Unit type in Vietnamese: Tỉnh, Thành phố, Xã, Phường, Đặc khu, Huyện, Quận, Thị trấn…
    pub unit_type: String,
    pub unit_type_en: String,
    pub parent_code: Option<String>,
}

/// One old→new pair of the 2025 commune crosswalk. An old commune that was split has several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CrosswalkEntry {
    pub old_code: String,
    pub new_code: String,
    /// True when only part of the old commune went to this new one.
    pub partial: bool,
}

/// A shared data-dictionary term (Decision 2439/QĐ-TTg): a named, versioned field definition
/// that schema fields reference to inherit its type and checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DictionaryTerm {
    pub name: String,
    pub version: i64,
    pub title: String,
    pub title_en: Option<String>,
    pub description: String,
    pub description_en: Option<String>,
    /// Table Schema field type, e.g. `string`, `integer`, `date`.
    pub field_type: String,
    pub format: Option<String>,
    /// Table Schema constraints inherited by fields that reference the term.
    #[schema(value_type = Object)]
    pub constraints: serde_json::Value,
    /// `admin_unit:province` or `admin_unit:commune` when values must be GSO codes.
    pub references: Option<String>,
    pub examples: Vec<String>,
    /// Values of this term are personal data (Law 91/2025/QH15): a field using it makes its
    /// dataset personal, which then cannot be open.
    #[serde(default)]
    pub personal: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDictionaryTerm {
    pub name: String,
    pub title: String,
    #[serde(default)]
    pub title_en: Option<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub description_en: Option<String>,
    pub field_type: String,
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub constraints: serde_json::Value,
    #[serde(default)]
    pub references: Option<String>,
    #[serde(default)]
    pub examples: Vec<String>,
    /// Values of this term are personal data (see [`DictionaryTerm::personal`]).
    #[serde(default)]
    pub personal: bool,
}

impl Dataset {
    pub fn owner_agency_id(&self) -> i64 {
        self.input.owner_agency_id.unwrap_or_default()
    }
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

/// A file uploaded for a table, checked and waiting for the steward's decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Upload {
    pub id: String,
    pub dataset_id: String,
    pub resource_id: String,
    pub resource_name: String,
    pub file_name: String,
    pub bytes: i64,
    /// `checked` (waiting), `published`, `rejected`.
    pub status: String,
    pub rows: i64,
    pub valid_rows: i64,
    pub invalid_rows: i64,
    /// The validation report (see the `Report` schema).
    #[schema(value_type = Object)]
    pub report: serde_json::Value,
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// The version it became, once published.
    pub version: Option<i64>,
}

/// One immutable published version of a table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ResourceVersion {
    pub dataset_id: String,
    pub resource_id: String,
    pub version: i64,
    pub rows: i64,
    pub bytes: i64,
    /// SHA-256 of the (dictionary-resolved) Table Schema the data was checked against.
    pub schema_hash: String,
    /// The Table Schema of this version.
    #[schema(value_type = Object)]
    pub schema: serde_json::Value,
    /// Object key of the Parquet file.
    pub object_key: String,
    /// Object key of the quarantined (invalid) rows, as CSV, if any were left out.
    pub quarantine_key: Option<String>,
    pub quarantined_rows: i64,
    /// Compared with the previous version, by primary key (or by whole row without one).
    pub rows_added: i64,
    pub rows_removed: i64,
    pub rows_changed: i64,
    pub upload_id: Option<String>,
    /// Quality measures of the data (see `QualityStats`).
    #[serde(default)]
    pub quality: crate::quality::QualityStats,
    pub published_by: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub published_at: OffsetDateTime,
}

string_enum!(
    /// What a visitor sends back: a problem with a dataset, or a request for data not yet published.
    FeedbackKind { Problem => "problem", Request => "request" }
);

string_enum!(
    /// What is wrong with a dataset, as the visitor sees it.
    ProblemCategory {
        WrongValues => "wrong_values",
        MissingData => "missing_data",
        Outdated => "outdated",
        BrokenFile => "broken_file",
        UnclearMetadata => "unclear_metadata",
        Other => "other",
    }
);

string_enum!(
    /// Where a report or request stands. `hidden` is spam or abuse taken down by a steward: kept
    /// for the record, shown to nobody but the agency.
    FeedbackStatus {
        Open => "open",
        Answered => "answered",
        Resolved => "resolved",
        Declined => "declined",
        Hidden => "hidden",
    }
);

/// A problem report on a dataset or a data request, with the agency's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Feedback {
    pub id: i64,
    pub kind: FeedbackKind,
    /// The dataset a problem is about, or the dataset that fulfilled a request.
    pub dataset_id: Option<String>,
    /// The agency that must answer; a request may name none, and then the data center routes it.
    pub agency_id: Option<i64>,
    pub category: Option<ProblemCategory>,
    pub title: String,
    pub body: String,
    /// How to reach the sender, if they chose to say. Personal data: only the answering agency
    /// and administrators ever see it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    pub status: FeedbackStatus,
    pub answer: Option<String>,
    /// The user who answered, as `username`; public views show the agency instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answered_by: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub answered_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

/// What a visitor sends; the service has checked it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewFeedback {
    pub kind: FeedbackKind,
    pub dataset_id: Option<String>,
    pub agency_id: Option<i64>,
    pub category: Option<ProblemCategory>,
    pub title: String,
    pub body: String,
    pub contact: Option<String>,
}

/// A steward's answer: the new status and text, and for a request the agency it is passed on to
/// or the dataset that fulfils it.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackAnswer {
    pub status: FeedbackStatus,
    pub answer: Option<String>,
    pub agency_id: Option<i64>,
    pub dataset_id: Option<String>,
    pub answered_by: String,
    pub at: OffsetDateTime,
}

/// Star ratings of a dataset: how many, the mean, and how many of each 1..5.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RatingSummary {
    pub count: i64,
    pub average: f64,
    /// Ratings with 1, 2, 3, 4 and 5 stars.
    pub stars: [i64; 5],
}

#[cfg(test)]
mod tests {
    #[test]
    fn api_schemas_list_the_values_the_api_takes() {
        use utoipa::PartialSchema;
        let text = serde_json::to_string(&super::AccessLevel::schema()).unwrap();
        assert!(text.contains("\"private\"") && !text.contains("Private"), "{text}");
        let text = serde_json::to_string(&super::AdminEra::schema()).unwrap();
        assert!(text.contains("\"pre2025\""), "{text}");
    }
}
