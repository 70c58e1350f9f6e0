//! The simulator's HTTP face: the partner's inventory route, the `/_sim` control routes, and
//! (through [`super::octo`]) the OCTO routes. Every partner route, the OCTO ones included, is
//! answered through [`Simulator::answer_call`]: one key check, one rate window, one fault
//! roll and one call log.

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{NaiveDate, NaiveTime, TimeDelta, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio::time::Instant;
use tower_http::trace::TraceLayer;

use super::faults::{Fault, Faults};
use super::{
    CallRecord, CallRoute, MAX_CALL_LOG, RATE_WINDOW, SimError, Simulator, State as SimState, octo,
};
use crate::domain::ExperienceId;
use crate::partner::wire::{RateLimitBody, RateLimitState, parse_hh_mm};

pub(super) fn router(sim: Simulator) -> Router {
    Router::new()
        .route("/api/v1/inventory/{product_id}", get(inventory))
        .merge(octo::router())
        .route("/_sim/slot/remaining", post(set_slot_remaining))
        .route("/_sim/slot/remove", post(remove_slot))
        .route("/_sim/pax/remaining", post(set_pax_remaining))
        .route("/_sim/pax/price", post(set_pax_price))
        .route("/_sim/faults", get(get_faults).put(put_faults))
        .route(
            "/_sim/faults/rate-limit-storm",
            post(start_rate_limit_storm),
        )
        .route("/_sim/calls", get(calls))
        .layer(TraceLayer::new_for_http())
        .with_state(sim)
}

/// `GET /api/v1/inventory/{productId}?date=YYYY-MM-DD`, as the partner answers it.
async fn inventory(
    State(sim): State<Simulator>,
    Path(product_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let api_key = headers
        .get("x-api-key")
        .and_then(|value| value.to_str().ok());
    let client = headers
        .get(header::USER_AGENT)
        .and_then(|value| value.to_str().ok());
    let answer = sim.answer_partner_call_from(
        client,
        api_key,
        &product_id,
        query.get("date").map(String::as_str),
    );
    answer.send().await
}

pub(super) struct PartnerAnswer {
    pub(super) status: StatusCode,
    content_type: &'static str,
    /// Sent besides `Content-Type`, e.g. an OCTO 429's `Retry-After`.
    pub(super) headers: Vec<(HeaderName, HeaderValue)>,
    pub(super) body: Vec<u8>,
    pub(super) delay: Option<Duration>,
}

impl PartnerAnswer {
    pub(super) fn json(status: StatusCode, body: Vec<u8>) -> Self {
        Self {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body,
            delay: None,
        }
    }

    /// The error shape the simulator uses for 4xx/5xx. The real partner's exact error bodies
    /// are unknown apart from the 429; the client relies only on the status for those.
    fn error(status: StatusCode, code: &str, message: &str) -> Self {
        Self::json(
            status,
            json!({ "error": code, "message": message })
                .to_string()
                .into_bytes(),
        )
    }

    /// An error in the dialect of `route`: the partner's shape, or OCTO's.
    fn error_for(route: CallRoute, status: StatusCode, code: &str, message: &str) -> Self {
        if route.is_octo() {
            octo::error(status, code, message)
        } else {
            Self::error(status, code, message)
        }
    }

    /// Waits out a slow fault, then sends the answer.
    pub(super) async fn send(self) -> Response {
        if let Some(delay) = self.delay {
            tokio::time::sleep(delay).await;
        }
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, self.content_type)],
            self.body,
        )
            .into_response();
        response.headers_mut().extend(self.headers);
        response
    }

    fn rate_limited(reset_in: Duration, limit: u32) -> Self {
        let reset_at = Utc::now() + TimeDelta::from_std(reset_in).unwrap_or(TimeDelta::zero());
        // Rounded up: a client that waits until `reset` must find the slot free.
        let reset_ms = (reset_at.timestamp_micros() + 999).div_euclid(1000);
        let body = RateLimitBody {
            rate_limit_state: RateLimitState {
                reset: Some(reset_ms),
                limit: Some(limit),
                remaining: Some(0),
            },
        };
        Self::json(
            StatusCode::TOO_MANY_REQUESTS,
            serde_json::to_vec(&body).unwrap_or_default(),
        )
    }
}

impl Simulator {
    /// A call from an unnamed client (see [`Simulator::answer_partner_call_from`]).
    pub(super) fn answer_partner_call(
        &self,
        api_key: Option<&str>,
        product_id: &str,
        date: Option<&str>,
    ) -> PartnerAnswer {
        self.answer_partner_call_from(None, api_key, product_id, date)
    }

    /// A call to the partner's inventory route: see [`Simulator::answer_call`].
    pub(super) fn answer_partner_call_from(
        &self,
        client: Option<&str>,
        api_key: Option<&str>,
        product_id: &str,
        date: Option<&str>,
    ) -> PartnerAnswer {
        let experience = product_id.parse::<ExperienceId>().ok();
        let parsed_date = date.and_then(|date| NaiveDate::parse_from_str(date, "%Y-%m-%d").ok());
        let call = PartnerCall {
            route: CallRoute::Inventory,
            client,
            api_key,
            experience,
            date: parsed_date,
            last_date: None,
        };
        self.answer_call(call, |state| {
            self.inventory_answer(state, product_id, experience, parsed_date)
        })
    }

