//! Admission: a request waits for a handler slot of its class at most the queue budget, then
//! is shed with `503 overloaded` and `Retry-After`, so a burst of clients gets fast answers
//! instead of queueing for seconds. Reads and writes have separate slots, so a flood of one
//! never starves the other; liveness, readiness and metrics are never shed. The server loop
//! admits a request before the router sees it (`super::server`): a waiting request holds
//! only itself, none of the middleware's state.
//!
//! While requests queue only briefly, a freed slot goes to the oldest waiter. Once the oldest
//! has waited three quarters of the budget (a standing queue: more arrive than are served),
//! it goes to the newest instead (adaptive LIFO, as in Facebook's "Fail at Scale"): first come first served,
//! every request of a sustained flood would wait nearly the whole budget, and the ones that
//! made it would be as late as the shed ones. Newest first, the requests that are served are
//! served at once, and the oldest are shed when their budget runs out.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::http::Method;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::error::AppError;
use crate::config::ServerSettings;
use crate::telemetry::names;

/// Paths every probe must reach whatever the load.
const NEVER_SHED: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

#[derive(Clone)]
pub struct Admission {
    reads: Arc<Slots>,
    writes: Arc<Slots>,
    queue_budget: Duration,
}

/// The handler slots of one class of requests.
struct Slots {
    state: Mutex<SlotsState>,
    /// Three quarters of the queue budget: a queue whose oldest waiter has waited this long
    /// is standing.
    standing_after: Duration,
}

struct SlotsState {
    free: usize,
    /// Waiters, oldest first, with when each began to wait; one whose budget ran out has
    /// closed its receiver.
    waiting: VecDeque<(Instant, oneshot::Sender<()>)>,
}

/// A slot held by a request until its answer is made.
struct HandlerSlot(Arc<Slots>);

/// What admission gave a request: a slot held until it is dropped, or none for a probe.
pub struct Admitted {
    _slot: Option<HandlerSlot>,
}

impl Slots {
    fn new(slots: usize, budget: Duration) -> Self {
        Self {
            state: Mutex::new(SlotsState {
                free: slots,
                waiting: VecDeque::new(),
            }),
            standing_after: budget * 3 / 4,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SlotsState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot, or `None` if none came free by `arrived` + `budget`.
    async fn acquire(self: &Arc<Self>, arrived: Instant, budget: Duration) -> Option<HandlerSlot> {
        let mut waiter = {
            let mut state = self.state();
            if state.free > 0 {
                state.free -= 1;
                return Some(HandlerSlot(self.clone()));
            }
            let (grant, granted) = oneshot::channel();
            state.waiting.push_back((arrived, grant));
            Waiter {
                slots: self,
                granted,
            }
        };
        let granted = tokio::time::timeout_at(arrived + budget, &mut waiter.granted).await;
        // Whatever happened, the waiter's drop hands on a slot it was given too late.
        waiter.granted.close();
        match (granted, waiter.granted.try_recv()) {
            (Ok(Ok(())), _) | (_, Ok(())) => Some(HandlerSlot(self.clone())),
            _ => None,
        }
    }
}

/// A request waiting for a slot. Dropped before it got one (shed, or its client gone), it
/// passes on a slot handed to it meanwhile, so none is lost.
struct Waiter<'a> {
    slots: &'a Arc<Slots>,
    granted: oneshot::Receiver<()>,
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.granted.close();
        if self.granted.try_recv().is_ok() {
            drop(HandlerSlot(self.slots.clone()));
        }
    }
}

impl Drop for HandlerSlot {
    fn drop(&mut self) {
        let mut state = self.0.state();
        // Waiters already shed are dropped from the oldest end as they come, so the queue
        // holds only its live waiters and whatever the newest end has not reached yet.
        while state
            .waiting
            .front()
            .is_some_and(|(_, waiter)| waiter.is_closed())
        {
            state.waiting.pop_front();
        }
        let standing = state
            .waiting
            .front()
            .is_some_and(|(since, _)| since.elapsed() >= self.0.standing_after);
        loop {
            let next = if standing {
                state.waiting.pop_back()
            } else {
                state.waiting.pop_front()
            };
            let Some((_, waiter)) = next else { break };
            if waiter.send(()).is_ok() {
                return;
            }
        }
        state.free += 1;
    }
}

/// A request's class: reads and writes have handler slots (and intake places) of their own.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Class {
    Read = 0,
    Write = 1,
}

