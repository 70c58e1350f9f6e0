//! The one outbound pacer per partner key: every call waits here first.
//!
//! Calls go out at evenly spaced slots, one period apart, instead of bunched at the start of
//! each minute, and a 429 holds *every* caller until the partner's reset. It runs on tokio's
//! clock, so schedule tests with a paused clock exercise the real pacing.
//!
//! Two rules keep the partner's 60-second window safe while a backlog drains at 99.5 % of the
//! quota:
//! - **Slots, not gaps.** Each slot is one period after the previous *slot*, not after the
//!   previous call's actual start: tokio's timers fire up to a millisecond late (more on a busy
//!   machine), and carrying that forward would stretch every period (≈1 % at 600 rpm). A call
//!   that waited for its slot and started late keeps it, up to half a period late, so starts
//!   are never closer than half a period; a call that finds the pacer idle starts now.
//! - **The window guard.** The partner counts a call at some moment between our sending it
//!   and our receiving its answer. So a call never starts before the call `limit` calls
//!   earlier was answered a full window ago: then no 60-second window at the partner can hold
//!   more than `limit` calls, whatever the network's latency. The period leaves
//!   [`ANSWER_BUDGET`] spare per window, so the guard delays nothing while each answer comes
//!   within that long of its slot.
//!
//! The guard is only as good as the answer times it is given, hence two more rules:
//! - **No answer, no earlier than the deadline.** A call counts as answered when its permit is
//!   settled with [`CallPermit::answered`] (a response came back) or
//!   [`CallPermit::not_sent`]. A permit dropped without either (the future was cancelled, the
//!   call timed out, the connection broke after the request may have left) counts as answered
//!   at its deadline, its start plus the call timeout, if that is later than now: until then
//!   the partner may still count the request.
//! - **A 429 holds before it lets go.** [`CallPermit::rate_limited`] sets the hold and records
//!   the answer in one step, so no caller can see the call answered but not yet the hold, slip
//!   out and draw a second 429.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio::time::Instant;

/// The partner's rate-limit window.
const WINDOW: Duration = Duration::from_secs(60);

/// `limit` periods span the window plus this: a call answered within this long after its slot
/// never delays the call `limit` slots later (the window guard), and the pacer still drains a
/// backlog at 60 / 60.3 = 99.5 % of the quota, at any rate.
const ANSWER_BUDGET: Duration = Duration::from_millis(300);

/// The longest a 429's reset may hold the sync; a later reset is treated as a partner bug.
const MAX_RESET_WAIT: Duration = Duration::from_secs(300);

pub struct Pacer {
    rate_limit_per_minute: NonZeroU32,
    period: Duration,
    /// How long a call may take before its caller gives up on it.
    call_timeout: Duration,
    schedule: Mutex<Schedule>,
    /// Signalled whenever a call is answered, for a caller held by the window guard.
    answered: Notify,
    /// Callers wait their turn in arrival order (tokio's mutex is fair), so the most urgent
    /// day, which the engine hands out first, is also called first.
    turn: tokio::sync::Mutex<()>,
}

struct Schedule {
    /// The next call's slot: no call starts before it.
    next_slot: Instant,
    /// Set by a 429: nobody calls before this instant.
    hold_until: Option<Instant>,
    /// The latest calls (at most `limit`), oldest first: when each was answered, `None` while
    /// it is in flight.
    recent: VecDeque<Option<Instant>>,
    /// The sequence number of `recent[0]`.
    first_seq: u64,
}

/// The window guard waits for an answer that is not in yet.
struct InFlight;

/// One call's permission to go. Hold it until the call's answer is in, then settle it with
/// [`answered`](Self::answered) or [`rate_limited`](Self::rate_limited) (or
/// [`not_sent`](Self::not_sent)): the window guard counts on the answer time it records.
/// Dropping it unsettled records the call's deadline, or now if that is later.
pub struct CallPermit<'a> {
    pacer: &'a Pacer,
    seq: u64,
    /// The partner may count the call until then, even after we stop waiting for it.
    deadline: Instant,
    settled: bool,
}

