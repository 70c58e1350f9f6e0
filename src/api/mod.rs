//! The HTTP API. It reads only from the store; it never talks to the partner.

pub mod admission;
mod bookings;
mod console;
mod control;
mod error;
mod extract;
mod health;
pub mod intake;
mod inventory;
mod layers;
mod metrics;
mod octo;
mod openapi;
pub mod server;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{Method, Uri};
use axum::{Extension, Json, Router};
use chrono::NaiveDate;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::{AppError, ErrorBody};

use crate::bookings::BookingDesk;
use crate::config::Settings;
use crate::ledger::VerifyReport;
use crate::storage::{CachedStore, Ledger};
use crate::sync::partners::SyncPartners;
use crate::telemetry::Metrics;

#[derive(Clone)]
pub struct AppState {
    /// Also serves `/slots` and `/dates` from memory where that is exact.
    pub store: Arc<CachedStore>,
    pub bookings: BookingDesk,
    /// Every partner's sync: the handlers steer it, never the partners themselves.
    pub sync: SyncPartners,
    pub settings: Arc<Settings>,
    pub metrics: &'static Metrics,
    /// Cancelled when shutdown begins: `/readyz` answers 503 from then on.
    pub shutdown: CancellationToken,
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
        let (first, last) = self.sync.horizon();
        Horizon { first, last }
    }
}

pub fn router(state: AppState) -> Router {
    let (routes, document) = routes(&state).split_for_parts();
    let router = routes
        .merge(console::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    layers::apply(router, state.settings.server.request_timeout())
        .layer(Extension(openapi::OpenApiJson::new(document)))
        .with_state(state)
}

/// Every route, each declared once (`routes!` reads the handler's `#[utoipa::path]`): the
/// router and the OpenAPI document are both built from this list.
fn routes(state: &AppState) -> OpenApiRouter<AppState> {
    let admin = OpenApiRouter::new()
        .routes(routes!(control::pause))
        .routes(routes!(control::resume))
        .routes(routes!(control::trigger))
        .routes(routes!(verify))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            control::require_admin,
        ));
    let sales = OpenApiRouter::new()
        .routes(routes!(bookings::hold))
        .routes(routes!(bookings::booking))
        .routes(routes!(bookings::confirm))
        .routes(routes!(bookings::extend))
        .routes(routes!(bookings::cancel))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            control::require_sales,
        ));
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(admin)
        .merge(sales)
        .merge(octo::routes(state))
        .routes(routes!(control::status))
        .routes(routes!(inventory::slots))
        .routes(routes!(inventory::slot_history))
        .routes(routes!(inventory::dates))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(metrics::metrics))
        .routes(routes!(openapi::openapi))
}

/// Checks every ledger invariant inside the database: `ok: true`, or `ok: false` with the
/// first 100 violations and the count of all. Admin only, and one run at a time per instance
/// (callers queue), since each run reads the whole ledger.
#[utoipa::path(
    get,
    path = "/api/v1/ledger/verify",
    tag = "ledger",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The verification report", body = VerifyReport),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
    )
)]
async fn verify(State(state): State<AppState>) -> Result<Json<VerifyReport>, AppError> {
    Ok(Json(state.store.verify().await?))
}

async fn not_found(uri: Uri) -> AppError {
    AppError::RouteNotFound(uri.path().to_string())
}

async fn method_not_allowed(method: Method, uri: Uri) -> AppError {
    AppError::MethodNotAllowed(format!("{method} is not allowed on {}", uri.path()))
}
