//! Customer bookings through the real HTTP server on both backends: holds, confirmations,
//! cancellations and expiry move seats on the ledger, no pool is ever oversold, idempotency
//! keys make retries safe, and hostile requests get a JSON 4xx.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use chrono::NaiveDate;
use common::*;
use invsync::domain::{ExperienceId, PaxAvailability};
use serde_json::{Value, json};

const SALES_TOKEN: &str = "test-sales-token";
const EXPERIENCE: i64 = 14;

/// The app over `backend` with sync off and a sales token, and a day of the horizon to book.
/// Requests queue for as long as they need: these tests count answers, not shedding.
async fn booking_app(backend: TestStore) -> (TestApp, NaiveDate) {
    let app = spawn_app_with(backend, |settings| {
        settings.sync.enabled = false;
        settings.server.sales_token = Some(invsync::domain::Secret::new(SALES_TOKEN));
        settings.server.queue_budget_ms = std::num::NonZeroU32::new(60_000).expect("non-zero");
    })
    .await;
    let day = app.today().succ_opt().expect("tomorrow");
    (app, day)
}

fn adult(remaining: i64) -> PaxAvailability {
    pax("ADULT", remaining, "50.25", true)
}

fn child(remaining: i64) -> PaxAvailability {
    pax("CHILD", remaining, "20.10", false)
}

/// Applies a partner answer for `day`: one slot at 09:00 with `remaining` seats and `pax`.
async fn partner_reports(
    app: &TestApp,
    day: NaiveDate,
    seconds: i64,
    remaining: i64,
    pax: Vec<PaxAvailability>,
) {
    let fetch = fetch_at(
        ExperienceId::try_from(EXPERIENCE).expect("id"),
        day,
        seconds,
        vec![slot(day, "09:00", remaining, pax)],
    );
    app.backend
        .store
        .apply_fetch(&fetch, None)
        .await
        .expect("fetch applies");
}

fn hold_body(day: NaiveDate, pax: &[(&str, i64)]) -> Value {
    json!({
        "experience": EXPERIENCE,
        "date": day.to_string(),
        "startTime": "09:00",
        "pax": pax.iter().map(|(t, q)| json!({"type": t, "quantity": q})).collect::<Vec<_>>(),
    })
}

async fn hold(app: &TestApp, key: &str, body: &Value) -> (u16, Value, bool) {
    let response = app
        .http
        .post(format!("{}/api/v1/bookings", app.base))
        .bearer_auth(SALES_TOKEN)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .expect("server answers");
    let status = response.status().as_u16();
    let replayed = response.headers().get("idempotent-replayed").is_some();
    (status, response.json().await.expect("JSON"), replayed)
}

async fn change(app: &TestApp, id: &str, action: &str) -> (u16, Value) {
    app.post(
        &format!("/api/v1/bookings/{id}/{action}"),
        Some(SALES_TOKEN),
        None,
    )
    .await
}

/// The slot's remaining and each pax's, as `/slots` serves them.
async fn remaining(app: &TestApp, day: NaiveDate) -> (i64, Vec<(String, i64)>) {
    let (status, slots) = app
        .get(&format!("/api/v1/experience/{EXPERIENCE}/slots?date={day}"))
        .await;
    assert_eq!(status, 200, "{slots}");
    let slot = &slots[0];
    let pax = slot["paxAvailability"]
        .as_array()
        .expect("pax")
        .iter()
        .map(|p| {
            (
                p["type"].as_str().expect("type").to_string(),
                p["remaining"].as_i64().expect("remaining"),
            )
        })
        .collect();
    (slot["remaining"].as_i64().expect("remaining"), pax)
}

async fn assert_verified(app: &TestApp) {
    let (status, report) = app.verify().await;
    assert_eq!(status, 200);
    assert_eq!(report["ok"], true, "{}: {report}", app.backend.name);
}