    /// Decides the whole answer to a call on any partner route under one lock:
    /// authentication, then the rate window, then a storm or a fault roll, then `serve`
    /// (which answers the call itself, errors such as a bad request included); and logs the
    /// call. Errors are written in the route's dialect; a 429 has the partner's body on every
    /// route, and on OCTO's also a `Retry-After`.
    pub(super) fn answer_call(
        &self,
        call: PartnerCall<'_>,
        serve: impl FnOnce(&SimState) -> PartnerAnswer,
    ) -> PartnerAnswer {
        let route = call.route;
        let mut guard = self.lock();
        let state = &mut *guard;
        let arrived = Instant::now();
        let (answer, fault) = if call.api_key != Some(self.shared.api_key.expose()) {
            let message = if route.is_octo() {
                "missing or invalid Authorization: Bearer key"
            } else {
                "missing or invalid x-api-key"
            };
            let answer =
                PartnerAnswer::error_for(route, StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message);
            (answer, None)
        } else if let Some(reset_in) = self.rate_limit_wait(state, arrived) {
            let limit = self.shared.rate_limit_per_minute.get();
            let mut answer = PartnerAnswer::rate_limited(reset_in, limit);
            if route.is_octo() {
                answer.headers.push((
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after_seconds(reset_in)),
                ));
            }
            (answer, None)
        } else {
            let fault = state.faults.roll(&mut state.rng);
            let answer = if fault == Some(Fault::ServerError) {
                PartnerAnswer::error_for(
                    route,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL_SERVER_ERROR",
                    "internal server error",
                )
            } else {
                serve(state)
            };
            (apply_fault(fault, state.faults.slow_delay(), answer), fault)
        };

        if state.calls.len() >= MAX_CALL_LOG {
            state.calls.pop_front();
        }
        state.calls.push_back(CallRecord {
            at: Utc::now(),
            arrived,
            route,
            experience: call.experience,
            date: call.date,
            last_date: call.last_date,
            status: answer.status.as_u16(),
            fault,
            client: call.client.map(str::to_string),
        });
        answer
    }

    fn inventory_answer(
        &self,
        state: &SimState,
        product_id: &str,
        experience: Option<ExperienceId>,
        date: Option<NaiveDate>,
    ) -> PartnerAnswer {
        let (Some(experience), Some(date)) = (experience, date) else {
            let message = match experience {
                None => format!("invalid product id {product_id:?}"),
                Some(_) => "query parameter date=YYYY-MM-DD is required".to_string(),
            };
            return PartnerAnswer::error(StatusCode::BAD_REQUEST, "BAD_REQUEST", &message);
        };
        match self.product(experience) {
            Ok(product) => PartnerAnswer::json(
                StatusCode::OK,
                serde_json::to_vec(&state.day(product, date)).unwrap_or_default(),
            ),
            // What a partner typically answers for a product it does not know.
            Err(_) => PartnerAnswer::error(
                StatusCode::NOT_FOUND,
                "PRODUCT_NOT_FOUND",
                &format!("product {experience} not found"),
            ),
        }
    }

    /// `Some(wait)` when the call must be refused with 429; otherwise counts it in the window.
    fn rate_limit_wait(&self, state: &mut SimState, now: Instant) -> Option<Duration> {
        if let Some(until) = state.rate_limit_storm_until {
            if until > now {
                return Some(until - now);
            }
            state.rate_limit_storm_until = None;
        }
        while state
            .rate_window
            .front()
            .is_some_and(|&oldest| now.duration_since(oldest) >= RATE_WINDOW)
        {
            state.rate_window.pop_front();
        }
        let limit = usize::try_from(self.shared.rate_limit_per_minute.get()).unwrap_or(usize::MAX);
        match state.rate_window.front() {
            Some(&oldest) if state.rate_window.len() >= limit => Some(oldest + RATE_WINDOW - now),
            _ => {
                state.rate_window.push_back(now);
                None
            }
        }
    }
}

/// One call to a partner route, as far as the shared path needs to know it.
pub(super) struct PartnerCall<'a> {
    pub(super) route: CallRoute,
    /// The caller's User-Agent, for the log.
    pub(super) client: Option<&'a str>,
    /// The key the caller presented, however its route carries it.
    pub(super) api_key: Option<&'a str>,
    /// What the log records about the call.
    pub(super) experience: Option<ExperienceId>,
    pub(super) date: Option<NaiveDate>,
    pub(super) last_date: Option<NaiveDate>,
}

/// Whole seconds until `reset_in` has passed, rounded up so a client that waits them finds
/// the window open.
fn retry_after_seconds(reset_in: Duration) -> u64 {
    reset_in
        .as_secs()
        .saturating_add(u64::from(reset_in.subsec_nanos() > 0))
}

