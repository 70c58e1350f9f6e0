//! Malformed and hostile requests against the real server on port 0: each gets its status and
//! a JSON `{code, message}` with the right stable code, and none gets a 500.

mod common;

use std::time::Duration;

use chrono::{Days, NaiveDate};
use common::*;
use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One request and the answer it must get.
struct Hostile {
    method: Method,
    path: String,
    headers: Vec<(&'static str, HeaderValue)>,
    body: Option<Vec<u8>>,
    status: u16,
    code: &'static str,
}

fn request(method: &str, path: impl Into<String>) -> Hostile {
    Hostile {
        method: Method::from_bytes(method.as_bytes()).expect("a method token"),
        path: path.into(),
        headers: Vec::new(),
        body: None,
        status: 0,
        code: "",
    }
}

fn get(path: impl Into<String>) -> Hostile {
    request("GET", path)
}

/// A POST with the right admin token.
fn admin_post(path: &str) -> Hostile {
    request("POST", path).header("authorization", format!("Bearer {ADMIN_TOKEN}").as_bytes())
}

impl Hostile {
    fn header(mut self, name: &'static str, value: &[u8]) -> Self {
        let value = HeaderValue::from_bytes(value).expect("a header value hyper can send");
        self.headers.push((name, value));
        self
    }

    fn json(self, body: impl Into<Vec<u8>>) -> Self {
        self.header("content-type", b"application/json").body(body)
    }

    fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    fn expect(mut self, status: u16, code: &'static str) -> Self {
        self.status = status;
        self.code = code;
        self
    }
}

fn hostile_requests(today: NaiveDate) -> Vec<Hostile> {
    let beyond = today.checked_add_days(Days::new(400)).expect("a date");
    let slots = |query: &str| format!("/api/v1/experience/14/slots?{query}");
    let history = |query: &str| format!("/api/v1/experience/14/slots/history?{query}");
    let trigger = "/api/v1/sync/trigger";
    let pause = "/api/v1/sync/pause";
    let deeply_nested = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    vec![
        // Experience ids.
        get(format!("/api/v1/experience/abc/slots?date={today}")).expect(404, "unknown_experience"),
        get(format!("/api/v1/experience/{}/dates", "a".repeat(65)))
            .expect(400, "invalid_experience_id"),
        get("/api/v1/experience/14'--/dates").expect(400, "invalid_experience_id"),
        get(format!("/api/v1/experience/{}/dates", "9".repeat(5_000)))
            .expect(400, "invalid_experience_id"),
        get("/api/v1/experience/14%00/dates").expect(400, "invalid_experience_id"),
        get("/api/v1/experience/%E2%91%A0%E2%91%A3/dates").expect(400, "invalid_experience_id"),
        get("/api/v1/experience/14%20OR%201=1/dates").expect(400, "invalid_experience_id"),
        get("/api/v1/experience/14%2F15/dates").expect(400, "invalid_experience_id"),
        get("/api/v1/experience/0x0E/dates").expect(404, "unknown_experience"),
        get("/api/v1/experience/-0/dates").expect(400, "invalid_experience_id"),
        get("/api/v1/experience/77/dates").expect(404, "unknown_experience"),
        // Dates and times in query strings.
        get(slots("date=2026-12-01'%20OR%20'1'='1")).expect(400, "invalid_date"),
        get(slots(&format!("date={today}%00"))).expect(400, "invalid_date"),
        get(slots("date=%EF%BC%92%EF%BC%90%EF%BC%92%EF%BC%96-12-01")).expect(400, "invalid_date"),
        get(slots(&format!("date={today}&date={today}"))).expect(400, "invalid_date"),
        get(slots("date=")).expect(400, "invalid_date"),
        get(slots("date=%ZZ")).expect(400, "invalid_date"),
        get(slots(&format!("dat%65={today}x"))).expect(400, "invalid_date"),
        get(slots("date=9999-12-31")).expect(400, "date_outside_horizon"),
        get(slots(&format!("date={beyond}"))).expect(400, "date_outside_horizon"),
        get(history(&format!("date={today}&startTime=24:00"))).expect(400, "invalid_start_time"),
        get(history(&format!(
            "date={today}&startTime=04:00&startTime=04:30"
        )))
        .expect(400, "invalid_start_time"),
        get(history(&format!("date={today}&startTime=04:00;DROP")))
            .expect(400, "invalid_start_time"),
        // Routes and methods.
        get("/api/v2/experience/14/dates").expect(404, "not_found"),
        get("/api/v1/experience/14/dates/").expect(404, "not_found"),
        get("/api/v1/%2e%2e/%2e%2e/etc/passwd").expect(404, "not_found"),
        get(format!("/{}", "a".repeat(8_000))).expect(404, "not_found"),
        get("/nope")
            .header("x-request-id", b"\"><script>alert(1)</script>")
            .expect(404, "not_found"),
        request("DELETE", "/api/v1/experience/14/dates").expect(405, "method_not_allowed"),
        request("PUT", pause).expect(405, "method_not_allowed"),
        request("GET", trigger).expect(405, "method_not_allowed"),
        request("OPTIONS", "/api/v1/sync/status").expect(405, "method_not_allowed"),
        request("BREW", "/healthz").expect(405, "method_not_allowed"),
        // Admin tokens.
        request("POST", pause).expect(401, "unauthorized"),
        request("POST", pause)
            .header("authorization", b"Bearer ' OR 1=1 --")
            .expect(401, "unauthorized"),
        request("POST", pause)
            .header("authorization", b"Basic dGVzdC1hZG1pbi10b2tlbjo=")
            .expect(401, "unauthorized"),
        request("POST", pause)
            .header("authorization", b"Bearer \xff\xfe")
            .expect(401, "unauthorized"),
        request("POST", pause)
            .header("authorization", format!("Bearer {ADMIN_TOKEN}x").as_bytes())
            .expect(401, "unauthorized"),
        request("POST", pause)
            .header(
                "authorization",
                format!("Bearer {}", "x".repeat(10_000)).as_bytes(),
            )
            .expect(401, "unauthorized"),
        // Bodies.
        admin_post(trigger)
            .header("content-type", b"text/plain")
            .body("experience=14")
            .expect(415, "unsupported_media_type"),
        admin_post(trigger)
            .header("content-type", b"application/xml")
            .body("<trigger experience=\"14\"/>")
            .expect(415, "unsupported_media_type"),
        admin_post(trigger)
            .json("{\"experience\": 14")
            .expect(400, "invalid_body"),
        admin_post(pause).json("\r\n").expect(400, "invalid_body"),
        admin_post(pause).json("[null]").expect(400, "invalid_body"),
        admin_post(trigger)
            .json(json!([14, today, today]).to_string())
            .expect(400, "invalid_body"),
        admin_post(trigger)
            .json(json!({"experience": "14; DROP TABLE accounts"}).to_string())
            .expect(400, "invalid_body"),
        admin_post(trigger)
            .json("{\"experience\": 14, \"experience\": 15}")
            .expect(400, "invalid_body"),
        admin_post(trigger)
            .json("{\"experience\": 99999999999999999999}")
            .expect(400, "invalid_body"),
        admin_post(trigger)
            .json(json!({"experience": -1}).to_string())
            .expect(400, "invalid_body"),
        admin_post(trigger)
            .json("{\"from\": \"2026-02-30\"}")
            .expect(400, "invalid_body"),
        admin_post(trigger)
            .json(b"{\"from\": \"\xff\xfe\"}".to_vec())
            .expect(400, "invalid_body"),
        admin_post(trigger)
            .json(deeply_nested)
            .expect(400, "invalid_body"),
        admin_post(trigger)
            .json(json!({"to": beyond}).to_string())
            .expect(400, "date_outside_horizon"),
        admin_post(trigger)
            .json(json!({"experience": 77}).to_string())
            .expect(404, "unknown_experience"),
        admin_post(trigger)
            .json(format!(
                "{{\"experience\": 14, \"pad\": \"{}\"}}",
                "x".repeat(70_000)
            ))
            .expect(413, "payload_too_large"),
        // PostgreSQL cannot store NUL: refused before the database sees it.
        admin_post(pause)
            .json(json!({"reason": "incident\u{0}INC-1"}).to_string())
            .expect(400, "invalid_body"),
        admin_post(pause)
            .json(json!({"reason": "r".repeat(501)}).to_string())
            .expect(400, "invalid_body"),
    ]
}

#[tokio::test]
async fn hostile_requests_get_their_status_and_a_stable_json_code_never_a_500() {
    for backend in backends().await {
        let app = spawn_app(backend).await;
        let cases = hostile_requests(app.today());
        assert!(cases.len() >= 30, "{} cases", cases.len());
        for case in cases {
            let mut request = app
                .http
                .request(case.method.clone(), format!("{}{}", app.base, case.path));
            for (name, value) in &case.headers {
                request = request.header(HeaderName::from_static(name), value.clone());
            }
            if let Some(body) = &case.body {
                request = request.body(body.clone());
            }
            let response = request.send().await.expect("the server answers");
            let what = format!("{} {} {}", app.backend.name, case.method, case.path);
            let status = response.status().as_u16();
            assert!(
                response.headers().contains_key("x-request-id"),
                "{what}: no request id"
            );
            let content_type = response.headers().get("content-type").cloned();
            let body = response.bytes().await.expect("a body");
            assert_eq!(
                content_type.as_ref().and_then(|v| v.to_str().ok()),
                Some("application/json"),
                "{what}: {}",
                String::from_utf8_lossy(&body)
            );
            let body: Value = serde_json::from_slice(&body).expect("a JSON error");
            assert_eq!(
                (status, body["code"].as_str()),
                (case.status, Some(case.code)),
                "{what}: {body}"
            );
            assert!(
                body["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{what}: {body}"
            );
        }
        // The service is still up and nothing was paused by the refused requests.
        let (status, body) = app.get("/api/v1/sync/status").await;
        assert_eq!((status, &body["state"]), (200, &json!("running")), "{body}");
    }
}

/// Sends raw bytes and returns the status and the JSON body of the answer.
async fn raw_exchange(base: &str, request: &[u8]) -> (u16, Value) {
    let address = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.expect("connects");
    stream.write_all(request).await.expect("sends");
    let mut answer = Vec::new();
    // The server closes the connection after answering: `Connection: close` below.
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("answers within 10 s")
        .expect("reads");
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    (status, serde_json::from_str(body).expect("a JSON body"))
}

#[tokio::test]
async fn a_body_that_never_arrives_gets_a_json_503_timeout() {
    for backend in backends().await {
        let app = spawn_app_with(backend, |settings| {
            settings.sync.tiers = Some(Vec::new());
            settings.server.request_timeout_seconds = 1.try_into().expect("non-zero");
        })
        .await;
        // Promises 100 bytes, sends one, and waits.
        let stalled = format!(
            "POST /api/v1/sync/trigger HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\
             authorization: Bearer {ADMIN_TOKEN}\r\ncontent-type: application/json\r\n\
             content-length: 100\r\n\r\n{{"
        );
        let started = std::time::Instant::now();
        let (status, body) = raw_exchange(&app.base, stalled.as_bytes()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (503, Some("timeout")),
            "{body}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}

#[tokio::test]
async fn an_oversized_chunked_body_gets_a_json_413() {
    for backend in backends().await {
        let app = spawn_app(backend).await;
        // No Content-Length to reject up front: the limit stops the stream as it is read.
        let chunk = "x".repeat(16 * 1024);
        let mut request = format!(
            "POST /api/v1/sync/pause HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\
             authorization: Bearer {ADMIN_TOKEN}\r\ncontent-type: application/json\r\n\
             transfer-encoding: chunked\r\n\r\n"
        );
        for _ in 0..5 {
            request.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
        }
        request.push_str("0\r\n\r\n");
        let (status, body) = raw_exchange(&app.base, request.as_bytes()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (413, Some("payload_too_large")),
            "{body}"
        );
    }
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    for backend in backends().await {
        let app = spawn_app(backend).await;
        let response = app
            .http
            .post(format!("{}/api/v1/sync/resume", app.base))
            .header("authorization", format!("bearer {ADMIN_TOKEN}"))
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status().as_u16(), 200);
    }
}

/// One slot per class and a short queue budget, so a test can fill a class with one request.
async fn spawn_tight_app(backend: TestStore) -> TestApp {
    spawn_app_with(backend, |settings| {
        let one = std::num::NonZeroU32::new(1).expect("non-zero");
        settings.sync.enabled = false;
        settings.server.max_concurrent_reads = one;
        settings.server.max_concurrent_writes = one;
        settings.server.queue_budget_ms = std::num::NonZeroU32::new(200).expect("non-zero");
    })
    .await
}

/// Sends `request` and asserts a fast `503 overloaded` with `Retry-After`, the JSON error
/// body and the request's id echoed.
async fn assert_shed_fast(request: reqwest::RequestBuilder) {
    let started = std::time::Instant::now();
    let response = request
        .header("x-request-id", "shed-me")
        .send()
        .await
        .expect("answers");
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(2), "{waited:?}");
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(response.headers()["x-request-id"], "shed-me");
    let body: Value = response.json().await.expect("JSON body");
    assert_eq!(body["code"], "overloaded", "{body}");
}

/// A write whose body never finishes arriving holds the one write slot: further writes are
/// shed within the queue budget, reads and probes are still served.
#[tokio::test]
async fn a_flood_of_writes_is_shed_fast_while_reads_are_served() {
    let app = spawn_tight_app(sqlite_store().await).await;
    let address = app.base.trim_start_matches("http://").to_string();
    let mut stalled = TcpStream::connect(&address).await.expect("connects");
    let head = format!(
        "POST /api/v1/sync/pause HTTP/1.1\r\nhost: {address}\r\nauthorization: Bearer {ADMIN_TOKEN}\r\n\
         content-type: application/json\r\ncontent-length: 64\r\n\r\n{{"
    );
    stalled.write_all(head.as_bytes()).await.expect("sends");
    tokio::time::sleep(Duration::from_millis(200)).await;

    let resume = app.http.post(format!("{}/api/v1/sync/resume", app.base));
    assert_shed_fast(resume.bearer_auth(ADMIN_TOKEN)).await;
    for path in [
        "/api/v1/experience/14/dates",
        "/healthz",
        "/api/v1/sync/status",
    ] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let metrics = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("answers")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("invsync_http_shed_total{class=\"write\"}"),
        "{metrics}"
    );
    drop(stalled);
}

/// A read held up in the database holds the one read slot: further reads are shed, writes
/// and probes are still served.
#[tokio::test]
async fn a_flood_of_reads_is_shed_fast_while_writes_are_served() {
    let Some(backend) = postgres_store().await else {
        return;
    };
    let app = spawn_tight_app(backend).await;
    let mut blocker = lock_entries(&app.backend.url).await;
    let held = {
        let http = app.http.clone();
        let url = format!("{}/api/v1/ledger/verify", app.base);
        tokio::spawn(async move { http.get(url).bearer_auth(ADMIN_TOKEN).send().await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    assert_shed_fast(
        app.http
            .get(format!("{}/api/v1/experience/14/dates", app.base)),
    )
    .await;
    let (status, body) = app
        .post("/api/v1/sync/pause", Some(ADMIN_TOKEN), None)
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = app.get("/healthz").await;
    assert_eq!(status, 200);

    sqlx::query("COMMIT").execute(&mut blocker).await.unwrap();
    let verified = held.await.unwrap().expect("answers");
    assert_eq!(verified.status(), 200);
}

/// A connection that never sends a request head is closed once the header timeout passes.
#[tokio::test]
async fn a_silent_connection_is_closed_after_the_header_read_timeout() {
    let app = spawn_app_with(sqlite_store().await, |settings| {
        settings.server.header_read_timeout_seconds = std::num::NonZeroU32::new(1).expect("1");
    })
    .await;
    let address = app.base.trim_start_matches("http://").to_string();
    let mut silent = TcpStream::connect(&address).await.expect("connects");
    let started = std::time::Instant::now();
    let mut buffer = [0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buffer))
        .await
        .expect("closed by the server within the timeout");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

/// Past `server.max_connections`, a connection waits in the backlog until one closes.
#[tokio::test]
async fn connections_past_the_limit_wait_until_one_closes() {
    let app = spawn_app_with(sqlite_store().await, |settings| {
        settings.server.max_connections = std::num::NonZeroU32::new(1).expect("1");
    })
    .await;
    let address = app.base.trim_start_matches("http://").to_string();
    let holder = TcpStream::connect(&address).await.expect("connects");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fresh = || reqwest::Client::new().get(format!("{}/healthz", app.base));
    let waiting = fresh().timeout(Duration::from_millis(500)).send().await;
    assert!(waiting.is_err(), "served past the limit: {waiting:?}");
    drop(holder);
    let served = fresh()
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("served once the first connection closed");
    assert_eq!(served.status(), 200);
}

/// Reads one answer off `stream`: its status and body.
async fn read_answer(stream: &mut TcpStream, pending: &mut Vec<u8>) -> (u16, String) {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end]).to_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|value| value.trim().parse().ok())
                .expect("a content-length");
            if pending.len() >= end + 4 + length {
                let status = head
                    .split(' ')
                    .nth(1)
                    .and_then(|code| code.parse().ok())
                    .expect("a status line");
                let body = String::from_utf8_lossy(&pending[end + 4..end + 4 + length]).into();
                pending.drain(..end + 4 + length);
                return (status, body);
            }
        }
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("answers within 10 s")
            .expect("reads");
        assert!(read > 0, "the connection stays open");
        pending.extend_from_slice(&chunk[..read]);
    }
}

