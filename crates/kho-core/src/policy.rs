//! The one authorisation layer. Every read and write in kho — JSON API, web pages, and later the
//! portal and the exchange — asks these functions, so the rules live in one place and can be
//! tested as a matrix without a server.

use serde::Serialize;

use crate::error::{Error, ErrorCode};
use crate::model::{AccessLevel, Role};

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Principal {
    Anonymous,
    Member(Member),
    /// Signed in with a password an administrator set (a new account, or a reset): the account
    /// may change its password and sign out, and has no other right than an anonymous visitor
    /// until it does, on every path (pages, API, tokens).
    PendingPasswordChange(Member),
}

/// A signed-in government user, or a machine using one of their tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    pub user_id: i64,
    pub username: String,
    pub agency_id: i64,
    pub role: Role,
    /// Set when the request came with an API token rather than a browser session.
    pub token_id: Option<i64>,
}

impl Principal {
    /// The member acting with their rights; `None` for anonymous callers and for accounts that
    /// must change their password first.
    pub fn member(&self) -> Option<&Member> {
        match self {
            Principal::Anonymous | Principal::PendingPasswordChange(_) => None,
            Principal::Member(m) => Some(m),
        }
    }

    /// The signed-in account, whether or not it may act yet: for changing its own password,
    /// signing out and showing who is signed in.
    pub fn account(&self) -> Option<&Member> {
        match self {
            Principal::Anonymous => None,
            Principal::Member(m) | Principal::PendingPasswordChange(m) => Some(m),
        }
    }

    pub fn is_admin(&self) -> bool {
        matches!(self, Principal::Member(m) if m.role == Role::Admin)
    }

    /// How the actor is written in the audit log: `user:7:nguyenvana` or `token:3:user:7:nguyenvana`.
    pub fn audit_label(&self) -> String {
        match self {
            Principal::Anonymous => "anonymous".to_string(),
            Principal::Member(m) | Principal::PendingPasswordChange(m) => match m.token_id {
                Some(t) => format!("token:{t}:user:{}:{}", m.user_id, m.username),
                None => format!("user:{}:{}", m.user_id, m.username),
            },
        }
    }

    pub fn require_member(&self) -> Result<&Member, Error> {
        match self {
            Principal::Member(m) => Ok(m),
            Principal::PendingPasswordChange(_) => Err(password_change_required()),
            Principal::Anonymous => {
                Err(Error::new(ErrorCode::AuthenticationRequired, "sign in or send a bearer token"))
            }
        }
    }

    pub fn require_admin(&self) -> Result<&Member, Error> {
        let m = self.require_member()?;
        if m.role == Role::Admin { Ok(m) } else { Err(Error::forbidden("only a platform administrator may do this")) }
    }
}

/// The answer to an account that must change its password first.
pub fn password_change_required() -> Error {
    Error::new(
        ErrorCode::PasswordChangeRequired,
        "this account's password was set by an administrator; choose your own first (POST /api/v1/me/password, or the account page)",
    )
}

/// What decides who may read a dataset.
#[derive(Debug, Clone, Copy)]
pub struct DatasetAccess<'a> {
    pub owner_agency_id: i64,
    pub level: AccessLevel,
    pub allowed_agency_ids: &'a [i64],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Action {
    Read,
    Update,
    Delete,
}

/// Which datasets a caller may read: the one rule of visibility. The policy applies it to one
/// dataset ([`can_read`]); the metadata stores translate it into SQL for listings and the search
/// index into its own filter, and each translation is tested against [`Visibility::admits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Administrators see everything.
    All,
    /// Anonymous callers, and members who must first change their password, see open data only.
    OpenOnly,
    /// A government user of this agency: open and shared data, its own, and restricted data it
    /// is named for.
    Agency(i64),
}

impl Visibility {
    pub fn of(p: &Principal) -> Visibility {
        match p {
            Principal::Anonymous | Principal::PendingPasswordChange(_) => Visibility::OpenOnly,
            Principal::Member(m) if m.role == Role::Admin => Visibility::All,
            Principal::Member(m) => Visibility::Agency(m.agency_id),
        }
    }

    /// Whether a dataset with this access is visible.
    pub fn admits(self, d: DatasetAccess<'_>) -> bool {
        match self {
            Visibility::All => true,
            Visibility::OpenOnly => d.level == AccessLevel::Open,
            Visibility::Agency(a) => {
                a == d.owner_agency_id
                    || match d.level {
                        AccessLevel::Open | AccessLevel::Shared => true,
                        AccessLevel::Restricted => d.allowed_agency_ids.contains(&a),
                        AccessLevel::Private => false,
                    }
            }
        }
    }
}

/// May `p` read the dataset's metadata (and, later, its data)?
pub fn can_read(p: &Principal, d: DatasetAccess<'_>) -> bool {
    Visibility::of(p).admits(d)
}

/// May `p` create a dataset owned by `agency_id`?
pub fn check_create(p: &Principal, agency_id: i64) -> Result<(), Error> {
    let m = p.require_member()?;
    match m.role {
        Role::Admin => Ok(()),
        Role::Steward if m.agency_id == agency_id => Ok(()),
        Role::Steward => Err(Error::forbidden("a steward may only create datasets for their own agency")),
        Role::Viewer => Err(Error::forbidden("viewers may not create datasets")),
    }
}

