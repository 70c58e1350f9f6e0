//! Bookings under contention: 64 HTTP clients hold one seat each on one hot slot until it is
//! sold out, then half of the won holds are confirmed and half cancelled; on SQLite and on
//! PostgreSQL, beside a bare conditional update measured in the same run on the same database.
//!
//! `cargo bench --bench bookings` (PostgreSQL from `TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`; a scratch database is created and dropped).
//! `cargo bench --bench bookings -- sqlite` (or `postgres`) runs one backend. Knobs:
//! `BOOKINGS_SEATS` (5000: the hot pool's seats each round), `BOOKINGS_ROUNDS` (3),
//! `BOOKINGS_CLIENTS` (64), `BOOKINGS_DIAGNOSE_SEATS` (2000: the pool of the in-process
//! breakdown after the rounds; 0 skips it).
//!
//! Per backend, the real app in this process (`Application::build`, port 0, sync off, default
//! server settings, a sales and an admin token). Each round puts one slot in place on a day of
//! the horizon no round used before, through the store as the sync applies a partner fetch:
//! product 14 at 09:00 with `BOOKINGS_SEATS` seats and one pax type, ADULT (1 to 20 a booking),
//! with as many, so each hold moves two pools (the slot's and ADULT's). Then, timed:
//! - **holds**: `BOOKINGS_CLIENTS` tasks, each with its own keep-alive reqwest client (one
//!   connection), `POST /api/v1/bookings` for one ADULT with a key of its own per request,
//!   until it is answered `409 insufficient_capacity`. Holds/s = 201s ÷ the time until the last
//!   client got its 409; p50 and p99 are of the 201s' round trips.
//! - **confirm / cancel**: the same clients take the won bookings in turn; even ones are
//!   confirmed, odd ones cancelled (`200` each expected).
//! - **checks** (untimed): oversold = 201s − seats (floored at 0); the served remaining after
//!   the holds must be 0 and after the second phase the seats minus the confirmed ones; `GET
//!   /api/v1/ledger/verify` with the admin token must say `ok`.
//!
//! The **baseline**, each round right after the product's holds, on the same database (the
//! same SQLite file; the same scratch PostgreSQL database) and at the same concurrency: a table
//! `bench_pools (id, remaining)` with a row of `BOOKINGS_SEATS`, and `BOOKINGS_CLIENTS` tasks
//! each running
//! `UPDATE bench_pools SET remaining = remaining - 1 WHERE id = $1 AND remaining >= 1`
//! in a transaction of its own through sqlx until it updates no row: on SQLite through a
//! pool of one writer connection opened as the product opens its own (WAL, `synchronous =
//! NORMAL`, `BEGIN IMMEDIATE`), on PostgreSQL through a pool of 10 connections (the product's
//! bound) with durable commits (the server's default, as the product's holds). No HTTP, no
//! ledger, no idempotency key: the ratio is what the whole booking path costs against the
//! cheapest correct decrement.
//!
//! Figures are medians over the rounds. Targets, on each backend: holds/s at least half the
//! baseline's ops/s, hold p99 at most 25 ms, 0 seats oversold. A missed speed target is
//! printed as missed; any oversold seat, a failed ledger verify, a wrong served remaining or
//! an answer other than 201/409 (holds) or 200 (confirm, cancel) exits non-zero.
//!
//! After the rounds, **where the time goes** (unless `BOOKINGS_DIAGNOSE_SEATS=0`): the two
//! store calls a hold makes (`BookingDesk::hold` without HTTP and without its day's queue: the
//! capacity pre-check on a reader, then the hold's write transaction, here a batch of one)
//! timed one by one in process, with `BOOKINGS_CLIENTS` tasks and with one, beside the
//! baseline's update with one task: at one client the time is each call's service time, what
//! a single writer (or a day's lock) serialises, and what the desk's batches share.

mod support;

use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{NaiveDate, NaiveTime};
use invsync::app::Application;
use invsync::bookings::{HoldBody, PaxBody};
use invsync::config::Settings;
use invsync::domain::{DayFetch, ExperienceId, PaxAvailability, Price, Secret, Slot};
use invsync::storage::{HoldOutcome, KeyedHold, Store};
use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use support::PostgresServer;
use tokio::sync::oneshot;

