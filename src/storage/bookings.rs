//! Customer bookings (DESIGN section 7): holds, confirmations, cancellations and expiries,
//! each one journal transaction on the pools the booking draws on, with the booking's state
//! and its idempotency key in the same database transaction. The moves themselves are
//! [`crate::ledger::booking`]'s; the rules of a request (quantities, hold lengths, keys) are
//! [`crate::bookings`]'.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::StoreError;
use crate::domain::{ExperienceId, Price, Seats};
use crate::ledger::booking::InsufficientCapacity;

/// What the bookings service asks of the store.
#[async_trait]
pub trait Bookings: Send + Sync + 'static {
    /// The refusal a hold would certainly meet, read without taking any lock: a pool it draws
    /// on has fewer seats than it asks for, the key is new and no lapsed hold on the slot is
    /// waiting to be released. `None` means "try it". A sale's losers are answered from this
    /// read, without a write.
    async fn hold_shortfall(
        &self,
        key: &str,
        request: &HoldRequest,
        now: DateTime<Utc>,
    ) -> Result<Option<InsufficientCapacity>, StoreError>;

    /// Takes `holds` in order and in one transaction: each is held whole, refused whole, or
    /// answered with the booking its key made before. A sale's holds on a hot day queue for
    /// that day's lock; taken together, the lock, the pools' reads and the commit are one for
    /// the lot instead of one each.
    async fn hold_batch(
        &self,
        holds: &[KeyedHold],
        now: DateTime<Utc>,
    ) -> Result<Vec<HoldOutcome>, StoreError>;

    /// A booking as it stands (a hold past its deadline reads as expired even before the
    /// sweeper has posted its release).
    async fn booking(&self, id: Uuid, now: DateTime<Utc>) -> Result<Option<Booking>, StoreError>;

    /// Confirms, cancels, extends or expires a booking.
    async fn change_booking(
        &self,
        id: Uuid,
        change: BookingChange,
        now: DateTime<Utc>,
    ) -> Result<Result<Booking, Refusal>, StoreError> {
        let amendment = Amendment {
            change: Some(change),
            ..Amendment::default()
        };
        self.amend_booking(id, &amendment, now).await
    }

    /// Changes a booking's seats (`rebook`), then its state (`change`), then records its
    /// reseller's record, all in one transaction: all of it happens or none of it (a hold
    /// found past its deadline is still released).
    async fn amend_booking(
        &self,
        id: Uuid,
        amendment: &Amendment,
        now: DateTime<Utc>,
    ) -> Result<Result<Booking, Refusal>, StoreError>;

    /// The bookings resellers made that `query` finds, as they stand at `now`, newest first.
    async fn reseller_bookings(
        &self,
        query: &ResellerQuery,
        now: DateTime<Utc>,
    ) -> Result<Vec<ResellerBooking>, StoreError>;

    /// Holds past their deadline, soonest first.
    async fn due_holds(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<Uuid>, StoreError>;

    /// Seats on hold and shortfalls, for status and metrics.
    async fn booking_totals(&self) -> Result<BookingTotals, StoreError>;

    /// The newest bookings, newest first, as they stand at `now`.
    async fn recent_bookings(
        &self,
        limit: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<Booking>, StoreError>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaxQuantity {
    pub pax_type: String,
    pub quantity: Seats,
}

/// A hold as the bookings service has parsed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldRequest {
    pub experience: ExperienceId,
    pub date: NaiveDate,
    pub start_time: NaiveTime,
    /// Each pax type once, each quantity positive.
    pub pax: Vec<PaxQuantity>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BookingStatus {
    OnHold,
    Confirmed,
    Cancelled,
    Expired,
}

impl BookingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OnHold => "on_hold",
            Self::Confirmed => "confirmed",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }

    pub(crate) fn parse(text: &str) -> Result<Self, StoreError> {
        match text {
            "on_hold" => Ok(Self::OnHold),
            "confirmed" => Ok(Self::Confirmed),
            "cancelled" => Ok(Self::Cancelled),
            "expired" => Ok(Self::Expired),
            other => Err(StoreError::Corrupt(format!("booking status {other:?}"))),
        }
    }
}

