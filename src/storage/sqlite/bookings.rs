//! Bookings on SQLite: each move in a transaction on the single writer connection that takes
//! the write lock up front (`BEGIN IMMEDIATE`), so moves and applies never interleave.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Sqlite;
use uuid::Uuid;

use super::SqliteStore;
use crate::ledger::booking::InsufficientCapacity;
use crate::storage::sql::Portable;
use crate::storage::{
    Amendment, Booking, BookingTotals, Bookings, DuringExt, HoldOutcome, HoldRequest, KeyedHold,
    Refusal, ResellerBooking, ResellerQuery, StoreError,
};

impl SqliteStore {
    async fn begin_write(
        &self,
        action: &'static str,
    ) -> Result<sqlx::Transaction<'static, Sqlite>, StoreError> {
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .during(action)
    }
}

#[async_trait]
impl Bookings for SqliteStore {
    async fn hold_shortfall(
        &self,
        key: &str,
        request: &HoldRequest,
        now: DateTime<Utc>,
    ) -> Result<Option<InsufficientCapacity>, StoreError> {
        Sqlite::hold_shortfall(&self.reader, key, request, now).await
    }

    async fn hold_batch(
        &self,
        holds: &[KeyedHold],
        now: DateTime<Utc>,
    ) -> Result<Vec<HoldOutcome>, StoreError> {
        let tx = self.begin_write("starting holds").await?;
        let outcomes = Sqlite::hold_batch(tx, holds, now).await;
        self.checkpointer.after_write();
        outcomes
    }

    async fn booking(&self, id: Uuid, now: DateTime<Utc>) -> Result<Option<Booking>, StoreError> {
        Sqlite::booking(&self.reader, id, now).await
    }

    async fn amend_booking(
        &self,
        id: Uuid,
        amendment: &Amendment,
        now: DateTime<Utc>,
    ) -> Result<Result<Booking, Refusal>, StoreError> {
        let tx = self.begin_write("starting a booking change").await?;
        let changed = Sqlite::amend_booking(tx, id, amendment, now).await;
        self.checkpointer.after_write();
        changed
    }

    async fn reseller_bookings(
        &self,
        query: &ResellerQuery,
        now: DateTime<Utc>,
    ) -> Result<Vec<ResellerBooking>, StoreError> {
        Sqlite::reseller_bookings(&self.reader, query, now).await
    }

    async fn due_holds(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<Uuid>, StoreError> {
        Sqlite::due_holds(&self.reader, now, limit).await
    }

    async fn recent_bookings(
        &self,
        limit: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<Booking>, StoreError> {
        Sqlite::recent_bookings(&self.reader, limit, now).await
    }

    async fn booking_totals(&self) -> Result<BookingTotals, StoreError> {
        Sqlite::booking_totals(&self.reader).await
    }
}
