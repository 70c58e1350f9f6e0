//! The built-in simulator's OCTO face (`/octo`), served on 127.0.0.1 and called over HTTP:
//! products from the catalogue, availability ranges that match the partner's own route day
//! by day, and the same key, rate window, faults and call log as that route.

mod common;

use std::num::NonZeroU32;

use invsync::domain::Secret;
use invsync::simulator::{
    CallRoute, Fault, Faults, Simulator, SimulatorConfig, SimulatorHandle, builtin_products,
};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use common::{date, experience, time};

const API_KEY: &str = "sim-key-octo";
const PRICING: &str = "octo/pricing";

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

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "JSON body expected ({error}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("simulator answers");
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.bytes().await.expect("body").to_vec(),
    }
}

async fn octo_get(sim: &SimulatorHandle, path: &str, key: Option<&str>) -> Answer {
    let mut request = reqwest::Client::new().get(format!("{}/octo{path}", sim.base_url()));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    send(request).await
}

async fn octo_availability(
    sim: &SimulatorHandle,
    body: Value,
    key: Option<&str>,
    pricing: bool,
) -> Answer {
    let mut request = reqwest::Client::new()
        .post(format!("{}/octo/availability", sim.base_url()))
        .json(&body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if pricing {
        request = request.header("Octo-Capabilities", PRICING);
    }
    send(request).await
}

fn range(product: &str, first: &str, last: &str) -> Value {
    json!({
        "productId": product,
        "optionId": "DEFAULT",
        "localDateStart": first,
        "localDateEnd": last,
    })
}

async fn leap_day(sim: &SimulatorHandle, product: i64, day: &str) -> Value {
    let answer = send(
        reqwest::Client::new()
            .get(format!(
                "{}/api/v1/inventory/{product}?date={day}",
                sim.base_url()
            ))
            .header("x-api-key", API_KEY),
    )
    .await;
    assert_eq!(answer.status, 200);
    answer.json()
}

/// A JSON number (serde_json keeps its exact text) as a decimal.
fn decimal(value: &Value) -> Decimal {
    value
        .to_string()
        .parse()
        .unwrap_or_else(|_| panic!("decimal expected, got {value}"))
}

/// `minor` units at `precision` digits, back in major units.
fn major(minor: &Value, precision: &Value) -> Decimal {
    let precision = precision.as_u64().expect("currencyPrecision") as u32;
    let mut amount = decimal(minor);
    amount.set_scale(precision).expect("precision in range");
    amount
}

/// Asserts that `availabilities` (an OCTO answer) holds exactly the partner route's slots
/// of `days`, in order, with its vacancies and exact prices.
async fn assert_matches_leap(
    sim: &SimulatorHandle,
    product: i64,
    days: &[&str],
    availabilities: &[Value],
) {
    let mut expected = Vec::new();
    for day in days {
        for slot in leap_day(sim, product, day).await.as_array().expect("array") {
            expected.push((day.to_string(), slot.clone()));
        }
    }
    assert_eq!(availabilities.len(), expected.len(), "{availabilities:#?}");
    for (availability, (day, slot)) in availabilities.iter().zip(&expected) {
        let start = slot["startTime"].as_str().expect("startTime");
        let local = format!("{day}T{start}:00+08:00");
        assert_eq!(availability["id"], local.as_str());
        assert_eq!(availability["localDateTimeStart"], local.as_str());
        assert_eq!(availability["localDateTimeEnd"], local.as_str());
        assert_eq!(availability["allDay"], false);
        assert_eq!(availability["vacancies"], slot["remaining"]);
        let remaining = slot["remaining"].as_i64().expect("remaining");
        assert!(availability["capacity"].as_i64().expect("capacity") >= remaining);
        assert_eq!(availability["available"], remaining > 0);
        assert_eq!(
            availability["status"],
            if remaining > 0 {
                "AVAILABLE"
            } else {
                "SOLD_OUT"
            }
        );
        assert_eq!(availability["maxUnits"], Value::Null);
        assert_eq!(availability["openingHours"], json!([]));

        let prices = availability["unitPricing"].as_array().expect("unitPricing");
        let pax = slot["paxAvailability"].as_array().expect("pax");
        assert_eq!(prices.len(), pax.len());
        for (price, pax) in prices.iter().zip(pax) {
            assert_eq!(price["unitId"], pax["type"]);
            assert_eq!(price["currency"], "SGD");
            assert_eq!(price["net"], Value::Null);
            assert_eq!(price["includedTaxes"], json!([]));
            let precision = &price["currencyPrecision"];
            assert!(precision.as_u64().expect("precision") >= 2);
            assert!(price["original"].is_i64() && price["retail"].is_i64());
            assert_eq!(
                major(&price["original"], precision),
                decimal(&pax["price"]["originalPrice"])
            );
            assert_eq!(
                major(&price["retail"], precision),
                decimal(&pax["price"]["finalPrice"])
            );
        }
    }
}

#[tokio::test]
async fn products_and_units_match_the_catalogue() {
    let sim = start(config(1000)).await;
    let answer = octo_get(&sim, "/products", Some(API_KEY)).await;
    assert_eq!(answer.status, 200);
    let products = answer.json();
    let products = products.as_array().expect("array of products");
    let catalogue = builtin_products().expect("fixtures");
    assert_eq!(products.len(), catalogue.len());

    for (product, definition) in products.iter().zip(&catalogue) {
        let id = definition.product_id.to_string();
        assert_eq!(product["id"], id.as_str());
        assert_eq!(product["reference"], Value::Null);
        assert_eq!(product["locale"], "en");
        assert_eq!(product["timeZone"], "Asia/Singapore");
        assert_eq!(product["allowFreesale"], false);
        assert_eq!(product["instantConfirmation"], true);
        assert_eq!(product["instantDelivery"], true);
        assert_eq!(product["availabilityRequired"], true);
        assert_eq!(product["availabilityType"], "START_TIME");
        assert_eq!(product["deliveryFormats"], json!(["QRCODE"]));
        assert_eq!(product["deliveryMethods"], json!(["VOUCHER"]));
        assert_eq!(product["redemptionMethod"], "DIGITAL");
        assert!(product["internalName"].is_string());
        // Pricing fields only with the capability.
        assert!(product.get("defaultCurrency").is_none());

        let options = product["options"].as_array().expect("options");
        assert_eq!(options.len(), 1);
        let option = &options[0];
        assert_eq!(option["id"], "DEFAULT");
        assert_eq!(option["default"], true);
        assert_eq!(option["internalName"], "Default");
        assert_eq!(option["reference"], Value::Null);
        assert_eq!(option["cancellationCutoff"], "0 hours");
        assert_eq!(option["cancellationCutoffAmount"], 0);
        assert_eq!(option["cancellationCutoffUnit"], "hour");
        assert_eq!(option["requiredContactFields"], json!([]));
        assert_eq!(
            option["restrictions"],
            json!({"minUnits": 0, "maxUnits": null})
        );
        let mut start_times: Vec<&str> = definition
            .slots
            .iter()
            .map(|slot| slot.start_time.as_str())
            .collect();
        start_times.sort();
        assert_eq!(option["availabilityLocalStartTimes"], json!(start_times));

        let units = option["units"].as_array().expect("units");
        assert_eq!(units.len(), definition.pax_types.len());
        for (unit, pax) in units.iter().zip(&definition.pax_types) {
            let leading = pax.pax_type.split('_').next().expect("a word");
            assert_eq!(
                unit,
                &json!({
                    "id": pax.pax_type,
                    "internalName": pax.name,
                    "reference": pax.description,
                    "type": leading,
                    "restrictions": {
                        "minAge": 0, "maxAge": 100, "idRequired": false,
                        "minQuantity": pax.min, "maxQuantity": pax.max,
                        "paxCount": 1, "accompaniedBy": [],
                    },
                    "requiredContactFields": [],
                })
            );
        }

        let one = octo_get(&sim, &format!("/products/{id}"), Some(API_KEY)).await;
        assert_eq!(one.status, 200);
        assert_eq!(&one.json(), product);
    }
    // Product 15 has an infant unit.
    assert_eq!(products[1]["options"][0]["units"][2]["type"], "INFANT");

    let priced = send(
        reqwest::Client::new()
            .get(format!("{}/octo/products/14", sim.base_url()))
            .bearer_auth(API_KEY)
            .header("Octo-Capabilities", PRICING),
    )
    .await;
    assert_eq!(priced.status, 200);
    let priced = priced.json();
    assert_eq!(priced["defaultCurrency"], "SGD");
    assert_eq!(priced["availableCurrencies"], json!(["SGD"]));

    // Product calls are logged and counted like any call.
    let calls = sim.sim.calls();
    assert_eq!(calls.len(), 4);
    assert_eq!(calls[0].route, CallRoute::OctoProducts);
    assert_eq!(calls[1].route, CallRoute::OctoProduct);
    assert_eq!(calls[1].experience, Some(experience(14)));
}

#[tokio::test]
async fn a_three_day_range_is_each_days_slots_with_the_partners_remaining_and_exact_prices() {
    let sim = start(config(1000)).await;
    // Tuesday, Wednesday (no inventory) and Thursday for product 14.
    let answer = octo_availability(
        &sim,
        range("14", "2026-12-01", "2026-12-03"),
        Some(API_KEY),
        true,
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.headers["octo-capabilities"], PRICING);
    let body = answer.json();
    let availabilities = body.as_array().expect("array");
    assert_eq!(availabilities.len(), 18);
    assert_eq!(availabilities[0]["id"], "2026-12-01T04:00:00+08:00");
    assert_eq!(availabilities[0]["utcCutoffAt"], "2026-11-30T20:00:00Z");
    assert_eq!(
        availabilities[0]["unitPricing"][0],
        json!({
            "unitId": "ADULT_12~99", "original": 31214, "retail": 21214, "net": null,
            "currency": "SGD", "currencyPrecision": 2, "includedTaxes": [],
        })
    );
    assert_eq!(availabilities[0]["unitPricing"][1]["retail"], 4300);
    assert!(
        availabilities
            .iter()
            .all(|availability| availability.get("unitVacancies").is_none())
    );
    let starts: Vec<&str> = availabilities
        .iter()
        .map(|availability| availability["id"].as_str().expect("id"))
        .collect();
    assert!(starts.is_sorted());

    // One range call is one logged call, dated by its first and last day.
    let calls = sim.sim.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].route, CallRoute::OctoAvailability);
    assert_eq!(calls[0].experience, Some(experience(14)));
    assert_eq!(calls[0].date, Some(date("2026-12-01")));
    assert_eq!(calls[0].last_date, Some(date("2026-12-03")));
    assert_eq!(calls[0].status, 200);
    let logged = serde_json::to_value(&calls[0]).expect("serializes");
    assert_eq!(logged["lastDate"], "2026-12-03");
    assert_eq!(logged["route"], "octoAvailability");

    assert_matches_leap(
        &sim,
        14,
        &["2026-12-01", "2026-12-02", "2026-12-03"],
        availabilities,
    )
    .await;

    // A price with more decimals than the currency has raises the precision, never rounds.
    sim.sim
        .set_pax_price(
            experience(14),
            date("2026-12-03"),
            time("05:00"),
            "CHILD_3~11",
            "10.125".parse().expect("decimal"),
            "143".parse().expect("decimal"),
        )
        .expect("slot exists");
    let body = octo_availability(
        &sim,
        json!({"productId": "14", "optionId": "DEFAULT", "localDate": "2026-12-03"}),
        Some(API_KEY),
        true,
    )
    .await
    .json();
    let child = &body[2]["unitPricing"][1];
    assert_eq!(child["currencyPrecision"], 3);
    assert_eq!(child["retail"], 10125);
    assert_eq!(child["original"], 143000);
    assert_matches_leap(&sim, 14, &["2026-12-03"], body.as_array().expect("array")).await;

    // Without the capability, no prices.
    let plain = octo_availability(
        &sim,
        range("15", "2026-12-06", "2026-12-06"),
        Some(API_KEY),
        false,
    )
    .await;
    assert!(plain.headers.get("octo-capabilities").is_none());
    let plain = plain.json();
    assert_eq!(plain.as_array().expect("array").len(), 1);
    assert_eq!(plain[0]["id"], "2026-12-06T00:00:00+08:00");
    assert_eq!(plain[0]["vacancies"], 170);
    assert!(plain[0].get("unitPricing").is_none());
}

