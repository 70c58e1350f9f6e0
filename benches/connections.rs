//! Many clients at once: `invsync serve` (the release binary, a separate process) under
//! 64, 1,000, 5,000 and 10,000 concurrent connections from wrk, on `/healthz`,
//! `/api/v1/experience/14/slots?date=<today>` and `/api/v1/experience/14/dates`, on SQLite and
//! on PostgreSQL, with the daemon's resident memory sampled throughout.
//!
//! `cargo bench --bench connections` (PostgreSQL from `TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`; a fresh database per run, dropped after).
//! `cargo bench --bench connections -- sqlite` (or `postgres`) runs one backend. Knobs:
//! `CONNECTIONS_SECONDS` (20: how long wrk runs per row), `CONNECTIONS_SETTLE_SECONDS` (30: how
//! long after a row the daemon is left alone before its memory is read again),
//! `CONNECTIONS_COUNTS` (`64,1000,5000,10000`), `CONNECTIONS_BINARY` (the `invsync` binary to
//! run; default the one this bench was built with, so another build can be measured by the
//! same bench) and `RUST_LOG` (passed to the daemon; unset, it logs at its default level,
//! `info`: one line per request, to a file).
//!
//! Per backend, one daemon leads the sync against this process's unthrottled simulator
//! (products 14 and 15, the default 60-day horizon); once its start-up backfill is applied it
//! is sampled idle for a few seconds, then every row runs in turn against it:
//! `wrk -t2 -cN -dSECONDSs --timeout 10s --latency URL`, then `CONNECTIONS_SETTLE_SECONDS` of
//! quiet. `VmRSS` is read from `/proc/PID/status` every 100 ms throughout: the row's peak is the
//! largest sample while wrk ran, its "after" the last sample of the quiet spell.
//!
//! Per row: wrk's requests per second, its latency percentiles (of every answer, shed ones
//! included) and maximum, the requests it gave up on after 10 s (its `timeout` socket errors),
//! the answers that were not 2xx (the daemon's `invsync_http_shed_total` rose by as many
//! `503 overloaded`), its connect/read/write errors, and how often the kernel dropped a
//! connection attempt at a full listen queue during the row (`ListenDrops` in
//! `/proc/net/netstat`: such a client waits at least a second for TCP to retry, before wrk
//! starts its clock, so wrk's latencies would not show it).
//!
//! At 10,000 connections each row is judged against the targets (no request waits over 2 s,
//! p99 at most 1 s, peak RSS at most 128 MiB, RSS after the quiet spell at most twice idle);
//! when one is missed the bench says which (backend, route, target and figure) and exits
//! non-zero.

mod support;

use std::net::TcpListener;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate};
use invsync::config::Settings;
use invsync::domain::Secret;
use invsync::simulator::{Simulator, SimulatorConfig, SimulatorHandle};
use invsync::storage;
use support::PostgresServer;

const WRK_THREADS: u32 = 2;
/// wrk gives up on a request after this and counts it as a `timeout` socket error.
const WRK_TIMEOUT_SECONDS: u32 = 10;
const SIM_KEY: &str = "connections-bench";
/// High enough that neither the simulator nor the daemon's pacer ever waits.
const UNTHROTTLED_PER_MINUTE: u32 = 60_000_000;
const EXPERIENCES: &str = "14,15";
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
const IDLE_FOR: Duration = Duration::from_secs(5);
const START_LIMIT: Duration = Duration::from_secs(60);
const BACKFILL_LIMIT: Duration = Duration::from_secs(5 * 60);
/// File descriptors the daemon needs beside its client connections (database, log, listener).
const FD_HEADROOM: u64 = 1024;

/// The targets at the largest row (10,000 connections).
const TARGET_CONNECTIONS: u32 = 10_000;
const TARGET_MAX_WAIT: Duration = Duration::from_secs(2);
const TARGET_P99: Duration = Duration::from_secs(1);
const TARGET_PEAK_MIB: f64 = 128.0;
const TARGET_AFTER_OVER_IDLE: f64 = 2.0;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|value| value.trim().parse().expect("a whole number"))
        .unwrap_or(default)
}

