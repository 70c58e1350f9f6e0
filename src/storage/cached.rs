//! A read cache in front of a [`Store`]: the answers of `slots_on` and `sellable_dates` as the
//! API renders them (the bodies of `/slots` and `/dates`, so a hit costs no serialization), and
//! which experiences exist.
//!
//! Exactness rule: the cache serves only while this process holds the sync lease, as seen
//! through this store (taken or renewed, not handed back, lost or past its expiry). Every
//! apply in a deployment runs fenced by that lease (the daemon's and a one-shot `sync`'s), so
//! while this process holds it, the only applies that can commit are this process's own, and
//! they pass through [`CachedStore::apply_fetch`], which drops the day's answers. A follower
//! or an API-only instance (`sync.enabled = false`) never holds the lease and always reads the
//! database. Each new tenure starts with an empty cache. The tenure is counted down on this
//! process's monotonic clock from before the claim call, and the database grants the lease
//! for its length from a moment inside that call by its own clock: the tenure ends no later
//! than the lease, whatever the hosts' wall clocks say (assuming only that clocks tick at
//! the same rate).
//!
//! Bookings are written by whichever instance takes the request. This process's own moves pass
//! through [`CachedStore`]'s [`Bookings`] and drop the day's answers before they are answered;
//! other processes' moves reach it through the backend's change feed
//! ([`Inventory::inventory_changes`], PostgreSQL's `LISTEN/NOTIFY`), which
//! [`CachedStore::follow_changes`] applies, forgetting everything whenever the feed may have
//! missed a change.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;
use uuid::Uuid;

use super::{
    ApplyOutcome, Booking, BookingChange, BookingTotals, Bookings, Fence, HoldRequest, Inventory,
    InventoryChange, KeyClaim, LastFetch, Lease, Leases, Mirror, Refusal, ServedSlot, Store,
    StoreError,
};
use crate::domain::{DatePrice, DayFetch, ExperienceId};

/// Days of slots kept; a few KB each. When full the cache starts over, so memory stays
/// bounded whatever clients ask for; the hot days come back at their next read.
const MAX_SLOT_DAYS: usize = 2048;
/// `/dates` answers kept: one per experience and horizon.
const MAX_DATE_RANGES: usize = 1024;

type Day = (ExperienceId, NaiveDate);
type DateRange = (ExperienceId, NaiveDate, NaiveDate);
/// An answer as the API serves it.
pub type Rendered = Arc<[u8]>;

pub struct CachedStore {
    inner: Arc<dyn Store>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    tenure: Option<Tenure>,
    /// Bumped whenever an apply starts or a tenure begins or ends: a read that began before
    /// must not keep what it read, since it may predate that apply's commit.
    generation: u64,
    /// Days whose apply is under way (one entry per apply): their reads go to the database.
    applying: Vec<Day>,
    slots: HashMap<Day, Rendered>,
    dates: HashMap<DateRange, Rendered>,
    /// Experiences are never deleted: once seen, always there.
    known_experiences: HashSet<ExperienceId>,
}

/// This process's hold on the sync lease.
struct Tenure {
    token: i64,
    until: Instant,
}

fn covers(range: &DateRange, (experience, date): &Day) -> bool {
    range.0 == *experience && (range.1..=range.2).contains(date)
}

impl State {
    fn serving(&self) -> bool {
        self.tenure
            .as_ref()
            .is_some_and(|tenure| tenure.until > Instant::now())
    }

    /// Renews the tenure, or starts a new one (empty) when the token changed or it had run out.
    fn hold(&mut self, lease: &Lease, until: Instant) {
        let continues = self.serving()
            && self
                .tenure
                .as_ref()
                .is_some_and(|tenure| tenure.token == lease.token);
        if !continues {
            self.forget_everything();
        }
        self.tenure = Some(Tenure {
            token: lease.token,
            until,
        });
    }

    fn end_tenure(&mut self) {
        self.tenure = None;
        self.forget_everything();
    }

    fn forget_everything(&mut self) {
        self.generation += 1;
        self.slots.clear();
        self.dates.clear();
    }

    fn start_apply(&mut self, day: Day) {
        self.applying.push(day);
        self.forget_day(day);
    }

    fn forget_day(&mut self, day: Day) {
        self.generation += 1;
        self.slots.remove(&day);
        self.dates.retain(|range, _| !covers(range, &day));
    }