#[tokio::test]
async fn changed_slots_show_in_the_range() {
    let sim = start(config(1000)).await;
    let control = reqwest::Client::new()
        .post(format!("{}/_sim/slot/remaining", sim.base_url()))
        .json(&json!({
            "productId": 14, "date": "2026-12-01", "startTime": "04:30", "remaining": 0,
        }))
        .send()
        .await
        .expect("control answers");
    assert_eq!(control.status(), 200);
    sim.sim
        .set_slot_remaining(experience(14), date("2026-12-03"), time("05:00"), 7)
        .expect("slot exists");
    sim.sim
        .remove_slot(experience(14), date("2026-12-03"), time("08:00"))
        .expect("slot exists");

    let body = octo_availability(
        &sim,
        range("14", "2026-12-01", "2026-12-03"),
        Some(API_KEY),
        true,
    )
    .await
    .json();
    let availabilities = body.as_array().expect("array");
    assert_eq!(availabilities.len(), 17);
    let sold_out = &availabilities[1];
    assert_eq!(sold_out["id"], "2026-12-01T04:30:00+08:00");
    assert_eq!(sold_out["vacancies"], 0);
    assert_eq!(sold_out["available"], false);
    assert_eq!(sold_out["status"], "SOLD_OUT");
    let lowered = availabilities
        .iter()
        .find(|availability| availability["id"] == "2026-12-03T05:00:00+08:00")
        .expect("the changed slot");
    assert_eq!(lowered["vacancies"], 7);
    assert_eq!(lowered["capacity"], 2000);
    assert_eq!(lowered["status"], "AVAILABLE");
    assert!(
        availabilities
            .iter()
            .all(|availability| availability["id"] != "2026-12-03T08:00:00+08:00")
    );
    assert_matches_leap(
        &sim,
        14,
        &["2026-12-01", "2026-12-02", "2026-12-03"],
        availabilities,
    )
    .await;

    // The in-process view is the same answer.
    let in_process = sim
        .sim
        .octo_availability(experience(14), date("2026-12-01"), date("2026-12-03"))
        .expect("product exists");
    assert_eq!(&in_process, &body);
}

