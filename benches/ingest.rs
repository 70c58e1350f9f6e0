//! Ingest: product-days per second applied to the store with the ledger on, on SQLite and on
//! PostgreSQL, beside a baseline measured in the same run that applies the same days without
//! ledger postings. A regression guard for the apply path, not a target: at the partner's 30
//! requests a minute the sync applies at most 0.5 product-days a second (100 a second at
//! 6,000 requests a minute), so every figure here is far above what the daemon is asked for.
//!
//! `cargo bench --bench ingest` (PostgreSQL from `TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`; fresh databases are created and dropped).
//! `cargo bench --bench ingest -- sqlite` (or `postgres`) runs one backend; `INGEST_ROUNDS`
//! (default 7) sets the number of rounds.
//!
//! The days come from the built-in simulator (unthrottled, in this process), built before the
//! clock starts, so only applying is timed: `Mirror::apply_fetch`, one transaction per day,
//! exactly as the sync calls it. Three workloads:
//! - "one at a time": products 14 and 15, one apply at a time;
//! - "concurrent": the same days, `WORKERS` tasks each taking the next day from a shared list,
//!   as the sync's workers each apply what they fetched. With two products, most applies that
//!   overlap are of one experience and queue on its partner account: the worst case;
//! - "450 products": `WORKERS` tasks over 450 synthetic products, in the order the sync's
//!   queue hands them out (date by date, experience by experience).
//!
//! Each round and each workload takes dates neither store has seen and applies three passes
//! over them, each timed:
//! - first sight: every slot, pax and account is new, every pool gets an opening posting;
//! - changed: every pool lost one seat since the last fetch (one posting per pool);
//! - unchanged: the same numbers again (no posting).
//!
//! The baseline is a second store of the same backend built `without_postings`: the same
//! days, the same transaction (fetch record, mirror, pool accounts, checkpoint), minus the
//! ledger's pool read, journal, transfers, entries and balance updates. The two stores take
//! turns within each round so drift on a shared machine hits both. Rates are medians over the
//! rounds. The ledger's cost is the median of each round's own pair: the slowdown, ledger time
//! ÷ baseline time − 1, and the time it adds to a day.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate};
use invsync::domain::{DayFetch, ExperienceId, Secret};
use invsync::simulator::{SYNTHETIC_FIRST_ID, Simulator, SimulatorConfig, synthetic_products};
use invsync::storage::{ApplyOutcome, PostgresStore, SqliteStore, Store};
use invsync::sync::engine::WORKERS;
use support::PostgresServer;

const DAYS_PER_PASS: usize = 400;
const DEFAULT_ROUNDS: usize = 7;
const PASSES: [&str; 3] = ["first sight", "changed", "unchanged"];
const SYNTHETIC_PRODUCTS: usize = 450;

/// Whose days are applied, and how many applies run at once.
struct Workload {
    name: &'static str,
    appliers: usize,
    partner: Simulator,
    experiences: Vec<ExperienceId>,
}

impl Workload {
    fn all() -> Vec<Self> {
        let builtin = Simulator::new(SimulatorConfig::new(Secret::new("bench")));
        let products_14_and_15 = || [14, 15].map(experience).to_vec();
        let synthetic = Simulator::new(SimulatorConfig {
            products: synthetic_products(SYNTHETIC_PRODUCTS, 0),
            ..SimulatorConfig::new(Secret::new("bench"))
        });
        let synthetic_ids = (0..SYNTHETIC_PRODUCTS as i64)
            .map(|index| experience(SYNTHETIC_FIRST_ID + index))
            .collect();
        vec![
            Self {
                name: "one at a time",
                appliers: 1,
                partner: builtin.clone(),
                experiences: products_14_and_15(),
            },
            Self {
                name: "concurrent",
                appliers: WORKERS,
                partner: builtin,
                experiences: products_14_and_15(),
            },
            Self {
                name: "450 products",
                appliers: WORKERS,
                partner: synthetic,
                experiences: synthetic_ids,
            },
        ]
    }

