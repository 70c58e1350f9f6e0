//! The long-running sync engine: tiers queue due product-dates, workers fetch them through the
//! partner's pacer and apply each day in one transaction, operators pause, resume and trigger.
//!
//! Everything that waits uses tokio's clock (see [`Clock`]), so the schedule logic runs under
//! a paused clock in tests.
//!
//! Only the holder of the sync lease calls the partner, and only while its hold lasts by its
//! own monotonic clock (see [`super::lease`]): the database judges the lease by its clock,
//! the hold is counted from before each claim, and every call asks right before it is sent.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{Days, NaiveDate};
use chrono_tz::Tz;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::clock::Clock;
use super::lease::{self, Tenure};
use super::queue::{Batch, Urgency, WorkQueue};
use super::quiet::QuietWeekdays;
use super::status::{Counters, Freshness, LastError, ParkedDay, PartnerOf, SyncStatus, TierStatus};
use super::tiers::{Run, Tier, owner};
use super::{ProductDate, RetryPolicy, fetch_run_with_retry, product_dates};
use crate::config::{NamedPartner, Settings};
use crate::domain::{DayFetch, ExperienceId};
use crate::partner::{Partner, PartnerError};
use crate::storage::{ApplyOutcome, Fence, Store, StoreError, SyncControl, SyncRequest};

/// The reason recorded when the partner answers 401/403.
pub const KEY_REJECTED: &str = "partner rejected the API key";

/// Workers waiting on the pacer at once: enough to hide one call's latency and one day's apply
/// behind the next call's turn, so a backlog drains at the pacer's rate. Up to this many applies
/// run at once; the ingest benchmark applies with the same concurrency.
pub const WORKERS: usize = 3;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The partner this engine syncs from: its name in pauses, requests, status and metrics.
    pub partner: String,
    /// `leap` or `octo`.
    pub kind: &'static str,
    pub experiences: Vec<ExperienceId>,
    pub timezone: Tz,
    pub horizon_days: u32,
    pub tiers: Vec<Tier>,
    pub retry: RetryPolicy,
    /// This instance's name in the sync lease.
    pub instance: String,
    /// How long the lease lasts unless renewed: the longest a dead leader blocks the others.
    pub lease_ttl: std::time::Duration,
    /// How often the persisted pause state and operators' sync requests are read, so a pause
    /// or trigger sent to any instance is obeyed by the leader within this.
    pub control_poll: std::time::Duration,
}

impl EngineConfig {
    /// The engine of the first configured partner (the only one of a one-partner
    /// configuration).
    pub fn from_settings(settings: &Settings) -> Self {
        Self::for_partner(settings, settings.partners()[0])
    }

    pub fn for_partner(settings: &Settings, partner: NamedPartner<'_>) -> Self {
        Self {
            partner: partner.name.to_string(),
            kind: partner.settings.kind.as_str(),
            experiences: partner.settings.experiences.clone(),
            timezone: partner.settings.timezone.0,
            horizon_days: settings.sync.horizon_days.get(),
            tiers: settings
                .sync
                .tiers()
                .into_iter()
                .map(|settings| Tier { settings })
                .collect(),
            retry: RetryPolicy::default(),
            instance: settings.sync.instance_id.clone(),
            lease_ttl: std::time::Duration::from_secs(settings.sync.lease_seconds.get()),
            control_poll: std::time::Duration::from_millis(500),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("experience {0} is not synced by this service")]
    UnknownExperience(ExperienceId),
    #[error("{from} … {to} is not an ordered range inside the horizon {first} … {last}")]
    OutsideHorizon {
        from: NaiveDate,
        to: NaiveDate,
        first: NaiveDate,
        last: NaiveDate,
    },
}

#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    config: EngineConfig,
    store: Arc<dyn Store>,
    partner: Arc<dyn Partner>,
    clock: Clock,
    shutdown: CancellationToken,
    queue: Mutex<WorkQueue>,
    work_ready: Notify,
    control: watch::Sender<SyncControl>,
    /// The hold on the lease while this instance is the leader; only the leader calls the
    /// partner, and only before the hold's deadline.
    lease: watch::Sender<Option<Tenure>>,
    /// One lock per tier: a tier runs at most once at a time.
    tier_runs: Vec<tokio::sync::Mutex<()>>,
    tier_status: Mutex<Vec<TierStatus>>,
    counters: Mutex<Counters>,
    parked: Mutex<BTreeMap<ProductDate, ParkedDay>>,
    last_error: Mutex<Option<LastError>>,
}

