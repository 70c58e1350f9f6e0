//! Shared test support: the backends every conformance test runs against, and builders for
//! partner days.
#![allow(dead_code)] // each test binary uses its own subset

use std::io::Write;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use invsync::domain::{DayFetch, ExperienceId, PaxAvailability, Price, Slot};
use invsync::storage::{self, Store};
pub use invsync::sync::real_time_store::RealTimeStore;
use rust_decimal::Decimal;
use sqlx::{Connection, Executor};
use tempfile::TempDir;

/// A store on a real database, removed when dropped.
pub struct TestStore {
    pub name: &'static str,
    pub url: String,
    pub store: Arc<dyn Store>,
    /// Declared after `store`, so the store's pool is released before the database goes.
    _owned: Option<OwnedDatabase>,
}

/// The database a `TestStore` created and removes when dropped.
enum OwnedDatabase {
    Sqlite(TempDir),
    Postgres(TempPostgresDatabase),
}

/// A database with no schema yet, removed when dropped: what a store is opened on, or what an
/// upgrade test migrates step by step.
pub struct EmptyDatabase {
    pub name: &'static str,
    pub url: String,
    owned: OwnedDatabase,
}

impl EmptyDatabase {
    /// Opens the store on it, which migrates it to the latest schema.
    pub async fn open(self) -> TestStore {
        let store = storage::connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("open the {} store: {e}", self.name));
        TestStore {
            name: self.name,
            url: self.url,
            store,
            _owned: Some(self.owned),
        }
    }
}

/// An empty database of every backend the suite must pass on.
pub async fn empty_databases() -> Vec<EmptyDatabase> {
    let mut databases = vec![empty_sqlite_database()];
    databases.extend(empty_postgres_database().await);
    databases
}

fn empty_sqlite_database() -> EmptyDatabase {
    let dir = tempfile::tempdir().expect("temp dir");
    EmptyDatabase {
        name: "sqlite",
        url: format!("sqlite://{}", dir.path().join("invsync.db").display()),
        owned: OwnedDatabase::Sqlite(dir),
    }
}

pub async fn sqlite_store() -> TestStore {
    empty_sqlite_database().open().await
}

/// Where the PostgreSQL backend's test databases are created (any database of the server
/// the tests may create databases on). Not `INVSYNC_`-prefixed: the daemon's configuration
/// rejects unknown `INVSYNC_` keys.
const TEST_POSTGRES_URL: &str = "TEST_POSTGRES_URL";
const DEFAULT_TEST_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const POSTGRES_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Set once PostgreSQL was found unreachable, so later tests of the binary do not wait again.
static POSTGRES_UNREACHABLE: AtomicBool = AtomicBool::new(false);

/// A PostgreSQL store on a fresh database of its own, so tests run in parallel; `None` when
/// PostgreSQL is unreachable outside CI (in CI that fails the test).
pub async fn postgres_store() -> Option<TestStore> {
    Some(empty_postgres_database().await?.open().await)
}

/// A fresh PostgreSQL database of its own; `None` as for [`postgres_store`].
async fn empty_postgres_database() -> Option<EmptyDatabase> {
    let admin_url =
        std::env::var(TEST_POSTGRES_URL).unwrap_or_else(|_| DEFAULT_TEST_POSTGRES_URL.into());
    if POSTGRES_UNREACHABLE.load(Ordering::Relaxed) {
        return None;
    }
    let mut admin = match tokio::time::timeout(
        POSTGRES_CONNECT_TIMEOUT,
        sqlx::PgConnection::connect(&admin_url),
    )
    .await
    {
        Ok(Ok(admin)) => admin,
        Ok(Err(error)) => return postgres_unreachable(&admin_url, &error.to_string()),
        Err(_) => return postgres_unreachable(&admin_url, "connection timed out"),
    };
    let database = format!("invsync_test_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute(format!("CREATE DATABASE {database}").as_str())
        .await
        .expect("create a test database");
    admin.close().await.expect("close the admin connection");
    let mut url = reqwest::Url::parse(&admin_url).expect("TEST_POSTGRES_URL is a URL");
    url.set_path(&database);
    Some(EmptyDatabase {
        name: "postgres",
        url: url.to_string(),
        owned: OwnedDatabase::Postgres(TempPostgresDatabase {
            admin_url,
            name: database,
        }),
    })
}

fn postgres_unreachable<T>(admin_url: &str, error: &str) -> Option<T> {
    let redacted = admin_url.split('@').next_back().unwrap_or(admin_url);
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!(
            "PostgreSQL at {redacted} is unreachable ({error}); with CI=true every test must run \
             on both backends: start PostgreSQL or point {TEST_POSTGRES_URL} at one"
        );
    }
    if !POSTGRES_UNREACHABLE.swap(true, Ordering::Relaxed) {
        // Straight to stderr: the test harness captures `eprintln!` of passing tests.
        let banner = "!".repeat(78);
        let _ = writeln!(
            std::io::stderr(),
            "\n{banner}\nWARNING: PostgreSQL at {redacted} is unreachable ({error}).\n\
             These tests run on SQLite ONLY. Start PostgreSQL or set {TEST_POSTGRES_URL}.\n\
             {banner}\n"
        );
    }
    None
}

