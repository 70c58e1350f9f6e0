//! Logging and metrics.
//!
//! Logs are human-readable by default, JSON with `log.format = "json"`; `RUST_LOG` filters.
//! Metrics go to one process-wide Prometheus recorder with no listener of its own: the API
//! serves them at `GET /metrics`.

use std::io::IsTerminal;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use metrics::Unit;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colours only for a person at a terminal, never escape codes in a log file.
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    // A second init (tests building several apps) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Metric names, in base units with Prometheus suffixes.
pub mod names {
    pub const PARTNER_REQUESTS: &str = "invsync_partner_requests_total";
    pub const PARTNER_REQUEST_DURATION: &str = "invsync_partner_request_duration_seconds";
    pub const HTTP_REQUESTS: &str = "invsync_http_requests_total";
    pub const HTTP_REQUEST_DURATION: &str = "invsync_http_request_duration_seconds";
    pub const HTTP_SHED: &str = "invsync_http_shed_total";
    pub const SYNC_QUEUE_PENDING: &str = "invsync_sync_queue_pending";
    pub const SYNC_IN_FLIGHT: &str = "invsync_sync_in_flight";
    pub const SYNC_PARKED_DAYS: &str = "invsync_sync_parked_days";
    pub const SYNC_PAUSED: &str = "invsync_sync_paused";
    pub const SYNC_CALLS: &str = "invsync_sync_partner_calls_total";
    pub const SYNC_RATE_LIMITED: &str = "invsync_sync_rate_limited_total";
    pub const SYNC_RETRIES: &str = "invsync_sync_retries_total";
    pub const SYNC_FAILURES: &str = "invsync_sync_failures_total";
    pub const SYNC_DAYS_APPLIED: &str = "invsync_sync_days_applied_total";
    pub const LEDGER_TRANSFERS_POSTED: &str = "invsync_ledger_transfers_posted_total";
    pub const TIER_LAST_SUCCESS: &str = "invsync_sync_tier_last_success_timestamp_seconds";
    pub const BOOKINGS: &str = "invsync_bookings_total";
    pub const SEATS_ON_HOLD: &str = "invsync_bookings_seats_on_hold";
    pub const SHORTFALL_SEATS: &str = "invsync_ledger_shortfall_seats";
}

/// Partner calls take up to the request timeout (20 s by default).
const PARTNER_BUCKETS: &[f64] = &[0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0];
/// API requests are database reads: milliseconds, a slow `verify` in seconds.
const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Histogram samples are buffered until drained; this bounds the buffer between scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The process's metrics: the Prometheus recorder's handle, and a lock that makes a scrape's
/// "set the sampled values, then render" one step (several apps share it in tests).
pub struct Metrics {
    handle: PrometheusHandle,
    scrape: Mutex<()>,
}

impl Metrics {
    /// Records `sample` (values read at scrape time) and renders every metric as Prometheus
    /// text, with no other scrape in between.
    pub fn render_with(&self, sample: impl FnOnce()) -> String {
        let _scrape = self
            .scrape
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        sample();
        self.handle.render()
    }
}

/// The process-wide recorder, installed on first use; later calls (another `Application` in
/// the same test process) share it.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(install_recorder)
}

fn install_recorder() -> Metrics {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(names::PARTNER_REQUEST_DURATION.into()),
            PARTNER_BUCKETS,
        )
        .and_then(|builder| {
            builder.set_buckets_for_metric(
                Matcher::Full(names::HTTP_REQUEST_DURATION.into()),
                HTTP_BUCKETS,
            )
        })
        .expect("bucket lists are non-empty constants")
        .build_recorder();
    let handle = recorder.handle();
    if let Err(error) = metrics::set_global_recorder(recorder) {
        tracing::warn!(%error, "another metrics recorder is installed; /metrics stays empty");
    }
    describe();
    let upkeep = handle.clone();
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                upkeep.run_upkeep();
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "cannot start the metrics upkeep thread");
    }
    Metrics {
        handle,
        scrape: Mutex::new(()),
    }
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    use names::*;
    describe_counter!(
        PARTNER_REQUESTS,
        Unit::Count,
        "Partner inventory calls by outcome: ok, rate_limited, unauthorized, bad_request, transient, malformed"
    );
    describe_histogram!(
        PARTNER_REQUEST_DURATION,
        Unit::Seconds,
        "Partner inventory call latency (after the pacer's wait), by outcome"
    );
    describe_counter!(
        HTTP_REQUESTS,
        Unit::Count,
        "API requests by method, route template and status"
    );
    describe_histogram!(
        HTTP_REQUEST_DURATION,
        Unit::Seconds,
        "API request latency by method, route template and status"
    );
    describe_counter!(
        HTTP_SHED,
        Unit::Count,
        "API requests answered 503 overloaded after waiting the queue budget, by class (read, write)"
    );
    describe_gauge!(
        SYNC_QUEUE_PENDING,
        Unit::Count,
        "Product-dates queued for a partner call"
    );
    describe_gauge!(
        SYNC_IN_FLIGHT,
        Unit::Count,
        "Product-dates being fetched or applied"
    );
    describe_gauge!(
        SYNC_PARKED_DAYS,
        Unit::Count,
        "Days whose retries ran out this cycle (retried by the next tier run)"
    );
    describe_gauge!(SYNC_PAUSED, "1 while the sync is paused, else 0");
    describe_counter!(
        SYNC_CALLS,
        Unit::Count,
        "Partner calls made by the sync engine, retries included"
    );
    describe_counter!(SYNC_RATE_LIMITED, Unit::Count, "Partner 429 answers");
    describe_counter!(
        SYNC_RETRIES,
        Unit::Count,
        "Partner calls retried after a transient failure"
    );
    describe_counter!(
        SYNC_FAILURES,
        Unit::Count,
        "Days given up for the cycle (retries exhausted or apply failed)"
    );
    describe_counter!(
        SYNC_DAYS_APPLIED,
        Unit::Count,
        "Fetched days applied to the store"
    );
    describe_counter!(
        LEDGER_TRANSFERS_POSTED,
        Unit::Count,
        "Ledger transfers posted by applied days"
    );
    describe_counter!(
        BOOKINGS,
        Unit::Count,
        "Booking calls by outcome: held, confirmed, cancelled, expired, refused_capacity, refused (other refusals), replayed"
    );
    describe_gauge!(
        SEATS_ON_HOLD,
        Unit::Count,
        "Seats on hold for customers across every slot"
    );
    describe_gauge!(
        SHORTFALL_SEATS,
        Unit::Count,
        "Seats held or sold beyond the partner's allotment, by experience"
    );
    describe_gauge!(
        TIER_LAST_SUCCESS,
        Unit::Seconds,
        "Unix time of each tier's last run without a failed day; 0 before the first"
    );
}