/// Every mutex here guards plain data that a panic cannot leave half-updated.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Engine {
    /// Loads the persisted pause state; nothing runs until [`Engine::start`].
    pub async fn new(
        config: EngineConfig,
        store: Arc<dyn Store>,
        partner: Arc<dyn Partner>,
        clock: Clock,
    ) -> Result<Self, StoreError> {
        let control = store.sync_control(&config.partner).await?;
        let tier_status = config
            .tiers
            .iter()
            .map(|tier| TierStatus {
                name: tier.name().to_string(),
                cron: tier.settings.cron.text.clone(),
                first_day: tier.settings.first_day,
                last_day: tier.settings.last_day,
                ..TierStatus::default()
            })
            .collect();
        Ok(Self {
            inner: Arc::new(Inner {
                tier_runs: config.tiers.iter().map(|_| Default::default()).collect(),
                config,
                store,
                partner,
                clock,
                shutdown: CancellationToken::new(),
                queue: Mutex::default(),
                work_ready: Notify::new(),
                control: watch::Sender::new(control),
                lease: watch::Sender::new(None),
                tier_status: Mutex::new(tier_status),
                counters: Mutex::default(),
                parked: Mutex::default(),
                last_error: Mutex::default(),
            }),
        })
    }

    /// Starts the workers, the pause and request poller, and the lease keeper. Whenever this
    /// instance becomes the leader, every tier runs once: the start-up backfill of whatever was
    /// never fetched or is older than its tier's period. The returned set ends after
    /// [`Engine::shutdown`].
    pub fn start(&self) -> JoinSet<()> {
        let mut tasks = JoinSet::new();
        for _ in 0..WORKERS {
            tasks.spawn(self.inner.clone().work());
        }
        tasks.spawn(self.inner.clone().poll_control());
        tasks.spawn(self.clone().keep_lease());
        tasks
    }

    /// Takes the lease when it is free, renews it while held, and hands it back on shutdown.
    /// A renewal counts from before its call, so one that fails or blocks extends nothing;
    /// when the hold's deadline passes meanwhile, this instance stops leading (its workers
    /// requeue their days) until a renewal gets through.
    async fn keep_lease(self) {
        let inner = &self.inner;
        let ttl = inner.config.lease_ttl;
        let renew_every = ttl / 3;
        let margin = lease::call_margin(ttl, inner.partner.pacing_period());
        loop {
            let claimed = self
                .until_deadline(lease::claim(
                    inner.store.as_ref(),
                    &inner.config.instance,
                    ttl,
                    margin,
                ))
                .await;
            let was_leader = inner.lease.borrow().is_some();
            match claimed {
                Ok(Some(tenure)) if tenure.may_call() => {
                    inner.lease.send_replace(Some(tenure));
                    if !was_leader {
                        tracing::info!(instance = %inner.config.instance, "became the sync leader");
                        for index in 0..inner.config.tiers.len() {
                            let engine = self.clone();
                            tokio::spawn(async move { engine.run(index, Run::CatchUp).await });
                        }
                    }
                }
                Ok(Some(_)) => {
                    tracing::warn!("the lease renewal took longer than the lease; not calling");
                }
                Ok(None) => {
                    if was_leader {
                        tracing::warn!("lost the sync lease to another instance");
                    }
                    inner.lease.send_replace(None);
                }
                Err(error) => tracing::warn!(%error, "cannot renew the sync lease"),
            }
            tokio::select! {
                () = inner.shutdown.cancelled() => break,
                () = self.until_deadline(tokio::time::sleep(renew_every)) => {}
            }
        }
        let held = inner.lease.send_replace(None);
        if let Some(tenure) = held {
            // The next leader may start one pacing period after our last call.
            let gap = inner.partner.pacing_period();
            if let Err(error) = inner.store.release_lease(&tenure.lease, gap).await {
                tracing::warn!(%error, "cannot hand the sync lease back; it runs out by itself");
            }
        }
    }

    /// Awaits `work`; if the hold's deadline passes meanwhile, stops leading at that moment.
    async fn until_deadline<T>(&self, work: impl Future<Output = T>) -> T {
        let deadline = self
            .inner
            .lease
            .borrow()
            .as_ref()
            .map(|tenure| tenure.calls_until);
        let Some(deadline) = deadline else {
            return work.await;
        };
        tokio::pin!(work);
        tokio::select! {
            biased;
            done = &mut work => done,
            () = tokio::time::sleep_until(deadline) => {
                self.inner.step_down();
                work.await
            }
        }
    }

    /// Stops taking work: waits on the pacer and partner calls in flight are abandoned (their
    /// days go back to the queue); a day being applied finishes its transaction.
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
    }

    /// Resolves once [`Engine::shutdown`] was called.
    pub async fn stopped(&self) {
        self.inner.shutdown.cancelled().await;
    }

    pub fn tiers(&self) -> &[Tier] {
        &self.inner.config.tiers
    }

    pub fn clock(&self) -> Clock {
        self.inner.clock
    }

    /// Today and the last day of the horizon, in the partner's time zone.
    pub fn horizon(&self) -> (NaiveDate, NaiveDate) {
        let today = self.inner.clock.today(self.inner.config.timezone);
        super::horizon(today, self.inner.config.horizon_days)
    }

    /// One scheduled run of tier `index`: queue its due days and wait until they are done.
    /// Skipped (and the tier marked behind) while the previous run is still going.
    pub async fn run_tier(&self, index: usize) {
        self.run(index, Run::Scheduled).await;
    }

    async fn run(&self, index: usize, run: Run) {
        let inner = &self.inner;
        let Some(tier) = inner.config.tiers.get(index) else {
            return;
        };
        if inner.lease.borrow().is_none() {
            // Followers leave the schedule to the leader.
            return;
        }
        let Ok(_running) = inner.tier_runs[index].try_lock() else {
            let mut statuses = lock(&inner.tier_status);
            statuses[index].skipped_runs += 1;
            statuses[index].behind = true;
            tracing::warn!(
                tier = tier.name(),
                "previous run still going; tier is behind"
            );
            return;
        };
        lock(&inner.tier_status)[index].last_start = Some(inner.clock.now());
        let batch = Arc::new(Batch::default());
        let queued = match self.queue_due_days(index, run, &batch).await {
            Ok(queued) => queued,
            Err(error) => {
                tracing::error!(tier = tier.name(), %error, "cannot read what is due");
                return;
            }
        };
        lock(&inner.tier_status)[index].last_queued = queued;
        let failed = tokio::select! {
            failed = batch.finished() => failed,
            () = inner.shutdown.cancelled() => return,
        };
        let now = inner.clock.now();
        let mut statuses = lock(&inner.tier_status);
        statuses[index].last_finish = Some(now);
        statuses[index].behind = false;
        if failed == 0 {
            statuses[index].last_success = Some(now);
        }
        tracing::info!(tier = tier.name(), queued, failed, "tier run finished");
    }

    /// Queues the due days of tier `index`: in a scheduled run only those it owns (more
    /// frequent tiers keep the others fresh); in a catch-up run any stale day of its range.
    async fn queue_due_days(
        &self,
        index: usize,
        run: Run,
        batch: &Arc<Batch>,
    ) -> Result<usize, StoreError> {
        let inner = &self.inner;
        let tiers = &inner.config.tiers;
        let tier = &tiers[index];
        let (today, horizon_end) = self.horizon();
        let (from, to) = tier.dates(today);
        let to = to.min(horizon_end);
        // The whole horizon: every date of a weekday tells whether the product runs on it.
        let watch = lock(&inner.queue).watch_finishes();
        let fetches = inner.store.last_fetches(today, horizon_end).await;
        let fetched_meanwhile = lock(&inner.queue).finished_since(watch);
        let fetches = fetches?;
        let quiet = QuietWeekdays::learn(&fetches);
        let last_fetched: HashMap<(ExperienceId, NaiveDate), _> = fetches
            .into_iter()
            .map(|fetch| ((fetch.experience, fetch.date), fetch.fetched_at))
            .collect();
        let now = inner.clock.now();
        let due_age = tier.due_age(run, now);
        let owned: Vec<bool> = (0..=tier.settings.last_day)
            .map(|offset| run == Run::CatchUp || owner(tiers, offset, now) == Some(index))
            .collect();
        let owns = |date: NaiveDate| {
            usize::try_from((date - today).num_days())
                .ok()
                .and_then(|offset| owned.get(offset))
                .is_some_and(|&owned| owned)
        };
        // A day another run fetched after the snapshot was read is fresh.
        let due = |day: ProductDate, quiet_day: bool| {
            owns(day.date)
                && !fetched_meanwhile.contains(&day)
                && last_fetched
                    .get(&(day.experience, day.date))
                    .is_none_or(|at| {
                        let age = (now - *at).to_std().unwrap_or_default();
                        due_age.is_due(age, quiet_day)
                    })
        };
        let days: Vec<ProductDate> = product_dates(&inner.config.experiences, from, to).collect();
        // Where a call reads a range, a quiet weekday rides along with a product's running
        // days that are due: read in the same call, it costs nothing. Alone it is probed.
        let riding: HashSet<ExperienceId> = if inner.partner.days_per_call().get() > 1 {
            days.iter()
                .filter(|&&day| !quiet.contains(day) && due(day, false))
                .map(|day| day.experience)
                .collect()
        } else {
            HashSet::new()
        };
        let mut queued = 0;
        {
            let mut queue = lock(&inner.queue);
            for day in days {
                let quiet_day = quiet.contains(day) && !riding.contains(&day.experience);
                if due(day, quiet_day) {
                    queue.push(day, Urgency::Routine, Some(batch));
                    queued += 1;
                }
            }
        }
        inner.work_ready.notify_one();
        tracing::info!(
            tier = tier.name(),
            ?run,
            queued,
            quiet_weekdays = quiet.count(),
            "tier run started"
        );
        Ok(queued)
    }

    /// Records a request to re-sync `from..=to` of one experience (or all) ahead of routine
    /// work; the leader, whichever instance it is, queues it within `control_poll`. Returns
    /// how many product-dates that is.
    pub async fn trigger(
        &self,
        experience: Option<ExperienceId>,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<usize, TriggerError> {
        let inner = &self.inner;
        let experiences = match experience {
            Some(id) if !inner.config.experiences.contains(&id) => {
                return Err(TriggerError::UnknownExperience(id));
            }
            Some(id) => vec![id],
            None => inner.config.experiences.clone(),
        };
        let (first, last) = self.horizon();
        if from > to || from < first || to > last {
            return Err(TriggerError::OutsideHorizon {
                from,
                to,
                first,
                last,
            });
        }
        let request = SyncRequest {
            partner: inner.config.partner.clone(),
            experience,
            from,
            to,
            requested_at: inner.clock.now(),
        };
        inner.store.request_sync(&request).await?;
        tracing::info!(partner = %inner.config.partner, %from, %to, ?experience, "manual sync requested");
        Ok(product_dates(&experiences, from, to).count())
    }

    pub async fn pause(&self, reason: &str) -> Result<SyncControl, StoreError> {
        let inner = &self.inner;
        let partner = &inner.config.partner;
        let control = inner
            .store
            .pause_sync(partner, reason, inner.clock.now())
            .await?;
        inner.control.send_replace(control.clone());
        tracing::warn!(%partner, reason = control.reason.as_deref(), "sync paused");
        Ok(control)
    }

    pub async fn resume(&self) -> Result<SyncControl, StoreError> {
        let inner = &self.inner;
        let partner = &inner.config.partner;
        let control = inner.store.resume_sync(partner, inner.clock.now()).await?;
        inner.control.send_replace(control.clone());
        tracing::info!(%partner, "sync resumed");
        Ok(control)
    }

    /// The name of the partner this engine syncs from.
    pub fn partner(&self) -> &str {
        &self.inner.config.partner
    }

    /// The experiences this engine syncs.
    pub fn experiences(&self) -> &[ExperienceId] {
        &self.inner.config.experiences
    }

    /// The partner's time zone, whose calendar date is "today" for its experiences.
    pub fn timezone(&self) -> Tz {
        self.inner.config.timezone
    }

    /// Queued plus in-flight product-dates.
    pub fn outstanding(&self) -> usize {
        let queue = lock(&self.inner.queue);
        queue.pending() + queue.in_flight()
    }

    pub async fn status(&self) -> Result<SyncStatus, StoreError> {
        let inner = &self.inner;
        let control = inner.control.borrow().clone();
        let (pending, in_flight) = {
            let queue = lock(&inner.queue);
            (queue.pending(), queue.in_flight())
        };
        let freshness = self.freshness().await?;
        let lease = inner.store.current_lease().await?;
        let now = inner.clock.now();
        let mut tiers = lock(&inner.tier_status).clone();
        for (status, tier) in tiers.iter_mut().zip(&inner.config.tiers) {
            status.next_run = tier.next_run(now);
        }
        Ok(SyncStatus {
            partner: Some(PartnerOf {
                name: inner.config.partner.clone(),
                kind: inner.config.kind,
            }),
            state: if control.paused { "paused" } else { "running" },
            instance: inner.config.instance.clone(),
            role: if inner.lease.borrow().is_some() {
                "leader"
            } else {
                "follower"
            },
            // The database's clock would say; this host's is the best guess at hand.
            leader: lease
                .holder
                .filter(|_| lease.expires_at > chrono::Utc::now()),
            lease_expires_at: lease.expires_at,
            pause_reason: control.reason.clone().filter(|_| control.paused),
            paused_since: control.paused.then_some(control.changed_at),
            pending,
            in_flight,
            parked: lock(&inner.parked).values().cloned().collect(),
            tiers,
            counters: lock(&inner.counters).clone(),
            rate_limit_per_minute: inner.partner.rate_limit_per_minute().get(),
            pacing_period_ms: u64::try_from(inner.partner.pacing_period().as_millis())
                .unwrap_or(u64::MAX),
            days_per_call: inner.partner.days_per_call().get(),
            last_error: lock(&inner.last_error).clone(),
            freshness,
        })
    }

    async fn freshness(&self) -> Result<Vec<Freshness>, StoreError> {
        let (today, horizon_end) = self.horizon();
        let windows = [("today", 0), ("week", 6), ("month", 29)];
        let month_end = today
            .checked_add_days(Days::new(29))
            .unwrap_or(today)
            .min(horizon_end);
        let fetched = self.inner.store.last_fetches(today, month_end).await?;
        Ok(windows
            .into_iter()
            .map(|(window, days)| {
                let end = today
                    .checked_add_days(Days::new(days))
                    .unwrap_or(today)
                    .min(horizon_end);
                let in_window: Vec<_> = fetched
                    .iter()
                    .filter(|f| {
                        f.date <= end && self.inner.config.experiences.contains(&f.experience)
                    })
                    .collect();
                let product_dates =
                    product_dates(&self.inner.config.experiences, today, end).count();
                Freshness {
                    window,
                    product_dates,
                    never_fetched: product_dates - in_window.len(),
                    oldest_fetch: in_window.iter().map(|f| f.fetched_at).min(),
                }
            })
            .collect())
    }
}

