//! The one outbound pacer per partner key: every call waits here first.
//!
//! Calls are spaced evenly (GCRA with a burst of one) instead of bunched at the start of each
//! minute, and a 429 holds *every* caller until the partner's reset. It runs on tokio's clock,
//! so schedule tests with a paused clock exercise the real pacing.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::time::Instant;

/// The pacer runs this much slower than the quota, so clock skew between us and the partner
/// cannot push a 60-second window over it, while a backlog still drains at 99.5 % of the rate.
const SAFETY_MARGIN_PER_MILLE: u64 = 5;

/// The longest a 429's reset may hold the sync; a later reset is treated as a partner bug.
const MAX_RESET_WAIT: Duration = Duration::from_secs(300);

/// Time since the pacer was created, on tokio's (pausable) clock.
#[derive(Debug, Clone)]
struct TokioClock {
    start: Instant,
}

impl Clock for TokioClock {
    type Instant = Nanos;
    fn now(&self) -> Nanos {
        Nanos::from(self.start.elapsed())
    }
}

pub struct Pacer {
    limiter: RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Nanos>>,
    clock: TokioClock,
    rate_limit_per_minute: NonZeroU32,
    /// Set by a 429: nobody calls before this instant.
    hold_until: Mutex<Option<Instant>>,
    /// Callers wait their turn in arrival order (tokio's mutex is fair), so the most urgent
    /// day, which the engine hands out first, is also called first.
    turn: tokio::sync::Mutex<()>,
}

impl Pacer {
    pub fn new(rate_limit_per_minute: NonZeroU32) -> Self {
        let clock = TokioClock {
            start: Instant::now(),
        };
        Self {
            limiter: RateLimiter::direct_with_clock(
                pacing_quota(rate_limit_per_minute),
                clock.clone(),
            ),
            clock,
            rate_limit_per_minute,
            hold_until: Mutex::new(None),
            turn: tokio::sync::Mutex::new(()),
        }
    }

    pub fn rate_limit_per_minute(&self) -> NonZeroU32 {
        self.rate_limit_per_minute
    }

    /// The spacing between two calls.
    pub fn period(&self) -> Duration {
        pacing_quota(self.rate_limit_per_minute).replenish_interval()
    }

    /// Waits for the hold (if any) and then for this call's turn. Cancel-safe: a caller dropped
    /// while waiting spends no budget.
    pub async fn until_ready(&self) {
        let _turn = self.turn.lock().await;
        loop {
            if let Some(until) = self.held_until() {
                tokio::time::sleep_until(until).await;
                continue;
            }
            match self.limiter.check() {
                Ok(()) => return,
                Err(not_until) => {
                    tokio::time::sleep(not_until.wait_time_from(self.clock.now())).await;
                }
            }
        }
    }

    /// Holds every caller until `until` (a 429's reset); an earlier hold never shortens a
    /// later one.
    pub fn hold_until(&self, until: Instant) {
        let mut hold = self.lock_hold();
        if hold.is_none_or(|current| current < until) {
            *hold = Some(until);
        }
    }

    /// Holds every caller until a 429's `rateLimitState.reset` plus jitter, so the calls
    /// queued behind it do not each earn their own 429. Without a usable reset, holds for a
    /// couple of periods; a reset absurdly far away is capped rather than stalling the sync.
    pub fn hold_for_reset(&self, reset_at: Option<DateTime<Utc>>) {
        let fallback = (self.period() * 2).max(Duration::from_secs(1));
        let wait = reset_at
            .and_then(|reset_at| (reset_at - Utc::now()).to_std().ok())
            .unwrap_or(fallback)
            .min(MAX_RESET_WAIT);
        let jitter = Duration::from_millis(rand::random_range(0..500));
        self.hold_until(Instant::now() + wait + jitter);
    }

    fn held_until(&self) -> Option<Instant> {
        let mut hold = self.lock_hold();
        match *hold {
            Some(until) if until > Instant::now() => Some(until),
            _ => {
                *hold = None;
                None
            }
        }
    }

    fn lock_hold(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        // An Option<Instant> cannot be left half-written by a panic.
        self.hold_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One call per `60 s / rpm`, stretched by the safety margin, with a burst of one.
fn pacing_quota(rate_limit_per_minute: NonZeroU32) -> Quota {
    let nanos_per_minute_with_margin: u64 =
        60_000_000_000 * (1000 + SAFETY_MARGIN_PER_MILLE) / 1000;
    let period =
        Duration::from_nanos(nanos_per_minute_with_margin / u64::from(rate_limit_per_minute.get()));
    Quota::with_period(period)
        .expect("period is at least 14 ns even at u32::MAX requests per minute")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacing_never_exceeds_the_quota_in_a_minute() {
        for rpm in [1, 2, 29, 30, 31, 600, 10_000] {
            let rpm = NonZeroU32::new(rpm).expect("non-zero");
            let period = pacing_quota(rpm).replenish_interval();
            // Calls at least `period` apart: a closed 60 s window holds at most 60/period + 1.
            let max_in_window = (Duration::from_secs(60).as_nanos() / period.as_nanos()) + 1;
            assert!(
                max_in_window <= u128::from(rpm.get()),
                "rpm {rpm}: {max_in_window}"
            );
            // ...while draining at no less than 99 % of the quota.
            let minute = Duration::from_secs(60).as_nanos();
            assert!(
                period.as_nanos() * u128::from(rpm.get()) * 99 <= minute * 100,
                "rpm {rpm}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_backlog_drains_at_the_rate_and_a_hold_stops_everyone() {
        let pacer = Pacer::new(NonZeroU32::new(30).expect("non-zero"));
        let start = Instant::now();
        for _ in 0..31 {
            pacer.until_ready().await;
        }
        // 31 calls: the first at once, then 30 periods of 2.01 s.
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_secs(60), "{elapsed:?}");
        assert!(elapsed <= Duration::from_millis(60_400), "{elapsed:?}");

        let hold = Instant::now() + Duration::from_secs(45);
        pacer.hold_until(hold);
        pacer.hold_until(Instant::now() + Duration::from_secs(5));
        pacer.until_ready().await;
        assert!(Instant::now() >= hold);
    }
}
