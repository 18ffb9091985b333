//! Accounts, sign-in throttling, sessions and API tokens.

use async_trait::async_trait;
use kho_core::audit::AuditEvent;
use kho_core::model::{ApiToken, Role, User};
use kho_core::{Error, Result};
use kho_meta::{
    LoginThrottleStore, NewTokenRecord, NewUserRecord, SessionRecord, SessionStore, TokenStore, UserCredentials,
    UserStore, UserUpdate, refused,
};
use sqlx::postgres::PgRow;
use time::OffsetDateTime;

use crate::{PgStore, append_audit_in, db_err, get, micros, parse_enum, sql, unique_or};

const USER_COLS: &str = "id, username, display_name, email, agency_id, role, active, must_change_password, created_at";

fn user_row(r: &PgRow) -> Result<User> {
    Ok(User {
        id: get(r, "id")?,
        username: get(r, "username")?,
        display_name: get(r, "display_name")?,
        email: get(r, "email")?,
        agency_id: get(r, "agency_id")?,
        role: parse_enum::<Role>(&get::<String>(r, "role")?)?,
        active: get(r, "active")?,
        must_change_password: get(r, "must_change_password")?,
        created_at: get(r, "created_at")?,
    })
}

#[async_trait]
impl UserStore for PgStore {
    async fn create_user(&self, new: &NewUserRecord, audit: AuditEvent) -> Result<User> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(sql!(
            "INSERT INTO users (username, display_name, email, agency_id, role, active, password_hash, must_change_password, created_at)
             VALUES ($1, $2, $3, $4, $5, TRUE, $6, $7, $8) RETURNING {USER_COLS}"
        ))
        .bind(&new.username)
        .bind(&new.display_name)
        .bind(&new.email)
        .bind(new.agency_id)
        .bind(new.role.as_str())
        .bind(&new.password_hash)
        .bind(new.must_change_password)
        .bind(micros(OffsetDateTime::now_utc()))
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| unique_or(e, || refused::username_taken(&new.username)))?;
        let user = user_row(&row)?;
        let mut audit = audit;
        audit.object_id = user.id.to_string();
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(user)
    }

    async fn update_user(&self, id: i64, u: &UserUpdate, audit: AuditEvent) -> Result<User> {
        let mut tx = self.begin().await?;
        // The row is locked while the changes are merged into it, so two concurrent updates of
        // one account each see the other's result.
        let row = sqlx::query(sql!("SELECT {USER_COLS}, password_hash FROM users WHERE id = $1 FOR UPDATE"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?
            .ok_or_else(|| Error::not_found("user"))?;
        let cur = user_row(&row)?;
        let hash: String = get(&row, "password_hash")?;
        let row = sqlx::query(sql!(
            "UPDATE users SET display_name = $1, email = $2, agency_id = $3, role = $4, active = $5, password_hash = $6,
             must_change_password = $7 WHERE id = $8 RETURNING {USER_COLS}"
        ))
        .bind(u.display_name.clone().unwrap_or(cur.display_name))
        .bind(u.email.clone().unwrap_or(cur.email))
        .bind(u.agency_id.unwrap_or(cur.agency_id))
        .bind(u.role.unwrap_or(cur.role).as_str())
        .bind(u.active.unwrap_or(cur.active))
        .bind(u.password_hash.clone().unwrap_or(hash))
        .bind(u.must_change_password.unwrap_or(cur.must_change_password))
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        let user = user_row(&row)?;
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(user)
    }

    async fn user(&self, id: i64) -> Result<Option<User>> {
        let row = sqlx::query(sql!("SELECT {USER_COLS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(user_row).transpose()
    }

    async fn user_credentials(&self, username: &str) -> Result<Option<UserCredentials>> {
        let row = sqlx::query(sql!("SELECT {USER_COLS}, password_hash FROM users WHERE username = $1"))
            .bind(username)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        match row {
            None => Ok(None),
            Some(r) => Ok(Some(UserCredentials { user: user_row(&r)?, password_hash: get(&r, "password_hash")? })),
        }
    }

    async fn list_users(&self, agency_id: Option<i64>) -> Result<Vec<User>> {
        let rows = sqlx::query(sql!(
            "SELECT {USER_COLS} FROM users WHERE ($1::bigint IS NULL OR agency_id = $1) ORDER BY username"
        ))
        .bind(agency_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(user_row).collect()
    }

    async fn user_count(&self) -> Result<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await.map_err(db_err)
    }
}

#[async_trait]
impl LoginThrottleStore for PgStore {
    async fn record_login_failure(&self, key: &str, at: OffsetDateTime) -> Result<()> {
        sqlx::query("INSERT INTO login_failures (key, at) VALUES ($1, $2)")
            .bind(key)
            .bind(micros(at))
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn login_failures_since(&self, key: &str, since: OffsetDateTime) -> Result<(i64, Option<OffsetDateTime>)> {
        let row = sqlx::query("SELECT COUNT(*) AS n, MAX(at) AS last FROM login_failures WHERE key = $1 AND at >= $2")
            .bind(key)
            .bind(micros(since))
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        Ok((get(&row, "n")?, get(&row, "last")?))
    }

    async fn clear_login_failures(&self, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM login_failures WHERE key = $1").bind(key).execute(&self.pool).await.map_err(db_err)?;
        Ok(())
    }
}

#[async_trait]
impl SessionStore for PgStore {
    async fn create_session(&self, secret_hash: &str, r: &SessionRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (secret_hash, user_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(secret_hash)
        .bind(r.user_id)
        .bind(&r.csrf_token)
        .bind(micros(r.created_at))
        .bind(micros(r.expires_at))
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn session(&self, secret_hash: &str) -> Result<Option<SessionRecord>> {
        let row =
            sqlx::query("SELECT user_id, csrf_token, created_at, expires_at FROM sessions WHERE secret_hash = $1")
                .bind(secret_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
        match row {
            None => Ok(None),
            Some(r) => Ok(Some(SessionRecord {
                user_id: get(&r, "user_id")?,
                csrf_token: get(&r, "csrf_token")?,
                created_at: get(&r, "created_at")?,
                expires_at: get(&r, "expires_at")?,
            })),
        }
    }

    async fn delete_session(&self, secret_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE secret_hash = $1")
            .bind(secret_hash)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn delete_user_sessions(&self, user_id: i64) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user_id)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn purge_expired_sessions(&self, now: OffsetDateTime) -> Result<u64> {
        let r = sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        sqlx::query("DELETE FROM login_failures WHERE at < $1")
            .bind(now - time::Duration::days(1))
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(r.rows_affected())
    }
}

const TOKEN_COLS: &str = "id, name, prefix, user_id, agency_id, role, created_at, expires_at, revoked_at, last_used_at";

fn token_row(r: &PgRow) -> Result<ApiToken> {
    Ok(ApiToken {
        id: get(r, "id")?,
        name: get(r, "name")?,
        prefix: get(r, "prefix")?,
        user_id: get(r, "user_id")?,
        agency_id: get(r, "agency_id")?,
        role: parse_enum::<Role>(&get::<String>(r, "role")?)?,
        created_at: get(r, "created_at")?,
        expires_at: get(r, "expires_at")?,
        revoked_at: get(r, "revoked_at")?,
        last_used_at: get(r, "last_used_at")?,
    })
}

#[async_trait]
impl TokenStore for PgStore {
    async fn create_token(&self, new: &NewTokenRecord, audit: AuditEvent) -> Result<ApiToken> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(sql!(
            "INSERT INTO api_tokens (name, prefix, secret_hash, user_id, agency_id, role, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {TOKEN_COLS}"
        ))
        .bind(&new.name)
        .bind(&new.prefix)
        .bind(&new.secret_hash)
        .bind(new.user_id)
        .bind(new.agency_id)
        .bind(new.role.as_str())
        .bind(micros(OffsetDateTime::now_utc()))
        .bind(new.expires_at.map(micros))
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        let token = token_row(&row)?;
        let mut audit = audit;
        audit.object_id = token.id.to_string();
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(token)
    }

    async fn token_by_secret_hash(&self, secret_hash: &str) -> Result<Option<ApiToken>> {
        let row = sqlx::query(sql!("SELECT {TOKEN_COLS} FROM api_tokens WHERE secret_hash = $1"))
            .bind(secret_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(token_row).transpose()
    }

    async fn token(&self, id: i64) -> Result<Option<ApiToken>> {
        let row = sqlx::query(sql!("SELECT {TOKEN_COLS} FROM api_tokens WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(token_row).transpose()
    }

    async fn list_tokens(&self, user_id: Option<i64>) -> Result<Vec<ApiToken>> {
        let rows = sqlx::query(sql!(
            "SELECT {TOKEN_COLS} FROM api_tokens WHERE ($1::bigint IS NULL OR user_id = $1) ORDER BY id"
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(token_row).collect()
    }

    async fn revoke_token(&self, id: i64, at: OffsetDateTime, audit: AuditEvent) -> Result<ApiToken> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(sql!(
            "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 RETURNING {TOKEN_COLS}"
        ))
        .bind(micros(at))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?
        .ok_or_else(|| Error::not_found("token"))?;
        let token = token_row(&row)?;
        append_audit_in(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(token)
    }

    async fn touch_token(&self, id: i64, at: OffsetDateTime) -> Result<()> {
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(micros(at))
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }
}
