//! The daemon over HTTP: operator controls, authentication, and backfills through partner
//! faults (each kind alone, then all at once), against the real server on port 0 and the
//! simulator.

mod common;

use std::time::Duration;

use chrono::{Days, NaiveDate};
use common::*;
use invsync::simulator::{CallRecord, Fault, Faults};
use serde_json::{Value, json};

/// Share of calls spoiled by the fault under test: most days meet it, and one day meeting it
/// on all six of its tries (retries exhausted) is a one in 4,000 chance per day.
const FAULT_PERCENT: u8 = 25;

/// The client gives up on a call after 1 s (`spawn_app_with`); a slow answer within that is
/// waited for.
const SLOW_BUT_IN_TIME_MS: u64 = 300;
const TOO_SLOW_MS: u64 = 1_500;

/// Backfills the daemon's horizon through `faults` (and a 429 storm of `storm`, if any), from
/// its very first call, and checks that nothing was lost, skipped or doubled and that status
/// counted every call. Returns the partner's call log, for the caller's own checks.
async fn backfill_through(
    backend: TestStore,
    faults: Faults,
    storm: Option<Duration>,
) -> Vec<CallRecord> {
    let app = spawn_daemon(backend).await;
    // The daemon makes no call before this test first awaits: the very first call meets these.
    app.sim.sim.set_faults(faults.clone()).unwrap();
    if let Some(storm) = storm {
        app.sim.sim.start_rate_limit_storm(storm);
    }
    let status = app.wait_for_status(Duration::from_secs(90), drained).await;
    let name = app.backend.name;
    let calls = app.sim.sim.calls();
    assert_eq!(status["state"], "running", "{name}");
    assert!(
        status["parked"].as_array().unwrap().is_empty(),
        "{name}: {status}"
    );

    // Every call is counted: each spoiled or refused one as a retry or a 429, each good one as
    // exactly one applied day.
    let slow_fails = faults.slow_delay_ms >= app.settings.partner.request_timeout_seconds * 1_000;
    let failed = |call: &&CallRecord| match call.fault {
        Some(Fault::Slow) => slow_fails,
        fault => fault.is_some(),
    };
    let refused = |call: &&CallRecord| call.status == 429;
    let counter = |name: &str| status["counters"][name].as_u64().unwrap();
    let counted = ["calls", "retries", "rateLimited", "failures", "daysApplied"].map(counter);
    let (failed, refused) = (
        calls.iter().filter(failed).count() as u64,
        calls.iter().filter(refused).count() as u64,
    );
    let total = calls.len() as u64;
    assert_eq!(
        counted,
        [total, failed, refused, 0, total - failed - refused],
        "{name}: [calls, retries, rateLimited, failures, daysApplied] against the partner's log"
    );

    // Nothing skipped, nothing doubled: every day is served as the partner holds it, and the
    // ledger holds exactly one opening per pool.
    let today = app.today();
    let mut openings = 0;
    for offset in 0..u64::from(DAEMON_HORIZON_DAYS) {
        let day = today.checked_add_days(Days::new(offset)).unwrap();
        app.assert_served_equals_simulator(day).await;
        openings += assert_one_opening_per_pool(&app, day).await;
    }
    assert_eq!(counter("transfersPosted"), openings, "{name}");
    let (_, report) = app.verify().await;
    assert_eq!(report["ok"], true, "{name}: {report}");
    calls
}