#[tokio::test]
async fn a_range_call_counts_once_against_the_rate_limit() {
    let sim = start(config(2)).await;
    let month = range("14", "2026-12-01", "2026-12-31");
    assert_eq!(
        octo_availability(&sim, month.clone(), Some(API_KEY), true)
            .await
            .status,
        200
    );
    assert_eq!(
        octo_availability(&sim, month.clone(), Some(API_KEY), true)
            .await
            .status,
        200
    );
    let refused = octo_availability(&sim, month, Some(API_KEY), true).await;
    assert_eq!(refused.status, 429);
    let retry_after: u64 = refused.headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body = refused.json();
    assert!(body["rateLimitState"]["reset"].is_i64(), "{body}");

    // The Leap route shares the window.
    let leap = send(
        reqwest::Client::new()
            .get(format!(
                "{}/api/v1/inventory/14?date=2026-12-01",
                sim.base_url()
            ))
            .header("x-api-key", API_KEY),
    )
    .await;
    assert_eq!(leap.status, 429);

    let statuses: Vec<u16> = sim.sim.calls().iter().map(|call| call.status).collect();
    assert_eq!(statuses, [200, 200, 429, 429]);
}

#[tokio::test]
async fn without_the_bearer_key_calls_are_unauthorized() {
    let sim = start(config(1000)).await;
    for key in [None, Some("wrong-key")] {
        let answer = octo_get(&sim, "/products", key).await;
        assert_eq!(answer.status, 401);
        let body = answer.json();
        assert_eq!(body["error"], "UNAUTHORIZED");
        assert!(body["errorMessage"].is_string());

        let answer =
            octo_availability(&sim, range("14", "2026-12-01", "2026-12-01"), key, true).await;
        assert_eq!(answer.status, 401);
        assert_eq!(answer.json()["error"], "UNAUTHORIZED");
    }
    // The partner's header is not OCTO's.
    let answer = send(
        reqwest::Client::new()
            .get(format!("{}/octo/products", sim.base_url()))
            .header("x-api-key", API_KEY),
    )
    .await;
    assert_eq!(answer.status, 401);
    assert!(sim.sim.calls().iter().all(|call| call.status == 401));
}

