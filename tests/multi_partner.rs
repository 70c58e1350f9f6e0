//! One daemon, several partners: a Leap partner (experience 14) and an OCTO supplier
//! (experience 15) synced side by side from the simulator's two faces, each through its own
//! client, key, pacer and pause, on both backends.

mod common;

use std::num::NonZeroU32;
use std::time::Duration;

use common::*;
use invsync::config::{BaseUrl, PartnerKind, PartnerSettings, Settings};
use invsync::simulator::CallRecord;
use serde_json::Value;

const LEAP_PER_MINUTE: u32 = 240;
const OCTO_PER_MINUTE: u32 = 120;
const OCTO_DAYS_PER_CALL: u32 = 3;

/// `[partners.leap]` syncing 14 and `[partners.octo]` syncing 15 from the simulator.
fn two_partners(settings: &mut Settings) {
    settings.sync.horizon_days =
        serde_json::from_value(serde_json::json!(DAEMON_HORIZON_DAYS)).expect("horizon");
    let rate = |per_minute| NonZeroU32::new(per_minute).expect("non-zero");
    let leap = PartnerSettings {
        kind: PartnerKind::Leap,
        experiences: vec![experience(14)],
        rate_limit_per_minute: rate(LEAP_PER_MINUTE),
        ..settings.partner.clone()
    };
    let octo = PartnerSettings {
        kind: PartnerKind::Octo,
        base_url: BaseUrl(settings.partner.base_url.0.join("octo").expect("OCTO URL")),
        experiences: vec![experience(15)],
        rate_limit_per_minute: rate(OCTO_PER_MINUTE),
        days_per_call: rate(OCTO_DAYS_PER_CALL),
        ..settings.partner.clone()
    };
    settings.partners = [("leap".to_string(), leap), ("octo".to_string(), octo)].into();
}

fn partner<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["partners"]
        .as_array()
        .and_then(|partners| partners.iter().find(|p| p["partner"]["name"] == name))
        .unwrap_or_else(|| panic!("no partner {name} in {status}"))
}

/// The simulator's calls of one face: Leap's inventory route or OCTO's.
fn calls_of(calls: &[CallRecord], octo: bool) -> Vec<&CallRecord> {
    calls.iter().filter(|c| c.route.is_octo() == octo).collect()
}

/// No two consecutive calls closer than the partner's pacing period (less a scheduling
/// tolerance).
fn assert_paced(calls: &[&CallRecord], per_minute: u32, what: &str) {
    let period = Duration::from_secs(60) / per_minute;
    for pair in calls.windows(2) {
        let gap = pair[1].arrived.duration_since(pair[0].arrived);
        assert!(
            gap >= period.mul_f64(0.9),
            "{what}: calls {gap:?} apart, its pacing period is {period:?}"
        );
    }
}

#[tokio::test]
async fn a_leap_and_an_octo_partner_sync_side_by_side_each_at_its_own_rate() {
    for backend in backends().await {
        let name = backend.name;
        let app = spawn_app_with(backend, two_partners).await;
        let status = app.wait_for_status(Duration::from_secs(30), drained).await;
        let today = app.today();
        for date in today.iter_days().take(DAEMON_HORIZON_DAYS as usize) {
            app.assert_served_equals_simulator(date).await;
        }

        let (leap, octo) = (partner(&status, "leap"), partner(&status, "octo"));
        assert_eq!(leap["partner"]["kind"], "leap", "{name}");
        assert_eq!(octo["partner"]["kind"], "octo", "{name}");
        assert_eq!(
            (
                leap["rateLimitPerMinute"].clone(),
                leap["daysPerCall"].clone()
            ),
            (LEAP_PER_MINUTE.into(), 1.into()),
            "{name}"
        );
        assert_eq!(
            (
                octo["rateLimitPerMinute"].clone(),
                octo["daysPerCall"].clone()
            ),
            (OCTO_PER_MINUTE.into(), OCTO_DAYS_PER_CALL.into()),
            "{name}"
        );
        assert_eq!(
            status["rateLimitPerMinute"],
            LEAP_PER_MINUTE + OCTO_PER_MINUTE,
            "{name}: the daemon's total"
        );
        assert_eq!(status["state"], "running", "{name}");

        let calls = app.sim.sim.calls();
        assert!(calls.iter().all(|c| c.status == 200), "{name}: {calls:?}");
        let (leap_calls, octo_calls) = (calls_of(&calls, false), calls_of(&calls, true));
        // Leap: one call per day of 14. OCTO: the product, then 7 days of 15 in ranges of 3.
        assert_eq!(leap_calls.len(), DAEMON_HORIZON_DAYS as usize, "{name}");
        assert!(
            leap_calls
                .iter()
                .all(|c| c.experience == Some(experience(14))),
            "{name}: {leap_calls:?}"
        );
        assert_eq!(octo_calls.len(), 1 + 3, "{name}: {octo_calls:?}");
        assert!(
            octo_calls
                .iter()
                .all(|c| c.experience.is_none_or(|id| id == experience(15))),
            "{name}: {octo_calls:?}"
        );
        assert_paced(&leap_calls, LEAP_PER_MINUTE, name);
        assert_paced(&octo_calls, OCTO_PER_MINUTE, name);
        // Side by side, not one after the other: each pacer runs on its own.
        assert!(
            octo_calls[0].arrived < leap_calls[leap_calls.len() - 1].arrived,
            "{name}: the OCTO supplier waited for the Leap partner"
        );
        assert!(app.backend.store.verify().await.expect("verify").ok);
    }
}