#[tokio::test]
async fn one_connection_carries_pipelined_requests_and_bodies_read_or_not() {
    for backend in backends().await {
        let app = spawn_app(backend).await;
        let address = app.base.trim_start_matches("http://");
        let mut stream = TcpStream::connect(address).await.expect("connects");
        let mut pending = Vec::new();
        let healthz = "GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n";
        stream
            .write_all(format!("{healthz}{healthz}").as_bytes())
            .await
            .expect("sends two at once");
        for _ in 0..2 {
            assert_eq!(read_answer(&mut stream, &mut pending).await.0, 200);
        }
        // Refused before its body is read, then one whose body is read: both answered, the
        // connection kept.
        let body = "{\"quantity\": 1}";
        let unauthorized = format!(
            "POST /api/v1/bookings HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n\r\n{body}",
            body.len()
        );
        stream
            .write_all(unauthorized.as_bytes())
            .await
            .expect("sends");
        assert_eq!(read_answer(&mut stream, &mut pending).await.0, 401);
        let invalid = format!(
            "POST /api/v1/bookings HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
             authorization: Bearer {ADMIN_TOKEN}\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(invalid.as_bytes()).await.expect("sends");
        let (status, answer) = read_answer(&mut stream, &mut pending).await;
        assert_eq!(status, 400, "{answer}");
        stream.write_all(healthz.as_bytes()).await.expect("sends");
        assert_eq!(read_answer(&mut stream, &mut pending).await.0, 200);
        // Asked to close: answered, then closed.
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
            .await
            .expect("sends");
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest))
            .await
            .expect("closed within 10 s")
            .expect("reads");
        assert!(String::from_utf8_lossy(&rest).starts_with("HTTP/1.1 200"));
    }
}