    /// `DAYS_PER_PASS` days with slots from `first` on, date by date and experience by
    /// experience: the order the sync's queue hands them to its workers.
    fn product_days(&self, first: NaiveDate) -> Vec<DayFetch> {
        first
            .iter_days()
            .flat_map(|date| self.experiences.iter().map(move |&id| (id, date)))
            .filter_map(|(id, date)| {
                let wire = self.partner.inventory(id, date).ok()?;
                let slots: Vec<_> = wire
                    .into_iter()
                    .map(|slot| slot.into_slot(date))
                    .collect::<Result<_, _>>()
                    .ok()?;
                (!slots.is_empty()).then(|| DayFetch::new(id, date, slots))
            })
            .take(DAYS_PER_PASS)
            .collect()
    }
}

/// `INGEST_ROUNDS`, or 7.
fn rounds() -> usize {
    std::env::var("INGEST_ROUNDS")
        .ok()
        .map(|value| value.parse().expect("INGEST_ROUNDS: a whole number"))
        .filter(|&rounds| rounds > 0)
        .unwrap_or(DEFAULT_ROUNDS)
}

fn experience(id: i64) -> ExperienceId {
    ExperienceId::try_from(id).expect("positive id")
}

/// The same days seen again later, every pool `sold` seats lower.
fn seen_again(days: &[DayFetch], sold: i64) -> Vec<DayFetch> {
    days.iter()
        .map(|day| {
            let mut again = DayFetch::new(day.experience, day.date, day.slots.clone());
            for slot in &mut again.slots {
                slot.remaining -= sold;
                for pax in &mut slot.pax {
                    pax.remaining -= sold;
                }
            }
            again
        })
        .collect()
}

