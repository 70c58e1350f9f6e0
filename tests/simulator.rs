//! The built-in partner simulator, served on 127.0.0.1 and fetched through the real client.

mod common;

use std::num::NonZeroU32;
use std::time::Duration;

use chrono::{Datelike, Utc};
use invsync::domain::{DayFetch, Secret};
use invsync::partner::{PartnerClient, PartnerClientConfig, PartnerError};
use invsync::simulator::{
    Faults, SYNTHETIC_FIRST_ID, SimError, Simulator, SimulatorConfig, SimulatorHandle,
    synthetic_products,
};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use common::{date, experience, money, start_times, time};

const API_KEY: &str = "sim-key-0451";
const THURSDAY_14: &str = include_str!("../fixtures/responses/14_2026-12-03_thursday.json");
const SUNDAY_15: &str = include_str!("../fixtures/responses/15_2026-12-06_sunday.json");

/// The partner's own limit would slow these tests down; most of them lift it.
fn config(rate_limit_per_minute: u32) -> SimulatorConfig {
    SimulatorConfig {
        rate_limit_per_minute: NonZeroU32::new(rate_limit_per_minute).expect("non-zero"),
        seed: 7,
        ..SimulatorConfig::new(Secret::new(API_KEY))
    }
}

async fn start(config: SimulatorConfig) -> SimulatorHandle {
    Simulator::new(config)
        .spawn_local()
        .await
        .expect("simulator binds 127.0.0.1")
}

fn client(
    sim: &SimulatorHandle,
    key: &str,
    rate_limit_per_minute: u32,
    timeout: Duration,
) -> PartnerClient {
    PartnerClient::new(PartnerClientConfig {
        base_url: sim.base_url(),
        api_key: Secret::new(key),
        rate_limit_per_minute: NonZeroU32::new(rate_limit_per_minute).expect("non-zero"),
        request_timeout: timeout,
        protocol: invsync::partner::Protocol::Leap,
    })
    .expect("client builds")
}

fn fast_client(sim: &SimulatorHandle) -> PartnerClient {
    client(sim, API_KEY, 600_000, Duration::from_secs(5))
}

async fn fetch(sim: &SimulatorHandle, id: i64, day: &str) -> Result<DayFetch, PartnerError> {
    fast_client(sim).fetch_day(experience(id), date(day)).await
}

/// A raw GET of the partner route, for checking bodies byte for byte.
async fn raw_get(sim: &SimulatorHandle, path_and_query: &str, key: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(format!("{}{path_and_query}", sim.base_url()));
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    let response = request.send().await.expect("simulator answers");
    let status = response.status().as_u16();
    let body = response.bytes().await.expect("body");
    (status, serde_json::from_slice(&body).expect("JSON body"))
}