struct Knobs {
    seconds: u64,
    settle: Duration,
    counts: Vec<u32>,
    binary: PathBuf,
}

impl Knobs {
    fn from_env() -> Self {
        let counts = std::env::var("CONNECTIONS_COUNTS")
            .unwrap_or_else(|_| "64,1000,5000,10000".into())
            .split(',')
            .map(|count| count.trim().parse().expect("a connection count"))
            .collect();
        Self {
            seconds: env_or("CONNECTIONS_SECONDS", 20).max(1),
            settle: Duration::from_secs(env_or("CONNECTIONS_SETTLE_SECONDS", 30)),
            counts,
            binary: std::env::var_os("CONNECTIONS_BINARY").map_or_else(
                || PathBuf::from(env!("CARGO_BIN_EXE_invsync")),
                PathBuf::from,
            ),
        }
    }
}

/// The soft limit on open files, raised to the hard limit if that helps; the daemon and wrk
/// inherit it. `None` when it cannot be read.
fn open_files_limit(wanted: u64) -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    if limit.rlim_cur < wanted && limit.rlim_max > limit.rlim_cur {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max.min(wanted.max(limit.rlim_cur)),
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads the struct we pass; the soft limit stays within the hard one.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            println!(
                "open files: soft limit raised from {} to {}",
                limit.rlim_cur, raised.rlim_cur
            );
            limit = raised;
        }
    }
    Some(limit.rlim_cur)
}

