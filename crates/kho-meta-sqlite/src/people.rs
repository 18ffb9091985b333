//! Accounts, sign-in throttling, sessions and API tokens.

use super::*;

fn user_row(r: &SqliteRow) -> Result<User> {
    Ok(User {
        id: get(r, "id")?,
        username: get(r, "username")?,
        display_name: get(r, "display_name")?,
        email: get(r, "email")?,
        agency_id: get(r, "agency_id")?,
        role: parse_enum::<Role>(&get::<String>(r, "role")?)?,
        active: get::<i64>(r, "active")? != 0,
        must_change_password: get::<i64>(r, "must_change_password")? != 0,
        created_at: parse_ts(&get::<String>(r, "created_at")?)?,
    })
}

fn token_row(r: &SqliteRow) -> Result<ApiToken> {
    Ok(ApiToken {
        id: get(r, "id")?,
        name: get(r, "name")?,
        prefix: get(r, "prefix")?,
        user_id: get(r, "user_id")?,
        agency_id: get(r, "agency_id")?,
        role: parse_enum::<Role>(&get::<String>(r, "role")?)?,
        created_at: parse_ts(&get::<String>(r, "created_at")?)?,
        expires_at: parse_opt_ts(get(r, "expires_at")?)?,
        revoked_at: parse_opt_ts(get(r, "revoked_at")?)?,
        last_used_at: parse_opt_ts(get(r, "last_used_at")?)?,
    })
}

