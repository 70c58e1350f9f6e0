//! Shared test support: the backends every conformance test runs against, and builders for
//! partner days.
#![allow(dead_code)] // each test binary uses its own subset

use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use invsync::domain::{DayFetch, ExperienceId, PaxAvailability, Price, Slot};
use invsync::storage::{self, Store};
use rust_decimal::Decimal;
use tempfile::TempDir;

/// A store on a real database, removed when dropped.
pub struct TestStore {
    pub name: &'static str,
    pub url: String,
    pub store: Arc<dyn Store>,
    _dir: Option<TempDir>,
}

pub async fn sqlite_store() -> TestStore {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("invsync.db").display());
    let store = storage::connect(&url).await.expect("open SQLite store");
    TestStore {
        name: "sqlite",
        url,
        store,
        _dir: Some(dir),
    }
}

/// Every backend the suite must pass on.
pub async fn backends() -> Vec<TestStore> {
    vec![sqlite_store().await]
}

pub fn experience(id: i64) -> ExperienceId {
    ExperienceId::try_from(id).expect("positive id")
}

pub fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("test date")
}

pub fn time(text: &str) -> NaiveTime {
    NaiveTime::parse_from_str(text, "%H:%M").expect("test time")
}

pub fn money(text: &str) -> Decimal {
    Decimal::from_str(text).expect("test amount")
}

pub fn pax(pax_type: &str, remaining: i64, final_price: &str, primary: bool) -> PaxAvailability {
    PaxAvailability {
        pax_type: pax_type.to_string(),
        name: pax_type.split('_').next().unwrap_or(pax_type).to_string(),
        description: String::new(),
        min: 1,
        max: 20,
        remaining,
        is_primary: primary,
        price: Price {
            final_price: money(final_price),
            original_price: money(final_price) + Decimal::ONE_HUNDRED,
            currency: "SGD".into(),
        },
    }
}

pub fn slot(day: NaiveDate, start: &str, remaining: i64, pax: Vec<PaxAvailability>) -> Slot {
    Slot {
        provider_slot_id: format!("test_{day}T{start}"),
        start_date: day,
        start_time: time(start),
        end_time: time(start),
        remaining,
        currency: "SGD".into(),
        variant_id: 32,
        pax,
    }
}

/// A fetch of `day` observed `seconds` after a fixed instant, so tests control ordering.
pub fn fetch_at(id: ExperienceId, day: NaiveDate, seconds: i64, slots: Vec<Slot>) -> DayFetch {
    let base: DateTime<Utc> = "2026-11-01T00:00:00Z".parse().expect("instant");
    DayFetch {
        fetched_at: base + Duration::seconds(seconds),
        ..DayFetch::new(id, day, slots)
    }
}

/// A direct database connection that bypasses the store, for tampering tests.
pub struct RawConnection(sqlx::SqlitePool);

impl RawConnection {
    pub async fn execute(&self, statement: &str) -> Result<(), sqlx::Error> {
        sqlx::query(statement).execute(&self.0).await.map(|_| ())
    }
}

pub async fn raw_connection(backend: &TestStore) -> RawConnection {
    RawConnection(
        sqlx::SqlitePool::connect(&backend.url)
            .await
            .expect("raw connection"),
    )
}

pub const SIM_KEY: &str = "test-sim-key";

/// The real service on 127.0.0.1:0 over a real database, with the built-in simulator as its
/// partner (its rate limit lifted so tests run fast).
pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub sim: invsync::simulator::SimulatorHandle,
    pub partner: invsync::partner::PartnerClient,
    pub settings: invsync::config::Settings,
    pub backend: TestStore,
}

