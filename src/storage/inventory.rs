//! Inventory reads: what the marketplace's services are served (`/slots` and `/dates`).

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{NaiveDate, NaiveTime};

use super::StoreError;
use crate::domain::{
    DatePrice, ExperienceId, MinorUnits, PaxAvailability, Price, Seats, SellablePaxPrice,
    cheapest_primary_by_date,
};

/// What the marketplace's services read.
#[async_trait]
pub trait Inventory: Send + Sync + 'static {
    async fn experience_exists(&self, id: ExperienceId) -> Result<bool, StoreError>;

    /// Open slots of a day ordered by start time, with remaining seats from the ledger.
    async fn slots_on(
        &self,
        id: ExperienceId,
        date: NaiveDate,
    ) -> Result<Vec<ServedSlot>, StoreError> {
        self.slots_between(id, date, date).await
    }

    /// Open slots of the days `from..=to`, by date and start time, read at once.
    async fn slots_between(
        &self,
        id: ExperienceId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<ServedSlot>, StoreError>;

    /// Dates in `from..=to` with at least one open slot with seats left, with the lowest
    /// primary-pax final price of that day's sellable slots, ascending.
    async fn sellable_dates(
        &self,
        id: ExperienceId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DatePrice>, StoreError>;

    /// A number that grows whenever a booking changes one of the days `from..=to` of the
    /// experience (a read cache keeps it with an answer, to tell whether it is still exact).
    async fn booking_version(
        &self,
        id: ExperienceId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<i64, StoreError>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedSlot {
    pub provider_slot_id: String,
    pub start_date: NaiveDate,
    pub start_time: NaiveTime,
    /// On `start_date`, or the next day when earlier than `start_time`.
    pub end_time: NaiveTime,
    /// The slot's allotment as the partner last reported it: what `remaining` starts from
    /// before customers' holds and sales.
    pub allotment: Seats,
    pub remaining: Seats,
    /// In the partner's order; each pax's `remaining` is its pool's available balance.
    pub pax: Vec<PaxAvailability>,
}

impl ServedSlot {
    /// The pax whose price is the slot's price: the primary one, else the first.
    pub fn primary_pax(&self) -> Option<&PaxAvailability> {
        self.pax
            .iter()
            .find(|pax| pax.is_primary)
            .or_else(|| self.pax.first())
    }
}

/// A pax price as stored: minor units at the row's scale, in the row's currency.
#[derive(Clone, sqlx::FromRow)]
pub(crate) struct StoredPrice {
    pub currency: String,
    /// A plain integer on every backend.
    pub price_scale: i32,
    pub final_price_minor: i64,
    pub original_price_minor: i64,
}

impl StoredPrice {
    pub(crate) fn into_price(self) -> Result<Price, StoreError> {
        let scale = self.price_scale;
        let scale = u32::try_from(scale)
            .map_err(|_| StoreError::Corrupt(format!("stored price scale {scale}")))?;
        let units = MinorUnits {
            final_price: self.final_price_minor,
            original_price: self.original_price_minor,
            scale,
        };
        Ok(units.into_price(self.currency))
    }
}

/// A sellable slot's pax price as both backends read it for `/dates`.
#[derive(sqlx::FromRow)]
pub(crate) struct SellablePaxRow {
    pub service_date: NaiveDate,
    pub slot_id: i64,
    pub is_primary: bool,
    #[sqlx(flatten)]
    pub price: StoredPrice,
}

/// The "from" price of each date, from rows ordered by date, slot and pax position.
pub(crate) fn sellable_dates_from_rows(
    rows: Vec<SellablePaxRow>,
) -> Result<Vec<DatePrice>, StoreError> {
    let prices = rows
        .into_iter()
        .map(|row| {
            Ok(SellablePaxPrice {
                date: row.service_date,
                slot_id: row.slot_id,
                is_primary: row.is_primary,
                price: row.price.into_price()?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(cheapest_primary_by_date(prices))
}

/// An open slot of a day with its served remaining (the slot pool's available balance).
#[derive(sqlx::FromRow)]
pub(crate) struct SlotRow {
    id: i64,
    provider_slot_id: String,
    service_date: NaiveDate,
    start_time: NaiveTime,
    end_time: NaiveTime,
    allotment: Seats,
    remaining: Seats,
}

/// A present pax of an open slot, with its served remaining.
#[derive(sqlx::FromRow)]
pub(crate) struct PaxRow {
    slot_id: i64,
    pax_type: String,
    name: String,
    description: String,
    min_pax: i64,
    max_pax: i64,
    is_primary: bool,
    #[sqlx(flatten)]
    price: StoredPrice,
    balance: Seats,
}

/// Puts a day together from its slot rows (in serving order) and pax rows (ordered by slot
/// and partner position).
pub(crate) fn served_slots(
    slots: Vec<SlotRow>,
    pax: Vec<PaxRow>,
) -> Result<Vec<ServedSlot>, StoreError> {
    let mut pax_by_slot: HashMap<i64, Vec<PaxAvailability>> = HashMap::new();
    for row in pax {
        let served = PaxAvailability {
            price: row.price.into_price()?,
            pax_type: row.pax_type,
            name: row.name,
            description: row.description,
            min: row.min_pax,
            max: row.max_pax,
            remaining: row.balance,
            is_primary: row.is_primary,
        };
        pax_by_slot.entry(row.slot_id).or_default().push(served);
    }
    Ok(slots
        .into_iter()
        .map(|slot| ServedSlot {
            provider_slot_id: slot.provider_slot_id,
            start_date: slot.service_date,
            start_time: slot.start_time,
            end_time: slot.end_time,
            allotment: slot.allotment,
            remaining: slot.remaining,
            pax: pax_by_slot.remove(&slot.id).unwrap_or_default(),
        })
        .collect())
}
