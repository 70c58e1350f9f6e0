//! OCTO's error answers: `{"error": CODE, "errorMessage": "…"}` plus the id the code names.
//! The specification answers every client error with 400 (UNAUTHORIZED included) and a
//! failure inside with 500 `INTERNAL_SERVER_ERROR`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::AppError;
use crate::storage::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum OctoError {
    #[error("{message}")]
    InvalidProductId { product_id: String, message: String },
    #[error("the optionId was missing or invalid; each product has one option, \"DEFAULT\"")]
    InvalidOptionId { option_id: String },
    #[error("the unitId was missing or invalid; the product's units are its pax types")]
    InvalidUnitId { unit_id: String },
    #[error(
        "the availabilityId was missing or invalid; it is a slot's local start, \
         e.g. 2026-12-05T09:00:00+08:00"
    )]
    InvalidAvailabilityId { availability_id: String },
    #[error("{message}")]
    InvalidBookingUuid { uuid: String, message: String },
    /// A valid request that cannot be carried out: no seats, an ended booking.
    #[error("{0}")]
    UnprocessableEntity(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bug (a price that does not fit, a body that did not serialize); logged where it
    /// happened.
    #[error("there was an unrecoverable error; the details are in the service log")]
    Internal,
}

/// Every OCTO error answer. Exactly one of the id fields is present, for the codes that name
/// one.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"error": "INVALID_PRODUCT_ID", "errorMessage": "no product 99", "productId": "99"}))]
pub struct OctoErrorBody {
    /// `INVALID_PRODUCT_ID`, `INVALID_OPTION_ID`, `INVALID_UNIT_ID`,
    /// `INVALID_AVAILABILITY_ID`, `INVALID_BOOKING_UUID`, `UNPROCESSABLE_ENTITY`,
    /// `BAD_REQUEST`, `UNAUTHORIZED` or `INTERNAL_SERVER_ERROR`.
    error: &'static str,
    error_message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    product_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    option_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unit_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    availability_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uuid: Option<String>,
}

impl OctoError {
    fn code(&self) -> &'static str {
        match self {
            Self::InvalidProductId { .. } => "INVALID_PRODUCT_ID",
            Self::InvalidOptionId { .. } => "INVALID_OPTION_ID",
            Self::InvalidUnitId { .. } => "INVALID_UNIT_ID",
            Self::InvalidAvailabilityId { .. } => "INVALID_AVAILABILITY_ID",
            Self::InvalidBookingUuid { .. } => "INVALID_BOOKING_UUID",
            Self::UnprocessableEntity(_) => "UNPROCESSABLE_ENTITY",
            Self::BadRequest(_) => "BAD_REQUEST",
            Self::Unauthorized(_) => "UNAUTHORIZED",
            Self::Store(_) | Self::Internal => "INTERNAL_SERVER_ERROR",
        }
    }
}

/// What the native layers refuse with on an OCTO route (a missing or wrong token), in OCTO's
/// words.
impl From<AppError> for OctoError {
    fn from(error: AppError) -> Self {
        match error {
            AppError::Unauthorized(message) => Self::Unauthorized(message),
            AppError::Store(error) => Self::Store(error),
            other => {
                tracing::error!(error = %other, "unexpected refusal on an OCTO route");
                Self::Internal
            }
        }
    }
}

impl IntoResponse for OctoError {
    fn into_response(self) -> Response {
        let status = match self {
            Self::Store(_) | Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        let error_message = match &self {
            Self::Store(error) => {
                tracing::error!(%error, "OCTO request failed");
                Self::Internal.to_string()
            }
            other => other.to_string(),
        };
        let mut body = OctoErrorBody {
            error: self.code(),
            error_message,
            product_id: None,
            option_id: None,
            unit_id: None,
            availability_id: None,
            uuid: None,
        };
        match self {
            Self::InvalidProductId { product_id, .. } => body.product_id = Some(product_id),
            Self::InvalidOptionId { option_id } => body.option_id = Some(option_id),
            Self::InvalidUnitId { unit_id } => body.unit_id = Some(unit_id),
            Self::InvalidAvailabilityId { availability_id } => {
                body.availability_id = Some(availability_id)
            }
            Self::InvalidBookingUuid { uuid, .. } => body.uuid = Some(uuid),
            _ => {}
        }
        (status, Json(body)).into_response()
    }
}
