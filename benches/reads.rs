//! Read throughput: `/slots?date=` and `/dates` beside `/healthz`, measured in the same run
//! with wrk (Debian's `wrk` package) at 64 connections, on SQLite and on PostgreSQL.
//!
//! `cargo bench --bench reads` (PostgreSQL from `TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`; a fresh database is created and dropped).
//! Each backend gets the real daemon in this process, leading the sync, after its start-up
//! backfill of products 14 and 15 × 60 days from the built-in simulator. Request logging is
//! off (no log subscriber), as with `RUST_LOG=warn`; metrics are recorded as in production.
//! The same two routes are then measured on a second, API-only instance over the same
//! database: it never holds the sync lease, so it reads the database on every request, as
//! every follower does.

mod support;

use std::num::NonZeroU32;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use invsync::app::Application;
use invsync::config::{BaseUrl, Settings};
use invsync::domain::Secret;
use invsync::simulator::{Simulator, SimulatorConfig, SimulatorHandle};
use support::PostgresServer;
use tokio::sync::oneshot;

const CONNECTIONS: u32 = 64;
const WRK_THREADS: u32 = 2;
const SECONDS_PER_ROUTE: u32 = 10;
const SIM_KEY: &str = "bench-sim-key";
const BACKFILL_LIMIT: Duration = Duration::from_secs(120);
const UNTHROTTLED: NonZeroU32 = NonZeroU32::new(60_000).expect("non-zero");

/// What wrk measured on one route.
struct Measured {
    route: &'static str,
    requests_per_second: f64,
    p50: Duration,
    p99: Duration,
}

/// Runs wrk against `url`; `None` (with the reason printed) when wrk fails or any answer was
/// not a 2xx, since throughput of errors says nothing.
fn wrk(route: &'static str, url: &str) -> Option<Measured> {
    let output = Command::new("wrk")
        .args([
            format!("-t{WRK_THREADS}"),
            format!("-c{CONNECTIONS}"),
            format!("-d{SECONDS_PER_ROUTE}s"),
            "--latency".into(),
            url.into(),
        ])
        .output()
        .expect("wrk runs (checked at start)");
    let text = String::from_utf8_lossy(&output.stdout);
    let failed =
        !output.status.success() || text.contains("Non-2xx") || text.contains("Socket errors");
    let measured = (!failed).then(|| parse_wrk(route, &text)).flatten();
    if measured.is_none() {
        eprintln!(
            "wrk on {url} failed:\n{text}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    measured
}

fn parse_wrk(route: &'static str, text: &str) -> Option<Measured> {
    let field = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|line| line.strip_prefix(prefix))
            .map(str::trim)
    };
    Some(Measured {
        route,
        requests_per_second: field("Requests/sec:")?.parse().ok()?,
        p50: wrk_duration(field("50%")?)?,
        p99: wrk_duration(field("99%")?)?,
    })
}

/// wrk prints latencies as `812.00us`, `1.25ms` or `1.02s`.
fn wrk_duration(text: &str) -> Option<Duration> {
    let (number, seconds_per_unit) = if let Some(us) = text.strip_suffix("us") {
        (us, 1e-6)
    } else if let Some(ms) = text.strip_suffix("ms") {
        (ms, 1e-3)
    } else {
        (text.strip_suffix('s')?, 1.0)
    };
    Some(Duration::from_secs_f64(
        number.parse::<f64>().ok()? * seconds_per_unit,
    ))
}

/// A running daemon on port 0: its base URL; dropping it stops the daemon.
struct Daemon {
    base: String,
    _stop: oneshot::Sender<()>,
}

fn settings(database_url: &str, sim: &SimulatorHandle) -> Settings {
    let mut settings = Settings::default();
    settings.database.url = Secret::new(database_url.to_string());
    settings.server.listen = "127.0.0.1:0".parse().expect("address");
    settings.partner.base_url = BaseUrl(sim.base_url().parse().expect("simulator URL"));
    settings.partner.api_key = Some(Secret::new(SIM_KEY));
    settings.partner.rate_limit_per_minute = UNTHROTTLED;
    settings
}

