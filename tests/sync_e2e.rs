//! End to end: the simulator changes its inventory, a re-sync records each change in the
//! ledger, and what is served equals what the partner holds.

mod common;

use chrono::{Days, Weekday};
use common::*;
use invsync::simulator::Faults;

#[tokio::test]
async fn a_resync_records_every_partner_change_and_nothing_else() {
    for backend in backends().await {
        let app = spawn_app(backend).await;
        let today = app.today();
        let last = today.checked_add_days(Days::new(13)).unwrap();
        let first = app.sync(today, last).await;
        assert_eq!(first.fetched, 28);
        assert!(first.failed.is_empty());

        // Nothing changed at the partner: nothing is posted.
        let unchanged = app.sync(today, last).await;
        assert_eq!(
            (unchanged.changed, unchanged.transfers),
            (0, 0),
            "{}",
            app.backend.name
        );

        let tuesday = next_weekday(today.succ_opt().unwrap(), Weekday::Tue);
        let sunday = next_weekday(today.succ_opt().unwrap(), Weekday::Sun);
        let sim = &app.sim.sim;
        let (id14, id15) = (experience(14), experience(15));
        sim.set_pax_remaining(id14, tuesday, time("04:30"), "ADULT_12~99", 983)
            .unwrap();
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
        // Tuesday: the 04:30 slot and its adult pool, plus the vanished 07:00 slot's three
        // pools. A price change moves no capacity.
        assert_eq!(
            (resync.changed, resync.transfers),
            (1, 5),
            "{}",
            app.backend.name
        );
        for date in today.iter_days().take_while(|d| *d <= last) {
            app.assert_served_equals_simulator(date).await;
        }

        let (_, history) = app
            .get(&format!(
                "/api/v1/experience/14/slots/history?date={tuesday}&startTime=04:30"
            ))
            .await;
        let adult: Vec<_> = history["postings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["paxType"] == "ADULT_12~99")
            .collect();
        assert_eq!(adult.len(), 2);
        assert_eq!(
            (
                adult[1]["amount"].as_i64(),
                adult[1]["balanceAfter"].as_i64()
            ),
            (Some(-17), Some(983))
        );
        assert_ne!(adult[0]["fetchId"], adult[1]["fetchId"]);

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
async fn transient_partner_faults_lose_no_day() {
    for kind in PARTNER_KINDS {
        for backend in backends().await {
            transient_faults_lose_no_day(spawn_app_of(backend, kind).await).await;
        }
    }
}

async fn transient_faults_lose_no_day(app: TestApp) {
    app.sim
        .sim
        .set_faults(Faults {
            server_error_percent: 10,
            garbage_percent: 10,
            truncated_percent: 10,
            ..Faults::default()
        })
        .unwrap();
    let today = app.today();
    let last = today.checked_add_days(Days::new(9)).unwrap();
    let summary = app.sync(today, last).await;
    assert!(summary.failed.is_empty(), "{:?}", summary.failed);
    assert_eq!(summary.fetched, 20);
    app.sim.sim.set_faults(Faults::default()).unwrap();
    for date in today.iter_days().take_while(|d| *d <= last) {
        app.assert_served_equals_simulator(date).await;
    }
    assert!(app.backend.store.verify().await.unwrap().ok);
}

#[tokio::test]
async fn a_rejected_api_key_stops_the_run_instead_of_hammering() {
    for kind in PARTNER_KINDS {
        for backend in backends().await {
            a_rejected_key_stops_the_run(spawn_app_of(backend, kind).await).await;
        }
    }
}

async fn a_rejected_key_stops_the_run(app: TestApp) {
    let wrong_key = invsync::partner::PartnerClient::new(invsync::partner::PartnerClientConfig {
        base_url: app.settings.partner.base_url.0.to_string(),
        api_key: invsync::domain::Secret::new("not-the-key"),
        rate_limit_per_minute: app.settings.partner.rate_limit_per_minute,
        request_timeout: std::time::Duration::from_secs(5),
        protocol: app.settings.partner.protocol().unwrap(),
    })
    .unwrap();
    let today = app.today();
    let days = invsync::sync::product_dates(&app.settings.partner.experiences, today, today);
    let result = invsync::sync::sync_days(
        &wrong_key,
        app.backend.store.as_ref(),
        days,
        fast_retries(),
        &test_lease_claim(),
    )
    .await;
    assert!(matches!(
        result,
        Err(invsync::sync::SyncError::PartnerRejectedKey(_))
    ));
    // Only the two calls of the run are made: a 401 is never retried.
    let rejected = app
        .sim
        .sim
        .calls()
        .iter()
        .filter(|c| c.status == 401)
        .count();
    assert!(rejected <= 2, "{rejected} calls were rejected");
}
