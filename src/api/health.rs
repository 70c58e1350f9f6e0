//! Liveness and readiness probes, for a process supervisor and a load balancer.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use crate::storage::Leases;

/// A database that does not answer within this counts as unreachable.
const DATABASE_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Serialize, ToSchema)]
pub struct LivenessBody {
    /// Always `ok`: the process serves HTTP.
    status: &'static str,
}

/// The process is alive and serving HTTP; it checks nothing else.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "The process serves HTTP", body = LivenessBody))
)]
pub async fn healthz() -> Json<LivenessBody> {
    Json(LivenessBody { status: "ok" })
}

#[derive(Serialize, ToSchema)]
pub struct ReadinessBody {
    /// `ready` or `not_ready`.
    status: &'static str,
    checks: Vec<ReadinessCheck>,
}

#[derive(Serialize, ToSchema)]
pub struct ReadinessCheck {
    /// `database` (answers a query; its migrations ran before the listener opened) or
    /// `shutdown` (the process is not stopping).
    name: &'static str,
    ok: bool,
    /// Why the check failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'static str>,
}

impl ReadinessCheck {
    fn new(name: &'static str, failure: Option<&'static str>) -> Self {
        Self {
            name,
            ok: failure.is_none(),
            detail: failure,
        }
    }
}

/// Whether this instance should get traffic: its database answers and it is not shutting
/// down. Every check is listed; a failing one says why.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready for traffic", body = ReadinessBody),
        (status = 503, description = "Not ready: the failing checks say why", body = ReadinessBody),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<ReadinessBody>) {
    let database =
        match tokio::time::timeout(DATABASE_PROBE_TIMEOUT, state.store.current_lease()).await {
            Ok(Ok(_)) => None,
            // The error can name hosts and users: it goes to the log, not to this public answer.
            Ok(Err(error)) => {
                tracing::warn!(%error, "readiness: the database probe failed");
                Some("the database query failed; the details are in the service log")
            }
            Err(_) => Some("the database did not answer in time"),
        };
    let shutdown = state
        .shutdown
        .is_cancelled()
        .then_some("the service is shutting down");
    let checks = vec![
        ReadinessCheck::new("database", database),
        ReadinessCheck::new("shutdown", shutdown),
    ];
    let ready = checks.iter().all(|check| check.ok);
    let (status, label) = if ready {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not_ready")
    };
    (
        status,
        Json(ReadinessBody {
            status: label,
            checks,
        }),
    )
}
