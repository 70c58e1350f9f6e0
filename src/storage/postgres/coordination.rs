//! Pause, lease and sync requests on PostgreSQL, shared by every instance: rows are locked
//! where a transaction reads before it writes, and the lease is stamped by the database's
//! clock.

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Postgres;

use super::PostgresStore;
use crate::storage::sql::{Portable, SYNC_REQUESTS};
use crate::storage::{
    DuringExt, Lease, Leases, Pause, StoreError, SyncControl, SyncRequest, SyncRequests,
};

/// The requests, locked: a second taker waits, then finds the rows the first one deleted gone.
static SYNC_REQUESTS_FOR_UPDATE: LazyLock<String> =
    LazyLock::new(|| format!("{SYNC_REQUESTS} FOR UPDATE"));

#[async_trait]
impl Pause for PostgresStore {
    async fn sync_control(&self, partner: &str) -> Result<SyncControl, StoreError> {
        Postgres::sync_control(&self.pool, partner).await
    }

    async fn pause_sync(
        &self,
        partner: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<SyncControl, StoreError> {
        Postgres::pause_sync(&self.pool, partner, reason, at).await
    }

    async fn resume_sync(
        &self,
        partner: &str,
        at: DateTime<Utc>,
    ) -> Result<SyncControl, StoreError> {
        Postgres::resume_sync(&self.pool, partner, at).await
    }
}

#[async_trait]
impl Leases for PostgresStore {
    async fn acquire_lease(
        &self,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<Lease>, StoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .during("starting the lease transaction")?;
        // The database's clock, read inside the call: never before the caller started it.
        let (current, now) = read_lease_and_clock(&mut tx, "FOR UPDATE").await?;
        Postgres::claim_lease(tx, &current, now, holder, ttl).await
    }

    async fn current_lease(&self) -> Result<Lease, StoreError> {
        Postgres::lease(&self.pool).await
    }

    async fn release_lease(
        &self,
        lease: &Lease,
        gap: std::time::Duration,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE sync_lease
             SET expires_at = clock_timestamp() + $1::bigint * INTERVAL '1 microsecond'
             WHERE id = 1 AND holder = $2 AND token = $3",
        )
        .bind(i64::try_from(gap.as_micros()).unwrap_or(i64::MAX))
        .bind(&lease.holder)
        .bind(lease.token)
        .execute(&self.pool)
        .await
        .during("releasing the sync lease")?;
        Ok(())
    }
}

#[async_trait]
impl SyncRequests for PostgresStore {
    async fn request_sync(&self, request: &SyncRequest) -> Result<(), StoreError> {
        Postgres::request_sync(&self.pool, request).await
    }

    async fn take_sync_requests(&self, partner: &str) -> Result<Vec<SyncRequest>, StoreError> {
        Postgres::take_sync_requests(self.pool.begin(), &SYNC_REQUESTS_FOR_UPDATE, partner).await
    }
}

/// The lease row, locked with `lock` (a literal), and the database's clock.
pub(super) async fn read_lease_and_clock(
    tx: &mut sqlx::PgConnection,
    lock: &'static str,
) -> Result<(Lease, DateTime<Utc>), StoreError> {
    let (holder, token, expires_at, now) = sqlx::query_as(&format!(
        "SELECT holder, token, expires_at, clock_timestamp() FROM sync_lease WHERE id = 1 {lock}"
    ))
    .fetch_one(tx)
    .await
    .during("reading the sync lease")?;
    let lease = Lease {
        holder,
        token,
        expires_at,
    };
    Ok((lease, now))
}