impl Inner {
    async fn work(self: Arc<Self>) {
        let mut control = self.control.subscribe();
        let mut lease = self.lease.subscribe();
        loop {
            let leading = lease.borrow_and_update().is_some();
            let running = !control.borrow_and_update().paused;
            if !(leading && running) {
                tokio::select! {
                    () = self.shutdown.cancelled() => return,
                    _ = control.changed() => {}
                    _ = lease.changed() => {}
                }
                continue;
            }
            let run = {
                let mut queue = lock(&self.queue);
                let run = queue.pop_run(self.partner.days_per_call().get() as usize);
                if queue.pending() > 0 {
                    // Wake another worker for the rest; each pop passes the baton on.
                    self.work_ready.notify_one();
                }
                run
            };
            if run.is_empty() {
                tokio::select! {
                    () = self.shutdown.cancelled() => return,
                    () = self.work_ready.notified() => continue,
                }
            }
            let days: Vec<ProductDate> = run.iter().map(|&(day, _)| day).collect();
            let may_call = || self.may_call();
            let requeue = || {
                let mut queue = lock(&self.queue);
                for &(day, urgency) in &run {
                    queue.requeue(day, urgency);
                }
            };
            let fetched = tokio::select! {
                // A call that has completed is applied even if a pause arrived meanwhile: its
                // answer is paid for, and dropping it would cost a second call later.
                biased;
                fetched = fetch_run_with_retry(
                    self.partner.as_ref(),
                    &days,
                    self.config.retry,
                    &may_call,
                    |error| self.count_retry(error),
                ) => fetched,
                _ = control.wait_for(|c| c.paused) => {
                    requeue();
                    continue;
                }
                _ = lease.wait_for(Option::is_none) => {
                    requeue();
                    continue;
                }
                () = self.shutdown.cancelled() => {
                    requeue();
                    return;
                }
            };
            lock(&self.counters).calls += fetched.calls;
            for ((day, fetched), &(_, urgency)) in fetched.days.into_iter().zip(&run) {
                self.settle(day, urgency, fetched).await;
            }
        }
    }