/// One pax type of a booking, priced as it was when the seats were held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookedPax {
    pub pax_type: String,
    pub quantity: Seats,
    pub unit_price: Price,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booking {
    pub id: Uuid,
    pub status: BookingStatus,
    pub experience: ExperienceId,
    pub date: NaiveDate,
    pub start_time: NaiveTime,
    pub pax: Vec<BookedPax>,
    pub created_at: DateTime<Utc>,
    /// The hold's deadline (kept once the hold has ended).
    pub expires_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

/// What can be done to an existing booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookingChange {
    Confirm,
    Cancel,
    /// A new deadline for a hold.
    Extend(DateTime<Utc>),
    /// Releases a hold past its deadline (the sweeper's move).
    Expire,
}

/// Why the store refused a booking call; nothing moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    UnknownExperience,
    SlotNotFound,
    UnknownPaxType(String),
    QuantityOutOfRange {
        pax_type: String,
        quantity: Seats,
        min: Seats,
        max: Seats,
    },
    InsufficientCapacity(InsufficientCapacity),
    NotFound,
    Expired,
    Cancelled,
    /// Only a hold can be extended.
    NotOnHold(BookingStatus),
}

/// What [`Bookings::amend_booking`] does to a booking, in this order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Amendment {
    /// Other seats: another slot of the same experience, other pax, or both. A hold gets
    /// `expires_at` as its new deadline; a confirmed booking stays sold.
    pub rebook: Option<HoldRequest>,
    pub change: Option<BookingChange>,
    /// Replaces the booking's reseller record.
    pub record: Option<ResellerRecord>,
}

/// What a reseller keeps with a booking it made: its own id for it, its reference, and the
/// rest of what it sent as a document the reseller's protocol layer owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResellerRecord {
    pub uuid: String,
    pub reseller_reference: Option<String>,
    /// JSON, opaque to the store.
    pub document: String,
}

/// A booking a reseller made, with its record (absent only if the process stopped between
/// the hold and writing the record; the reseller's retry writes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResellerBooking {
    pub booking: Booking,
    pub record: Option<ResellerRecord>,
    /// When the record was last written.
    pub updated_at: Option<DateTime<Utc>>,
}

/// Which reseller bookings to find.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResellerQuery {
    /// The booking held under this idempotency key.
    Key(String),
    /// The booking with this id, if a reseller made it.
    Booking(Uuid),
    /// Every booking recorded with this reseller reference.
    ResellerReference(String),
}

/// A hold to take as booking `id`, recorded under its idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedHold {
    pub id: Uuid,
    pub key: String,
    /// The canonical request's hash: a key's repeat must carry the same.
    pub request_hash: String,
    pub request: HoldRequest,
}

/// What became of one hold of [`Bookings::hold_batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldOutcome {
    Held(Booking),
    Refused(Refusal),
    /// The key made this booking with the same request before: it is the answer again.
    Replay(Booking),
    /// The key came with another request.
    KeyReused,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BookingTotals {
    /// Seats on hold in slot pools.
    pub seats_on_hold: Seats,
    /// Seats held or sold beyond the allotment, in slot pools, per experience customers have
    /// booked (0 where none is short, so a resolved shortfall reads 0).
    pub shortfall: Vec<(ExperienceId, Seats)>,
}

impl Booking {
    /// The booking as a reader sees it at `now`: a hold past its deadline is expired, whether
    /// or not its release has been posted yet.
    pub fn as_of(self, now: DateTime<Utc>) -> Self {
        if self.status == BookingStatus::OnHold && self.expires_at <= now {
            Self {
                status: BookingStatus::Expired,
                ..self
            }
        } else {
            self
        }
    }
}
