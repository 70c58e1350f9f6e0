//! The HTTP API. It reads only from the store; it never talks to the partner.

mod control;
mod error;
mod extract;
mod inventory;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{Method, Uri};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::NaiveDate;
use serde_json::{Value, json};

pub use error::{AppError, ErrorBody};

use crate::config::Settings;
use crate::ledger::VerifyReport;
use crate::storage::Store;
use crate::sync::engine::Engine;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub engine: Engine,
    pub settings: Arc<Settings>,
}

/// The dates the service keeps: today (in the partner's time zone) and the following days.
#[derive(Debug, Clone, Copy)]
pub struct Horizon {
    pub first: NaiveDate,
    pub last: NaiveDate,
}

impl Horizon {
    pub fn check(self, date: NaiveDate) -> Result<(), AppError> {
        if (self.first..=self.last).contains(&date) {
            Ok(())
        } else {
            Err(AppError::DateOutsideHorizon(format!(
                "date {date} is outside the synced horizon {} … {}",
                self.first, self.last
            )))
        }
    }
}

impl AppState {
    pub fn horizon(&self) -> Horizon {
        let (first, last) = self.engine.horizon();
        Horizon { first, last }
    }
}

pub fn router(state: AppState) -> Router {
    let admin = Router::new()
        .route("/api/v1/sync/pause", post(control::pause))
        .route("/api/v1/sync/resume", post(control::resume))
        .route("/api/v1/sync/trigger", post(control::trigger))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            control::require_admin,
        ));
    Router::new()
        .merge(admin)
        .route("/api/v1/sync/status", get(control::status))
        .route("/healthz", get(healthz))
        .route("/api/v1/experience/{id}/slots", get(inventory::slots))
        .route(
            "/api/v1/experience/{id}/slots/history",
            get(inventory::slot_history),
        )
        .route("/api/v1/experience/{id}/dates", get(inventory::dates))
        .route("/api/v1/ledger/verify", get(verify))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /api/v1/ledger/verify`: 200 with `ok: true`, or `ok: false` and every violation.
async fn verify(State(state): State<AppState>) -> Result<Json<VerifyReport>, AppError> {
    Ok(Json(state.store.verify().await?))
}

async fn not_found(uri: Uri) -> AppError {
    AppError::RouteNotFound(uri.path().to_string())
}

async fn method_not_allowed(method: Method, uri: Uri) -> AppError {
    AppError::MethodNotAllowed(format!("{method} is not allowed on {}", uri.path()))
}
