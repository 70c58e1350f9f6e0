//! The read API against the real server on port 0, filled from the built-in simulator.

mod common;

use chrono::{Datelike, Days, Weekday};
use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn slots_of_a_tuesday_are_the_partners_nine_with_exact_prices() {
    for backend in backends().await {
        let app = spawn_app(backend).await;
        let tuesday = next_weekday(app.today(), Weekday::Tue);
        app.sync(tuesday, tuesday).await;
        let (status, body) = app
            .get(&format!("/api/v1/experience/14/slots?date={tuesday}"))
            .await;
        assert_eq!(status, 200, "{body}");
        let slots = body.as_array().expect("bare array");
        let times: Vec<&str> = slots
            .iter()
            .map(|s| s["startTime"].as_str().unwrap())
            .collect();
        assert_eq!(
            times,
            [
                "04:00", "04:30", "05:00", "05:30", "06:00", "06:30", "07:00", "07:30", "08:00"
            ]
        );
        assert_eq!(
            slots[0],
            json!({
                "startTime": "04:00",
                "startDate": tuesday.to_string(),
                "price": { "finalPrice": 212.14, "currencyCode": "SGD", "originalPrice": 312.14 },
                "remaining": 2000,
                "paxAvailability": [
                    { "type": "ADULT_12~99", "name": "Adult", "description": "12-99 years",
                      "price": { "finalPrice": 212.14, "currencyCode": "SGD", "originalPrice": 312.14 },
                      "min": 1, "max": 20, "remaining": 1000 },
                    { "type": "CHILD_3~11", "name": "Child", "description": "3-11 years",
                      "price": { "finalPrice": 43, "currencyCode": "SGD", "originalPrice": 143 },
                      "min": 1, "max": 20, "remaining": 1000 }
                ]
            })
        );
        assert_eq!(slots[1]["price"]["finalPrice"], json!(242.14));
        assert_eq!(
            slots[1]["paxAvailability"][1]["price"]["finalPrice"],
            json!(73)
        );
        // Money is a JSON number with the partner's precision, byte for byte.
        let raw = app
            .http
            .get(format!(
                "{}/api/v1/experience/14/slots?date={tuesday}",
                app.base
            ))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(raw.contains(r#""finalPrice":242.14,"#), "{raw}");
        assert!(raw.contains(r#""finalPrice":73,"#), "{raw}");
    }
}

#[tokio::test]
async fn dates_list_only_running_weekdays_with_from_prices() {
    for backend in backends().await {
        let app = spawn_app(backend).await;
        let today = app.today();
        let last = today.checked_add_days(Days::new(20)).unwrap();
        app.sync(today, last).await;
        for (id, weekdays, from_price) in [
            (
                14,
                &[Weekday::Sun, Weekday::Tue, Weekday::Thu][..],
                json!(212.14),
            ),
            (15, &[Weekday::Sun][..], json!(341)),
        ] {
            let (status, body) = app.get(&format!("/api/v1/experience/{id}/dates")).await;
            assert_eq!(status, 200, "{body}");
            let dates = body["dates"].as_array().expect("dates array");
            let expected: Vec<String> = today
                .iter_days()
                .take_while(|d| *d <= last)
                .filter(|d| weekdays.contains(&d.weekday()))
                .map(|d| d.to_string())
                .collect();
            let listed: Vec<String> = dates
                .iter()
                .map(|d| d["date"].as_str().unwrap().to_string())
                .collect();
            assert_eq!(listed, expected, "experience {id}");
            assert!(dates.iter().all(|d| d["price"]["finalPrice"] == from_price));
            assert!(dates.iter().all(|d| d["price"]["currencyCode"] == "SGD"));
        }
    }
}

#[tokio::test]
async fn slot_history_and_verify_are_served() {
    for backend in backends().await {
        let app = spawn_app(backend).await;
        let sunday = next_weekday(app.today(), Weekday::Sun);
        app.sync(sunday, sunday).await;
        let (status, body) = app
            .get(&format!(
                "/api/v1/experience/15/slots/history?date={sunday}&startTime=00:00"
            ))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["startTime"], "00:00");
        assert_eq!(body["open"], true);
        let postings = body["postings"].as_array().unwrap();
        // Slot pool + three pax pools opened from the partner account.
        assert_eq!(postings.len(), 4);
        let slot_pool = postings.iter().find(|p| p["paxType"].is_null()).unwrap();
        assert_eq!(slot_pool["amount"], 170);
        assert_eq!(slot_pool["balanceAfter"], 170);
        assert_eq!(slot_pool["account"], "available");
        assert!(slot_pool["fetchId"].is_string() && slot_pool["fetchedAt"].is_string());
        let (status, body) = app.verify().await;
        assert_eq!((status, &body["ok"]), (200, &json!(true)), "{body}");
        let (status, body) = app.get("/healthz").await;
        assert_eq!((status, body), (200, json!({"status": "ok"})));
    }
}

#[tokio::test]
async fn bad_input_gets_a_json_error_with_a_stable_code() {
    for backend in backends().await {
        let app = spawn_app(backend).await;
        let today = app.today();
        let beyond = today.checked_add_days(Days::new(400)).unwrap();
        let yesterday = today.pred_opt().unwrap();
        let cases: Vec<(String, u16, &str)> = vec![
            (
                format!("/api/v1/experience/a%20b/slots?date={today}"),
                400,
                "invalid_experience_id",
            ),
            (
                format!("/api/v1/experience/-3/slots?date={today}"),
                400,
                "invalid_experience_id",
            ),
            (
                format!("/api/v1/experience/abc/slots?date={today}"),
                404,
                "unknown_experience",
            ),
            (
                format!("/api/v1/experience/0/slots?date={today}"),
                400,
                "invalid_experience_id",
            ),
            (
                "/api/v1/experience/-14/dates".into(),
                400,
                "invalid_experience_id",
            ),
            (
                "/api/v1/experience/99999999999999999999/dates".into(),
                400,
                "invalid_experience_id",
            ),
            ("/api/v1/experience/14/slots".into(), 400, "invalid_date"),
            (
                "/api/v1/experience/14/slots?date=2026-13-01".into(),
                400,
                "invalid_date",
            ),
            (
                "/api/v1/experience/14/slots?date=tomorrow".into(),
                400,
                "invalid_date",
            ),
            (
                "/api/v1/experience/14/slots?date=2026-1-5".into(),
                400,
                "invalid_date",
            ),
            (
                format!("/api/v1/experience/14/slots?date={beyond}"),
                400,
                "date_outside_horizon",
            ),
            (
                format!("/api/v1/experience/14/slots?date={yesterday}"),
                400,
                "date_outside_horizon",
            ),
            (
                format!("/api/v1/experience/77/slots?date={today}"),
                404,
                "unknown_experience",
            ),
            (
                "/api/v1/experience/77/dates".into(),
                404,
                "unknown_experience",
            ),
            (
                format!("/api/v1/experience/14/slots/history?date={today}"),
                400,
                "invalid_start_time",
            ),
            (
                format!("/api/v1/experience/14/slots/history?date={today}&startTime=25:00"),
                400,
                "invalid_start_time",
            ),
            (
                format!("/api/v1/experience/14/slots/history?date={today}&startTime=03:17"),
                404,
                "slot_not_found",
            ),
            ("/api/v1/nope".into(), 404, "not_found"),
        ];
        for (path, status, code) in cases {
            let (got, body) = app.get(&path).await;
            assert_eq!(
                (got, body["code"].as_str()),
                (status, Some(code)),
                "{path}: {body}"
            );
            assert!(
                body["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{path}"
            );
        }
        let response = app
            .http
            .delete(format!("{}/api/v1/experience/14/dates", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 405);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "method_not_allowed");
    }
}

#[tokio::test]
async fn verify_needs_the_admin_token() {
    for backend in backends().await {
        let app = spawn_app(backend).await;
        for token in [None, Some("wrong-token")] {
            let (status, body) = app.get_with("/api/v1/ledger/verify", token).await;
            assert_eq!(
                (status, &body["code"]),
                (401, &json!("unauthorized")),
                "{body}"
            );
        }
        let (status, body) = app.verify().await;
        assert_eq!((status, &body["ok"]), (200, &json!(true)), "{body}");
        assert_eq!(body["violationCount"], 0, "{body}");
    }
}

#[tokio::test]
async fn verify_lists_the_first_hundred_violations_and_counts_them_all() {
    for backend in backends().await {
        let app = spawn_app(backend).await;
        let ids: Vec<_> = (1000..1150).map(experience).collect();
        app.backend.store.ensure_experiences(&ids).await.unwrap();
        // Every partner account claims a seat its entries never moved: 152 accounts whose
        // balance is not the sum of their entries, and balances that no longer sum to zero.
        raw_connection(&app.backend)
            .await
            .execute("UPDATE accounts SET balance = 1 WHERE kind = 'partner'")
            .await
            .unwrap();
        let (status, report) = app.verify().await;
        assert_eq!((status, &report["ok"]), (200, &json!(false)), "{report}");
        assert_eq!(report["violations"].as_array().unwrap().len(), 100);
        assert_eq!(report["violationCount"], 153, "{}", app.backend.name);
    }
}

/// Verifications wait their turn in the process, not on a database connection each, so
/// callers in parallel cannot take the pool from the sync's applies.
#[tokio::test]
async fn parallel_verifications_run_one_at_a_time() {
    let Some(backend) = postgres_store().await else {
        return;
    };
    let app = spawn_app(backend).await;
    let mut blocker = lock_entries(&app.backend.url).await;
    let callers: Vec<_> = (0..8)
        .map(|_| {
            let http = app.http.clone();
            let url = format!("{}/api/v1/ledger/verify", app.base);
            tokio::spawn(async move {
                let response = http.get(url).bearer_auth(ADMIN_TOKEN).send().await;
                response.expect("server answers").status().as_u16()
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let waiting: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = 'invsync'
           AND wait_event_type = 'Lock'",
    )
    .fetch_one(&mut blocker)
    .await
    .unwrap();
    assert_eq!(waiting, 1, "verifications holding a connection each");
    // The pool still serves the rest of the API meanwhile.
    let (status, _) = app.get("/api/v1/sync/status").await;
    assert_eq!(status, 200);
    sqlx::query("COMMIT").execute(&mut blocker).await.unwrap();
    for caller in callers {
        assert_eq!(caller.await.unwrap(), 200);
    }
}
