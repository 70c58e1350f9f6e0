//! `/api/v1/bookings`: hold, read, confirm, extend and cancel customers' seats (DESIGN
//! section 7), for callers with the sales token (or the admin token).

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::AppState;
use super::error::{AppError, ErrorBody};
use super::extract::JsonBody;
use super::inventory::PriceBody;
use crate::bookings::{BookingError, HoldBody, IdempotencyKey};
use crate::domain::ExperienceId;
use crate::storage::{Booking, BookingStatus, Refusal};

/// A booking as every booking route answers it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BookingBody {
    #[schema(value_type = String, example = "0b6f6f3e-5d2a-4c55-9a3e-8f3f2f0e1c2d")]
    id: Uuid,
    status: BookingStatus,
    experience: ExperienceId,
    date: NaiveDate,
    #[schema(example = "09:30")]
    start_time: String,
    pax: Vec<BookedPaxBody>,
    /// The sum of each pax type's final price times its quantity; `null` if the pax types
    /// are priced in different currencies.
    total: Option<TotalBody>,
    created_at: DateTime<Utc>,
    /// The hold's deadline; `null` unless on hold.
    expires_at: Option<DateTime<Utc>>,
    confirmed_at: Option<DateTime<Utc>>,
    cancelled_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BookedPaxBody {
    #[serde(rename = "type")]
    pax_type: String,
    quantity: i64,
    /// As captured when the seats were held.
    unit_price: PriceBody,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TotalBody {
    #[serde(with = "rust_decimal::serde::arbitrary_precision")]
    #[schema(value_type = f64, example = 424.28)]
    final_price: Decimal,
    currency_code: String,
}

impl From<Booking> for BookingBody {
    fn from(booking: Booking) -> Self {
        let currency = booking
            .pax
            .first()
            .map(|pax| pax.unit_price.currency.clone());
        let total = currency
            .filter(|currency| {
                booking
                    .pax
                    .iter()
                    .all(|pax| pax.unit_price.currency == *currency)
            })
            .and_then(|currency_code| {
                let final_price = booking.pax.iter().try_fold(Decimal::ZERO, |sum, pax| {
                    pax.unit_price
                        .final_price
                        .checked_mul(Decimal::from(pax.quantity))
                        .and_then(|line| sum.checked_add(line))
                })?;
                Some(TotalBody {
                    final_price: final_price.normalize(),
                    currency_code,
                })
            });
        Self {
            id: booking.id,
            status: booking.status,
            experience: booking.experience,
            date: booking.date,
            start_time: booking.start_time.format("%H:%M").to_string(),
            pax: booking
                .pax
                .iter()
                .map(|pax| BookedPaxBody {
                    pax_type: pax.pax_type.clone(),
                    quantity: pax.quantity,
                    unit_price: PriceBody::from(&pax.unit_price),
                })
                .collect(),
            total,
            created_at: booking.created_at,
            expires_at: (booking.status == BookingStatus::OnHold).then_some(booking.expires_at),
            confirmed_at: booking.confirmed_at,
            cancelled_at: booking.cancelled_at,
        }
    }
}

/// `{id}` of `/api/v1/bookings/{id}`: a booking id, or 404.
pub struct BookingPath(Uuid);

impl<S: Send + Sync> FromRequestParts<S> for BookingPath {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let Path(raw): Path<String> = Path::from_request_parts(parts, state)
            .await
            .map_err(|_| AppError::Booking(BookingError::Refused(Refusal::NotFound)))?;
        Uuid::parse_str(&raw)
            .map(Self)
            .map_err(|_| AppError::Booking(BookingError::Refused(Refusal::NotFound)))
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"holdSeconds": 300}))]
pub struct ExtendBody {
    /// The hold's new length from now: 1 to 3600 seconds.
    hold_seconds: i64,
}

