//! Memory: the resident set of a running `invsync serve` process at 450 synthetic products ×
//! 60 days, synced and answering reads from a warm read cache, beside the same binary serving
//! an empty database with the sync off (the comparison point, measured in the same run), on
//! SQLite and on PostgreSQL.
//!
//! `cargo bench --bench memory` (PostgreSQL from `TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`; a fresh database per run, dropped after).
//! `cargo bench --bench memory -- sqlite` (or `postgres`) runs one backend. Knobs:
//! `MEMORY_PRODUCTS` (450), `MEMORY_HORIZON_DAYS` (60), `MEMORY_HOT_DAYS` (4: the days from
//! today on that the hot reads ask for) and `MEMORY_READ_SECONDS` (20: how long the hot
//! reads run while the process is sampled).
//!
//! Each backend runs, in order, on a fresh database and the same binary
//! (`CARGO_BIN_EXE_invsync`), configured through the environment only:
//! 1. **idle**: `invsync serve` with `sync.enabled = false` on an empty database, answering
//!    `/healthz` while sampled for a few seconds;
//! 2. **synced**: `invsync serve` leading the sync against this process's unthrottled
//!    simulator, sampled once its start-up backfill has applied every product-date;
//! 3. **full read pass**: the same process answers `/dates` for every product and `/slots`
//!    for every product-date of the horizon (more days than the read cache keeps, so it fills
//!    and starts over several times);
//! 4. **hot reads**: `/dates` for every product and `/slots` for every product on the first
//!    `MEMORY_HOT_DAYS` days, looped for `MEMORY_READ_SECONDS`: the first loop fills the cache
//!    from the database, the later ones are served from it (their rate against the first
//!    loop's shows it). The process is sampled every 100 ms meanwhile.
//!
//! Each sample reads `VmRSS` (resident now) and `VmHWM` (the peak so far) from
//! `/proc/PID/status`; a phase reports its median `VmRSS` and the `VmHWM` at its end.
//! Reads come from `READERS` concurrent clients in this process; the daemon logs at the
//! default level (`info`: one line per request and per partner call) to a file.

mod support;

use std::net::TcpListener;
use std::num::NonZeroU32;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate};
use futures::StreamExt;
use invsync::config::Settings;
use invsync::domain::Secret;
use invsync::simulator::{
    SYNTHETIC_FIRST_ID, Simulator, SimulatorConfig, SimulatorHandle, synthetic_products,
};
use invsync::storage;
use support::PostgresServer;

/// High enough that neither the simulator nor the daemon's pacer ever waits.
const UNTHROTTLED_PER_MINUTE: u32 = 60_000_000;
const SIM_KEY: &str = "memory-bench";
/// Concurrent HTTP clients reading from the daemon.
const READERS: usize = 8;
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
const IDLE_FOR: Duration = Duration::from_secs(5);
const START_LIMIT: Duration = Duration::from_secs(60);
const BACKFILL_LIMIT: Duration = Duration::from_secs(30 * 60);

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|value| value.parse().expect("a whole number"))
        .unwrap_or(default)
}

struct Knobs {
    products: usize,
    horizon_days: u32,
    hot_days: u32,
    read_for: Duration,
}

impl Knobs {
    fn from_env() -> Self {
        let horizon_days = u32::try_from(env_or("MEMORY_HORIZON_DAYS", 60)).expect("days");
        Self {
            products: usize::try_from(env_or("MEMORY_PRODUCTS", 450)).expect("products"),
            horizon_days,
            hot_days: u32::try_from(env_or("MEMORY_HOT_DAYS", 4))
                .expect("days")
                .min(horizon_days),
            read_for: Duration::from_secs(env_or("MEMORY_READ_SECONDS", 20)),
        }
    }

    fn experiences(&self) -> Vec<i64> {
        (0..self.products as i64)
            .map(|index| SYNTHETIC_FIRST_ID + index)
            .collect()
    }
}

/// One reading of `/proc/PID/status`, in KiB.
#[derive(Clone, Copy)]
struct Sample {
    rss_kib: u64,
    hwm_kib: u64,
}

fn sample(pid: u32) -> Sample {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
    };
    Sample {
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
    }
}

/// What one phase measured.
struct Phase {
    name: String,
    /// Median `VmRSS` over the phase's samples.
    rss_kib: u64,
    /// `VmHWM` at the end of the phase.
    hwm_kib: u64,
    reads: Option<Reads>,
}