const SALES_TOKEN: &str = "bench-sales-token";
const ADMIN_TOKEN: &str = "bench-admin-token";
const EXPERIENCE: i64 = 14;
const START: &str = "09:00";
const PAX_TYPE: &str = "ADULT";
/// The product's PostgreSQL pool bound (`MAX_CONNECTIONS` in `storage/postgres`).
const POSTGRES_CONNECTIONS: u32 = 10;

const TARGET_RATIO: f64 = 0.5;
const TARGET_P99: Duration = Duration::from_millis(25);

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|value| value.trim().parse().expect("a whole number"))
        .unwrap_or(default)
}

struct Knobs {
    seats: i64,
    rounds: usize,
    clients: usize,
    diagnose_seats: i64,
}

impl Knobs {
    fn from_env() -> Self {
        Self {
            seats: env_or("BOOKINGS_SEATS", 5000).max(1) as i64,
            rounds: env_or("BOOKINGS_ROUNDS", 3).max(1) as usize,
            clients: env_or("BOOKINGS_CLIENTS", 64).max(1) as usize,
            diagnose_seats: env_or("BOOKINGS_DIAGNOSE_SEATS", 2000) as i64,
        }
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Nearest-rank percentile of `latencies` (sorted here), in milliseconds; 0 when empty.
fn percentile_ms(latencies: &mut [Duration], percent: usize) -> f64 {
    if latencies.is_empty() {
        return 0.0;
    }
    latencies.sort_unstable();
    let rank = (latencies.len() * percent).div_ceil(100).max(1);
    latencies[rank - 1].as_secs_f64() * 1e3
}

/// Rate and latency of one timed phase.
#[derive(Clone, Copy, Default)]
struct Phase {
    done: usize,
    seconds: f64,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

impl Phase {
    fn of(mut latencies: Vec<Duration>, elapsed: Duration) -> Self {
        let seconds = elapsed.as_secs_f64();
        Self {
            done: latencies.len(),
            seconds,
            per_second: latencies.len() as f64 / seconds,
            p50_ms: percentile_ms(&mut latencies, 50),
            p99_ms: percentile_ms(&mut latencies, 99),
        }
    }

    fn line(&self) -> String {
        format!(
            "{:>6} in {:>6.2} s {:>7.0}/s p50 {:>6.2} ms p99 {:>7.2} ms",
            self.done, self.seconds, self.per_second, self.p50_ms, self.p99_ms
        )
    }
}

/// One round's figures and checks.
struct Round {
    holds: Phase,
    /// Confirms and cancels together (they run at once); each kind's own latencies below.
    decisions: Phase,
    confirms: Phase,
    cancels: Phase,
    baseline: Phase,
    oversold: i64,
    /// What went wrong in the checks (wrong answers, remaining, verify), if anything.
    faults: Vec<String>,
}

/// The app over `database_url`, serving on port 0 until the returned sender is dropped.
struct Running {
    base: String,
    store: Arc<dyn Store>,
    first_day: NaiveDate,
    last_day: NaiveDate,
    _stop: oneshot::Sender<()>,
}

async fn start_app(database_url: &str) -> Running {
    let mut settings = Settings::default();
    settings.database.url = Secret::new(database_url.to_string());
    settings.server.listen = "127.0.0.1:0".parse().expect("address");
    // Sync off: the partner is never called, but its key must be configured.
    settings.sync.enabled = false;
    settings.partner.api_key = Some(Secret::new("unused"));
    settings.server.sales_token = Some(Secret::new(SALES_TOKEN));
    settings.server.admin_token = Some(Secret::new(ADMIN_TOKEN));
    let app = Application::build(settings)
        .await
        .expect("application builds");
    let base = format!("http://{}", app.local_addr());
    let store = app.store();
    let (first_day, last_day) = app.engine().horizon();
    let (stop, stopped) = oneshot::channel();
    tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    Running {
        base,
        store,
        first_day,
        last_day,
        _stop: stop,
    }
}

/// Puts the hot slot of `day` in place, as the sync applies a partner's answer.
async fn partner_reports(store: &dyn Store, day: NaiveDate, seats: i64) {
    let price = Price {
        final_price: Decimal::new(5025, 2),
        original_price: Decimal::new(6025, 2),
        currency: "SGD".into(),
    };
    let start = NaiveTime::from_str(START).expect("start time");
    let slot = Slot {
        provider_slot_id: format!("bench_{day}T{START}"),
        start_date: day,
        start_time: start,
        end_time: start,
        remaining: seats,
        currency: "SGD".into(),
        variant_id: 32,
        pax: vec![PaxAvailability {
            pax_type: PAX_TYPE.into(),
            name: "Adult".into(),
            description: String::new(),
            min: 1,
            max: 20,
            remaining: seats,
            is_primary: true,
            price,
        }],
    };
    let experience = ExperienceId::try_from(EXPERIENCE).expect("id");
    store
        .apply_fetch(&DayFetch::new(experience, day, vec![slot]), None)
        .await
        .expect("the partner's day applies");
}

fn hold_body(day: NaiveDate) -> HoldBody {
    HoldBody {
        experience: Some(ExperienceId::try_from(EXPERIENCE).expect("id")),
        date: day.to_string(),
        start_time: START.into(),
        pax: vec![PaxBody {
            pax_type: PAX_TYPE.into(),
            quantity: 1,
        }],
        hold_seconds: None,
    }
}

/// One keep-alive connection per client.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .expect("HTTP client")
}

/// What one client's holds came to.
#[derive(Default)]
struct Held {
    ids: Vec<String>,
    latencies: Vec<Duration>,
    unexpected: Vec<String>,
}

/// Holds one seat at a time with fresh keys until the slot is sold out.
async fn hold_until_refused(
    http: reqwest::Client,
    base: String,
    body: Arc<Vec<u8>>,
    key_prefix: String,
) -> Held {
    let mut held = Held::default();
    for n in 0.. {
        let started = Instant::now();
        let answer = http
            .post(format!("{base}/api/v1/bookings"))
            .bearer_auth(SALES_TOKEN)
            .header("Idempotency-Key", format!("{key_prefix}-{n}"))
            .header("Content-Type", "application/json")
            .body(body.as_ref().clone())
            .send()
            .await;
        let response = match answer {
            Ok(response) => response,
            Err(error) => {
                held.unexpected.push(format!("hold: {error}"));
                return held;
            }
        };
        let status = response.status().as_u16();
        let json: Value = response.json().await.unwrap_or(Value::Null);
        let took = started.elapsed();
        match status {
            201 => {
                held.latencies.push(took);
                held.ids
                    .push(json["id"].as_str().expect("a booking id").to_string());
            }
            409 if json["code"] == "insufficient_capacity" => return held,
            _ => {
                held.unexpected.push(format!("hold: {status} {json}"));
                return held;
            }
        }
    }
    held
}

/// Confirms the even bookings of `ids` and cancels the odd ones, taking them in turn.
async fn decide(
    http: reqwest::Client,
    base: String,
    ids: Arc<Vec<String>>,
    next: Arc<AtomicUsize>,
) -> (Vec<Duration>, Vec<Duration>, Vec<String>) {
    let (mut confirms, mut cancels, mut unexpected) = (Vec::new(), Vec::new(), Vec::new());
    loop {
        let index = next.fetch_add(1, Ordering::Relaxed);
        let Some(id) = ids.get(index) else {
            return (confirms, cancels, unexpected);
        };
        let action = if index.is_multiple_of(2) {
            "confirm"
        } else {
            "cancel"
        };
        let started = Instant::now();
        let answer = http
            .post(format!("{base}/api/v1/bookings/{id}/{action}"))
            .bearer_auth(SALES_TOKEN)
            .send()
            .await;
        match answer {
            Ok(response) if response.status().as_u16() == 200 => {
                let _ = response.bytes().await;
                let took = started.elapsed();
                if index.is_multiple_of(2) {
                    confirms.push(took);
                } else {
                    cancels.push(took);
                }
            }
            Ok(response) => {
                let status = response.status().as_u16();
                let text = response.text().await.unwrap_or_default();
                unexpected.push(format!("{action}: {status} {text}"));
            }
            Err(error) => unexpected.push(format!("{action}: {error}")),
        }
    }
}

async fn served_remaining(base: &str, day: NaiveDate) -> Option<i64> {
    let slots: Value = reqwest::get(format!(
        "{base}/api/v1/experience/{EXPERIENCE}/slots?date={day}"
    ))
    .await
    .ok()?
    .json()
    .await
    .ok()?;
    slots[0]["remaining"].as_i64()
}

async fn verify(base: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{base}/api/v1/ledger/verify"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("verify answers")
        .json()
        .await
        .expect("verify JSON")
}

/// The comparison point: a bare conditional update, no ledger.
#[derive(Clone)]
enum Baseline {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Baseline {
    async fn sqlite(path: &str) -> Self {
        // As `SqliteStore::connect` opens its writer.
        let options = SqliteConnectOptions::from_str(path)
            .expect("SQLite URL")
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .pragma("wal_autocheckpoint", "10000");
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .expect("baseline SQLite pool");
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS bench_pools (id INTEGER PRIMARY KEY, remaining BIGINT NOT NULL)",
        )
        .execute(&pool)
        .await
        .expect("baseline table");
        Self::Sqlite(pool)
    }

    async fn postgres(url: &str) -> Self {
        let pool = PgPoolOptions::new()
            .max_connections(POSTGRES_CONNECTIONS)
            .connect(url)
            .await
            .expect("baseline PostgreSQL pool");
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS bench_pools (id BIGINT PRIMARY KEY, remaining BIGINT NOT NULL)",
        )
        .execute(&pool)
        .await
        .expect("baseline table");
        Self::Postgres(pool)
    }

    async fn fill(&self, id: i64, seats: i64) {
        let sql = "INSERT INTO bench_pools (id, remaining) VALUES ($1, $2)";
        match self {
            Self::Sqlite(pool) => sqlx::query(sql)
                .bind(id)
                .bind(seats)
                .execute(pool)
                .await
                .map(|_| ()),
            Self::Postgres(pool) => sqlx::query(sql)
                .bind(id)
                .bind(seats)
                .execute(pool)
                .await
                .map(|_| ()),
        }
        .expect("baseline row");
    }

    async fn remaining(&self, id: i64) -> i64 {
        let sql = "SELECT remaining FROM bench_pools WHERE id = $1";
        match self {
            Self::Sqlite(pool) => sqlx::query_scalar(sql).bind(id).fetch_one(pool).await,
            Self::Postgres(pool) => sqlx::query_scalar(sql).bind(id).fetch_one(pool).await,
        }
        .expect("baseline remaining")
    }

    /// Takes one seat of row `id` in a transaction of its own: whether there was one.
    async fn take(&self, id: i64) -> bool {
        let sql =
            "UPDATE bench_pools SET remaining = remaining - 1 WHERE id = $1 AND remaining >= 1";
        let updated = match self {
            Self::Sqlite(pool) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.expect("begin");
                let done = sqlx::query(sql)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .expect("update");
                tx.commit().await.expect("commit");
                done.rows_affected()
            }
            Self::Postgres(pool) => {
                let mut tx = pool.begin().await.expect("begin");
                let done = sqlx::query(sql)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .expect("update");
                tx.commit().await.expect("commit");
                done.rows_affected()
            }
        };
        updated == 1
    }