#[tokio::test]
async fn a_hold_is_confirmed_and_cancelled_with_every_pool_moving_together() {
    for backend in backends().await {
        let (app, day) = booking_app(backend).await;
        partner_reports(&app, day, 1, 10, vec![adult(8), child(4)]).await;
        let (status, booking, replayed) = hold(
            &app,
            "flow-1",
            &hold_body(day, &[("ADULT", 2), ("CHILD", 1)]),
        )
        .await;
        assert_eq!(status, 201, "{booking}");
        assert!(!replayed);
        assert_eq!(booking["status"], "on_hold");
        assert_eq!(booking["total"]["finalPrice"], json!(120.60));
        assert_eq!(booking["pax"][0]["unitPrice"]["finalPrice"], json!(50.25));
        assert!(booking["expiresAt"].is_string());
        assert_eq!(
            remaining(&app, day).await,
            (7, vec![("ADULT".into(), 6), ("CHILD".into(), 3)]),
            "{}: held seats leave the served remaining",
            app.backend.name
        );
        let id = booking["id"].as_str().expect("id").to_string();
        let (status, read) = app
            .get_with(&format!("/api/v1/bookings/{id}"), Some(SALES_TOKEN))
            .await;
        assert_eq!((status, &read["status"]), (200, &json!("on_hold")));

        let (status, confirmed) = change(&app, &id, "confirm").await;
        assert_eq!((status, &confirmed["status"]), (200, &json!("confirmed")));
        assert!(confirmed["expiresAt"].is_null());
        let (status, again) = change(&app, &id, "confirm").await;
        assert_eq!((status, &again["status"]), (200, &json!("confirmed")));
        assert_eq!(remaining(&app, day).await.0, 7, "sold seats stay off sale");
        assert_verified(&app).await;

        let (status, cancelled) = change(&app, &id, "cancel").await;
        assert_eq!((status, &cancelled["status"]), (200, &json!("cancelled")));
        assert_eq!(
            remaining(&app, day).await,
            (10, vec![("ADULT".into(), 8), ("CHILD".into(), 4)])
        );
        let (status, late) = change(&app, &id, "confirm").await;
        assert_eq!((status, &late["code"]), (409, &json!("booking_cancelled")));

        let (status, history) = app
            .get(&format!(
                "/api/v1/experience/{EXPERIENCE}/slots/history?date={day}&startTime=09:00"
            ))
            .await;
        assert_eq!(status, 200, "{history}");
        let reasons: HashSet<String> = history["postings"]
            .as_array()
            .expect("postings")
            .iter()
            .filter(|p| p["bookingId"] == json!(id))
            .map(|p| p["reason"].as_str().expect("reason").to_string())
            .collect();
        assert_eq!(
            reasons,
            HashSet::from(["hold".into(), "confirm".into(), "cancel".into()])
        );
        assert_verified(&app).await;
    }
}

#[tokio::test]
async fn a_thousand_holds_race_for_ten_seats_and_exactly_ten_win() {
    for backend in backends().await {
        let (app, day) = booking_app(backend).await;
        partner_reports(&app, day, 1, 10, vec![adult(10)]).await;
        let body = hold_body(day, &[("ADULT", 1)]);
        let holds = (0..1000).map(|i| {
            let app = &app;
            let body = &body;
            async move { hold(app, &format!("race-{i}"), body).await }
        });
        let answers = futures::future::join_all(holds).await;
        let won = answers
            .iter()
            .filter(|(status, _, _)| *status == 201)
            .count();
        let refused: Vec<_> = answers
            .iter()
            .filter(|(status, body, _)| *status == 409 && body["code"] == "insufficient_capacity")
            .collect();
        assert_eq!(
            (won, refused.len()),
            (10, 990),
            "{}: {:?}",
            app.backend.name,
            answers
                .iter()
                .filter(|(status, _, _)| *status != 201 && *status != 409)
                .take(3)
                .collect::<Vec<_>>()
        );
        assert_eq!(remaining(&app, day).await.0, 0);
        assert_verified(&app).await;
    }
}

