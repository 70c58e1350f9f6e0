//! The one error type every handler returns: a stable machine `code`, a human `message`, and
//! the HTTP status. Internal failures are logged in full and answered with a generic message.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::storage::StoreError;

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
    UnknownExperience(i64),
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
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Serialize)]
pub struct ErrorBody {
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
            Self::SlotNotFound { .. } => (StatusCode::NOT_FOUND, "slot_not_found"),
            Self::RouteNotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::InvalidBody(_) => (StatusCode::BAD_REQUEST, "invalid_body"),
            Self::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Self::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            Self::Store(error) => {
                tracing::error!(%error, "request failed");
                "internal error; the details are in the service log".to_string()
            }
            other => other.to_string(),
        };
        (status, Json(ErrorBody { code, message })).into_response()
    }
}
