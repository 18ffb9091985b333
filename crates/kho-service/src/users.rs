//! People and machines: user accounts (managed by administrators) and API tokens.

use kho_core::model::{ApiToken, Role, User};
use kho_core::text::username_problem;
use kho_core::{Detail, Error, ErrorCode, Result};
use kho_meta::{NewTokenRecord, NewUserRecord, UserUpdate};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::auth::{TOKEN_PREFIX, hash_password, password_problem, random_secret, sha256_hex, verify_password};
use crate::{Ctx, Kho};

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    #[serde(default)]
    pub email: Option<String>,
    pub agency_id: i64,
    pub role: Role,
    pub password: String,
    /// Ask the user to choose their own password before the account may do anything else, in
    /// the pages or through the API, and before its tokens work (default: yes, since someone
    /// else chose this one).
    #[serde(default = "yes")]
    pub must_change_password: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChanges {
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub agency_id: Option<i64>,
    pub role: Option<Role>,
    pub active: Option<bool>,
    /// Sets a new password (administrators only; users change their own with `change_password`).
    pub password: Option<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub name: String,
    /// The token's role: the caller's own (default) or a weaker one.
    #[serde(default)]
    pub role: Option<Role>,
    /// Days until it expires; none means it never expires.
    #[serde(default)]
    pub expires_in_days: Option<i64>,
    /// Administrators may issue a token for another user.
    #[serde(default)]
    pub user_id: Option<i64>,
}

/// A token as created: the secret is returned this once and never again.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct CreatedToken {
    pub token: ApiToken,
    pub secret: String,
}

impl Kho {
    /// Create an account; its password must pass the password policy
    /// ([`crate::auth::password_problem`]).
    pub async fn create_user(&self, ctx: &Ctx, new: NewUser) -> Result<User> {
        self.create_account(ctx, new, true).await
    }

    /// Create an account, with or without the password policy. Only the demo loader skips it:
    /// the demo accounts' passwords are printed on the console and written in the README, so
    /// anyone may know them and their strength would mean nothing; they exist only on a server
    /// started with `--demo`, for trying kho.
    pub(crate) async fn create_account(&self, ctx: &Ctx, new: NewUser, check_password: bool) -> Result<User> {
        ctx.principal.require_admin()?;
        let username = new.username.trim().to_lowercase();
        let mut problems = Vec::new();
        if let Some(p) = username_problem(&username) {
            problems.push(Detail::new("username", p));
        }
        if new.display_name.trim().is_empty() {
            problems.push(Detail::new("display_name", "must not be empty"));
        }
        let context = [username.as_str(), new.display_name.as_str(), new.email.as_deref().unwrap_or("")];
        if let Some((en, vi)) = password_problem(&new.password, &context).filter(|_| check_password) {
            problems.push(Detail::new("password", en).with_vi(vi));
        }
        if let Some(e) = new.email.as_deref().map(str::trim).filter(|e| !e.is_empty())
            && !kho_core::text::is_email(e)
        {
            problems.push(Detail::new("email", "is not an email address"));
        }
        if !problems.is_empty() {
            return Err(Error::validation(problems));
        }
        self.require_agency(new.agency_id, "agency_id").await?;
        let record = NewUserRecord {
            username: username.clone(),
            display_name: new.display_name.trim().to_string(),
            email: new.email.filter(|e| !e.trim().is_empty()),
            agency_id: new.agency_id,
            role: new.role,
            password_hash: hash_password(&new.password).await?,
            must_change_password: new.must_change_password,
        };
        let event = ctx
            .event("user.create", "user", "")
            .detail(serde_json::json!({"username": username, "role": new.role, "agency_id": new.agency_id}));
        self.store.create_user(&record, event).await
    }

    pub async fn update_user(&self, ctx: &Ctx, id: i64, changes: UserChanges) -> Result<User> {
        ctx.principal.require_admin()?;
        if let Some(e) = changes.email.as_deref().map(str::trim).filter(|e| !e.is_empty())
            && !kho_core::text::is_email(e)
        {
            return Err(Error::validation(vec![Detail::new("email", "is not an email address")]));
        }
        let existing = self.store.user(id).await?.ok_or_else(|| Error::not_found("user"))?;
        if let Some(a) = changes.agency_id {
            self.require_agency(a, "agency_id").await?;
        }
        let password_hash = match &changes.password {
            Some(p) => {
                let context = [
                    existing.username.as_str(),
                    existing.display_name.as_str(),
                    existing.email.as_deref().unwrap_or(""),
                ];
                if let Some((en, vi)) = password_problem(p, &context) {
                    return Err(Error::validation(vec![Detail::new("password", en).with_vi(vi)]));
                }
                Some(hash_password(p).await?)
            }
            None => None,
        };
        let update = UserUpdate {
            display_name: changes.display_name.clone(),
            email: changes.email.clone().map(|e| Some(e).filter(|e| !e.is_empty())),
            agency_id: changes.agency_id,
            role: changes.role,
            active: changes.active,
            password_hash,
            // A password set by an administrator is a temporary one.
            must_change_password: changes.password.as_ref().map(|_| true),
        };
        let event = ctx.event("user.update", "user", id.to_string()).detail(serde_json::json!({
            "role": changes.role, "agency_id": changes.agency_id, "active": changes.active,
            "password_changed": changes.password.is_some(),
        }));
        let user = self.store.update_user(id, &update, event).await?;
        if changes.active == Some(false) || changes.password.is_some() || changes.role.is_some() {
            // Sessions carry the old rights until they end; end them now.
            self.store.delete_user_sessions(id).await?;
        }
        Ok(user)
    }

