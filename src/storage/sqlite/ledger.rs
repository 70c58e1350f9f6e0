//! Ledger reads on SQLite, from the read-only pool.

use async_trait::async_trait;
use chrono::{NaiveDate, NaiveTime};
use sqlx::Sqlite;

use super::SqliteStore;
use crate::domain::ExperienceId;
use crate::ledger::VerifyReport;
use crate::storage::sql::Portable;
use crate::storage::{Ledger, SlotHistory, StoreError};

#[async_trait]
impl Ledger for SqliteStore {
    async fn slot_history(
        &self,
        id: ExperienceId,
        date: NaiveDate,
        start_time: NaiveTime,
    ) -> Result<Option<SlotHistory>, StoreError> {
        Sqlite::slot_history(&self.reader, id, date, start_time).await
    }

    async fn verify(&self) -> Result<VerifyReport, StoreError> {
        // One read transaction, so every check sees the same snapshot.
        Sqlite::verify(self.reader.begin()).await
    }
}