/// A database created for one test, dropped with it (also when the test panics).
struct TempPostgresDatabase {
    admin_url: String,
    name: String,
}

impl Drop for TempPostgresDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop cannot await, and blocking inside the test's runtime panics: a thread with a
        // runtime of its own does the work. FORCE ends connections still open to it (an app's
        // background tasks).
        let dropped = std::thread::spawn(move || -> Result<(), String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let mut admin = sqlx::PgConnection::connect(&admin_url)
                    .await
                    .map_err(|e| e.to_string())?;
                admin
                    .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await
                    .map_err(|e| e.to_string())?;
                admin.close().await.map_err(|e| e.to_string())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            let _ = writeln!(
                std::io::stderr(),
                "warning: test database {} was not dropped: {dropped:?}",
                self.name
            );
        }
    }
}

impl TestStore {
    /// Another handle on an existing database (a restarted process); it does not own it.
    pub async fn reuse(name: &'static str, url: &str) -> TestStore {
        TestStore {
            name,
            url: url.to_string(),
            store: storage::connect(url).await.expect("reconnect"),
            _owned: None,
        }
    }
}

/// A store on every backend the suite must pass on.
pub async fn backends() -> Vec<TestStore> {
    let mut backends = Vec::new();
    for database in empty_databases().await {
        backends.push(database.open().await);
    }
    backends
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

/// A direct database connection that bypasses the store, for tampering tests with portable
/// SQL.
pub enum RawConnection {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl RawConnection {
    pub async fn execute(&self, statement: &str) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(pool) => sqlx::query(statement).execute(pool).await.map(|_| ()),
            Self::Postgres(pool) => sqlx::query(statement).execute(pool).await.map(|_| ()),
        }
    }

    /// The rows of a query that selects three integer columns.
    pub async fn fetch_integers(&self, query: &str) -> Vec<(i64, i64, i64)> {
        match self {
            Self::Sqlite(pool) => sqlx::query_as(query).fetch_all(pool).await,
            Self::Postgres(pool) => sqlx::query_as(query).fetch_all(pool).await,
        }
        .expect("query")
    }

    /// Runs `migrator`, recording its migrations as the store's own migrator does.
    pub async fn migrate(&self, migrator: &sqlx::migrate::Migrator) {
        match self {
            Self::Sqlite(pool) => migrator.run(pool).await,
            Self::Postgres(pool) => migrator.run(pool).await,
        }
        .expect("run migrations");
    }
}

pub async fn raw_connection(backend: &TestStore) -> RawConnection {
    raw_connection_to(&backend.url).await
}

/// A connection to the database at `url`, creating an SQLite file that is not there yet.
pub async fn raw_connection_to(url: &str) -> RawConnection {
    if url.starts_with("sqlite:") {
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)
            .expect("SQLite URL")
            .create_if_missing(true);
        RawConnection::Sqlite(
            sqlx::SqlitePool::connect_with(options)
                .await
                .expect("raw SQLite connection"),
        )
    } else {
        RawConnection::Postgres(
            sqlx::PgPool::connect(url)
                .await
                .expect("raw PostgreSQL connection"),
        )
    }
}