pub async fn spawn_app(backend: TestStore) -> TestApp {
    use invsync::domain::Secret;
    use invsync::simulator::{Simulator, SimulatorConfig};
    use std::num::NonZeroU32;

    let fast = NonZeroU32::new(60_000).expect("non-zero");
    let sim = Simulator::new(SimulatorConfig {
        rate_limit_per_minute: fast,
        ..SimulatorConfig::new(Secret::new(SIM_KEY))
    })
    .spawn_local()
    .await
    .expect("simulator starts");
    let mut settings = invsync::config::Settings::default();
    settings.database.url = Secret::new(backend.url.clone());
    settings.server.listen = "127.0.0.1:0".parse().expect("address");
    settings.partner.base_url =
        invsync::config::BaseUrl(sim.base_url().parse().expect("simulator URL"));
    settings.partner.api_key = Some(Secret::new(SIM_KEY));
    settings.partner.rate_limit_per_minute = fast;
    // Tests drive syncs themselves; the daemon's tiers are tested in their own suite.
    settings.sync.tiers = Some(Vec::new());
    let partner = invsync::partner::PartnerClient::new(invsync::partner::PartnerClientConfig {
        base_url: sim.base_url(),
        api_key: Secret::new(SIM_KEY),
        rate_limit_per_minute: fast,
        request_timeout: std::time::Duration::from_secs(5),
    })
    .expect("partner client");
    let app = invsync::app::Application::build(settings.clone())
        .await
        .expect("application builds");
    let base = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    TestApp {
        base,
        http: reqwest::Client::new(),
        sim,
        partner,
        settings,
        backend,
    }
}

impl TestApp {
    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("server answers");
        let status = response.status().as_u16();
        let body = response.json().await.expect("JSON body");
        (status, body)
    }

    /// Syncs `from..=to` for the configured experiences from the simulator.
    pub async fn sync(&self, from: NaiveDate, to: NaiveDate) -> invsync::sync::SyncSummary {
        let days = invsync::sync::product_dates(&self.settings.partner.experiences, from, to);
        invsync::sync::sync_days(
            &self.partner,
            self.backend.store.as_ref(),
            days,
            fast_retries(),
        )
        .await
        .expect("sync runs")
    }

    pub fn today(&self) -> NaiveDate {
        self.settings.partner.today()
    }
}

/// The first date on or after `from` that falls on `weekday`.
pub fn next_weekday(from: NaiveDate, weekday: chrono::Weekday) -> NaiveDate {
    use chrono::Datelike;
    from.iter_days()
        .find(|day| day.weekday() == weekday)
        .expect("a weekday within a week")
}

/// What `/slots` must serve for a day the simulator currently holds, built independently
/// from the simulator's own wire data.
pub fn expected_slots(wire: &[invsync::partner::wire::WireSlot]) -> serde_json::Value {
    use serde_json::json;
    let number = |amount: Decimal| {
        serde_json::Number::from_str(&amount.normalize().to_string()).expect("decimal text")
    };
    let price = |p: &invsync::partner::wire::WirePrice| {
        json!({
            "finalPrice": number(p.final_price),
            "currencyCode": p.currency_code,
            "originalPrice": number(p.original_price),
        })
    };
    let mut slots: Vec<_> = wire.iter().collect();
    slots.sort_by(|a, b| a.start_time.cmp(&b.start_time));
    serde_json::Value::Array(
        slots
            .into_iter()
            .map(|slot| {
                let primary = slot
                    .pax_availability
                    .iter()
                    .find(|p| p.is_primary)
                    .or(slot.pax_availability.first());
                json!({
                    "startTime": slot.start_time,
                    "startDate": slot.start_date,
                    "price": primary.map(|p| price(&p.price)),
                    "remaining": slot.remaining,
                    "paxAvailability": slot.pax_availability.iter().map(|p| json!({
                        "type": p.pax_type, "name": p.name, "description": p.description,
                        "price": price(&p.price), "min": p.min, "max": p.max,
                        "remaining": p.remaining,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

impl TestApp {
    /// Asserts that every configured experience's `date` is served exactly as the simulator
    /// now holds it.
    pub async fn assert_served_equals_simulator(&self, date: NaiveDate) {
        for &id in &self.settings.partner.experiences {
            let wire = self.sim.sim.inventory(id, date).expect("simulator day");
            let (status, served) = self
                .get(&format!("/api/v1/experience/{id}/slots?date={date}"))
                .await;
            assert_eq!(status, 200, "{served}");
            assert_eq!(
                served,
                expected_slots(&wire),
                "{}: experience {id} on {date}",
                self.backend.name
            );
        }
    }
}

/// Retries as the engine does them, with delays short enough for tests.
pub fn fast_retries() -> invsync::sync::RetryPolicy {
    invsync::sync::RetryPolicy {
        first_delay: std::time::Duration::from_millis(5),
        max_delay: std::time::Duration::from_millis(100),
        max_retries: 8,
    }
}