impl Class {
    /// `GET`, `HEAD` and `OPTIONS` read; every other method writes.
    pub(super) fn of_method(method: &Method) -> Self {
        match *method {
            Method::GET | Method::HEAD | Method::OPTIONS => Self::Read,
            _ => Self::Write,
        }
    }

    /// The class whose slot a request waits for; `None` for a probe, never shed.
    fn of(method: &Method, path: &str) -> Option<Self> {
        if NEVER_SHED.contains(&path) {
            return None;
        }
        Some(Self::of_method(method))
    }

    fn label(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }
}

impl Admission {
    pub fn new(settings: &ServerSettings) -> Self {
        let budget = settings.queue_budget();
        let slots = |limit: std::num::NonZeroU32| {
            Arc::new(Slots::new(
                usize::try_from(limit.get()).unwrap_or(usize::MAX),
                budget,
            ))
        };
        Self {
            reads: slots(settings.max_concurrent_reads),
            writes: slots(settings.max_concurrent_writes),
            queue_budget: budget,
        }
    }

    /// Waits for a handler slot of the request's class until the queue budget has passed
    /// since the request `arrived` (began to wait for intake); `Err` is the `503 overloaded`
    /// to answer instead.
    pub async fn admit(
        &self,
        method: &Method,
        path: &str,
        arrived: Instant,
    ) -> Result<Admitted, AppError> {
        let Some(class) = Class::of(method, path) else {
            return Ok(Admitted { _slot: None });
        };
        let slots = match class {
            Class::Read => &self.reads,
            Class::Write => &self.writes,
        };
        match slots.acquire(arrived, self.queue_budget).await {
            Some(slot) => Ok(Admitted { _slot: Some(slot) }),
            None => {
                metrics::counter!(names::HTTP_SHED, "class" => class.label()).increment(1);
                Err(AppError::Overloaded {
                    retry_after: self.queue_budget.as_secs().max(1),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUDGET: Duration = Duration::from_secs(1);

    /// Waiters on `slots` started one after another; each, once served, keeps its slot for
    /// the whole budget. Each answers whether it was served.
    async fn waiters(slots: &Arc<Slots>, count: usize) -> Vec<tokio::task::JoinHandle<bool>> {
        let mut started = Vec::new();
        for _ in 0..count {
            let slots = slots.clone();
            started.push(tokio::spawn(async move {
                let slot = slots.acquire(Instant::now(), BUDGET).await;
                tokio::time::sleep(BUDGET).await;
                slot.is_some()
            }));
            tokio::task::yield_now().await;
        }
        started
    }

    #[tokio::test(start_paused = true)]
    async fn a_short_queue_is_served_oldest_first() {
        let slots = Arc::new(Slots::new(1, BUDGET));
        let held = slots
            .acquire(Instant::now(), Duration::ZERO)
            .await
            .expect("a free slot");
        let mut waiting = waiters(&slots, 2).await;
        tokio::time::sleep(BUDGET / 10).await;
        drop(held);
        let newest = waiting.pop().expect("two");
        let oldest = waiting.pop().expect("two");
        assert!(oldest.await.expect("oldest"), "the oldest waiter is served");
        assert!(
            !newest.await.expect("newest"),
            "the newest waits out its budget"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_standing_queue_is_served_newest_first_and_sheds_the_oldest() {
        let slots = Arc::new(Slots::new(1, BUDGET));
        let held = slots
            .acquire(Instant::now(), Duration::ZERO)
            .await
            .expect("a free slot");
        let mut waiting = waiters(&slots, 2).await;
        tokio::time::sleep(BUDGET * 8 / 10).await;
        drop(held);
        let newest = waiting.pop().expect("two");
        let oldest = waiting.pop().expect("two");
        assert!(newest.await.expect("newest"), "the newest waiter is served");
        assert!(
            !oldest.await.expect("oldest"),
            "the oldest is shed at its budget"
        );
        // Nothing was lost: the one slot is free again.
        assert!(
            slots
                .acquire(Instant::now(), Duration::ZERO)
                .await
                .is_some()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slot_handed_to_a_request_whose_client_left_is_passed_on() {
        let slots = Arc::new(Slots::new(1, BUDGET));
        let held = slots
            .acquire(Instant::now(), Duration::ZERO)
            .await
            .expect("a free slot");
        let gone = waiters(&slots, 1).await.pop().expect("one");
        // The slot is handed over, and the request is dropped before it runs again.
        drop(held);
        gone.abort();
        let _ = gone.await;
        assert!(
            slots
                .acquire(Instant::now(), Duration::ZERO)
                .await
                .is_some(),
            "the slot is free"
        );
    }
}