impl CallPermit<'_> {
    /// A response came back (any status): the partner counted the call by now.
    pub fn answered(mut self) {
        self.settle(Instant::now(), None);
    }

    /// Nothing went out (the caller withheld it, or no connection could be made): the partner
    /// can never count it.
    pub fn not_sent(mut self) {
        self.settle(Instant::now(), None);
    }

    /// A 429 came back: holds every caller until its reset, in the same step that marks the
    /// call answered.
    pub fn rate_limited(mut self, reset_at: Option<DateTime<Utc>>) {
        let hold = self.pacer.reset_hold(reset_at);
        self.settle(Instant::now(), Some(hold));
    }

    fn settle(&mut self, answered_at: Instant, hold: Option<Instant>) {
        if std::mem::replace(&mut self.settled, true) {
            return;
        }
        {
            let mut schedule = self.pacer.lock_schedule();
            if let Some(hold) = hold {
                schedule.hold_until(hold);
            }
            schedule.mark_answered(self.seq, answered_at);
        }
        self.pacer.answered.notify_one();
    }
}

impl Drop for CallPermit<'_> {
    fn drop(&mut self) {
        // Given up on (cancelled, timed out, connection lost): it may still reach the partner.
        let at = Instant::now().max(self.deadline);
        self.settle(at, None);
    }
}

impl Pacer {
    /// Paces calls to `rate_limit_per_minute`; a caller gives up on a call after
    /// `call_timeout` (the partner may count it until then).
    pub fn new(rate_limit_per_minute: NonZeroU32, call_timeout: Duration) -> Self {
        Self {
            rate_limit_per_minute,
            period: pacing_period(rate_limit_per_minute),
            call_timeout,
            schedule: Mutex::new(Schedule {
                next_slot: Instant::now(),
                hold_until: None,
                recent: VecDeque::new(),
                first_seq: 0,
            }),
            answered: Notify::new(),
            turn: tokio::sync::Mutex::new(()),
        }
    }

    pub fn rate_limit_per_minute(&self) -> NonZeroU32 {
        self.rate_limit_per_minute
    }

    /// The spacing between two calls.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Waits for the hold (if any), this call's slot and the window guard. Cancel-safe: a
    /// caller dropped while waiting spends no budget.
    pub async fn until_ready(&self) -> CallPermit<'_> {
        let _turn = self.turn.lock().await;
        // A call that finds the pacer idle starts now: only one that waited keeps its slot.
        let arrived = Instant::now();
        let limit = usize::try_from(self.rate_limit_per_minute.get()).unwrap_or(usize::MAX);
        loop {
            let now = Instant::now();
            let wait = {
                let mut schedule = self.lock_schedule();
                match schedule.earliest_start(limit) {
                    Ok(start) if start <= now => {
                        let seq = schedule.start_call(start.max(arrived), now, self.period, limit);
                        return CallPermit {
                            pacer: self,
                            seq,
                            deadline: now + self.call_timeout,
                            settled: false,
                        };
                    }
                    wait => wait,
                }
            };
            match wait {
                Ok(start) => tokio::time::sleep_until(start).await,
                // A stale wake-up from an earlier answer only costs another look.
                Err(InFlight) => self.answered.notified().await,
            }
        }
    }

    /// Holds every caller until `until` (a 429's reset); an earlier hold never shortens a
    /// later one.
    pub fn hold_until(&self, until: Instant) {
        self.lock_schedule().hold_until(until);
    }

    /// The end of the hold for a 429: its `rateLimitState.reset` plus jitter, so the calls
    /// queued behind it do not each earn their own 429. Without a usable reset, a couple of
    /// periods; a reset absurdly far away is capped rather than stalling the sync.
    fn reset_hold(&self, reset_at: Option<DateTime<Utc>>) -> Instant {
        let fallback = (self.period() * 2).max(Duration::from_secs(1));
        let wait = reset_at
            .and_then(|reset_at| (reset_at - Utc::now()).to_std().ok())
            .unwrap_or(fallback)
            .min(MAX_RESET_WAIT);
        let jitter = Duration::from_millis(rand::random_range(0..500));
        Instant::now() + wait + jitter
    }

    fn lock_schedule(&self) -> MutexGuard<'_, Schedule> {
        // Every update of the schedule is a few assignments that cannot panic halfway.
        self.schedule
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Schedule {
    /// An earlier hold never shortens a later one.
    fn hold_until(&mut self, until: Instant) {
        if self.hold_until.is_none_or(|current| current < until) {
            self.hold_until = Some(until);
        }
    }

    /// The earliest instant the next call may start: its slot, the hold, and one window after
    /// the answer to the call `limit` calls before it.
    fn earliest_start(&self, limit: usize) -> Result<Instant, InFlight> {
        let mut earliest = self.next_slot;
        if let Some(hold) = self.hold_until {
            earliest = earliest.max(hold);
        }
        if self.recent.len() >= limit
            && let Some(oldest) = self.recent.front()
        {
            earliest = earliest.max(oldest.ok_or(InFlight)? + WINDOW);
        }
        Ok(earliest)
    }

    /// Records a call starting `now` for the slot `start`, and returns its sequence number.
    fn start_call(&mut self, start: Instant, now: Instant, period: Duration, limit: usize) -> u64 {
        let late = now.saturating_duration_since(start);
        self.next_slot = now + period - late.min(period / 2);
        self.recent.push_back(None);
        if self.recent.len() > limit {
            self.recent.pop_front();
            self.first_seq += 1;
        }
        self.first_seq + (self.recent.len() as u64 - 1)
    }

    fn mark_answered(&mut self, seq: u64, at: Instant) {
        let index = seq
            .checked_sub(self.first_seq)
            .and_then(|index| usize::try_from(index).ok());
        if let Some(answered) = index.and_then(|index| self.recent.get_mut(index)) {
            *answered = Some(at);
        }
    }
}

