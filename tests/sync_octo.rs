//! Syncing from an OCTO supplier (`partner.kind = "octo"`): the simulator's OCTO face is synced
//! in date ranges into the same slots, pools and postings as a Leap partner's, each day applied
//! on its own and each change picked up and posted, on both backends. The fault and rejected-key runs of `sync_e2e.rs` cover this kind
//! too.

mod common;

use chrono::{Days, Weekday};
use common::*;
use invsync::config::PartnerKind;

#[tokio::test]
async fn an_octo_supplier_is_synced_and_each_change_posted() {
    for backend in backends().await {
        let app = spawn_app_of(backend, PartnerKind::Octo).await;
        let today = app.today();
        let last = today.checked_add_days(Days::new(13)).unwrap();
        let first = app.sync(today, last).await;
        assert!(first.failed.is_empty(), "{:?}", first.failed);
        assert_eq!(first.fetched, 28);
        for date in today.iter_days().take_while(|d| *d <= last) {
            app.assert_served_equals_simulator(date).await;
        }
        // Each product is read once; then one availability call covers its 14 days.
        let calls = app.sim.sim.calls();
        assert_eq!(calls.len(), 2 + 2, "{calls:?}");

        let unchanged = app.sync(today, last).await;
        assert_eq!((unchanged.changed, unchanged.transfers), (0, 0));

        let tuesday = next_weekday(today.succ_opt().unwrap(), Weekday::Tue);
        let sunday = next_weekday(today.succ_opt().unwrap(), Weekday::Sun);
        let sim = &app.sim.sim;
        let (id14, id15) = (experience(14), experience(15));
        sim.set_slot_remaining(id14, tuesday, time("04:30"), 1983)
            .unwrap();
        sim.remove_slot(id14, tuesday, time("07:00")).unwrap();
        sim.set_pax_price(
            id15,
            sunday,
            time("00:00"),
            "ADULT_12~99",
            money("355.5"),
            money("441"),
        )
        .unwrap();
        let resync = app.sync(today, last).await;
        // Tuesday: the 04:30 slot's pool and its two pax pools (they follow the slot), and
        // the vanished 07:00 slot's three pools. A price change moves no capacity.
        assert_eq!((resync.changed, resync.transfers), (1, 6));
        for date in today.iter_days().take_while(|d| *d <= last) {
            app.assert_served_equals_simulator(date).await;
        }
        let (_, dates) = app.get("/api/v1/experience/15/dates").await;
        let sunday_price = dates["dates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["date"] == sunday.to_string())
            .map(|d| d["price"]["finalPrice"].clone());
        assert_eq!(sunday_price, Some(serde_json::json!(355.5)));
        let report = app.backend.store.verify().await.unwrap();
        assert!(report.ok, "{report:?}");
    }
}

#[tokio::test]
async fn a_daemon_syncs_its_horizon_from_an_octo_supplier() {
    for backend in backends().await {
        let app = spawn_app_with(backend, |settings| {
            settings.sync.horizon_days =
                serde_json::from_value(serde_json::json!(DAEMON_HORIZON_DAYS)).expect("horizon");
            speak(settings, PartnerKind::Octo);
        })
        .await;
        app.wait_for_status(std::time::Duration::from_secs(30), drained)
            .await;
        let today = app.today();
        for date in today.iter_days().take(DAEMON_HORIZON_DAYS as usize) {
            app.assert_served_equals_simulator(date).await;
        }
        assert!(app.backend.store.verify().await.unwrap().ok);
    }
}

#[tokio::test]
async fn a_range_is_cut_to_days_per_call_and_one_that_keeps_failing_is_split() {
    for backend in backends().await {
        let app = spawn_app_with(backend, |settings| {
            settings.sync.enabled = false;
            settings.partner.days_per_call = std::num::NonZeroU32::new(5).expect("non-zero");
            speak(settings, PartnerKind::Octo);
        })
        .await;
        let today = app.today();
        let last = today.checked_add_days(Days::new(11)).unwrap();
        let summary = app.sync(today, last).await;
        assert!(summary.failed.is_empty(), "{:?}", summary.failed);
        let ranges: Vec<(Option<chrono::NaiveDate>, Option<chrono::NaiveDate>)> = app
            .sim
            .sim
            .calls()
            .iter()
            .filter(|call| call.date.is_some())
            .map(|call| (call.date, call.last_date))
            .collect();
        // 12 days of each product: 5 + 5 + 2.
        assert_eq!(ranges.len(), 6, "{ranges:?}");
        for date in today.iter_days().take_while(|d| *d <= last) {
            app.assert_served_equals_simulator(date).await;
        }

        // Every answer garbled for a while: ranges fail through their retries and are split
        // into days, which fail alone; nothing is applied from a broken answer.
        app.sim
            .sim
            .set_faults(invsync::simulator::Faults {
                garbage_percent: 100,
                ..invsync::simulator::Faults::default()
            })
            .unwrap();
        let broken = app.sync(today, today.succ_opt().unwrap()).await;
        assert_eq!(broken.failed.len(), 4, "{:?}", broken.failed);
        assert_eq!(broken.fetched, 0);
        app.sim
            .sim
            .set_faults(invsync::simulator::Faults::default())
            .unwrap();
        assert!(app.backend.store.verify().await.unwrap().ok);
    }
}

/// An OCTO product id is an opaque string: the product is synced, served, booked, posted,
/// triggered and reported under it, beside a Leap-style numeric id, on both backends.
#[tokio::test]
async fn a_product_with_a_string_id_is_served_booked_and_audited_under_that_id() {
    const PRODUCT: &str = "6b90-river_cruise.v2";
    const SALES_TOKEN: &str = "test-sales-token";
    let cruise: invsync::domain::ExperienceId = PRODUCT.parse().unwrap();
    for backend in backends().await {
        let mut products = invsync::simulator::builtin_products().unwrap();
        for product in &mut products {
            if product.product_id == experience(15) {
                product.product_id = cruise;
            }
        }
        let app = spawn_app_selling(backend, products, |settings| {
            settings.sync.enabled = false;
            settings.server.sales_token = Some(invsync::domain::Secret::new(SALES_TOKEN));
            speak(settings, PartnerKind::Octo);
            settings.partner.experiences = vec![experience(14), cruise];
        })
        .await;
        let today = app.today();
        let last = today.checked_add_days(Days::new(13)).unwrap();
        let synced = app.sync(today, last).await;
        assert!(synced.failed.is_empty(), "{:?}", synced.failed);
        assert_eq!(synced.fetched, 28);
        for date in today.iter_days().take_while(|d| *d <= last) {
            app.assert_served_equals_simulator(date).await;
        }

        let sunday = next_weekday(today.succ_opt().unwrap(), Weekday::Sun);
        let slots_path = format!("/api/v1/experience/{PRODUCT}/slots?date={sunday}");
        let (status, before) = app.get(&slots_path).await;
        assert_eq!(status, 200, "{before}");
        let response = app
            .http
            .post(format!("{}/api/v1/bookings", app.base))
            .bearer_auth(SALES_TOKEN)
            .header("Idempotency-Key", "string-id-1")
            .json(&serde_json::json!({
                "experience": PRODUCT, "date": sunday, "startTime": "00:00",
                "pax": [{"type": "ADULT_12~99", "quantity": 2}],
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 201);
        let booking: serde_json::Value = response.json().await.unwrap();
        assert_eq!(booking["experience"], PRODUCT, "{booking}");
        let (_, after) = app.get(&slots_path).await;
        assert_eq!(
            after[0]["remaining"].as_i64().unwrap() + 2,
            before[0]["remaining"].as_i64().unwrap()
        );

        let (status, history) = app
            .get(&format!(
                "/api/v1/experience/{PRODUCT}/slots/history?date={sunday}&startTime=00:00"
            ))
            .await;
        assert_eq!(status, 200, "{history}");
        assert_eq!(history["experienceId"], PRODUCT, "{history}");
        assert!(
            history["postings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|posting| posting["bookingId"] == booking["id"]),
            "{history}"
        );
        let products: serde_json::Value = app
            .http
            .get(format!("{}/octo/products", app.base))
            .bearer_auth(SALES_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            products
                .as_array()
                .is_some_and(|all| all.iter().any(|product| product["id"] == PRODUCT)),
            "{products}"
        );
        let (status, queued) = app
            .post(
                "/api/v1/sync/trigger",
                Some(ADMIN_TOKEN),
                Some(serde_json::json!({"experience": PRODUCT, "from": today, "to": today})),
            )
            .await;
        assert_eq!(
            (status, queued["queued"].as_i64()),
            (202, Some(1)),
            "{queued}"
        );
        let report = app.backend.store.verify().await.unwrap();
        assert!(report.ok, "{report:?}");
    }
}
