//! Read endpoints for the marketplace: a day's slots, sellable dates, and a slot's ledger
//! history. Shapes follow the marketplace's reference types (camelCase, money as JSON numbers).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::error::{AppError, ErrorBody};
use super::extract::{ExperiencePath, QueryParams};
use crate::domain::{ExperienceId, PaxAvailability, Price, Seats};
use crate::storage::{Inventory, Ledger, Posting, Rendered, ServedSlot, SlotHistory};

/// Money as JSON numbers with the partner's precision (212.14, 73).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PriceBody {
    #[serde(with = "rust_decimal::serde::arbitrary_precision")]
    #[schema(value_type = f64, example = 212.14)]
    final_price: Decimal,
    #[schema(example = "SGD")]
    currency_code: String,
    #[serde(with = "rust_decimal::serde::arbitrary_precision")]
    #[schema(value_type = f64, example = 312.14)]
    original_price: Decimal,
}

impl From<&Price> for PriceBody {
    fn from(price: &Price) -> Self {
        Self {
            final_price: price.final_price.normalize(),
            currency_code: price.currency.clone(),
            original_price: price.original_price.normalize(),
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaxBody {
    #[serde(rename = "type")]
    pax_type: String,
    name: String,
    description: String,
    price: PriceBody,
    min: i64,
    max: i64,
    #[schema(value_type = i64)]
    remaining: Seats,
}

impl From<&PaxAvailability> for PaxBody {
    fn from(pax: &PaxAvailability) -> Self {
        Self {
            pax_type: pax.pax_type.clone(),
            name: pax.name.clone(),
            description: pax.description.clone(),
            price: (&pax.price).into(),
            min: pax.min,
            max: pax.max,
            remaining: pax.remaining,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SlotBody {
    start_time: String,
    start_date: NaiveDate,
    /// The primary pax's price; absent only for a slot the partner sent without pax.
    price: Option<PriceBody>,
    #[schema(value_type = i64)]
    remaining: Seats,
    pax_availability: Vec<PaxBody>,
}

impl From<&ServedSlot> for SlotBody {
    fn from(slot: &ServedSlot) -> Self {
        Self {
            start_time: slot.start_time.format("%H:%M").to_string(),
            start_date: slot.start_date,
            price: slot.primary_pax().map(|pax| (&pax.price).into()),
            remaining: slot.remaining,
            pax_availability: slot.pax.iter().map(PaxBody::from).collect(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DatesBody {
    dates: Vec<DateBody>,
}

#[derive(Serialize, ToSchema)]
pub struct DateBody {
    date: NaiveDate,
    price: PriceBody,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryBody {
    experience_id: ExperienceId,
    provider_slot_id: String,
    start_date: NaiveDate,
    start_time: String,
    open: bool,
    postings: Vec<PostingBody>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostingBody {
    at: DateTime<Utc>,
    transaction_id: i64,
    account_id: i64,
    /// `available`, `held`, `sold` or `shortfall`.
    account: &'static str,
    pax_type: Option<String>,
    #[schema(value_type = i64)]
    amount: Seats,
    #[schema(value_type = i64)]
    balance_after: Seats,
    version: i64,
    /// `sync` (a fetched day), or a booking's `hold`, `confirm`, `cancel` or `expire`.
    reason: String,
    /// The fetch a sync posting applied.
    fetch_id: Option<String>,
    fetched_at: Option<DateTime<Utc>>,
    /// The booking a booking's posting moved.
    booking_id: Option<String>,
}

impl From<Posting> for PostingBody {
    fn from(posting: Posting) -> Self {
        Self {
            at: posting.at,
            transaction_id: posting.transaction_id,
            account_id: posting.account_id,
            account: posting.account_kind.as_str(),
            pax_type: posting.pax_type,
            amount: posting.amount,
            balance_after: posting.balance_after,
            version: posting.version,
            reason: posting.reason,
            fetch_id: posting.fetch_id,
            fetched_at: posting.fetched_at,
            booking_id: posting.booking_id,
        }
    }
}

impl HistoryBody {
    fn new(experience: ExperienceId, history: SlotHistory) -> Self {
        Self {
            experience_id: experience,
            provider_slot_id: history.provider_slot_id,
            start_date: history.start_date,
            start_time: history.start_time.format("%H:%M").to_string(),
            open: history.is_open,
            postings: history
                .postings
                .into_iter()
                .map(PostingBody::from)
                .collect(),
        }
    }
}

async fn known_experience(state: &AppState, id: ExperienceId) -> Result<(), AppError> {
    if state.store.experience_exists(id).await? {
        Ok(())
    } else {
        Err(AppError::UnknownExperience(id))
    }
}

/// A body serialized once, to be kept by the read cache and served as is.
fn json_bytes(body: &impl Serialize) -> Result<Vec<u8>, AppError> {
    serde_json::to_vec(body).map_err(|error| {
        tracing::error!(%error, "a response body did not serialize");
        AppError::Internal
    })
}

fn json_response(body: Rendered) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        Bytes::from_owner(body),
    )
        .into_response()
}

/// The open slots of a day, by start time; `remaining` is the ledger's available balance and
/// `price` the primary pax's price.
#[utoipa::path(
    get,
    path = "/api/v1/experience/{id}/slots",
    tag = "inventory",
    params(
        ExperiencePath,
        ("date" = NaiveDate, Query, description = "The day, YYYY-MM-DD, inside the horizon"),
    ),
    responses(
        (status = 200, description = "The day's slots", body = Vec<SlotBody>),
        (status = 400, description = "`invalid_experience_id`, `invalid_date` or `date_outside_horizon`", body = ErrorBody),
        (status = 404, description = "`unknown_experience`", body = ErrorBody),
    )
)]
pub async fn slots(
    State(state): State<AppState>,
    ExperiencePath(id): ExperiencePath,
    query: QueryParams,
) -> Result<Response, AppError> {
    let date = query.date()?;
    state.horizon().check(date)?;
    known_experience(&state, id).await?;
    let body = state
        .store
        .rendered_slots(id, date, |slots| {
            json_bytes(&slots.iter().map(SlotBody::from).collect::<Vec<_>>())
        })
        .await?;
    Ok(json_response(body))
}

/// Today … the end of the horizon, ascending, only dates with a slot with seats left, each
/// with its lowest primary-pax final price.
#[utoipa::path(
    get,
    path = "/api/v1/experience/{id}/dates",
    tag = "inventory",
    params(ExperiencePath),
    responses(
        (status = 200, description = "Sellable dates", body = DatesBody),
        (status = 400, description = "`invalid_experience_id`", body = ErrorBody),
        (status = 404, description = "`unknown_experience`", body = ErrorBody),
    )
)]
pub async fn dates(
    State(state): State<AppState>,
    ExperiencePath(id): ExperiencePath,
) -> Result<Response, AppError> {
    known_experience(&state, id).await?;
    let horizon = state.horizon();
    let body = state
        .store
        .rendered_dates(id, horizon.first, horizon.last, |dates| {
            json_bytes(&DatesBody {
                dates: dates
                    .into_iter()
                    .map(|day| DateBody {
                        date: day.date,
                        price: (&day.price).into(),
                    })
                    .collect(),
            })
        })
        .await?;
    Ok(json_response(body))
}

/// Every ledger posting on a slot's accounts (slot level and each pax type), oldest first,
/// each with the partner fetch that caused it.
#[utoipa::path(
    get,
    path = "/api/v1/experience/{id}/slots/history",
    tag = "inventory",
    params(
        ExperiencePath,
        ("date" = NaiveDate, Query, description = "The slot's day, YYYY-MM-DD"),
        ("startTime" = String, Query, pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$", example = "04:00", description = "The slot's start, HH:MM"),
    ),
    responses(
        (status = 200, description = "The slot's postings", body = HistoryBody),
        (status = 400, description = "`invalid_experience_id`, `invalid_date` or `invalid_start_time`", body = ErrorBody),
        (status = 404, description = "`unknown_experience` or `slot_not_found`", body = ErrorBody),
    )
)]
pub async fn slot_history(
    State(state): State<AppState>,
    ExperiencePath(id): ExperiencePath,
    query: QueryParams,
) -> Result<Json<HistoryBody>, AppError> {
    let date = query.date()?;
    let start_time = query.start_time()?;
    known_experience(&state, id).await?;
    let history = state
        .store
        .slot_history(id, date, start_time)
        .await?
        .ok_or_else(|| AppError::SlotNotFound {
            date: date.to_string(),
            time: start_time.format("%H:%M").to_string(),
        })?;
    Ok(Json(HistoryBody::new(id, history)))
}