/// `(60 s + ANSWER_BUDGET) / rpm`, rounded up so that `rpm` periods never span less.
fn pacing_period(rate_limit_per_minute: NonZeroU32) -> Duration {
    let span = (WINDOW + ANSWER_BUDGET).as_nanos();
    let period = span.div_ceil(u128::from(rate_limit_per_minute.get()));
    Duration::from_nanos(u64::try_from(period).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use std::pin::pin;
    use std::sync::Arc;
    use std::task::{Context, Wake, Waker};

    use super::*;

    const CALL_TIMEOUT: Duration = Duration::from_secs(20);

    fn pacer(rpm: u32) -> Pacer {
        Pacer::new(NonZeroU32::new(rpm).expect("non-zero"), CALL_TIMEOUT)
    }

    #[test]
    fn limit_periods_span_the_window_plus_the_answer_budget() {
        for rpm in [1, 2, 29, 30, 31, 600, 6_000, 60_000] {
            let limit_periods = pacer(rpm).period().as_nanos() * u128::from(rpm);
            assert!(
                limit_periods >= (WINDOW + ANSWER_BUDGET).as_nanos(),
                "rpm {rpm}"
            );
            // 60 / 60.3 of the quota, within a nanosecond per period of rounding.
            let rounding = u128::from(rpm);
            assert!(
                limit_periods <= (WINDOW + ANSWER_BUDGET).as_nanos() + rounding,
                "rpm {rpm}"
            );
        }
    }

    /// Starts `calls` calls one after the other, each answered at once; returns the time taken.
    async fn drain(pacer: &Pacer, calls: u32) -> Duration {
        let start = Instant::now();
        for _ in 0..calls {
            pacer.until_ready().await.answered();
        }
        start.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn a_backlog_drains_at_exactly_one_call_per_period() {
        // 100.5 ms is not a whole number of tokio's 1 ms timer ticks, so every wake-up is late;
        // the slots must not drift by it.
        let pacer = pacer(600);
        let elapsed = drain(&pacer, 601).await;
        let expected = pacer.period() * 600;
        assert!(
            elapsed >= expected && elapsed <= expected + Duration::from_millis(2),
            "{elapsed:?} for 600 periods of {:?}",
            pacer.period()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_hold_stops_everyone_and_an_earlier_hold_does_not_shorten_it() {
        let pacer = pacer(30);
        drain(&pacer, 2).await;
        let hold = Instant::now() + Duration::from_secs(45);
        pacer.hold_until(hold);
        pacer.hold_until(Instant::now() + Duration::from_secs(5));
        pacer.until_ready().await.answered();
        assert!(Instant::now() >= hold);
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_answer_holds_back_the_call_a_full_limit_later() {
        let pacer = pacer(30);
        let first = pacer.until_ready().await;
        let answer_late = async {
            tokio::time::sleep(Duration::from_secs(70)).await;
            first.answered();
            Instant::now()
        };
        let next_limit_calls = async {
            drain(&pacer, 29).await;
            pacer.until_ready().await.answered();
            Instant::now()
        };
        let (answered, thirtieth_later_started) = tokio::join!(answer_late, next_limit_calls);
        assert!(thirtieth_later_started >= answered + WINDOW);
        assert!(thirtieth_later_started <= answered + WINDOW + Duration::from_millis(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_given_up_early_counts_as_answered_at_its_deadline() {
        let pacer = pacer(30);
        let started = Instant::now();
        let first = pacer.until_ready().await;
        // Cancelled a second in: the request may be at the partner already, and the partner
        // may count it any time until the call's deadline.
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(first);
        drain(&pacer, 29).await;
        pacer.until_ready().await.answered();
        // Counted as answered at the drop (1 s), the call would start at 61 s.
        let deadline = started + CALL_TIMEOUT;
        assert!(
            Instant::now() >= deadline + WINDOW,
            "{:?}",
            started.elapsed()
        );
        assert!(Instant::now() <= deadline + WINDOW + Duration::from_millis(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_given_up_after_its_deadline_counts_as_answered_then() {
        let pacer = pacer(30);
        let first = pacer.until_ready().await;
        tokio::time::sleep(CALL_TIMEOUT + Duration::from_secs(5)).await;
        drop(first);
        let dropped = Instant::now();
        drain(&pacer, 29).await;
        pacer.until_ready().await.answered();
        assert!(Instant::now() >= dropped + WINDOW);
        assert!(Instant::now() <= dropped + WINDOW + Duration::from_millis(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_not_sent_counts_as_answered_at_once() {
        let pacer = pacer(30);
        let started = Instant::now();
        let first = pacer.until_ready().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        first.not_sent();
        drain(&pacer, 29).await;
        pacer.until_ready().await.answered();
        assert!(
            Instant::now() <= started + Duration::from_secs(1) + WINDOW + Duration::from_millis(1)
        );
    }

    /// The caller queued on the window guard behind a 429 is woken by that very answer: it
    /// must find the hold in place, and wait for the reset, not just for the window.
    #[tokio::test(start_paused = true)]
    async fn a_429_holds_the_caller_waiting_behind_it_until_the_reset() {
        // One call a minute: the second caller waits on the first one's answer.
        let pacer = pacer(1);
        let first = pacer.until_ready().await;
        let reset_in = Duration::from_secs(90);
        let answer_429 = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            let reset_at = Utc::now() + reset_in;
            first.rate_limited(Some(reset_at));
            Instant::now()
        };
        let queued = async {
            let permit = pacer.until_ready().await;
            let started = Instant::now();
            permit.answered();
            started
        };
        let (answered, queued_started) = tokio::join!(answer_429, queued);
        // The reset, less the wall-clock milliseconds between reading `Utc::now()` twice.
        assert!(
            queued_started >= answered + reset_in - Duration::from_millis(50),
            "started {:?} after the 429",
            queued_started - answered
        );
    }

    /// Looks at the schedule the moment it is woken, as the woken caller is about to.
    struct Peek {
        pacer: Arc<Pacer>,
        saw_hold: Mutex<Option<bool>>,
    }

    impl Wake for Peek {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            let hold = self.pacer.lock_schedule().hold_until.is_some();
            *self.saw_hold.lock().expect("not poisoned") = Some(hold);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_woken_by_a_429_already_sees_its_hold() {
        let pacer = Arc::new(pacer(1));
        let first = pacer.until_ready().await;
        let peek = Arc::new(Peek {
            pacer: Arc::clone(&pacer),
            saw_hold: Mutex::new(None),
        });
        let waker = Waker::from(Arc::clone(&peek));
        // Parked on the window guard, waiting for the first call's answer.
        let mut queued = pin!(pacer.until_ready());
        assert!(
            queued
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
        first.rate_limited(None);
        assert_eq!(*peek.saw_hold.lock().expect("not poisoned"), Some(true));
    }
}
