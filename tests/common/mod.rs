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
