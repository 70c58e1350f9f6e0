//! Customer bookings (DESIGN section 7): what a request to hold, confirm, extend or cancel
//! seats must say, the idempotency of holds, and the sweeper that releases lapsed holds. The
//! store moves the seats ([`crate::storage::Bookings`]) by the ledger's rules
//! ([`crate::ledger::booking`]); the HTTP layer only parses and renders.

pub mod demo;
pub mod request;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use request::{HoldBody, IdempotencyKey, InvalidBooking, PaxBody};

use crate::storage::{Booking, BookingChange, BookingStatus, KeyClaim, Refusal, Store, StoreError};
use crate::telemetry::names;

/// A hold lasts this long unless the request says otherwise.
pub const DEFAULT_HOLD: Duration = Duration::from_secs(600);
/// The longest hold a request may ask for (also when extending).
pub const MAX_HOLD: Duration = Duration::from_secs(3600);
/// How often each instance looks for lapsed holds: seats are back on sale well within a
/// second of a hold's deadline, whether or not anyone reads or books them.
pub const SWEEP_EVERY: Duration = Duration::from_millis(250);
/// Lapsed holds released per sweep query; more are taken by the next query at once.
const SWEEP_BATCH: i64 = 200;

#[derive(Debug, thiserror::Error)]
pub enum BookingError {
    #[error(transparent)]
    Invalid(#[from] InvalidBooking),
    #[error("refused")]
    Refused(Refusal),
    #[error("the idempotency key is still being processed by an earlier request; retry shortly")]
    KeyInFlight,
    #[error("the idempotency key was used with a different request body")]
    KeyReused,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A booking as answered, and whether it is the replay of an earlier request with its key.
#[derive(Debug)]
pub struct Answer {
    pub booking: Booking,
    pub replayed: bool,
}

/// Takes the booking calls of the API and the sweeper's expiries to the store.
#[derive(Clone)]
pub struct BookingDesk {
    store: Arc<dyn Store>,
}

/// The time a booking call is made at: whole milliseconds, so every backend stores and
/// compares it exactly.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

impl BookingDesk {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Holds seats, once per idempotency key. Runs to its end even if the caller goes away, so
    /// a client that disconnects leaves either no hold or one its retry with the key finds.
    pub async fn hold(&self, key: IdempotencyKey, body: HoldBody) -> Result<Answer, BookingError> {
        let desk = self.clone();
        tokio::spawn(async move { desk.hold_to_end(key, body).await })
            .await
            .map_err(|e| StoreError::Corrupt(format!("the hold's task failed: {e}")))?
    }

    async fn hold_to_end(
        &self,
        key: IdempotencyKey,
        body: HoldBody,
    ) -> Result<Answer, BookingError> {
        let now = now();
        let request = body.parse(now)?;
        let hash = body.canonical_hash();
        if let Some(short) = self
            .store
            .hold_shortfall(key.as_str(), &request, now)
            .await?
        {
            let refusal = Refusal::InsufficientCapacity(short);
            count_refusal(&refusal);
            return Err(BookingError::Refused(refusal));
        }
        match self.store.claim_key(key.as_str(), &hash, now).await? {
            KeyClaim::Claimed => {}
            KeyClaim::Replay(id) => {
                count("replayed");
                let booking = self.store.booking(id, now).await?.ok_or_else(|| {
                    StoreError::Corrupt(format!("idempotency key names missing booking {id}"))
                })?;
                return Ok(Answer {
                    booking,
                    replayed: true,
                });
            }
            KeyClaim::InFlight => return Err(BookingError::KeyInFlight),
            KeyClaim::Reused => return Err(BookingError::KeyReused),
        }
        let held = self
            .store
            .hold(Uuid::new_v4(), key.as_str(), &request, now)
            .await;
        let failure = match held {
            Ok(Ok(booking)) => {
                count("held");
                return Ok(Answer {
                    booking,
                    replayed: false,
                });
            }
            Ok(Err(refusal)) => {
                count_refusal(&refusal);
                BookingError::Refused(refusal)
            }
            Err(error) => error.into(),
        };
        // Nothing was booked: the key is free for a retry.
        self.store.release_key(key.as_str()).await?;
        Err(failure)
    }

    pub async fn booking(&self, id: Uuid) -> Result<Booking, BookingError> {
        self.store
            .booking(id, now())
            .await?
            .ok_or(BookingError::Refused(Refusal::NotFound))
    }

    pub async fn confirm(&self, id: Uuid) -> Result<Booking, BookingError> {
        self.change(id, BookingChange::Confirm).await
    }

    pub async fn cancel(&self, id: Uuid) -> Result<Booking, BookingError> {
        self.change(id, BookingChange::Cancel).await
    }

    pub async fn extend(&self, id: Uuid, hold_seconds: i64) -> Result<Booking, BookingError> {
        let now = now();
        let until = now + request::hold_length(Some(hold_seconds))?;
        self.change(id, BookingChange::Extend(until)).await
    }

    async fn change(&self, id: Uuid, change: BookingChange) -> Result<Booking, BookingError> {
        let store = self.store.clone();
        // As for holds: a change, once asked for, is carried out whatever the caller does.
        let changed = tokio::spawn(async move { store.change_booking(id, change, now()).await })
            .await
            .map_err(|e| StoreError::Corrupt(format!("the booking change's task failed: {e}")))??;
        match changed {
            Ok(booking) => {
                match (change, booking.status) {
                    (BookingChange::Confirm, BookingStatus::Confirmed) => count("confirmed"),
                    (BookingChange::Cancel, BookingStatus::Cancelled) => count("cancelled"),
                    _ => {}
                }
                Ok(booking)
            }
            Err(refusal) => {
                count_refusal(&refusal);
                Err(BookingError::Refused(refusal))
            }
        }
    }

    /// Releases lapsed holds until `shutdown`; each is released once, by whichever instance
    /// takes the day's lock first (the others then find it expired already).
    pub async fn sweep_lapsed_holds(self, shutdown: CancellationToken) {
        let mut every = tokio::time::interval(SWEEP_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = every.tick() => {}
            }
            if let Err(error) = self.sweep_once().await {
                tracing::warn!(%error, "releasing lapsed holds failed; retrying");
            }
        }
    }

    /// Releases every hold lapsed by now; returns how many.
    pub async fn sweep_once(&self) -> Result<usize, StoreError> {
        let mut released = 0;
        loop {
            let now = now();
            let due = self.store.due_holds(now, SWEEP_BATCH).await?;
            for &id in &due {
                // Counted only where this sweep released it: another instance's sweep may
                // have come first.
                if let Ok(booking) = self
                    .store
                    .change_booking(id, BookingChange::Expire, now)
                    .await?
                    && booking.status == BookingStatus::Expired
                {
                    released += 1;
                    count("expired");
                }
            }
            if (due.len() as i64) < SWEEP_BATCH {
                return Ok(released);
            }
        }
    }
}

fn count(outcome: &'static str) {
    metrics::counter!(names::BOOKINGS, "outcome" => outcome).increment(1);
}

fn count_refusal(refusal: &Refusal) {
    count(match refusal {
        Refusal::InsufficientCapacity(_) => "refused_capacity",
        _ => "refused",
    });
}
