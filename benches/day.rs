//! A simulated day at 450 products: the real engine, tier scheduler, pacer and store (SQLite)
//! under tokio's paused clock, against the in-process simulator enforcing the partner's 30
//! requests per minute. Products are synthetic, each running on 1 to 4 weekdays.
//!
//! `cargo bench --bench day` (about `DAY_PRODUCTS` = 450 products, `DAY_HOURS` = 24 measured
//! hours after `DAY_WARM_UP_HOURS` = 24; the database lives under /dev/shm when it exists).
//!
//! The store starts in a steady state: every product-date of the horizon fetched once, at an
//! age spread evenly over how often it is refreshed. The engine then runs the warm-up and the
//! measured hours. Each simulated minute, every product-date's staleness (now − its last
//! applied fetch; for a date never fetched, since it entered the horizon) is sampled and
//! grouped by the tier that owns the date and by whether the product runs that day (bookable)
//! or not (empty). Calls are grouped the same way, from the simulator's own log.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, Utc, Weekday};
use chrono_tz::Tz;
use invsync::config::Settings;
use invsync::domain::{DayFetch, ExperienceId, Secret};
use invsync::simulator::{InProcessPartner, Simulator, SimulatorConfig, synthetic_products};
use invsync::storage::Store;
use invsync::sync::clock::Clock;
use invsync::sync::engine::{Engine, EngineConfig};
use invsync::sync::real_time_store::RealTimeStore;
use invsync::sync::tiers::{Tier, owner};
use invsync::sync::{ProductDate, horizon, product_dates, quiet, scheduler};
use rand::{Rng, SeedableRng};

const SEED: u64 = 6;
const KEY: &str = "day-bench";
const MINUTE: Duration = Duration::from_secs(60);
/// A Tuesday, 08:00 in the partner's zone.
const START: &str = "2026-12-01T00:00:00Z";

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
}

