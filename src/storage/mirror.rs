//! Mirroring the partner: each fetched day applied in one transaction (slots, pax, prices,
//! ledger postings and the day's checkpoint), and what the scheduler needs to know of them.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use super::{Fence, StoreError};
use crate::domain::{DayFetch, ExperienceId};

/// What the sync writes, and reads back to plan its next fetches.
#[async_trait]
pub trait Mirror: Send + Sync + 'static {
    /// Makes sure the experiences exist (with their partner accounts).
    async fn ensure_experiences(&self, ids: &[ExperienceId]) -> Result<(), StoreError>;

    /// Applies one fetched day atomically: slots, pax, prices, ledger postings and checkpoint.
    /// With a `fence`, the apply is refused ([`StoreError::LeaseLost`]) unless that lease is
    /// still the current one, so a leader that stalled and lost its lease cannot write stale
    /// data.
    async fn apply_fetch(
        &self,
        fetch: &DayFetch,
        fence: Option<&Fence>,
    ) -> Result<ApplyOutcome, StoreError>;

    /// When each product-date in `from..=to` was last fetched (days never fetched are absent).
    async fn last_fetches(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<LastFetch>, StoreError>;
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct LastFetch {
    #[sqlx(try_from = "String")]
    pub experience: ExperienceId,
    pub date: NaiveDate,
    pub fetched_at: DateTime<Utc>,
    /// Slots in that answer: 0 when the partner had nothing that day.
    #[sqlx(try_from = "i64")]
    pub slot_count: u32,
}

/// Whether applies post the ledger. Always on, except in the ingest benchmark's baseline,
/// which measures what the postings cost by applying the same days without them (such a
/// store's ledger no longer matches its mirror).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Postings {
    On,
    Off,
}