    /// Whether a partner call may be sent now: asked right before each one.
    fn may_call(&self) -> bool {
        self.lease.borrow().as_ref().is_some_and(Tenure::may_call)
    }

    /// Stops leading if the hold's deadline has passed: the lease may have run out by the
    /// database's clock, and another instance may be calling. A renewal that gets through
    /// makes this instance the leader again.
    fn step_down(&self) {
        let stepped_down = self.lease.send_if_modified(|held| {
            let expired = held.as_ref().is_some_and(|tenure| !tenure.may_call());
            if expired {
                *held = None;
            }
            expired
        });
        if stepped_down {
            tracing::warn!("the sync lease may have run out; no partner call until it is renewed");
        }
    }

    fn count_retry(&self, error: &PartnerError) {
        let mut counters = lock(&self.counters);
        counters.calls += 1;
        match error {
            PartnerError::RateLimited { .. } => counters.rate_limited += 1,
            _ => counters.retries += 1,
        }
    }

    async fn settle(
        &self,
        day: ProductDate,
        urgency: Urgency,
        fetched: Result<DayFetch, PartnerError>,
    ) {
        let fetch = match fetched {
            Ok(fetch) => fetch,
            Err(PartnerError::Withheld) => {
                lock(&self.queue).requeue(day, urgency);
                self.step_down();
                return;
            }
            Err(error) if error.is_fatal() => {
                lock(&self.queue).requeue(day, urgency);
                self.record_error(day, error.code(), error.to_string());
                let paused = self
                    .store
                    .pause_sync(&self.config.partner, KEY_REJECTED, self.clock.now())
                    .await;
                match paused {
                    Ok(control) => {
                        self.control.send_replace(control);
                        tracing::error!("{KEY_REJECTED}: sync paused until an operator resumes it");
                    }
                    Err(store_error) => tracing::error!(%store_error, "cannot persist the pause"),
                }
                return;
            }
            Err(error) => {
                lock(&self.counters).failures += 1;
                self.park(day, error.code(), error.to_string());
                return;
            }
        };
        // The database refuses the write unless this lease is still current by its clock.
        let Some(lease) = self
            .lease
            .borrow()
            .as_ref()
            .map(|tenure| tenure.lease.clone())
        else {
            lock(&self.queue).requeue(day, urgency);
            return;
        };
        let fence = Fence { lease };
        match self.store.apply_fetch(&fetch, Some(&fence)).await {
            Ok(outcome) => {
                {
                    let mut counters = lock(&self.counters);
                    counters.days_applied += 1;
                    if let ApplyOutcome::Applied { transfers, .. } = outcome {
                        counters.transfers_posted += transfers as u64;
                    }
                }
                lock(&self.parked).remove(&day);
                lock(&self.queue).finish(day, true);
            }
            Err(StoreError::LeaseLost) => {
                tracing::warn!(%day, "lease lost before the apply; the new leader fetches it");
                lock(&self.queue).requeue(day, urgency);
                self.lease.send_replace(None);
            }
            Err(error) => {
                lock(&self.counters).failures += 1;
                self.park(day, "store", error.to_string());
            }
        }
    }

