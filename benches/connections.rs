//! Many clients at once: `invsync serve` (the release binary, a separate process) under
//! 64, 1,000, 5,000 and 10,000 concurrent connections from wrk, on `/healthz`,
//! `/api/v1/experience/14/slots?date=<its first sellable date>` and
//! `/api/v1/experience/14/dates`, on SQLite and
//! on PostgreSQL, with the daemon's resident memory sampled throughout.
//!
//! `cargo bench --bench connections` (PostgreSQL from `TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`; a fresh database per run, dropped after).
//! `cargo bench --bench connections -- sqlite` (or `postgres`) runs one backend. Knobs:
//! `CONNECTIONS_SECONDS` (20: how long wrk runs per row), `CONNECTIONS_SETTLE_SECONDS` (30: how
//! long after a row the daemon is left alone before its memory is read again),
//! `CONNECTIONS_COUNTS` (`64,1000,5000,10000`), `CONNECTIONS_ROUTES` and `CONNECTIONS_READERS`
//! (below), `CONNECTIONS_BINARY` (the `invsync` binary to
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
//! **The booking mix** (route `holds`), at 1,000 connections and more, after the read rows of
//! the count: a sale opens on one slot of experience 14 (a slot of the first sellable day
//! after today, a new one per row, with the demo data's 1,000 seats of its primary pax type).
//! `wrk -t2 -cN` with a Lua script POSTs `/api/v1/bookings`, one seat each, with the sales
//! token and an `Idempotency-Key` of its own per request (also sent as `X-Request-Id`, which
//! the daemon echoes, so the script times each answer and sorts it: 201, 409
//! `insufficient_capacity`, 503 `overloaded`, other). At the same time a second wrk (`-t1
//! -cCONNECTIONS_READERS`, 64) reads that day's `/slots`, whose cache every hold invalidates.
//! Once the holds in flight when wrk stopped have landed, the bench reads the pools' held
//! balances from the ledger (the slot's history in the store), what `/slots` serves and `GET
//! /api/v1/ledger/verify`. Per row: the answers by kind, p50 and p99 of the answered holds
//! (201 and 409; shed ones excluded), the slowest answer, answers past 2 s and past 10 s, the
//! seats held, how long the sale took to sell out and the seats **oversold** (held or won
//! beyond the pools' seats); then the reads beside it as a row of the main table.
//!
//! At 10,000 connections each row is judged against the targets (no request waits over 2 s,
//! p99 at most 1 s, peak RSS at most 128 MiB, RSS after the quiet spell at most twice idle;
//! for the holds, p99 of the answered ones, and the reads beside them judged on wait and p99);
//! when one is missed the bench says which (backend, route, target and figure) and exits
//! non-zero. At any count, a seat oversold, a ledger that does not verify, `/slots` serving
//! other than the ledger's seats or a hold answered other than 201, 409 or 503 exits non-zero.
//!
//! `CONNECTIONS_ROUTES` (`healthz,slots,dates,holds`) picks the rows;
//! `CONNECTIONS_ROUTES=holds` runs the booking mix alone. `INVSYNC_SERVER__*` variables in the
//! bench's environment (`INVSYNC_SERVER__QUEUE_BUDGET_MS=500`) are passed to the daemon.

mod support;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};
use invsync::config::Settings;
use invsync::domain::{ExperienceId, Secret};
use invsync::ledger::AccountKind;
use invsync::simulator::{Simulator, SimulatorConfig, SimulatorHandle};
use invsync::storage::{self, Store};
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

/// The booking mix: a sale opens on one slot and N clients hold a seat each, again and again.
const SALES_TOKEN: &str = "connections-bench-sales-token";
const ADMIN_TOKEN: &str = "connections-bench-admin-token";
const SALE_EXPERIENCE: i64 = 14;
/// Holds rows run at these connection counts and above.
const HOLDS_MIN_CONNECTIONS: u32 = 1_000;
/// Longer than a backend's whole run, so no hold lapses while the bench reads the ledger.
const HOLD_SECONDS: u32 = 3_600;
/// A sale slot needs at least this many seats, so some holds are won before the 409s.
const SALE_MIN_SEATS: i64 = 500;
/// How long the holds in flight when wrk stops may take to land before the ledger is read.
const LAND_LIMIT: Duration = Duration::from_secs(10);

/// wrk's script for the holds: each request a `POST /api/v1/bookings` of one seat with an
/// `Idempotency-Key` of its own (also sent as `X-Request-Id`, which the daemon echoes, so the
/// answer finds its request's start), the bodies given as arguments taken in turn. It counts
/// the answers by kind and keeps a latency histogram (10 µs buckets) of all of them and of the
/// answered ones (201 and 409 `insufficient_capacity`, not shed), then prints them in `done`.
const HOLDS_LUA: &str = r#"
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } invsync_timespec;
int clock_gettime(int clk_id, invsync_timespec *tp);
]]
local now_ts = ffi.new("invsync_timespec")
local function now_us()
  ffi.C.clock_gettime(1, now_ts) -- CLOCK_MONOTONIC
  return tonumber(now_ts.tv_sec) * 1000000 + tonumber(now_ts.tv_nsec) / 1000