fn apply_fault(fault: Option<Fault>, slow_delay: Duration, answer: PartnerAnswer) -> PartnerAnswer {
    match fault {
        None | Some(Fault::ServerError) => answer,
        Some(Fault::Slow) => PartnerAnswer {
            delay: Some(slow_delay),
            ..answer
        },
        Some(Fault::Garbage) => PartnerAnswer {
            status: StatusCode::OK,
            content_type: "text/html",
            headers: Vec::new(),
            body: b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
                .to_vec(),
            delay: None,
        },
        Some(Fault::Truncated) => {
            let mut body = answer.body;
            body.truncate(body.len() / 2);
            PartnerAnswer { body, ..answer }
        }
    }
}

// ---- control routes ------------------------------------------------------------------------

/// Which slot a control request is about.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SlotBody {
    product_id: ExperienceId,
    date: NaiveDate,
    start_time: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SlotRemainingBody {
    product_id: ExperienceId,
    date: NaiveDate,
    start_time: String,
    remaining: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PaxRemainingBody {
    product_id: ExperienceId,
    date: NaiveDate,
    start_time: String,
    pax_type: String,
    remaining: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PaxPriceBody {
    product_id: ExperienceId,
    date: NaiveDate,
    start_time: String,
    pax_type: String,
    #[serde(with = "rust_decimal::serde::arbitrary_precision")]
    final_price: Decimal,
    #[serde(with = "rust_decimal::serde::arbitrary_precision")]
    original_price: Decimal,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StormBody {
    seconds: u64,
}

enum ControlError {
    BadRequest(String),
    Sim(SimError),
}

impl From<SimError> for ControlError {
    fn from(error: SimError) -> Self {
        Self::Sim(error)
    }
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            Self::BadRequest(message) => (StatusCode::BAD_REQUEST, "BAD_REQUEST", message),
            Self::Sim(error @ SimError::InvalidFaults(_)) => {
                (StatusCode::BAD_REQUEST, "INVALID_FAULTS", error.to_string())
            }
            Self::Sim(error) => (StatusCode::NOT_FOUND, "NOT_FOUND", error.to_string()),
        };
        (
            status,
            axum::Json(json!({ "error": code, "message": message })),
        )
            .into_response()
    }
}

/// Parses a JSON body ourselves so a bad one gets the same JSON error shape as the rest.
fn parse_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ControlError> {
    serde_json::from_slice(body).map_err(|error| ControlError::BadRequest(error.to_string()))
}

fn parse_start_time(text: &str) -> Result<NaiveTime, ControlError> {
    parse_hh_mm(text)
        .ok_or_else(|| ControlError::BadRequest(format!("startTime {text:?} is not HH:MM")))
}

async fn set_slot_remaining(
    State(sim): State<Simulator>,
    body: Bytes,
) -> Result<impl IntoResponse, ControlError> {
    let request: SlotRemainingBody = parse_body(&body)?;
    let start_time = parse_start_time(&request.start_time)?;
    let slot = sim.set_slot_remaining(
        request.product_id,
        request.date,
        start_time,
        request.remaining,
    )?;
    Ok(axum::Json(slot))
}

async fn remove_slot(
    State(sim): State<Simulator>,
    body: Bytes,
) -> Result<impl IntoResponse, ControlError> {
    let request: SlotBody = parse_body(&body)?;
    let start_time = parse_start_time(&request.start_time)?;
    let removed = sim.remove_slot(request.product_id, request.date, start_time)?;
    Ok(axum::Json(removed))
}

async fn set_pax_remaining(
    State(sim): State<Simulator>,
    body: Bytes,
) -> Result<impl IntoResponse, ControlError> {
    let request: PaxRemainingBody = parse_body(&body)?;
    let start_time = parse_start_time(&request.start_time)?;
    let slot = sim.set_pax_remaining(
        request.product_id,
        request.date,
        start_time,
        &request.pax_type,
        request.remaining,
    )?;
    Ok(axum::Json(slot))
}

async fn set_pax_price(
    State(sim): State<Simulator>,
    body: Bytes,
) -> Result<impl IntoResponse, ControlError> {
    let request: PaxPriceBody = parse_body(&body)?;
    let start_time = parse_start_time(&request.start_time)?;
    let slot = sim.set_pax_price(
        request.product_id,
        request.date,
        start_time,
        &request.pax_type,
        request.final_price,
        request.original_price,
    )?;
    Ok(axum::Json(slot))
}

async fn get_faults(State(sim): State<Simulator>) -> axum::Json<Faults> {
    axum::Json(sim.faults())
}

async fn put_faults(
    State(sim): State<Simulator>,
    body: Bytes,
) -> Result<impl IntoResponse, ControlError> {
    let faults: Faults = parse_body(&body)?;
    sim.set_faults(faults.clone())?;
    Ok(axum::Json(faults))
}

async fn start_rate_limit_storm(
    State(sim): State<Simulator>,
    body: Bytes,
) -> Result<impl IntoResponse, ControlError> {
    let request: StormBody = parse_body(&body)?;
    sim.start_rate_limit_storm(Duration::from_secs(request.seconds));
    Ok(StatusCode::NO_CONTENT)
}

async fn calls(State(sim): State<Simulator>) -> impl IntoResponse {
    axum::Json(sim.calls())
}