#[tokio::test]
async fn each_partner_is_paused_resumed_and_triggered_on_its_own() {
    for backend in backends().await {
        let name = backend.name;
        let app = spawn_app_with(backend, two_partners).await;
        app.wait_for_status(Duration::from_secs(30), drained).await;
        let admin = Some(ADMIN_TOKEN);

        let (code, status) = app
            .post("/api/v1/sync/pause?partner=octo", admin, None)
            .await;
        assert_eq!(code, 200, "{name}: {status}");
        assert_eq!(partner(&status, "octo")["state"], "paused", "{name}");
        assert_eq!(partner(&status, "leap")["state"], "running", "{name}");
        assert_eq!(
            status["state"], "running",
            "{name}: not every partner is paused"
        );

        let (code, body) = app
            .post("/api/v1/sync/pause?partner=nope", admin, None)
            .await;
        assert_eq!(
            (code, body["code"].as_str()),
            (404, Some("unknown_partner")),
            "{body}"
        );
        let (code, body) = app
            .post("/api/v1/sync/resume?partner=leap&partner=octo", admin, None)
            .await;
        assert_eq!((code, body["code"].as_str()), (400, Some("invalid_body")));

        // A re-sync of everything: the Leap partner's days are fetched, the paused
        // supplier's wait in its queue.
        let before = app.sim.sim.calls();
        let (_, status) = app.get("/api/v1/sync/status").await;
        let applied = |status: &Value| partner(status, "leap")["counters"]["daysApplied"].as_u64();
        let applied_before = applied(&status).unwrap_or_default();
        let (code, body) = app.post("/api/v1/sync/trigger", admin, None).await;
        assert_eq!(code, 202, "{name}: {body}");
        assert_eq!(body["queued"], 2 * DAEMON_HORIZON_DAYS, "{name}");
        // Each partner's engine takes its own requests on its own poll.
        let status = app
            .wait_for_status(Duration::from_secs(30), |status| {
                let (leap, octo) = (partner(status, "leap"), partner(status, "octo"));
                applied(status) >= Some(applied_before + u64::from(DAEMON_HORIZON_DAYS))
                    && leap["pending"] == 0
                    && leap["inFlight"] == 0
                    && octo["pending"] == DAEMON_HORIZON_DAYS
            })
            .await;
        assert_eq!(
            partner(&status, "octo")["pending"],
            DAEMON_HORIZON_DAYS,
            "{name}"
        );
        let after = app.sim.sim.calls();
        let new = &after[before.len()..];
        assert_eq!(
            calls_of(new, false).len(),
            DAEMON_HORIZON_DAYS as usize,
            "{name}"
        );
        assert!(calls_of(new, true).is_empty(), "{name}: {new:?}");

        let metrics = app
            .http
            .get(format!("{}/metrics", app.base))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text");
        assert!(
            metrics.contains(r#"invsync_sync_paused{partner="octo"} 1"#)
                && metrics.contains(r#"invsync_sync_paused{partner="leap"} 0"#),
            "{name}: {metrics}"
        );

        let (code, _) = app
            .post("/api/v1/sync/resume?partner=octo", admin, None)
            .await;
        assert_eq!(code, 200, "{name}");
        app.wait_for_status(Duration::from_secs(30), |status| {
            partner(status, "octo")["pending"] == 0 && drained(status)
        })
        .await;
        let resumed = app.sim.sim.calls();
        assert!(
            calls_of(&resumed[after.len()..], true)
                .iter()
                .any(|c| c.route == invsync::simulator::CallRoute::OctoAvailability),
            "{name}: the supplier's queued days were fetched once it was resumed"
        );

        // Without `?partner=`, every partner.
        let (_, status) = app.post("/api/v1/sync/pause", admin, None).await;
        assert_eq!(status["state"], "paused", "{name}");
        assert_eq!(partner(&status, "leap")["state"], "paused", "{name}");
        let (_, status) = app.post("/api/v1/sync/resume", admin, None).await;
        assert_eq!(status["state"], "running", "{name}");
        assert_eq!(partner(&status, "octo")["state"], "running", "{name}");
    }
}

/// `invsync --config fixtures/two-partners.toml ARGS` in `dir`, with a clean environment.
fn with_two_partners(dir: &std::path::Path, args: &[&str]) -> std::process::Command {
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/two-partners.toml");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_invsync"));
    command
        .args(["--config", fixture])
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    command
}