end

local threads = {}
local thread_count = 0
function setup(thread)
  thread:set("thread_index", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

local token, prefix
local bodies = {}
local sent = 0
local started = {}
created, refused, shed, other, unmatched, pending = 0, 0, 0, 0, 0, 0
answered_hist, all_hist, other_statuses = {}, {}, {}
sample = ""

function init(args)
  token = args[1]
  prefix = args[2] .. "-" .. thread_index .. "-"
  for i = 3, #args do bodies[#bodies + 1] = args[i] end
end

function request()
  sent = sent + 1
  pending = pending + 1
  local key = prefix .. sent
  started[key] = now_us()
  return wrk.format("POST", nil, {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = key,
    ["X-Request-Id"] = key,
  }, bodies[(sent % #bodies) + 1])
end

function response(status, headers, body)
  local key = headers["x-request-id"] or headers["X-Request-Id"]
  local t0 = key and started[key]
  local answered = false
  if status == 201 then
    created = created + 1
    answered = true
  elseif status == 409 and body and string.find(body, "insufficient_capacity", 1, true) then
    refused = refused + 1
    answered = true
  elseif status == 503 and body and string.find(body, "overloaded", 1, true) then
    shed = shed + 1
  else
    other = other + 1
    other_statuses[status] = (other_statuses[status] or 0) + 1
    if sample == "" then sample = status .. " " .. string.gsub(body or "", "%s+", " ") end
  end
  if not t0 then
    unmatched = unmatched + 1
    return
  end
  started[key] = nil
  pending = pending - 1
  local bucket = math.floor((now_us() - t0) / 10)
  all_hist[bucket] = (all_hist[bucket] or 0) + 1
  if answered then answered_hist[bucket] = (answered_hist[bucket] or 0) + 1 end
end

local function merge(into, from)
  for bucket, count in pairs(from or {}) do into[bucket] = (into[bucket] or 0) + count end
end

-- count, p50, p99, max (µs, each bucket's upper edge) and how many took over 2 s
local function summary(hist)
  local buckets, n, over_2s = {}, 0, 0
  for bucket, count in pairs(hist) do
    buckets[#buckets + 1] = bucket
    n = n + count
    if bucket >= 200000 then over_2s = over_2s + count end
  end
  table.sort(buckets)
  local function percentile(p)
    local rank, seen = math.max(1, math.ceil(n * p)), 0
    for _, bucket in ipairs(buckets) do
      seen = seen + hist[bucket]
      if seen >= rank then return (bucket + 1) * 10 end
    end
    return 0
  end
  local max = 0
  if #buckets > 0 then max = (buckets[#buckets] + 1) * 10 end
  return string.format("%d %d %d %d %d", n, percentile(0.5), percentile(0.99), max, over_2s)
end

function done(summary_, latency, requests)
  local counts = { created = 0, refused = 0, shed = 0, other = 0, unmatched = 0, pending = 0 }
  local answered, all, others, first_sample = {}, {}, {}, ""
  for _, thread in ipairs(threads) do
    for name, _ in pairs(counts) do counts[name] = counts[name] + (thread:get(name) or 0) end
    merge(answered, thread:get("answered_hist"))
    merge(all, thread:get("all_hist"))
    merge(others, thread:get("other_statuses"))
    if first_sample == "" then first_sample = thread:get("sample") or "" end
  end
  io.write(string.format("invsync-holds counts %d %d %d %d %d %d\n", counts.created,
    counts.refused, counts.shed, counts.other, counts.unmatched, counts.pending))
  io.write("invsync-holds answered " .. summary(answered) .. "\n")
  io.write("invsync-holds all " .. summary(all) .. "\n")
  local listed = {}
  for status, count in pairs(others) do listed[#listed + 1] = status .. "x" .. count end
  io.write("invsync-holds other " .. table.concat(listed, ",") .. "\n")
  io.write("invsync-holds sample " .. string.sub(first_sample, 1, 300) .. "\n")
end
"#;

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
    /// The read routes to run (`healthz`, `slots`, `dates`).
    reads: Vec<String>,
    /// Whether the booking mix runs (route `holds`).
    holds: bool,
    /// Connections of the second wrk reading `/slots` while the holds run.
    readers: u32,
}

impl Knobs {
    fn from_env() -> Self {
        let counts = std::env::var("CONNECTIONS_COUNTS")
            .unwrap_or_else(|_| "64,1000,5000,10000".into())
            .split(',')
            .map(|count| count.trim().parse().expect("a connection count"))
            .collect();
        let routes: Vec<String> = std::env::var("CONNECTIONS_ROUTES")
            .unwrap_or_else(|_| "healthz,slots,dates,holds".into())
            .split(',')
            .map(|route| route.trim().to_string())
            .filter(|route| !route.is_empty())
            .collect();
        for route in &routes {
            assert!(
                ["healthz", "slots", "dates", "holds"].contains(&route.as_str()),
                "CONNECTIONS_ROUTES: unknown route {route:?} (healthz, slots, dates, holds)"
            );
        }
        Self {
            holds: routes.iter().any(|route| route == "holds"),
            reads: routes
                .into_iter()
                .filter(|route| route != "holds")
                .collect(),
            readers: u32::try_from(env_or("CONNECTIONS_READERS", 64))
                .expect("a connection count")
                .max(1),
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
    run_wrk_threads(WRK_THREADS, connections, seconds, url)
}

fn run_wrk_threads(threads: u32, connections: u32, seconds: u64, url: &str) -> Result<Wrk, String> {
    wrk_output(threads, connections, seconds, url, None).and_then(|text| {
        parse_wrk(&text).ok_or_else(|| format!("cannot read wrk's output:\n{text}"))
    })
}

/// wrk's standard output, run with `threads` threads and, if given, a Lua script and its
/// arguments.
fn wrk_output(
    threads: u32,
    connections: u32,
    seconds: u64,
    url: &str,
    script: Option<(&Path, &[String])>,
) -> Result<String, String> {
    let mut command = Command::new("wrk");
    command.args([
        format!("-t{threads}"),
        format!("-c{connections}"),
        format!("-d{seconds}s"),
        format!("--timeout={WRK_TIMEOUT_SECONDS}s"),
        "--latency".into(),
    ]);
    if let Some((path, _)) = script {
        command.arg("-s").arg(path);
    }
    command.arg(url);
    if let Some((_, args)) = script {
        command.arg("--").args(args);
    }
    let output = command.output().map_err(|error| format!("wrk: {error}"))?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        return Err(format!(
            "wrk exited with {}:\n{text}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(text)
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
            // Server settings to try (`INVSYNC_SERVER__QUEUE_BUDGET_MS=500`) and jemalloc's
            // (`_RJEM_MALLOC_CONF`); the bench's own listen address and tokens below win.
            .envs(std::env::vars().filter(|(name, _)| {
                name.starts_with("INVSYNC_SERVER__") || name == "_RJEM_MALLOC_CONF"
            }))
            .env("INVSYNC_SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .env("INVSYNC_DATABASE__URL", url)
            .env("INVSYNC_PARTNER__BASE_URL", sim.base_url())
            .env("INVSYNC_PARTNER__API_KEY", SIM_KEY)
            .env(
                "INVSYNC_PARTNER__RATE_LIMIT_PER_MINUTE",
                UNTHROTTLED_PER_MINUTE.to_string(),
            )
            .env("INVSYNC_PARTNER__EXPERIENCES", EXPERIENCES)
            .env("INVSYNC_SERVER__SALES_TOKEN", SALES_TOKEN)
            .env("INVSYNC_SERVER__ADMIN_TOKEN", ADMIN_TOKEN)
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
        self.shed(None).await
    }

    /// `invsync_http_shed_total` of one class (`read`, `write`), or summed over both.
    async fn shed(&self, class: Option<&str>) -> u64 {
        let text = reqwest::get(format!("{}/metrics", self.base))
            .await
            .expect("metrics answer")
            .text()
            .await
            .expect("metrics text");
        let label = class.map(|class| format!("class=\"{class}\""));
        text.lines()
            .filter(|line| line.starts_with("invsync_http_shed_total"))
            .filter(|line| {
                label
                    .as_ref()
                    .is_none_or(|label| line.contains(label.as_str()))
            })
            .filter_map(|line| line.split_whitespace().last()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }

    /// A JSON answer of the daemon, with the admin token.
    async fn get_json(&self, path_and_query: &str) -> serde_json::Value {
        let response = reqwest::Client::new()
            .get(format!("{}{path_and_query}", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("the daemon answers");
        let status = response.status();
        let text = response.text().await.expect("a body");
        assert!(status.is_success(), "{path_and_query}: {status} {text}");
        serde_json::from_str(&text).expect("a JSON body")
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

/// A slot a sale opens on, as `/slots` served it before the row: every hold is one seat of
/// its primary pax type, so the sale's seats are the smaller of that pool and the slot's.
#[derive(Clone)]
struct SaleSlot {
    date: NaiveDate,
    start_time: String,
    /// The slot-level pool's seats.
    slot_seats: i64,
    /// The pax type held and its pool's seats.
    pax_type: String,
    pax_seats: i64,
}

impl SaleSlot {
    fn time(&self) -> NaiveTime {
        NaiveTime::parse_from_str(&self.start_time, "%H:%M").expect("HH:MM")
    }

    /// The seats the sale can sell.
    fn seats(&self) -> i64 {
        self.slot_seats.min(self.pax_seats)
    }

    /// The hold's body: one seat.
    fn body(&self) -> String {
        serde_json::json!({
            "experience": SALE_EXPERIENCE,
            "date": self.date.to_string(),
            "startTime": self.start_time,
            "pax": [{"type": self.pax_type, "quantity": 1}],
            "holdSeconds": HOLD_SECONDS,
        })
        .to_string()
    }
}

/// Latencies of some of the holds' answers, from the script's histogram.
#[derive(Default)]
struct Latencies {
    p50: Duration,
    p99: Duration,
    max: Duration,
    over_2s: u64,
}

/// What the holds' wrk and its script counted.
#[derive(Default)]
struct Holds {
    /// 201.
    created: u64,
    /// 409 `insufficient_capacity`.
    refused: u64,
    /// 503 `overloaded`.
    shed: u64,
    /// Any other answer (`other_statuses`: `STATUSxCOUNT,...`; `sample`: the first one).
    other: u64,
    other_statuses: String,
    sample: String,
    /// Answers without the request id the script sent (none expected).
    unmatched: u64,
    /// Requests sent and never answered: in flight when wrk stopped, or given up after 10 s.
    unanswered: u64,
    /// 201 and 409 `insufficient_capacity`.
    answered: Latencies,
    /// Every answer, shed ones included.
    all: Latencies,
    /// wrk's own figures (its `timeouts` are the requests past 10 s).
    wrk: Wrk,
}

fn parse_holds(text: &str) -> Option<Holds> {
    let line = |name: &str| {
        text.lines()
            .find_map(|line| line.trim().strip_prefix(&format!("invsync-holds {name}")))
            .map(str::trim)
    };
    let numbers = |name: &str| -> Option<Vec<u64>> {
        line(name)?
            .split_whitespace()
            .map(|number| number.parse().ok())
            .collect()
    };
    let latencies = |name: &str| -> Option<Latencies> {
        let [_count, p50, p99, max, over_2s] = numbers(name)?[..] else {
            return None;
        };
        Some(Latencies {
            p50: Duration::from_micros(p50),
            p99: Duration::from_micros(p99),
            max: Duration::from_micros(max),
            over_2s,
        })
    };
    let [created, refused, shed, other, unmatched, unanswered] = numbers("counts")?[..] else {
        return None;
    };
    Some(Holds {
        created,
        refused,
        shed,
        other,
        other_statuses: line("other").unwrap_or_default().to_string(),
        sample: line("sample").unwrap_or_default().to_string(),
        unmatched,
        unanswered,
        answered: latencies("answered")?,
        all: latencies("all")?,
        wrk: parse_wrk(text)?,
    })
}

/// The booking mix at one connection count: holds on one slot, `/slots` read beside them.
struct HoldsRow {
    connections: u32,
    slot: SaleSlot,
    holds: Result<Holds, String>,
    /// The second wrk, reading the sale day's `/slots` at the same time.
    reads: Row,
    /// Holds the daemon counted as shed (write class).
    shed_daemon: u64,
    /// From the ledger once the holds in flight have landed: seats held on each pool
    /// (`None` = the slot-level pool).
    held: BTreeMap<Option<String>, i64>,
    /// From the row's start to the slot pool's last hold, when every seat was held.
    sold_out_after: Option<Duration>,
    /// The slot's `remaining` served after the row.
    served_after: i64,
    /// Seats held (or answered 201) beyond a pool's seats, summed over the pools.
    oversold: i64,
    verify_ok: bool,
    verify_text: String,
}

impl HoldsRow {
    fn slot_held(&self) -> i64 {
        self.held.get(&None).copied().unwrap_or(0)
    }

    fn pax_held(&self) -> i64 {
        self.held
            .get(&Some(self.slot.pax_type.clone()))
            .copied()
            .unwrap_or(0)
    }

    /// The checks that fail the bench at any count: no seat oversold, the ledger verified,
    /// `/slots` showing the ledger's seats, every hold answered 201, 409 or 503.
    fn broken(&self) -> Vec<String> {
        let mut broken = Vec::new();
        if self.oversold > 0 {
            broken.push(format!("{} seats oversold", self.oversold));
        }
        if !self.verify_ok {
            broken.push(format!("ledger verify not ok: {}", self.verify_text));
        }
        let expected = self.slot.slot_seats - self.slot_held();
        if self.served_after != expected {
            broken.push(format!(
                "/slots serves {} seats left, the ledger {expected}",
                self.served_after
            ));
        }
        match &self.holds {
            Ok(holds) if holds.other > 0 => broken.push(format!(
                "{} holds answered neither 201, 409 insufficient_capacity nor 503 overloaded \
                 ({}; first: {})",
                holds.other, holds.other_statuses, holds.sample
            )),
            Ok(_) => {}
            Err(error) => broken.push(format!("the holds' wrk failed: {error}")),
        }
        broken
    }
}

/// The first date `/dates` offers for experience 14: the day a sale's readers read.
async fn first_sellable_date(daemon: &Daemon) -> NaiveDate {
    let dates = daemon.get_json("/api/v1/experience/14/dates").await;
    dates["dates"][0]["date"]
        .as_str()
        .and_then(|date| date.parse().ok())
        .expect("experience 14 has a sellable date")
}

/// Slots of the sale experience with at least `SALE_MIN_SEATS` seats, from the first
/// sellable date after today on, as `/slots` serves them; `wanted` of them, one per row.
async fn sale_slots(daemon: &Daemon, today: NaiveDate, wanted: usize) -> Vec<SaleSlot> {
    if wanted == 0 {
        return Vec::new();
    }
    let dates = daemon
        .get_json(&format!("/api/v1/experience/{SALE_EXPERIENCE}/dates"))
        .await;
    let mut slots = Vec::new();
    for date in dates["dates"].as_array().expect("dates") {
        let date: NaiveDate = date["date"]
            .as_str()
            .and_then(|date| date.parse().ok())
            .expect("a date");
        if date <= today {
            continue;
        }
        let day = daemon
            .get_json(&format!(
                "/api/v1/experience/{SALE_EXPERIENCE}/slots?date={date}"
            ))
            .await;
        for slot in day.as_array().expect("slots") {
            // The first pax type served is the primary one.
            let Some(pax) = slot["paxAvailability"]
                .as_array()
                .and_then(|pax| pax.first())
            else {
                continue;
            };
            let sale = SaleSlot {
                date,
                start_time: slot["startTime"].as_str().expect("startTime").to_string(),
                slot_seats: slot["remaining"].as_i64().expect("remaining"),
                pax_type: pax["type"].as_str().expect("type").to_string(),
                pax_seats: pax["remaining"].as_i64().expect("remaining"),
            };
            if sale.seats() >= SALE_MIN_SEATS {
                slots.push(sale);
            }
            if slots.len() == wanted {
                return slots;
            }
        }
    }
    panic!(
        "only {} slots of experience {SALE_EXPERIENCE} with {SALE_MIN_SEATS} seats or more after today; {wanted} wanted",
        slots.len()
    );
}

/// The held balance of each of the slot's pools and when the slot pool's last hold posted.
async fn held_balances(
    store: &Arc<dyn Store>,
    slot: &SaleSlot,
) -> (BTreeMap<Option<String>, i64>, Option<DateTime<Utc>>) {
    let history = store
        .slot_history(
            ExperienceId::try_from(SALE_EXPERIENCE).expect("an experience id"),
            slot.date,
            slot.time(),
        )
        .await
        .expect("slot history")
        .expect("the sale's slot");
    let mut held = BTreeMap::new();
    let mut last_hold = None;
    for posting in history
        .postings
        .iter()
        .filter(|posting| posting.account_kind == AccountKind::Held)
    {
        held.insert(posting.pax_type.clone(), posting.balance_after);
        if posting.pax_type.is_none() && posting.reason == "hold" {
            last_hold = Some(posting.at);
        }
    }
    (held, last_hold)
}

/// The holds on `slot` from `connections` clients and, at the same time, `/slots` of its day
/// from `knobs.readers`; then the ledger's word on them.
async fn holds_row(
    dir: &Path,
    name: &str,
    daemon: &mut Daemon,
    store: &Arc<dyn Store>,
    connections: u32,
    slot: SaleSlot,
    knobs: &Knobs,
) -> HoldsRow {
    daemon.check_running();
    let script = dir.join("holds.lua");
    std::fs::write(&script, HOLDS_LUA).expect("the holds script");
    let holds_url = format!("{}/api/v1/bookings", daemon.base);
    let reads_url = format!(
        "{}/api/v1/experience/{SALE_EXPERIENCE}/slots?date={}",
        daemon.base, slot.date
    );
    let mut args = vec![
        SALES_TOKEN.to_string(),
        format!("{name}-{connections}-{}", slot.start_time),
    ];
    args.push(slot.body());

    let before_kib = rss_kib(daemon.pid());
    let writes_shed_before = daemon.shed(Some("write")).await;
    let reads_shed_before = daemon.shed(Some("read")).await;
    let drops_before = listen_drops();
    let started = Utc::now();
    let seconds = knobs.seconds;
    let readers = knobs.readers;
    let ((holds, reads), during) = sampled(daemon.pid(), async move {
        let holds = tokio::task::spawn_blocking(move || {
            wrk_output(
                WRK_THREADS,
                connections,
                seconds,
                &holds_url,
                Some((&script, &args)),
            )
            .and_then(|text| {
                parse_holds(&text).ok_or_else(|| format!("cannot read wrk's output:\n{text}"))
            })
        });
        let reads =
            tokio::task::spawn_blocking(move || run_wrk_threads(1, readers, seconds, &reads_url));
        let (holds, reads) = tokio::join!(holds, reads);
        (holds.expect("wrk task"), reads.expect("wrk task"))
    })
    .await;
    let listen_drops = listen_drops().saturating_sub(drops_before);

    // The holds in flight when wrk stopped land (or are dropped with their connection).
    let mut landed = held_balances(store, &slot).await;
    let waiting = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = held_balances(store, &slot).await;
        let still = now.0 == landed.0;
        landed = now;
        if still || waiting.elapsed() > LAND_LIMIT {
            break;
        }
    }
    let (held, last_hold) = landed;
    let slot_held = held.get(&None).copied().unwrap_or(0);
    let pax_held = held.get(&Some(slot.pax_type.clone())).copied().unwrap_or(0);
    let won = i64::try_from(holds.as_ref().map_or(0, |holds| holds.created)).unwrap_or(i64::MAX);
    let oversold = (won.max(pax_held) - slot.seats()).max(0) + (slot_held - slot.slot_seats).max(0);
    let sold_out_after = (pax_held >= slot.seats())
        .then_some(last_hold)
        .flatten()
        .and_then(|at| (at - started).to_std().ok());
    let served_after = daemon
        .get_json(&format!(
            "/api/v1/experience/{SALE_EXPERIENCE}/slots?date={}",
            slot.date
        ))
        .await
        .as_array()
        .expect("slots")
        .iter()
        .find(|served| served["startTime"] == slot.start_time.as_str())
        .and_then(|served| served["remaining"].as_i64())
        .unwrap_or(0);
    let verify = daemon.get_json("/api/v1/ledger/verify").await;
    let verify_ok = verify["ok"].as_bool() == Some(true);
    let verify_text = if verify_ok {
        "ok".to_string()
    } else {
        verify.to_string().chars().take(500).collect()
    };
    let shed_daemon = daemon
        .shed(Some("write"))
        .await
        .saturating_sub(writes_shed_before);
    let reads_shed = daemon
        .shed(Some("read"))
        .await
        .saturating_sub(reads_shed_before);

    let ((), quiet) = sampled(daemon.pid(), tokio::time::sleep(knobs.settle)).await;
    daemon.check_running();
    let peak_kib = during.iter().copied().max().expect("a sample");
    let after_kib = *quiet.last().expect("a sample");
    HoldsRow {
        connections,
        holds,
        reads: Row {
            route: "/slots + holds",
            connections: knobs.readers,
            wrk: reads,
            shed: reads_shed,
            listen_drops,
            before_kib,
            peak_kib,
            after_kib,
        },
        shed_daemon,
        held,
        sold_out_after,
        served_after,
        oversold,
        verify_ok,
        verify_text,
        slot,
    }
}

struct Backend {
    name: &'static str,
    idle_kib: u64,
    rows: Vec<Row>,
    holds: Vec<HoldsRow>,
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
    let first_sellable = first_sellable_date(&daemon).await;
    let routes: Vec<(&'static str, String)> = [
        ("healthz", "/healthz", format!("{base}/healthz")),
        (
            "slots",
            "/slots?date=first",
            format!("{base}/api/v1/experience/14/slots?date={first_sellable}"),
        ),
        (
            "dates",
            "/dates",
            format!("{base}/api/v1/experience/14/dates"),
        ),
    ]
    .into_iter()
    .filter(|(knob, _, _)| knobs.reads.iter().any(|wanted| wanted == knob))
    .map(|(_, route, url)| (route, url))
    .collect();
    for (route, url) in &routes {
        let body = reqwest::get(url)
            .await
            .expect("route answers")
            .bytes()
            .await
            .expect("body");
        println!("{name:<9} {route:<18} answers {} bytes", body.len());
    }
    let holds_counts: Vec<u32> = if knobs.holds {
        knobs
            .counts
            .iter()
            .copied()
            .filter(|&count| count >= HOLDS_MIN_CONNECTIONS)
            .collect()
    } else {
        Vec::new()
    };
    let mut sale = sale_slots(&daemon, today, holds_counts.len())
        .await
        .into_iter();
    let store = storage::connect(url).await.expect("store");

    let mut rows = Vec::new();
    let mut holds = Vec::new();
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
        if holds_counts.contains(&connections) {
            let slot = sale.next().expect("a sale slot per holds row");
            let row = holds_row(dir, name, &mut daemon, &store, connections, slot, knobs).await;
            print_holds_row(name, &row);
            print_row(name, idle_kib, &row.reads);
            holds.push(row);
        }
    }
    daemon.stop();
    Backend {
        name,
        idle_kib,
        rows,
        holds,
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

fn print_holds_header() {
    println!(
        "{:<9} {:<18} {:>6} {:>6} {:>6} {:>8} {:>8} {:>5} {:>8} {:>8} {:>8} {:>6} {:>6} {:>6} {:>6} {:>8} {:>8} {:>6} {:>6} {:>7} {:>7}",
        "backend",
        "holds on slot",
        "conns",
        "seats",
        "201",
        "409",
        "503",
        "other",
        "p50 ms",
        "p99 ms",
        "max ms",
        ">2s",
        ">10s",
        "unans",
        "held",
        "sold out",
        "oversold",
        "verify",
        "drops",
        "peak",
        "after"
    );
}

fn print_holds_row(backend: &str, row: &HoldsRow) {
    let label = format!(
        "holds {} {}",
        row.slot.date.format("%m-%d"),
        row.slot.start_time
    );
    match &row.holds {
        Ok(holds) => println!(
            "{backend:<9} {label:<18} {:>6} {:>6} {:>6} {:>8} {:>8} {:>5} {:>8.2} {:>8.2} {:>8.0} {:>6} {:>6} {:>6} {:>6} {:>8} {:>8} {:>6} {:>6} {:>7.1} {:>7.1}",
            row.connections,
            row.slot.seats(),
            holds.created,
            holds.refused,
            holds.shed,
            holds.other,
            ms(holds.answered.p50),
            ms(holds.answered.p99),
            ms(holds.all.max.max(holds.wrk.max)),
            holds.all.over_2s,
            holds.wrk.timeouts,
            holds.unanswered,
            row.pax_held(),
            row.sold_out_after.map_or_else(
                || "-".to_string(),
                |after| format!("{:.1} s", after.as_secs_f64())
            ),
            row.oversold,
            if row.verify_ok { "ok" } else { "FAILED" },
            row.reads.listen_drops,
            mib(row.reads.peak_kib),
            mib(row.reads.after_kib),
        ),
        Err(error) => println!(
            "{backend:<9} {label:<18} {:>6} failed: {error}",
            row.connections
        ),
    }
    if let Ok(holds) = &row.holds {
        // The holds in flight when wrk stopped may be shed after it counted.
        if holds.shed > row.shed_daemon || row.shed_daemon > holds.shed + holds.unanswered {
            println!(
                "{backend:<9} {label:<18} {:>6} note: {} holds answered 503 overloaded, {} writes counted as shed by the daemon",
                row.connections, holds.shed, row.shed_daemon
            );
        }
        if holds.unmatched > 0 {
            println!(
                "{backend:<9} {label:<18} {:>6} note: {} answers without the request id sent",
                row.connections, holds.unmatched
            );
        }
    }
    for broken in row.broken() {
        println!(
            "{backend:<9} {label:<18} {:>6} BROKEN: {broken}",
            row.connections
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

/// The same targets for every holds row, with the reads beside it; returns the targets
/// missed at `TARGET_CONNECTIONS` (the rows below it are printed for comparison only).
fn print_holds_targets(backends: &[Backend]) -> Vec<String> {
    let mut missed = Vec::new();
    for backend in backends {
        for row in &backend.holds {
            let label = format!("holds {:>5}", row.connections);
            let Ok(holds) = &row.holds else {
                println!(
                    "{:<9} {label:<12} wrk failed: every target MISSED",
                    backend.name
                );
                if row.connections == TARGET_CONNECTIONS {
                    missed.push(format!(
                        "{} {label}: wrk failed, so every target",
                        backend.name
                    ));
                }
                continue;
            };
            let max = holds.all.max.max(holds.wrk.max);
            let waited = max <= TARGET_MAX_WAIT
                && holds.all.over_2s == 0
                && holds.wrk.timeouts == 0
                && row.reads.listen_drops == 0;
            let p99 = holds.answered.p99 <= TARGET_P99;
            let peak = mib(row.reads.peak_kib) <= TARGET_PEAK_MIB;
            let after =
                row.reads.after_kib as f64 <= TARGET_AFTER_OVER_IDLE * backend.idle_kib as f64;
            let (reads_waited, reads_p99, reads_max, reads_p99_value) = match &row.reads.wrk {
                Ok(wrk) => (
                    wrk.max <= TARGET_MAX_WAIT && wrk.timeouts == 0,
                    wrk.p99 <= TARGET_P99,
                    ms(wrk.max),
                    ms(wrk.p99),
                ),
                Err(_) => (false, false, f64::NAN, f64::NAN),
            };
            println!(
                "{:<9} {label:<12} wait <= 2 s: {:<6} (max {:.0} ms, {} over 2 s, {} over 10 s, {} listen drops)   \
                 p99 <= 1 s (201/409): {:<6} ({:.0} ms)   peak <= 128 MiB: {:<6} ({:.1} MiB)   \
                 after <= 2x idle: {:<6} ({:.1} MiB, {:.2}x)   oversold 0: {:<6} ({})   \
                 reads beside: wait <= 2 s {} (max {:.0} ms), p99 <= 1 s {} ({:.0} ms)",
                backend.name,
                verdict(waited),
                ms(max),
                holds.all.over_2s,
                holds.wrk.timeouts,
                row.reads.listen_drops,
                verdict(p99),
                ms(holds.answered.p99),
                verdict(peak),
                mib(row.reads.peak_kib),
                verdict(after),
                mib(row.reads.after_kib),
                row.reads.after_kib as f64 / backend.idle_kib as f64,
                verdict(row.oversold == 0),
                row.oversold,
                verdict(reads_waited),
                reads_max,
                verdict(reads_p99),
                reads_p99_value,
            );
            if row.connections != TARGET_CONNECTIONS {
                continue;
            }
            let row_missed = [
                (!waited).then(|| {
                    format!(
                        "no hold waits over 2 s (max {:.0} ms, {} over 2 s, {} over 10 s, {} listen drops)",
                        ms(max),
                        holds.all.over_2s,
                        holds.wrk.timeouts,
                        row.reads.listen_drops
                    )
                }),
                (!p99).then(|| format!("p99 of answered holds <= 1 s ({:.0} ms)", ms(holds.answered.p99))),
                (!peak).then(|| format!("peak RSS <= 128 MiB ({:.1} MiB)", mib(row.reads.peak_kib))),
                (!after).then(|| {
                    format!(
                        "RSS after <= 2x idle ({:.1} MiB, {:.2}x)",
                        mib(row.reads.after_kib),
                        row.reads.after_kib as f64 / backend.idle_kib as f64
                    )
                }),
                (!reads_waited).then(|| {
                    format!("no read beside the holds waits over 2 s (max {reads_max:.0} ms)")
                }),
                (!reads_p99)
                    .then(|| format!("p99 of the reads beside the holds <= 1 s ({reads_p99_value:.0} ms)")),
            ];
            missed.extend(
                row_missed
                    .into_iter()
                    .flatten()
                    .map(|target| format!("{} {label}: {target}", backend.name)),
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
    let most = knobs.counts.iter().copied().max().unwrap_or(0)
        + if knobs.holds { knobs.readers } else { 0 };
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
    if knobs.holds {
        println!(
            "holds: at {HOLDS_MIN_CONNECTIONS} connections and more, wrk -t{WRK_THREADS} -cN with a Lua script POSTs /api/v1/bookings, \
             one seat of experience {SALE_EXPERIENCE}'s primary pax type on one slot per row (holdSeconds {HOLD_SECONDS}), \
             each with an Idempotency-Key of its own, while wrk -t1 -c{} reads that day's /slots (the row after it)",
            knobs.readers
        );
        println!(
            "holds columns: seats = what the sale can sell (the smaller of the slot's pool and its primary pax type's) before the row; 201 / 409 (insufficient_capacity) / 503 (overloaded) / other answers; \
             p50, p99 of the answered (201, 409), max of all; >2s = answers after 2 s; >10s = given up by wrk; \
             unans = in flight when wrk stopped; held = the held balance of the pax type's pool in the ledger once they landed; \
             sold out = from the row's start to the last seat held; oversold = seats held or won beyond the pools' seats; \
             verify = GET /api/v1/ledger/verify"
        );
    }
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    let wanted = |backend: &str| only.is_empty() || only.iter().any(|arg| arg == backend);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut backends = Vec::new();

    print_header();
    if knobs.holds {
        print_holds_header();
    }
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

    let broken: Vec<String> = backends
        .iter()
        .flat_map(|backend| {
            backend.holds.iter().flat_map(move |row| {
                row.broken().into_iter().map(move |broken| {
                    format!(
                        "{} holds at {} connections: {broken}",
                        backend.name, row.connections
                    )
                })
            })
        })
        .collect();
    let mut missed = Vec::new();
    if knobs.counts.contains(&TARGET_CONNECTIONS) && !knobs.reads.is_empty() {
        println!();
        println!(
            "targets at {TARGET_CONNECTIONS} connections: no request waits over 2 s (answered or shed), \
             p99 <= 1 s, peak RSS <= 128 MiB, RSS {} s after <= 2x idle",
            knobs.settle.as_secs()
        );
        missed = print_targets(&backends);
    }
    if backends.iter().any(|backend| !backend.holds.is_empty()) {
        println!();
        println!(
            "holds: the same targets (p99 of the answered holds: 201 and 409), no seat oversold at any count, \
             and the reads beside them; judged at {TARGET_CONNECTIONS} connections"
        );
        missed.extend(print_holds_targets(&backends));
    }
    if !missed.is_empty() {
        eprintln!(
            "connections: {} target(s) MISSED at {TARGET_CONNECTIONS} connections:",
            missed.len()
        );
        for target in &missed {
            eprintln!("  {target}");
        }
    }
    if !broken.is_empty() {
        eprintln!("connections: the sale went wrong:");
        for broken in &broken {
            eprintln!("  {broken}");
        }
    }
    if missed.is_empty() && broken.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
