//! A simulated day at 450 products: the real engine, tier scheduler, pacer and store (SQLite)
//! under tokio's paused clock, against the in-process simulator enforcing the partner's 30
//! requests per minute. Products are synthetic, each running on 1 to 4 weekdays.
//!
//! `cargo bench --bench day`. Knobs: `DAY_PRODUCTS` (450), `DAY_HOURS` (24 measured hours),
//! `DAY_WARM_UP_HOURS` (24), `DAY_SCENARIOS` (`instant,realistic`: which of the two below
//! run, in that order), `DAY_KINDS` (`leap,octo`: which partner kinds each scenario runs,
//! in that order). The database lives under /dev/shm when it exists.
//!
//! Two partner kinds, each speaking to the same simulator through the in-process partner:
//! - **leap**: one call per product-date;
//! - **octo**: each product's option read once (a call), then `POST /availability` for up to
//!   [`OCTO_DAYS_PER_CALL`] consecutive queued days of a product in one call.
//!
//! Two scenarios, each run for each kind on a fresh store and simulator, in the same run:
//! - **instant**: the partner answers in zero time and store calls take no simulated time;
//! - **realistic**: every partner call (a range or a product read is one call) takes
//!   200–800 ms (uniform, seeded): half of it before the partner counts and answers the call,
//!   half on the way back. The in-process partner holds the real pacer's permit from sending
//!   to the answer, as the HTTP client does, so the window guard sees the answer times, and
//!   stamps a fetch when the partner answered. Every store call the engine makes takes its real
//!   time: simulated time is frozen while the store works (the [`RealTimeStore`] runs it on a
//!   runtime of its own, in a blocking task, and tokio does not advance a paused clock then),
//!   so the bench measures each call's wall-clock time and then sleeps exactly that long on
//!   the simulated clock before handing the result back. A worker is busy for the call's real
//!   duration, and a fetched day counts as served only once its apply has taken that time.
//!
//! The store starts in a steady state: every product-date of the horizon fetched once, at an
//! age spread evenly over how often it is refreshed. The engine then runs the warm-up and the
//! measured hours. Each simulated minute, every product-date's staleness (now − the partner
//! answer behind what is served, i.e. of the last fetch whose apply has finished; for a date
//! never fetched, since it entered the horizon) is sampled and grouped by the tier that owns
//! the date and by whether the product runs that day (bookable) or not (empty). Calls are
//! grouped the same way, from the simulator's own log: a range call by its first date, as
//! empty only when no date of the range is bookable.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;
use invsync::config::Settings;
use invsync::domain::{DatePrice, DayFetch, ExperienceId, Secret};
use invsync::ledger::VerifyReport;
use invsync::partner::Partner;
use invsync::simulator::{
    CallRoute, InProcessPartner, Simulator, SimulatorConfig, synthetic_products,
};
use invsync::storage::{
    ApplyOutcome, Fence, Inventory, LastFetch, Lease, Leases, Ledger, Mirror, Pause, ServedSlot,
    SlotHistory, Store, StoreError, SyncControl, SyncRequest, SyncRequests,
};
use invsync::sync::clock::Clock;
use invsync::sync::engine::{Engine, EngineConfig, WORKERS};
use invsync::sync::real_time_store::RealTimeStore;
use invsync::sync::tiers::{Tier, owner};
use invsync::sync::{ProductDate, horizon, product_dates, quiet, scheduler};
use rand::{Rng, SeedableRng};

const SEED: u64 = 6;
const KEY: &str = "day-bench";
const MINUTE: Duration = Duration::from_secs(60);
/// A Tuesday, 08:00 in the partner's zone.
const START: &str = "2026-12-01T00:00:00Z";

/// A partner call's latency in the realistic scenario, in milliseconds.
const LATENCY_MS: std::ops::RangeInclusive<u64> = 200..=800;
/// The most days one OCTO call reads (`partner.days_per_call`'s default).
const OCTO_DAYS_PER_CALL: NonZeroU32 = NonZeroU32::new(31).expect("non-zero");

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Instant,
    Realistic,
}

