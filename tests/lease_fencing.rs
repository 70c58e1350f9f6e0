//! Partner calls are fenced by the lease, not only database writes: under tokio's paused clock,
//! a leader whose renewals block or fail makes no call past its hold's deadline (counted from
//! before its last successful claim, less the margin), a renewal that got through late extends
//! nothing, and calls resume once a renewal succeeds. A one-shot sync keeps its lease through
//! a long 429 hold, and stops calling when it cannot renew.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::NaiveDate;
use common::*;
use invsync::simulator::{CallRecord, InProcessPartner, Simulator, SimulatorConfig};
use invsync::storage::{Fence, Lease, Leases, Mirror, Store, StoreError};
use invsync::sync::clock::Clock;
use invsync::sync::{LeaseClaim, SyncError};
use tokio::sync::watch;
use tokio::time::Instant;

/// What lease claims do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claims {
    Pass,
    /// Wait (without an answer) until the mode changes.
    Block,
    Fail,
}

#[derive(Debug, Clone, Copy)]
struct ClaimRecord {
    asked: Instant,
    answered: Instant,
    granted: bool,
}

/// The real store, with lease claims that can be made to block or fail, and logged.
struct ClaimControl {
    inner: Arc<dyn Store>,
    mode: watch::Sender<Claims>,
    log: Mutex<Vec<ClaimRecord>>,
}

impl ClaimControl {
    fn new(inner: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            mode: watch::Sender::new(Claims::Pass),
            log: Mutex::default(),
        })
    }

    fn set(&self, mode: Claims) {
        self.mode.send_replace(mode);
    }

    fn claims(&self) -> Vec<ClaimRecord> {
        self.log.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl Leases for ClaimControl {
    async fn acquire_lease(
        &self,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        let asked = Instant::now();
        let mut mode = self.mode.subscribe();
        let claimed = loop {
            let current = *mode.borrow_and_update();
            match current {
                Claims::Pass => break self.inner.acquire_lease(holder, ttl).await,
                Claims::Fail => break Err(StoreError::Corrupt("the test fails claims".into())),
                Claims::Block => {
                    mode.changed().await.expect("the test keeps the store");
                }
            }
        };
        self.log.lock().unwrap().push(ClaimRecord {
            asked,
            answered: Instant::now(),
            granted: matches!(claimed, Ok(Some(_))),
        });
        claimed
    }

    async fn release_lease(&self, lease: &Lease, gap: Duration) -> Result<(), StoreError> {
        self.inner.release_lease(lease, gap).await
    }
    async fn current_lease(&self) -> Result<Lease, StoreError> {
        self.inner.current_lease().await
    }
}

invsync::forward_store!(ClaimControl => inner: Inventory, Mirror, Ledger, Bookings, Pause, SyncRequests);

/// The engine's lease in `tests/common` ([`engine_for`]): 60 s, renewed every 20 s; at the
/// partner's 30 requests per minute the margin is a fifth of it.
const ENGINE_TTL: Duration = Duration::from_secs(60);

/// Every call arrived while a granted claim, answered before it, still allowed calls: before
/// `asked + ttl - ttl / 5`, the least margin the sync keeps.
fn assert_calls_within_holds(calls: &[CallRecord], claims: &[ClaimRecord], ttl: Duration) {
    assert!(!calls.is_empty());
    for call in calls {
        let hold = claims
            .iter()
            .filter(|claim| claim.granted && claim.answered <= call.arrived)
            .map(|claim| claim.asked + ttl - ttl / 5)
            .max();
        assert!(
            hold.is_some_and(|until| call.arrived < until),
            "a call at {:?} outside every hold: {claims:?}",
            call.arrived
        );
    }
}

fn calls_between(calls: &[CallRecord], from: Instant, to: Instant) -> usize {
    calls
        .iter()
        .filter(|call| call.arrived >= from && call.arrived < to)
        .count()
}

async fn role(engine: &invsync::sync::engine::Engine) -> &'static str {
    engine.status().await.expect("status").role
}

fn simulator() -> Simulator {
    Simulator::new(SimulatorConfig::new(invsync::domain::Secret::new(SIM_KEY)))
}

