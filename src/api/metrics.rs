//! `GET /metrics`: every metric in Prometheus text format. The sync engine's numbers are read
//! from its status at scrape time, so the engine needs no metrics code of its own.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

use super::AppState;
use super::error::AppError;
use crate::storage::{BookingTotals, Bookings};
use crate::sync::status::SyncStatus;
use crate::telemetry::names;

const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Prometheus text exposition of the partner calls, the API's requests and the sync state.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((
        status = 200,
        description = "Prometheus text format 0.0.4",
        body = String,
        content_type = "text/plain"
    ))
)]
pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, AppError> {
    let partners = state.sync.status().await?;
    let bookings = state.store.booking_totals().await?;
    let text = state.metrics.render_with(|| {
        for status in &partners {
            record_sync_status(status);
        }
        record_booking_totals(&bookings);
    });
    Ok(([(CONTENT_TYPE, PROMETHEUS_TEXT)], text))
}

/// One partner's sync, labelled `partner`.
fn record_sync_status(status: &SyncStatus) {
    use ::metrics::{counter, gauge};
    let partner = status
        .partner
        .as_ref()
        .map_or_else(String::new, |partner| partner.name.clone());
    let label = || [("partner", partner.clone())];
    // Lossless: queue sizes and unix seconds are far below 2^53.
    gauge!(names::SYNC_QUEUE_PENDING, &label()).set(status.pending as f64);
    gauge!(names::SYNC_IN_FLIGHT, &label()).set(status.in_flight as f64);
    gauge!(names::SYNC_PARKED_DAYS, &label()).set(status.parked.len() as f64);
    gauge!(names::SYNC_PAUSED, &label()).set(if status.is_paused() { 1.0 } else { 0.0 });
    let counters = &status.counters;
    counter!(names::SYNC_CALLS, &label()).absolute(counters.calls);
    counter!(names::SYNC_RATE_LIMITED, &label()).absolute(counters.rate_limited);
    counter!(names::SYNC_RETRIES, &label()).absolute(counters.retries);
    counter!(names::SYNC_FAILURES, &label()).absolute(counters.failures);
    counter!(names::SYNC_DAYS_APPLIED, &label()).absolute(counters.days_applied);
    counter!(names::LEDGER_TRANSFERS_POSTED, &label()).absolute(counters.transfers_posted);
    for tier in &status.tiers {
        let last_success = tier
            .last_success
            .map_or(0.0, |at| at.timestamp_millis() as f64 / 1000.0);
        gauge!(names::TIER_LAST_SUCCESS, "partner" => partner.clone(), "tier" => tier.name.clone())
            .set(last_success);
    }
}

fn record_booking_totals(totals: &BookingTotals) {
    use ::metrics::gauge;
    gauge!(names::SEATS_ON_HOLD).set(totals.seats_on_hold as f64);
    for (experience, seats) in &totals.shortfall {
        gauge!(names::SHORTFALL_SEATS, "experience" => experience.to_string()).set(*seats as f64);
    }
}
