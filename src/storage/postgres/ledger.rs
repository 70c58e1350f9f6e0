//! Ledger reads on PostgreSQL.

use async_trait::async_trait;
use chrono::{NaiveDate, NaiveTime};
use sqlx::Postgres;

use super::PostgresStore;
use crate::domain::ExperienceId;
use crate::ledger::VerifyReport;
use crate::storage::sql::Portable;
use crate::storage::{Ledger, SlotHistory, StoreError};

#[async_trait]
impl Ledger for PostgresStore {
    async fn slot_history(
        &self,
        id: ExperienceId,
        date: NaiveDate,
        start_time: NaiveTime,
    ) -> Result<Option<SlotHistory>, StoreError> {
        Postgres::slot_history(&self.pool, id, date, start_time).await
    }

    async fn verify(&self) -> Result<VerifyReport, StoreError> {
        // One snapshot for every check, and no locks taken from the writers.
        let snapshot = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
        Postgres::verify(snapshot).await
    }
}
