//! Leases as PostgreSQL session advisory locks, held on a connection of their own taken out of
//! the pool: every node meets the same server, and the server releases the lock when the
//! session ends — when the lease is dropped, or when its node dies and the connection drops.

use async_trait::async_trait;
use kho_core::Result;
use kho_meta::{Lease, LeaseStore};
use sqlx::{Connection, PgConnection};

use crate::{PgStore, db_err};

/// The lock's key: a 64-bit hash of the name, in a space of its own (other advisory locks of kho
/// hash other prefixes).
const KEY: &str = "hashtextextended('kho lease ' || $1, 0)";

/// A session holding a lease. Dropped, it ends the session politely when it can (the server
/// then releases the lock at once), or just closes the socket.
struct Held(Option<PgConnection>);

impl Drop for Held {
    fn drop(&mut self) {
        if let (Some(conn), Ok(rt)) = (self.0.take(), tokio::runtime::Handle::try_current()) {
            rt.spawn(async move {
                let _ = conn.close().await;
            });
        }
    }
}

impl PgStore {
    /// A connection of its own for a lease: returned to the pool, it would keep the lock.
    async fn lease_connection(&self) -> Result<PgConnection> {
        Ok(self.pool.acquire().await.map_err(db_err)?.detach())
    }
}

#[async_trait]
impl LeaseStore for PgStore {
    async fn lease(&self, name: &str) -> Result<Lease> {
        let mut conn = self.lease_connection().await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("SELECT pg_advisory_lock({KEY})")))
            .bind(name)
            .execute(&mut conn)
            .await
            .map_err(db_err)?;
        Ok(Lease::new(Held(Some(conn))))
    }

    async fn try_lease(&self, name: &str) -> Result<Option<Lease>> {
        let mut conn = self.lease_connection().await?;
        let (taken,): (bool,) = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT pg_try_advisory_lock({KEY})")))
            .bind(name)
            .fetch_one(&mut conn)
            .await
            .map_err(db_err)?;
        if taken {
            Ok(Some(Lease::new(Held(Some(conn)))))
        } else {
            let _ = conn.close().await;
            Ok(None)
        }
    }
}