struct Reads {
    count: usize,
    per_second: f64,
    /// The rate of the first hot loop, which filled the cache from the database.
    first_loop_per_second: Option<f64>,
}

fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values[values.len() / 2]
}

/// `invsync serve`, run from `dir` (so no `config.toml` is read), logging to a file there.
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
        knobs: &Knobs,
        sync: bool,
    ) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let experiences: Vec<String> = knobs.experiences().iter().map(i64::to_string).collect();
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_invsync"))
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
            .env("INVSYNC_PARTNER__EXPERIENCES", experiences.join(","))
            .env("INVSYNC_SYNC__HORIZON_DAYS", knobs.horizon_days.to_string())
            .env("INVSYNC_SYNC__ENABLED", sync.to_string())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("invsync serve starts");
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

    async fn wait_ready(&mut self) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("child status") {
                panic!("invsync serve exited early: {status}");
            }
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

/// Samples `pid` every `SAMPLE_EVERY` until `done` resolves; returns its output and samples.
async fn sampled<T>(pid: u32, done: impl std::future::Future<Output = T>) -> (T, Vec<Sample>) {
    let mut samples = vec![sample(pid)];
    let mut ticker = tokio::time::interval(SAMPLE_EVERY);
    tokio::pin!(done);
    loop {
        tokio::select! {
            output = &mut done => {
                samples.push(sample(pid));
                return (output, samples);
            }
            _ = ticker.tick() => samples.push(sample(pid)),
        }
    }
}

fn phase(name: impl Into<String>, samples: &[Sample], reads: Option<Reads>) -> Phase {
    Phase {
        name: name.into(),
        rss_kib: median(samples.iter().map(|s| s.rss_kib).collect()),
        hwm_kib: samples.last().expect("a sample").hwm_kib,
        reads,
    }
}

/// Reads every URL once from `READERS` clients at once; every answer must be a 200.
async fn read_all(client: &reqwest::Client, urls: &[String]) -> usize {
    futures::stream::iter(urls)
        .map(|url| async move {
            let response = client.get(url).send().await.expect("read answered");
            assert!(
                response.status().is_success(),
                "{url}: {}",
                response.status()
            );
            response.bytes().await.expect("read body");
        })
        .buffer_unordered(READERS)
        .count()
        .await
}

async fn start_simulator(knobs: &Knobs) -> SimulatorHandle {
    Simulator::new(SimulatorConfig {
        rate_limit_per_minute: NonZeroU32::new(UNTHROTTLED_PER_MINUTE).expect("non-zero"),
        products: synthetic_products(knobs.products, 0),
        ..SimulatorConfig::new(Secret::new(SIM_KEY))
    })
    .spawn_local()
    .await
    .expect("simulator")
}