    /// `clients` tasks taking seats of a fresh row of `seats` until none is left.
    async fn run(&self, id: i64, seats: i64, clients: usize) -> (Phase, i64) {
        self.fill(id, seats).await;
        let started = Instant::now();
        let tasks: Vec<_> = (0..clients)
            .map(|_| {
                let baseline = self.clone();
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    loop {
                        let began = Instant::now();
                        if !baseline.take(id).await {
                            return latencies;
                        }
                        latencies.push(began.elapsed());
                    }
                })
            })
            .collect();
        let mut latencies = Vec::new();
        for task in tasks {
            latencies.extend(task.await.expect("baseline task"));
        }
        let elapsed = started.elapsed();
        let taken = latencies.len() as i64;
        let left = self.remaining(id).await;
        assert_eq!(left, seats - taken, "the baseline's row lost count");
        (Phase::of(latencies, elapsed), (taken - seats).max(0))
    }
}

async fn round(
    app: &Running,
    baseline: &Baseline,
    day: NaiveDate,
    index: usize,
    knobs: &Knobs,
) -> Round {
    partner_reports(app.store.as_ref(), day, knobs.seats).await;
    let body = Arc::new(serde_json::to_vec(&hold_body(day)).expect("hold body"));
    let clients: Vec<reqwest::Client> = (0..knobs.clients).map(|_| client()).collect();
    // Each client opens its connection before the clock starts.
    for http in &clients {
        http.get(format!("{}/healthz", app.base))
            .send()
            .await
            .expect("healthz answers");
    }
    let started = Instant::now();
    let tasks: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(n, http)| {
            tokio::spawn(hold_until_refused(
                http.clone(),
                app.base.clone(),
                body.clone(),
                format!("bench-{day}-{n}"),
            ))
        })
        .collect();
    let mut held = Held::default();
    for task in tasks {
        let one = task.await.expect("hold task");
        held.ids.extend(one.ids);
        held.latencies.extend(one.latencies);
        held.unexpected.extend(one.unexpected);
    }
    let holds = Phase::of(held.latencies, started.elapsed());
    let won = held.ids.len() as i64;
    let mut faults = held.unexpected;
    let after_holds = served_remaining(&app.base, day).await;
    if after_holds != Some(knobs.seats - won) || won != knobs.seats {
        faults.push(format!(
            "after the holds: {won} won of {} seats, /slots serves {after_holds:?} remaining",
            knobs.seats
        ));
    }

    // The comparison point, while the product's database is as the holds left it.
    let (baseline_phase, baseline_oversold) =
        baseline.run(index as i64, knobs.seats, knobs.clients).await;
    if baseline_oversold > 0 {
        faults.push(format!("the baseline oversold {baseline_oversold}"));
    }

    let ids = Arc::new(held.ids);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = clients
        .iter()
        .map(|http| {
            tokio::spawn(decide(
                http.clone(),
                app.base.clone(),
                ids.clone(),
                next.clone(),
            ))
        })
        .collect();
    let (mut confirm_latencies, mut cancel_latencies) = (Vec::new(), Vec::new());
    for task in tasks {
        let (confirms, cancels, unexpected) = task.await.expect("decide task");
        confirm_latencies.extend(confirms);
        cancel_latencies.extend(cancels);
        faults.extend(unexpected);
    }
    let elapsed = started.elapsed();
    let confirmed = confirm_latencies.len() as i64;
    let decisions = Phase::of(
        confirm_latencies
            .iter()
            .chain(&cancel_latencies)
            .copied()
            .collect(),
        elapsed,
    );
    // Both kinds ran at once: each one's rate is its count over the whole phase.
    let confirms = Phase::of(confirm_latencies, elapsed);
    let cancels = Phase::of(cancel_latencies, elapsed);
    let after_decisions = served_remaining(&app.base, day).await;
    if after_decisions != Some(knobs.seats - confirmed) {
        faults.push(format!(
            "after confirming {confirmed}: /slots serves {after_decisions:?} remaining of {}",
            knobs.seats
        ));
    }
    let report = verify(&app.base).await;
    if report["ok"] != true {
        faults.push(format!("ledger verify: {report}"));
    }
    Round {
        holds,
        decisions,
        confirms,
        cancels,
        baseline: baseline_phase,
        oversold: (won - knobs.seats).max(0),
        faults,
    }
}