    fn finish_apply(&mut self, day: Day) {
        if let Some(index) = self.applying.iter().position(|applying| *applying == day) {
            self.applying.swap_remove(index);
        }
    }
}

/// Marks a day as being applied until dropped, also when the apply fails or is cancelled.
struct Applying<'a> {
    store: &'a CachedStore,
    day: Day,
}

impl Drop for Applying<'_> {
    fn drop(&mut self) {
        self.store.lock().finish_apply(self.day);
    }
}

impl CachedStore {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            state: Mutex::default(),
        }
    }

    /// Forgets the days other processes change, as the backend announces them, for as long
    /// as this store lives.
    pub fn follow_changes(self: &Arc<Self>) {
        let Some(mut changes) = self.inner.inventory_changes() else {
            return;
        };
        let store = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let change = changes.recv().await;
                let Some(store) = store.upgrade() else {
                    return;
                };
                let mut state = store.lock();
                match change {
                    Ok(InventoryChange::Day(experience, date)) => {
                        state.forget_day((experience, date));
                    }
                    Ok(InventoryChange::Unknown) | Err(RecvError::Lagged(_)) => {
                        state.forget_everything();
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
    }

    /// The state holds plain data that a panic cannot leave half-updated.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn applying(&self, day: Day) -> Applying<'_> {
        self.lock().start_apply(day);
        Applying { store: self, day }
    }

    /// `slots_on`'s answer rendered by `render` (the API's one rendering of it), from memory
    /// when that is exact.
    pub async fn rendered_slots<E: From<StoreError>>(
        &self,
        id: ExperienceId,
        date: NaiveDate,
        render: impl FnOnce(Vec<ServedSlot>) -> Result<Vec<u8>, E>,
    ) -> Result<Rendered, E> {
        let day = (id, date);
        self.read_through(
            day,
            |applying| *applying == day,
            |state| &mut state.slots,
            MAX_SLOT_DAYS,
            async { Ok(render(self.inner.slots_on(id, date).await?)?.into()) },
        )
        .await
    }

    /// `sellable_dates`'s answer rendered by `render` (the API's one rendering of it), from
    /// memory when that is exact.
    pub async fn rendered_dates<E: From<StoreError>>(
        &self,
        id: ExperienceId,
        from: NaiveDate,
        to: NaiveDate,
        render: impl FnOnce(Vec<DatePrice>) -> Result<Vec<u8>, E>,
    ) -> Result<Rendered, E> {
        let range = (id, from, to);
        self.read_through(
            range,
            |applying| covers(&range, applying),
            |state| &mut state.dates,
            MAX_DATE_RANGES,
            async { Ok(render(self.inner.sellable_dates(id, from, to).await?)?.into()) },
        )
        .await
    }

    /// The cached answer for `key`, else `load`'s, kept only if nothing that could change it
    /// happened while it was read.
    async fn read_through<K: Eq + Hash, E>(
        &self,
        key: K,
        affected_by: impl Fn(&Day) -> bool,
        answers: fn(&mut State) -> &mut HashMap<K, Rendered>,
        capacity: usize,
        load: impl Future<Output = Result<Rendered, E>>,
    ) -> Result<Rendered, E> {
        let generation = match self.lookup(&key, affected_by, answers) {
            Lookup::Hit(hit) => return Ok(hit),
            Lookup::Bypass => return load.await,
            Lookup::Miss { generation } => generation,
        };
        let rendered = load.await?;
        let mut state = self.lock();
        if state.generation == generation && state.serving() {
            let answers = answers(&mut state);
            if answers.len() >= capacity {
                answers.clear();
            }
            answers.insert(key, rendered.clone());
        }
        Ok(rendered)
    }

    fn lookup<K: Eq + Hash>(
        &self,
        key: &K,
        affected_by: impl Fn(&Day) -> bool,
        answers: fn(&mut State) -> &mut HashMap<K, Rendered>,
    ) -> Lookup {
        let mut state = self.lock();
        if !state.serving() || state.applying.iter().any(affected_by) {
            return Lookup::Bypass;
        }
        match answers(&mut state).get(key) {
            Some(hit) => Lookup::Hit(hit.clone()),
            None => Lookup::Miss {
                generation: state.generation,
            },
        }
    }
}

enum Lookup {
    Hit(Rendered),
    /// Read the database and keep nothing: not serving, or the key is being applied.
    Bypass,
    /// Read the database; keep the answer if `generation` has not moved meanwhile.
    Miss {
        generation: u64,
    },
}