async fn control(sim: &SimulatorHandle, path: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", sim.base_url()))
        .json(&body)
        .send()
        .await
        .expect("simulator answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn product_14_on_a_tuesday_has_nine_slots_with_the_partners_prices() {
    let sim = start(config(1000)).await;
    let tuesday = date("2026-12-01");
    assert_eq!(tuesday.weekday(), chrono::Weekday::Tue);

    let day = fetch(&sim, 14, "2026-12-01").await.expect("fetches");

    assert_eq!(
        start_times(&day),
        [
            "04:00", "04:30", "05:00", "05:30", "06:00", "06:30", "07:00", "07:30", "08:00"
        ]
    );
    for slot in &day.slots {
        let half_hour = slot.start_time.format("%M").to_string() == "30";
        let (adult, child) = if half_hour {
            (("242.14", "342.14"), ("73", "173"))
        } else {
            (("212.14", "312.14"), ("43", "143"))
        };
        assert_eq!(slot.remaining, 2000);
        assert_eq!(slot.variant_id, 32);
        assert_eq!(slot.end_time, slot.start_time);
        assert_eq!(
            slot.provider_slot_id,
            format!(
                "225532707686_2026-12-01T{}",
                slot.start_time.format("%H:%M")
            )
        );
        assert_eq!(slot.pax[0].pax_type, "ADULT_12~99");
        assert!(slot.pax[0].is_primary);
        assert_eq!(slot.pax[0].remaining, 1000);
        assert_eq!(slot.pax[0].price.final_price, money(adult.0));
        assert_eq!(slot.pax[0].price.original_price, money(adult.1));
        if slot.start_time == time("08:00") {
            assert_eq!(slot.pax.len(), 1, "08:00 sells adults only");
        } else {
            assert_eq!(slot.pax.len(), 2);
            assert_eq!(slot.pax[1].pax_type, "CHILD_3~11");
            assert!(!slot.pax[1].is_primary);
            assert_eq!(slot.pax[1].price.final_price, money(child.0));
            assert_eq!(slot.pax[1].price.original_price, money(child.1));
        }
    }
}

#[tokio::test]
async fn served_bodies_match_the_recorded_partner_responses() {
    let sim = start(config(1000)).await;
    for (path, recorded) in [
        ("/api/v1/inventory/14?date=2026-12-03", THURSDAY_14),
        ("/api/v1/inventory/15?date=2026-12-06", SUNDAY_15),
        ("/api/v1/inventory/14?date=2026-11-30", "[]"),
        ("/api/v1/inventory/15?date=2026-12-05", "[]"),
    ] {
        let (status, body) = raw_get(&sim, path, Some(API_KEY)).await;
        assert_eq!(status, 200, "{path}");
        let recorded: Value = serde_json::from_str(recorded).expect("fixture is JSON");
        assert_eq!(body, recorded, "{path}");
    }
}

#[tokio::test]
async fn a_monday_has_no_slots() {
    let sim = start(config(1000)).await;
    let day = fetch(&sim, 14, "2026-11-30").await.expect("fetches");
    assert!(day.slots.is_empty());
}

#[tokio::test]
async fn synthetic_products_run_one_to_four_days_a_week_and_parse() {
    let products = synthetic_products(40, 3);
    assert_eq!(
        products,
        synthetic_products(40, 3),
        "a seed replays the catalog"
    );
    let sim = start(SimulatorConfig {
        products,
        ..config(100_000)
    })
    .await;
    let week = date("2026-11-30").iter_days().take(7);
    for id in SYNTHETIC_FIRST_ID..SYNTHETIC_FIRST_ID + 40 {
        let mut running_days = 0;
        for day in week.clone() {
            let fetched = fetch(&sim, id, &day.to_string()).await.expect("fetches");
            if !fetched.slots.is_empty() {
                running_days += 1;
                assert!(fetched.slots.len() <= 12);
                assert!(fetched.slots.iter().all(|slot| slot.pax.len() == 2));
            }
        }
        assert!(
            (1..=4).contains(&running_days),
            "product {id} runs {running_days} days"
        );
    }
}

#[tokio::test]
async fn product_15_runs_on_sundays_with_three_pax_types() {
    let sim = start(config(1000)).await;
    let day = fetch(&sim, 15, "2026-12-06").await.expect("fetches");
    let [slot] = day.slots.as_slice() else {
        panic!("one slot expected: {:?}", day.slots)
    };
    assert_eq!(
        (slot.start_time, slot.remaining, slot.variant_id),
        (time("00:00"), 170, 122)
    );
    let pax: Vec<(&str, i64, Decimal, Decimal)> = slot
        .pax
        .iter()
        .map(|pax| {
            (
                pax.pax_type.as_str(),
                pax.remaining,
                pax.price.final_price,
                pax.price.original_price,
            )
        })
        .collect();
    assert_eq!(
        pax,
        [
            ("ADULT_12~99", 150, money("341"), money("441")),
            ("CHILD_5~15", 10, money("137"), money("237")),
            ("INFANT_0~4", 10, Decimal::ZERO, Decimal::ZERO),
        ]
    );
}

#[tokio::test]
async fn an_unknown_product_is_a_404() {
    let sim = start(config(1000)).await;
    let (status, body) =
        raw_get(&sim, "/api/v1/inventory/999?date=2026-12-03", Some(API_KEY)).await;
    assert_eq!((status, &body["error"]), (404, &json!("PRODUCT_NOT_FOUND")));
    let error = fetch(&sim, 999, "2026-12-03").await.expect_err("unknown");
    assert!(
        matches!(error, PartnerError::BadRequest { status: 404, .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_missing_or_wrong_key_is_a_401() {
    let sim = start(config(1000)).await;
    let (status, body) = raw_get(&sim, "/api/v1/inventory/14?date=2026-12-03", None).await;
    assert_eq!((status, &body["error"]), (401, &json!("UNAUTHORIZED")));

    let error = client(&sim, "wrong-key", 600_000, Duration::from_secs(5))
        .fetch_day(experience(14), date("2026-12-03"))
        .await
        .expect_err("rejected");
    assert_eq!(error, PartnerError::Unauthorized { status: 401 });
    assert!(error.is_fatal());
}

#[tokio::test]
async fn exceeding_the_limit_is_a_429_with_the_partners_body() {
    let sim = start(config(3)).await;
    let before = Utc::now();
    for _ in 0..3 {
        fetch(&sim, 14, "2026-12-03")
            .await
            .expect("within the limit");
    }

    let (status, body) = raw_get(&sim, "/api/v1/inventory/14?date=2026-12-03", Some(API_KEY)).await;
    assert_eq!(status, 429);
    let state = &body["rateLimitState"];
    assert_eq!(
        (&state["limit"], &state["remaining"]),
        (&json!(3), &json!(0))
    );
    let reset_ms = state["reset"].as_i64().expect("reset is epoch ms");
    // The first call leaves the 60 s window a minute after it was made.
    assert!(reset_ms >= before.timestamp_millis() + 59_000, "{reset_ms}");
    assert!(
        reset_ms <= Utc::now().timestamp_millis() + 60_001,
        "{reset_ms}"
    );

    let error = fetch(&sim, 14, "2026-12-03").await.expect_err("limited");
    let PartnerError::RateLimited {
        reset_at: Some(reset_at),
    } = error
    else {
        panic!("expected RateLimited with a reset, got {error:?}")
    };
    assert!(reset_at > Utc::now() && reset_at <= Utc::now() + chrono::Duration::seconds(60));

    let statuses: Vec<u16> = sim.sim.calls().iter().map(|call| call.status).collect();
    assert_eq!(
        statuses,
        [200, 200, 200, 429, 429],
        "429s do not count against the window"
    );
}

#[tokio::test]
async fn in_process_changes_show_in_the_next_fetch_of_that_date_only() {
    let sim = start(config(1000)).await;
    let (fourteen, thursday, at_0430) = (experience(14), date("2026-12-03"), time("04:30"));

    sim.sim
        .set_slot_remaining(fourteen, thursday, at_0430, 1994)
        .expect("slot exists");
    sim.sim
        .set_pax_remaining(fourteen, thursday, at_0430, "CHILD_3~11", 7)
        .expect("pax exists");
    sim.sim
        .set_pax_price(
            fourteen,
            thursday,
            at_0430,
            "ADULT_12~99",
            money("199.99"),
            money("342.14"),
        )
        .expect("pax exists");
    sim.sim
        .remove_slot(fourteen, thursday, time("06:00"))
        .expect("slot exists");

    let day = fetch(&sim, 14, "2026-12-03").await.expect("fetches");
    let slot = day
        .slots
        .iter()
        .find(|slot| slot.start_time == at_0430)
        .expect("04:30");
    assert_eq!(slot.remaining, 1994);
    assert_eq!(slot.pax[1].remaining, 7);
    assert_eq!(slot.pax[0].remaining, 1000, "other pax untouched");
    assert_eq!(slot.pax[0].price.final_price.to_string(), "199.99");
    assert_eq!(day.slots.len(), 8);
    assert!(
        day.slots
            .iter()
            .all(|slot| slot.start_time != time("06:00"))
    );

    // Changes persist across fetches and stay on their date.
    let again = fetch(&sim, 14, "2026-12-03").await.expect("fetches");
    assert_eq!(again.slots, day.slots);
    let next_tuesday = fetch(&sim, 14, "2026-12-08").await.expect("fetches");
    assert_eq!(next_tuesday.slots.len(), 9);
    assert!(next_tuesday.slots.iter().all(|slot| slot.remaining == 2000));

    // A negative count is served as-is, and the client refuses it.
    sim.sim
        .set_pax_remaining(fourteen, thursday, at_0430, "CHILD_3~11", -1)
        .expect("pax exists");
    let error = fetch(&sim, 14, "2026-12-03").await.expect_err("negative");
    assert!(matches!(error, PartnerError::Malformed { .. }), "{error:?}");
}

#[tokio::test]
async fn changes_to_missing_things_are_errors() {
    let sim = Simulator::new(config(1000));
    let (thursday, monday) = (date("2026-12-03"), date("2026-11-30"));
    assert_eq!(
        sim.set_slot_remaining(experience(99), thursday, time("04:00"), 1),
        Err(SimError::UnknownProduct(experience(99)))
    );
    assert!(matches!(
        sim.remove_slot(experience(14), monday, time("04:00")),
        Err(SimError::NoSuchSlot { .. })
    ));
    assert!(matches!(
        sim.set_pax_remaining(experience(14), thursday, time("08:00"), "CHILD_3~11", 1),
        Err(SimError::NoSuchPax { .. })
    ));
}

#[tokio::test]
async fn control_routes_change_inventory_over_http() {
    let sim = start(config(1000)).await;
    let slot = json!({ "productId": 15, "date": "2026-12-06", "startTime": "00:00" });
    let with = |extra: Value| {
        let mut body = slot.clone();
        body.as_object_mut()
            .expect("object")
            .extend(extra.as_object().expect("object").clone());
        body
    };

    let (status, updated) = control(
        &sim,
        "/_sim/slot/remaining",
        with(json!({ "remaining": 160 })),
    )
    .await;
    assert_eq!((status, &updated["remaining"]), (200, &json!(160)));
    let (status, _) = control(
        &sim,
        "/_sim/pax/remaining",
        with(json!({ "paxType": "CHILD_5~15", "remaining": 0 })),
    )
    .await;
    assert_eq!(status, 200);
    let (status, updated) = control(
        &sim,
        "/_sim/pax/price",
        with(json!({ "paxType": "ADULT_12~99", "finalPrice": 299.5, "originalPrice": 441 })),
    )
    .await;
    assert_eq!(
        (
            status,
            &updated["paxAvailability"][0]["price"]["finalPrice"]
        ),
        (200, &json!(299.5))
    );

    let day = fetch(&sim, 15, "2026-12-06").await.expect("fetches");
    assert_eq!(day.slots[0].remaining, 160);
    assert_eq!(day.slots[0].pax[1].remaining, 0);
    assert_eq!(day.slots[0].pax[0].price.final_price, money("299.5"));

    let (status, _) = control(&sim, "/_sim/slot/remove", slot.clone()).await;
    assert_eq!(status, 200);
    assert!(
        fetch(&sim, 15, "2026-12-06")
            .await
            .expect("fetches")
            .slots
            .is_empty()
    );

    let (status, error) = control(&sim, "/_sim/slot/remove", slot).await;
    assert_eq!((status, &error["error"]), (404, &json!("NOT_FOUND")));
    let (status, error) = control(&sim, "/_sim/slot/remaining", json!({ "productId": 15 })).await;
    assert_eq!((status, &error["error"]), (400, &json!("BAD_REQUEST")));
}

async fn fetch_with_faults(faults: Faults, timeout: Duration) -> PartnerError {
    let sim = start(config(1000)).await;
    sim.sim.set_faults(faults).expect("valid faults");
    client(&sim, API_KEY, 600_000, timeout)
        .fetch_day(experience(14), date("2026-12-03"))
        .await
        .expect_err("the fault hits every call")
}

#[tokio::test]
async fn faults_map_to_the_right_client_errors() {
    let always = |set: fn(&mut Faults)| {
        let mut faults = Faults::default();
        set(&mut faults);
        faults
    };
    let timeout = Duration::from_millis(300);

    let error = fetch_with_faults(always(|f| f.server_error_percent = 100), timeout).await;
    assert!(
        matches!(
            error,
            PartnerError::Transient {
                status: Some(500),
                ..
            }
        ),
        "{error:?}"
    );

    let error = fetch_with_faults(always(|f| f.garbage_percent = 100), timeout).await;
    assert!(matches!(error, PartnerError::Malformed { .. }), "{error:?}");

    let error = fetch_with_faults(always(|f| f.truncated_percent = 100), timeout).await;
    assert!(
        matches!(&error, PartnerError::Malformed { detail, .. } if detail.contains("not valid JSON")),
        "{error:?}"
    );

    let slow = always(|f| {
        f.slow_percent = 100;
        f.slow_delay_ms = 3_000;
    });
    let error = fetch_with_faults(slow, timeout).await;
    assert!(
        matches!(error, PartnerError::Transient { status: None, .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_rate_limit_storm_answers_429_until_it_ends() {
    let sim = start(config(1000)).await;
    sim.sim.start_rate_limit_storm(Duration::from_secs(30));
    let error = fetch(&sim, 14, "2026-12-03").await.expect_err("storm");
    let PartnerError::RateLimited {
        reset_at: Some(reset_at),
    } = error
    else {
        panic!("expected RateLimited with a reset, got {error:?}")
    };
    let seconds_left = (reset_at - Utc::now()).num_milliseconds();
    assert!(
        (28_000..=30_001).contains(&seconds_left),
        "{seconds_left} ms"
    );

    sim.sim.start_rate_limit_storm(Duration::ZERO);
    fetch(&sim, 14, "2026-12-03").await.expect("storm over");
}

#[tokio::test]
async fn faults_can_be_set_over_http_and_are_validated() {
    let sim = start(config(1000)).await;
    let http = reqwest::Client::new();
    let url = format!("{}/_sim/faults", sim.base_url());

    let too_much = json!({ "serverErrorPercent": 60, "garbagePercent": 50 });
    let response = http
        .put(&url)
        .json(&too_much)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status().as_u16(), 400);
    assert!(
        sim.sim
            .set_faults(serde_json::from_value(too_much).expect("shape"))
            .is_err()
    );

    let response = http
        .put(&url)
        .json(&json!({ "serverErrorPercent": 100 }))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status().as_u16(), 200);
    let current: Faults = http
        .get(&url)
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(current.server_error_percent, 100);
    assert_eq!(current.slow_delay_ms, Faults::default().slow_delay_ms);
    let error = fetch(&sim, 14, "2026-12-03").await.expect_err("500");
    assert!(matches!(
        error,
        PartnerError::Transient {
            status: Some(500),
            ..
        }
    ));

    let storm = http
        .post(format!("{url}/rate-limit-storm"))
        .json(&json!({ "seconds": 10 }))
        .send()
        .await
        .expect("answers");
    assert_eq!(storm.status().as_u16(), 204);
    let error = fetch(&sim, 14, "2026-12-03").await.expect_err("429");
    assert!(matches!(
        error,
        PartnerError::RateLimited { reset_at: Some(_) }
    ));
}

#[tokio::test]
async fn a_seed_replays_the_same_faults() {
    async fn statuses(seed: u64) -> Vec<u16> {
        let sim = start(SimulatorConfig {
            seed,
            ..config(1000)
        })
        .await;
        let faults = Faults {
            server_error_percent: 30,
            garbage_percent: 20,
            truncated_percent: 20,
            ..Faults::default()
        };
        sim.sim.set_faults(faults).expect("valid");
        let client = fast_client(&sim);
        let mut outcomes = Vec::new();
        for _ in 0..20 {
            let outcome = client.fetch_day(experience(14), date("2026-12-03")).await;
            outcomes.push(match outcome {
                Ok(_) => 200,
                Err(PartnerError::Transient { .. }) => 500,
                Err(_) => 1,
            });
        }
        outcomes
    }
    let first = statuses(42).await;
    assert_eq!(first, statuses(42).await);
    assert!(
        first.contains(&200) && first.contains(&500) && first.contains(&1),
        "{first:?}"
    );
}

#[tokio::test]
async fn the_client_paces_itself_under_the_simulators_limit() {
    // 600 per minute on both sides: one call per 100.5 ms from the client.
    let sim = start(config(600)).await;
    let client = client(&sim, API_KEY, 600, Duration::from_secs(5));
    for _ in 0..12 {
        client
            .fetch_day(experience(14), date("2026-12-03"))
            .await
            .expect("never limited");
    }
    let calls = sim.sim.calls();
    assert_eq!(calls.len(), 12);
    assert!(calls.iter().all(|call| call.status == 200));
    assert!(calls.iter().all(
        |call| call.experience == Some(experience(14)) && call.date == Some(date("2026-12-03"))
    ));
    // At most 10 starts fit in one second at that pace.
    assert!(sim.sim.max_calls_in_any_window(Duration::from_secs(1)) <= 10);
    assert_eq!(sim.sim.max_calls_in_any_window(Duration::from_secs(60)), 12);
}

#[tokio::test]
async fn churn_sells_seats_on_running_days() {
    let sim = Simulator::new(config(1000));
    let today = date("2026-12-01");
    let total_left = |sim: &Simulator| -> i64 {
        (0..14)
            .map(|offset| today + chrono::Days::new(offset))
            .flat_map(|day| [14, 15].map(|id| sim.inventory(experience(id), day).expect("known")))
            .flatten()
            .flat_map(|slot| slot.pax_availability)
            .map(|pax| pax.remaining.as_i64().expect("integer"))
            .sum()
    };
    let before = total_left(&sim);

    let sale = sim.sell_random_seats(today).expect("something to sell");
    assert!((1..=3).contains(&sale.seats));
    assert!(sale.date >= today && sale.date < today + chrono::Days::new(14));
    let day = sim.inventory(sale.experience, sale.date).expect("known");
    let slot = day
        .iter()
        .find(|slot| slot.start_time == sale.start_time)
        .expect("sold slot");
    let pax = slot
        .pax_availability
        .iter()
        .find(|pax| pax.pax_type == sale.pax_type)
        .expect("sold pax");
    assert!(pax.remaining.as_i64() < Some(1000));
    assert_eq!(total_left(&sim), before - sale.seats);
}

#[tokio::test]
async fn churn_runs_in_the_background_while_serving() {
    let sim = start(SimulatorConfig {
        churn_every: Some(Duration::from_millis(20)),
        ..config(1000)
    })
    .await;
    let today = Utc::now().date_naive();
    let slot_seats_left = |sim: &Simulator| -> i64 {
        (0..14)
            .map(|offset| today + chrono::Days::new(offset))
            .flat_map(|day| [14, 15].map(|id| sim.inventory(experience(id), day).expect("known")))
            .flatten()
            .map(|slot| slot.remaining.as_i64().expect("integer"))
            .sum()
    };
    let before = slot_seats_left(&sim.sim);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(slot_seats_left(&sim.sim) < before);
    sim.shutdown().await.expect("clean shutdown");
}