/// Holds seats for a customer until they confirm, cancel or the hold expires. A repeat with
/// the same `Idempotency-Key` and body answers the same booking (marked
/// `Idempotent-Replayed: true`) and moves nothing.
#[utoipa::path(
    post,
    path = "/api/v1/bookings",
    tag = "bookings",
    security(("sales_token" = [])),
    params(("Idempotency-Key" = String, Header, description = "1 to 255 printable ASCII characters; a retry sends the same")),
    request_body = HoldBody,
    responses(
        (status = 201, description = "Seats held (or the replay of an earlier hold)", body = BookingBody),
        (status = 400, description = "missing_idempotency_key, invalid_idempotency_key, invalid_booking, quantity_out_of_range, date_outside_horizon", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "unknown_experience, slot_not_found, unknown_pax_type", body = ErrorBody),
        (status = 409, description = "insufficient_capacity, idempotency_key_in_flight", body = ErrorBody),
        (status = 422, description = "idempotency_key_reused", body = ErrorBody),
    )
)]
pub async fn hold(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<HoldBody>,
) -> Result<Response, AppError> {
    let key = IdempotencyKey::parse(headers.get("idempotency-key").map(HeaderValue::as_bytes))
        .map_err(BookingError::from)?;
    let request = body
        .parse(crate::bookings::now())
        .map_err(BookingError::from)?;
    state.horizon().check(request.date)?;
    let answer = state.bookings.hold(key, body).await?;
    let mut response =
        (StatusCode::CREATED, Json(BookingBody::from(answer.booking))).into_response();
    if answer.replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// A booking as it stands (a hold past its deadline reads as expired).
#[utoipa::path(
    get,
    path = "/api/v1/bookings/{id}",
    tag = "bookings",
    security(("sales_token" = [])),
    params(("id" = String, Path, description = "The booking id")),
    responses(
        (status = 200, description = "The booking", body = BookingBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "booking_not_found", body = ErrorBody),
    )
)]
pub async fn booking(
    State(state): State<AppState>,
    BookingPath(id): BookingPath,
) -> Result<Json<BookingBody>, AppError> {
    Ok(Json(state.bookings.booking(id).await?.into()))
}

/// Confirms a hold: its seats are sold. Idempotent; too late once the hold has expired.
#[utoipa::path(
    post,
    path = "/api/v1/bookings/{id}/confirm",
    tag = "bookings",
    security(("sales_token" = [])),
    params(("id" = String, Path, description = "The booking id")),
    responses(
        (status = 200, description = "The confirmed booking", body = BookingBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "booking_not_found", body = ErrorBody),
        (status = 409, description = "booking_expired, booking_cancelled", body = ErrorBody),
    )
)]
pub async fn confirm(
    State(state): State<AppState>,
    BookingPath(id): BookingPath,
) -> Result<Json<BookingBody>, AppError> {
    Ok(Json(state.bookings.confirm(id).await?.into()))
}

/// Gives a hold a new deadline, `holdSeconds` from now.
#[utoipa::path(
    post,
    path = "/api/v1/bookings/{id}/extend",
    tag = "bookings",
    security(("sales_token" = [])),
    params(("id" = String, Path, description = "The booking id")),
    request_body = ExtendBody,
    responses(
        (status = 200, description = "The hold with its new deadline", body = BookingBody),
        (status = 400, description = "invalid_booking", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "booking_not_found", body = ErrorBody),
        (status = 409, description = "booking_expired, booking_cancelled, booking_not_on_hold", body = ErrorBody),
    )
)]
pub async fn extend(
    State(state): State<AppState>,
    BookingPath(id): BookingPath,
    JsonBody(body): JsonBody<ExtendBody>,
) -> Result<Json<BookingBody>, AppError> {
    Ok(Json(
        state.bookings.extend(id, body.hold_seconds).await?.into(),
    ))
}

/// Cancels a booking, on hold or confirmed: its seats are back on sale at once. Idempotent.
#[utoipa::path(
    post,
    path = "/api/v1/bookings/{id}/cancel",
    tag = "bookings",
    security(("sales_token" = [])),
    params(("id" = String, Path, description = "The booking id")),
    responses(
        (status = 200, description = "The cancelled booking (or the expired hold, as it was)", body = BookingBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "booking_not_found", body = ErrorBody),
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    BookingPath(id): BookingPath,
) -> Result<Json<BookingBody>, AppError> {
    Ok(Json(state.bookings.cancel(id).await?.into()))
}
