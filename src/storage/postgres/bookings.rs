//! Bookings on PostgreSQL: each move in a transaction of its own, queued behind every other
//! writer of the day by the day's advisory lock (see [`Portable::lock_day`]), and committed
//! durably (a 201 survives a crash, unlike the sync's applies, which can be fetched again).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Postgres;
use uuid::Uuid;

use super::PostgresStore;
use crate::ledger::booking::InsufficientCapacity;
use crate::storage::sql::Portable;
use crate::storage::{
    Amendment, Booking, BookingTotals, Bookings, DuringExt, HoldOutcome, HoldRequest, KeyedHold,
    Refusal, ResellerBooking, ResellerQuery, StoreError,
};

#[async_trait]
impl Bookings for PostgresStore {
    async fn hold_shortfall(
        &self,
        key: &str,
        request: &HoldRequest,
        now: DateTime<Utc>,
    ) -> Result<Option<InsufficientCapacity>, StoreError> {
        Postgres::hold_shortfall(&self.pool, key, request, now).await
    }

    async fn hold_batch(
        &self,
        holds: &[KeyedHold],
        now: DateTime<Utc>,
    ) -> Result<Vec<HoldOutcome>, StoreError> {
        let tx = self.pool.begin().await.during("starting holds")?;
        Postgres::hold_batch(tx, holds, now).await
    }

    async fn booking(&self, id: Uuid, now: DateTime<Utc>) -> Result<Option<Booking>, StoreError> {
        Postgres::booking(&self.pool, id, now).await
    }

    async fn amend_booking(
        &self,
        id: Uuid,
        amendment: &Amendment,
        now: DateTime<Utc>,
    ) -> Result<Result<Booking, Refusal>, StoreError> {
        let tx = self
            .pool
            .begin()
            .await
            .during("starting a booking change")?;
        Postgres::amend_booking(tx, id, amendment, now).await
    }

    async fn reseller_bookings(
        &self,
        query: &ResellerQuery,
        now: DateTime<Utc>,
    ) -> Result<Vec<ResellerBooking>, StoreError> {
        Postgres::reseller_bookings(&self.pool, query, now).await
    }

    async fn due_holds(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<Uuid>, StoreError> {
        Postgres::due_holds(&self.pool, now, limit).await
    }

    async fn recent_bookings(
        &self,
        limit: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<Booking>, StoreError> {
        Postgres::recent_bookings(&self.pool, limit, now).await
    }

    async fn booking_totals(&self) -> Result<BookingTotals, StoreError> {
        Postgres::booking_totals(&self.pool).await
    }
}
