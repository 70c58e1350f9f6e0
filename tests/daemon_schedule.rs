//! The sync engine's schedule under tokio's paused clock: pacing, tiers, pause, faults. No
//! test sleeps for real minutes; the engine, pacer, queue and store are the real ones.

mod common;

use std::time::Duration;

use common::*;
use tokio::time::Instant;

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_fresh_start_backfills_the_horizon_in_four_minutes_without_a_429() {
    for backend in backends().await {
        let harness = start_engine(backend, 60).await;
        let start = Instant::now();
        tokio::time::sleep(MINUTE).await;
        let status = harness.engine.status().await.unwrap();
        // After a minute about 30 of the 120 days are done and the queue is draining.
        assert!(
            (85..=95).contains(&(status.pending + status.in_flight)),
            "{status:?}"
        );
        harness.wait_until_drained(10 * MINUTE).await;
        let elapsed = start.elapsed();
        assert_eq!(harness.fetched_days().await, 120);
        // 2 experiences × 60 days at 30 per minute: 4 minutes ± 5 %.
        assert!(
            (Duration::from_secs(228)..=Duration::from_secs(252)).contains(&elapsed),
            "{}: backfill took {elapsed:?}",
            harness.backend.name
        );
        let calls = harness.sim.calls();
        assert_eq!(calls.len(), 120, "one call per product-date");
        assert!(calls.iter().all(|call| call.status == 200));
        assert!(harness.sim.max_calls_in_any_window(MINUTE) <= 30);
        assert!(harness.store.verify().await.unwrap().ok);
        harness.finish();
    }
}

#[tokio::test]
async fn a_pause_stops_calls_within_two_seconds_survives_a_restart_and_resumes() {
    for backend in backends().await {
        let harness = start_engine(backend, 60).await;
        tokio::time::sleep(Duration::from_secs(30)).await;
        harness.engine.pause("partner incident").await.unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let calls_at_pause = harness.partner_calls();
        tokio::time::sleep(10 * MINUTE).await;
        assert_eq!(
            harness.partner_calls(),
            calls_at_pause,
            "calls continued while paused"
        );
        let status = harness.engine.status().await.unwrap();
        assert_eq!(status.state, "paused");
        assert_eq!(status.pause_reason.as_deref(), Some("partner incident"));

        // A restart: a new engine on the same database stays paused.
        harness.engine.shutdown();
        let restarted = engine_for(
            harness.store.clone(),
            &harness.sim,
            60,
            harness.engine.clock(),
        )
        .await;
        let _tasks = restarted.start();
        tokio::time::sleep(MINUTE).await;
        assert_eq!(harness.partner_calls(), calls_at_pause);
        assert_eq!(restarted.status().await.unwrap().state, "paused");

        restarted.resume().await.unwrap();
        let deadline = Instant::now() + 10 * MINUTE;
        while harness.fetched_days().await < 120 {
            assert!(Instant::now() < deadline, "did not finish after resuming");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        // Resuming continued where it stopped: no day was fetched twice.
        assert_eq!(harness.partner_calls(), 120, "{}", harness.backend.name);
        restarted.shutdown();
        harness.finish();
    }
}

#[tokio::test]
async fn each_tier_queues_only_its_due_days_and_overlaps_are_fetched_once() {
    for backend in backends().await {
        let harness = start_engine(backend, 60).await;
        harness.wait_until_drained(10 * MINUTE).await;
        let tier = |name: &str| {
            harness
                .engine
                .tiers()
                .iter()
                .position(|t| t.name() == name)
                .unwrap()
        };
        let queued = |status: &invsync::sync::status::SyncStatus, name: &str| {
            status
                .tiers
                .iter()
                .find(|t| t.name == name)
                .unwrap()
                .last_queued
        };
        tokio::time::sleep(15 * MINUTE).await;
        for name in ["today", "week", "horizon"] {
            harness.engine.run_tier(tier(name)).await;
        }
        let status = harness.engine.status().await.unwrap();
        // Today is a Tuesday: product 14 runs on it; 15 runs only on Sundays, and its eight
        // empty Tuesdays of the horizon made Tuesday a quiet weekday, probed only every 48 h.
        assert_eq!(queued(&status, "today"), 1, "today's running product-date");
        assert_eq!(
            queued(&status, "week"),
            0,
            "fresh days are not fetched again"
        );
        assert_eq!(queued(&status, "horizon"), 0);
        assert!(status.tiers.iter().all(|t| t.last_success.is_some()));

        tokio::time::sleep(4 * 60 * MINUTE).await;
        harness.engine.run_tier(tier("week")).await;
        let status = harness.engine.status().await.unwrap();
        // Wednesday to Monday (today is the today tier's): 14 runs on Thursday and Sunday, 15
        // on Sunday.
        assert_eq!(queued(&status, "week"), 3);
        assert_eq!(harness.partner_calls(), 120 + 1 + 3);
        harness.finish();
    }
}

#[tokio::test]
async fn faults_and_a_429_storm_lose_no_day_and_are_counted() {
    for backend in backends().await {
        let sim = invsync::simulator::Simulator::new(invsync::simulator::SimulatorConfig::new(
            invsync::domain::Secret::new(SIM_KEY),
        ));
        sim.set_faults(invsync::simulator::Faults {
            server_error_percent: 5,
            slow_percent: 3,
            garbage_percent: 3,
            truncated_percent: 3,
            ..Default::default()
        })
        .unwrap();
        let harness = start_engine_with(backend, sim, 20).await;
        tokio::time::sleep(Duration::from_secs(20)).await;
        harness.sim.start_rate_limit_storm(Duration::from_secs(30));
        harness.wait_until_drained(30 * MINUTE).await;
        let status = harness.engine.status().await.unwrap();
        assert_eq!(harness.fetched_days().await, 40, "{status:?}");
        assert!(status.parked.is_empty(), "{:?}", status.parked);
        assert!(status.counters.retries > 0, "{:?}", status.counters);
        // The first 429 holds every caller until the reset: a storm costs a handful of calls.
        assert!(
            (1..=6).contains(&status.counters.rate_limited),
            "{:?}",
            status.counters
        );
        // Every attempt the partner saw is counted.
        assert_eq!(status.counters.calls as usize, harness.partner_calls());
        assert!(harness.sim.max_calls_in_any_window(MINUTE) <= 30);
        assert!(harness.store.verify().await.unwrap().ok);
        harness.finish();
    }
}