/// A leader whose renewals stall from 30 s on (the one at 40 s is the first affected): by its
/// last successful claim, at 20 s, it may call until 20 + 60 - 12 = 68 s.
async fn a_leader_with_stalled_renewals(stall: Claims) {
    for backend in backends().await {
        let name = backend.name;
        let sim = simulator();
        let real = RealTimeStore::connect(&backend.url)
            .await
            .expect("store connects");
        let store = ClaimControl::new(real);
        let clock = Clock::starting_at("2026-12-01T00:00:00Z".parse().expect("instant"));
        let engine = engine_for(store.clone(), &sim, 60, clock).await;
        tokio::time::pause();
        let start = Instant::now();
        let at = |seconds: u64| start + Duration::from_secs(seconds);
        let _tasks = engine.start();

        tokio::time::sleep_until(at(30)).await;
        assert_eq!(role(&engine).await, "leader", "{name}");
        store.set(stall);
        tokio::time::sleep_until(at(95)).await;
        assert_eq!(role(&engine).await, "follower", "{name}: still leading");
        let calls = sim.calls();
        assert!(
            calls_between(&calls, at(60), at(68)) > 0,
            "{name}: stopped calling before the deadline"
        );
        assert_eq!(
            calls_between(&calls, at(68), at(95)),
            0,
            "{name}: called past the deadline"
        );

        let resumed_after = match stall {
            Claims::Block => {
                // The claim blocked since 40 s gets through at 110 s: its hold (until 88 s)
                // is over, so nothing resumes until the next claim, at 130 s.
                tokio::time::sleep_until(at(110)).await;
                store.set(Claims::Pass);
                tokio::time::sleep_until(at(125)).await;
                assert_eq!(
                    role(&engine).await,
                    "follower",
                    "{name}: a late claim counted"
                );
                at(130)
            }
            _ => {
                // Failed claims at 40, 60 and 80 s; the one at 100 s succeeds.
                tokio::time::sleep_until(at(90)).await;
                store.set(Claims::Pass);
                at(100)
            }
        };
        tokio::time::sleep_until(resumed_after + Duration::from_secs(10)).await;
        assert_eq!(role(&engine).await, "leader", "{name}: not leading again");
        let calls = sim.calls();
        assert_eq!(calls_between(&calls, at(68), resumed_after), 0, "{name}");
        assert!(
            calls_between(&calls, resumed_after, Instant::now()) > 0,
            "{name}: calls did not resume"
        );
        assert_calls_within_holds(&calls, &store.claims(), ENGINE_TTL);
        assert!(calls.iter().all(|call| call.status == 200), "{name}");

        engine.shutdown();
        tokio::time::resume();
    }
}

#[tokio::test]
async fn a_leader_whose_renewals_block_stops_calling_at_its_deadline_and_a_late_renewal_extends_nothing()
 {
    a_leader_with_stalled_renewals(Claims::Block).await;
}

#[tokio::test]
async fn a_leader_whose_renewals_fail_stops_calling_at_its_deadline_until_one_succeeds() {
    a_leader_with_stalled_renewals(Claims::Fail).await;
}

const ONE_SHOT_TTL: Duration = Duration::from_secs(10);

/// A one-shot sync of two days under the paused clock while every call answers 429 for a
/// minute, with lease claims switched to `after_first` once the run holds the lease.
async fn one_shot_through_a_rate_limit_storm(
    backend: &TestStore,
    after_first: Claims,
) -> (
    Result<invsync::sync::SyncSummary, SyncError>,
    Vec<CallRecord>,
    Vec<ClaimRecord>,
) {
    let sim = simulator();
    let real = RealTimeStore::connect(&backend.url)
        .await
        .expect("store connects");
    let store = ClaimControl::new(real);
    let clock = Clock::starting_at("2026-12-01T00:00:00Z".parse().expect("instant"));
    let settings = invsync::config::Settings::default();
    let experiences = settings.partner.experiences.clone();
    store
        .ensure_experiences(&experiences)
        .await
        .expect("experiences");
    let partner = InProcessPartner::new(sim.clone(), settings.partner.rate_limit_per_minute, clock);
    let day = NaiveDate::from_ymd_opt(2026, 12, 1).expect("date");
    tokio::time::pause();
    sim.start_rate_limit_storm(Duration::from_secs(60));
    let claim = LeaseClaim {
        holder: "one-shot".into(),
        ttl: ONE_SHOT_TTL,
    };
    let (outcome, ()) = tokio::join!(
        invsync::sync::sync_days(
            &partner,
            store.as_ref(),
            invsync::sync::product_dates(&experiences, day, day),
            fast_retries(),
            &claim,
        ),
        async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            store.set(after_first);
        }
    );
    tokio::time::resume();
    (outcome, sim.calls(), store.claims())
}

