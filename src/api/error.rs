//! The one error type every handler returns: a stable machine `code`, a human `message`, and
//! the HTTP status. Internal failures are logged in full and answered with a generic message.

use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::ExperienceId;

use crate::bookings::{BookingError, InvalidBooking};
use crate::storage::{Refusal, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    InvalidExperienceId(String),
    #[error("{0}")]
    InvalidDate(String),
    #[error("{0}")]
    DateOutsideHorizon(String),
    #[error("{0}")]
    InvalidStartTime(String),
    #[error("experience {0} is not synced by this service")]
    UnknownExperience(ExperienceId),
    #[error("no partner is named {0:?}")]
    UnknownPartner(String),
    #[error("no slot starts at {time} on {date}")]
    SlotNotFound { date: String, time: String },
    #[error("no route {0}")]
    RouteNotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    InvalidBody(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("the request body exceeds {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("no answer within {0:?}; try again")]
    Timeout(Duration),
    #[error("too many requests at once; try again in {retry_after} s")]
    Overloaded { retry_after: u64 },
    #[error("{}", booking_message(.0))]
    Booking(#[from] BookingError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bug (a handler panicked, a body did not serialize); the details are logged where it
    /// happened.
    #[error("internal error; the details are in the service log")]
    Internal,
}

/// Every error answer: a stable machine `code` and a human `message`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"code": "invalid_date", "message": "date \"2026-13-01\" is not a YYYY-MM-DD date"}))]
pub struct ErrorBody {
    /// Stable, machine-readable: `invalid_experience_id`, `invalid_date`,
    /// `date_outside_horizon`, `invalid_start_time`, `invalid_body`, `unauthorized`,
    /// `unknown_experience`, `unknown_partner`, `slot_not_found`, `not_found`, `method_not_allowed`,
    /// `payload_too_large`, `unsupported_media_type`, `timeout`, `overloaded`, `internal`;
    /// for bookings `missing_idempotency_key`, `invalid_idempotency_key`, `invalid_booking`,
    /// `quantity_out_of_range`, `unknown_pax_type`, `booking_not_found`,
    /// `insufficient_capacity`, `booking_expired`, `booking_cancelled`, `booking_not_on_hold`,
    /// `idempotency_key_in_flight`, `idempotency_key_reused`.
    pub code: &'static str,
    pub message: String,
}

impl AppError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::InvalidExperienceId(_) => (StatusCode::BAD_REQUEST, "invalid_experience_id"),
            Self::InvalidDate(_) => (StatusCode::BAD_REQUEST, "invalid_date"),
            Self::DateOutsideHorizon(_) => (StatusCode::BAD_REQUEST, "date_outside_horizon"),
            Self::InvalidStartTime(_) => (StatusCode::BAD_REQUEST, "invalid_start_time"),
            Self::UnknownExperience(_) => (StatusCode::NOT_FOUND, "unknown_experience"),
            Self::UnknownPartner(_) => (StatusCode::NOT_FOUND, "unknown_partner"),
            Self::SlotNotFound { .. } => (StatusCode::NOT_FOUND, "slot_not_found"),
            Self::RouteNotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::InvalidBody(_) => (StatusCode::BAD_REQUEST, "invalid_body"),
            Self::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Self::PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            // The service, not the client, was too slow: 503 invites a later retry, where 408
            // would tell the client its own request was late.
            Self::Timeout(_) => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
            Self::Overloaded { .. } => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            Self::Booking(error) => booking_status_and_code(error),
            Self::Store(_) | Self::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            Self::Store(error) | Self::Booking(BookingError::Store(error)) => {
                tracing::error!(%error, "request failed");
                "internal error; the details are in the service log".to_string()
            }
            other => other.to_string(),
        };
        let mut response = (status, Json(ErrorBody { code, message })).into_response();
        if let Self::Overloaded { retry_after } = self {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, retry_after.into());
        }
        response
    }
}

fn booking_status_and_code(error: &BookingError) -> (StatusCode, &'static str) {
    use StatusCode as S;
    match error {
        BookingError::Invalid(InvalidBooking::MissingKey) => {
            (S::BAD_REQUEST, "missing_idempotency_key")
        }
        BookingError::Invalid(InvalidBooking::InvalidKey) => {
            (S::BAD_REQUEST, "invalid_idempotency_key")
        }
        BookingError::Invalid(InvalidBooking::Field(_)) => (S::BAD_REQUEST, "invalid_booking"),
        BookingError::KeyInFlight => (S::CONFLICT, "idempotency_key_in_flight"),
        BookingError::KeyReused => (S::UNPROCESSABLE_ENTITY, "idempotency_key_reused"),
        BookingError::Store(_) => (S::INTERNAL_SERVER_ERROR, "internal"),
        BookingError::Refused(refusal) => match refusal {
            Refusal::UnknownExperience => (S::NOT_FOUND, "unknown_experience"),
            Refusal::SlotNotFound => (S::NOT_FOUND, "slot_not_found"),
            Refusal::UnknownPaxType(_) => (S::NOT_FOUND, "unknown_pax_type"),
            Refusal::QuantityOutOfRange { .. } => (S::BAD_REQUEST, "quantity_out_of_range"),
            Refusal::InsufficientCapacity(_) => (S::CONFLICT, "insufficient_capacity"),
            Refusal::NotFound => (S::NOT_FOUND, "booking_not_found"),
            Refusal::Expired => (S::CONFLICT, "booking_expired"),
            Refusal::Cancelled => (S::CONFLICT, "booking_cancelled"),
            Refusal::NotOnHold(_) => (S::CONFLICT, "booking_not_on_hold"),
        },
    }
}

fn booking_message(error: &BookingError) -> String {
    let BookingError::Refused(refusal) = error else {
        return error.to_string();
    };
    match refusal {
        Refusal::UnknownExperience => "the experience is not synced by this service".into(),
        Refusal::SlotNotFound => "no open slot starts then on that date".into(),
        Refusal::UnknownPaxType(pax_type) => {
            format!("the slot does not sell pax type {pax_type:?}")
        }
        Refusal::QuantityOutOfRange {
            pax_type,
            quantity,
            min,
            max,
        } => format!("{pax_type} is sold {min} to {max} at a time, not {quantity}"),
        Refusal::InsufficientCapacity(short) => {
            let pool = short
                .pax_type
                .as_ref()
                .map_or("the slot".to_string(), |pax_type| {
                    format!("pax type {pax_type}")
                });
            format!(
                "{pool} has {} seats left, {} asked for",
                short.left, short.wanted
            )
        }
        Refusal::NotFound => "no such booking".into(),
        Refusal::Expired => "the hold has expired; its seats are back on sale".into(),
        Refusal::Cancelled => "the booking was cancelled".into(),
        Refusal::NotOnHold(status) => {
            format!(
                "only a hold can be extended; the booking is {}",
                status.as_str()
            )
        }
    }
}
