//! Memory: the peak RSS of a real `invsync sync` process syncing 450 synthetic products over
//! the horizon from an unthrottled simulator, at 60 days and at 120 days (it must stay flat:
//! the sync streams days, it never holds the horizon), on SQLite and on PostgreSQL.
//!
//! `cargo bench --bench memory` (PostgreSQL from `TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`; a fresh database per run, dropped after).
//! Each run starts on a fresh database and a fresh in-process simulator. The comparison point
//! is the same binary running `invsync verify` on that fresh, empty database (runtime, logging,
//! pool and migrations, no sync work). Peak RSS is the child's `ru_maxrss`, taken by a small
//! re-executed copy of this bench (see `REPORTER_ENV`).

mod support;

use std::io;
use std::num::NonZeroU32;
use std::path::Path;
use std::process::{Command, ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use chrono::Days;
use invsync::config::Settings;
use invsync::domain::Secret;
use invsync::simulator::{
    SYNTHETIC_FIRST_ID, Simulator, SimulatorConfig, SimulatorHandle, synthetic_products,
};
use invsync::storage;
use support::PostgresServer;

const PRODUCTS: usize = 450;
const HORIZONS: [u32; 2] = [60, 120];
const TARGET_MIB: f64 = 64.0;
/// High enough that neither the simulator nor the client's pacer ever waits.
const UNTHROTTLED_PER_MINUTE: u32 = 60_000_000;
const SIM_KEY: &str = "memory-bench";

/// Set in the environment of this bench's own re-executed copy, which runs one command and
/// reports that command's peak RSS. Linux carries the exec-ing process's high-water RSS into
/// the new program's `ru_maxrss`, so a child spawned straight from this (large) bench process
/// would report at least the bench's own peak; the fresh copy is a few MiB, below anything
/// invsync reaches.
const REPORTER_ENV: &str = "INVSYNC_MEMORY_BENCH_REPORTER";
/// The reporter's last line of stdout.
const PEAK_PREFIX: &str = "peak-rss-kib: ";

/// One child process, measured.
struct Measured {
    status: ExitStatus,
    elapsed: Duration,
    peak_rss_kib: i64,
    stdout: String,
}

/// The reporter: runs its arguments as a command, then prints the command's peak RSS.
fn report_peak_rss() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let program = args.next().expect("a command to measure");
    let status = Command::new(program)
        .args(args)
        .env_remove(REPORTER_ENV)
        .status()
        .expect("the measured command runs");
    // SAFETY: rusage is plain data; zeroed is a valid value for getrusage to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to an rusage. The measured command is the only child this
    // process ever waited for, so the children's peak is its peak.
    let result = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    assert_eq!(result, 0, "getrusage: {}", io::Error::last_os_error());
    println!("{PEAK_PREFIX}{}", usage.ru_maxrss);
    u8::try_from(status.code().unwrap_or(1)).map_or(ExitCode::FAILURE, ExitCode::from)
}

