//! Quiet weekdays under tokio's paused clock, with the real engine, tier scheduler, pacer and
//! store: the dates of a weekday a product does not run are probed every 48 hours instead of
//! every tier run, never dropped, and a product that starts running on a new weekday is picked
//! up. Product 14 runs on Sunday, Tuesday and Thursday, product 15 on Sunday.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{Datelike, NaiveDate, Weekday};
use common::*;
use invsync::domain::{DayFetch, ExperienceId, Secret};
use invsync::partner::{Partner, PartnerError};
use invsync::simulator::{InProcessPartner, Simulator, SimulatorConfig, builtin_products};
use invsync::sync::clock::Clock;
use invsync::sync::engine::{Engine, EngineConfig};
use invsync::sync::quiet::PROBE_PERIOD;
use invsync::sync::scheduler;
use tokio::task::JoinSet;

const HOUR: Duration = Duration::from_secs(3600);

/// A simulator whose product 15 also runs on `extra`.
fn simulator(extra: Option<Weekday>) -> Simulator {
    let mut products = builtin_products().expect("fixtures");
    if let Some(weekday) = extra {
        let fifteen = products
            .iter_mut()
            .find(|product| product.product_id.as_number() == Some(15))
            .expect("product 15");
        fifteen.weekdays.push(weekday);
    }
    Simulator::new(SimulatorConfig {
        products,
        ..SimulatorConfig::new(Secret::new(SIM_KEY))
    })
}

/// The partner as the engine sees it: one simulator until `switched`, another from then on.
struct Switching {
    before: InProcessPartner,
    after: InProcessPartner,
    switched: Arc<AtomicBool>,
}

impl Switching {
    fn current(&self) -> &InProcessPartner {
        if self.switched.load(Ordering::SeqCst) {
            &self.after
        } else {
            &self.before
        }
    }
}

#[async_trait]
impl Partner for Switching {
    async fn fetch_day_gated(
        &self,
        experience: ExperienceId,
        date: NaiveDate,
        may_send: &invsync::partner::CallGate<'_>,
    ) -> Result<DayFetch, PartnerError> {
        self.current()
            .fetch_day_gated(experience, date, may_send)
            .await
    }

    fn rate_limit_per_minute(&self) -> std::num::NonZeroU32 {
        self.current().rate_limit_per_minute()
    }

    fn pacing_period(&self) -> Duration {
        self.current().pacing_period()
    }
}

/// The engine (60-day horizon, default tiers, 30 requests per minute) and its scheduler,
/// started on a paused clock at Tuesday 1 December 2026, 08:00 in the partner's zone.
struct Daemon {
    engine: Engine,
    store: Arc<dyn invsync::storage::Store>,
    _tasks: [JoinSet<()>; 2],
}

async fn start(backend: &TestStore, partner: impl FnOnce(Clock) -> Arc<dyn Partner>) -> Daemon {
    let store = RealTimeStore::connect(&backend.url)
        .await
        .expect("store connects");
    let settings = invsync::config::Settings::default();
    let config = EngineConfig {
        retry: fast_retries(),
        // Days of simulated time: poll and renew rarely so the test stays fast.
        lease_ttl: Duration::from_secs(600),
        control_poll: Duration::from_secs(60),
        ..EngineConfig::from_settings(&settings)
    };
    store
        .ensure_experiences(&config.experiences)
        .await
        .expect("experiences");
    let clock = Clock::starting_at("2026-12-01T00:00:00Z".parse().expect("instant"));
    let engine = Engine::new(config, store.clone(), partner(clock), clock)
        .await
        .expect("engine");
    tokio::time::pause();
    let tasks = [engine.start(), scheduler::start(&engine)];
    Daemon {
        engine,
        store,
        _tasks: tasks,
    }
}

impl Daemon {
    fn stop(self) {
        self.engine.shutdown();
        tokio::time::resume();
    }
}

fn runs_on(experience: ExperienceId, weekday: Weekday) -> bool {
    match experience.as_number().unwrap_or_default() {
        14 => matches!(weekday, Weekday::Sun | Weekday::Tue | Weekday::Thu),
        _ => weekday == Weekday::Sun,
    }
}

