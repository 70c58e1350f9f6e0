//! Pacing: drain a backlog against the built-in simulator (over HTTP, the simulator enforcing
//! the same limit) and report the rate achieved against the rate allowed, and the busiest
//! 60-second window.
//!
//! `cargo bench --bench pacing` (takes about 5 minutes: it runs in real time).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate};
use invsync::domain::{ExperienceId, Secret};
use invsync::partner::{PartnerClient, PartnerClientConfig};
use invsync::simulator::{Simulator, SimulatorConfig};

/// Calls in flight at once, as the engine's workers.
const CALLERS: usize = 3;

async fn drain(rate_limit_per_minute: u32, calls: usize) {
    let rate = NonZeroU32::new(rate_limit_per_minute).expect("non-zero");
    let sim = Simulator::new(SimulatorConfig {
        rate_limit_per_minute: rate,
        ..SimulatorConfig::new(Secret::new("bench"))
    })
    .spawn_local()
    .await
    .expect("simulator");
    let client = PartnerClient::new(PartnerClientConfig {
        base_url: sim.base_url(),
        api_key: Secret::new("bench"),
        rate_limit_per_minute: rate,
        request_timeout: Duration::from_secs(10),
        protocol: invsync::partner::Protocol::Leap,
    })
    .expect("client");
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let first_day = NaiveDate::from_ymd_opt(2027, 1, 1).expect("date");
    let started = Instant::now();
    let callers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (client, next) = (client.clone(), next.clone());
            tokio::spawn(async move {
                let id = ExperienceId::try_from(14).expect("id");
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if n >= calls {
                        return;
                    }
                    let date = first_day + Days::new(n as u64);
                    // A 429 would show in the log below; nothing is retried here.
                    let _ = client.fetch_day(id, date).await;
                }
            })
        })
        .collect();
    for caller in callers {
        caller.await.expect("caller");
    }
    let elapsed = started.elapsed();
    let log = sim.sim.calls();
    let span = log
        .last()
        .zip(log.first())
        .map(|(last, first)| last.arrived.duration_since(first.arrived))
        .unwrap_or_default();
    // n calls evenly paced span n − 1 periods.
    let achieved = (log.len() - 1) as f64 * 60.0 / span.as_secs_f64();
    let busiest = sim.sim.max_calls_in_any_window(Duration::from_secs(60));
    let refused = log.iter().filter(|call| call.status == 429).count();
    println!(
        "{rate_limit_per_minute:>5} rpm allowed: {calls} calls in {:.1} s, achieved {achieved:.2} rpm ({:.2} % of the limit), busiest 60 s window {busiest} (limit {rate_limit_per_minute}), 429s {refused}",
        elapsed.as_secs_f64(),
        achieved * 100.0 / f64::from(rate_limit_per_minute),
    );
}

#[tokio::main]
async fn main() {
    println!("pacing: a backlog drained through the shared pacer by {CALLERS} callers");
    drain(30, 61).await;
    drain(600, 1_001).await;
    // 10 ms apart: tokio's 1 ms timer resolution is a tenth of the period.
    drain(6_000, 7_001).await;
}