#[tokio::test]
async fn a_booking_that_fits_one_pool_but_not_another_is_refused_whole() {
    for backend in backends().await {
        let (app, day) = booking_app(backend).await;
        // The slot binds: 5 seats, though ADULT alone has 10.
        partner_reports(&app, day, 1, 5, vec![adult(10), child(2)]).await;
        let (status, refused, _) = hold(&app, "slot-binds", &hold_body(day, &[("ADULT", 6)])).await;
        assert_eq!(
            (status, &refused["code"]),
            (409, &json!("insufficient_capacity"))
        );
        assert!(
            refused["message"]
                .as_str()
                .unwrap_or("")
                .contains("5 seats left"),
            "{refused}"
        );
        // The pax pool binds: CHILD has 2, though the slot has 5.
        let (status, refused, _) = hold(
            &app,
            "pax-binds",
            &hold_body(day, &[("ADULT", 1), ("CHILD", 3)]),
        )
        .await;
        assert_eq!(
            (status, &refused["code"]),
            (409, &json!("insufficient_capacity"))
        );
        assert!(
            refused["message"].as_str().unwrap_or("").contains("CHILD"),
            "{refused}"
        );
        assert_eq!(
            remaining(&app, day).await,
            (5, vec![("ADULT".into(), 10), ("CHILD".into(), 2)]),
            "nothing moved"
        );
        assert_verified(&app).await;
    }
}

#[tokio::test]
async fn an_idempotency_key_makes_one_booking_whatever_the_retries() {
    for backend in backends().await {
        let (app, day) = booking_app(backend).await;
        partner_reports(&app, day, 1, 10, vec![adult(10)]).await;
        let body = hold_body(day, &[("ADULT", 2)]);
        let (status, first, _) = hold(&app, "key-1", &body).await;
        assert_eq!(status, 201);
        let (status, replay, replayed) = hold(&app, "key-1", &body).await;
        assert_eq!((status, replayed), (201, true));
        assert_eq!(replay["id"], first["id"]);
        assert_eq!(remaining(&app, day).await.0, 8, "the replay moved nothing");

        let (status, reused, _) = hold(&app, "key-1", &hold_body(day, &[("ADULT", 3)])).await;
        assert_eq!(
            (status, &reused["code"]),
            (422, &json!("idempotency_key_reused"))
        );

        // Twenty at once with one new key: one booking; the others replay it or are told the
        // key is in flight.
        let concurrent = (0..20).map(|_| hold(&app, "key-2", &body));
        let answers = futures::future::join_all(concurrent).await;
        let ids: HashSet<String> = answers
            .iter()
            .filter(|(status, _, _)| *status == 201)
            .map(|(_, booking, _)| booking["id"].as_str().expect("id").to_string())
            .collect();
        assert_eq!(ids.len(), 1, "{answers:?}");
        for (status, answer, _) in &answers {
            assert!(
                *status == 201 || (*status == 409 && answer["code"] == "idempotency_key_in_flight"),
                "{status} {answer}"
            );
        }
        assert_eq!(remaining(&app, day).await.0, 6);

        // Another instance (as after a restart) on the same database still knows the key.
        let TestApp { backend, .. } = app;
        let (restarted, _) = booking_app(backend).await;
        let (status, replay, replayed) = hold(&restarted, "key-1", &body).await;
        assert_eq!((status, replayed), (201, true));
        assert_eq!(replay["id"], first["id"]);
        assert_verified(&restarted).await;
    }
}

