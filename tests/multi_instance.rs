//! Several `invsync serve` processes on one database: exactly one polls the partner (of either
//! kind), a pause sent to any of them is obeyed, and when the leader dies another takes over
//! without breaching the rate limit or posting twice.

mod common;

use std::process::Child;
use std::time::{Duration, Instant};

use common::*;
use invsync::config::PartnerKind;
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

/// The most days an OCTO range reads here: short, so a backfill is many calls.
const OCTO_DAYS_PER_CALL: usize = 3;

/// Makes `command` sync from the simulator as a partner of `kind`.
fn speaking(kind: PartnerKind, sim: &SimulatorHandle) -> impl FnOnce(&mut std::process::Command) {
    let octo = format!("{}/octo", sim.base_url());
    move |command| {
        if kind == PartnerKind::Octo {
            command
                .env("INVSYNC_PARTNER__KIND", "octo")
                .env("INVSYNC_PARTNER__BASE_URL", octo)
                .env(
                    "INVSYNC_PARTNER__DAYS_PER_CALL",
                    OCTO_DAYS_PER_CALL.to_string(),
                );
        }
    }
}

fn spawn_instance_with(
    name: &'static str,
    database_url: &str,
    sim: &SimulatorHandle,
    dir: &std::path::Path,
    configure: impl FnOnce(&mut std::process::Command),
) -> Instance {
    let port = free_port();
    let mut command = invsync_command(dir, database_url, sim, RATE, HORIZON_DAYS, &["serve"]);
    command
        .env("INVSYNC_SYNC__INSTANCE_ID", name)
        .env("INVSYNC_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("INVSYNC_SERVER__ADMIN_TOKEN", ADMIN_TOKEN);
    configure(&mut command);
    let child = command.spawn().expect("invsync serve starts");
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
    for kind in PARTNER_KINDS {
        for backend in backends().await {
            one_leader_for(kind, backend).await;
        }
    }
}

/// The simulator enforcing the instances' shared limit, [`RATE`] a minute.
async fn simulator_at_rate() -> SimulatorHandle {
    Simulator::new(SimulatorConfig {
        rate_limit_per_minute: std::num::NonZeroU32::new(RATE).unwrap(),
        ..SimulatorConfig::new(invsync::domain::Secret::new(SIM_KEY))
    })
    .spawn_local()
    .await
    .unwrap()
}

async fn one_leader_for(kind: PartnerKind, backend: TestStore) {
    let sim = simulator_at_rate().await;
    let dir = tempfile::tempdir().unwrap();
    let mut instances = [
        spawn_instance_with(
            "alpha",
            &backend.url,
            &sim,
            dir.path(),
            speaking(kind, &sim),
        ),
        spawn_instance_with("beta", &backend.url, &sim, dir.path(), speaking(kind, &sim)),
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
    // At most the call in flight when the leader died is repeated (from an OCTO partner,
    // each instance also reads the two products once, and a range covers several days).
    let most = match kind {
        PartnerKind::Leap => days + 2,
        PartnerKind::Octo => days + 2 + 4,
    };
    assert!(
        calls.len() <= most,
        "{} {kind:?}: {} calls for {days} days",
        backend.name,
        calls.len()
    );
    if kind == PartnerKind::Octo {
        assert!(
            calls.iter().any(|call| call.last_date > call.date),
            "no call read a range"
        );
    }
    let report = backend.store.verify().await.unwrap();
    assert!(report.ok, "{report:?}");
}

/// The lease in the stall test: short, so the test is too.
const STALL_LEASE: Duration = Duration::from_secs(3);

/// The instances of a test, resumed and killed however it ends: a stopped process is never
/// left behind.
struct Running([Instance; 2]);

impl Drop for Running {
    fn drop(&mut self) {
        for instance in &mut self.0 {
            signal(&instance.child, libc::SIGCONT);
            let _ = instance.child.kill();
            let _ = instance.child.wait();
        }
    }
}

fn signal(child: &Child, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).expect("a pid");
    // SAFETY: kill(2) takes no pointers; the pid is our own child's, not yet reaped.
    unsafe { libc::kill(pid, signal) };
}

/// Which instance made `call`, from the User-Agent that names it.
fn caller(call: &invsync::simulator::CallRecord) -> &'static str {
    let client = call.client.as_deref().unwrap_or_default();
    ["alpha", "beta"]
        .into_iter()
        .find(|name| client.ends_with(&format!("({name})")))
        .unwrap_or_else(|| panic!("a call from an unknown client {client:?}"))
}