/// Mean time per won hold of each store call a hold makes, and the rate, in process.
struct Breakdown {
    clients: usize,
    holds: Phase,
    precheck_ms: f64,
    hold_ms: f64,
}

/// The store calls of `BookingDesk::hold` (capacity pre-check, hold), each timed.
async fn breakdown(
    store: Arc<dyn Store>,
    day: NaiveDate,
    clients: usize,
    prefix: &str,
) -> Breakdown {
    let body = Arc::new(hold_body(day));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|n| {
            let (store, body) = (store.clone(), body.clone());
            let prefix = format!("{prefix}-{n}");
            tokio::spawn(async move {
                let mut stages = Vec::new();
                for i in 0.. {
                    let key = format!("{prefix}-{i}");
                    let began = Instant::now();
                    let now = invsync::bookings::now();
                    let request = body.parse(now).expect("a valid hold");
                    let short = store
                        .hold_shortfall(&key, &request, now)
                        .await
                        .expect("pre-check");
                    let checked = Instant::now();
                    if short.is_some() {
                        return stages;
                    }
                    let hold = KeyedHold {
                        id: uuid::Uuid::new_v4(),
                        key,
                        request_hash: body.canonical_hash(),
                        request,
                    };
                    let held = store
                        .hold_batch(std::slice::from_ref(&hold), now)
                        .await
                        .expect("hold");
                    let done = Instant::now();
                    if !matches!(held.as_slice(), [HoldOutcome::Held(_)]) {
                        return stages;
                    }
                    stages.push([checked - began, done - checked]);
                }
                stages
            })
        })
        .collect();
    let mut stages = Vec::new();
    for task in tasks {
        stages.extend(task.await.expect("breakdown task"));
    }
    let elapsed = started.elapsed();
    let mean_ms = |stage: usize| {
        stages.iter().map(|s| s[stage].as_secs_f64()).sum::<f64>() * 1e3 / stages.len() as f64
    };
    let (precheck_ms, hold_ms) = (mean_ms(0), mean_ms(1));
    Breakdown {
        clients,
        holds: Phase::of(stages.iter().map(|s| s[0] + s[1]).collect(), elapsed),
        precheck_ms,
        hold_ms,
    }
}