/// Decide an action on an existing dataset. A caller who may not even read it gets `not_found`,
/// because for restricted and private data its existence is itself confidential.
pub fn check_dataset(p: &Principal, action: Action, d: DatasetAccess<'_>) -> Result<(), Error> {
    if !can_read(p, d) {
        // Open data is readable by all, so this is a non-open dataset: say nothing of it.
        return Err(Error::not_found("dataset"));
    }
    match action {
        Action::Read => Ok(()),
        Action::Update | Action::Delete => {
            let m = p.require_member()?;
            match m.role {
                Role::Admin => Ok(()),
                Role::Steward if m.agency_id == d.owner_agency_id => Ok(()),
                Role::Steward => Err(Error::forbidden("this dataset belongs to another agency")),
                Role::Viewer => Err(Error::forbidden("viewers may not change datasets")),
            }
        }
    }
}

/// May `p` answer feedback addressed to `agency_id` (and see who sent it)? Stewards answer their
/// own agency's; administrators answer any, and are the ones who route a request that names no
/// agency.
pub fn check_answer(p: &Principal, agency_id: Option<i64>) -> Result<(), Error> {
    let m = p.require_member()?;
    match m.role {
        Role::Admin => Ok(()),
        Role::Steward if agency_id == Some(m.agency_id) => Ok(()),
        Role::Steward => Err(Error::forbidden("this is addressed to another agency")),
        Role::Viewer => Err(Error::forbidden("viewers may not answer feedback")),
    }
}

/// Reads of anything but open data are recorded in the audit log.
pub fn read_is_audited(level: AccessLevel) -> bool {
    level != AccessLevel::Open
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: i64 = 10;
    const ALLOWED: i64 = 20;
    const OTHER: i64 = 30;

    fn member(role: Role, agency_id: i64) -> Principal {
        Principal::Member(Member { user_id: 1, username: "u".into(), agency_id, role, token_id: None })
    }

    fn outcome(p: &Principal, action: Action, level: AccessLevel) -> &'static str {
        let d = DatasetAccess { owner_agency_id: OWNER, level, allowed_agency_ids: &[ALLOWED] };
        match check_dataset(p, action, d) {
            Ok(()) => "allow",
            Err(e) if e.code == ErrorCode::NotFound => "404",
            Err(e) if e.code == ErrorCode::Forbidden => "403",
            Err(e) if e.code == ErrorCode::AuthenticationRequired => "401",
            Err(e) => panic!("unexpected {e}"),
        }
    }

    /// The full matrix, written out so that a change to any cell is a deliberate edit here.
    #[test]
    fn dataset_matrix() {
        use AccessLevel::*;
        let principals = [
            ("anonymous", Principal::Anonymous),
            ("viewer-owner", member(Role::Viewer, OWNER)),
            ("viewer-allowed", member(Role::Viewer, ALLOWED)),
            ("viewer-other", member(Role::Viewer, OTHER)),
            ("steward-owner", member(Role::Steward, OWNER)),
            ("steward-allowed", member(Role::Steward, ALLOWED)),
            ("steward-other", member(Role::Steward, OTHER)),
            ("admin", member(Role::Admin, OTHER)),
        ];
        // rows: principal; columns: open, shared, restricted, private; each cell "read/update".
        let expected = [
            ["allow/401", "404/404", "404/404", "404/404"],
            ["allow/403", "allow/403", "allow/403", "allow/403"],
            ["allow/403", "allow/403", "allow/403", "404/404"],
            ["allow/403", "allow/403", "404/404", "404/404"],
            ["allow/allow", "allow/allow", "allow/allow", "allow/allow"],
            ["allow/403", "allow/403", "allow/403", "404/404"],
            ["allow/403", "allow/403", "404/404", "404/404"],
            ["allow/allow", "allow/allow", "allow/allow", "allow/allow"],
        ];
        for ((name, p), row) in principals.iter().zip(expected) {
            for (level, cell) in [Open, Shared, Restricted, Private].into_iter().zip(row) {
                let got = format!("{}/{}", outcome(p, Action::Read, level), outcome(p, Action::Update, level));
                assert_eq!(got, cell, "{name} on {level}");
                assert_eq!(outcome(p, Action::Delete, level), outcome(p, Action::Update, level));
            }
        }
    }

    #[test]
    fn answer_rules() {
        assert!(check_answer(&member(Role::Admin, OTHER), Some(OWNER)).is_ok());
        assert!(check_answer(&member(Role::Admin, OTHER), None).is_ok());
        assert!(check_answer(&member(Role::Steward, OWNER), Some(OWNER)).is_ok());
        assert_eq!(check_answer(&member(Role::Steward, OWNER), None).unwrap_err().code, ErrorCode::Forbidden);
        assert_eq!(check_answer(&member(Role::Steward, OTHER), Some(OWNER)).unwrap_err().code, ErrorCode::Forbidden);
        assert_eq!(check_answer(&member(Role::Viewer, OWNER), Some(OWNER)).unwrap_err().code, ErrorCode::Forbidden);
        assert_eq!(
            check_answer(&Principal::Anonymous, Some(OWNER)).unwrap_err().code,
            ErrorCode::AuthenticationRequired
        );
    }

    #[test]
    fn create_rules() {
        assert!(check_create(&member(Role::Admin, OTHER), OWNER).is_ok());
        assert!(check_create(&member(Role::Steward, OWNER), OWNER).is_ok());
        assert_eq!(check_create(&member(Role::Steward, OTHER), OWNER).unwrap_err().code, ErrorCode::Forbidden);
        assert_eq!(check_create(&member(Role::Viewer, OWNER), OWNER).unwrap_err().code, ErrorCode::Forbidden);
        assert_eq!(check_create(&Principal::Anonymous, OWNER).unwrap_err().code, ErrorCode::AuthenticationRequired);
    }
}