/// A PostgreSQL connection holding `entries` locked in a transaction: every ledger read on
/// the database waits until it is committed or dropped.
pub async fn lock_entries(url: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    let mut blocker = sqlx::PgConnection::connect(url).await.expect("connects");
    sqlx::query("BEGIN")
        .execute(&mut blocker)
        .await
        .expect("begins");
    sqlx::query("LOCK TABLE entries IN ACCESS EXCLUSIVE MODE")
        .execute(&mut blocker)
        .await
        .expect("locks");
    blocker
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

/// Both forms of the partner API the sync speaks; the simulator serves both.
pub const PARTNER_KINDS: [invsync::config::PartnerKind; 2] = [
    invsync::config::PartnerKind::Leap,
    invsync::config::PartnerKind::Octo,
];

/// Points `settings` at the simulator's form of the partner API for `kind` (OCTO under
/// `/octo`).
pub fn speak(settings: &mut invsync::config::Settings, kind: invsync::config::PartnerKind) {
    settings.partner.kind = kind;
    if kind == invsync::config::PartnerKind::Octo {
        let octo = settings.partner.base_url.0.join("octo").expect("OCTO URL");
        settings.partner.base_url = invsync::config::BaseUrl(octo);
    }
}

/// [`spawn_app`] syncing from the simulator as a partner of `kind`.
pub async fn spawn_app_of(backend: TestStore, kind: invsync::config::PartnerKind) -> TestApp {
    spawn_app_with(backend, |settings| {
        settings.sync.enabled = false;
        speak(settings, kind);
    })
    .await
}

/// The service with its sync engine off: tests drive syncs themselves.
pub async fn spawn_app(backend: TestStore) -> TestApp {
    spawn_app_with(backend, |settings| settings.sync.enabled = false).await
}

/// The full daemon over a short horizon, its admin token [`ADMIN_TOKEN`].
pub async fn spawn_daemon(backend: TestStore) -> TestApp {
    spawn_app_with(backend, |settings| {
        settings.sync.horizon_days =
            serde_json::from_value(serde_json::json!(DAEMON_HORIZON_DAYS)).expect("horizon");
    })
    .await
}

/// Whether a daemon's status shows its backfill done: nothing queued or in flight, and every
/// day of the horizon fetched.
pub fn drained(status: &serde_json::Value) -> bool {
    status["pending"] == 0
        && status["inFlight"] == 0
        && status["freshness"]
            .as_array()
            .is_some_and(|windows| windows.iter().all(|w| w["neverFetched"] == 0))
}

pub const ADMIN_TOKEN: &str = "test-admin-token";
pub const DAEMON_HORIZON_DAYS: u32 = 7;

pub async fn spawn_app_with(
    backend: TestStore,
    customize: impl FnOnce(&mut invsync::config::Settings),
) -> TestApp {
    let products = invsync::simulator::builtin_products().expect("built-in products");
    spawn_app_selling(backend, products, customize).await
}

/// [`spawn_app_with`] against a simulator whose catalogue is `products`.
pub async fn spawn_app_selling(
    backend: TestStore,
    products: Vec<invsync::simulator::ProductDefinition>,
    customize: impl FnOnce(&mut invsync::config::Settings),
) -> TestApp {
    use invsync::domain::Secret;
    use invsync::simulator::{Simulator, SimulatorConfig};
    use std::num::NonZeroU32;

    let fast = NonZeroU32::new(60_000).expect("non-zero");
    let sim = Simulator::new(SimulatorConfig {
        rate_limit_per_minute: fast,
        products,
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
    settings.partner.request_timeout_seconds = 1;
    settings.server.admin_token = Some(Secret::new(ADMIN_TOKEN));
    customize(&mut settings);
    // The client tests sync with speaks what the daemon is configured to.
    let partner = invsync::partner::PartnerClient::new(invsync::partner::PartnerClientConfig {
        base_url: settings.partner.base_url.0.to_string(),
        api_key: Secret::new(SIM_KEY),
        rate_limit_per_minute: fast,
        request_timeout: std::time::Duration::from_secs(5),
        protocol: settings.partner.protocol().expect("partner protocol"),
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
    /// A POST with the admin token (when `token` is true) and an optional JSON body.
    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut request = self.http.post(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("server answers");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON body"))
    }

    /// Polls the status until `done` holds, for at most `limit`.
    pub async fn wait_for_status(
        &self,
        limit: std::time::Duration,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let start = std::time::Instant::now();
        loop {
            let (_, status) = self.get("/api/v1/sync/status").await;
            if done(&status) {
                return status;
            }
            assert!(start.elapsed() < limit, "status never got there: {status}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        self.get_with(path, None).await
    }

    /// A GET with `Authorization: Bearer <token>` when `token` is given.
    pub async fn get_with(&self, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("server answers");
        let status = response.status().as_u16();
        let body = response.json().await.expect("JSON body");
        (status, body)
    }

    /// `GET /api/v1/ledger/verify` as the admin.
    pub async fn verify(&self) -> (u16, serde_json::Value) {
        self.get_with("/api/v1/ledger/verify", Some(ADMIN_TOKEN))
            .await
    }

    /// Syncs `from..=to` for the configured experiences from the simulator.
    pub async fn sync(&self, from: NaiveDate, to: NaiveDate) -> invsync::sync::SyncSummary {
        let days = invsync::sync::product_dates(&self.settings.partner.experiences, from, to);
        invsync::sync::sync_days(
            &self.partner,
            self.backend.store.as_ref(),
            days,
            fast_retries(),
            &test_lease_claim(),
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
        for partner in self.settings.partners() {
            let kind = partner.settings.kind;
            for &id in &partner.settings.experiences {
                self.assert_day_served_equals_simulator(kind, id, date)
                    .await;
            }
        }
    }

    /// Asserts that experience `id`, synced from a partner of `kind`, serves `date` exactly
    /// as the simulator now holds it.
    pub async fn assert_day_served_equals_simulator(
        &self,
        kind: invsync::config::PartnerKind,
        id: ExperienceId,
        date: NaiveDate,
    ) {
        let mut wire = self.sim.sim.inventory(id, date).expect("simulator day");
        // OCTO has no seats per unit: synced from it, every pax pool follows its slot.
        if kind == invsync::config::PartnerKind::Octo {
            for slot in &mut wire {
                for pax in &mut slot.pax_availability {
                    pax.remaining = slot.remaining.clone();
                }
            }
        }
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

/// The lease a test's one-shot sync runs under.
pub fn test_lease_claim() -> invsync::sync::LeaseClaim {
    invsync::sync::LeaseClaim {
        holder: "test-sync".into(),
        ttl: std::time::Duration::from_secs(10),
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

/// The real engine over a real store, fed by the simulator in-process (no HTTP), under tokio's
/// paused clock.
pub struct EngineHarness {
    pub engine: invsync::sync::engine::Engine,
    pub sim: invsync::simulator::Simulator,
    /// The backend, reached so that database work never lets paused time run ahead.
    pub store: Arc<dyn Store>,
    pub backend: TestStore,
    pub tasks: tokio::task::JoinSet<()>,
}

pub async fn start_engine(backend: TestStore, horizon_days: u32) -> EngineHarness {
    let sim = invsync::simulator::Simulator::new(invsync::simulator::SimulatorConfig::new(
        invsync::domain::Secret::new(SIM_KEY),
    ));
    start_engine_with(backend, sim, horizon_days).await
}

pub async fn start_engine_with(
    backend: TestStore,
    sim: invsync::simulator::Simulator,
    horizon_days: u32,
) -> EngineHarness {
    let store = RealTimeStore::connect(&backend.url)
        .await
        .expect("store connects");
    // A fixed morning in the partner's zone, so hours of simulated time never cross midnight.
    let clock =
        invsync::sync::clock::Clock::starting_at("2026-12-01T00:00:00Z".parse().expect("instant"));
    let engine = engine_for(store.clone(), &sim, horizon_days, clock).await;
    tokio::time::pause();
    let tasks = engine.start();
    EngineHarness {
        engine,
        sim,
        store,
        backend,
        tasks,
    }
}

/// An engine with the default tiers at the partner's 30 requests per minute.
pub async fn engine_for(
    store: Arc<dyn Store>,
    sim: &invsync::simulator::Simulator,
    horizon_days: u32,
    clock: invsync::sync::clock::Clock,
) -> invsync::sync::engine::Engine {
    use invsync::sync::engine::{Engine, EngineConfig};
    let mut settings = invsync::config::Settings::default();
    settings.sync.horizon_days =
        serde_json::from_value(serde_json::json!(horizon_days)).expect("horizon days");
    let config = EngineConfig {
        retry: fast_retries(),
        // Hours of simulated time cost few renewals, and a successor still leads within 20 s.
        lease_ttl: std::time::Duration::from_secs(60),
        // The database judges the lease by its own clock, which the paused clock does not
        // move: a restarted engine takes its lease back at once as the same instance, where
        // another would wait real seconds.
        instance: "paused-clock-engine".into(),
        control_poll: std::time::Duration::from_secs(1),
        ..EngineConfig::from_settings(&settings)
    };
    let partner = invsync::simulator::InProcessPartner::new(
        sim.clone(),
        settings.partner.rate_limit_per_minute,
        clock,
    );
    store
        .ensure_experiences(&config.experiences)
        .await
        .expect("experiences");
    Engine::new(config, store, Arc::new(partner), clock)
        .await
        .expect("engine")
}

impl EngineHarness {
    /// Product-dates of the horizon that have been fetched at least once.
    pub async fn fetched_days(&self) -> usize {
        let (from, to) = self.engine.horizon();
        self.store
            .last_fetches(from, to)
            .await
            .expect("last fetches")
            .len()
    }

    /// Waits (in tokio time) until nothing is queued or in flight, checking every second.
    pub async fn wait_until_drained(&self, limit: std::time::Duration) {
        let start = tokio::time::Instant::now();
        while self.engine.outstanding() > 0 {
            assert!(start.elapsed() < limit, "not drained within {limit:?}");
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }

    pub fn partner_calls(&self) -> usize {
        self.sim.calls().len()
    }

    /// Stops the engine and gives the test its real clock back.
    pub fn finish(self) {
        self.engine.shutdown();
        tokio::time::resume();
    }
}

/// `invsync <args>` as a child process configured through the environment only, run from
/// `dir` (so no `config.toml` is read), talking to `sim` at `rate` requests per minute.
pub fn invsync_command(
    dir: &std::path::Path,
    database_url: &str,
    sim: &invsync::simulator::SimulatorHandle,
    rate: u32,
    horizon_days: usize,
    args: &[&str],
) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_invsync"));
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("INVSYNC_DATABASE__URL", database_url)
        .env("INVSYNC_PARTNER__BASE_URL", sim.base_url())
        .env("INVSYNC_PARTNER__API_KEY", SIM_KEY)
        .env("INVSYNC_PARTNER__RATE_LIMIT_PER_MINUTE", rate.to_string())
        .env("INVSYNC_SYNC__HORIZON_DAYS", horizon_days.to_string())
        .env("INVSYNC_SERVER__LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    command
}

/// The start times of a fetched day, as `HH:MM`, in the partner's order.
pub fn start_times(day: &DayFetch) -> Vec<String> {
    day.slots
        .iter()
        .map(|slot| slot.start_time.format("%H:%M").to_string())
        .collect()
}

/// The OCTO capability this supplier implements.
pub const PRICING: &str = "octo/pricing";

/// Required by OCTO on every price.
pub const PRICING_FIELDS: &[&str] = &[
    "original",
    "retail",
    "net",
    "currency",
    "currencyPrecision",
    "includedTaxes",
];

/// Asserts that the JSON object `value` (named `what` in the message) has every one of
/// `fields`, as OCTO's specification requires them.
pub fn assert_fields(value: &serde_json::Value, fields: &[&str], what: &str) {
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("{what} is an object: {value}"));
    for field in fields {
        assert!(object.contains_key(*field), "{what} lacks {field}: {value}");
    }
}
