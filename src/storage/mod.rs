//! Storage: one interface, one implementation per backend, picked once from the database URL.
//!
//! Each backend owns its SQL and its migrations (`migrations/sqlite`, `migrations/postgres`);
//! the rules (which transfers a fetch implies, how the served price is chosen) live in shared
//! code so both backends behave identically.

mod cached;
mod postgres;
mod sql;
mod sqlite;
mod types;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};

use crate::domain::{
    DatePrice, DayFetch, ExperienceId, MinorUnits, PaxAvailability, Price, PriceOutOfRange, Seats,
    SellablePaxPrice, cheapest_primary_by_date,
};
use crate::ledger::{AccountKind, PostingError, VerifyReport};

pub use cached::{CachedStore, Rendered};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Carries the URL with its password already redacted ([`redact_url`]).
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
    #[error("this instance no longer holds the sync lease; the apply was refused")]
    LeaseLost,
}

/// A price too large to store is refused as corrupt data, like any value the schema cannot hold.
impl From<PriceOutOfRange> for StoreError {
    fn from(error: PriceOutOfRange) -> Self {
        Self::Corrupt(error.to_string())
    }
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

/// Whether applies post the ledger. Always on, except in the ingest benchmark's baseline,
/// which measures what the postings cost by applying the same days without them (such a
/// store's ledger no longer matches its mirror).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Postings {
    On,
    Off,
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedSlot {
    pub provider_slot_id: String,
    pub start_date: NaiveDate,
    pub start_time: NaiveTime,
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
    /// With a `fence`, the apply is refused ([`StoreError::LeaseLost`]) unless that lease is
    /// still the current one, so a leader that stalled and lost its lease cannot write stale
    /// data.
    async fn apply_fetch(
        &self,
        fetch: &DayFetch,
        fence: Option<&Fence>,
    ) -> Result<ApplyOutcome, StoreError>;

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

    /// Takes or renews the partner-polling lease for `holder` for `ttl`; `None` while another
    /// holder's lease is still running. Decided and stamped with the database's clock at a
    /// moment inside the call, so a granted lease runs out no earlier than `ttl` after the
    /// call started: the caller counts it down on its own monotonic clock from before the
    /// call, trusting no host's wall clock.
    async fn acquire_lease(
        &self,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<Lease>, StoreError>;

    /// The lease as it stands, whoever holds it.
    async fn current_lease(&self) -> Result<Lease, StoreError>;

    /// Records an operator's request to re-sync `from..=to` (one experience or all), for
    /// whichever instance holds the lease.
    async fn request_sync(&self, request: &SyncRequest) -> Result<(), StoreError>;

    /// Takes every recorded request, oldest first; each is returned once.
    async fn take_sync_requests(&self) -> Result<Vec<SyncRequest>, StoreError>;

    /// Hands the lease back early: it runs out `gap` from now by the database's clock (the
    /// pacing gap, so the next leader's first call keeps the rate).
    async fn release_lease(
        &self,
        lease: &Lease,
        gap: std::time::Duration,
    ) -> Result<(), StoreError>;
}

/// An operator's request to re-sync a range now: one experience, or all (`None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRequest {
    pub experience: Option<ExperienceId>,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub requested_at: DateTime<Utc>,
}

/// A stored request as both backends read it.
pub(crate) type SyncRequestRow = (Option<i64>, NaiveDate, NaiveDate, DateTime<Utc>);

impl TryFrom<SyncRequestRow> for SyncRequest {
    type Error = StoreError;
    fn try_from((experience, from, to, requested_at): SyncRequestRow) -> Result<Self, StoreError> {
        Ok(Self {
            experience: experience
                .map(ExperienceId::try_from)
                .transpose()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            from,
            to,
            requested_at,
        })
    }
}

/// The right to poll the partner, held by one instance at a time.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Lease {
    pub holder: Option<String>,
    /// Grows with every change of holder: a write fenced with an older token is refused.
    pub token: i64,
    pub expires_at: DateTime<Utc>,
}

impl Lease {
    /// The lease after `holder` asks for it at `now` (the database's clock): renewed when it
    /// already holds it, taken over (with a new token) when it is free or has run out, `None`
    /// when someone else holds it.
    pub fn claimed_by(
        &self,
        holder: &str,
        now: DateTime<Utc>,
        ttl: std::time::Duration,
    ) -> Option<Lease> {
        let running = self.expires_at > now;
        let mine = self.holder.as_deref() == Some(holder);
        if running && !mine {
            return None;
        }
        Some(Lease {
            holder: Some(holder.to_string()),
            token: if running { self.token } else { self.token + 1 },
            expires_at: now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX),
        })
    }
}

/// What an apply must prove before it writes: the lease it acts under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub lease: Lease,
}

