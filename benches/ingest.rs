//! Ingest throughput: product-days per second applied to the store with the ledger on, on
//! SQLite and on PostgreSQL, in one run on one machine.
//!
//! `cargo bench --bench ingest` (PostgreSQL from `TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`; a fresh database is created and dropped).
//! Three passes over the same product-days, each timed `ROUNDS` times (median reported):
//! - first sight: every slot, pax and account is new, every pool gets an opening posting;
//! - changed: every pool lost one seat since the last fetch (one posting per pool);
//! - unchanged: the same numbers again (no posting).

use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate};
use invsync::domain::{DayFetch, ExperienceId, Secret};
use invsync::simulator::{Simulator, SimulatorConfig};
use invsync::storage::{self, Store};
use sqlx::Connection;

const DAYS_PER_PASS: usize = 400;
const ROUNDS: usize = 3;

fn product_days(first: NaiveDate) -> Vec<DayFetch> {
    let sim = Simulator::new(SimulatorConfig::new(Secret::new("bench")));
    let experiences = [14, 15].map(|id| ExperienceId::try_from(id).expect("positive id"));
    first
        .iter_days()
        .flat_map(|date| experiences.map(|id| (id, date)))
        .filter_map(|(id, date)| {
            let wire = sim.inventory(id, date).ok()?;
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

async fn apply_all(store: &dyn Store, days: &[DayFetch]) -> Duration {
    let start = Instant::now();
    for day in days {
        store.apply_fetch(day, None).await.expect("apply");
    }
    start.elapsed()
}

fn per_second(days: usize, elapsed: Duration) -> f64 {
    days as f64 / elapsed.as_secs_f64()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Returns (first sight, changed, unchanged) product-days per second, medians of `ROUNDS`.
async fn measure(url: &str) -> (f64, f64, f64) {
    let (mut first, mut changed, mut unchanged) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let store = storage::connect(url).await.expect("store");
        // Each round starts on dates the store has never seen.
        let start = NaiveDate::from_ymd_opt(2030, 1, 1).expect("date")
            + Days::new((round * 3 * DAYS_PER_PASS) as u64);
        let days = product_days(start);
        first.push(per_second(
            days.len(),
            apply_all(store.as_ref(), &days).await,
        ));
        let sold = seen_again(&days, 1);
        changed.push(per_second(
            sold.len(),
            apply_all(store.as_ref(), &sold).await,
        ));
        let same = seen_again(&days, 1);
        unchanged.push(per_second(
            same.len(),
            apply_all(store.as_ref(), &same).await,
        ));
        assert!(store.verify().await.expect("verify").ok);
    }
    (median(first), median(changed), median(unchanged))
}

fn report(backend: &str, (first, changed, unchanged): (f64, f64, f64)) {
    println!(
        "{backend:<10} first sight {first:>8.0}/s   changed {changed:>8.0}/s   unchanged {unchanged:>8.0}/s"
    );
}

#[tokio::main]
async fn main() {
    println!(
        "ingest: product-days applied per second (ledger on), {DAYS_PER_PASS} product-days a pass, median of {ROUNDS}"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
    report("sqlite", measure(&sqlite).await);

    let admin_url = std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    match sqlx::PgConnection::connect(&admin_url).await {
        Ok(mut admin) => {
            let name = format!("invsync_bench_{}", std::process::id());
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut admin)
                .await
                .expect("create bench database");
            let mut url = reqwest::Url::parse(&admin_url).expect("PostgreSQL URL");
            url.set_path(&name);
            report("postgres", measure(url.as_str()).await);
            sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
                .execute(&mut admin)
                .await
                .expect("drop bench database");
        }
        Err(error) => println!("postgres   skipped: {admin_url} unreachable ({error})"),
    }
}