impl Catalog {
    fn new(
        tiers: Vec<Tier>,
        zone: Tz,
        horizon_days: u32,
        runs_on: HashMap<ExperienceId, HashSet<Weekday>>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            owners: (0..horizon_days)
                .map(|offset| owner(&tiers, offset, now).expect("every offset has a tier"))
                .collect(),
            periods: tiers.iter().map(|tier| tier.period(now)).collect(),
            tiers,
            zone,
            runs_on,
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

    /// How often a day is refreshed in the steady state.
    fn refresh_period(&self, day: ProductDate, today: NaiveDate) -> Duration {
        let (tier, bookable) = self.group(day, today);
        if bookable {
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

/// When each product-date was last fetched: read from the store once, then kept up to date
/// from the simulator's log of answered calls (reading the whole horizon from the store every
/// minute would dominate the run). The end of the run checks it against the store.
struct LastFetched {
    at: HashMap<(ExperienceId, NaiveDate), DateTime<Utc>>,
    seen_until: tokio::time::Instant,
}

impl LastFetched {
    async fn read(store: &dyn Store, engine: &Engine) -> Self {
        let (today, last) = engine.horizon();
        Self {
            at: store
                .last_fetches(today, last)
                .await
                .expect("last fetches")
                .into_iter()
                .map(|fetch| ((fetch.experience, fetch.date), fetch.fetched_at))
                .collect(),
            seen_until: tokio::time::Instant::now(),
        }
    }

    fn catch_up(&mut self, sim: &Simulator, clock: Clock) {
        let now = tokio::time::Instant::now();
        for call in sim.calls() {
            if call.status == 200 && call.arrived >= self.seen_until && call.arrived <= now {
                let (Some(experience), Some(date)) = (call.experience, call.date) else {
                    continue;
                };
                self.at.insert((experience, date), clock.at(call.arrived));
            }
        }
        self.seen_until = now;
    }
}

/// Samples every product-date's staleness each simulated minute for `hours`.
async fn sample(
    sim: &Simulator,
    engine: &Engine,
    catalog: &Catalog,
    last_fetched: &mut LastFetched,
    hours: u64,
    measured: &mut Measured,
) {
    let clock = engine.clock();
    let experiences: Vec<ExperienceId> = catalog.runs_on.keys().copied().collect();
    for _ in 0..hours * 60 {
        tokio::time::sleep(MINUTE).await;
        last_fetched.catch_up(sim, clock);
        let now = clock.now();
        let (today, last) = engine.horizon();
        let entered_horizon = today
            .and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_local_timezone(catalog.zone)
            .single()
            .expect("an unambiguous midnight")
            .with_timezone(&Utc);
        for day in product_dates(&experiences, today, last) {
            let since = last_fetched
                .at
                .get(&(day.experience, day.date))
                .copied()
                .unwrap_or(entered_horizon);
            let stale = u64::try_from((now - since).num_seconds()).unwrap_or(0);
            let group = catalog.group(day, today);
            measured.staleness.entry(group).or_default().add(stale);
        }
    }
}

/// Every product-date's last fetch as sampled is what the store holds, but for calls answered
/// and not yet applied (at most one per worker).
async fn check_against_store(store: &dyn Store, engine: &Engine, last_fetched: &LastFetched) {
    let (today, last) = engine.horizon();
    let stored = store.last_fetches(today, last).await.expect("last fetches");
    let in_flight = stored
        .iter()
        .filter(|fetch| {
            let sampled = last_fetched.at[&(fetch.experience, fetch.date)];
            assert!(
                sampled >= fetch.fetched_at,
                "{fetch:?} sampled at {sampled}"
            );
            sampled > fetch.fetched_at
        })
        .count();
    assert!(
        in_flight <= 3,
        "{in_flight} sampled fetches are not in the store"
    );
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    let products = usize::try_from(env_or("DAY_PRODUCTS", 450)).expect("products");
    let hours = env_or("DAY_HOURS", 24);
    let warm_up_hours = env_or("DAY_WARM_UP_HOURS", 24);
    let real_start = std::time::Instant::now();

    let catalog_products = synthetic_products(products, SEED);
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
    let catalog = Catalog::new(
        config.tiers.clone(),
        config.timezone,
        config.horizon_days,
        runs_on,
        clock.now(),
    );

    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("day.db").display());
    let store = RealTimeStore::connect(&url).await.expect("store");
    store
        .ensure_experiences(&experiences)
        .await
        .expect("experiences");
    settle(store.as_ref(), &sim, &catalog, &experiences, clock.now()).await;
    let settled_in = real_start.elapsed();

    let rate: NonZeroU32 = settings.partner.rate_limit_per_minute;
    let partner = InProcessPartner::new(sim.clone(), rate, clock);
    let engine = Engine::new(config, store.clone(), Arc::new(partner), clock)
        .await
        .expect("engine");
    let _workers = engine.start();
    let _schedule = scheduler::start(&engine);

    tokio::time::sleep(Duration::from_secs(warm_up_hours * 3600)).await;
    let measure_from = tokio::time::Instant::now();
    let mut measured = Measured::default();
    let mut last_fetched = LastFetched::read(store.as_ref(), &engine).await;
    sample(
        &sim,
        &engine,
        &catalog,
        &mut last_fetched,
        hours,
        &mut measured,
    )
    .await;
    check_against_store(store.as_ref(), &engine, &last_fetched).await;
    let status = engine.status().await.expect("status");
    engine.shutdown();

    let calls = sim.calls();
    let measured_calls: Vec<_> = calls
        .iter()
        .filter(|call| call.arrived >= measure_from)
        .collect();
    let mut rate_limited = 0;
    for call in &measured_calls {
        let (Some(experience), Some(date)) = (call.experience, call.date) else {
            continue;
        };
        if call.status == 429 {
            rate_limited += 1;
        }
        let at = clock.at(call.arrived);
        let today = at.with_timezone(&catalog.zone).date_naive();
        let group = catalog.group(ProductDate { date, experience }, today);
        *measured.calls.entry(group).or_default() += 1;
    }
    let total_calls = measured_calls.len() as u64;
    let allowed = u64::from(rate.get()) * 60 * hours;

    println!(
        "day: {products} synthetic products (1-4 running weekdays), 60-day horizon, {rate} requests/minute, SQLite; \
         {hours} h simulated after a {warm_up_hours} h warm-up; empty weekdays probed every {} h",
        quiet::PROBE_PERIOD.as_secs() / 3600
    );
    println!(
        "{:<8} {:>7} {:>7} | {:>25} | {:>25}",
        "tier", "calls", "empty", "bookable p50 / p95 / max", "empty p50 / p95 / max"
    );
    for (index, tier) in catalog.tiers.iter().enumerate() {
        let quantiles = |bookable: bool| {
            let histogram = measured.staleness.get(&(index, bookable));
            let q = |q: f64| human(histogram.and_then(|h| h.quantile(q)));
            format!("{:>7} / {:>7} / {:>7}", q(0.5), q(0.95), q(1.0))
        };
        let calls = |bookable| measured.calls.get(&(index, bookable)).copied().unwrap_or(0);
        println!(
            "{:<8} {:>7} {:>7} | {:>25} | {:>25}",
            tier.name(),
            calls(true) + calls(false),
            calls(false),
            quantiles(true),
            quantiles(false)
        );
    }
    let behind: Vec<String> = status
        .tiers
        .iter()
        .filter(|t| t.skipped_runs > 0)
        .map(|t| format!("{} skipped {}", t.name, t.skipped_runs))
        .collect();
    println!(
        "total {total_calls} calls of {allowed} allowed ({:.1} %); 429s {rate_limited}; busiest 60 s window {} (limit {rate}); \
         tier runs skipped: {}; simulated {:?} in {:.0?} real ({:.0?} to settle the store)",
        100.0 * total_calls as f64 / allowed as f64,
        sim.max_calls_in_any_window(MINUTE),
        if behind.is_empty() {
            "none".into()
        } else {
            behind.join(", ")
        },
        measure_from.elapsed(),
        real_start.elapsed(),
        settled_in,
    );
}