const USER_COLS: &str = "id, username, display_name, email, agency_id, role, active, must_change_password, created_at";

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, new: &NewUserRecord, audit: AuditEvent) -> Result<User> {
        let (_w, mut tx) = self.write().await?;
        let res = sqlx::query(
            "INSERT INTO users (username, display_name, email, agency_id, role, active, password_hash, must_change_password, created_at)
             VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?)",
        )
        .bind(&new.username)
        .bind(&new.display_name)
        .bind(&new.email)
        .bind(new.agency_id)
        .bind(new.role.as_str())
        .bind(&new.password_hash)
        .bind(new.must_change_password as i64)
        .bind(ts(OffsetDateTime::now_utc()))
        .execute(&mut *tx)
        .await;
        let id = match res {
            Ok(r) => r.last_insert_rowid(),
            Err(e) if is_unique_violation(&e) => return Err(refused::username_taken(&new.username)),
            Err(e) => return Err(db_err(e)),
        };
        let mut audit = audit;
        audit.object_id = id.to_string();
        append_audit_in(&mut tx, audit).await?;
        let user = reread(&mut tx, sql!("SELECT {USER_COLS} FROM users WHERE id = ?"), id, user_row).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(user)
    }

    async fn update_user(&self, id: i64, u: &UserUpdate, audit: AuditEvent) -> Result<User> {
        let (_w, mut tx) = self.write().await?;
        let row = sqlx::query(sql!("SELECT {USER_COLS}, password_hash FROM users WHERE id = ?"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?
            .ok_or_else(|| Error::not_found("user"))?;
        let cur = user_row(&row)?;
        let hash: String = get(&row, "password_hash")?;
        sqlx::query("UPDATE users SET display_name = ?, email = ?, agency_id = ?, role = ?, active = ?, password_hash = ?, must_change_password = ? WHERE id = ?")
            .bind(u.display_name.clone().unwrap_or(cur.display_name))
            .bind(u.email.clone().unwrap_or(cur.email))
            .bind(u.agency_id.unwrap_or(cur.agency_id))
            .bind(u.role.unwrap_or(cur.role).as_str())
            .bind(u.active.unwrap_or(cur.active) as i64)
            .bind(u.password_hash.clone().unwrap_or(hash))
            .bind(u.must_change_password.unwrap_or(cur.must_change_password) as i64)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        append_audit_in(&mut tx, audit).await?;
        let user = reread(&mut tx, sql!("SELECT {USER_COLS} FROM users WHERE id = ?"), id, user_row).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(user)
    }

    async fn user(&self, id: i64) -> Result<Option<User>> {
        self.find(sql!("SELECT {USER_COLS} FROM users WHERE id = ?"), Key::Id(id), user_row).await
    }

    async fn user_credentials(&self, username: &str) -> Result<Option<UserCredentials>> {
        let row = sqlx::query(sql!("SELECT {USER_COLS}, password_hash FROM users WHERE username = ?"))
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
        let rows =
            sqlx::query(sql!("SELECT {USER_COLS} FROM users WHERE (? IS NULL OR agency_id = ?) ORDER BY username"))
                .bind(agency_id)
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
impl LoginThrottleStore for SqliteStore {
    async fn record_login_failure(&self, key: &str, at: OffsetDateTime) -> Result<()> {
        let _w = self.write.lock().await;
        sqlx::query("INSERT INTO login_failures (key, at) VALUES (?, ?)")
            .bind(key)
            .bind(ts(at))
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn login_failures_since(&self, key: &str, since: OffsetDateTime) -> Result<(i64, Option<OffsetDateTime>)> {
        let row = sqlx::query("SELECT COUNT(*) AS n, MAX(at) AS last FROM login_failures WHERE key = ? AND at >= ?")
            .bind(key)
            .bind(ts(since))
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        Ok((get(&row, "n")?, parse_opt_ts(get(&row, "last")?)?))
    }

    async fn clear_login_failures(&self, key: &str) -> Result<()> {
        let _w = self.write.lock().await;
        sqlx::query("DELETE FROM login_failures WHERE key = ?").bind(key).execute(&self.pool).await.map_err(db_err)?;
        Ok(())
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create_session(&self, secret_hash: &str, r: &SessionRecord) -> Result<()> {
        let _w = self.write.lock().await;
        sqlx::query(
            "INSERT INTO sessions (secret_hash, user_id, csrf_token, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(secret_hash)
        .bind(r.user_id)
        .bind(&r.csrf_token)
        .bind(ts(r.created_at))
        .bind(ts(r.expires_at))
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn session(&self, secret_hash: &str) -> Result<Option<SessionRecord>> {
        let row = sqlx::query("SELECT user_id, csrf_token, created_at, expires_at FROM sessions WHERE secret_hash = ?")
            .bind(secret_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        match row {
            None => Ok(None),
            Some(r) => Ok(Some(SessionRecord {
                user_id: get(&r, "user_id")?,
                csrf_token: get(&r, "csrf_token")?,
                created_at: parse_ts(&get::<String>(&r, "created_at")?)?,
                expires_at: parse_ts(&get::<String>(&r, "expires_at")?)?,
            })),
        }
    }

    async fn delete_session(&self, secret_hash: &str) -> Result<()> {
        let _w = self.write.lock().await;
        sqlx::query("DELETE FROM sessions WHERE secret_hash = ?")
            .bind(secret_hash)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn delete_user_sessions(&self, user_id: i64) -> Result<()> {
        let _w = self.write.lock().await;
        sqlx::query("DELETE FROM sessions WHERE user_id = ?")
            .bind(user_id)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn purge_expired_sessions(&self, now: OffsetDateTime) -> Result<u64> {
        let _w = self.write.lock().await;
        let r = sqlx::query("DELETE FROM sessions WHERE expires_at < ?")
            .bind(ts(now))
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        sqlx::query("DELETE FROM login_failures WHERE at < ?")
            .bind(ts(now - time::Duration::days(1)))
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(r.rows_affected())
    }
}

const TOKEN_COLS: &str = "id, name, prefix, user_id, agency_id, role, created_at, expires_at, revoked_at, last_used_at";

#[async_trait]
impl TokenStore for SqliteStore {
    async fn create_token(&self, new: &NewTokenRecord, audit: AuditEvent) -> Result<ApiToken> {
        let (_w, mut tx) = self.write().await?;
        let id = sqlx::query(
            "INSERT INTO api_tokens (name, prefix, secret_hash, user_id, agency_id, role, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&new.name)
        .bind(&new.prefix)
        .bind(&new.secret_hash)
        .bind(new.user_id)
        .bind(new.agency_id)
        .bind(new.role.as_str())
        .bind(ts(OffsetDateTime::now_utc()))
        .bind(new.expires_at.map(ts))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?
        .last_insert_rowid();
        let mut audit = audit;
        audit.object_id = id.to_string();
        append_audit_in(&mut tx, audit).await?;
        let token = reread(&mut tx, sql!("SELECT {TOKEN_COLS} FROM api_tokens WHERE id = ?"), id, token_row).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(token)
    }

    async fn token_by_secret_hash(&self, secret_hash: &str) -> Result<Option<ApiToken>> {
        self.find(sql!("SELECT {TOKEN_COLS} FROM api_tokens WHERE secret_hash = ?"), Key::Text(secret_hash), token_row)
            .await
    }

    async fn token(&self, id: i64) -> Result<Option<ApiToken>> {
        self.find(sql!("SELECT {TOKEN_COLS} FROM api_tokens WHERE id = ?"), Key::Id(id), token_row).await
    }

    async fn list_tokens(&self, user_id: Option<i64>) -> Result<Vec<ApiToken>> {
        let rows =
            sqlx::query(sql!("SELECT {TOKEN_COLS} FROM api_tokens WHERE (? IS NULL OR user_id = ?) ORDER BY id"))
                .bind(user_id)
                .bind(user_id)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
        rows.iter().map(token_row).collect()
    }

    async fn revoke_token(&self, id: i64, at: OffsetDateTime, audit: AuditEvent) -> Result<ApiToken> {
        let (_w, mut tx) = self.write().await?;
        let r = sqlx::query("UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?")
            .bind(ts(at))
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if r.rows_affected() == 0 {
            return Err(Error::not_found("token"));
        }
        append_audit_in(&mut tx, audit).await?;
        let token = reread(&mut tx, sql!("SELECT {TOKEN_COLS} FROM api_tokens WHERE id = ?"), id, token_row).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(token)
    }

    async fn touch_token(&self, id: i64, at: OffsetDateTime) -> Result<()> {
        let _w = self.write.lock().await;
        sqlx::query("UPDATE api_tokens SET last_used_at = ? WHERE id = ?")
            .bind(ts(at))
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }
}
