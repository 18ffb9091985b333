//! Passwords, browser sessions and API tokens.
//!
//! Passwords are hashed with argon2id. Session cookies and API tokens are long random secrets;
//! only their SHA-256 is stored, so a copy of the database does not let anyone sign in.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use kho_core::model::{Role, User};
use kho_core::policy::{Member, Principal};
use kho_core::{Error, ErrorCode, Result};
use kho_meta::SessionRecord;
use rand::RngCore;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::{Ctx, Kho};

pub const TOKEN_PREFIX: &str = "kho_";

pub fn random_secret(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Hash a password with argon2id (the crate's recommended parameters). CPU-heavy: runs on the
/// blocking pool so it never stalls the server's event loop.
pub async fn hash_password(password: &str) -> Result<String> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        Argon2::default()
            .hash_password_with_salt(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| Error::internal(format!("password hashing: {e}")))
    })
    .await
    .map_err(|e| Error::internal(format!("password hashing task: {e}")))?
}

pub async fn verify_password(password: &str, hash: &str) -> bool {
    let (password, hash) = (password.to_string(), hash.to_string());
    tokio::task::spawn_blocking(move || Argon2::default().verify_password(password.as_bytes(), hash.as_str()).is_ok())
        .await
        .unwrap_or(false)
}

/// A password for one sign-in, to be read aloud or copied: three groups of four letters and
/// digits, without the look-alikes (0/o, 1/l/i), about 62 bits.
pub fn one_time_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..3)
        .map(|_| {
            (0..4).map(|_| ALPHABET[rand::Rng::random_range(&mut rng, 0..ALPHABET.len())] as char).collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// A hash of a password nobody knows, verified when the username does not exist so that a
/// wrong username takes as long as a wrong password and reveals nothing.
static DUMMY_HASH: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();

/// Why a password would not do, in English and in Vietnamese, or `None` if it will: at least
/// 10 characters, and not guessable — zxcvbn (the estimator password managers use, with its
/// lists of common and leaked passwords, words, names and keyboard patterns) must put it beyond
/// 10^8 guesses, counting what is known of the account (`context`: username, name, e-mail)
/// as words an attacker would try first.
pub fn password_problem(password: &str, context: &[&str]) -> Option<(String, String)> {
    if password.chars().count() < 10 {
        return Some(("must be at least 10 characters long".into(), "phải dài ít nhất 10 ký tự".into()));
    }
    if password.len() > 1024 {
        return Some(("must be at most 1024 bytes".into(), "dài quá 1024 byte".into()));
    }
    // What is known of the account, as an attacker would try it: each word without diacritics,
    // and the whole name run together ("Trần Thị Bình" → tran, thi, binh, tranthibinh).
    let mut words: Vec<String> = Vec::new();
    for c in context.iter().map(|c| kho_core::text::fold(c)).filter(|c| !c.is_empty()) {
        let local = c.split('@').next().unwrap_or("").to_string();
        words.extend(local.split(|ch: char| !ch.is_alphanumeric()).filter(|w| w.len() >= 3).map(str::to_string));
        words.push(kho_core::text::name_key(&local));
    }
    words.retain(|w| w.len() >= 3);
    let key = kho_core::text::name_key(password);
    let personal = words.iter().any(|w| w.len() >= 6 && key.contains(w.as_str()));
    let mut inputs: Vec<&str> = words.iter().map(String::as_str).collect();
    inputs.extend(["kho", "matkhau", "admin", "quantri"]);
    if !personal && u8::from(zxcvbn::zxcvbn(password, &inputs).score()) >= 3 {
        return None;
    }
    let advice_en = "use several unrelated words, e.g. \"cloud-river-lantern-47\"";
    let advice_vi = "hãy dùng một cụm nhiều từ không liên quan, ví dụ «mây-sông-đèn-lồng-47»";
    Some(if personal {
        (
            format!("is easy to guess: it contains the account's name; {advice_en}"),
            format!("dễ đoán vì có chứa tên tài khoản hoặc họ tên; {advice_vi}"),
        )
    } else {
        (
            format!(
                "is easy to guess: a common or leaked password, a word, or a pattern such as 1111111111; {advice_en}"
            ),
            format!(
                "dễ đoán: là mật khẩu phổ biến, đã bị lộ, một từ thông dụng hay một mẫu như 1111111111; {advice_vi}"
            ),
        )
    })
}

/// A freshly signed-in browser session: the cookie value and its CSRF token.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub secret: String,
    pub csrf_token: String,
    pub user: User,
    pub expires_at: OffsetDateTime,
}

impl Kho {
    fn member_of(user: &User, role: Role, token_id: Option<i64>, agency_id: i64) -> Principal {
        Principal::Member(Member { user_id: user.id, username: user.username.clone(), agency_id, role, token_id })
    }

    /// Check a username and password; on success open a session. Failures are counted per
    /// username and per address; past the threshold, attempts are refused until the window ends.
    pub async fn sign_in(&self, ctx: &Ctx, username: &str, password: &str) -> Result<NewSession> {
        let username = username.trim().to_lowercase();
        let now = OffsetDateTime::now_utc();
        let since = now - self.config.lockout_window;
        let keys = Self::failure_keys(ctx, &username);
        if let Err(e) = self.check_lockout(&keys, now, since).await {
            self.store.append_audit(ctx.event("auth.sign_in", "user", &username).outcome("locked_out")).await?;
            return Err(e);
        }
        let creds = self.store.user_credentials(&username).await?;
        let ok = match &creds {
            Some(c) => verify_password(password, &c.password_hash).await && c.user.active,
            None => {
                let dummy = DUMMY_HASH.get_or_try_init(|| hash_password("kho-dummy-password-never-matches")).await?;
                verify_password(password, dummy).await;
                false
            }
        };
        let Some(creds) = creds.filter(|_| ok) else {
            for key in &keys {
                self.store.record_login_failure(key, now).await?;
            }
            self.store.append_audit(ctx.event("auth.sign_in", "user", &username).outcome("failed")).await?;
            return Err(Error::new(ErrorCode::InvalidCredentials, "the username or password is wrong"));
        };
        self.store.clear_login_failures(&keys[0]).await?;
        let session = self.open_session(&creds.user, now).await?;
        let signed_in = Ctx {
            principal: Self::member_of(&creds.user, creds.user.role, None, creds.user.agency_id),
            ip: ctx.ip.clone(),
            purpose: None,
        };
        self.store.append_audit(signed_in.event("auth.sign_in", "user", creds.user.id.to_string())).await?;
        Ok(session)
    }

    /// What failed password attempts are counted under: the account, and the address.
    pub(crate) fn failure_keys(ctx: &Ctx, username: &str) -> [String; 2] {
        [format!("user:{username}"), format!("ip:{}", ctx.ip.as_deref().unwrap_or("-"))]
    }

    /// Refuse with `too_many_attempts` once an account or an address has failed too often
    /// within the window. Signing in and changing a password share the count, so that a
    /// stolen session cannot guess the current password any faster than the sign-in page.
    pub(crate) async fn check_lockout(
        &self,
        keys: &[String; 2],
        now: OffsetDateTime,
        since: OffsetDateTime,
    ) -> Result<()> {
        for key in keys {
            let (failures, last) = self.store.login_failures_since(key, since).await?;
            // An address gets more room than a single account, since many people share one NAT.
            let limit =
                if key.starts_with("ip:") { self.config.lockout_threshold * 4 } else { self.config.lockout_threshold };
            if failures >= limit {
                let retry = last.map_or(self.config.lockout_window, |l| l + self.config.lockout_window - now);
                let secs = retry.whole_seconds().max(1) as u64;
                return Err(Error::new(
                    ErrorCode::TooManyAttempts,
                    format!("too many failed password attempts; try again in {secs} seconds"),
                )
                .with_retry_after(secs));
            }
        }
        Ok(())
    }

    /// Open a session for a user whose password was just proven.
    pub(crate) async fn open_session(&self, user: &User, now: OffsetDateTime) -> Result<NewSession> {
        let secret = random_secret(32);
        let record = SessionRecord {
            user_id: user.id,
            csrf_token: random_secret(16),
            created_at: now,
            expires_at: now + self.config.session_ttl,
        };
        self.store.create_session(&sha256_hex(&secret), &record).await?;
        Ok(NewSession { secret, csrf_token: record.csrf_token, user: user.clone(), expires_at: record.expires_at })
    }

    /// The member behind a session cookie, with the session's CSRF token; `None` if the cookie is
    /// unknown, expired, or its user was deactivated.
    pub async fn session_principal(&self, secret: &str) -> Result<Option<(Principal, String)>> {
        let hash = sha256_hex(secret);
        let Some(s) = self.store.session(&hash).await? else { return Ok(None) };
        if s.expires_at < OffsetDateTime::now_utc() {
            self.store.delete_session(&hash).await?;
            return Ok(None);
        }
        let Some(user) = self.store.user(s.user_id).await?.filter(|u| u.active) else { return Ok(None) };
        let member = Self::member_of(&user, user.role, None, user.agency_id);
        let principal = match member {
            Principal::Member(m) if user.must_change_password => Principal::PendingPasswordChange(m),
            other => other,
        };
        Ok(Some((principal, s.csrf_token)))
    }

    /// Forget sessions past their end; run from time to time (their secrets no longer sign in
    /// anyway). One node of a cluster does it for all: the others find the lease taken and skip.
    pub async fn purge_expired_sessions(&self) -> Result<u64> {
        let Some(_lease) = self.store.try_lease("purge-expired-sessions").await? else { return Ok(0) };
        self.store.purge_expired_sessions(time::OffsetDateTime::now_utc()).await
    }

    pub async fn sign_out(&self, ctx: &Ctx, secret: &str) -> Result<()> {
        self.store.delete_session(&sha256_hex(secret)).await?;
        if let Some(m) = ctx.principal.account() {
            self.store.append_audit(ctx.event("auth.sign_out", "user", m.user_id.to_string())).await?;
        }
        Ok(())
    }

    /// Resolve `Authorization: Bearer <token>`. Each way a token can be bad has its own code.
    pub async fn token_principal(&self, token: &str) -> Result<Principal> {
        let token = token.trim();
        let well_formed = token
            .strip_prefix(TOKEN_PREFIX)
            .is_some_and(|rest| rest.len() == 64 && rest.bytes().all(|b| b.is_ascii_hexdigit()));
        if !well_formed {
            return Err(Error::new(
                ErrorCode::InvalidToken,
                "malformed bearer token: expected 'kho_' followed by 64 hexadecimal characters",
            ));
        }
        let Some(t) = self.store.token_by_secret_hash(&sha256_hex(token)).await? else {
            return Err(Error::new(ErrorCode::InvalidToken, "unknown bearer token"));
        };
        let now = OffsetDateTime::now_utc();
        if t.revoked_at.is_some() {
            return Err(Error::new(ErrorCode::TokenRevoked, format!("token '{}' was revoked", t.name)));
        }
        if t.expires_at.is_some_and(|e| e <= now) {
            return Err(Error::new(ErrorCode::TokenExpired, format!("token '{}' has expired", t.name)));
        }
        let Some(user) = self.store.user(t.user_id).await?.filter(|u| u.active) else {
            return Err(Error::new(ErrorCode::InvalidToken, "the token's user is deactivated"));
        };
        if user.must_change_password {
            // A password an administrator set means the account was just made or reset: its
            // owner sets their own before anything acts in their name.
            return Err(Error::new(
                ErrorCode::PasswordChangeRequired,
                format!(
                    "token '{}' is paused: its user's password was set by an administrator; the user must sign in and choose their own",
                    t.name
                ),
            ));
        }
        if t.agency_id != user.agency_id {
            return Err(Error::new(
                ErrorCode::InvalidToken,
                "the token's user has moved to another agency; issue a new token",
            ));
        }
        // Recording every use would turn each read into a write; once a minute is enough to
        // show operators which tokens are alive.
        if t.last_used_at.is_none_or(|l| now - l > time::Duration::minutes(1)) {
            self.store.touch_token(t.id, now).await?;
        }
        // A token never carries more than its user has today (roles can be lowered later).
        let role = if t.role.rank() <= user.role.rank() { t.role } else { user.role };
        Ok(Self::member_of(&user, role, Some(t.id), t.agency_id))
    }
}

#[cfg(test)]
mod password_tests {
    use super::password_problem;

    #[test]
    fn common_short_and_personal_passwords_are_refused_in_both_languages() {
        let me = ["tran.binh", "Trần Thị Bình", "binh@soyte.gov.vn"];
        for weak in [
            "1111111111",
            "123456789a",
            "matkhau123",
            "Password123!",
            "qwertyuiop",
            "admin12345",
            "tranbinh2026",
            "binh-123456",
        ] {
            let (en, vi) = password_problem(weak, &me).unwrap_or_else(|| panic!("{weak} was accepted"));
            assert!(en.contains("easy to guess") && vi.contains("dễ đoán"), "{weak}: {en} / {vi}");
        }
        assert!(password_problem("tranbinh2026", &me).unwrap().1.contains("tên tài khoản"));
        assert!(password_problem("ngắn", &me).unwrap().1.contains("10 ký tự"));
        for strong in ["mây-sông-đèn-lồng-47", "correct horse battery staple", "Kx9#mQ2v!pLr", "b7e1c0a94f2d3e8a11"]
        {
            assert_eq!(password_problem(strong, &me), None, "{strong}");
        }
    }
}
