//! Inventory reads on PostgreSQL.

use async_trait::async_trait;
use chrono::NaiveDate;
use sqlx::Postgres;

use super::PostgresStore;
use crate::domain::{DatePrice, ExperienceId};
use crate::storage::inventory::{SellablePaxRow, sellable_dates_from_rows};
use crate::storage::sql::Portable;
use crate::storage::{DuringExt, Inventory, ServedSlot, StoreError};

#[async_trait]
impl Inventory for PostgresStore {
    async fn experience_exists(&self, id: ExperienceId) -> Result<bool, StoreError> {
        Postgres::experience_exists(&self.pool, id).await
    }

    async fn slots_between(
        &self,
        id: ExperienceId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<ServedSlot>, StoreError> {
        Postgres::slots_between(&self.pool, id, from, to).await
    }

    async fn sellable_dates(
        &self,
        id: ExperienceId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DatePrice>, StoreError> {
        let rows: Vec<SellablePaxRow> = sqlx::query_as(
            "SELECT s.service_date, s.id AS slot_id, p.is_primary, p.currency, p.price_scale,
                    p.final_price_minor, p.original_price_minor
             FROM slots s
             JOIN accounts a ON a.slot_id = s.id AND a.pax_type IS NULL AND a.kind = 'available'
             JOIN slot_pax p ON p.slot_id = s.id AND p.is_present
             WHERE s.experience_id = (SELECT id FROM experiences WHERE code = $1)
               AND s.service_date BETWEEN $2 AND $3
               AND s.is_open AND a.balance > 0
             ORDER BY s.service_date, s.id, p.position",
        )
        .bind(id.as_str())
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .during("reading sellable dates")?;
        sellable_dates_from_rows(rows)
    }

    async fn booking_version(
        &self,
        id: ExperienceId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<i64, StoreError> {
        Postgres::booking_version(&self.pool, id, from, to).await
    }
}
