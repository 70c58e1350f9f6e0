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
//! Bookings are written by whichever instance takes the request, so every answer is kept with
//! the days' booking version ([`Inventory::booking_version`], a counter each booking move bumps
//! in its own transaction) and served only while the database still reports that version:
//! one key lookup instead of the day's queries and their rendering, and exact whichever
//! instance booked. Concurrent readers of the same days share their version query
//! ([`VersionReads`]).

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::NaiveDate;
use tokio::time::Instant;

use super::version_reads::{DateRange, VersionReads};
use super::{
    ApplyOutcome, Fence, Inventory, LastFetch, Lease, Leases, Mirror, ServedSlot, Store, StoreError,
};
use crate::domain::{DatePrice, DayFetch, ExperienceId};

/// Days of slots kept; a few KB each. When full the cache starts over, so memory stays
/// bounded whatever clients ask for; the hot days come back at their next read.
const MAX_SLOT_DAYS: usize = 2048;
/// `/dates` answers kept: one per experience and horizon.
const MAX_DATE_RANGES: usize = 1024;

type Day = (ExperienceId, NaiveDate);
/// An answer as the API serves it.
pub type Rendered = Arc<[u8]>;

/// An answer with the booking version of its days when it was read.
#[derive(Clone)]
struct Kept {
    rendered: Rendered,
    booking_version: i64,
}

pub struct CachedStore {
    inner: Arc<dyn Store>,
    versions: VersionReads,
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
    slots: HashMap<Day, Kept>,
    dates: HashMap<DateRange, Kept>,
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
        self.generation += 1;
        self.applying.push(day);
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
            versions: VersionReads::new(inner.clone()),
            inner,
            state: Mutex::default(),
        }
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
            self.versions.read((id, date, date)),
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
            self.versions.read(range),
            async { Ok(render(self.inner.sellable_dates(id, from, to).await?)?.into()) },
        )
        .await
    }

    /// The cached answer for `key` if its days' booking version is still `booking_version`'s,
    /// else `load`'s, kept only if nothing that could change it happened while it was read.
    /// The version is read first: a booking that commits while the answer is loaded leaves it
    /// kept under the older version, so the next read loads again.
    async fn read_through<K: Eq + Hash, E: From<StoreError>>(
        &self,
        key: K,
        affected_by: impl Fn(&Day) -> bool,
        answers: fn(&mut State) -> &mut HashMap<K, Kept>,
        capacity: usize,
        booking_version: impl Future<Output = Result<i64, StoreError>>,
        load: impl Future<Output = Result<Rendered, E>>,
    ) -> Result<Rendered, E> {
        let generation = match self.lookup(&key, affected_by, answers) {
            Lookup::Bypass => return load.await,
            Lookup::Check { generation, kept } => {
                let version = booking_version.await?;
                match kept {
                    Some(kept) if kept.booking_version == version => return Ok(kept.rendered),
                    _ => (generation, version),
                }
            }
        };
        let rendered = load.await?;
        let (generation, booking_version) = generation;
        let mut state = self.lock();
        if state.generation == generation && state.serving() {
            let answers = answers(&mut state);
            if answers.len() >= capacity {
                answers.clear();
            }
            let kept = Kept {
                rendered: rendered.clone(),
                booking_version,
            };
            answers.insert(key, kept);
        }
        Ok(rendered)
    }

    fn lookup<K: Eq + Hash>(
        &self,
        key: &K,
        affected_by: impl Fn(&Day) -> bool,
        answers: fn(&mut State) -> &mut HashMap<K, Kept>,
    ) -> Lookup {
        let mut state = self.lock();
        if !state.serving() || state.applying.iter().any(affected_by) {
            return Lookup::Bypass;
        }
        let generation = state.generation;
        let kept = answers(&mut state).get(key).cloned();
        Lookup::Check { generation, kept }
    }
}

enum Lookup {
    /// Read the database and keep nothing: not serving, or the key is being applied.
    Bypass,
    /// Serve `kept` if the booking version still matches; else read the database and keep the
    /// answer if `generation` has not moved meanwhile.
    Check { generation: u64, kept: Option<Kept> },
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

    async fn slots_between(
        &self,
        id: ExperienceId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<ServedSlot>, StoreError> {
        self.inner.slots_between(id, from, to).await
    }

    async fn sellable_dates(
        &self,
        id: ExperienceId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DatePrice>, StoreError> {
        self.inner.sellable_dates(id, from, to).await
    }

    async fn booking_version(
        &self,
        id: ExperienceId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<i64, StoreError> {
        self.inner.booking_version(id, from, to).await
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

crate::forward_store!(CachedStore => inner: Ledger, Bookings, Pause, SyncRequests);