#[tokio::test]
async fn unknown_products_options_and_bad_ranges_are_octo_errors() {
    let sim = start(config(1000)).await;
    let answer = octo_get(&sim, "/products/99", Some(API_KEY)).await;
    assert_eq!(answer.status, 400);
    let body = answer.json();
    assert_eq!(body["error"], "INVALID_PRODUCT_ID");
    assert_eq!(body["productId"], "99");
    assert!(body["errorMessage"].is_string());

    let answer = octo_get(&sim, "/products/not-a-number", Some(API_KEY)).await;
    assert_eq!(answer.json()["error"], "INVALID_PRODUCT_ID");

    let answer = octo_availability(
        &sim,
        range("99", "2026-12-01", "2026-12-01"),
        Some(API_KEY),
        true,
    )
    .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["error"], "INVALID_PRODUCT_ID");
    assert_eq!(answer.json()["productId"], "99");

    let answer = octo_availability(
        &sim,
        json!({"productId": "14", "optionId": "OTHER", "localDate": "2026-12-01"}),
        Some(API_KEY),
        true,
    )
    .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["error"], "INVALID_OPTION_ID");

    // 31 days, both included, are answered; 32 are not.
    let answer = octo_availability(
        &sim,
        range("14", "2026-12-01", "2026-12-31"),
        Some(API_KEY),
        true,
    )
    .await;
    assert_eq!(answer.status, 200);
    let days: std::collections::BTreeSet<String> = answer
        .json()
        .as_array()
        .expect("array")
        .iter()
        .map(|availability| availability["id"].as_str().expect("id")[..10].to_string())
        .collect();
    // Sundays, Tuesdays and Thursdays of December 2026.
    assert_eq!(days.len(), 14);

    for body in [
        range("14", "2026-12-01", "2027-01-01"),
        range("14", "2026-12-03", "2026-12-01"),
        range("14", "2026-12-01", "2026-13-01"),
        json!({"productId": "14", "optionId": "DEFAULT"}),
        json!({"productId": "14", "optionId": "DEFAULT", "localDate": "tomorrow"}),
        json!({"optionId": "DEFAULT", "localDate": "2026-12-01"}),
        json!(["not", "an", "object"]),
    ] {
        let answer = octo_availability(&sim, body.clone(), Some(API_KEY), true).await;
        assert_eq!(answer.status, 400, "{body}");
        let error = answer.json();
        assert_eq!(error["error"], "BAD_REQUEST", "{body}");
        assert!(error["errorMessage"].is_string());
    }
    let malformed = send(
        reqwest::Client::new()
            .post(format!("{}/octo/availability", sim.base_url()))
            .bearer_auth(API_KEY)
            .header("content-type", "application/json")
            .body("{\"productId\": "),
    )
    .await;
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.json()["error"], "BAD_REQUEST");
}

