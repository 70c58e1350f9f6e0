//! Customer bookings (DESIGN section 7): what a request to hold, confirm, extend or cancel
//! seats must say, the idempotency of holds, and the sweeper that releases lapsed holds. The
//! store moves the seats ([`crate::storage::Bookings`]) by the ledger's rules
//! ([`crate::ledger::booking`]); the HTTP layer only parses and renders.

pub mod demo;
pub mod request;

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use request::{HoldBody, IdempotencyKey, InvalidBooking, PaxBody};

use crate::domain::ExperienceId;
use crate::storage::{
    Amendment, Booking, BookingChange, BookingStatus, HoldOutcome, KeyedHold, Refusal,
    ResellerBooking, ResellerQuery, Store, StoreError,
};
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
/// The most holds of one day taken in one transaction.
const HOLD_BATCH: usize = 128;

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
    queue: Arc<HoldQueue>,
    /// Idempotency keys of the holds this instance is answering now.
    in_flight: Arc<Mutex<HashSet<String>>>,
}

/// The time a booking call is made at: whole milliseconds, so every backend stores and
/// compares it exactly.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

impl BookingDesk {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            queue: Arc::new(HoldQueue::new(store.clone())),
            store,
            in_flight: Arc::default(),
        }
    }

    /// Holds seats, once per idempotency key. Once queued, a hold is taken whatever the
    /// caller does, so a client that disconnects leaves either no hold or one its retry with
    /// the key finds.
    pub async fn hold(&self, key: IdempotencyKey, body: HoldBody) -> Result<Answer, BookingError> {
        let now = now();
        let request = body.parse(now)?;
        let Some(_in_flight) = InFlight::enter(&self.in_flight, key.as_str()) else {
            return Err(BookingError::KeyInFlight);
        };
        if let Some(short) = self
            .store
            .hold_shortfall(key.as_str(), &request, now)
            .await?
        {
            let refusal = Refusal::InsufficientCapacity(short);
            count_refusal(&refusal);
            return Err(BookingError::Refused(refusal));
        }
        let hold = KeyedHold {
            id: Uuid::new_v4(),
            key: key.as_str().to_owned(),
            request_hash: body.canonical_hash(),
            request,
        };
        match self.queue.hold(hold).await? {
            HoldOutcome::Held(booking) => {
                count("held");
                Ok(Answer {
                    booking,
                    replayed: false,
                })
            }
            HoldOutcome::Replay(booking) => {
                count("replayed");
                Ok(Answer {
                    booking,
                    replayed: true,
                })
            }
            HoldOutcome::Refused(refusal) => {
                count_refusal(&refusal);
                Err(BookingError::Refused(refusal))
            }
            HoldOutcome::KeyReused => Err(BookingError::KeyReused),
        }
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
        let amendment = Amendment {
            change: Some(change),
            ..Amendment::default()
        };
        self.amend(id, amendment).await
    }

    /// Moves a booking to other seats, changes its state and records its reseller's record,
    /// all or nothing (see [`crate::storage::Bookings::amend_booking`]).
    pub async fn amend(&self, id: Uuid, amendment: Amendment) -> Result<Booking, BookingError> {
        let store = self.store.clone();
        let change = amendment.change;
        // As for holds: a change, once asked for, is carried out whatever the caller does.
        let changed = tokio::spawn(async move { store.amend_booking(id, &amendment, now()).await })
            .await
            .map_err(|e| StoreError::Corrupt(format!("the booking change's task failed: {e}")))??;
        match changed {
            Ok(booking) => {
                match (change, booking.status) {
                    (Some(BookingChange::Confirm), BookingStatus::Confirmed) => count("confirmed"),
                    (Some(BookingChange::Cancel), BookingStatus::Cancelled) => count("cancelled"),
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

    /// The bookings resellers made that `query` finds, newest first.
    pub async fn reseller_bookings(
        &self,
        query: &ResellerQuery,
    ) -> Result<Vec<ResellerBooking>, StoreError> {
        self.store.reseller_bookings(query, now()).await
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

/// A key's place in [`BookingDesk::in_flight`] while its hold is being answered.
struct InFlight<'a> {
    keys: &'a Mutex<HashSet<String>>,
    key: String,
}

impl<'a> InFlight<'a> {
    /// `None` while another request with `key` is being answered here.
    fn enter(keys: &'a Mutex<HashSet<String>>, key: &str) -> Option<Self> {
        let mut held = keys.lock().unwrap_or_else(PoisonError::into_inner);
        held.insert(key.to_owned()).then(|| Self {
            keys,
            key: key.to_owned(),
        })
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut held = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        held.remove(&self.key);
    }
}

type Day = (ExperienceId, NaiveDate);

/// Holds waiting for their day. The first hold of an idle day starts a task that takes the
/// day's queue in batches until it is empty: while one batch holds the day's lock, the holds
/// arriving meanwhile gather for the next, so a sale's thousand holds on one slot need tens of
/// transactions, not a thousand.
struct HoldQueue {
    store: Arc<dyn Store>,
    /// A day is here while its task runs.
    days: Mutex<HashMap<Day, Vec<QueuedHold>>>,
}

struct QueuedHold {
    hold: KeyedHold,
    answer: oneshot::Sender<Result<HoldOutcome, StoreError>>,
}

impl HoldQueue {
    fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            days: Mutex::default(),
        }
    }

    async fn hold(self: &Arc<Self>, hold: KeyedHold) -> Result<HoldOutcome, StoreError> {
        let day = (hold.request.experience, hold.request.date);
        let (answer, answered) = oneshot::channel();
        let queued = QueuedHold { hold, answer };
        let idle = {
            let mut days = self.days.lock().unwrap_or_else(PoisonError::into_inner);
            match days.entry(day) {
                Entry::Occupied(mut waiting) => {
                    waiting.get_mut().push(queued);
                    false
                }
                Entry::Vacant(idle) => {
                    idle.insert(vec![queued]);
                    true
                }
            }
        };
        if idle {
            let queue = self.clone();
            tokio::spawn(async move { queue.take_day(day).await });
        }
        answered
            .await
            .map_err(|_| StoreError::Corrupt("the day's hold queue stopped".into()))?
    }

    async fn take_day(&self, day: Day) {
        loop {
            let batch: Vec<QueuedHold> = {
                let mut days = self.days.lock().unwrap_or_else(PoisonError::into_inner);
                let Some(waiting) = days.get_mut(&day).filter(|waiting| !waiting.is_empty()) else {
                    days.remove(&day);
                    return;
                };
                let taken = waiting.len().min(HOLD_BATCH);
                waiting.drain(..taken).collect()
            };
            self.take(batch).await;
        }
    }

    async fn take(&self, batch: Vec<QueuedHold>) {
        let holds: Vec<KeyedHold> = batch.iter().map(|queued| queued.hold.clone()).collect();
        match self.store.hold_batch(&holds, now()).await {
            Ok(outcomes) => {
                for (queued, outcome) in batch.into_iter().zip(outcomes) {
                    // A caller that went away is not waiting for its answer.
                    let _ = queued.answer.send(Ok(outcome));
                }
            }
            // One hold's failure (a deadlock on a key reused across days, a lost connection)
            // must not fail the others: each is tried alone and answered with its own result.
            Err(error) if batch.len() > 1 => {
                tracing::warn!(%error, holds = batch.len(), "a batch of holds failed; taking them one by one");
                for queued in batch {
                    let alone = self
                        .store
                        .hold_batch(std::slice::from_ref(&queued.hold), now())
                        .await
                        .and_then(|mut outcomes| {
                            outcomes.pop().ok_or_else(|| {
                                StoreError::Corrupt("a hold was taken without an outcome".into())
                            })
                        });
                    let _ = queued.answer.send(alone);
                }
            }
            Err(error) => {
                if let Some(queued) = batch.into_iter().next() {
                    let _ = queued.answer.send(Err(error));
                }
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
