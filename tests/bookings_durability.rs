//! Bookings under the failures a customer would notice: a sale split across two instances on
//! one database sells each seat once, a `kill -9` in the middle of a booking storm loses no
//! answered hold and leaves the books balanced, and a hold that lapses while the daemon is
//! dead is back on sale as soon as it is up again.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use common::*;
use invsync::simulator::{Simulator, SimulatorConfig, SimulatorHandle};
use serde_json::{Value, json};

const SALES_TOKEN: &str = "test-sales-token";
const EXPERIENCE: i64 = 14;
const HORIZON_DAYS: usize = 7;
/// The partner's pace the daemons are configured with; their sync is off, so it is moot.
const RATE: u32 = 600;

/// A day of every process's horizon: tomorrow in the partner's zone.
fn booking_day() -> NaiveDate {
    invsync::config::Settings::default()
        .partner
        .today()
        .succ_opt()
        .expect("tomorrow")
}

/// Applies a partner answer for `day` straight through the store: one slot at 09:00 with
/// `seats`, all of them ADULT.
async fn partner_reports(backend: &TestStore, day: NaiveDate, seats: i64) {
    backend
        .store
        .ensure_experiences(&[experience(EXPERIENCE)])
        .await
        .expect("experiences");
    let fetch = fetch_at(
        experience(EXPERIENCE),
        day,
        1,
        vec![slot(
            day,
            "09:00",
            seats,
            vec![pax("ADULT", seats, "50.25", true)],
        )],
    );
    backend
        .store
        .apply_fetch(&fetch, None)
        .await
        .expect("fetch applies");
}

fn hold_body(day: NaiveDate, seats: i64, hold_seconds: Option<i64>) -> Value {
    let mut body = json!({
        "experience": EXPERIENCE,
        "date": day.to_string(),
        "startTime": "09:00",
        "pax": [{"type": "ADULT", "quantity": seats}],
    });
    if let Some(seconds) = hold_seconds {
        body["holdSeconds"] = json!(seconds);
    }
    body
}

/// One instance's HTTP API, as a client sees it.
#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
}

/// How a hold request ended for its client.
#[derive(Debug)]
enum Outcome {
    /// 201, with the booking's id and whether it replayed an earlier request.
    Held { id: String, replayed: bool },
    /// A 4xx/5xx answer: its status and `code`.
    Refused(u16, String),
    /// No answer at all (the process died under it), and the client's error.
    NoAnswer(#[allow(dead_code)] String),
}

impl Api {
    fn of(app: &TestApp) -> Self {
        Self {
            http: app.http.clone(),
            base: app.base.clone(),
        }
    }

    async fn hold(&self, key: &str, body: &Value) -> Outcome {
        let sent = self
            .http
            .post(format!("{}/api/v1/bookings", self.base))
            .bearer_auth(SALES_TOKEN)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => return Outcome::NoAnswer(error.to_string()),
        };
        let status = response.status().as_u16();
        let replayed = response.headers().get("idempotent-replayed").is_some();
        let answer: Value = match response.json().await {
            Ok(answer) => answer,
            Err(error) => return Outcome::NoAnswer(error.to_string()),
        };
        if status == 201 {
            Outcome::Held {
                id: answer["id"].as_str().expect("a booking id").to_string(),
                replayed,
            }
        } else {
            Outcome::Refused(status, answer["code"].as_str().unwrap_or("").to_string())
        }
    }

    async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("server answers");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON body"))
    }

    async fn booking(&self, id: &str) -> (u16, Value) {
        self.get(&format!("/api/v1/bookings/{id}"), SALES_TOKEN)
            .await
    }

    async fn confirm(&self, id: &str) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/api/v1/bookings/{id}/confirm", self.base))
            .bearer_auth(SALES_TOKEN)
            .send()
            .await
            .expect("server answers");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON body"))
    }

    /// The slot's remaining seats as `/slots` serves them.
    async fn remaining(&self, day: NaiveDate) -> i64 {
        let (status, slots) = self
            .get(
                &format!("/api/v1/experience/{EXPERIENCE}/slots?date={day}"),
                SALES_TOKEN,
            )
            .await;
        assert_eq!(status, 200, "{slots}");
        slots[0]["remaining"].as_i64().expect("remaining")
    }

    async fn assert_verified(&self, backend: &str) {
        let (status, report) = self.get("/api/v1/ledger/verify", ADMIN_TOKEN).await;
        assert_eq!(status, 200, "{backend}: {report}");
        assert_eq!(report["ok"], true, "{backend}: {report}");
    }
}