#[tokio::test]
async fn a_lapsed_hold_is_back_on_sale_within_a_second_without_anyone_asking() {
    for backend in backends().await {
        let (app, day) = booking_app(backend).await;
        partner_reports(&app, day, 1, 10, vec![adult(10)]).await;
        let mut body = hold_body(day, &[("ADULT", 4)]);
        body["holdSeconds"] = json!(2);
        let (status, booking, _) = hold(&app, "lapse", &body).await;
        assert_eq!(status, 201);
        let id = booking["id"].as_str().expect("id").to_string();
        // No read or write of the slot until past the deadline plus one second.
        tokio::time::sleep(Duration::from_millis(3_000)).await;
        let raw = raw_connection(&app.backend).await;
        let rows = raw
            .fetch_integers(
                "SELECT a.balance, CAST(0 AS BIGINT), CAST(0 AS BIGINT)
                 FROM accounts a JOIN slots s ON s.id = a.slot_id
                 WHERE a.kind = 'available' AND a.pax_type IS NULL",
            )
            .await;
        assert_eq!(
            rows,
            [(10, 0, 0)],
            "{}: seats back on sale",
            app.backend.name
        );
        let (status, late) = change(&app, &id, "confirm").await;
        assert_eq!((status, &late["code"]), (409, &json!("booking_expired")));
        let (status, read) = app
            .get_with(&format!("/api/v1/bookings/{id}"), Some(SALES_TOKEN))
            .await;
        assert_eq!((status, &read["status"]), (200, &json!("expired")));
        assert_verified(&app).await;
    }
}

#[tokio::test]
async fn allotment_changes_never_undo_holds_or_sales_and_record_the_shortfall() {
    for backend in backends().await {
        let (app, day) = booking_app(backend).await;
        partner_reports(&app, day, 1, 10, vec![adult(10)]).await;
        let (_, held, _) = hold(&app, "a", &hold_body(day, &[("ADULT", 4)])).await;
        let (_, sold, _) = hold(&app, "b", &hold_body(day, &[("ADULT", 2)])).await;
        let sold_id = sold["id"].as_str().expect("id").to_string();
        assert_eq!(change(&app, &sold_id, "confirm").await.0, 200);
        // Up: 14 reported, 6 taken.
        partner_reports(&app, day, 2, 14, vec![adult(14)]).await;
        assert_eq!(remaining(&app, day).await.0, 8);
        assert_verified(&app).await;
        // Down below held + sold: nothing on sale, 3 seats short, no new hold.
        partner_reports(&app, day, 3, 3, vec![adult(3)]).await;
        assert_eq!(remaining(&app, day).await, (0, vec![("ADULT".into(), 0)]));
        assert_verified(&app).await;
        let (status, refused, _) = hold(&app, "c", &hold_body(day, &[("ADULT", 1)])).await;
        assert_eq!(
            (status, &refused["code"]),
            (409, &json!("insufficient_capacity"))
        );
        let (_, metrics) = {
            let response = app
                .http
                .get(format!("{}/metrics", app.base))
                .send()
                .await
                .expect("metrics");
            (response.status(), response.text().await.expect("text"))
        };
        assert!(
            metrics.contains(&format!(
                "invsync_ledger_shortfall_seats{{experience=\"{EXPERIENCE}\"}} 3"
            )),
            "{metrics}"
        );
        // Cancelling the hold of 4 covers the 3 short and puts 1 back on sale.
        let held_id = held["id"].as_str().expect("id").to_string();
        assert_eq!(change(&app, &held_id, "cancel").await.0, 200);
        assert_eq!(remaining(&app, day).await.0, 1);
        assert_verified(&app).await;
        // Back up to 10: 2 sold, 8 on sale.
        partner_reports(&app, day, 4, 10, vec![adult(10)]).await;
        assert_eq!(remaining(&app, day).await.0, 8);
        assert_verified(&app).await;
    }
}

