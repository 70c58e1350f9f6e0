//! Admission: a request waits for a handler slot of its class at most the queue budget, then
//! is shed with `503 overloaded` and `Retry-After`, so a burst of clients gets fast answers
//! instead of queueing for seconds. Reads and writes have separate slots, so a flood of one
//! never starves the other; liveness, readiness and metrics are never shed.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use tokio::sync::Semaphore;

use super::error::AppError;
use crate::config::ServerSettings;
use crate::telemetry::names;

/// Paths every probe must reach whatever the load.
const NEVER_SHED: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

#[derive(Clone)]
pub struct Admission {
    reads: Arc<Semaphore>,
    writes: Arc<Semaphore>,
    queue_budget: Duration,
}

#[derive(Clone, Copy)]
enum Class {
    Read,
    Write,
}

impl Class {
    fn of(request: &Request) -> Option<Self> {
        if NEVER_SHED.contains(&request.uri().path()) {
            return None;
        }
        Some(match *request.method() {
            Method::GET | Method::HEAD | Method::OPTIONS => Self::Read,
            _ => Self::Write,
        })
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
        let slots = |limit: std::num::NonZeroU32| {
            Arc::new(Semaphore::new(
                usize::try_from(limit.get()).unwrap_or(usize::MAX),
            ))
        };
        Self {
            reads: slots(settings.max_concurrent_reads),
            writes: slots(settings.max_concurrent_writes),
            queue_budget: settings.queue_budget(),
        }
    }
}

pub async fn admit(
    State(admission): State<Admission>,
    request: Request,
    next: Next,
) -> Result<Response, AppError> {
    let Some(class) = Class::of(&request) else {
        return Ok(next.run(request).await);
    };
    let slots = match class {
        Class::Read => &admission.reads,
        Class::Write => &admission.writes,
    };
    // Tokio's semaphore is fair: waiters are admitted in arrival order.
    let waited = tokio::time::timeout(admission.queue_budget, slots.acquire()).await;
    let Ok(Ok(_slot)) = waited else {
        metrics::counter!(names::HTTP_SHED, "class" => class.label()).increment(1);
        return Err(AppError::Overloaded {
            retry_after: admission.queue_budget.as_secs().max(1),
        });
    };
    Ok(next.run(request).await)
}
