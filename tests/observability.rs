//! Health, readiness, metrics, the OpenAPI document and logs, against the real server on
//! port 0 (and the real binary for logs).

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use invsync::app::Application;
use invsync::config::Settings;
use invsync::domain::Secret;
use invsync::simulator::{Faults, Simulator, SimulatorConfig, SimulatorHandle};
use serde_json::{Value, json};

/// The value of the sample `series` (name and labels exactly as rendered) in Prometheus text.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok()).flatten()
        })
}

/// A GET whose answer the test reads itself: text, headers.
async fn fetch(http: &reqwest::Client, url: &str) -> reqwest::Response {
    http.get(url).send().await.expect("the server answers")
}

async fn scrape(app: &TestApp) -> String {
    let response = fetch(&app.http, &format!("{}/metrics", app.base)).await;
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap_or("");
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    response.text().await.expect("metrics text")
}

#[tokio::test]
async fn metrics_after_a_short_sync_count_partner_calls_and_time_each_tiers_last_success() {
    for backend in backends().await {
        let app = spawn_app_with(backend, |settings| {
            settings.sync.horizon_days = serde_json::from_value(json!(2)).expect("horizon");
        })
        .await;
        let status = app
            .wait_for_status(Duration::from_secs(60), |status| {
                status["tiers"]
                    .as_array()
                    .is_some_and(|tiers| tiers.iter().all(|tier| tier["lastSuccess"].is_string()))
            })
            .await;
        let (answered, _) = app.get("/api/v1/experience/14/dates").await;
        assert_eq!(answered, 200);
        let text = scrape(&app).await;
        let name = app.backend.name;

        let ok_calls = sample(&text, r#"invsync_partner_requests_total{outcome="ok"}"#);
        assert!(ok_calls >= Some(4.0), "{name}: {ok_calls:?}\n{text}");
        let timed = sample(
            &text,
            r#"invsync_partner_request_duration_seconds_count{outcome="ok"}"#,
        );
        assert!(timed >= Some(4.0), "{name}: {timed:?}");
        // Two products over two days, read from this daemon's status at scrape time.
        // The one partner of `[partner]` is `default`.
        let engine_calls = sample(
            &text,
            r#"invsync_sync_partner_calls_total{partner="default"}"#,
        );
        assert!(engine_calls >= Some(4.0), "{name}: {engine_calls:?}");
        let days_applied = r#"invsync_sync_days_applied_total{partner="default"}"#;
        assert!(sample(&text, days_applied) >= Some(4.0));
        let paused = r#"invsync_sync_paused{partner="default"}"#;
        assert_eq!(sample(&text, paused), Some(0.0));
        let pending = r#"invsync_sync_queue_pending{partner="default"}"#;
        assert_eq!(sample(&text, pending), Some(0.0));

        let now = chrono::Utc::now().timestamp() as f64;
        let tiers = status["tiers"].as_array().expect("tiers");
        assert_eq!(tiers.len(), 4);
        for tier in tiers {
            let tier = tier["name"].as_str().expect("tier name");
            let series = format!(
                r#"invsync_sync_tier_last_success_timestamp_seconds{{partner="default",tier="{tier}"}}"#
            );
            let last_success = sample(&text, &series).expect("a gauge per tier");
            assert!(
                (now - 120.0..=now + 1.0).contains(&last_success),
                "{name} {tier}: {last_success} is not a recent unix time (now {now})"
            );
        }

        // HTTP series carry the route template, never the raw path.
        let dates = r#"invsync_http_requests_total{method="GET",route="/api/v1/experience/{id}/dates",status="200"}"#;
        assert!(sample(&text, dates) >= Some(1.0), "{name}\n{text}");
        assert!(!text.contains(r#"route="/api/v1/experience/14"#), "{text}");
    }
}

#[tokio::test]
async fn readiness_checks_the_database_and_turns_503_once_shutdown_begins() {
    for backend in backends().await {
        let mut settings = Settings::default();
        settings.database.url = Secret::new(backend.url.clone());
        settings.server.listen = "127.0.0.1:0".parse().expect("address");
        settings.partner.api_key = Some(Secret::new("never-used"));
        settings.sync.tiers = Some(Vec::new());
        settings.server.shutdown_delay_seconds = 2;
        let app = Application::build(settings).await.expect("builds");
        let base = format!("http://{}", app.local_addr());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(app.run_until_stopped(async {
            stopped.await.ok();
        }));
        let http = reqwest::Client::new();
        let readyz = || async {
            let response = fetch(&http, &format!("{base}/readyz")).await;
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.expect("JSON"))
        };

        let (status, body) = readyz().await;
        assert_eq!(
            (status, body),
            (
                200,
                json!({"status": "ready", "checks": [
                    {"name": "database", "ok": true},
                    {"name": "shutdown", "ok": true},
                ]})
            ),
            "{}",
            backend.name
        );

        stop.send(()).expect("the app is running");
        let asked = Instant::now();
        let body = loop {
            let (status, body) = readyz().await;
            if status == 503 {
                break body;
            }
            assert!(
                asked.elapsed() < Duration::from_secs(1),
                "still ready: {body}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(body["status"], "not_ready");
        assert_eq!(
            body["checks"],
            json!([
                {"name": "database", "ok": true},
                {"name": "shutdown", "ok": false, "detail": "the service is shutting down"},
            ])
        );
        // Requests are still served while a load balancer notices.
        let health = fetch(&http, &format!("{base}/healthz")).await;
        assert_eq!(health.status().as_u16(), 200);
        let stopped = tokio::time::timeout(Duration::from_secs(10), running)
            .await
            .expect("stops after the delay")
            .expect("task");
        assert!(stopped.is_ok(), "{stopped:?}");
        assert!(asked.elapsed() >= Duration::from_secs(2));
    }
}

/// The documented operations: (path, method).
fn documented_operations(document: &Value) -> BTreeSet<(String, String)> {
    document["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("a path item")
                .keys()
                .map(move |method| (path.clone(), method.to_uppercase()))
        })
        .collect()
}

#[tokio::test]
async fn the_router_serves_exactly_the_documented_operations() {
    let backend = sqlite_store().await;
    let app = spawn_app(backend).await;
    let (status, document) = app.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3."))
    );
    let operations = documented_operations(&document);
    let paths: BTreeSet<&String> = operations.iter().map(|(path, _)| path).collect();
    assert_eq!(paths.len(), 27, "{paths:?}");

    for path in paths {
        let concrete = path
            .replace("{id}", "14")
            .replace("{productId}", "14")
            .replace("{uuid}", "0c3e2e4a-4a3f-4b7e-9d4e-0d5f1a0e8b1c");
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            let response = app
                .http
                .request(
                    method.parse().expect("method"),
                    format!("{}{concrete}", app.base),
                )
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .expect("answers");
            let status = response.status().as_u16();
            let body = response.text().await.expect("body");
            let documented = operations.contains(&(path.clone(), method.to_string()));
            if documented {
                // Served: whatever it answers, it is neither "no route" nor "wrong method"
                // (an unknown booking is a 404 of its own code).
                let unrouted = status == 405 || (status == 404 && body.contains("\"not_found\""));
                assert!(
                    !unrouted,
                    "{method} {path} is documented but not served: {status} {body}"
                );
            } else {
                assert_eq!(
                    status, 405,
                    "{method} {path} is served but not documented: {body}"
                );
            }
        }
    }
    // Nothing is served around the documented paths (`/` redirects to the console, which is
    // not part of the API document).
    for path in [
        "/api",
        "/api/v1",
        "/api/v1/sync",
        "/api/v1/experience/14",
        "/docs",
    ] {
        let (status, body) = app.get(path).await;
        assert_eq!(
            (status, &body["code"]),
            (404, &json!("not_found")),
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_document_declares_errors_security_and_every_schema_it_references() {
    let app = spawn_app(sqlite_store().await).await;
    let (_, document) = app.get("/openapi.json").await;
    let text = document.to_string();
    let schemas = &document["components"]["schemas"];
    for reference in text.split("\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap_or_default();
        assert!(schemas.get(name).is_some(), "dangling reference to {name}");
    }
    assert_eq!(schemas["ErrorBody"]["required"], json!(["code", "message"]));
    assert_eq!(
        document["components"]["securitySchemes"]["admin_token"],
        json!({"type": "http", "scheme": "bearer", "description": "INVSYNC_SERVER__ADMIN_TOKEN"})
    );
    for (path, method) in documented_operations(&document) {
        let operation = &document["paths"][&path][method.to_lowercase()];
        // OCTO routes answer in OCTO's shape, and refuse a token with its 400 UNAUTHORIZED.
        let octo = path.starts_with("/octo/");
        let internal = &operation["responses"]["500"]["content"]["application/json"]["schema"];
        let error_body = if octo { "OctoErrorBody" } else { "ErrorBody" };
        assert_eq!(
            internal["$ref"],
            format!("#/components/schemas/{error_body}"),
            "{method} {path}"
        );
        let bookings = path.starts_with("/api/v1/bookings");
        let scheme = if bookings || octo {
            "sales_token"
        } else {
            "admin_token"
        };
        let secured = operation["security"] == json!([{ scheme: [] }]);
        let protected = bookings || octo || method == "POST" || path == "/api/v1/ledger/verify";
        assert_eq!(secured, protected, "{method} {path}: security");
        let refusal = if octo { "400" } else { "401" };
        if secured {
            assert!(
                operation["responses"][refusal].is_object(),
                "{method} {path}"
            );
        }
    }
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_keeps_a_given_one() {
    let app = spawn_app(sqlite_store().await).await;
    let response = fetch(&app.http, &format!("{}/healthz", app.base)).await;
    let generated = response.headers()["x-request-id"].to_str().expect("ASCII");
    assert!(uuid::Uuid::parse_str(generated).is_ok(), "{generated}");
    let response = app
        .http
        .get(format!("{}/no-such-route", app.base))
        .header("x-request-id", "gateway-42")
        .send()
        .await
        .expect("answers");
    assert_eq!(response.headers()["x-request-id"], "gateway-42");
}

const PARTNER_KEY: &str = "pk-7f3a9c-partner-key-DO-NOT-LOG";
const ADMIN: &str = "at-51d2e8-admin-token-DO-NOT-LOG";
const DB_PASSWORD: &str = "pw-c4b7a1-database-password-DO-NOT-LOG";

/// `url` with [`DB_PASSWORD`] as its password, when it is a PostgreSQL URL without one (the
/// test server trusts local connections, so the password is carried but not needed).
fn with_db_password(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if parsed.scheme() == "postgres" && parsed.password().is_none() => {
            match parsed.set_password(Some(DB_PASSWORD)) {
                Ok(()) => parsed.to_string(),
                Err(()) => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// `invsync <args>` against `sim`, with the secrets in its environment, logging everything
/// as JSON to a pipe.
fn invsync_with_secrets(database_url: &str, sim: &SimulatorHandle, args: &[&str]) -> Command {
    let mut command = invsync_command(&std::env::temp_dir(), database_url, sim, 6000, 3, args);
    command
        .env("INVSYNC_PARTNER__API_KEY", PARTNER_KEY)
        .env("INVSYNC_SERVER__ADMIN_TOKEN", ADMIN)
        .env("INVSYNC_LOG__FORMAT", "json")
        .env("RUST_LOG", "trace")
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// The simulator, accepting only [`PARTNER_KEY`].
async fn simulator() -> SimulatorHandle {
    Simulator::new(SimulatorConfig {
        rate_limit_per_minute: 6000.try_into().expect("non-zero"),
        ..SimulatorConfig::new(Secret::new(PARTNER_KEY))
    })
    .spawn_local()
    .await
    .expect("simulator")
}

fn assert_no_secret(text: &str, what: &str) {
    for secret in [PARTNER_KEY, ADMIN, DB_PASSWORD] {
        assert!(!text.contains(secret), "{what} shows {secret}");
    }
}

#[tokio::test]
async fn secrets_never_reach_the_logs_or_the_answers_even_at_trace_level() {
    for backend in backends().await {
        let sim = simulator().await;
        // Error paths log partner bodies and retries: exercise them too.
        sim.sim
            .set_faults(Faults {
                server_error_percent: 20,
                garbage_percent: 10,
                ..Faults::default()
            })
            .expect("faults");
        let database_url = with_db_password(&backend.url);
        let mut child = invsync_with_secrets(&database_url, &sim, &["serve"])
            .spawn()
            .expect("starts");
        let stderr = child.stderr.take().expect("piped");
        let (address_tx, address_rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let event: Value = serde_json::from_str(&line).unwrap_or_default();
                if event["fields"]["message"] == "serving" {
                    let address = event["fields"]["addr"].as_str().unwrap_or("").to_string();
                    address_tx.send(address).ok();
                }
                lines.push(line);
            }
            lines.join("\n")
        });
        let address =
            tokio::task::spawn_blocking(move || address_rx.recv_timeout(Duration::from_secs(30)))
                .await
                .expect("join")
                .expect("the daemon logs its address");
        let base = format!("http://{address}");
        let http = reqwest::Client::new();
        let mut answers = String::new();
        for (path, token, body) in [
            (
                "/api/v1/sync/pause",
                ADMIN,
                json!({"reason": "secrets test"}),
            ),
            ("/api/v1/sync/resume", ADMIN, json!(null)),
            ("/api/v1/sync/trigger", ADMIN, json!({"experience": 14})),
            ("/api/v1/sync/pause", "wrong-token", json!({})),
        ] {
            let response = http
                .post(format!("{base}{path}"))
                .bearer_auth(token)
                .header("x-request-id", "secrets-test-request")
                .json(&body)
                .send()
                .await
                .expect("answers");
            answers.push_str(&response.text().await.expect("body"));
        }
        let started = Instant::now();
        while sim.sim.calls().len() < 6 {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no partner calls"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for path in [
            "/api/v1/sync/status",
            "/metrics",
            "/readyz",
            "/openapi.json",
        ] {
            let response = fetch(&http, &format!("{base}{path}")).await;
            answers.push_str(&response.text().await.expect("body"));
        }
        let terminated = Command::new("kill")
            .args(["-s", "TERM", &child.id().to_string()])
            .status()
            .expect("kill -s TERM");
        assert!(terminated.success());
        let exit = tokio::task::spawn_blocking(move || child.wait())
            .await
            .expect("join")
            .expect("exit status");
        assert!(exit.success(), "{exit}");
        let logs = reader.join().expect("log reader");

        let name = backend.name;
        assert_no_secret(&logs, &format!("{name}: the log"));
        assert_no_secret(&answers, &format!("{name}: an HTTP answer"));
        // The capture is real: it holds the request's id and each partner call's attempt.
        let events: Vec<Value> = logs
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect();
        assert!(
            events.iter().any(|event| {
                event["span"]["request_id"] == "secrets-test-request"
                    && event["span"]["route"] == "/api/v1/sync/trigger"
                    && event["span"]["status"] == 202
            }),
            "{name}: no request line with its id"
        );
        assert!(
            events.iter().any(|event| {
                event["fields"]["message"] == "partner fetch failed"
                    && event["span"]["name"] == "partner_call"
                    && event["span"]["attempt"].as_u64() >= Some(1)
            }),
            "{name}: no partner call line with its attempt"
        );
    }
}

#[tokio::test]
async fn a_database_that_cannot_be_reached_is_reported_without_its_password() {
    let url = format!("postgres://invsync:{DB_PASSWORD}@127.0.0.1:1/invsync");
    let output = invsync_with_secrets(&url, &simulator().await, &["serve"])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("opening the database"), "{stderr}");
    assert_no_secret(&stderr, "the start-up error");
}
