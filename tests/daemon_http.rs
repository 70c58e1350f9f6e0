//! The daemon over HTTP: operator controls, authentication, and a backfill through partner
//! faults, against the real server on port 0 and the simulator.

mod common;

use std::time::Duration;

use chrono::Days;
use common::*;
use invsync::simulator::Faults;
use serde_json::{Value, json};

fn drained(status: &Value) -> bool {
    status["pending"] == 0
        && status["inFlight"] == 0
        && status["freshness"]
            .as_array()
            .is_some_and(|windows| windows.iter().all(|w| w["neverFetched"] == 0))
}

#[tokio::test]
async fn the_daemon_backfills_through_faults_and_serves_what_the_partner_holds() {
    for backend in backends().await {
        // Faults are set before the daemon starts so the backfill meets them.
        let app = spawn_app_with(backend, |settings| {
            settings.sync.horizon_days =
                serde_json::from_value(json!(DAEMON_HORIZON_DAYS)).unwrap();
        })
        .await;
        app.sim
            .sim
            .set_faults(Faults {
                server_error_percent: 10,
                slow_percent: 5,
                slow_delay_ms: 1_500,
                garbage_percent: 5,
                truncated_percent: 5,
            })
            .unwrap();
        app.sim
            .sim
            .start_rate_limit_storm(Duration::from_millis(300));
        let status = app.wait_for_status(Duration::from_secs(90), drained).await;
        assert_eq!(status["state"], "running");
        assert!(status["parked"].as_array().unwrap().is_empty(), "{status}");
        let counters = &status["counters"];
        assert!(counters["retries"].as_u64() > Some(0), "{counters}");
        assert!(counters["calls"].as_u64() >= Some(2 * u64::from(DAEMON_HORIZON_DAYS)));
        app.sim.sim.set_faults(Faults::default()).unwrap();
        let today = app.today();
        for offset in 0..u64::from(DAEMON_HORIZON_DAYS) {
            app.assert_served_equals_simulator(today.checked_add_days(Days::new(offset)).unwrap())
                .await;
        }
        let (_, report) = app.get("/api/v1/ledger/verify").await;
        assert_eq!(report["ok"], true, "{report}");
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
            (json!({"experience": "fourteen"}), 400, "invalid_body"),
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