#[tokio::test]
async fn hostile_booking_requests_get_a_json_4xx_and_move_nothing() {
    for backend in backends().await {
        let (app, day) = booking_app(backend).await;
        partner_reports(&app, day, 1, 10, vec![adult(10), child(10)]).await;
        let good = hold_body(day, &[("ADULT", 1)]);
        let with = |field: &str, value: Value| {
            let mut body = good.clone();
            body[field] = value;
            body
        };
        let far = app.today() + chrono::Duration::days(400);
        let cases: Vec<(&str, Option<String>, Value, u16, &str)> = vec![
            ("no key", None, good.clone(), 400, "missing_idempotency_key"),
            (
                "long key",
                Some("k".repeat(300)),
                good.clone(),
                400,
                "invalid_idempotency_key",
            ),
            (
                "quantity text",
                Some("h1".into()),
                with("pax", json!([{"type": "ADULT", "quantity": "2"}])),
                400,
                "invalid_body",
            ),
            (
                "huge quantity",
                Some("h2".into()),
                with("pax", json!([{"type": "ADULT", "quantity": 1e30}])),
                400,
                "invalid_body",
            ),
            (
                "quantity 10^9",
                Some("h3".into()),
                with("pax", json!([{"type": "ADULT", "quantity": 1_000_000_000}])),
                400,
                "invalid_booking",
            ),
            (
                "zero",
                Some("h4".into()),
                with("pax", json!([{"type": "ADULT", "quantity": 0}])),
                400,
                "invalid_booking",
            ),
            (
                "above the pax max",
                Some("h5".into()),
                with("pax", json!([{"type": "ADULT", "quantity": 21}])),
                400,
                "quantity_out_of_range",
            ),
            (
                "unknown pax",
                Some("h6".into()),
                with("pax", json!([{"type": "ALIEN", "quantity": 1}])),
                404,
                "unknown_pax_type",
            ),
            (
                "twice",
                Some("h7".into()),
                with(
                    "pax",
                    json!([{"type": "ADULT", "quantity": 1}, {"type": "ADULT", "quantity": 1}]),
                ),
                400,
                "invalid_booking",
            ),
            (
                "no pax",
                Some("h8".into()),
                with("pax", json!([])),
                400,
                "invalid_booking",
            ),
            (
                "NUL pax",
                Some("h9".into()),
                with("pax", json!([{"type": "AD\u{0}ULT", "quantity": 1}])),
                400,
                "invalid_booking",
            ),
            (
                "unknown experience",
                Some("h10".into()),
                with("experience", json!(999_999)),
                404,
                "unknown_experience",
            ),
            (
                "negative experience",
                Some("h11".into()),
                with("experience", json!(-1)),
                400,
                "invalid_body",
            ),
            (
                "unknown string experience",
                Some("h11b".into()),
                with("experience", json!("6b90-tour")),
                404,
                "unknown_experience",
            ),
            (
                "experience not an id",
                Some("h11c".into()),
                with("experience", json!("a/b")),
                400,
                "invalid_body",
            ),
            (
                "no slot then",
                Some("h12".into()),
                with("startTime", json!("23:59")),
                404,
                "slot_not_found",
            ),
            (
                "bad time",
                Some("h13".into()),
                with("startTime", json!("9am")),
                400,
                "invalid_booking",
            ),
            (
                "outside the horizon",
                Some("h14".into()),
                with("date", json!(far.to_string())),
                400,
                "date_outside_horizon",
            ),
            (
                "hold too long",
                Some("h15".into()),
                with("holdSeconds", json!(86_400)),
                400,
                "invalid_booking",
            ),
            (
                "unknown field",
                Some("h16".into()),
                with("price", json!(0)),
                400,
                "invalid_body",
            ),
        ];
        for (name, key, body, status, code) in cases {
            let mut request = app
                .http
                .post(format!("{}/api/v1/bookings", app.base))
                .bearer_auth(SALES_TOKEN)
                .json(&body);
            if let Some(key) = key {
                request = request.header("Idempotency-Key", key);
            }
            let response = request.send().await.expect("answers");
            let got = response.status().as_u16();
            let answer: Value = response.json().await.expect("JSON error");
            assert_eq!(
                (got, answer["code"].as_str()),
                (status, Some(code)),
                "{name}: {answer}"
            );
        }
        let oversized = app
            .http
            .post(format!("{}/api/v1/bookings", app.base))
            .bearer_auth(SALES_TOKEN)
            .header("Idempotency-Key", "big")
            .header("Content-Type", "application/json")
            .body(format!("{{\"pad\": \"{}\"}}", "x".repeat(2 << 20)))
            .send()
            .await
            .expect("answers");
        assert_eq!(oversized.status().as_u16(), 413);
        let (status, _) = app
            .post(
                "/api/v1/bookings/not-a-uuid/confirm",
                Some(SALES_TOKEN),
                None,
            )
            .await;
        assert_eq!(status, 404);
        let (status, unauthorized) = app.post("/api/v1/bookings/x/confirm", None, None).await;
        assert_eq!(
            (status, &unauthorized["code"]),
            (401, &json!("unauthorized"))
        );
        let (status, with_admin, _) = {
            let response = app
                .http
                .post(format!("{}/api/v1/bookings", app.base))
                .bearer_auth(ADMIN_TOKEN)
                .header("Idempotency-Key", "admin")
                .json(&good)
                .send()
                .await
                .expect("answers");
            (
                response.status().as_u16(),
                response.json::<Value>().await.expect("JSON"),
                (),
            )
        };
        assert_eq!(status, 201, "the admin token books too: {with_admin}");
        assert_eq!(
            remaining(&app, day).await.0,
            9,
            "only the admin's hold moved"
        );
        assert_verified(&app).await;
    }
}