/// `VmRSS` of `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc status")
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// `TcpExt: ListenDrops` from `/proc/net/netstat`: connection attempts the kernel dropped at
/// a full listen queue, machine-wide (the bench is the only thing connecting on loopback).
fn listen_drops() -> u64 {
    let text = std::fs::read_to_string("/proc/net/netstat").unwrap_or_default();
    let mut lines = text.lines().filter(|line| line.starts_with("TcpExt:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "ListenDrops")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0)
}

/// Samples `pid` every `SAMPLE_EVERY` until `done` resolves; returns its output and the
/// samples (KiB).
async fn sampled<T>(pid: u32, done: impl std::future::Future<Output = T>) -> (T, Vec<u64>) {
    let mut samples = vec![rss_kib(pid)];
    let mut ticker = tokio::time::interval(SAMPLE_EVERY);
    tokio::pin!(done);
    loop {
        tokio::select! {
            output = &mut done => {
                samples.push(rss_kib(pid));
                return (output, samples);
            }
            _ = ticker.tick() => samples.push(rss_kib(pid)),
        }
    }
}

/// What wrk measured on one row.
#[derive(Default)]
struct Wrk {
    requests: u64,
    requests_per_second: f64,
    p50: Duration,
    p90: Duration,
    p99: Duration,
    max: Duration,
    non_2xx: u64,
    connect_errors: u64,
    read_errors: u64,
    write_errors: u64,
    timeouts: u64,
}

fn run_wrk(connections: u32, seconds: u64, url: &str) -> Result<Wrk, String> {
    let output = Command::new("wrk")
        .args([
            format!("-t{WRK_THREADS}"),
            format!("-c{connections}"),
            format!("-d{seconds}s"),
            format!("--timeout={WRK_TIMEOUT_SECONDS}s"),
            "--latency".into(),
            url.into(),
        ])
        .output()
        .map_err(|error| format!("wrk: {error}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "wrk exited with {}:\n{text}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    parse_wrk(&text).ok_or_else(|| format!("cannot read wrk's output:\n{text}"))
}

fn parse_wrk(text: &str) -> Option<Wrk> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let field = |prefix: &str| {
        lines
            .iter()
            .find_map(|line| line.strip_prefix(prefix))
            .map(str::trim)
    };
    // `Latency   1.20ms    3.40ms  45.00ms   90.00%`: mean, stdev, max, share within a stdev.
    let max = lines
        .iter()
        .filter_map(|line| line.strip_prefix("Latency "))
        .find_map(|rest| wrk_duration(rest.split_whitespace().nth(2)?))?;
    // `1234 requests in 20.00s, 1.20MB read`
    let requests = lines
        .iter()
        .find(|line| line.contains(" requests in "))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    // `Socket errors: connect 0, read 0, write 0, timeout 12`
    let socket_error = |name: &str| {
        field("Socket errors:").map_or(Some(0), |errors| {
            errors
                .split(',')
                .map(str::trim)
                .find_map(|error| error.strip_prefix(name))
                .and_then(|count| count.trim().parse().ok())
        })
    };
    Some(Wrk {
        requests,
        requests_per_second: field("Requests/sec:")?.parse().ok()?,
        p50: wrk_duration(field("50%")?)?,
        p90: wrk_duration(field("90%")?)?,
        p99: wrk_duration(field("99%")?)?,
        max,
        non_2xx: field("Non-2xx or 3xx responses:").map_or(Some(0), |n| n.parse().ok())?,
        connect_errors: socket_error("connect")?,
        read_errors: socket_error("read")?,
        write_errors: socket_error("write")?,
        timeouts: socket_error("timeout")?,
    })
}

/// wrk prints durations as `812.00us`, `1.25ms`, `1.02s` or `1.05m`.
fn wrk_duration(text: &str) -> Option<Duration> {
    let (number, seconds_per_unit) = if let Some(us) = text.strip_suffix("us") {
        (us, 1e-6)
    } else if let Some(ms) = text.strip_suffix("ms") {
        (ms, 1e-3)
    } else if let Some(m) = text.strip_suffix('m') {
        (m, 60.0)
    } else {
        (text.strip_suffix('s')?, 1.0)
    };
    Some(Duration::from_secs_f64(
        number.parse::<f64>().ok()? * seconds_per_unit,
    ))
}

/// `invsync serve` from `dir` (so no `config.toml` is read), configured through the
/// environment only, logging to a file there.
struct Daemon {
    child: Child,
    base: String,
}

impl Daemon {
    async fn start(
        dir: &Path,
        name: &str,
        url: &str,
        sim: &SimulatorHandle,
        binary: &Path,
    ) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("log file");
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("INVSYNC_SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .env("INVSYNC_DATABASE__URL", url)
            .env("INVSYNC_PARTNER__BASE_URL", sim.base_url())
            .env("INVSYNC_PARTNER__API_KEY", SIM_KEY)
            .env(
                "INVSYNC_PARTNER__RATE_LIMIT_PER_MINUTE",
                UNTHROTTLED_PER_MINUTE.to_string(),
            )
            .env("INVSYNC_PARTNER__EXPERIENCES", EXPERIENCES)
            .stdout(Stdio::null())
            .stderr(log);
        if let Ok(filter) = std::env::var("RUST_LOG") {
            command.env("RUST_LOG", filter);
        }
        let child = command.spawn().expect("invsync serve starts");
        let mut daemon = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        daemon.wait_ready().await;
        daemon
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn check_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("child status") {
            panic!("invsync serve exited: {status}");
        }
    }

    async fn wait_ready(&mut self) {
        let started = Instant::now();
        loop {
            self.check_running();
            let ready = reqwest::get(format!("{}/readyz", self.base))
                .await
                .is_ok_and(|response| response.status().is_success());
            if ready {
                return;
            }
            assert!(started.elapsed() < START_LIMIT, "invsync serve not ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until every product-date of the horizon has been fetched and applied.
    async fn wait_backfilled(&mut self, url: &str, today: NaiveDate, horizon_days: u32) {
        let store = storage::connect(url).await.expect("store");
        let last = today + Days::new(u64::from(horizon_days) - 1);
        let expected = EXPERIENCES.split(',').count() * horizon_days as usize;
        let started = Instant::now();
        loop {
            self.check_running();
            let fetched = store
                .last_fetches(today, last)
                .await
                .expect("last fetches")
                .len();
            if fetched >= expected {
                return;
            }
            assert!(
                started.elapsed() < BACKFILL_LIMIT,
                "backfill: {fetched} of {expected} product-days"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The sum of `invsync_http_shed_total` over its classes.
    async fn shed_total(&self) -> u64 {
        let text = reqwest::get(format!("{}/metrics", self.base))
            .await
            .expect("metrics answer")
            .text()
            .await
            .expect("metrics text");
        text.lines()
            .filter(|line| line.starts_with("invsync_http_shed_total"))
            .filter_map(|line| line.split_whitespace().last()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }

    /// SIGTERM, then waits for a clean exit.
    fn stop(mut self) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid");
        // SAFETY: signalling our own child by its pid, which it keeps until we reap it.
        let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(sent, 0, "SIGTERM: {}", std::io::Error::last_os_error());
        let status =
            tokio::task::block_in_place(|| self.child.wait()).expect("invsync serve exits");
        assert!(status.success(), "invsync serve exited with {status}");
    }
}

/// One route at one connection count.
struct Row {
    route: &'static str,
    connections: u32,
    wrk: Result<Wrk, String>,
    shed: u64,
    listen_drops: u64,
    before_kib: u64,
    peak_kib: u64,
    after_kib: u64,
}

struct Backend {
    name: &'static str,
    idle_kib: u64,
    rows: Vec<Row>,
}

fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values[values.len() / 2]
}

async fn run(dir: &Path, name: &'static str, url: &str, knobs: &Knobs) -> Backend {
    let sim = Simulator::new(SimulatorConfig {
        rate_limit_per_minute: NonZeroU32::new(UNTHROTTLED_PER_MINUTE).expect("non-zero"),
        ..SimulatorConfig::new(Secret::new(SIM_KEY))
    })
    .spawn_local()
    .await
    .expect("simulator starts");
    let settings = Settings::default();
    let today = settings.partner.today();
    let mut daemon = Daemon::start(dir, name, url, &sim, &knobs.binary).await;
    daemon
        .wait_backfilled(url, today, settings.sync.horizon_days.get())
        .await;
    let ((), idle) = sampled(daemon.pid(), tokio::time::sleep(IDLE_FOR)).await;
    let idle_kib = median(idle);

    let base = daemon.base.clone();
    let routes = [
        ("/healthz", format!("{base}/healthz")),
        (
            "/slots?date=today",
            format!("{base}/api/v1/experience/14/slots?date={today}"),
        ),
        ("/dates", format!("{base}/api/v1/experience/14/dates")),
    ];
    for (route, url) in &routes {
        let body = reqwest::get(url)
            .await
            .expect("route answers")
            .bytes()
            .await
            .expect("body");
        println!("{name:<9} {route:<18} answers {} bytes", body.len());
    }

    let mut rows = Vec::new();
    for &connections in &knobs.counts {
        for (route, url) in &routes {
            daemon.check_running();
            let before_kib = rss_kib(daemon.pid());
            let shed_before = daemon.shed_total().await;
            let drops_before = listen_drops();
            let (wrk, during) = sampled(daemon.pid(), {
                let (url, seconds) = (url.clone(), knobs.seconds);
                async move {
                    tokio::task::spawn_blocking(move || run_wrk(connections, seconds, &url))
                        .await
                        .expect("wrk task")
                }
            })
            .await;
            let listen_drops = listen_drops().saturating_sub(drops_before);
            let ((), quiet) = sampled(daemon.pid(), tokio::time::sleep(knobs.settle)).await;
            daemon.check_running();
            let row = Row {
                route,
                connections,
                wrk,
                shed: daemon.shed_total().await.saturating_sub(shed_before),
                listen_drops,
                before_kib,
                peak_kib: during.iter().copied().max().expect("a sample"),
                after_kib: *quiet.last().expect("a sample"),
            };
            print_row(name, idle_kib, &row);
            rows.push(row);
        }
    }
    daemon.stop();
    Backend {
        name,
        idle_kib,
        rows,
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn print_header() {
    println!(
        "{:<9} {:<18} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6} {:>7} {:>10} {:>6} {:>7} {:>7} {:>7} {:>7}",
        "backend",
        "route",
        "conns",
        "requests",
        "req/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        ">10s",
        "shed",
        "errs c/r/w",
        "drops",
        "idle",
        "before",
        "peak",
        "after"
    );
}

fn print_row(backend: &str, idle_kib: u64, row: &Row) {
    match &row.wrk {
        Ok(wrk) => println!(
            "{backend:<9} {:<18} {:>6} {:>8} {:>8.0} {:>8.2} {:>8.2} {:>8.2} {:>8.0} {:>6} {:>7} {:>10} {:>6} {:>7.1} {:>7.1} {:>7.1} {:>7.1}",
            row.route,
            row.connections,
            wrk.requests,
            wrk.requests_per_second,
            ms(wrk.p50),
            ms(wrk.p90),
            ms(wrk.p99),
            ms(wrk.max),
            wrk.timeouts,
            wrk.non_2xx,
            format!(
                "{}/{}/{}",
                wrk.connect_errors, wrk.read_errors, wrk.write_errors
            ),
            row.listen_drops,
            mib(idle_kib),
            mib(row.before_kib),
            mib(row.peak_kib),
            mib(row.after_kib),
        ),
        Err(error) => println!(
            "{backend:<9} {:<18} {:>6} failed: {error}",
            row.route, row.connections
        ),
    }
    if let Ok(wrk) = &row.wrk
        && wrk.non_2xx != row.shed
    {
        println!(
            "{backend:<9} {:<18} {:>6} note: {} answers not 2xx, {} counted as shed by the daemon",
            row.route, row.connections, wrk.non_2xx, row.shed
        );
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

/// The targets at `TARGET_CONNECTIONS`, one line per row; returns the targets missed, each
/// with the backend, the route and the figure.
fn print_targets(backends: &[Backend]) -> Vec<String> {
    let mut missed = Vec::new();
    for backend in backends {
        for row in backend
            .rows
            .iter()
            .filter(|row| row.connections == TARGET_CONNECTIONS)
        {
            let Ok(wrk) = &row.wrk else {
                println!(
                    "{:<9} {:<18} wrk failed: every target MISSED",
                    backend.name, row.route
                );
                missed.push(format!(
                    "{} {}: wrk failed, so every target",
                    backend.name, row.route
                ));
                continue;
            };
            let waited = wrk.max <= TARGET_MAX_WAIT && wrk.timeouts == 0 && row.listen_drops == 0;
            let p99 = wrk.p99 <= TARGET_P99;
            let peak = mib(row.peak_kib) <= TARGET_PEAK_MIB;
            let after = row.after_kib as f64 <= TARGET_AFTER_OVER_IDLE * backend.idle_kib as f64;
            println!(
                "{:<9} {:<18} wait <= 2 s: {:<6} (max {:.0} ms, {} over 10 s, {} listen drops)   \
                 p99 <= 1 s: {:<6} ({:.0} ms)   peak <= 128 MiB: {:<6} ({:.1} MiB)   \
                 after <= 2x idle: {:<6} ({:.1} MiB, {:.2}x of {:.1} MiB)",
                backend.name,
                row.route,
                verdict(waited),
                ms(wrk.max),
                wrk.timeouts,
                row.listen_drops,
                verdict(p99),
                ms(wrk.p99),
                verdict(peak),
                mib(row.peak_kib),
                verdict(after),
                mib(row.after_kib),
                row.after_kib as f64 / backend.idle_kib as f64,
                mib(backend.idle_kib),
            );
            let row_missed = [
                (!waited).then(|| {
                    format!(
                        "no request waits over 2 s (max {:.0} ms, {} over 10 s, {} listen drops)",
                        ms(wrk.max),
                        wrk.timeouts,
                        row.listen_drops
                    )
                }),
                (!p99).then(|| format!("p99 <= 1 s ({:.0} ms)", ms(wrk.p99))),
                (!peak).then(|| format!("peak RSS <= 128 MiB ({:.1} MiB)", mib(row.peak_kib))),
                (!after).then(|| {
                    format!(
                        "RSS after <= 2x idle ({:.1} MiB, {:.2}x)",
                        mib(row.after_kib),
                        row.after_kib as f64 / backend.idle_kib as f64
                    )
                }),
            ];
            missed.extend(
                row_missed
                    .into_iter()
                    .flatten()
                    .map(|target| format!("{} {}: {target}", backend.name, row.route)),
            );
        }
    }
    missed
}

#[tokio::main]
async fn main() -> ExitCode {
    let knobs = Knobs::from_env();
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("connections: wrk not found; install it (Debian: apt-get install -y wrk)");
        return ExitCode::FAILURE;
    }
    let most = knobs.counts.iter().copied().max().unwrap_or(0);
    let needed = u64::from(most) + FD_HEADROOM;
    let Some(limit) = open_files_limit(needed) else {
        eprintln!("connections: cannot read the open files limit");
        return ExitCode::FAILURE;
    };
    if limit < needed {
        eprintln!(
            "connections: the open files limit is {limit}, {most} connections need {needed} \
             (the daemon and wrk each hold one descriptor per connection); raise it \
             (ulimit -n {needed}) and run again"
        );
        return ExitCode::FAILURE;
    }
    println!(
        "open files: limit {limit} for the daemon and for wrk (each), {needed} needed for {most} connections: enough"
    );
    println!(
        "connections: wrk -t{WRK_THREADS} -cN -d{}s --timeout {WRK_TIMEOUT_SECONDS}s --latency per row, then {} s quiet; \
         {} (a separate process) leading the sync of products {EXPERIENCES} x 60 days; RSS in MiB, sampled every 100 ms",
        knobs.seconds,
        knobs.settle.as_secs(),
        knobs.binary.display(),
    );
    println!(
        "columns: >10s = requests wrk gave up on after 10 s; shed = answers not 2xx (503 overloaded); \
         errs = wrk's connect/read/write errors; drops = connects dropped at a full listen queue; \
         idle = median before the first row; before/peak/after = at the row's start, its largest sample, {} s after it",
        knobs.settle.as_secs()
    );
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    let wanted = |backend: &str| only.is_empty() || only.iter().any(|arg| arg == backend);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut backends = Vec::new();

    print_header();
    if wanted("sqlite") {
        let url = format!("sqlite://{}", dir.path().join("connections.db").display());
        backends.push(run(dir.path(), "sqlite", &url, &knobs).await);
    }
    if wanted("postgres")
        && let Some(mut server) = PostgresServer::connect().await
    {
        let url = server.create_database("connections").await;
        backends.push(run(dir.path(), "postgres", &url, &knobs).await);
        server.drop_database("connections").await;
    }

    if knobs.counts.contains(&TARGET_CONNECTIONS) {
        println!();
        println!(
            "targets at {TARGET_CONNECTIONS} connections: no request waits over 2 s (answered or shed), \
             p99 <= 1 s, peak RSS <= 128 MiB, RSS {} s after <= 2x idle",
            knobs.settle.as_secs()
        );
        let missed = print_targets(&backends);
        if !missed.is_empty() {
            eprintln!(
                "connections: {} target(s) MISSED at {TARGET_CONNECTIONS} connections:",
                missed.len()
            );
            for target in &missed {
                eprintln!("  {target}");
            }
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