/// Starts the built `app`; dropping the returned daemon stops it.
fn run(app: Application) -> Daemon {
    let base = format!("http://{}", app.local_addr());
    let (stop, stopped) = oneshot::channel();
    tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    Daemon { base, _stop: stop }
}

/// The daemon over `database_url`, leading the sync against a local simulator with the rate
/// limit lifted, once its backfill is done.
async fn synced_daemon(database_url: &str, sim: &SimulatorHandle) -> Daemon {
    let settings = settings(database_url, sim);
    let products = settings.partner.experiences.len();
    let app = Application::build(settings)
        .await
        .expect("application builds");
    let (store, engine) = (app.store(), app.engine());
    let daemon = run(app);
    let (first, last) = engine.horizon();
    let wanted = products * first.iter_days().take_while(|day| *day <= last).count();
    let started = Instant::now();
    while store
        .last_fetches(first, last)
        .await
        .expect("last fetches")
        .len()
        < wanted
    {
        assert!(started.elapsed() < BACKFILL_LIMIT, "backfill not done");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    daemon
}

/// A second instance on the same database with the sync off: it never holds the lease, so,
/// like a follower, it answers every read from the database, never from the leader's cache.
async fn api_only_daemon(database_url: &str, sim: &SimulatorHandle) -> Daemon {
    let mut settings = settings(database_url, sim);
    settings.sync.enabled = false;
    run(Application::build(settings)
        .await
        .expect("application builds"))
}

/// The first day of the horizon on which product 14 runs.
async fn running_day(base: &str) -> String {
    let dates: serde_json::Value = reqwest::get(format!("{base}/api/v1/experience/14/dates"))
        .await
        .expect("dates answer")
        .json()
        .await
        .expect("dates JSON");
    dates["dates"][0]["date"]
        .as_str()
        .expect("product 14 runs on some day of the horizon")
        .to_string()
}

async fn measure(backend: &str, database_url: &str) -> bool {
    let sim = Simulator::new(SimulatorConfig {
        rate_limit_per_minute: UNTHROTTLED,
        ..SimulatorConfig::new(Secret::new(SIM_KEY))
    })
    .spawn_local()
    .await
    .expect("simulator starts");
    let leader = synced_daemon(database_url, &sim).await;
    let api_only = api_only_daemon(database_url, &sim).await;
    let (base, uncached) = (&leader.base, &api_only.base);
    let day = running_day(base).await;
    let routes = [
        ("/healthz", format!("{base}/healthz")),
        (
            "/slots?date=",
            format!("{base}/api/v1/experience/14/slots?date={day}"),
        ),
        ("/dates", format!("{base}/api/v1/experience/14/dates")),
        (
            "/slots?date= (API-only)",
            format!("{uncached}/api/v1/experience/14/slots?date={day}"),
        ),
        (
            "/dates (API-only)",
            format!("{uncached}/api/v1/experience/14/dates"),
        ),
    ];
    let mut results = Vec::new();
    for (route, url) in routes {
        // wrk blocks; the server keeps the runtime's worker threads.
        let measured = tokio::task::spawn_blocking(move || wrk(route, &url))
            .await
            .expect("wrk task");
        match measured {
            Some(measured) => results.push(measured),
            None => return false,
        }
    }
    let healthz = results[0].requests_per_second;
    for result in &results {
        println!(
            "{backend:<9} {:<24} {:>9.0} req/s {:>7.0} % of /healthz   p50 {:>6.2} ms   p99 {:>6.2} ms",
            result.route,
            result.requests_per_second,
            100.0 * result.requests_per_second / healthz,
            result.p50.as_secs_f64() * 1e3,
            result.p99.as_secs_f64() * 1e3,
        );
    }
    true
}

#[tokio::main]
async fn main() -> ExitCode {
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("reads: wrk not found; install it (Debian: apt-get install -y wrk)");
        return ExitCode::FAILURE;
    }
    println!(
        "reads: wrk -t{WRK_THREADS} -c{CONNECTIONS} -d{SECONDS_PER_ROUTE}s per route, products 14 and 15 × 60 days"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
    let mut ok = measure("sqlite", &sqlite).await;

    if let Some(mut server) = PostgresServer::connect().await {
        let url = server.create_database("reads").await;
        ok &= measure("postgres", &url).await;
        server.drop_database("reads").await;
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