/// Counts a storm's 201s as they arrive; once `at` of them have, kills `kill` (if any) with
/// SIGKILL right there, in the task that saw the last of them, and wakes a waiter. Killing
/// from the waiter instead lets a fast sale finish before the waiter is scheduled.
#[derive(Default)]
struct Wins {
    count: AtomicUsize,
    at: usize,
    kill: Option<libc::pid_t>,
    reached: tokio::sync::Notify,
}

/// Customers of a storm with a request in flight at once: enough that holds are batched,
/// few enough that a kill after a given number of wins lands with seats still unsold.
const STORM_CLIENTS: usize = 10;

/// Sends `keys` holds of one seat each, [`STORM_CLIENTS`] at a time, and returns each key's
/// outcome in order.
async fn storm(api: &Api, keys: &[String], body: &Value, wins: Arc<Wins>) -> Vec<Outcome> {
    let clients = Arc::new(tokio::sync::Semaphore::new(STORM_CLIENTS));
    let tasks: Vec<_> = keys
        .iter()
        .map(|key| {
            let (api, key, body, wins) = (api.clone(), key.clone(), body.clone(), wins.clone());
            let clients = clients.clone();
            tokio::spawn(async move {
                let _client = clients.acquire().await.expect("the storm's clients");
                let outcome = api.hold(&key, &body).await;
                if matches!(outcome, Outcome::Held { .. })
                    && wins.count.fetch_add(1, Ordering::SeqCst) + 1 == wins.at
                {
                    if let Some(pid) = wins.kill {
                        // SAFETY: a plain signal to the child this test spawned and has not reaped.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                    wins.reached.notify_one();
                }
                outcome
            })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(tasks.len());
    for task in tasks {
        outcomes.push(task.await.expect("the hold's task"));
    }
    outcomes
}

fn held_ids(outcomes: &[Outcome]) -> Vec<&str> {
    outcomes
        .iter()
        .filter_map(|outcome| match outcome {
            Outcome::Held { id, .. } => Some(id.as_str()),
            _ => None,
        })
        .collect()
}

fn count_refused(outcomes: &[Outcome], status: u16, code: &str) -> usize {
    outcomes
        .iter()
        .filter(|outcome| matches!(outcome, Outcome::Refused(s, c) if *s == status && c == code))
        .count()
}

/// The ledger's held balance of the slot's own pool, the seats of the on-hold bookings in the
/// database, and how many such bookings there are.
async fn held_in_database(raw: &RawConnection) -> (i64, i64, i64) {
    let rows = raw
        .fetch_integers(
            "SELECT
                 CAST((SELECT COALESCE(SUM(balance), 0) FROM accounts
                       WHERE kind = 'held' AND slot_id IS NOT NULL AND pax_type IS NULL)
                      AS BIGINT),
                 CAST((SELECT COALESCE(SUM(p.quantity), 0)
                       FROM bookings b JOIN booking_pax p ON p.booking_id = b.id
                       WHERE b.status = 'on_hold') AS BIGINT),
                 CAST((SELECT COUNT(*) FROM bookings WHERE status = 'on_hold') AS BIGINT)",
        )
        .await;
    rows[0]
}

/// The available balance of the slot's own pool.
async fn available_in_database(raw: &RawConnection) -> i64 {
    let rows = raw
        .fetch_integers(
            "SELECT balance, CAST(0 AS BIGINT), CAST(0 AS BIGINT) FROM accounts
             WHERE kind = 'available' AND slot_id IS NOT NULL AND pax_type IS NULL",
        )
        .await;
    assert_eq!(rows.len(), 1, "one slot");
    rows[0].0
}

/// The ids of the bookings on hold in the database.
async fn on_hold_ids(raw: &RawConnection) -> HashSet<String> {
    let query = "SELECT id FROM bookings WHERE status = 'on_hold'";
    let rows: Vec<(String,)> = match raw {
        RawConnection::Sqlite(pool) => sqlx::query_as(query).fetch_all(pool).await,
        RawConnection::Postgres(pool) => sqlx::query_as(query).fetch_all(pool).await,
    }
    .expect("booking ids");
    rows.into_iter().map(|(id,)| id).collect()
}

/// The 1,000-hold race of `tests/bookings.rs`, split between two instances on one database:
/// each seat is sold once whichever instance sells it, and both serve the sold-out slot at
/// once.
#[tokio::test]
async fn a_thousand_holds_split_across_two_instances_sell_exactly_ten_seats() {
    for backend in backends().await {
        let name = backend.name;
        let url = backend.url.clone();
        let configure = |settings: &mut invsync::config::Settings| {
            settings.sync.enabled = false;
            settings.server.sales_token = Some(invsync::domain::Secret::new(SALES_TOKEN));
            settings.server.queue_budget_ms = std::num::NonZeroU32::new(60_000).expect("non-zero");
        };
        let first = spawn_app_with(backend, configure).await;
        let second = spawn_app_with(TestStore::reuse(name, &url).await, configure).await;
        let day = booking_day();
        partner_reports(&first.backend, day, 10).await;
        let (one, two) = (Api::of(&first), Api::of(&second));
        let body = hold_body(day, 1, None);
        let holds = (0..1000).map(|i| {
            let (api, body) = (if i % 2 == 0 { &one } else { &two }, &body);
            async move { api.hold(&format!("split-{i}"), body).await }
        });
        let outcomes = futures::future::join_all(holds).await;
        let won = held_ids(&outcomes);
        let refused = count_refused(&outcomes, 409, "insufficient_capacity");
        assert_eq!(
            (won.len(), refused),
            (10, 990),
            "{name}: other answers {:?}",
            outcomes
                .iter()
                .filter(|o| !matches!(o, Outcome::Held { .. } | Outcome::Refused(409, _)))
                .take(3)
                .collect::<Vec<_>>()
        );
        assert_eq!(
            won.iter().collect::<HashSet<_>>().len(),
            10,
            "{name}: ten distinct bookings"
        );
        one.assert_verified(name).await;
        assert_eq!(one.remaining(day).await, 0, "{name}: the first instance");
        assert_eq!(two.remaining(day).await, 0, "{name}: the second instance");
        let raw = raw_connection(&first.backend).await;
        assert_eq!(held_in_database(&raw).await, (10, 10, 10), "{name}");
    }
}

async fn start_simulator() -> SimulatorHandle {
    Simulator::new(SimulatorConfig {
        rate_limit_per_minute: std::num::NonZeroU32::new(RATE).expect("non-zero"),
        ..SimulatorConfig::new(invsync::domain::Secret::new(SIM_KEY))
    })
    .spawn_local()
    .await
    .expect("simulator")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

/// An `invsync serve` process with its sync off, killed (SIGKILL) when dropped.
struct Daemon {
    child: Child,
    api: Api,
    log: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    /// Starts `invsync serve` on `database_url` and waits until `/readyz` answers 200; returns
    /// it and the moment it was first seen ready.
    async fn start(
        dir: &Path,
        database_url: &str,
        sim: &SimulatorHandle,
        run: usize,
    ) -> (Daemon, Instant) {
        let port = free_port();
        let log = dir.join(format!("serve-{run}.log"));
        let mut command = invsync_command(dir, database_url, sim, RATE, HORIZON_DAYS, &["serve"]);
        command
            .env("INVSYNC_SYNC__ENABLED", "false")
            .env("INVSYNC_SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .env("INVSYNC_SERVER__ADMIN_TOKEN", ADMIN_TOKEN)
            .env("INVSYNC_SERVER__SALES_TOKEN", SALES_TOKEN)
            .env("INVSYNC_SERVER__QUEUE_BUDGET_MS", "60000")
            .stderr(std::fs::File::create(&log).expect("log file"));
        let mut daemon = Daemon {
            child: command.spawn().expect("invsync serve starts"),
            api: Api {
                http: reqwest::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .expect("HTTP client"),
                base: format!("http://127.0.0.1:{port}"),
            },
            log,
        };
        let start = Instant::now();
        loop {
            let ready = daemon
                .api
                .http
                .get(format!("{}/readyz", daemon.api.base))
                .send()
                .await
                .is_ok_and(|response| response.status().is_success());
            if ready {
                return (daemon, Instant::now());
            }
            let exited = daemon.child.try_wait().expect("child status");
            assert!(
                exited.is_none() && start.elapsed() < Duration::from_secs(30),
                "invsync serve not ready (exit {exited:?}):\n{}",
                daemon.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `kill -9`, and waits until it is gone.
    fn kill_9(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reaped");
    }
}

/// Polls `done` every 20 ms until it holds; panics after `limit` with `what`.
async fn poll_until<T: std::fmt::Debug>(
    limit: Duration,
    what: &str,
    mut probe: impl AsyncFnMut() -> T,
    done: impl Fn(&T) -> bool,
) -> T {
    let start = Instant::now();
    loop {
        let value = probe().await;
        if done(&value) {
            return value;
        }
        assert!(
            start.elapsed() < limit,
            "{what} not within {limit:?}: last {value:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const STORM_SEATS: i64 = 50;
const STORM_HOLDS: usize = 200;
/// The storm is killed once this many holds have been answered 201: about half the seats.
const KILL_AFTER_WINS: usize = 25;

/// 200 customers race for 50 seats on the real `invsync serve`; it is killed with SIGKILL
/// half way through the sale. Restarted on the same database, every hold it answered 201 is
/// there on hold, the held seats are exactly the on-hold bookings' seats, every committed hold
/// is what its client's retry gets back, and the seats left (no more, no fewer) are sold to
/// the next customers before the slot reads sold out.
#[tokio::test]
async fn kill_9_in_a_booking_storm_loses_no_answered_hold_and_oversells_nothing() {
    for backend in backends().await {
        let name = backend.name;
        let sim = start_simulator().await;
        let dir = tempfile::tempdir().expect("temp dir");
        let day = booking_day();
        partner_reports(&backend, day, STORM_SEATS).await;
        let raw = raw_connection(&backend).await;
        let (daemon, _) = Daemon::start(dir.path(), &backend.url, &sim, 1).await;
        let api = daemon.api.clone();

        let body = hold_body(day, 1, None);
        let keys: Vec<String> = (0..STORM_HOLDS).map(|i| format!("storm-{i}")).collect();
        let wins = Arc::new(Wins {
            at: KILL_AFTER_WINS,
            kill: Some(libc::pid_t::try_from(daemon.child.id()).expect("a pid")),
            ..Wins::default()
        });
        let storming = tokio::spawn({
            let (api, keys, body, wins) = (api.clone(), keys.clone(), body.clone(), wins.clone());
            async move { storm(&api, &keys, &body, wins).await }
        });
        tokio::time::timeout(Duration::from_secs(30), wins.reached.notified())
            .await
            .unwrap_or_else(|_| panic!("{name}: fewer than {KILL_AFTER_WINS} holds in 30 s"));
        daemon.kill_9();
        let outcomes = storming.await.expect("the storm");
        let answered = held_ids(&outcomes);
        let unanswered = outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::NoAnswer(_)))
            .count();
        let refused = count_refused(&outcomes, 409, "insufficient_capacity");
        assert_eq!(
            answered.len() + refused + unanswered,
            STORM_HOLDS,
            "{name}: only 201, 409 insufficient_capacity or no answer: {outcomes:?}"
        );
        assert!(
            unanswered > 0 && answered.len() < STORM_SEATS as usize,
            "{name}: the kill was not mid-storm ({} won, {refused} refused)",
            answered.len()
        );

        // While it is down: the ledger holds exactly the seats of the bookings on hold, and
        // every hold answered 201 is among them.
        let (held, booked, bookings) = held_in_database(&raw).await;
        assert_eq!(
            held, booked,
            "{name}: held balance against on-hold bookings"
        );
        assert_eq!(bookings, booked, "{name}: a seat each");
        assert!(
            (answered.len() as i64..=STORM_SEATS).contains(&bookings),
            "{name}: {bookings} on hold, {} answered 201",
            answered.len()
        );
        assert_eq!(
            available_in_database(&raw).await + held,
            STORM_SEATS,
            "{name}"
        );
        let committed = on_hold_ids(&raw).await;
        for id in &answered {
            assert!(committed.contains(*id), "{name}: answered hold {id} lost");
        }

        // Restarted on the same database.
        let (daemon, _) = Daemon::start(dir.path(), &backend.url, &sim, 2).await;
        let api = daemon.api.clone();
        for id in &answered {
            let (status, booking) = api.booking(id).await;
            assert_eq!(
                (status, booking["status"].as_str()),
                (200, Some("on_hold")),
                "{name}: {id}: {booking}"
            );
        }
        api.assert_verified(name).await;
        assert_eq!(api.remaining(day).await, STORM_SEATS - held, "{name}");

        // The rest of the sale: exactly the seats the crash left are sold, no more, no fewer,
        // and the slot reads sold out.
        let fresh: Vec<String> = (0..STORM_HOLDS).map(|i| format!("after-{i}")).collect();
        let sale = storm(&api, &fresh, &body, Arc::default()).await;
        let left = STORM_SEATS - held;
        assert_eq!(
            (
                held_ids(&sale).len() as i64,
                count_refused(&sale, 409, "insufficient_capacity") as i64
            ),
            (left, STORM_HOLDS as i64 - left),
            "{name}: {sale:?}"
        );
        assert_eq!(
            held_in_database(&raw).await,
            (STORM_SEATS, STORM_SEATS, STORM_SEATS),
            "{name}"
        );
        assert_eq!(api.remaining(day).await, 0, "{name}: sold out");

        // Every client of the storm retries with its key: an answered hold comes back as it
        // was, every hold committed without an answer is found by its key too (no seat is held
        // by a booking no customer knows of), and no retry takes a seat of the sold-out slot.
        let retries = storm(&api, &keys, &body, Arc::default()).await;
        let mut found = HashSet::new();
        for ((key, first), retry) in keys.iter().zip(&outcomes).zip(&retries) {
            match (first, retry) {
                (
                    Outcome::Held { id, .. },
                    Outcome::Held {
                        id: again,
                        replayed,
                    },
                ) => {
                    assert_eq!((again, *replayed), (id, true), "{name}: {key}");
                    found.insert(again.clone());
                }
                (Outcome::Held { .. }, other) => {
                    panic!("{name}: {key}: an answered hold retried got {other:?}")
                }
                (_, Outcome::Held { id, replayed: true }) => {
                    found.insert(id.clone());
                }
                (_, Outcome::Refused(409, code))
                    if code == "insufficient_capacity" || code == "idempotency_key_in_flight" => {}
                (_, other) => panic!("{name}: {key}: retried after the crash, got {other:?}"),
            }
        }
        assert_eq!(
            found, committed,
            "{name}: the holds committed before the kill are those the retries replay"
        );
        assert_eq!(
            held_in_database(&raw).await,
            (STORM_SEATS, STORM_SEATS, STORM_SEATS),
            "{name}: the retries held nothing more"
        );
        api.assert_verified(name).await;
    }
}

/// A two-second hold whose daemon is killed at once and stays dead past the deadline: within
/// a second of the restarted daemon being ready, the seats are on sale again (in the ledger
/// and on `/slots`), the booking reads `expired` and confirming it is refused.
#[tokio::test]
async fn a_hold_that_lapses_while_the_daemon_is_dead_is_released_once_it_is_back() {
    for backend in backends().await {
        let name = backend.name;
        let sim = start_simulator().await;
        let dir = tempfile::tempdir().expect("temp dir");
        let day = booking_day();
        partner_reports(&backend, day, 10).await;
        let raw = raw_connection(&backend).await;
        let (daemon, _) = Daemon::start(dir.path(), &backend.url, &sim, 1).await;
        let api = daemon.api.clone();
        let (status, booking) = {
            let response = api
                .http
                .post(format!("{}/api/v1/bookings", api.base))
                .bearer_auth(SALES_TOKEN)
                .header("Idempotency-Key", "lapse-while-dead")
                .json(&hold_body(day, 4, Some(2)))
                .send()
                .await
                .expect("server answers");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.expect("JSON"))
        };
        daemon.kill_9();
        assert_eq!(status, 201, "{name}: {booking}");
        let id = booking["id"].as_str().expect("id").to_string();
        let expires_at: chrono::DateTime<chrono::Utc> =
            serde_json::from_value(booking["expiresAt"].clone()).expect("expiresAt");
        assert_eq!(
            available_in_database(&raw).await,
            6,
            "{name}: the hold outlived the kill"
        );

        // Dead past the deadline, with a margin for the clocks' rounding.
        let past = expires_at + chrono::Duration::milliseconds(300);
        if let Ok(wait) = (past - chrono::Utc::now()).to_std() {
            tokio::time::sleep(wait).await;
        }
        assert_eq!(
            available_in_database(&raw).await,
            6,
            "{name}: nothing released while the daemon was dead"
        );

        let (daemon, ready) = Daemon::start(dir.path(), &backend.url, &sim, 2).await;
        let api = daemon.api.clone();
        poll_until(
            Duration::from_secs(1).saturating_sub(ready.elapsed()),
            "the seats back on sale in the ledger",
            async || available_in_database(&raw).await,
            |&available| available == 10,
        )
        .await;
        let served = api.remaining(day).await;
        let (status, read) = api.booking(&id).await;
        let within = ready.elapsed();
        assert_eq!(served, 10, "{name}: /slots");
        assert_eq!(
            (status, read["status"].as_str()),
            (200, Some("expired")),
            "{name}: {read}"
        );
        assert!(
            within < Duration::from_secs(1),
            "{name}: released {within:?} after ready"
        );
        let (status, late) = api.confirm(&id).await;
        assert_eq!(
            (status, late["code"].as_str()),
            (409, Some("booking_expired")),
            "{name}: {late}"
        );
        assert_eq!(held_in_database(&raw).await, (0, 0, 0), "{name}");
        api.assert_verified(name).await;
        drop(daemon);
    }
}