/// `invsync --config fixtures/two-partners.toml demo`: the real binary syncs product 14 from
/// the simulator's Leap face and 15 from its OCTO face, each partner at its own 30 a minute.
#[tokio::test]
async fn the_two_partner_demo_syncs_both_partners() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port");
    let listen = format!("127.0.0.1:{port}");
    let mut child = with_two_partners(dir.path(), &["demo", "--listen", &listen])
        .env("INVSYNC_SYNC__HORIZON_DAYS", "2")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("invsync demo starts");
    let http = reqwest::Client::new();
    let status_url = format!("http://{listen}/api/v1/sync/status");
    let start = std::time::Instant::now();
    let status = loop {
        let status: Option<Value> = match http.get(&status_url).send().await {
            Ok(response) => response.json().await.ok(),
            Err(_) => None,
        };
        if let Some(status) = &status
            && drained(status)
            && status["partners"].is_array()
        {
            break status.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the demo did not sync both partners: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    for (name, kind) in [("leap", "leap"), ("octo", "octo")] {
        let synced = partner(&status, name);
        assert_eq!(synced["partner"]["kind"], kind, "{status}");
        assert_eq!(synced["rateLimitPerMinute"], 30, "{status}");
        assert_eq!(synced["counters"]["daysApplied"], 2, "{name}: {status}");
    }
}

/// `invsync --config fixtures/two-partners.toml sync`: one paced pass over each partner's
/// experiences, through each one's own face of the simulator, every day stored.
#[tokio::test]
async fn a_one_shot_sync_reads_each_partners_experiences_from_it() {
    for backend in backends().await {
        let name = backend.name;
        let app = spawn_app(backend).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let sim = app.sim.base_url();
        let today = app.today();
        let to = today.succ_opt().expect("tomorrow").to_string();
        let mut command = with_two_partners(dir.path(), &["sync", "--to", &to]);
        command
            .env("INVSYNC_DATABASE__URL", &app.backend.url)
            .env("INVSYNC_PARTNERS__LEAP__BASE_URL", &sim)
            .env("INVSYNC_PARTNERS__LEAP__API_KEY", SIM_KEY)
            .env("INVSYNC_PARTNERS__LEAP__RATE_LIMIT_PER_MINUTE", "600")
            .env("INVSYNC_PARTNERS__OCTO__BASE_URL", format!("{sim}/octo"))
            .env("INVSYNC_PARTNERS__OCTO__API_KEY", SIM_KEY)
            .env("INVSYNC_PARTNERS__OCTO__RATE_LIMIT_PER_MINUTE", "600")
            .env("RUST_LOG", "warn");
        // Off the runtime's thread: the simulator answers on it.
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("the sync's thread")
            .expect("invsync sync runs");
        let printed = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{name}: {printed}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            printed.contains("leap: fetched 2 product-days")
                && printed.contains("octo: fetched 2 product-days"),
            "{name}: {printed}"
        );
        let calls = app.sim.sim.calls();
        let (leap_calls, octo_calls) = (calls_of(&calls, false), calls_of(&calls, true));
        assert!(
            leap_calls
                .iter()
                .all(|c| c.experience == Some(experience(14))),
            "{name}: {leap_calls:?}"
        );
        assert!(
            octo_calls
                .iter()
                .all(|c| c.experience.is_none_or(|id| id == experience(15))),
            "{name}: {octo_calls:?}"
        );
        for date in [today, today.succ_opt().expect("tomorrow")] {
            app.assert_day_served_equals_simulator(PartnerKind::Leap, experience(14), date)
                .await;
            app.assert_day_served_equals_simulator(PartnerKind::Octo, experience(15), date)
                .await;
        }
        assert!(
            app.backend.store.verify().await.expect("verify").ok,
            "{name}"
        );
    }
}

/// `invsync plan` with several partners: each one's budget at its own rate limit and kind.
#[test]
fn the_plan_prints_each_partners_budget() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = with_two_partners(dir.path(), &["plan", "--products", "450"])
        .output()
        .expect("invsync plan runs");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{printed}");
    let (leap, octo) = printed
        .split_once("partners.octo:")
        .unwrap_or_else(|| panic!("no OCTO partner's plan: {printed}"));
    assert!(
        leap.contains("partners.leap:") && leap.contains("one day per call"),
        "{leap}"
    );
    assert!(
        octo.contains("up to 31 days of a product per call (octo partner)"),
        "{octo}"
    );
    for plan in [leap, octo] {
        assert!(plan.contains("43200 calls/day"), "{plan}");
    }
}