#[tokio::test]
async fn a_one_shot_sync_keeps_its_lease_through_a_long_429_hold() {
    for backend in backends().await {
        let name = backend.name;
        let (outcome, calls, claims) =
            one_shot_through_a_rate_limit_storm(&backend, Claims::Pass).await;
        let summary = outcome.unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_eq!(summary.fetched, 2, "{name}");
        assert!(calls.iter().any(|call| call.status == 429), "{name}");
        // Renewed every third of the lease during the minute's hold.
        assert!(claims.len() >= 15, "{name}: {} claims", claims.len());
        assert_calls_within_holds(&calls, &claims, ONE_SHOT_TTL);
    }
}

#[tokio::test]
async fn a_one_shot_sync_that_cannot_renew_stops_calling() {
    for backend in backends().await {
        let name = backend.name;
        let (outcome, calls, claims) =
            one_shot_through_a_rate_limit_storm(&backend, Claims::Block).await;
        assert!(
            matches!(outcome, Err(SyncError::LeaseLost)),
            "{name}: {outcome:?}"
        );
        // Only the first calls, refused by the storm, before the hold ran out.
        assert!(calls.iter().all(|call| call.status == 429), "{name}");
        assert_calls_within_holds(&calls, &claims, ONE_SHOT_TTL);
        let lease = backend.store.current_lease().await.expect("lease");
        assert_eq!(lease.holder.as_deref(), Some("one-shot"), "{name}");
    }
}

/// Both backends grant, hand back and fence the lease by the database's clock: a holder's
/// renewal keeps its token, a handed-back lease is free after the gap, a takeover bumps the
/// token, and an apply fenced by a lease that ran out is refused.
#[tokio::test]
async fn the_database_grants_hands_back_and_fences_the_lease_by_its_own_clock() {
    let short = Duration::from_secs(1);
    for backend in backends().await {
        let name = backend.name;
        let store = backend.store.as_ref();
        let id = experience(14);
        store.ensure_experiences(&[id]).await.expect("experiences");
        let day = date("2030-03-01");
        let version = |second| {
            let pax = vec![pax("ADULT", 5, "10", true)];
            fetch_at(id, day, second, vec![slot(day, "09:00", 5, pax)])
        };
        let apply = |second, lease: &Lease| {
            let fence = Fence {
                lease: lease.clone(),
            };
            async move { store.apply_fetch(&version(second), Some(&fence)).await }
        };

        let claim =
            |holder| async move { store.acquire_lease(holder, short).await.expect("claim") };

        let a = claim("a").await;
        let a = a.unwrap_or_else(|| panic!("{name}: the lease is free"));
        assert!(claim("b").await.is_none(), "{name}");
        let renewed = claim("a").await;
        assert_eq!(renewed.as_ref().map(|l| l.token), Some(a.token), "{name}");
        let a = renewed.expect("renewed");

        store
            .release_lease(&a, Duration::from_secs(1))
            .await
            .expect("release");
        assert!(claim("b").await.is_none(), "{name}: taken within the gap");
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let b = claim("b").await;
        let b = b.unwrap_or_else(|| panic!("{name}: still held after the gap"));
        assert_eq!(b.token, a.token + 1, "{name}");

        assert!(
            matches!(apply(1, &a).await, Err(StoreError::LeaseLost)),
            "{name}"
        );
        apply(2, &b).await.expect("the holder's apply");
        tokio::time::sleep(short + Duration::from_millis(100)).await;
        assert!(
            matches!(apply(3, &b).await, Err(StoreError::LeaseLost)),
            "{name}: an apply under a lease that ran out"
        );
    }
}
