//! Pause, lease and sync requests on SQLite: every write on the writer, under the write lock
//! where it reads first; the lease is stamped by this host's clock, the embedded database's.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Sqlite;

use super::SqliteStore;
use crate::storage::sql::{Portable, SYNC_REQUESTS};
use crate::storage::{
    DuringExt, Lease, Leases, Pause, StoreError, SyncControl, SyncRequest, SyncRequests,
};

#[async_trait]
impl Pause for SqliteStore {
    async fn sync_control(&self, partner: &str) -> Result<SyncControl, StoreError> {
        Sqlite::sync_control(&self.reader, partner).await
    }

    async fn pause_sync(
        &self,
        partner: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<SyncControl, StoreError> {
        Sqlite::pause_sync(&self.writer, partner, reason, at).await
    }

    async fn resume_sync(
        &self,
        partner: &str,
        at: DateTime<Utc>,
    ) -> Result<SyncControl, StoreError> {
        Sqlite::resume_sync(&self.writer, partner, at).await
    }
}

#[async_trait]
impl Leases for SqliteStore {
    async fn acquire_lease(
        &self,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .during("starting the lease transaction")?;
        // The embedded database's clock is this host's, read under the write lock.
        let now = Utc::now();
        let current = Sqlite::lease(&mut *tx).await?;
        Sqlite::claim_lease(tx, &current, now, holder, ttl).await
    }

    async fn current_lease(&self) -> Result<Lease, StoreError> {
        Sqlite::lease(&self.reader).await
    }

    async fn release_lease(&self, lease: &Lease, gap: Duration) -> Result<(), StoreError> {
        let expires_at = Utc::now() + chrono::Duration::from_std(gap).unwrap_or_default();
        sqlx::query(
            "UPDATE sync_lease SET expires_at = ? WHERE id = 1 AND holder = ? AND token = ?",
        )
        .bind(expires_at)
        .bind(&lease.holder)
        .bind(lease.token)
        .execute(&self.writer)
        .await
        .during("releasing the sync lease")?;
        Ok(())
    }
}

#[async_trait]
impl SyncRequests for SqliteStore {
    async fn request_sync(&self, request: &SyncRequest) -> Result<(), StoreError> {
        Sqlite::request_sync(&self.writer, request).await
    }

    async fn take_sync_requests(&self, partner: &str) -> Result<Vec<SyncRequest>, StoreError> {
        // The write lock, taken up front, keeps every other taker out.
        let begin = self.writer.begin_with("BEGIN IMMEDIATE");
        Sqlite::take_sync_requests(begin, SYNC_REQUESTS, partner).await
    }
}