    /// Gives up on `day` for this cycle: visible in status, queued again by the next tier run.
    fn park(&self, day: ProductDate, code: &'static str, message: String) {
        tracing::error!(%day, code, %message, "day parked until the next cycle");
        self.record_error(day, code, message.clone());
        lock(&self.parked).insert(
            day,
            ParkedDay {
                experience: day.experience,
                date: day.date,
                error: message,
                since: self.clock.now(),
            },
        );
        lock(&self.queue).finish(day, false);
    }

    fn record_error(&self, day: ProductDate, code: &'static str, message: String) {
        *lock(&self.last_error) = Some(LastError {
            at: self.clock.now(),
            experience: day.experience,
            date: day.date,
            code,
            message,
        });
    }

    /// Follows the persisted pause state, so a pause written by another instance is obeyed.
    async fn poll_control(self: Arc<Self>) {
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                () = tokio::time::sleep(self.config.control_poll) => {}
            }
            match self.store.sync_control(&self.config.partner).await {
                Ok(control) => {
                    self.control.send_if_modified(|current| {
                        let changed = *current != control;
                        *current = control;
                        changed
                    });
                }
                Err(error) => tracing::warn!(%error, "cannot read the pause state"),
            }
            if self.lease.borrow().is_some() {
                self.queue_requests().await;
            }
        }
    }

    /// Queues operators' sync requests, ahead of routine work.
    async fn queue_requests(&self) {
        let requests = match self.store.take_sync_requests(&self.config.partner).await {
            Ok(requests) => requests,
            Err(error) => {
                tracing::warn!(%error, "cannot read sync requests");
                return;
            }
        };
        if requests.is_empty() {
            return;
        }
        {
            let mut queue = lock(&self.queue);
            for request in requests {
                let experiences = match request.experience {
                    Some(id) => vec![id],
                    None => self.config.experiences.clone(),
                };
                for day in product_dates(&experiences, request.from, request.to) {
                    queue.push(day, Urgency::Manual, None);
                }
            }
        }
        self.work_ready.notify_one();
    }
}
