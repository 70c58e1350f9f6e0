//! Several `invsync serve` processes on one database: exactly one polls the partner, a pause
//! sent to any of them is obeyed, and when the leader dies another takes over without
//! breaching the rate limit or posting twice.

mod common;

use std::process::Child;
use std::time::{Duration, Instant};

use common::*;
use invsync::simulator::{Simulator, SimulatorConfig, SimulatorHandle};
use serde_json::Value;

const RATE: u32 = 120;
const HORIZON_DAYS: usize = 30;

struct Instance {
    name: &'static str,
    base: String,
    child: Child,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

fn spawn_instance(
    name: &'static str,
    database_url: &str,
    sim: &SimulatorHandle,
    dir: &std::path::Path,
) -> Instance {
    let port = free_port();
    let child = invsync_command(dir, database_url, sim, RATE, HORIZON_DAYS, &["serve"])
        .env("INVSYNC_SYNC__INSTANCE_ID", name)
        .env("INVSYNC_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("INVSYNC_SERVER__ADMIN_TOKEN", ADMIN_TOKEN)
        .spawn()
        .expect("invsync serve starts");
    Instance {
        name,
        base: format!("http://127.0.0.1:{port}"),
        child,
    }
}

impl Instance {
    async fn status(&self) -> Option<Value> {
        let response = reqwest::get(format!("{}/api/v1/sync/status", self.base))
            .await
            .ok()?;
        response.json().await.ok()
    }

    async fn post(&self, path: &str) -> u16 {
        reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }
}

async fn wait_until(limit: Duration, what: &str, mut done: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !done().await {
        assert!(
            start.elapsed() < limit,
            "{what} did not happen within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn role(instance: &Instance) -> Option<String> {
    instance
        .status()
        .await
        .and_then(|s| s["role"].as_str().map(String::from))
}

async fn calls(instance: &Instance) -> u64 {
    instance
        .status()
        .await
        .and_then(|s| s["counters"]["calls"].as_u64())
        .unwrap_or(0)
}

#[tokio::test]
async fn one_leader_polls_a_pause_anywhere_is_obeyed_and_a_follower_takes_over() {
    for backend in backends().await {
        let sim: SimulatorHandle = Simulator::new(SimulatorConfig {
            rate_limit_per_minute: std::num::NonZeroU32::new(RATE).unwrap(),
            ..SimulatorConfig::new(invsync::domain::Secret::new(SIM_KEY))
        })
        .spawn_local()
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut instances = [
            spawn_instance("alpha", &backend.url, &sim, dir.path()),
            spawn_instance("beta", &backend.url, &sim, dir.path()),
        ];
        wait_until(
            Duration::from_secs(30),
            "both instances serving",
            async || role(&instances[0]).await.is_some() && role(&instances[1]).await.is_some(),
        )
        .await;
        wait_until(Duration::from_secs(30), "a leader", async || {
            role(&instances[0]).await.as_deref() == Some("leader")
                || role(&instances[1]).await.as_deref() == Some("leader")
        })
        .await;
        let leader = if role(&instances[0]).await.as_deref() == Some("leader") {
            0
        } else {
            1
        };
        let follower = 1 - leader;
        wait_until(Duration::from_secs(30), "partner calls", async || {
            sim.sim.calls().len() >= 10
        })
        .await;
        assert_eq!(
            role(&instances[follower]).await.as_deref(),
            Some("follower")
        );
        assert_eq!(calls(&instances[follower]).await, 0, "the follower polled");
        let status = instances[follower].status().await.unwrap();
        assert_eq!(status["leader"], instances[leader].name);

        // A pause sent to the follower stops the leader's calls within 2 s.
        assert_eq!(instances[follower].post("/api/v1/sync/pause").await, 200);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let paused_at = sim.sim.calls().len();
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(
            sim.sim.calls().len(),
            paused_at,
            "the leader kept calling while paused"
        );
        assert_eq!(instances[follower].post("/api/v1/sync/resume").await, 200);
        wait_until(Duration::from_secs(10), "calls after resume", async || {
            sim.sim.calls().len() > paused_at
        })
        .await;

        // The leader dies; the follower takes over within 30 s and finishes the backfill.
        instances[leader].child.kill().unwrap();
        instances[leader].child.wait().unwrap();
        let killed = Instant::now();
        wait_until(Duration::from_secs(30), "takeover", async || {
            role(&instances[follower]).await.as_deref() == Some("leader")
        })
        .await;
        assert!(killed.elapsed() < Duration::from_secs(30));
        let days = 2 * HORIZON_DAYS;
        wait_until(Duration::from_secs(90), "the backfill", async || {
            let today = invsync::config::Settings::default().partner.today();
            backend
                .store
                .last_fetches(today, today + chrono::Days::new(HORIZON_DAYS as u64))
                .await
                .map(|fetched| fetched.len() >= days)
                .unwrap_or(false)
        })
        .await;
        instances[follower].child.kill().unwrap();
        instances[follower].child.wait().unwrap();

        let calls = sim.sim.calls();
        assert!(
            calls.iter().all(|call| call.status == 200),
            "a call was refused"
        );
        assert!(sim.sim.max_calls_in_any_window(Duration::from_secs(60)) <= RATE as usize);
        // At most the call in flight when the leader died is repeated.
        assert!(
            calls.len() <= days + 2,
            "{}: {} calls for {days} days",
            backend.name,
            calls.len()
        );
        let report = backend.store.verify().await.unwrap();
        assert!(report.ok, "{report:?}");
    }
}