/// The leader serves `/slots` and `/dates` from memory; bookings made through another
/// instance on the same PostgreSQL show there as soon as they are answered, every time.
#[tokio::test]
async fn bookings_on_one_instance_show_at_once_on_a_leader_that_caches() {
    let Some(backend) = postgres_store().await else {
        return;
    };
    let url = backend.url.clone();
    let leader = spawn_app_with(backend, |settings| {
        settings.sync.horizon_days =
            serde_json::from_value(json!(DAEMON_HORIZON_DAYS)).expect("horizon");
        settings.server.sales_token = Some(invsync::domain::Secret::new(SALES_TOKEN));
    })
    .await;
    leader
        .wait_for_status(Duration::from_secs(30), drained)
        .await;
    let (other, _) = booking_app(TestStore::reuse("postgres", &url).await).await;
    let (_, dates) = leader
        .get(&format!("/api/v1/experience/{EXPERIENCE}/dates"))
        .await;
    let day: NaiveDate = serde_json::from_value(dates["dates"][0]["date"].clone())
        .expect("the experience runs within the horizon");
    let (_, slots) = leader
        .get(&format!("/api/v1/experience/{EXPERIENCE}/slots?date={day}"))
        .await;
    let slot = slots
        .as_array()
        .expect("slots")
        .iter()
        .find(|slot| slot["remaining"].as_i64().unwrap_or(0) >= 3)
        .expect("a slot with seats")
        .clone();
    let start_time = slot["startTime"].as_str().expect("start").to_string();
    let pax_type = slot["paxAvailability"]
        .as_array()
        .expect("pax")
        .iter()
        .find(|pax| pax["remaining"].as_i64().unwrap_or(0) >= 3 && pax["min"] == json!(1))
        .expect("a pax type with seats, sold one at a time")["type"]
        .clone();
    let served = |slots: &Value| -> i64 {
        slots
            .as_array()
            .expect("slots")
            .iter()
            .find(|s| s["startTime"] == json!(start_time))
            .and_then(|s| s["remaining"].as_i64())
            .unwrap_or(0)
    };
    let before = slot["remaining"].as_i64().expect("remaining");
    let body = json!({
        "experience": EXPERIENCE, "date": day, "startTime": start_time,
        "pax": [{"type": pax_type, "quantity": 1}],
    });
    let slots_path = format!("/api/v1/experience/{EXPERIENCE}/slots?date={day}");
    for round in 0..3 {
        // Twice, so the answer is in the leader's memory.
        leader.get(&slots_path).await;
        let (status, booking, _) = hold(&other, &format!("cross-{round}"), &body).await;
        assert_eq!(status, 201, "{booking}");
        let (_, now_served) = leader.get(&slots_path).await;
        assert_eq!(
            served(&now_served),
            before - 1,
            "round {round}: the hold shows at once"
        );
        let id = booking["id"].as_str().expect("id").to_string();
        assert_eq!(change(&other, &id, "cancel").await.0, 200);
        let (_, now_served) = leader.get(&slots_path).await;
        assert_eq!(
            served(&now_served),
            before,
            "round {round}: the cancel shows at once"
        );
    }
    assert_verified(&leader).await;
}
