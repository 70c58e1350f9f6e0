//! The partner client against a scripted HTTP server (wiremock on 127.0.0.1).

mod common;

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use chrono::DateTime;
use invsync::domain::{DayFetch, Secret, Slot};
use invsync::partner::{PartnerClient, PartnerClientConfig, PartnerError};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use common::{date, experience, money, start_times, time};

const API_KEY: &str = "sk_live_7f3c9a1e5b";
const THURSDAY_14: &str = include_str!("../fixtures/responses/14_2026-12-03_thursday.json");
const SUNDAY_15: &str = include_str!("../fixtures/responses/15_2026-12-06_sunday.json");
const MONDAY_14: &str = include_str!("../fixtures/responses/14_2026-11-30_monday.json");

fn client(base_url: &str, rate_limit_per_minute: u32, request_timeout: Duration) -> PartnerClient {
    PartnerClient::new(PartnerClientConfig {
        base_url: base_url.to_string(),
        api_key: Secret::new(API_KEY),
        rate_limit_per_minute: NonZeroU32::new(rate_limit_per_minute).expect("non-zero"),
        request_timeout,
        protocol: invsync::partner::Protocol::Leap,
    })
    .expect("client builds")
}

/// A client that is effectively unpaced, for tests about anything but pacing.
fn fast_client(server: &MockServer) -> PartnerClient {
    client(&server.uri(), 600_000, Duration::from_secs(5))
}

/// Serves `body` with `status` for product `id` on `day`, only to callers sending the key.
async fn serve(server: &MockServer, id: i64, day: &str, status: u16, body: &str) {
    Mock::given(method("GET"))
        .and(path(format!("/api/v1/inventory/{id}")))
        .and(query_param("date", day))
        .and(header("x-api-key", API_KEY))
        .respond_with(
            ResponseTemplate::new(status).set_body_raw(body.to_string(), "application/json"),
        )
        .mount(server)
        .await;
}

async fn fetch(body: &str, id: i64, day: &str) -> Result<DayFetch, PartnerError> {
    fetch_status(200, body, id, day).await
}

async fn fetch_status(
    status: u16,
    body: &str,
    id: i64,
    day: &str,
) -> Result<DayFetch, PartnerError> {
    let server = MockServer::start().await;
    serve(&server, id, day, status, body).await;
    fast_client(&server)
        .fetch_day(experience(id), date(day))
        .await
}

fn slot_at<'a>(day: &'a DayFetch, start: &str) -> &'a Slot {
    day.slots
        .iter()
        .find(|slot| slot.start_time == time(start))
        .unwrap_or_else(|| panic!("no slot at {start}"))
}