/// Applies every day from `appliers` tasks at once, each taking the next day not yet taken.
async fn apply_all(store: &Arc<dyn Store>, days: &Arc<Vec<DayFetch>>, appliers: usize) -> Duration {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..appliers)
        .map(|_| {
            let (store, days, next) = (store.clone(), days.clone(), next.clone());
            tokio::spawn(async move {
                while let Some(day) = days.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let outcome = store.apply_fetch(day, None).await.expect("apply");
                    assert!(
                        matches!(outcome, ApplyOutcome::Applied { .. }),
                        "every day is applied, got {outcome:?}"
                    );
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("applier");
    }
    start.elapsed()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Seconds each store took for each pass of each round, by workload.
struct Timings {
    ledger: Vec<[Vec<f64>; 3]>,
    baseline: Vec<[Vec<f64>; 3]>,
}

async fn measure(
    workloads: &[Workload],
    ledger: Arc<dyn Store>,
    baseline: Arc<dyn Store>,
) -> Timings {
    let mut timings = Timings {
        ledger: workloads.iter().map(|_| Default::default()).collect(),
        baseline: workloads.iter().map(|_| Default::default()).collect(),
    };
    for round in 0..rounds() {
        for (index, workload) in workloads.iter().enumerate() {
            let start = NaiveDate::from_ymd_opt(2030, 1, 1).expect("date")
                + Days::new(((round * workloads.len() + index) * DAYS_PER_PASS) as u64);
            let first = workload.product_days(start);
            let changed = seen_again(&first, 1);
            let unchanged = seen_again(&first, 1);
            for (pass, days) in [first, changed, unchanged].into_iter().enumerate() {
                let days = Arc::new(days);
                let mut turns = [
                    (&ledger, &mut timings.ledger[index][pass]),
                    (&baseline, &mut timings.baseline[index][pass]),
                ];
                if round % 2 == 1 {
                    turns.reverse();
                }
                for (store, seconds) in turns {
                    seconds.push(
                        apply_all(store, &days, workload.appliers)
                            .await
                            .as_secs_f64(),
                    );
                }
            }
        }
    }
    let report = ledger.verify().await.expect("verify");
    assert!(report.ok, "the ledger verifies: {report:?}");
    timings
}

fn report(backend: &str, workloads: &[Workload], timings: &Timings) {
    // Per pass, seconds each round took for its `DAYS_PER_PASS` days, ledger beside baseline.
    // The slowdown (ledger time / baseline time - 1) and the microseconds the ledger adds are
    // medians of each round's pair: the two stores ran minutes apart at most, so a slow spell
    // of the shared machine moves both.
    let line = |how: &str, name: &str, ledger: &[f64], baseline: &[f64]| {
        let ms_a_day = |seconds: &[f64]| median(seconds.to_vec()) * 1e3 / DAYS_PER_PASS as f64;
        let pairs = || ledger.iter().zip(baseline);
        let slowdown = median(pairs().map(|(l, b)| 100.0 * (l / b - 1.0)).collect());
        let added_us = median(pairs().map(|(l, b)| 1e6 * (l - b)).collect()) / DAYS_PER_PASS as f64;
        println!(
            "{backend:<9} {how:<14} {name:<12} ledger {:>5.0}/s   baseline {:>5.0}/s   \
             slowdown {slowdown:>5.1} % ({added_us:>+4.0} µs a day)",
            1e3 / ms_a_day(ledger),
            1e3 / ms_a_day(baseline),
        );
    };
    // A round's three passes together, per store.
    let all_passes = |passes: &[Vec<f64>; 3]| -> Vec<f64> {
        (0..passes[0].len())
            .map(|round| {
                passes.iter().map(|seconds| seconds[round]).sum::<f64>() / PASSES.len() as f64
            })
            .collect()
    };
    for (index, workload) in workloads.iter().enumerate() {
        let (ledger, baseline) = (&timings.ledger[index], &timings.baseline[index]);
        for (pass, name) in PASSES.iter().enumerate() {
            line(workload.name, name, &ledger[pass], &baseline[pass]);
        }
        line(
            workload.name,
            "all passes",
            &all_passes(ledger),
            &all_passes(baseline),
        );
    }
}

fn shape(workload: &Workload) -> String {
    let days = workload.product_days(NaiveDate::from_ymd_opt(2030, 1, 1).expect("date"));
    let slots: usize = days.iter().map(|day| day.slots.len()).sum();
    let pax: usize = days
        .iter()
        .flat_map(|day| &day.slots)
        .map(|slot| slot.pax.len())
        .sum();
    let per_day = |n: usize| n as f64 / days.len() as f64;
    format!(
        "{}: {} applies at once, {} product-days a pass, {:.1} slots and {:.1} pools a day",
        workload.name,
        workload.appliers,
        days.len(),
        per_day(slots),
        per_day(slots + pax)
    )
}

async fn sqlite(workloads: &[Workload]) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = |name: &str| format!("sqlite://{}", dir.path().join(name).display());
    let ledger = SqliteStore::connect(&url("ledger.db"))
        .await
        .expect("SQLite store");
    let baseline = SqliteStore::connect(&url("baseline.db"))
        .await
        .expect("SQLite store")
        .without_postings();
    report(
        "sqlite",
        workloads,
        &measure(workloads, Arc::new(ledger), Arc::new(baseline)).await,
    );
}

async fn postgres(workloads: &[Workload]) {
    let Some(mut server) = PostgresServer::connect().await else {
        return;
    };
    let ledger = PostgresStore::connect(&server.create_database("ledger").await)
        .await
        .expect("PostgreSQL store");
    let baseline = PostgresStore::connect(&server.create_database("baseline").await)
        .await
        .expect("PostgreSQL store")
        .without_postings();
    report(
        "postgres",
        workloads,
        &measure(workloads, Arc::new(ledger), Arc::new(baseline)).await,
    );
    for role in ["ledger", "baseline"] {
        server.drop_database(role).await;
    }
}

#[tokio::main]
async fn main() {
    let workloads = Workload::all();
    println!(
        "ingest: product-days applied per second, ledger on vs baseline without postings, median of {} rounds; \
         slowdown = ledger time / baseline time - 1, median of each round's pair; \
         the sync needs at most 0.5/s at 30 requests/minute",
        rounds()
    );
    for workload in &workloads {
        println!("  {}", shape(workload));
    }
    // `cargo bench --bench ingest -- postgres` runs one backend; no argument runs both.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    let wanted = |backend: &str| only.is_empty() || only.iter().any(|arg| arg == backend);
    if wanted("sqlite") {
        sqlite(&workloads).await;
    }
    if wanted("postgres") {
        postgres(&workloads).await;
    }
}
