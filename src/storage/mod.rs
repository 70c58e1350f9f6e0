//! Storage: one interface, one implementation per backend, picked once from the database URL.
//!
//! Each backend owns its SQL and its migrations (`migrations/sqlite`, `migrations/postgres`);
//! the rules (which transfers a fetch implies, how the served price is chosen) live in shared
//! code so both backends behave identically.

mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use rust_decimal::Decimal;

use crate::domain::{DayFetch, ExperienceId, Price, Seats};
use crate::ledger::{AccountKind, PostingError, VerifyReport};

pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL {0:?}: expected sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    #[error("database error while {action}: {source}")]
    Database {
        action: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("running database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("ledger refused the posting: {0}")]
    Posting(#[from] PostingError),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

/// Attaches what the store was doing to a database error.
pub(crate) trait DuringExt<T> {
    fn during(self, action: &'static str) -> Result<T, StoreError>;
}

impl<T> DuringExt<T> for Result<T, sqlx::Error> {
    fn during(self, action: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Database { action, source })
    }
}

/// What applying one fetched day did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyOutcome {
    Applied {
        slots: usize,
        transfers: usize,
    },
    /// This exact fetch was applied before; nothing was written.
    AlreadyApplied,
    /// A newer fetch of the same day is already applied; this older one changes nothing.
    Superseded,
}

/// One pax type of a served slot; `remaining` is the ledger's available balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedPax {
    pub pax_type: String,
    pub name: String,
    pub description: String,
    pub min: i64,
    pub max: i64,
    pub remaining: Seats,
    pub is_primary: bool,
    pub price: Price,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedSlot {
    pub provider_slot_id: String,
    pub start_date: NaiveDate,
    pub start_time: NaiveTime,
    pub remaining: Seats,
    /// In the partner's order.
    pub pax: Vec<ServedPax>,
}

impl ServedSlot {
    /// The pax whose price is the slot's price: the primary one, else the first.
    pub fn primary_pax(&self) -> Option<&ServedPax> {
        self.pax
            .iter()
            .find(|pax| pax.is_primary)
            .or_else(|| self.pax.first())
    }
}

/// A sellable date and its "from" price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatePrice {
    pub date: NaiveDate,
    pub price: Price,
}

/// One ledger entry on one of a slot's accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posting {
    pub at: DateTime<Utc>,
    pub transaction_id: i64,
    pub transfer_id: i64,
    pub account_id: i64,
    pub account_kind: AccountKind,
    /// `None` for the slot-level pool.
    pub pax_type: Option<String>,
    pub amount: Seats,
    pub balance_after: Seats,
    pub version: i64,
    pub fetch_id: String,
    pub fetched_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotHistory {
    pub provider_slot_id: String,
    pub start_date: NaiveDate,
    pub start_time: NaiveTime,
    pub is_open: bool,
    pub postings: Vec<Posting>,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Makes sure the experiences exist (with their partner accounts).
    async fn ensure_experiences(&self, ids: &[ExperienceId]) -> Result<(), StoreError>;

    /// Applies one fetched day atomically: slots, pax, prices, ledger postings and checkpoint.
    async fn apply_fetch(&self, fetch: &DayFetch) -> Result<ApplyOutcome, StoreError>;

    async fn experience_exists(&self, id: ExperienceId) -> Result<bool, StoreError>;

    /// Open slots of a day ordered by start time, with remaining seats from the ledger.
    async fn slots_on(
        &self,
        id: ExperienceId,
        date: NaiveDate,
    ) -> Result<Vec<ServedSlot>, StoreError>;

    /// Dates in `from..=to` with at least one open slot with seats left, with the lowest
    /// primary-pax final price of that day's sellable slots, ascending.
    async fn sellable_dates(
        &self,
        id: ExperienceId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DatePrice>, StoreError>;

    /// Every posting on the accounts of the slot starting at `start_time` on `date`.
    async fn slot_history(
        &self,
        id: ExperienceId,
        date: NaiveDate,
        start_time: NaiveTime,
    ) -> Result<Option<SlotHistory>, StoreError>;

    /// Checks every ledger invariant.
    async fn verify(&self) -> Result<VerifyReport, StoreError>;

    /// When each product-date in `from..=to` was last fetched (days never fetched are absent).
    async fn last_fetches(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<LastFetch>, StoreError>;

    /// The persisted pause state.
    async fn sync_control(&self) -> Result<SyncControl, StoreError>;

    /// Pauses the sync; pausing a paused sync keeps its original reason and time.
    async fn pause_sync(&self, reason: &str, at: DateTime<Utc>) -> Result<SyncControl, StoreError>;

    /// Resumes the sync; resuming a running sync changes nothing.
    async fn resume_sync(&self, at: DateTime<Utc>) -> Result<SyncControl, StoreError>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastFetch {
    pub experience: ExperienceId,
    pub date: NaiveDate,
    pub fetched_at: DateTime<Utc>,
}

/// Whether operators (or a rejected API key) paused the sync, why, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncControl {
    pub paused: bool,
    pub reason: Option<String>,
    pub changed_at: DateTime<Utc>,
}

/// Opens the backend named by the URL's scheme and brings its schema up to date.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_string()))
    }
}

/// A price as exact integers: minor units at one explicit scale shared by both amounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MinorUnits {
    pub final_price: i64,
    pub original_price: i64,
    pub scale: u32,
}