/// Asserts that every pool with seats on `day` has exactly one posting, its opening for the
/// seats served, and returns how many there are.
async fn assert_one_opening_per_pool(app: &TestApp, day: NaiveDate) -> u64 {
    let mut openings = 0;
    for &id in &app.settings.partner.experiences {
        let (_, slots) = app
            .get(&format!("/api/v1/experience/{id}/slots?date={day}"))
            .await;
        for slot in slots.as_array().unwrap() {
            let start = slot["startTime"].as_str().unwrap();
            let (status, history) = app
                .get(&format!(
                    "/api/v1/experience/{id}/slots/history?date={day}&startTime={start}"
                ))
                .await;
            assert_eq!(status, 200, "{history}");
            let pools = std::iter::once((Value::Null, &slot["remaining"])).chain(
                slot["paxAvailability"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|pax| (pax["type"].clone(), &pax["remaining"])),
            );
            let mut expected: Vec<String> = pools
                .filter(|(_, seats)| seats.as_i64() != Some(0))
                .map(|(pool, seats)| format!("{pool}: +{seats} = {seats}"))
                .collect();
            let mut posted: Vec<String> = history["postings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| format!("{}: +{} = {}", p["paxType"], p["amount"], p["balanceAfter"]))
                .collect();
            expected.sort();
            posted.sort();
            assert_eq!(posted, expected, "{}: {id} {day} {start}", app.backend.name);
            openings += posted.len() as u64;
        }
    }
    openings
}

/// Backfills through one fault kind at [`FAULT_PERCENT`] and checks the partner did inject it.
async fn backfill_through_one(fault: Fault, faults: Faults) {
    for backend in backends().await {
        let calls = backfill_through(backend, faults.clone(), None).await;
        assert!(
            calls.iter().any(|call| call.fault == Some(fault)),
            "no {fault:?} was injected"
        );
    }
}

#[tokio::test]
async fn server_errors_are_retried_counted_and_lose_nothing() {
    let faults = Faults {
        server_error_percent: FAULT_PERCENT,
        ..Faults::default()
    };
    backfill_through_one(Fault::ServerError, faults).await;
}

#[tokio::test]
async fn timeouts_are_retried_counted_and_lose_nothing() {
    let faults = Faults {
        slow_percent: FAULT_PERCENT,
        slow_delay_ms: TOO_SLOW_MS,
        ..Faults::default()
    };
    backfill_through_one(Fault::Slow, faults).await;
}

#[tokio::test]
async fn slow_answers_within_the_timeout_are_waited_for_not_retried() {
    let faults = Faults {
        slow_percent: FAULT_PERCENT,
        slow_delay_ms: SLOW_BUT_IN_TIME_MS,
        ..Faults::default()
    };
    backfill_through_one(Fault::Slow, faults).await;
}

#[tokio::test]
async fn garbage_bodies_are_retried_counted_and_lose_nothing() {
    let faults = Faults {
        garbage_percent: FAULT_PERCENT,
        ..Faults::default()
    };
    backfill_through_one(Fault::Garbage, faults).await;
}

#[tokio::test]
async fn truncated_bodies_are_retried_counted_and_lose_nothing() {
    let faults = Faults {
        truncated_percent: FAULT_PERCENT,
        ..Faults::default()
    };
    backfill_through_one(Fault::Truncated, faults).await;
}

#[tokio::test]
async fn a_429_storm_holds_every_caller_until_the_reset_and_loses_nothing() {
    for backend in backends().await {
        let calls =
            backfill_through(backend, Faults::default(), Some(Duration::from_secs(2))).await;
        let refused = calls.iter().filter(|call| call.status == 429).count();
        // Only the calls already past the pacer when the first 429 came back are refused.
        assert!((1..=3).contains(&refused), "{refused} calls refused");
    }
}

#[tokio::test]
async fn all_faults_at_once_and_a_429_storm_lose_nothing() {
    for backend in backends().await {
        let faults = Faults {
            server_error_percent: 10,
            slow_percent: 5,
            slow_delay_ms: TOO_SLOW_MS,
            garbage_percent: 5,
            truncated_percent: 5,
        };
        let calls = backfill_through(backend, faults, Some(Duration::from_millis(300))).await;
        assert!(calls.iter().any(|call| call.fault.is_some()));
    }
}

#[tokio::test]
async fn controls_need_the_admin_token_and_status_is_public() {
    for backend in backends().await {
        let app = spawn_daemon(backend).await;
        for path in [
            "/api/v1/sync/pause",
            "/api/v1/sync/resume",
            "/api/v1/sync/trigger",
        ] {
            for token in [None, Some("wrong"), Some("")] {
                let (status, body) = app.post(path, token, None).await;
                assert_eq!(
                    (status, body["code"].as_str()),
                    (401, Some("unauthorized")),
                    "{path}"
                );
            }
        }
        let (status, body) = app.get("/api/v1/sync/status").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["rateLimitPerMinute"], 60_000);
        let tiers: Vec<&str> = body["tiers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(tiers, ["today", "week", "month", "horizon"]);
    }
}

#[tokio::test]
async fn pause_and_resume_are_idempotent_and_survive_a_restart() {
    for backend in backends().await {
        let app = spawn_daemon(backend).await;
        let (status, first) = app
            .post(
                "/api/v1/sync/pause",
                Some(ADMIN_TOKEN),
                Some(json!({"reason": "partner incident"})),
            )
            .await;
        assert_eq!(status, 200, "{first}");
        assert_eq!(first["state"], "paused");
        assert_eq!(first["pauseReason"], "partner incident");
        let (_, again) = app
            .post(
                "/api/v1/sync/pause",
                Some(ADMIN_TOKEN),
                Some(json!({"reason": "other"})),
            )
            .await;
        assert_eq!(again["pausedSince"], first["pausedSince"]);
        assert_eq!(again["pauseReason"], "partner incident");

        // A second daemon on the same database starts paused and makes no partner call.
        let calls_before = app.sim.sim.calls().len();
        let url = app.backend.url.clone();
        let restarted =
            spawn_app_with(TestStore::reuse(app.backend.name, &url).await, |settings| {
                settings.sync.horizon_days = serde_json::from_value(json!(3)).unwrap()
            })
            .await;
        let (_, status) = restarted.get("/api/v1/sync/status").await;
        assert_eq!(status["state"], "paused");
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(restarted.sim.sim.calls().len(), 0);
        assert_eq!(app.sim.sim.calls().len(), calls_before);

        for _ in 0..2 {
            let (status, body) = app
                .post("/api/v1/sync/resume", Some(ADMIN_TOKEN), None)
                .await;
            assert_eq!((status, &body["state"]), (200, &json!("running")), "{body}");
        }
        app.wait_for_status(Duration::from_secs(30), drained).await;
    }
}

#[tokio::test]
async fn a_trigger_queues_days_ahead_of_routine_work_and_rejects_bad_requests() {
    for backend in backends().await {
        let app = spawn_daemon(backend).await;
        app.post("/api/v1/sync/pause", Some(ADMIN_TOKEN), None)
            .await;
        let today = app.today();
        let to = today.checked_add_days(Days::new(2)).unwrap();
        let (status, body) = app
            .post(
                "/api/v1/sync/trigger",
                Some(ADMIN_TOKEN),
                Some(json!({"experience": 14, "from": today, "to": to})),
            )
            .await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["queued"], 3);
        let beyond = today.checked_add_days(Days::new(400)).unwrap();
        let bad: Vec<(Value, u16, &str)> = vec![
            (json!({"experience": 77}), 404, "unknown_experience"),
            (
                json!({"experience": 14, "from": to, "to": today}),
                400,
                "date_outside_horizon",
            ),
            (json!({"to": beyond}), 400, "date_outside_horizon"),
            (json!({"experience": "fourteen"}), 404, "unknown_experience"),
            (json!({"experience": "four teen"}), 400, "invalid_body"),
            (json!({"experience": true}), 400, "invalid_body"),
            (
                json!({"experience": 14, "colour": "red"}),
                400,
                "invalid_body",
            ),
            (json!({"from": "2026-02-30"}), 400, "invalid_body"),
            (json!([1, 2]), 400, "invalid_body"),
        ];
        for (body, status, code) in bad {
            let (got, answer) = app
                .post(
                    "/api/v1/sync/trigger",
                    Some(ADMIN_TOKEN),
                    Some(body.clone()),
                )
                .await;
            assert_eq!(
                (got, answer["code"].as_str()),
                (status, Some(code)),
                "{body}: {answer}"
            );
        }
        let response = app
            .http
            .post(format!("{}/api/v1/sync/trigger", app.base))
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "text/plain")
            .body("experience=14")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 415);
        let response = app
            .http
            .post(format!("{}/api/v1/sync/trigger", app.base))
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "application/json")
            .body("{\"experience\": 14")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400);
    }
}

#[tokio::test]
async fn a_rejected_api_key_pauses_the_daemon_with_the_reason() {
    for backend in backends().await {
        let app = spawn_app_with(backend, |settings| {
            settings.partner.api_key = Some(invsync::domain::Secret::new("revoked-key"));
        })
        .await;
        let status = app
            .wait_for_status(Duration::from_secs(10), |s| s["state"] == "paused")
            .await;
        assert_eq!(status["pauseReason"], "partner rejected the API key");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rejected = app.sim.sim.calls().len();
        // Only the calls already waiting on the pacer went out; nothing hammers after that.
        assert!(rejected <= 3, "{rejected} calls with a rejected key");
        let (_, body) = app.get("/api/v1/sync/status").await;
        assert!(
            !body.to_string().contains("revoked-key"),
            "the key leaked into status"
        );
    }
}
