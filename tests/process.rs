//! The daemon as a process: `kill -9` in the middle of a backfill loses nothing and re-fetches
//! nothing, and SIGTERM stops it cleanly with exit code 0.

mod common;

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::*;
use invsync::simulator::{Simulator, SimulatorConfig, SimulatorHandle};

const HORIZON_DAYS: usize = 30;
const KILL_CYCLES: usize = 20;
const RATE: u32 = 600;

async fn start_simulator() -> SimulatorHandle {
    Simulator::new(SimulatorConfig {
        rate_limit_per_minute: std::num::NonZeroU32::new(RATE).expect("non-zero"),
        ..SimulatorConfig::new(invsync::domain::Secret::new(SIM_KEY))
    })
    .spawn_local()
    .await
    .expect("simulator")
}

/// A daemon (or `verify`) on `database_url`; a killed daemon's lease blocks its successor
/// only briefly.
fn invsync(dir: &Path, database_url: &str, sim: &SimulatorHandle, args: &[&str]) -> Command {
    let mut command = invsync_command(dir, database_url, sim, RATE, HORIZON_DAYS, args);
    command.env("INVSYNC_SYNC__LEASE_SECONDS", "1");
    command
}

async fn wait_for_calls(sim: &SimulatorHandle, at_least: usize) {
    let start = Instant::now();
    while sim.sim.calls().len() < at_least {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the daemon is not calling"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn fetched_days(backend: &TestStore) -> usize {
    let today = invsync::config::Settings::default().partner.today();
    backend
        .store
        .last_fetches(today, today + chrono::Days::new(HORIZON_DAYS as u64))
        .await
        .expect("last fetches")
        .len()
}

fn verify_passes(dir: &Path, url: &str, sim: &SimulatorHandle) {
    let status = invsync(dir, url, sim, &["verify"])
        .status()
        .expect("verify runs");
    assert!(status.success(), "invsync verify failed after a crash");
}

fn kill(child: &mut Child) {
    child.kill().expect("kill -9");
    child.wait().expect("reaped");
}

#[tokio::test]
async fn kill_9_mid_backfill_loses_no_day_and_refetches_none() {
    for backend in backends().await {
        let sim = start_simulator().await;
        let dir = tempfile::tempdir().unwrap();
        let days = 2 * HORIZON_DAYS;
        let mut kills = 0;
        // Kill it at 20 points of the backfill, each a random moment after a call (seeded, so
        // a failure can be replayed), then let it finish.
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(20);
        for at in (2..days).step_by(3).take(KILL_CYCLES) {
            let mut child = invsync(dir.path(), &backend.url, &sim, &["serve"])
                .spawn()
                .unwrap();
            wait_for_calls(&sim, at).await;
            let moment = rand::Rng::random_range(&mut rng, 0..150);
            tokio::time::sleep(Duration::from_millis(moment)).await;
            kill(&mut child);
            kills += 1;
            verify_passes(dir.path(), &backend.url, &sim);
        }
        assert_eq!(kills, KILL_CYCLES);
        let mut child = invsync(dir.path(), &backend.url, &sim, &["serve"])
            .spawn()
            .unwrap();
        let start = Instant::now();
        while fetched_days(&backend).await < days {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "backfill never finished"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        kill(&mut child);
        verify_passes(dir.path(), &backend.url, &sim);
        // At most the call in flight at each kill is repeated: no full re-fetch after a crash.
        let calls = sim.sim.calls().len();
        assert!(
            (days..=days + kills).contains(&calls),
            "{}: {calls} calls for {days} days",
            backend.name
        );
    }
}

#[tokio::test]
async fn kill_9_mid_range_of_an_octo_partner_loses_no_day() {
    const DAYS_PER_CALL: usize = 5;
    const RANGE_KILLS: usize = 8;
    for backend in backends().await {
        let sim = start_simulator().await;
        let dir = tempfile::tempdir().unwrap();
        let octo = |args: &[&str]| {
            let mut command = invsync(dir.path(), &backend.url, &sim, args);
            command
                .env("INVSYNC_PARTNER__KIND", "octo")
                .env(
                    "INVSYNC_PARTNER__BASE_URL",
                    format!("{}/octo", sim.base_url()),
                )
                .env("INVSYNC_PARTNER__DAYS_PER_CALL", DAYS_PER_CALL.to_string());
            command
        };
        let days = 2 * HORIZON_DAYS;
        // Each start reads the two products, then each range of 5 days is one call; a kill
        // lands while a range's days are being applied one by one, or between calls.
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(21);
        for at in (3..).step_by(2).take(RANGE_KILLS) {
            let mut child = octo(&["serve"]).spawn().unwrap();
            wait_for_calls(&sim, at).await;
            let moment = rand::Rng::random_range(&mut rng, 0..60);
            tokio::time::sleep(Duration::from_millis(moment)).await;
            kill(&mut child);
            let verified = octo(&["verify"]).status().expect("verify runs");
            assert!(verified.success(), "invsync verify failed after a crash");
        }
        let mut child = octo(&["serve"]).spawn().unwrap();
        let start = Instant::now();
        while fetched_days(&backend).await < days {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "backfill never finished"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        kill(&mut child);
        assert!(octo(&["verify"]).status().expect("verify runs").success());
        for date in invsync::config::Settings::default()
            .partner
            .today()
            .iter_days()
            .take(HORIZON_DAYS)
        {
            for id in [14, 15] {
                let served = backend
                    .store
                    .slots_on(experience(id), date)
                    .await
                    .expect("slots");
                let truth = sim.sim.inventory(experience(id), date).expect("day");
                assert_eq!(
                    served.len(),
                    truth.len(),
                    "{}: {id} on {date}",
                    backend.name
                );
            }
        }
    }
}

#[tokio::test]
async fn sigterm_mid_sync_exits_zero_within_ten_seconds() {
    for backend in backends().await {
        let sim = start_simulator().await;
        let dir = tempfile::tempdir().unwrap();
        let mut child = invsync(dir.path(), &backend.url, &sim, &["serve"])
            .spawn()
            .unwrap();
        wait_for_calls(&sim, 10).await;
        let sent = Instant::now();
        let status = Command::new("kill")
            .args(["-s", "TERM", &child.id().to_string()])
            .status()
            .expect("kill -s TERM");
        assert!(status.success());
        let exit = loop {
            if let Some(exit) = child.try_wait().expect("child status") {
                break exit;
            }
            assert!(
                sent.elapsed() < Duration::from_secs(10),
                "still running after SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(exit.success(), "exit status {exit}");
        verify_passes(dir.path(), &backend.url, &sim);
        let calls_at_exit = sim.sim.calls().len();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(sim.sim.calls().len(), calls_at_exit, "calls after exit");
    }
}

/// `invsync sync` beside a running daemon does not poll; it says how to ask the daemon.
#[tokio::test]
async fn a_one_shot_sync_beside_a_daemon_names_the_trigger_to_use() {
    for backend in backends().await {
        let sim = start_simulator().await;
        let dir = tempfile::tempdir().expect("temp dir");
        let daemon_lease = backend
            .store
            .acquire_lease("running-daemon", Duration::from_secs(60))
            .await
            .expect("lease read");
        assert!(daemon_lease.is_some());
        let from = invsync::config::Settings::default().partner.today();
        let output = invsync(
            dir.path(),
            &backend.url,
            &sim,
            &["sync", "--experience", "14", "--from", &from.to_string()],
        )
        .env("INVSYNC_SERVER__LISTEN", "127.0.0.1:8080")
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("sync runs");
        assert!(!output.status.success(), "{}", backend.name);
        let message = String::from_utf8_lossy(&output.stderr);
        for expected in [
            "running-daemon",
            "POST /api/v1/sync/trigger",
            "curl -X POST",
            "\"experience\":14",
            &format!("\"from\":\"{from}\""),
            "http://127.0.0.1:8080/api/v1/sync/trigger",
        ] {
            assert!(message.contains(expected), "{expected} missing: {message}");
        }
        assert!(sim.sim.calls().is_empty(), "the partner was called");
    }
}