impl Scenario {
    fn from_env() -> Vec<Self> {
        let text = std::env::var("DAY_SCENARIOS").unwrap_or_else(|_| "instant,realistic".into());
        text.split(',')
            .map(|name| match name.trim() {
                "instant" => Self::Instant,
                "realistic" => Self::Realistic,
                other => panic!("DAY_SCENARIOS: unknown scenario {other:?}"),
            })
            .collect()
    }

    fn name(self) -> &'static str {
        match self {
            Self::Instant => "instant",
            Self::Realistic => "realistic",
        }
    }
}

/// The form of the partner API the sync speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Leap,
    Octo,
}

impl Kind {
    fn from_env() -> Vec<Self> {
        let text = std::env::var("DAY_KINDS").unwrap_or_else(|_| "leap,octo".into());
        text.split(',')
            .map(|name| match name.trim() {
                "leap" => Self::Leap,
                "octo" => Self::Octo,
                other => panic!("DAY_KINDS: unknown partner kind {other:?}"),
            })
            .collect()
    }

    fn name(self) -> &'static str {
        match self {
            Self::Leap => "leap",
            Self::Octo => "octo",
        }
    }

    fn describe(self) -> String {
        match self {
            Self::Leap => "leap (one call per product-date)".into(),
            Self::Octo => format!(
                "octo (option read once per product, then up to {OCTO_DAYS_PER_CALL} days per call)"
            ),
        }
    }
}

/// The partner of a run: the in-process simulator, paced by the real [`invsync::partner::Pacer`]
/// at the partner's limit; in the realistic scenario every call takes a latency, the permit
/// held from sending to the answer.
fn partner(
    kind: Kind,
    scenario: Scenario,
    sim: Simulator,
    rate: NonZeroU32,
    clock: Clock,
) -> InProcessPartner {
    let partner = match kind {
        Kind::Leap => InProcessPartner::new(sim, rate, clock),
        Kind::Octo => InProcessPartner::octo(sim, rate, clock, OCTO_DAYS_PER_CALL),
    };
    match scenario {
        Scenario::Instant => partner,
        Scenario::Realistic => partner.with_latency(
            Duration::from_millis(*LATENCY_MS.start())..=Duration::from_millis(*LATENCY_MS.end()),
            SEED,
        ),
    }
}

/// The engine's store: the real store (through [`RealTimeStore`]), recording when each
/// applied fetch became visible and how long each apply really took. With `charge`, every
/// call then sleeps its real duration on the simulated clock (see the module).
struct TimedStore {
    inner: Arc<dyn Store>,
    charge: bool,
    /// The partner answer behind what is served, per product-date.
    served: Mutex<HashMap<(ExperienceId, NaiveDate), DateTime<Utc>>>,
    apply_times: Mutex<Vec<Duration>>,
}

impl TimedStore {
    async fn new(inner: Arc<dyn Store>, charge: bool, from: NaiveDate, to: NaiveDate) -> Self {
        let served = inner
            .last_fetches(from, to)
            .await
            .expect("last fetches")
            .into_iter()
            .map(|fetch| ((fetch.experience, fetch.date), fetch.fetched_at))
            .collect();
        Self {
            inner,
            charge,
            served: Mutex::new(served),
            apply_times: Mutex::default(),
        }
    }

    async fn timed<T>(&self, call: impl std::future::Future<Output = T>) -> (T, Duration) {
        let started = std::time::Instant::now();
        let output = call.await;
        let took = started.elapsed();
        if self.charge {
            tokio::time::sleep(took).await;
        }
        (output, took)
    }

    fn served_at(&self, day: ProductDate) -> Option<DateTime<Utc>> {
        lock(&self.served).get(&(day.experience, day.date)).copied()
    }
}

#[async_trait]
impl Inventory for TimedStore {
    async fn experience_exists(&self, id: ExperienceId) -> Result<bool, StoreError> {
        self.timed(self.inner.experience_exists(id)).await.0
    }