impl Fence {
    /// Refuses unless `current` (read under a lock in the apply's transaction) is still this
    /// fence's lease and has not run out at `now`, the database's clock.
    pub(crate) fn check(&self, current: &Lease, now: DateTime<Utc>) -> Result<(), StoreError> {
        if current.holder == self.lease.holder
            && current.token == self.lease.token
            && current.expires_at > now
        {
            Ok(())
        } else {
            Err(StoreError::LeaseLost)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct LastFetch {
    #[sqlx(try_from = "i64")]
    pub experience: ExperienceId,
    pub date: NaiveDate,
    pub fetched_at: DateTime<Utc>,
    /// Slots in that answer: 0 when the partner had nothing that day.
    #[sqlx(try_from = "i64")]
    pub slot_count: u32,
}

/// Whether operators (or a rejected API key) paused the sync, why, and since when.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SyncControl {
    pub paused: bool,
    pub reason: Option<String>,
    pub changed_at: DateTime<Utc>,
}

/// Opens the backend named by the URL's scheme and brings its schema up to date.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl(redact_url(url)))
    }
}

/// `url` fit for a message or a log line: the password of its user info and any `password=`
/// query parameter replaced, whatever the scheme (a mistyped scheme is exactly when the URL
/// gets printed).
pub fn redact_url(url: &str) -> String {
    const REDACTED: &str = "[redacted]";
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut redacted = match base.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            match authority.rsplit_once('@') {
                Some((user_info, host)) => {
                    let user = user_info
                        .split_once(':')
                        .map_or(user_info, |(user, _)| user);
                    let password = if user_info.contains(':') {
                        format!(":{REDACTED}")
                    } else {
                        String::new()
                    };
                    format!("{scheme}://{user}{password}@{host}{path}")
                }
                None => base.to_string(),
            }
        }
        None => base.to_string(),
    };
    if let Some(query) = query {
        let parameters: Vec<String> = query
            .split('&')
            .map(|parameter| match parameter.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                    format!("{key}={REDACTED}")
                }
                _ => parameter.to_string(),
            })
            .collect();
        redacted.push('?');
        redacted.push_str(&parameters.join("&"));
    }
    redacted
}

/// A stored price; the scale column is a plain integer on every backend.
fn stored_price(
    final_price: i64,
    original_price: i64,
    scale: i32,
    currency: String,
) -> Result<Price, StoreError> {
    let scale = u32::try_from(scale)
        .map_err(|_| StoreError::Corrupt(format!("stored price scale {scale}")))?;
    Ok(MinorUnits {
        final_price,
        original_price,
        scale,
    }
    .into_price(currency))
}

/// A sellable slot's pax price as both backends read it for `/dates`.
#[derive(sqlx::FromRow)]
pub(crate) struct SellablePaxRow {
    pub service_date: NaiveDate,
    pub slot_id: i64,
    pub is_primary: bool,
    pub currency: String,
    pub price_scale: i32,
    pub final_price_minor: i64,
    pub original_price_minor: i64,
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
                price: stored_price(
                    row.final_price_minor,
                    row.original_price_minor,
                    row.price_scale,
                    row.currency,
                )?,
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
    start_time: NaiveTime,
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
    currency: String,
    price_scale: i32,
    final_price_minor: i64,
    original_price_minor: i64,
    balance: Seats,
}

/// Puts a day together from its slot rows (in serving order) and pax rows (ordered by slot
/// and partner position).
pub(crate) fn served_slots(
    date: NaiveDate,
    slots: Vec<SlotRow>,
    pax: Vec<PaxRow>,
) -> Result<Vec<ServedSlot>, StoreError> {
    let mut pax_by_slot: HashMap<i64, Vec<PaxAvailability>> = HashMap::new();
    for row in pax {
        let served = PaxAvailability {
            price: stored_price(
                row.final_price_minor,
                row.original_price_minor,
                row.price_scale,
                row.currency,
            )?,
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
            start_date: date,
            start_time: slot.start_time,
            remaining: slot.remaining,
            pax: pax_by_slot.remove(&slot.id).unwrap_or_default(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_passwords_in_messages() {
        for (url, shown) in [
            (
                "postgress://u:pw@host/db",
                "postgress://u:[redacted]@host/db",
            ),
            (
                "postgres://u:p%40ss:w@db.example:5432/x?sslmode=require",
                "postgres://u:[redacted]@db.example:5432/x?sslmode=require",
            ),
            (
                "postgres://db/x?user=u&password=pw&sslmode=disable",
                "postgres://db/x?user=u&password=[redacted]&sslmode=disable",
            ),
            ("postgres://u@host/db", "postgres://u@host/db"),
            ("sqlite://data/invsync.db", "sqlite://data/invsync.db"),
            ("mysql://root:hunter2@h", "mysql://root:[redacted]@h"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }

    #[tokio::test]
    async fn a_mistyped_database_url_does_not_print_its_password() {
        let error = connect("postgress://u:pw@host/db")
            .await
            .err()
            .expect("an unknown scheme is refused");
        let message = error.to_string();
        assert!(
            message.contains("postgress://u:[redacted]@host/db"),
            "{message}"
        );
        assert!(!message.contains(":pw@"), "{message}");
        assert!(!format!("{error:?}").contains(":pw@"), "{error:?}");
    }
}