fn assert_malformed(result: Result<DayFetch, PartnerError>, id: i64, day: &str, needle: &str) {
    match result {
        Err(error @ PartnerError::Malformed { .. }) => {
            let PartnerError::Malformed {
                experience: seen_experience,
                date: seen_date,
                detail,
            } = &error
            else {
                unreachable!()
            };
            assert_eq!(*seen_experience, experience(id));
            assert_eq!(*seen_date, date(day));
            assert!(
                detail.contains(needle),
                "{detail:?} does not mention {needle:?}"
            );
            let message = error.to_string();
            assert!(message.contains(&format!("experience {id}")), "{message}");
            assert!(message.contains(day), "{message}");
            assert!(error.is_retryable() && !error.is_fatal());
        }
        other => panic!("expected Malformed mentioning {needle:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn thursday_fixture_parses_with_exact_prices() {
    let day = fetch(THURSDAY_14, 14, "2026-12-03").await.expect("parses");

    assert_eq!(day.experience, experience(14));
    assert_eq!(day.date, date("2026-12-03"));
    assert_eq!(
        start_times(&day),
        [
            "04:00", "04:30", "05:00", "05:30", "06:00", "06:30", "07:00", "07:30", "08:00"
        ]
    );
    for slot in &day.slots {
        assert_eq!(slot.start_date, date("2026-12-03"));
        assert_eq!(slot.end_time, slot.start_time);
        assert_eq!(slot.remaining, 2000);
        assert_eq!(slot.variant_id, 32);
        assert_eq!(slot.currency, "SGD");
        for pax in &slot.pax {
            assert_eq!(pax.remaining, 1000);
            assert_eq!((pax.min, pax.max), (1, 20));
            assert_eq!(pax.price.currency, "SGD");
        }
    }

    let half_hour = slot_at(&day, "04:30");
    assert_eq!(half_hour.provider_slot_id, "225532707686_2026-12-03T04:30");
    let [adult, child] = half_hour.pax.as_slice() else {
        panic!("04:30 should have two pax: {:?}", half_hour.pax)
    };
    assert_eq!(adult.pax_type, "ADULT_12~99");
    assert_eq!(
        (adult.name.as_str(), adult.description.as_str()),
        ("Adult", "12-99 years")
    );
    assert!(adult.is_primary);
    assert_eq!(adult.price.final_price, money("242.14"));
    assert_eq!(adult.price.final_price.to_string(), "242.14");
    assert_eq!(adult.price.original_price.to_string(), "342.14");
    assert_eq!(child.pax_type, "CHILD_3~11");
    assert_eq!(
        (child.name.as_str(), child.description.as_str()),
        ("Child", "3-11 years")
    );
    assert!(!child.is_primary);
    assert_eq!(child.price.final_price, money("73"));
    assert_eq!(child.price.original_price, money("173"));

    let on_the_hour = slot_at(&day, "05:00");
    assert_eq!(on_the_hour.pax[0].price.final_price.to_string(), "212.14");
    assert_eq!(
        on_the_hour.pax[0].price.original_price.to_string(),
        "312.14"
    );
    assert_eq!(on_the_hour.pax[1].price.final_price, money("43"));
    assert_eq!(on_the_hour.pax[1].price.original_price, money("143"));

    let adult_only = slot_at(&day, "08:00");
    assert_eq!(adult_only.pax.len(), 1);
    assert_eq!(adult_only.pax[0].pax_type, "ADULT_12~99");
}

#[tokio::test]
async fn sunday_fixture_of_product_15_parses() {
    let day = fetch(SUNDAY_15, 15, "2026-12-06").await.expect("parses");

    let [slot] = day.slots.as_slice() else {
        panic!("one slot expected: {:?}", day.slots)
    };
    assert_eq!(slot.start_time, time("00:00"));
    assert_eq!(slot.remaining, 170);
    assert_eq!(slot.variant_id, 122);
    let summary: Vec<(&str, i64, String, String, bool)> = slot
        .pax
        .iter()
        .map(|pax| {
            (
                pax.pax_type.as_str(),
                pax.remaining,
                pax.price.final_price.to_string(),
                pax.price.original_price.to_string(),
                pax.is_primary,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("ADULT_12~99", 150, "341".into(), "441".into(), true),
            ("CHILD_5~15", 10, "137".into(), "237".into(), false),
            ("INFANT_0~4", 10, "0".into(), "0".into(), false),
        ]
    );
}

#[tokio::test]
async fn a_day_without_inventory_is_an_empty_fetch() {
    let day = fetch(MONDAY_14, 14, "2026-11-30").await.expect("parses");
    assert!(day.slots.is_empty());
    assert_eq!(day.date, date("2026-11-30"));
}

#[tokio::test]
async fn missing_is_primary_means_no_primary_pax() {
    let body = THURSDAY_14.replace(r#""isPrimary":true,"#, "");
    let day = fetch(&body, 14, "2026-12-03").await.expect("parses");
    assert!(
        day.slots
            .iter()
            .flat_map(|slot| &slot.pax)
            .all(|pax| !pax.is_primary)
    );
}

#[tokio::test]
async fn unknown_fields_are_ignored_at_every_level() {
    let body = THURSDAY_14
        .replace(
            r#""variantId":32,"#,
            r#""variantId":32,"bookingCutoff":{"hours":2},"#,
        )
        .replace(r#""name":"Adult","#, r#""name":"Adult","ageBand":[12,99],"#)
        .replace(r#""discount":0,"#, r#""discount":0,"taxIncluded":true,"#);
    assert_ne!(body, THURSDAY_14);
    let with_extras = fetch(&body, 14, "2026-12-03").await.expect("parses");
    let plain = fetch(THURSDAY_14, 14, "2026-12-03").await.expect("parses");
    assert_eq!(with_extras.slots, plain.slots);
}

#[tokio::test]
async fn invalid_bodies_are_malformed_and_say_what_and_where() {
    let truncated = &THURSDAY_14[..THURSDAY_14.len() / 2];
    let cases: Vec<(String, &str)> = vec![
        ("<html>oops</html>".into(), "not valid JSON"),
        (truncated.into(), "not valid JSON"),
        ("".into(), "not valid JSON"),
        (r#"{"slots":[]}"#.into(), "expected a JSON array"),
        (
            THURSDAY_14.replacen(r#""remaining":2000"#, r#""remaining":"lots""#, 1),
            "slot #0 (225532707686_2026-12-03T04:00): remaining: invalid type",
        ),
        (
            THURSDAY_14.replacen(r#""startTime":"04:00""#, r#""startTime":400"#, 1),
            "startTime: invalid type",
        ),
        (
            THURSDAY_14.replacen(r#","name":"Child""#, "", 1),
            "paxAvailability[1]: missing field `name`",
        ),
        (
            THURSDAY_14.replacen(r#""remaining":2000"#, r#""remaining":-1"#, 1),
            "remaining is negative: -1",
        ),
        (
            THURSDAY_14.replacen(
                r#""remaining":1000,"type":"CHILD_3~11""#,
                r#""remaining":-3,"type":"CHILD_3~11""#,
                1,
            ),
            "paxAvailability[CHILD_3~11].remaining is negative",
        ),
        (
            THURSDAY_14.replacen(r#""remaining":2000"#, r#""remaining":12.5"#, 1),
            "remaining is not an integer",
        ),
        (
            THURSDAY_14.replacen(r#""max":20,"min":1"#, r#""max":20,"min":-1"#, 1),
            "paxAvailability[ADULT_12~99].min is negative",
        ),
        (
            THURSDAY_14.replacen(
                r#""startDate":"2026-12-03""#,
                r#""startDate":"2026-12-04""#,
                1,
            ),
            "startDate is 2026-12-04, but 2026-12-03 was requested",
        ),
        (
            THURSDAY_14.replacen(r#""startTime":"04:30""#, r#""startTime":"4:30""#, 1),
            "startTime is not HH:MM",
        ),
        (
            THURSDAY_14.replacen(r#""endTime":"04:30""#, r#""endTime":"25:00""#, 1),
            "endTime is not HH:MM",
        ),
        (
            THURSDAY_14.replacen(r#""type":"CHILD_3~11""#, r#""type":"""#, 1),
            "paxAvailability[].type is empty",
        ),
        (
            THURSDAY_14.replacen(r#""finalPrice":43"#, r#""finalPrice":-43"#, 1),
            "paxAvailability[CHILD_3~11].price.finalPrice is negative: -43",
        ),
        (
            THURSDAY_14.replacen(r#""currencyCode":"SGD"}"#, r#""currencyCode":"USD"}"#, 1),
            "price.currencyCode is \"USD\" but the slot's currencyCode is \"SGD\"",
        ),
        (
            THURSDAY_14.replacen(r#""startTime":"04:30""#, r#""startTime":"04:00""#, 1),
            "two slots share startTime \"04:00\"",
        ),
    ];
    for (body, needle) in cases {
        assert_malformed(
            fetch(&body, 14, "2026-12-03").await,
            14,
            "2026-12-03",
            needle,
        );
    }
}

#[tokio::test]
async fn rate_limited_carries_the_reset_instant_from_the_body() {
    let body =
        r#"{"rateLimitState":{"reset":1796277600123,"limit":30,"remaining":0,"window":"1m"}}"#;
    let error = fetch_status(429, body, 14, "2026-12-03")
        .await
        .expect_err("429");
    let expected = DateTime::from_timestamp_millis(1_796_277_600_123);
    assert_eq!(error, PartnerError::RateLimited { reset_at: expected });
    assert!(error.is_retryable() && !error.is_fatal());
}

#[tokio::test]
async fn rate_limited_without_a_usable_reset_is_still_rate_limited() {
    for body in [
        "",
        "Too Many Requests",
        r#"{"rateLimitState":{"resetsIn":"soon"}}"#,
        "[]",
    ] {
        let error = fetch_status(429, body, 14, "2026-12-03")
            .await
            .expect_err("429");
        assert_eq!(
            error,
            PartnerError::RateLimited { reset_at: None },
            "body {body:?}"
        );
    }
}

#[tokio::test]
async fn rejected_keys_are_fatal() {
    for status in [401, 403] {
        let error = fetch_status(status, r#"{"message":"Forbidden"}"#, 14, "2026-12-03")
            .await
            .expect_err("rejected");
        assert_eq!(error, PartnerError::Unauthorized { status });
        assert!(error.is_fatal() && !error.is_retryable());
    }
}

#[tokio::test]
async fn other_client_errors_are_bad_requests_with_an_excerpt() {
    let error = fetch_status(404, r#"{"error":"PRODUCT_NOT_FOUND"}"#, 99, "2026-12-03")
        .await
        .expect_err("404");
    assert_eq!(
        error,
        PartnerError::BadRequest {
            status: 404,
            body_excerpt: r#"{"error":"PRODUCT_NOT_FOUND"}"#.into()
        }
    );
    assert!(!error.is_fatal() && !error.is_retryable());
}

#[tokio::test]
async fn server_errors_are_transient() {
    for status in [500, 502, 503] {
        let error = fetch_status(status, "upstream down", 14, "2026-12-03")
            .await
            .expect_err("5xx");
        assert!(
            matches!(&error, PartnerError::Transient { status: Some(seen), .. } if *seen == status),
            "{error:?}"
        );
        assert!(error.is_retryable());
    }
}

#[tokio::test]
async fn a_response_slower_than_the_timeout_is_transient() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(MONDAY_14, "application/json")
                .set_delay(Duration::from_secs(5)),
        )
        .mount(&server)
        .await;
    let client = client(&server.uri(), 600_000, Duration::from_millis(200));

    let started = Instant::now();
    let error = client
        .fetch_day(experience(14), date("2026-11-30"))
        .await
        .expect_err("times out");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "timeout not applied"
    );
    assert!(
        matches!(&error, PartnerError::Transient { status: None, detail } if detail.contains("200ms")),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    // Bind then release a port, so nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let client = client(
        &format!("http://127.0.0.1:{port}"),
        600_000,
        Duration::from_secs(2),
    );
    let error = client
        .fetch_day(experience(14), date("2026-12-03"))
        .await
        .expect_err("refused");
    assert!(
        matches!(error, PartnerError::Transient { status: None, .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn sends_exactly_one_get_with_the_key_header_and_date() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/inventory/14"))
        .and(query_param("date", "2026-12-03"))
        .and(header("x-api-key", API_KEY))
        .respond_with(ResponseTemplate::new(200).set_body_raw(THURSDAY_14, "application/json"))
        .expect(1)
        .mount(&server)
        .await;

    fast_client(&server)
        .fetch_day(experience(14), date("2026-12-03"))
        .await
        .expect("fetches");

    let requests = server.received_requests().await.expect("recording on");
    assert_eq!(requests.len(), 1);
    assert!(
        !requests[0].url.as_str().contains(API_KEY),
        "key must travel in a header only"
    );
}

#[tokio::test]
async fn the_key_never_appears_in_errors_or_debug_output() {
    let echo = format!(r#"{{"message":"key {API_KEY} is not valid here"}}"#);
    let server = MockServer::start().await;
    let responses = [
        (1, ResponseTemplate::new(400).set_body_string(echo.clone())),
        (2, ResponseTemplate::new(401).set_body_string(echo.clone())),
        (3, ResponseTemplate::new(500).set_body_string(echo.clone())),
        (4, ResponseTemplate::new(429).set_body_string(echo.clone())),
        (
            5,
            ResponseTemplate::new(200).set_body_string(format!(r#"[{{"startDate":"{API_KEY}"}}]"#)),
        ),
        (
            6,
            ResponseTemplate::new(200).set_body_string(THURSDAY_14.replacen(
                r#""remaining":2000"#,
                &format!(r#""remaining":"{API_KEY}""#),
                1,
            )),
        ),
        (
            7,
            ResponseTemplate::new(200).set_delay(Duration::from_secs(5)),
        ),
        (
            8,
            ResponseTemplate::new(302)
                .insert_header("location", format!("http://127.0.0.1:9/?k={API_KEY}")),
        ),
    ];
    for (id, response) in responses {
        Mock::given(path(format!("/api/v1/inventory/{id}")))
            .respond_with(response)
            .mount(&server)
            .await;
    }
    let client = client(&server.uri(), 600_000, Duration::from_millis(300));
    assert!(!format!("{client:?}").contains(API_KEY));

    for id in 1..=8 {
        let error = client
            .fetch_day(experience(id), date("2026-12-03"))
            .await
            .expect_err("every case fails");
        let shown = format!("{error} / {error:?}");
        assert!(
            !shown.contains(API_KEY),
            "key leaked for case {id}: {shown}"
        );
    }
    // A connection error, whose text comes from the network stack.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let refused = client_with_key_in_path(port)
        .fetch_day(experience(1), date("2026-12-03"))
        .await
        .expect_err("refused");
    assert!(!format!("{refused} / {refused:?}").contains(API_KEY));
}

fn client_with_key_in_path(port: u16) -> PartnerClient {
    // Even a misconfigured base URL that embeds the key must not leak it through errors.
    client(
        &format!("http://127.0.0.1:{port}/{API_KEY}/"),
        600_000,
        Duration::from_secs(2),
    )
}

#[tokio::test]
async fn the_limiter_paces_calls_across_clones() {
    let server = MockServer::start().await;
    serve(&server, 14, "2026-11-30", 200, MONDAY_14).await;
    // 600 per minute = one call per 100 ms (100.5 ms with the safety margin).
    let client = client(&server.uri(), 600, Duration::from_secs(5));

    let started = Instant::now();
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let client = client.clone();
        calls.spawn(async move {
            client
                .fetch_day(experience(14), date("2026-11-30"))
                .await
                .map(|_| Instant::now())
        });
    }
    let mut finished: Vec<Duration> = calls
        .join_all()
        .await
        .into_iter()
        .map(|result| result.expect("fetch ok").duration_since(started))
        .collect();
    finished.sort();

    // The first call goes at once; each later one waits for its own 100.5 ms slot.
    for (index, at) in finished.iter().enumerate() {
        let earliest = Duration::from_micros(100_500 * index as u64);
        assert!(
            *at >= earliest,
            "call {index} finished at {at:?}, before {earliest:?}"
        );
    }
    assert!(
        finished[4] < Duration::from_secs(2),
        "pacing is far too slow: {finished:?}"
    );
    assert_eq!(client.rate_limit_per_minute().get(), 600);
}

/// Callers queued behind a call that draws a 429 wait for its reset: the partner sees one 429,
/// not one per queued caller.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn callers_queued_behind_a_429_wait_for_its_reset() {
    let server = MockServer::start().await;
    let reset_at = chrono::Utc::now() + chrono::Duration::seconds(1);
    let body = format!(
        r#"{{"rateLimitState":{{"reset":{},"limit":30,"remaining":0}}}}"#,
        reset_at.timestamp_millis()
    );
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).set_body_raw(body, "application/json"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    serve(&server, 14, "2026-11-30", 200, MONDAY_14).await;
    // One call every 200 ms: the 429 is in long before the next caller's slot.
    let client = client(&server.uri(), 300, Duration::from_secs(5));

    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let client = client.clone();
        calls.spawn(async move {
            let result = client.fetch_day(experience(14), date("2026-11-30")).await;
            (result, chrono::Utc::now())
        });
    }
    let results = calls.join_all().await;

    let rate_limited = results
        .iter()
        .filter(|(result, _)| matches!(result, Err(PartnerError::RateLimited { .. })))
        .count();
    assert_eq!(rate_limited, 1, "{results:?}");
    for (result, finished) in &results {
        if result.is_ok() {
            assert!(
                *finished >= reset_at,
                "finished {finished} before {reset_at}"
            );
        }
    }
    assert_eq!(
        results.iter().filter(|(result, _)| result.is_ok()).count(),
        3
    );
    let requests = server.received_requests().await.expect("recording on");
    assert_eq!(requests.len(), 4);
}