struct Summary {
    backend: &'static str,
    rounds: Vec<Round>,
    diagnosis: Vec<String>,
}

async fn measure(backend: &'static str, database_url: &str, knobs: &Knobs) -> Summary {
    // The app first: it creates and migrates the database the baseline's table joins.
    let app = start_app(database_url).await;
    println!(
        "{backend:<9} load average at start: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let baseline = if backend == "sqlite" {
        Baseline::sqlite(database_url).await
    } else {
        Baseline::postgres(database_url).await
    };
    let mut rounds = Vec::new();
    let mut days = app.first_day.iter_days().skip(1);
    let mut next_day = || {
        let day = days.next().expect("a day");
        assert!(day <= app.last_day, "more rounds than days in the horizon");
        day
    };
    for index in 0..knobs.rounds {
        let result = round(&app, &baseline, next_day(), index, knobs).await;
        println!(
            "{backend:<9} round {}  holds {}  | baseline {}  | confirm+cancel {}  | confirms {}  | cancels {}  | oversold {}{}",
            index + 1,
            result.holds.line(),
            result.baseline.line(),
            result.decisions.line(),
            result.confirms.line(),
            result.cancels.line(),
            result.oversold,
            if result.faults.is_empty() {
                String::new()
            } else {
                format!("  FAULTS: {}", result.faults.join("; "))
            }
        );
        rounds.push(result);
    }
    let mut diagnosis = Vec::new();
    if knobs.diagnose_seats > 0 {
        for clients in [knobs.clients, 1] {
            let day = next_day();
            partner_reports(app.store.as_ref(), day, knobs.diagnose_seats).await;
            let b = breakdown(app.store.clone(), day, clients, &format!("diag-{day}")).await;
            diagnosis.push(format!(
                "{backend:<9} hold in process  {:>3} client(s)  {}   pre-check {:>6.2} ms  hold tx {:>6.2} ms",
                b.clients,
                b.holds.line(),
                b.precheck_ms,
                b.hold_ms
            ));
        }
        let (one, _) = baseline.run(1_000_000, knobs.diagnose_seats, 1).await;
        diagnosis.push(format!(
            "{backend:<9} baseline update    1 client   {}",
            one.line()
        ));
        for line in &diagnosis {
            println!("{line}");
        }
    }
    match baseline {
        Baseline::Sqlite(pool) => pool.close().await,
        Baseline::Postgres(pool) => pool.close().await,
    }
    Summary {
        backend,
        rounds,
        diagnosis,
    }
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "missed" }
}