#[async_trait]
impl Mirror for CachedStore {
    async fn apply_fetch(
        &self,
        fetch: &DayFetch,
        fence: Option<&Fence>,
    ) -> Result<ApplyOutcome, StoreError> {
        let _applying = self.applying((fetch.experience, fetch.date));
        let outcome = self.inner.apply_fetch(fetch, fence).await;
        if matches!(outcome, Err(StoreError::LeaseLost)) {
            self.lock().end_tenure();
        }
        outcome
    }

    async fn ensure_experiences(&self, ids: &[ExperienceId]) -> Result<(), StoreError> {
        self.inner.ensure_experiences(ids).await
    }

    async fn last_fetches(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<LastFetch>, StoreError> {
        self.inner.last_fetches(from, to).await
    }
}

#[async_trait]
impl Inventory for CachedStore {
    async fn experience_exists(&self, id: ExperienceId) -> Result<bool, StoreError> {
        if self.lock().known_experiences.contains(&id) {
            return Ok(true);
        }
        let exists = self.inner.experience_exists(id).await?;
        if exists {
            self.lock().known_experiences.insert(id);
        }
        Ok(exists)
    }

    async fn slots_on(
        &self,
        id: ExperienceId,
        date: NaiveDate,
    ) -> Result<Vec<ServedSlot>, StoreError> {
        self.inner.slots_on(id, date).await
    }

    async fn sellable_dates(
        &self,
        id: ExperienceId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DatePrice>, StoreError> {
        self.inner.sellable_dates(id, from, to).await
    }
}

#[async_trait]
impl Leases for CachedStore {
    async fn acquire_lease(
        &self,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<Lease>, StoreError> {
        // Counted from before the call: the lease may have been written at its very start.
        let asked = Instant::now();
        let claimed = self.inner.acquire_lease(holder, ttl).await;
        let mut state = self.lock();
        match &claimed {
            Ok(Some(lease)) => state.hold(lease, asked + ttl),
            Ok(None) => state.end_tenure(),
            // Unknown: the tenure runs out at its expiry unless a renewal gets through.
            Err(_) => {}
        }
        claimed
    }

    async fn release_lease(
        &self,
        lease: &Lease,
        gap: std::time::Duration,
    ) -> Result<(), StoreError> {
        // Before the call: once handed back, a successor may write at any moment.
        self.lock().end_tenure();
        self.inner.release_lease(lease, gap).await
    }

    async fn current_lease(&self) -> Result<Lease, StoreError> {
        self.inner.current_lease().await
    }
}

/// Every move of a booking drops its day's answers before it is answered.
#[async_trait]
impl Bookings for CachedStore {
    async fn claim_key(
        &self,
        key: &str,
        request_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<KeyClaim, StoreError> {
        self.inner.claim_key(key, request_hash, now).await
    }

    async fn release_key(&self, key: &str) -> Result<(), StoreError> {
        self.inner.release_key(key).await
    }

    async fn hold(
        &self,
        id: Uuid,
        key: &str,
        request: &HoldRequest,
        now: DateTime<Utc>,
    ) -> Result<Result<Booking, Refusal>, StoreError> {
        let held = self.inner.hold(id, key, request, now).await;
        // Even a refused hold may have released the slot's lapsed holds first.
        self.lock().forget_day((request.experience, request.date));
        held
    }

    async fn booking(&self, id: Uuid, now: DateTime<Utc>) -> Result<Option<Booking>, StoreError> {
        self.inner.booking(id, now).await
    }

    async fn change_booking(
        &self,
        id: Uuid,
        change: BookingChange,
        now: DateTime<Utc>,
    ) -> Result<Result<Booking, Refusal>, StoreError> {
        let changed = self.inner.change_booking(id, change, now).await;
        if let Ok(Ok(booking)) = &changed {
            self.lock().forget_day((booking.experience, booking.date));
        } else {
            // A refused change may still have released a lapsed hold; which day is unknown.
            self.lock().forget_everything();
        }
        changed
    }

    async fn due_holds(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<Uuid>, StoreError> {
        self.inner.due_holds(now, limit).await
    }

    async fn booking_totals(&self) -> Result<BookingTotals, StoreError> {
        self.inner.booking_totals().await
    }
}

crate::forward_store!(CachedStore => inner: Ledger, Pause, SyncRequests);