/// Runs a reporter command (see `invsync`) and collects the output and peak RSS it reports.
fn measure(mut reporter: Command) -> Measured {
    reporter.stdout(Stdio::piped());
    let start = Instant::now();
    let output = reporter.output().expect("the reporter runs");
    let elapsed = start.elapsed();
    let mut stdout = String::from_utf8(output.stdout).expect("UTF-8 output");
    let last_line = stdout
        .trim_end()
        .rfind('\n')
        .map_or(0, |newline| newline + 1);
    let peak_rss_kib = stdout[last_line..]
        .trim_end()
        .strip_prefix(PEAK_PREFIX)
        .and_then(|kib| kib.parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS reported: {stdout}"));
    stdout.truncate(last_line);
    Measured {
        status: output.status,
        elapsed,
        peak_rss_kib,
        stdout,
    }
}

/// `invsync <args>` under the reporter, configured through the environment only, run from
/// `dir` (so no `config.toml` is read), logging at the default level to a file in `dir`.
fn invsync(dir: &Path, url: &str, sim: &SimulatorHandle, horizon: u32, args: &[&str]) -> Command {
    let experiences: Vec<String> = (0..PRODUCTS as i64)
        .map(|index| (SYNTHETIC_FIRST_ID + index).to_string())
        .collect();
    let log = std::fs::File::create(dir.join(format!("{}-{horizon}.log", args.join("-"))))
        .expect("log file");
    let mut command = Command::new(std::env::current_exe().expect("the bench's own path"));
    command
        .arg(env!("CARGO_BIN_EXE_invsync"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env(REPORTER_ENV, "1")
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("INVSYNC_DATABASE__URL", url)
        .env("INVSYNC_PARTNER__BASE_URL", sim.base_url())
        .env("INVSYNC_PARTNER__API_KEY", SIM_KEY)
        .env(
            "INVSYNC_PARTNER__RATE_LIMIT_PER_MINUTE",
            UNTHROTTLED_PER_MINUTE.to_string(),
        )
        .env("INVSYNC_PARTNER__EXPERIENCES", experiences.join(","))
        .env("INVSYNC_SYNC__HORIZON_DAYS", horizon.to_string())
        .stderr(log);
    command
}

async fn start_simulator() -> SimulatorHandle {
    Simulator::new(SimulatorConfig {
        rate_limit_per_minute: NonZeroU32::new(UNTHROTTLED_PER_MINUTE).expect("non-zero"),
        products: synthetic_products(PRODUCTS, 0),
        ..SimulatorConfig::new(Secret::new(SIM_KEY))
    })
    .spawn_local()
    .await
    .expect("simulator")
}

/// Runs `command` off the async runtime, which keeps serving the simulator meanwhile.
async fn measure_blocking(command: Command) -> Measured {
    tokio::task::spawn_blocking(move || measure(command))
        .await
        .expect("measuring thread")
}

struct Row {
    horizon: u32,
    product_days: usize,
    sync: Measured,
    baseline: Measured,
    verify: Measured,
}

/// Baseline, sync and verify of one horizon on the fresh database at `url`.
async fn run(dir: &Path, url: &str, horizon: u32) -> Row {
    let sim = start_simulator().await;
    let expected = PRODUCTS * horizon as usize;
    let today = Settings::default().partner.today();

    let baseline = measure_blocking(invsync(dir, url, &sim, horizon, &["verify"])).await;
    assert!(baseline.status.success(), "verify on the empty database");
    let sync = measure_blocking(invsync(dir, url, &sim, horizon, &["sync"])).await;
    assert!(
        sync.status.success(),
        "invsync sync failed: {}",
        sync.stdout
    );
    let verify = measure_blocking(invsync(dir, url, &sim, horizon, &["verify"])).await;
    assert!(
        verify.status.success(),
        "verify after the sync: {}",
        verify.stdout
    );

    // The run must have done the whole job: every product-date called once, answered, applied.
    assert!(
        sync.stdout
            .starts_with(&format!("fetched {expected} product-days")),
        "sync reported: {}",
        sync.stdout
    );
    let calls = sim.sim.calls();
    assert_eq!(calls.len(), expected, "partner calls");
    assert!(
        calls.iter().all(|call| call.status == 200),
        "partner errors"
    );
    let store = storage::connect(url).await.expect("store");
    let last = today + Days::new(u64::from(horizon) - 1);
    let recorded = store.last_fetches(today, last).await.expect("last fetches");
    assert_eq!(recorded.len(), expected, "product-dates recorded");

    Row {
        horizon,
        product_days: expected,
        sync,
        baseline,
        verify,
    }
}

fn mib(kib: i64) -> f64 {
    kib as f64 / 1024.0
}

impl Row {
    fn print(&self, backend: &str) {
        let (sync, baseline) = (mib(self.sync.peak_rss_kib), mib(self.baseline.peak_rss_kib));
        println!(
            "{backend:<9} {:>7} {:>12} {:>9.1}s {:>10.1} {:>10.1} {:>10.1} {:>12.1} {:>9}",
            self.horizon,
            self.product_days,
            self.sync.elapsed.as_secs_f64(),
            sync,
            baseline,
            sync - baseline,
            mib(self.verify.peak_rss_kib),
            if sync <= TARGET_MIB { "met" } else { "MISSED" },
        );
    }
}

/// How the peak grew when the horizon doubled.
fn print_flatness(backend: &str, rows: &[Row]) {
    if let [short, long] = rows {
        println!(
            "{backend:<9} sync peak RSS {}d / {}d = {:.2}",
            long.horizon,
            short.horizon,
            long.sync.peak_rss_kib as f64 / short.sync.peak_rss_kib as f64
        );
    }
}

fn main() -> ExitCode {
    if std::env::var_os(REPORTER_ENV).is_some() {
        return report_peak_rss();
    }
    tokio::runtime::Runtime::new()
        .expect("tokio runtime")
        .block_on(bench());
    ExitCode::SUCCESS
}

async fn bench() {
    println!(
        "memory: peak RSS (MiB) of `invsync sync`, {PRODUCTS} synthetic products, unthrottled simulator; target <= {TARGET_MIB} MiB, flat in the horizon"
    );
    println!(
        "{:<9} {:>7} {:>12} {:>10} {:>10} {:>10} {:>10} {:>12} {:>9}",
        "backend",
        "horizon",
        "product-days",
        "elapsed",
        "sync",
        "baseline",
        "sync-base",
        "verify after",
        "target"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let mut sqlite = Vec::new();
    for horizon in HORIZONS {
        let url = format!(
            "sqlite://{}",
            dir.path().join(format!("memory-{horizon}.db")).display()
        );
        let row = run(dir.path(), &url, horizon).await;
        row.print("sqlite");
        sqlite.push(row);
    }
    print_flatness("sqlite", &sqlite);

    if let Some(mut server) = PostgresServer::connect().await {
        let mut postgres = Vec::new();
        for horizon in HORIZONS {
            let role = format!("memory_{horizon}");
            let url = server.create_database(&role).await;
            let row = run(dir.path(), &url, horizon).await;
            row.print("postgres");
            postgres.push(row);
            server.drop_database(&role).await;
        }
        print_flatness("postgres", &postgres);
    }
}