/// Prints the medians; whether every correctness check held.
fn report(summaries: &[Summary], knobs: &Knobs) -> bool {
    println!();
    println!(
        "bookings: medians of {} rounds, {} clients, {} seats a round; targets: holds/s >= {TARGET_RATIO} x baseline, hold p99 <= {} ms, 0 oversold",
        knobs.rounds,
        knobs.clients,
        knobs.seats,
        TARGET_P99.as_millis()
    );
    println!(
        "backend    holds/s   p50 ms   p99 ms  oversold  baseline ops/s  b.p50 ms  b.p99 ms  ratio   throughput  p99     oversold"
    );
    let mut correct = true;
    for summary in summaries {
        let rounds = &summary.rounds;
        let pick = |f: &dyn Fn(&Round) -> f64| median(rounds.iter().map(f).collect());
        let holds = pick(&|r| r.holds.per_second);
        let p50 = pick(&|r| r.holds.p50_ms);
        let p99 = pick(&|r| r.holds.p99_ms);
        let oversold: i64 = rounds.iter().map(|r| r.oversold).sum();
        let baseline = pick(&|r| r.baseline.per_second);
        let ratio = pick(&|r| r.holds.per_second / r.baseline.per_second);
        let faults: usize = rounds.iter().map(|r| r.faults.len()).sum();
        correct &= oversold == 0 && faults == 0;
        println!(
            "{:<9} {:>8.0} {:>8.2} {:>8.2} {:>9} {:>15.0} {:>9.2} {:>9.2} {:>6.2}   {:<10}  {:<6}  {}",
            summary.backend,
            holds,
            p50,
            p99,
            oversold,
            baseline,
            pick(&|r| r.baseline.p50_ms),
            pick(&|r| r.baseline.p99_ms),
            ratio,
            met(ratio >= TARGET_RATIO),
            met(p99 <= TARGET_P99.as_secs_f64() * 1e3),
            if oversold == 0 { "met" } else { "MISSED" },
        );
    }
    println!(
        "backend   confirm+cancel/s  confirm p50 ms  p99 ms  cancel p50 ms  p99 ms  checks (remaining, verify, answers)"
    );
    for summary in summaries {
        let rounds = &summary.rounds;
        let pick = |f: &dyn Fn(&Round) -> f64| median(rounds.iter().map(f).collect());
        let faults: Vec<&String> = rounds.iter().flat_map(|r| &r.faults).collect();
        println!(
            "{:<9} {:>16.0} {:>15.2} {:>7.2} {:>14.2} {:>7.2}  {}",
            summary.backend,
            pick(&|r| r.decisions.per_second),
            pick(&|r| r.confirms.p50_ms),
            pick(&|r| r.confirms.p99_ms),
            pick(&|r| r.cancels.p50_ms),
            pick(&|r| r.cancels.p99_ms),
            if faults.is_empty() {
                "ok".to_string()
            } else {
                format!("{} FAULTS (see the rounds)", faults.len())
            }
        );
    }
    if summaries.iter().any(|s| !s.diagnosis.is_empty()) {
        println!(
            "where the time goes: the store calls of a hold without HTTP, mean per won hold; the baseline's update alone"
        );
        for line in summaries.iter().flat_map(|s| &s.diagnosis) {
            println!("{line}");
        }
    }
    correct
}

