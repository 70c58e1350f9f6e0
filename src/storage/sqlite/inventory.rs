//! Inventory reads on SQLite, from the read-only pool.

use async_trait::async_trait;
use chrono::NaiveDate;
use sqlx::Sqlite;

use super::SqliteStore;
use crate::domain::{DatePrice, ExperienceId};
use crate::storage::inventory::{SellablePaxRow, StoredPrice, sellable_dates_from_rows};
use crate::storage::sql::Portable;
use crate::storage::{DuringExt, Inventory, ServedSlot, StoreError};

/// A sellable pax as `[service_date, slot_id, is_primary, currency, price_scale,
/// final_price_minor, original_price_minor]`.
#[derive(serde::Deserialize)]
struct SellablePaxJson(NaiveDate, i64, i64, String, i32, i64, i64);

impl From<SellablePaxJson> for SellablePaxRow {
    fn from(
        SellablePaxJson(
            service_date,
            slot_id,
            is_primary,
            currency,
            price_scale,
            final_minor,
            original_minor,
        ): SellablePaxJson,
    ) -> Self {
        Self {
            service_date,
            slot_id,
            is_primary: is_primary != 0,
            price: StoredPrice {
                currency,
                price_scale,
                final_price_minor: final_minor,
                original_price_minor: original_minor,
            },
        }
    }
}

#[async_trait]
impl Inventory for SqliteStore {
    async fn experience_exists(&self, id: ExperienceId) -> Result<bool, StoreError> {
        Sqlite::experience_exists(&self.reader, id).await
    }

    async fn slots_between(
        &self,
        id: ExperienceId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<ServedSlot>, StoreError> {
        Sqlite::slots_between(&self.reader, id, from, to).await
    }

    async fn sellable_dates(
        &self,
        id: ExperienceId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DatePrice>, StoreError> {
        // One JSON row rather than one row per pax: sqlx hands each row over from its worker
        // thread separately, and a horizon of days has hundreds of pax.
        let json: String = sqlx::query_scalar(
            "SELECT json_group_array(
                        json_array(s.service_date, s.id, p.is_primary, p.currency,
                                   p.price_scale, p.final_price_minor, p.original_price_minor)
                        ORDER BY s.service_date, s.id, p.position)
             FROM slots s
             JOIN accounts a ON a.slot_id = s.id AND a.pax_type IS NULL AND a.kind = 'available'
             JOIN slot_pax p ON p.slot_id = s.id AND p.is_present = 1
             WHERE s.experience_id = (SELECT id FROM experiences WHERE code = ?)
               AND s.service_date BETWEEN ? AND ?
               AND s.is_open = 1 AND a.balance > 0",
        )
        .bind(id.as_str())
        .bind(from)
        .bind(to)
        .fetch_one(&self.reader)
        .await
        .during("reading sellable dates")?;
        let rows = serde_json::from_str::<Vec<SellablePaxJson>>(&json)
            .map_err(|e| StoreError::Corrupt(format!("sellable pax as read back: {e}")))?
            .into_iter()
            .map(SellablePaxRow::from)
            .collect();
        sellable_dates_from_rows(rows)
    }

    async fn booking_version(
        &self,
        id: ExperienceId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<i64, StoreError> {
        Sqlite::booking_version(&self.reader, id, from, to).await
    }
}