#[tokio::test]
async fn quiet_weekdays_are_probed_every_48_hours_and_never_dropped() {
    for backend in backends().await {
        let sim = simulator(None);
        let in_process = sim.clone();
        let daemon = start(&backend, move |clock| {
            Arc::new(InProcessPartner::new(
                in_process,
                30.try_into().expect("non-zero"),
                clock,
            ))
        })
        .await;
        tokio::time::sleep(72 * HOUR).await;

        let clock = daemon.engine.clock();
        let zone = invsync::config::Settings::default().partner.timezone.0;
        let mut calls: HashMap<(ExperienceId, NaiveDate), usize> = HashMap::new();
        let mut calls_while_today: HashMap<(ExperienceId, NaiveDate), usize> = HashMap::new();
        for call in sim.calls() {
            assert_eq!(call.status, 200, "{call:?}");
            let day = (call.experience.expect("id"), call.date.expect("date"));
            *calls.entry(day).or_default() += 1;
            if clock.at(call.arrived).with_timezone(&zone).date_naive() == day.1 {
                *calls_while_today.entry(day).or_default() += 1;
            }
        }
        let (quiet, running): (Vec<_>, Vec<_>) = calls
            .iter()
            .partition(|((experience, date), _)| !runs_on(*experience, date.weekday()));
        // In three days a quiet date is fetched by the backfill and one probe, at most.
        assert!(
            quiet.iter().all(|(_, count)| **count <= 2),
            "{}: {quiet:?}",
            backend.name
        );
        assert!(quiet.iter().any(|(_, count)| **count == 2), "no probe");
        // Thursday 3 December was a whole day today (hours 40 to 64): fetched every 15 minutes.
        let thursday = calls_while_today[&(experience(14), date("2026-12-03"))];
        assert!(
            (95..=97).contains(&thursday),
            "{}: {thursday}",
            backend.name
        );
        // Running dates are fetched far more often than quiet ones.
        let running_calls: usize = running.iter().map(|(_, count)| **count).sum();
        assert!(
            running_calls > 2 * 2 * running.len(),
            "{running_calls} calls"
        );

        // Never dropped: every date of the horizon is fresher than the probe period, but the
        // last one, which entered the horizon at midnight and waits for the horizon tier.
        let now = daemon.engine.clock().now();
        let (today, last) = daemon.engine.horizon();
        let fetched = daemon
            .store
            .last_fetches(today, last)
            .await
            .expect("last fetches");
        assert_eq!(fetched.len(), 2 * 59, "{}", backend.name);
        assert!(fetched.iter().all(|f| f.date < last));
        let oldest = fetched
            .iter()
            .map(|f| now - f.fetched_at)
            .max()
            .expect("some");
        assert!(
            oldest.to_std().expect("age") <= PROBE_PERIOD + HOUR,
            "{}: oldest fetch {oldest}",
            backend.name
        );
        daemon.stop();
    }
}

async fn served(daemon: &Daemon, day: NaiveDate) -> bool {
    !daemon
        .store
        .slots_on(experience(15), day)
        .await
        .expect("slots")
        .is_empty()
}

fn wednesdays(daemon: &Daemon) -> Vec<NaiveDate> {
    let (today, last) = daemon.engine.horizon();
    today
        .iter_days()
        .take_while(|day| *day <= last)
        .filter(|day| day.weekday() == Weekday::Wed)
        .collect()
}

#[tokio::test]
async fn a_product_that_starts_running_on_a_new_weekday_is_served_within_the_probe_period() {
    for backend in backends().await {
        let switched = Arc::new(AtomicBool::new(false));
        let flag = switched.clone();
        let daemon = start(&backend, move |clock| {
            let rate = 30.try_into().expect("non-zero");
            Arc::new(Switching {
                before: InProcessPartner::new(simulator(None), rate, clock),
                after: InProcessPartner::new(simulator(Some(Weekday::Wed)), rate, clock),
                switched: flag,
            })
        })
        .await;
        // The backfill (4 minutes) learns that 15 never runs on Wednesdays; then it does.
        tokio::time::sleep(Duration::from_secs(10 * 60)).await;
        switched.store(true, Ordering::SeqCst);

        tokio::time::sleep(PROBE_PERIOD + HOUR).await;
        let mut first = Vec::new();
        for day in wednesdays(&daemon) {
            if served(&daemon, day).await {
                first.push(day);
            }
        }
        assert!(!first.is_empty(), "{}: no Wednesday served", backend.name);

        // Once one Wednesday has slots, the others are back on their tiers' periods.
        tokio::time::sleep(24 * HOUR).await;
        for day in wednesdays(&daemon) {
            assert!(
                served(&daemon, day).await,
                "{}: Wednesday {day} of 15 not served",
                backend.name
            );
        }
        daemon.stop();
    }
}