/// A leader stopped (SIGSTOP) for longer than its lease, while the follower takes over and
/// calls, makes no call when it is continued: its hold on the lease is over by its own clock,
/// so it withholds its calls and becomes a follower. Two pacers never share the key. For a
/// Leap partner and for an OCTO supplier.
#[tokio::test]
async fn a_leader_stalled_past_its_lease_makes_no_call_after_the_takeover() {
    for kind in PARTNER_KINDS {
        let Some(backend) = postgres_store().await else {
            return;
        };
        stalled_leader_of(kind, &backend).await;
    }
}

async fn stalled_leader_of(kind: PartnerKind, backend: &TestStore) {
    let sim = simulator_at_rate().await;
    let dir = tempfile::tempdir().unwrap();
    let short_lease = |command: &mut std::process::Command| {
        command.env(
            "INVSYNC_SYNC__LEASE_SECONDS",
            STALL_LEASE.as_secs().to_string(),
        );
        speaking(kind, &sim)(command);
    };
    let running = Running([
        spawn_instance_with("alpha", &backend.url, &sim, dir.path(), short_lease),
        spawn_instance_with("beta", &backend.url, &sim, dir.path(), short_lease),
    ]);
    wait_until(Duration::from_secs(30), "partner calls", async || {
        sim.sim.calls().len() >= 6
    })
    .await;
    let leader_name = caller(sim.sim.calls().last().expect("a call"));
    let leader = usize::from(leader_name == "beta");
    let follower = 1 - leader;
    let follower_name = running.0[follower].name;

    signal(&running.0[leader].child, libc::SIGSTOP);
    let stopped = Instant::now();
    let calls_at_stop = sim.sim.calls().len();
    wait_until(
        Duration::from_secs(20),
        "the follower's calls",
        async || {
            sim.sim.calls()[calls_at_stop..]
                .iter()
                .filter(|call| caller(call) == follower_name)
                .count()
                >= 6
        },
    )
    .await;
    // Stalled for two leases at least.
    tokio::time::sleep((2 * STALL_LEASE).saturating_sub(stopped.elapsed())).await;
    signal(&running.0[leader].child, libc::SIGCONT);
    wait_until(
        Duration::from_secs(10),
        "the woken leader following",
        async || role(&running.0[leader]).await.as_deref() == Some("follower"),
    )
    .await;
    // The new leader calls on; the woken one must not join in.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(role(&running.0[follower]).await.as_deref(), Some("leader"));
    drop(running);

    let calls = sim.sim.calls();
    let describe = || {
        calls
            .iter()
            .map(|call| {
                let at = call.arrived.saturating_duration_since(calls[0].arrived);
                format!("{:>7.3} s {}", at.as_secs_f64(), caller(call))
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        calls.iter().all(|call| call.status == 200),
        "{kind:?}: a call was refused:\n{}",
        describe()
    );
    let after_stop = &calls[calls_at_stop..];
    let takeover = after_stop
        .iter()
        .position(|call| caller(call) == follower_name)
        .expect("the follower called");
    assert!(
        after_stop[takeover..]
            .iter()
            .all(|call| caller(call) == follower_name),
        "{kind:?}: {leader_name} called after {follower_name} took over:\n{}",
        describe()
    );
    // Each change of caller (the takeover, any earlier one) keeps at least one pacing
    // period, the least a successor waits after the last call of a leader stopped a margin
    // before its lease ran out.
    let period = Duration::from_secs(60) / RATE;
    for pair in calls.windows(2) {
        if caller(&pair[0]) != caller(&pair[1]) {
            assert!(
                pair[1].arrived - pair[0].arrived >= period,
                "{kind:?}: two pacers too close:\n{}",
                describe()
            );
        }
    }
    // The partner's limit, in the minute and scaled to ten seconds (one pacer's slots, one of
    // them up to half a period late, and a little network jitter).
    assert!(sim.sim.max_calls_in_any_window(Duration::from_secs(60)) <= RATE as usize);
    let ten_seconds = Duration::from_secs(10);
    let budget = (ten_seconds.as_secs() * u64::from(RATE) / 60) as usize;
    assert!(
        sim.sim.max_calls_in_any_window(ten_seconds) <= budget + 2,
        "{kind:?}: over the pace:\n{}",
        describe()
    );
}
