//! Ledger reads: a slot's postings ("why did slot X show 17 seats at 10:04?") and the check of
//! every invariant. The ledger is written by what moves capacity (the mirror's applies and
//! customers' bookings); its rules are in [`crate::ledger`].

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};

use super::StoreError;
use crate::domain::{ExperienceId, Seats};
use crate::ledger::{AccountKind, VerifyReport};

/// What finance and support read of the ledger.
#[async_trait]
pub trait Ledger: Send + Sync + 'static {
    /// Every posting on the accounts of the slot starting at `start_time` on `date`.
    async fn slot_history(
        &self,
        id: ExperienceId,
        date: NaiveDate,
        start_time: NaiveTime,
    ) -> Result<Option<SlotHistory>, StoreError>;

    /// Checks every ledger invariant.
    async fn verify(&self) -> Result<VerifyReport, StoreError>;
}

/// One ledger entry on one of a slot's accounts.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Posting {
    pub at: DateTime<Utc>,
    pub transaction_id: i64,
    pub account_id: i64,
    pub account_kind: AccountKind,
    /// `None` for the slot-level pool.
    pub pax_type: Option<String>,
    pub amount: Seats,
    pub balance_after: Seats,
    pub version: i64,
    /// `sync` for a fetched day's posting; `hold`, `confirm`, `cancel` or `expire` for a
    /// booking's.
    pub reason: String,
    /// The fetch a sync posting applied.
    pub fetch_id: Option<String>,
    pub fetched_at: Option<DateTime<Utc>>,
    /// The booking a booking's posting moved.
    pub booking_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotHistory {
    pub provider_slot_id: String,
    pub start_date: NaiveDate,
    pub start_time: NaiveTime,
    pub is_open: bool,
    pub postings: Vec<Posting>,
}