    async fn slots_between(
        &self,
        id: ExperienceId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<ServedSlot>, StoreError> {
        self.timed(self.inner.slots_between(id, from, to)).await.0
    }

    async fn sellable_dates(
        &self,
        id: ExperienceId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DatePrice>, StoreError> {
        self.timed(self.inner.sellable_dates(id, from, to)).await.0
    }

    async fn booking_version(
        &self,
        id: ExperienceId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<i64, StoreError> {
        self.timed(self.inner.booking_version(id, from, to)).await.0
    }
}

// The simulated day books nothing.
invsync::forward_store!(TimedStore => inner: Bookings);

#[async_trait]
impl Mirror for TimedStore {
    async fn ensure_experiences(&self, ids: &[ExperienceId]) -> Result<(), StoreError> {
        self.timed(self.inner.ensure_experiences(ids)).await.0
    }

    async fn apply_fetch(
        &self,
        fetch: &DayFetch,
        fence: Option<&Fence>,
    ) -> Result<ApplyOutcome, StoreError> {
        let (outcome, took) = self.timed(self.inner.apply_fetch(fetch, fence)).await;
        lock(&self.apply_times).push(took);
        if let Ok(ApplyOutcome::Applied { .. }) = &outcome {
            let mut served = lock(&self.served);
            let at = served
                .entry((fetch.experience, fetch.date))
                .or_insert(fetch.fetched_at);
            *at = (*at).max(fetch.fetched_at);
        }
        outcome
    }

    async fn last_fetches(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<LastFetch>, StoreError> {
        self.timed(self.inner.last_fetches(from, to)).await.0
    }
}

#[async_trait]
impl Ledger for TimedStore {
    async fn slot_history(
        &self,
        id: ExperienceId,
        date: NaiveDate,
        start_time: NaiveTime,
    ) -> Result<Option<SlotHistory>, StoreError> {
        self.timed(self.inner.slot_history(id, date, start_time))
            .await
            .0
    }

    async fn verify(&self) -> Result<VerifyReport, StoreError> {
        self.timed(self.inner.verify()).await.0
    }
}

#[async_trait]
impl Pause for TimedStore {
    async fn sync_control(&self, partner: &str) -> Result<SyncControl, StoreError> {
        self.timed(self.inner.sync_control(partner)).await.0
    }

    async fn pause_sync(
        &self,
        partner: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<SyncControl, StoreError> {
        self.timed(self.inner.pause_sync(partner, reason, at))
            .await
            .0
    }

    async fn resume_sync(
        &self,
        partner: &str,
        at: DateTime<Utc>,
    ) -> Result<SyncControl, StoreError> {
        self.timed(self.inner.resume_sync(partner, at)).await.0
    }
}

#[async_trait]
impl Leases for TimedStore {
    async fn acquire_lease(
        &self,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        self.timed(self.inner.acquire_lease(holder, ttl)).await.0
    }

    async fn current_lease(&self) -> Result<Lease, StoreError> {
        self.timed(self.inner.current_lease()).await.0
    }

    async fn release_lease(&self, lease: &Lease, gap: Duration) -> Result<(), StoreError> {
        self.timed(self.inner.release_lease(lease, gap)).await.0
    }
}

#[async_trait]
impl SyncRequests for TimedStore {
    async fn request_sync(&self, request: &SyncRequest) -> Result<(), StoreError> {
        self.timed(self.inner.request_sync(request)).await.0
    }

    async fn take_sync_requests(&self, partner: &str) -> Result<Vec<SyncRequest>, StoreError> {
        self.timed(self.inner.take_sync_requests(partner)).await.0
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|value| value.parse().expect("a whole number"))
        .unwrap_or(default)
}

/// Staleness samples of one group of product-dates, in whole seconds.
#[derive(Default)]
struct Histogram(BTreeMap<u64, u64>);

impl Histogram {
    fn add(&mut self, seconds: u64) {
        *self.0.entry(seconds).or_default() += 1;
    }

    fn quantile(&self, q: f64) -> Option<u64> {
        let total: u64 = self.0.values().sum();
        let rank = ((total as f64 * q).ceil() as u64).max(1);
        let mut seen = 0;
        self.0.iter().find_map(|(&seconds, &count)| {
            seen += count;
            (seen >= rank).then_some(seconds)
        })
    }
}

fn human(seconds: Option<u64>) -> String {
    match seconds {
        None => "-".into(),
        Some(s) if s < 2 * 3600 => format!("{:.1}m", s as f64 / 60.0),
        Some(s) => format!("{:.1}h", s as f64 / 3600.0),
    }
}

/// Which tier owns a product-date and whether the product runs that day.
struct Catalog {
    tiers: Vec<Tier>,
    /// The owning tier of each offset from today, and each tier's period: the default crons
    /// have fixed periods.
    owners: Vec<usize>,
    periods: Vec<Duration>,
    zone: Tz,
    runs_on: HashMap<ExperienceId, HashSet<Weekday>>,
    /// The partner reads ranges: every owned day is due with its tier, quiet or not.
    ranged: bool,
}

impl Catalog {
    fn new(
        tiers: Vec<Tier>,
        zone: Tz,
        horizon_days: u32,
        runs_on: HashMap<ExperienceId, HashSet<Weekday>>,
        now: DateTime<Utc>,
        ranged: bool,
    ) -> Self {
        Self {
            owners: (0..horizon_days)
                .map(|offset| owner(&tiers, offset, now).expect("every offset has a tier"))
                .collect(),
            periods: tiers.iter().map(|tier| tier.period(now)).collect(),
            tiers,
            zone,
            runs_on,
            ranged,
        }
    }

    fn group(&self, day: ProductDate, today: NaiveDate) -> (usize, bool) {
        // A call for yesterday's date, queued before midnight, still counts as today's.
        let offset = usize::try_from((day.date - today).num_days()).unwrap_or(0);
        (self.owners[offset], self.bookable(day))
    }

    fn bookable(&self, day: ProductDate) -> bool {
        self.runs_on[&day.experience].contains(&day.date.weekday())
    }

    /// The group of a call for `first..=last` (one date on Leap): its first date's tier,
    /// bookable when any of its dates is.
    fn call_group(
        &self,
        experience: ExperienceId,
        first: NaiveDate,
        last: NaiveDate,
        today: NaiveDate,
    ) -> (usize, bool) {
        let (tier, _) = self.group(
            ProductDate {
                experience,
                date: first,
            },
            today,
        );
        let bookable = first
            .iter_days()
            .take_while(|date| *date <= last)
            .any(|date| self.bookable(ProductDate { experience, date }));
        (tier, bookable)
    }

    /// How often a day is refreshed in the steady state.
    fn refresh_period(&self, day: ProductDate, today: NaiveDate) -> Duration {
        let (tier, bookable) = self.group(day, today);
        if bookable || self.ranged {
            self.periods[tier]
        } else {
            self.periods[tier].max(quiet::PROBE_PERIOD)
        }
    }
}

/// Every product-date of the horizon fetched once, as long ago as a steady state would have.
async fn settle(
    store: &dyn Store,
    sim: &Simulator,
    catalog: &Catalog,
    experiences: &[ExperienceId],
    now: DateTime<Utc>,
) {
    let today = now.with_timezone(&catalog.zone).date_naive();
    let horizon_days = u32::try_from(catalog.owners.len()).expect("horizon days");
    let (first, last) = horizon(today, horizon_days);
    let mut rng = rand::rngs::StdRng::seed_from_u64(SEED);
    for day in product_dates(experiences, first, last) {
        let slots = sim
            .inventory(day.experience, day.date)
            .expect("a simulated product")
            .into_iter()
            .map(|slot| slot.into_slot(day.date))
            .collect::<Result<_, _>>()
            .expect("simulated slots are valid");
        let period = catalog.refresh_period(day, today);
        let age = chrono::Duration::from_std(period.mul_f64(rng.random::<f64>())).expect("age");
        let fetch = DayFetch {
            fetched_at: now - age,
            ..DayFetch::new(day.experience, day.date, slots)
        };
        store.apply_fetch(&fetch, None).await.expect("apply");
    }
}

#[derive(Default)]
struct Measured {
    staleness: BTreeMap<(usize, bool), Histogram>,
    calls: BTreeMap<(usize, bool), u64>,
}

/// Samples every product-date's staleness each simulated minute for `hours`.
async fn sample(
    store: &TimedStore,
    engine: &Engine,
    catalog: &Catalog,
    hours: u64,
    measured: &mut Measured,
) {
    let clock = engine.clock();
    let experiences: Vec<ExperienceId> = catalog.runs_on.keys().copied().collect();
    for _ in 0..hours * 60 {
        tokio::time::sleep(MINUTE).await;
        let now = clock.now();
        let (today, last) = engine.horizon();
        let entered_horizon = today
            .and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_local_timezone(catalog.zone)
            .single()
            .expect("an unambiguous midnight")
            .with_timezone(&Utc);
        let served = lock(&store.served);
        for day in product_dates(&experiences, today, last) {
            let since = served
                .get(&(day.experience, day.date))
                .copied()
                .unwrap_or(entered_horizon);
            let stale = u64::try_from((now - since).num_seconds()).unwrap_or(0);
            let group = catalog.group(day, today);
            measured.staleness.entry(group).or_default().add(stale);
        }
    }
}

/// What the bench counted as served is what the store holds. Run once the workers have
/// stopped: an apply still under way could commit while the store is read, and be counted
/// before the comparison (at most one per worker is tolerated as committed but not counted).
async fn check_against_store(store: &TimedStore, engine: &Engine) {
    let (today, last) = engine.horizon();
    let stored = store
        .inner
        .last_fetches(today, last)
        .await
        .expect("last fetches");
    let mut ahead = 0;
    for fetch in &stored {
        let day = ProductDate {
            experience: fetch.experience,
            date: fetch.date,
        };
        let counted = store.served_at(day).expect("every stored day is counted");
        assert!(
            counted <= fetch.fetched_at,
            "{fetch:?} counted at {counted}"
        );
        if counted < fetch.fetched_at {
            ahead += 1;
        }
    }
    assert!(
        ahead <= WORKERS,
        "{ahead} stored fetches are not counted as served"
    );
}

fn duration_quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

struct Knobs {
    products: usize,
    hours: u64,
    warm_up_hours: u64,
}

/// What the closing comparison shows of one run.
struct Summary {
    scenario: Scenario,
    kind: Kind,
    calls: u64,
    allowed: u64,
    rate_limited: u64,
    busiest: usize,
    /// Each tier's name and its bookable dates' p50 and p95 staleness.
    tiers: Vec<(String, Option<u64>, Option<u64>)>,
}

impl Summary {
    fn today(&self) -> (Option<u64>, Option<u64>) {
        self.tiers
            .iter()
            .find(|(name, ..)| name == "today")
            .map_or((None, None), |(_, p50, p95)| (*p50, *p95))
    }
}

/// One scenario with one partner kind on a fresh store and simulator; prints its table.
async fn run(scenario: Scenario, kind: Kind, knobs: &Knobs) -> Summary {
    let real_start = std::time::Instant::now();
    let catalog_products = synthetic_products(knobs.products, SEED);
    let experiences: Vec<ExperienceId> = catalog_products.iter().map(|p| p.product_id).collect();
    let runs_on = catalog_products
        .iter()
        .map(|p| (p.product_id, p.weekdays.iter().copied().collect()))
        .collect();
    let sim = Simulator::new(SimulatorConfig {
        products: catalog_products,
        ..SimulatorConfig::new(Secret::new(KEY))
    });
    let mut settings = Settings::default();
    settings.partner.experiences = experiences.clone();
    let config = EngineConfig {
        instance: "day-bench".into(),
        lease_ttl: MINUTE,
        // Pause and trigger latency is not measured here; fewer polls keep the run short.
        control_poll: Duration::from_secs(10),
        ..EngineConfig::from_settings(&settings)
    };
    let clock = Clock::starting_at(START.parse().expect("start"));
    let rate: NonZeroU32 = settings.partner.rate_limit_per_minute;
    let partner = partner(kind, scenario, sim.clone(), rate, clock);
    let catalog = Catalog::new(
        config.tiers.clone(),
        config.timezone,
        config.horizon_days,
        runs_on,
        clock.now(),
        partner.days_per_call().get() > 1,
    );

    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("day.db").display());
    let real_store = RealTimeStore::connect(&url).await.expect("store");
    real_store
        .ensure_experiences(&experiences)
        .await
        .expect("experiences");
    settle(
        real_store.as_ref(),
        &sim,
        &catalog,
        &experiences,
        clock.now(),
    )
    .await;
    let settled_in = real_start.elapsed();
    let today = clock.today(catalog.zone);
    let (first, last) = horizon(today, config.horizon_days);
    let charge = scenario == Scenario::Realistic;
    let store = Arc::new(TimedStore::new(real_store, charge, first, last).await);

    let partner: Arc<dyn Partner> = Arc::new(partner);
    let engine = Engine::new(config, store.clone(), partner, clock)
        .await
        .expect("engine");
    let workers = engine.start();
    let schedule = scheduler::start(&engine);

    tokio::time::sleep(Duration::from_secs(knobs.warm_up_hours * 3600)).await;
    let measure_from = tokio::time::Instant::now();
    let mut measured = Measured::default();
    sample(&store, &engine, &catalog, knobs.hours, &mut measured).await;
    let status = engine.status().await.expect("status");
    drop(schedule);
    engine.shutdown();
    // Every apply under way finishes (and is counted) before the store is compared.
    tokio::time::timeout(Duration::from_secs(600), workers.join_all())
        .await
        .expect("the workers stop");
    check_against_store(&store, &engine).await;

    let calls = sim.calls();
    let measured_calls: Vec<_> = calls
        .iter()
        .filter(|call| call.arrived >= measure_from)
        .collect();
    let mut rate_limited = 0;
    let mut product_reads = 0;
    for call in &measured_calls {
        if call.status == 429 {
            rate_limited += 1;
        }
        if call.route == CallRoute::OctoProduct {
            product_reads += 1;
        }
        let (Some(experience), Some(date)) = (call.experience, call.date) else {
            continue;
        };
        let at = clock.at(call.arrived);
        let today = at.with_timezone(&catalog.zone).date_naive();
        let last = call.last_date.unwrap_or(date);
        let group = catalog.call_group(experience, date, last, today);
        *measured.calls.entry(group).or_default() += 1;
    }
    let total_calls = measured_calls.len() as u64;
    let allowed = u64::from(rate.get()) * 60 * knobs.hours;
    let busiest = sim.max_calls_in_any_window(MINUTE);

    let skipped: Vec<String> = status
        .tiers
        .iter()
        .filter(|t| t.skipped_runs > 0)
        .map(|t| format!("{} skipped {}", t.name, t.skipped_runs))
        .collect();
    let mut applies = lock(&store.apply_times).clone();
    applies.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    match scenario {
        Scenario::Instant => println!(
            "instant, {}: the partner answers at once; store calls take no simulated time",
            kind.describe()
        ),
        Scenario::Realistic => println!(
            "realistic, {}: partner calls take {}-{} ms (uniform); every store call takes its real time on the simulated clock",
            kind.describe(),
            LATENCY_MS.start(),
            LATENCY_MS.end()
        ),
    }
    println!(
        "  applies: {} (real time p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms{})",
        applies.len(),
        ms(duration_quantile(&applies, 0.5)),
        ms(duration_quantile(&applies, 0.95)),
        ms(duration_quantile(&applies, 1.0)),
        if charge {
            ", charged to the simulated clock"
        } else {
            ", not charged"
        }
    );
    println!(
        "  {:<8} {:>7} {:>7} | {:>25} | {:>25}",
        "tier", "calls", "empty", "bookable p50 / p95 / max", "empty p50 / p95 / max"
    );
    let mut tiers = Vec::new();
    for (index, tier) in catalog.tiers.iter().enumerate() {
        let histogram = |bookable: bool| measured.staleness.get(&(index, bookable));
        let quantiles = |bookable: bool| {
            let q = |q: f64| human(histogram(bookable).and_then(|h| h.quantile(q)));
            format!("{:>7} / {:>7} / {:>7}", q(0.5), q(0.95), q(1.0))
        };
        let calls = |bookable| measured.calls.get(&(index, bookable)).copied().unwrap_or(0);
        println!(
            "  {:<8} {:>7} {:>7} | {:>25} | {:>25}",
            tier.name(),
            calls(true) + calls(false),
            calls(false),
            quantiles(true),
            quantiles(false)
        );
        tiers.push((
            tier.name().to_string(),
            histogram(true).and_then(|h| h.quantile(0.5)),
            histogram(true).and_then(|h| h.quantile(0.95)),
        ));
    }
    let reads = if kind == Kind::Octo {
        format!(" ({product_reads} of them product reads)")
    } else {
        String::new()
    };
    println!(
        "  total {total_calls} calls{reads} of {allowed} allowed ({:.1} %); 429s {rate_limited}; busiest 60 s window {busiest} (limit {rate}); \
         tier runs skipped: {}; simulated {:?} in {:.0?} real ({:.0?} to settle the store)",
        100.0 * total_calls as f64 / allowed as f64,
        if skipped.is_empty() {
            "none".into()
        } else {
            skipped.join(", ")
        },
        measure_from.elapsed(),
        real_start.elapsed(),
        settled_in,
    );
    Summary {
        scenario,
        kind,
        calls: total_calls,
        allowed,
        rate_limited,
        busiest,
        tiers,
    }
}

/// The runs side by side: calls, 429s, the busiest window, and each tier's bookable p50 / p95
/// staleness.
fn print_comparison(summaries: &[Summary]) {
    let Some(first) = summaries.first() else {
        return;
    };
    let mut header = format!(
        "  {:<18} {:>7} {:>7} {:>5} {:>8}",
        "scenario, kind", "calls", "budget", "429s", "busiest"
    );
    for (name, ..) in &first.tiers {
        header.push_str(&format!(" | {:>15}", format!("{name} p50/p95")));
    }
    println!("side by side (bookable dates' staleness p50 / p95 per tier):");
    println!("{header}");
    for summary in summaries {
        let mut line = format!(
            "  {:<18} {:>7} {:>6.1}% {:>5} {:>8}",
            format!("{}, {}", summary.scenario.name(), summary.kind.name()),
            summary.calls,
            100.0 * summary.calls as f64 / summary.allowed as f64,
            summary.rate_limited,
            summary.busiest,
        );
        for &(_, p50, p95) in &summary.tiers {
            line.push_str(&format!(
                " | {:>15}",
                format!("{} / {}", human(p50), human(p95))
            ));
        }
        println!("{line}");
    }
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    let knobs = Knobs {
        products: usize::try_from(env_or("DAY_PRODUCTS", 450)).expect("products"),
        hours: env_or("DAY_HOURS", 24),
        warm_up_hours: env_or("DAY_WARM_UP_HOURS", 24),
    };
    println!(
        "day: {} synthetic products (1-4 running weekdays), 60-day horizon, 30 requests/minute, SQLite; \
         {} h simulated after a {} h warm-up; empty weekdays probed every {} h (read inside a range with running days, from OCTO)",
        knobs.products,
        knobs.hours,
        knobs.warm_up_hours,
        quiet::PROBE_PERIOD.as_secs() / 3600
    );
    let mut summaries = Vec::new();
    for scenario in Scenario::from_env() {
        for kind in Kind::from_env() {
            summaries.push(run(scenario, kind, &knobs).await);
        }
    }
    print_comparison(&summaries);
    let summary: Vec<String> = summaries
        .iter()
        .map(|run| {
            format!(
                "{} {} {}",
                run.scenario.name(),
                run.kind.name(),
                human(run.today().1)
            )
        })
        .collect();
    let held = summaries
        .iter()
        .all(|run| run.today().1.is_some_and(|seconds| seconds <= 15 * 60));
    println!(
        "today's bookable dates, p95 staleness: {} (15 min: {})",
        summary.join(", "),
        if held { "held" } else { "NOT held" }
    );
}