/// Waits until every product-date of the horizon has been fetched and applied.
async fn wait_backfilled(daemon: &mut Daemon, url: &str, today: NaiveDate, knobs: &Knobs) {
    let store = storage::connect(url).await.expect("store");
    let last = today + Days::new(u64::from(knobs.horizon_days) - 1);
    let expected = knobs.products * knobs.horizon_days as usize;
    let started = Instant::now();
    loop {
        if let Some(status) = daemon.child.try_wait().expect("child status") {
            panic!("invsync serve exited during the backfill: {status}");
        }
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
            "backfill: {fetched} of {expected} product-days after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The four phases on the fresh database at `url`.
async fn run(dir: &Path, backend: &str, url: &str, knobs: &Knobs) -> Vec<Phase> {
    let sim = start_simulator(knobs).await;
    let client = reqwest::Client::new();
    let today = Settings::default().partner.today();
    let mut phases = Vec::new();

    let idle = Daemon::start(dir, &format!("{backend}-idle"), url, &sim, knobs, false).await;
    let healthz = format!("{}/healthz", idle.base);
    let ((), samples) = sampled(idle.pid(), async {
        let started = Instant::now();
        while started.elapsed() < IDLE_FOR {
            read_all(&client, std::slice::from_ref(&healthz)).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    phases.push(phase("idle: sync off, empty database", &samples, None));
    idle.stop();

    let mut daemon = Daemon::start(dir, &format!("{backend}-serve"), url, &sim, knobs, true).await;
    let backfill_started = Instant::now();
    wait_backfilled(&mut daemon, url, today, knobs).await;
    let backfilled_in = backfill_started.elapsed();
    let (_, samples) = sampled(daemon.pid(), tokio::time::sleep(Duration::from_secs(2))).await;
    phases.push(phase(
        format!(
            "synced: {} product-days in {:.0} s",
            knobs.products * knobs.horizon_days as usize,
            backfilled_in.as_secs_f64()
        ),
        &samples,
        None,
    ));

    let base = &daemon.base;
    let experiences = knobs.experiences();
    let dates: Vec<String> = experiences
        .iter()
        .map(|id| format!("{base}/api/v1/experience/{id}/dates"))
        .collect();
    let slots_on = |days: u32| -> Vec<String> {
        today
            .iter_days()
            .take(days as usize)
            .flat_map(|date| {
                experiences
                    .iter()
                    .map(move |id| format!("{base}/api/v1/experience/{id}/slots?date={date}"))
            })
            .collect()
    };

    let full: Vec<String> = dates
        .iter()
        .cloned()
        .chain(slots_on(knobs.horizon_days))
        .collect();
    let started = Instant::now();
    let (count, samples) = sampled(daemon.pid(), read_all(&client, &full)).await;
    phases.push(phase(
        "full read pass: every /dates and /slots",
        &samples,
        Some(Reads {
            count,
            per_second: count as f64 / started.elapsed().as_secs_f64(),
            first_loop_per_second: None,
        }),
    ));

    let hot: Vec<String> = dates
        .iter()
        .cloned()
        .chain(slots_on(knobs.hot_days))
        .collect();
    let started = Instant::now();
    let ((count, first_loop), samples) = sampled(daemon.pid(), async {
        let mut count = 0;
        let mut first_loop = None;
        while count == 0 || started.elapsed() < knobs.read_for {
            let loop_started = Instant::now();
            let read = read_all(&client, &hot).await;
            first_loop.get_or_insert(read as f64 / loop_started.elapsed().as_secs_f64());
            count += read;
        }
        (count, first_loop)
    })
    .await;
    phases.push(phase(
        format!(
            "hot reads: /dates and {} days of /slots, looped",
            knobs.hot_days
        ),
        &samples,
        Some(Reads {
            count,
            per_second: count as f64 / started.elapsed().as_secs_f64(),
            first_loop_per_second: first_loop,
        }),
    ));
    daemon.stop();
    phases
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn print(backend: &str, phases: &[Phase]) {
    let idle = phases.first().expect("the idle phase");
    for phase in phases {
        let reads = phase.reads.as_ref().map_or_else(String::new, |reads| {
            let first = reads
                .first_loop_per_second
                .map_or_else(String::new, |first| {
                    format!(" (first loop {first:.0}/s, the rest from the cache)")
                });
            format!("   {} reads, {:.0}/s{first}", reads.count, reads.per_second)
        });
        println!(
            "{backend:<9} {:<48} {:>9.1} {:>9.1} {:>+10.1}{reads}",
            phase.name,
            mib(phase.rss_kib),
            mib(phase.hwm_kib),
            mib(phase.hwm_kib) - mib(idle.hwm_kib),
        );
    }
}

#[tokio::main]
async fn main() {
    let knobs = Knobs::from_env();
    println!(
        "memory: RSS (MiB) of `invsync serve`, {} synthetic products x {} days, unthrottled simulator, {READERS} readers; \
         comparison point: the same binary idle on an empty database",
        knobs.products, knobs.horizon_days
    );
    println!(
        "{:<9} {:<48} {:>9} {:>9} {:>10}",
        "backend", "phase", "VmRSS p50", "VmHWM", "HWM-idle"
    );
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    let wanted = |backend: &str| only.is_empty() || only.iter().any(|arg| arg == backend);
    let dir = tempfile::tempdir().expect("temp dir");

    if wanted("sqlite") {
        let url = format!("sqlite://{}", dir.path().join("memory.db").display());
        let phases = run(dir.path(), "sqlite", &url, &knobs).await;
        print("sqlite", &phases);
    }
    if wanted("postgres")
        && let Some(mut server) = PostgresServer::connect().await
    {
        let url = server.create_database("memory").await;
        let phases = run(dir.path(), "postgres", &url, &knobs).await;
        print("postgres", &phases);
        server.drop_database("memory").await;
    }
}