#[tokio::test]
async fn faults_and_storms_hit_the_octo_routes_too() {
    let sim = start(config(1000)).await;
    let month = range("14", "2026-12-01", "2026-12-07");

    sim.sim
        .set_faults(Faults {
            server_error_percent: 100,
            ..Faults::default()
        })
        .expect("valid");
    let answer = octo_availability(&sim, month.clone(), Some(API_KEY), true).await;
    assert_eq!(answer.status, 500);
    assert_eq!(answer.json()["error"], "INTERNAL_SERVER_ERROR");
    assert!(answer.json()["errorMessage"].is_string());

    sim.sim
        .set_faults(Faults {
            garbage_percent: 100,
            ..Faults::default()
        })
        .expect("valid");
    let answer = octo_get(&sim, "/products", Some(API_KEY)).await;
    assert_eq!(answer.status, 200);
    assert!(String::from_utf8_lossy(&answer.body).starts_with("<html>"));

    sim.sim
        .set_faults(Faults {
            truncated_percent: 100,
            ..Faults::default()
        })
        .expect("valid");
    let answer = octo_availability(&sim, month.clone(), Some(API_KEY), true).await;
    assert_eq!(answer.status, 200);
    assert!(!answer.body.is_empty());
    assert!(serde_json::from_slice::<Value>(&answer.body).is_err());

    sim.sim
        .set_faults(Faults {
            slow_percent: 100,
            slow_delay_ms: 300,
            ..Faults::default()
        })
        .expect("valid");
    let started = std::time::Instant::now();
    let answer = octo_availability(&sim, month.clone(), Some(API_KEY), true).await;
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    assert_eq!(answer.status, 200);
    assert!(answer.json().is_array());

    sim.sim.set_faults(Faults::default()).expect("valid");
    sim.sim
        .start_rate_limit_storm(std::time::Duration::from_secs(30));
    let answer = octo_availability(&sim, month, Some(API_KEY), true).await;
    assert_eq!(answer.status, 429);
    assert!(answer.json()["rateLimitState"]["reset"].is_i64());
    let retry_after: u64 = answer.headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((29..=30).contains(&retry_after), "{retry_after}");

    let faults: Vec<_> = sim.sim.calls().iter().map(|call| call.fault).collect();
    assert_eq!(
        faults,
        [
            Some(Fault::ServerError),
            Some(Fault::Garbage),
            Some(Fault::Truncated),
            Some(Fault::Slow),
            None
        ]
    );
}