impl MinorUnits {
    pub fn from_price(price: &Price) -> Result<Self, StoreError> {
        let final_price = price.final_price.normalize();
        let original_price = price.original_price.normalize();
        let scale = final_price.scale().max(original_price.scale());
        let to_minor = |mut amount: Decimal| {
            amount.rescale(scale);
            i64::try_from(amount.mantissa())
                .map_err(|_| StoreError::Corrupt(format!("price {amount} does not fit 64 bits")))
        };
        Ok(Self {
            final_price: to_minor(final_price)?,
            original_price: to_minor(original_price)?,
            scale,
        })
    }

    pub fn into_price(self, currency: String) -> Price {
        Price {
            final_price: Decimal::new(self.final_price, self.scale).normalize(),
            original_price: Decimal::new(self.original_price, self.scale).normalize(),
            currency,
        }
    }
}

/// A pax price on a sellable slot, as read for the `/dates` computation.
pub(crate) struct SellablePaxPrice {
    pub date: NaiveDate,
    pub slot_id: i64,
    pub is_primary: bool,
    pub price: Price,
}

/// The "from" price of each date: per slot the primary pax (else the first in partner order;
/// rows must come ordered by date, slot and position), then the lowest final price per date.
pub(crate) fn cheapest_primary_by_date(rows: Vec<SellablePaxPrice>) -> Vec<DatePrice> {
    let mut dates: Vec<DatePrice> = Vec::new();
    let mut slot_prices: Vec<(NaiveDate, Price)> = Vec::new();
    let mut current_slot: Option<(i64, bool)> = None;
    for row in rows {
        match current_slot {
            Some((slot, _)) if slot != row.slot_id => current_slot = None,
            _ => {}
        }
        match current_slot {
            None => {
                slot_prices.push((row.date, row.price));
                current_slot = Some((row.slot_id, row.is_primary));
            }
            Some((slot, false)) if row.is_primary => {
                if let Some(last) = slot_prices.last_mut() {
                    last.1 = row.price;
                }
                current_slot = Some((slot, true));
            }
            Some(_) => {}
        }
    }
    for (date, price) in slot_prices {
        match dates.last_mut() {
            Some(last) if last.date == date => {
                if price.final_price < last.price.final_price {
                    last.price = price;
                }
            }
            _ => dates.push(DatePrice { date, price }),
        }
    }
    dates
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn price(final_price: &str) -> Price {
        Price {
            final_price: Decimal::from_str(final_price).unwrap(),
            original_price: Decimal::from_str("999.9").unwrap(),
            currency: "SGD".into(),
        }
    }

    #[test]
    fn minor_units_round_trip_exactly() {
        for text in ["242.14", "73", "0", "0.1", "1234567.891"] {
            let p = price(text);
            let units = MinorUnits::from_price(&p).unwrap();
            assert_eq!(units.into_price("SGD".into()), p, "{text}");
        }
        let units = MinorUnits::from_price(&price("242.14")).unwrap();
        assert_eq!((units.final_price, units.scale), (24214, 2));
    }

    #[test]
    fn from_price_uses_primary_pax_not_free_infant() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
        let row = |slot_id, is_primary, p: &str| SellablePaxPrice {
            date: day,
            slot_id,
            is_primary,
            price: price(p),
        };
        let rows = vec![
            row(1, false, "0"),
            row(1, true, "341"),
            row(1, false, "137"),
            row(2, false, "400"),
            row(2, false, "5"),
        ];
        let dates = cheapest_primary_by_date(rows);
        assert_eq!(dates.len(), 1);
        assert_eq!(dates[0].price.final_price, Decimal::from(341));
    }
}