#[tokio::main]
async fn main() -> ExitCode {
    let knobs = Knobs::from_env();
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    let wanted = |backend: &str| only.is_empty() || only.iter().any(|arg| arg == backend);
    println!(
        "bookings: {} HTTP clients hold 1 seat each (fresh keys) on one slot of {} seats (slot and ADULT pools) until sold out, then confirm half and cancel half; {} rounds; \
         baseline: UPDATE bench_pools SET remaining = remaining - 1 WHERE id = $1 AND remaining >= 1, one transaction each, {} tasks through sqlx \
         (SQLite: 1 writer connection; PostgreSQL: {POSTGRES_CONNECTIONS} connections)",
        knobs.clients, knobs.seats, knobs.rounds, knobs.clients
    );
    let mut summaries = Vec::new();
    if wanted("sqlite") {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("bookings.db").display());
        summaries.push(measure("sqlite", &url, &knobs).await);
    }
    if wanted("postgres")
        && let Some(mut server) = PostgresServer::connect().await
    {
        let url = server.create_database("bookings").await;
        summaries.push(measure("postgres", &url, &knobs).await);
        server.drop_database("bookings").await;
    }
    if report(&summaries, &knobs) {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "bookings: a correctness check failed (oversold seats, ledger verify, served remaining or an unexpected answer)"
        );
        ExitCode::FAILURE
    }
}