    /// An administrator resets an account's password: kho makes up a one-time password
    /// (returned this once), which the user must replace at their next sign-in; until then
    /// the account's sessions are ended and its tokens do not work.
    pub async fn reset_password(&self, ctx: &Ctx, id: i64) -> Result<(User, String)> {
        ctx.principal.require_admin()?;
        let password = crate::auth::one_time_password();
        let user =
            self.update_user(ctx, id, UserChanges { password: Some(password.clone()), ..Default::default() }).await?;
        Ok((user, password))
    }

    /// A user changes their own password, proving they know the current one, from a signed-in
    /// browser session (`session_secret`): never with an API token, whose scope may be far
    /// narrower than the account's. Wrong guesses count with failed sign-ins (same lockout).
    /// Every session of the account ends, this one included, and a new one is returned for
    /// the browser that made the change; with `revoke_tokens`, the account's tokens are revoked
    /// too (their number is returned).
    pub async fn change_password(
        &self,
        ctx: &Ctx,
        session_secret: Option<&str>,
        current: &str,
        new: &str,
        revoke_tokens: bool,
    ) -> Result<(crate::auth::NewSession, usize)> {
        let m = ctx
            .principal
            .account()
            .ok_or_else(|| Error::new(ErrorCode::AuthenticationRequired, "sign in to change your password"))?;
        if m.token_id.is_some() || session_secret.is_none() {
            return Err(Error::forbidden(
                "a password is changed from a signed-in session (the account page, or POST /api/v1/me/password with the session cookie), never with an API token",
            ));
        }
        let user = self.store.user(m.user_id).await?.ok_or_else(|| Error::not_found("user"))?;
        let now = OffsetDateTime::now_utc();
        let keys = Self::failure_keys(ctx, &user.username);
        if let Err(e) = self.check_lockout(&keys, now, now - self.config.lockout_window).await {
            self.store
                .append_audit(ctx.event("user.password", "user", user.id.to_string()).outcome("locked_out"))
                .await?;
            return Err(e);
        }
        let creds = self.store.user_credentials(&user.username).await?.ok_or_else(|| Error::not_found("user"))?;
        if !verify_password(current, &creds.password_hash).await {
            for key in &keys {
                self.store.record_login_failure(key, now).await?;
            }
            self.store.append_audit(ctx.event("user.password", "user", user.id.to_string()).outcome("failed")).await?;
            return Err(Error::new(ErrorCode::InvalidCredentials, "the current password is wrong"));
        }
        let context = [user.username.as_str(), user.display_name.as_str(), user.email.as_deref().unwrap_or("")];
        if let Some((en, vi)) = password_problem(new, &context) {
            return Err(Error::validation(vec![Detail::new("new_password", en).with_vi(vi)]));
        }
        if new == current {
            return Err(Error::validation(vec![Detail::new("new_password", "must differ from the current password")]));
        }
        self.store.clear_login_failures(&keys[0]).await?;
        let update = UserUpdate {
            password_hash: Some(hash_password(new).await?),
            must_change_password: Some(false),
            ..Default::default()
        };
        let event = ctx
            .event("user.password", "user", user.id.to_string())
            .detail(serde_json::json!({"sessions_ended": true, "tokens_revoked": revoke_tokens}));
        let user = self.store.update_user(user.id, &update, event).await?;
        // Whoever else holds a session of this account (the one who knew the old password)
        // is signed out; this browser continues in a fresh session.
        self.store.delete_user_sessions(user.id).await?;
        let session = self.open_session(&user, now).await?;
        let mut revoked = 0;
        if revoke_tokens {
            for t in self.store.list_tokens(Some(user.id)).await? {
                if t.revoked_at.is_none() {
                    let event = ctx
                        .event("token.revoke", "token", t.id.to_string())
                        .detail(serde_json::json!({"reason": "password changed"}));
                    self.store.revoke_token(t.id, now, event).await?;
                    revoked += 1;
                }
            }
        }
        Ok((session, revoked))
    }

    pub async fn list_users(&self, ctx: &Ctx, agency_id: Option<i64>) -> Result<Vec<User>> {
        let m = ctx.principal.require_member()?;
        if m.role == Role::Admin {
            self.store.list_users(agency_id).await
        } else {
            // Others see the people of their own agency (to know whom to ask), nothing more.
            self.store.list_users(Some(m.agency_id)).await
        }
    }

