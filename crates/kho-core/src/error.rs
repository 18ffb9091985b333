//! Every error kho reports carries a stable [`ErrorCode`]. Clients (and kho's own web pages, which
//! translate codes into Vietnamese or English) match on the code, never on the message text.
//! The HTTP status for each code is decided in one place, in the web crate.

use serde::Serialize;
use std::fmt;

macro_rules! error_codes {
    ($($variant:ident => $code:literal, $doc:literal;)*) => {
        /// The table of error codes. The string form is part of the API contract: never rename one.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode { $(#[doc = $doc] $variant,)* }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code,)* }
            }

            /// What the code means, for the API description.
            pub fn describe(self) -> &'static str {
                match self { $(ErrorCode::$variant => $doc,)* }
            }
        }
    };
}

error_codes! {
    BadRequest => "bad_request", "The request is malformed (query string, path or headers).";
    InvalidJson => "invalid_json", "The body is not valid JSON or does not have the expected shape.";
    UnsupportedMediaType => "unsupported_media_type", "The body's Content-Type is not accepted here.";
    PayloadTooLarge => "payload_too_large", "The body is larger than the configured limit.";
    InvalidFile => "invalid_file", "The uploaded file cannot be read as a table (encoding, header, empty); `details` says where.";
    ValidationFailed => "validation_failed", "One or more fields are invalid; `details` says which and why.";
    InvalidTableSchema => "invalid_table_schema", "The resource schema is not a valid Frictionless Table Schema; `details` says where.";
    UnknownDictionaryTerm => "unknown_dictionary_term", "A schema field references a dictionary term that does not exist.";
    PersonalDataInOpenDataset => "personal_data_in_open_dataset", "An open dataset may not hold personal data (Law 91/2025/QH15): the fields named in `details` are personal (their dictionary term says so, or `\"personal\": true`); remove or mask them, or make the dataset shared or restricted.";
    UnknownAdminUnit => "unknown_admin_unit", "An administrative unit code is not in the GSO catalogue.";
    UnknownAgency => "unknown_agency", "An agency referenced by the request does not exist.";
    InvalidSlug => "invalid_slug", "A slug must be 2–100 characters of a–z, 0–9 and '-', starting with a letter or digit.";
    SlugTaken => "slug_taken", "Another object already uses this slug.";
    UsernameTaken => "username_taken", "Another user already has this username.";
    TermVersionExists => "term_version_exists", "This dictionary term version already exists; versions are immutable.";
    NotFound => "not_found", "No such object, or you may not know that it exists.";
    AuthenticationRequired => "authentication_required", "Sign in or send `Authorization: Bearer <token>`.";
    InvalidCredentials => "invalid_credentials", "The username or password is wrong.";
    TooManyAttempts => "too_many_attempts", "Too many failed sign-in attempts; wait before trying again.";
    InvalidToken => "invalid_token", "The bearer token is malformed or unknown.";
    TokenExpired => "token_expired", "The bearer token has expired.";
    TokenRevoked => "token_revoked", "The bearer token was revoked.";
    CsrfFailed => "csrf_failed", "The form's anti-forgery token is missing or does not match.";
    PasswordChangeRequired => "password_change_required", "The account's password was set by an administrator: choose your own (`POST /api/v1/me/password`, or the account page) before anything else; until then the account's tokens do not work either.";
    Forbidden => "forbidden", "You are signed in but may not do this.";
    Conflict => "conflict", "The object changed since you read it, or the request conflicts with its state.";
    InvalidQuery => "invalid_query", "A filter, sort, field list, aggregate or SQL statement is not valid for this table; the message says which part.";
    SqlNotReadOnly => "sql_not_read_only", "Only one read-only statement (SELECT, WITH … SELECT, EXPLAIN) may be run.";
    QueryLimit => "query_limit", "The query ran past its time or memory limit; narrow it (filters, fewer groups) or page through it.";
    RateLimited => "rate_limited", "Too many requests; retry after the time in `Retry-After`.";
    Unavailable => "unavailable", "A store kho depends on (the metadata database) does not answer at the moment; nothing was changed. Retry after the time in `Retry-After`.";
    Internal => "internal", "An unexpected error on the server; it has been logged.";
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One precise problem inside a request: which field (a JSON-pointer-like path such as
/// `fields[2].constraints.minimum`) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Detail {
    pub path: String,
    pub message: String,
    /// The message in Vietnamese, where the problem has one for people (pages show it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_vi: Option<String>,
}

impl Detail {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Detail { path: path.into(), message: message.into(), message_vi: None }
    }

    /// The same problem said in Vietnamese too.
    pub fn with_vi(mut self, vi: impl Into<String>) -> Self {
        self.message_vi = Some(vi.into());
        self
    }
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
    pub details: Vec<Detail>,
    /// Seconds to wait, for `too_many_attempts` and `rate_limited`.
    pub retry_after: Option<u64>,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error { code, message: message.into(), details: Vec::new(), retry_after: None }
    }

    pub fn with_details(mut self, details: Vec<Detail>) -> Self {
        self.details = details;
        self
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    pub fn not_found(what: &str) -> Self {
        Error::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::Forbidden, message)
    }

    pub fn validation(details: Vec<Detail>) -> Self {
        let message = match details.first() {
            Some(d) if details.len() == 1 => format!("{}: {}", d.path, d.message),
            Some(d) => format!("{}: {} (and {} more)", d.path, d.message, details.len() - 1),
            None => "invalid input".to_string(),
        };
        Error::new(ErrorCode::ValidationFailed, message).with_details(details)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::Internal, message)
    }

    /// The metadata database does not answer (down, unreachable, every connection busy): the
    /// caller may retry shortly. The cause is logged where it is known, not shown.
    pub fn store_unavailable() -> Self {
        Error::new(ErrorCode::Unavailable, "the metadata database does not answer; nothing was changed, retry shortly")
            .with_retry_after(10)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_and_snake_case() {
        let mut seen = HashSet::new();
        for code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "duplicate code {s}");
            assert!(s.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{s}");
            assert!(!code.describe().is_empty());
        }
    }

    #[test]
    fn validation_message_names_first_field() {
        let e = Error::validation(vec![Detail::new("slug", "too short"), Detail::new("title", "empty")]);
        assert_eq!(e.code, ErrorCode::ValidationFailed);
        assert_eq!(e.message, "slug: too short (and 1 more)");
    }
}