    /// The caller's own account, also while it must change its password.
    pub async fn own_user(&self, ctx: &Ctx) -> Result<User> {
        let m = ctx
            .principal
            .account()
            .ok_or_else(|| Error::new(ErrorCode::AuthenticationRequired, "sign in or send a bearer token"))?;
        self.store.user(m.user_id).await?.ok_or_else(|| Error::not_found("user"))
    }

    /// The name of the person an audit label stands for ("user:2:yte.canbo", or
    /// "token:5:user:2:yte.canbo" for their token), for members' pages that say who did
    /// something; `None` for labels that name no user (the system, anonymous visitors).
    pub async fn person_name(&self, ctx: &Ctx, label: &str) -> Result<Option<String>> {
        ctx.principal.require_member()?;
        let user_part = label.find("user:").map(|i| &label[i + "user:".len()..]);
        let Some(id) = user_part.and_then(|rest| rest.split(':').next()).and_then(|id| id.parse::<i64>().ok()) else {
            return Ok(None);
        };
        Ok(self.store.user(id).await?.map(|u| u.display_name))
    }

    /// An account by its user name (any case), for administrators; `None` when there is none.
    pub async fn user_by_name(&self, ctx: &Ctx, username: &str) -> Result<Option<User>> {
        let m = ctx.principal.require_member()?;
        if m.role != Role::Admin {
            return Err(Error::forbidden("only administrators look accounts up by name"));
        }
        Ok(self.store.user_credentials(&username.to_lowercase()).await?.map(|c| c.user))
    }

    pub async fn get_user(&self, ctx: &Ctx, id: i64) -> Result<User> {
        let m = ctx.principal.require_member()?;
        let user = self.store.user(id).await?.ok_or_else(|| Error::not_found("user"))?;
        if m.role != Role::Admin && user.agency_id != m.agency_id {
            return Err(Error::not_found("user"));
        }
        Ok(user)
    }

    pub async fn create_token(&self, ctx: &Ctx, new: NewToken) -> Result<CreatedToken> {
        let m = ctx.principal.require_member()?;
        if m.token_id.is_some() {
            return Err(Error::forbidden("a token cannot issue tokens; sign in to create one"));
        }
        let user = match new.user_id {
            Some(id) if id != m.user_id => {
                ctx.principal.require_admin()?;
                self.store.user(id).await?.ok_or_else(|| Error::not_found("user"))?
            }
            _ => self.store.user(m.user_id).await?.ok_or_else(|| Error::not_found("user"))?,
        };
        let mut problems = Vec::new();
        let name = new.name.trim().to_string();
        if name.is_empty() || name.chars().count() > 100 {
            problems.push(Detail::new("name", "must be 1 to 100 characters"));
        }
        let role = new.role.unwrap_or(user.role);
        if role.rank() > user.role.rank() {
            problems.push(Detail::new("role", format!("cannot exceed the user's own role '{}'", user.role)));
        }
        let expires_at = match new.expires_in_days {
            Some(d) if !(1..=3650).contains(&d) => {
                problems.push(Detail::new("expires_in_days", "must be between 1 and 3650"));
                None
            }
            Some(d) => Some(OffsetDateTime::now_utc() + time::Duration::days(d)),
            None => None,
        };
        if !problems.is_empty() {
            return Err(Error::validation(problems));
        }
        let secret = format!("{TOKEN_PREFIX}{}", random_secret(32));
        let record = NewTokenRecord {
            name: name.clone(),
            prefix: secret[..TOKEN_PREFIX.len() + 8].to_string(),
            secret_hash: sha256_hex(&secret),
            user_id: user.id,
            agency_id: user.agency_id,
            role,
            expires_at,
        };
        let event = ctx
            .event("token.create", "token", "")
            .detail(serde_json::json!({"name": name, "user_id": user.id, "role": role}));
        let token = self.store.create_token(&record, event).await?;
        Ok(CreatedToken { token, secret })
    }

    pub async fn list_tokens(&self, ctx: &Ctx) -> Result<Vec<kho_core::model::ApiToken>> {
        let m = ctx.principal.require_member()?;
        let user = if m.role == Role::Admin { None } else { Some(m.user_id) };
        self.store.list_tokens(user).await
    }

    pub async fn revoke_token(&self, ctx: &Ctx, id: i64) -> Result<ApiToken> {
        let m = ctx.principal.require_member()?;
        let t = self.store.token(id).await?.ok_or_else(|| Error::not_found("token"))?;
        if t.user_id != m.user_id && !ctx.principal.is_admin() {
            return Err(Error::not_found("token"));
        }
        self.store.revoke_token(id, OffsetDateTime::now_utc(), ctx.event("token.revoke", "token", id.to_string())).await
    }
}
