//! Sync controls. Reads are public; pause, resume and trigger need the admin bearer token.
//! The handlers steer the engine; they never call the partner themselves.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::error::{AppError, ErrorBody};
use super::extract::{JsonBody, QueryParams};
use crate::domain::{ExperienceId, Secret};
use crate::storage::Bookings;
use crate::sync::engine::{Engine, TriggerError};
use crate::sync::status::SyncStatus;

/// Rejects admin requests without `Authorization: Bearer <server.admin_token>`.
pub async fn require_admin(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, AppError> {
    let admin = state.settings.server.admin_token.as_ref();
    if admin.is_none_or(|token| token.is_empty()) {
        return Err(AppError::Unauthorized(
            "admin endpoints are disabled: set INVSYNC_SERVER__ADMIN_TOKEN".into(),
        ));
    }
    if presents_one_of(&request, &[admin]) {
        Ok(next.run(request).await)
    } else {
        Err(AppError::Unauthorized(
            "missing or wrong admin token (Authorization: Bearer …)".into(),
        ))
    }
}

/// Rejects booking requests without `Authorization: Bearer <server.sales_token>` (or the admin
/// token).
pub async fn require_sales(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, AppError> {
    let server = &state.settings.server;
    let tokens = [server.sales_token.as_ref(), server.admin_token.as_ref()];
    if tokens.iter().flatten().all(|token| token.is_empty()) {
        return Err(AppError::Unauthorized(
            "bookings are disabled: set INVSYNC_SERVER__SALES_TOKEN".into(),
        ));
    }
    if presents_one_of(&request, &tokens) {
        Ok(next.run(request).await)
    } else {
        Err(AppError::Unauthorized(
            "missing or wrong sales token (Authorization: Bearer …)".into(),
        ))
    }
}

/// Whether the request's bearer token is one of the configured (non-empty) `tokens`, compared
/// in constant time.
fn presents_one_of(request: &Request, tokens: &[Option<&Secret>]) -> bool {
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(bearer_token)
        .unwrap_or_default();
    tokens
        .iter()
        .flatten()
        .filter(|token| !token.is_empty())
        .any(|token| bool::from(presented.as_bytes().ct_eq(token.expose().as_bytes())))
}

/// The token of an `Authorization: Bearer <token>` value; the scheme name is
/// case-insensitive and may be followed by several spaces (RFC 9110).
fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim_start_matches(' '))
}

/// The service's state: the sync's (paused or running, queue, parked days, tiers, counters,
/// freshness) of every partner together and of each, and the bookings' (seats on hold,
/// shortfalls).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusBody {
    #[serde(flatten)]
    sync: SyncStatus,
    /// Each partner's sync, with its name and kind.
    partners: Vec<SyncStatus>,
    bookings: BookingsStatus,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BookingsStatus {
    /// Seats on hold for customers, across every slot.
    seats_on_hold: i64,
    /// Per experience customers have booked: seats held or sold beyond the partner's current
    /// allotment (new holds on a short pool are refused; confirmed bookings stand).
    shortfall: Vec<ShortfallBody>,
}

#[derive(Serialize, ToSchema)]
pub struct ShortfallBody {
    experience: ExperienceId,
    seats: i64,
}

#[utoipa::path(
    get,
    path = "/api/v1/sync/status",
    tag = "sync",
    responses((status = 200, description = "The sync's and the bookings' status", body = StatusBody))
)]
pub async fn status(State(state): State<AppState>) -> Result<Json<StatusBody>, AppError> {
    status_body(&state).await.map(Json)
}

async fn status_body(state: &AppState) -> Result<StatusBody, AppError> {
    let totals = state.store.booking_totals().await?;
    let (sync, partners) = state.sync.combined_status().await?;
    Ok(StatusBody {
        sync,
        partners,
        bookings: BookingsStatus {
            seats_on_hold: totals.seats_on_hold,
            shortfall: totals
                .shortfall
                .into_iter()
                .map(|(experience, seats)| ShortfallBody { experience, seats })
                .collect(),
        },
    })
}

/// `?partner=NAME` on a control: that partner's sync only; without it, every partner's.
#[derive(Debug, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PartnerQuery {
    /// A configured partner's name (`default` for the `[partner]` shorthand); default all.
    partner: Option<String>,
}

impl PartnerQuery {
    fn parse(query: &QueryParams) -> Result<Self, AppError> {
        Ok(Self {
            partner: query.optional("partner")?.map(str::to_string),
        })
    }

    fn engines(self, state: &AppState) -> Result<Vec<Engine>, AppError> {
        match self.partner {
            None => Ok(state.sync.engines().to_vec()),
            Some(name) => state
                .sync
                .named(&name)
                .map(|engine| vec![engine.clone()])
                .ok_or(AppError::UnknownPartner(name)),
        }
    }
}

/// The longest pause reason kept: a sentence or an incident reference, not a document.
const MAX_REASON_CHARS: usize = 500;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "partner incident INC-123"}))]
pub struct PauseRequest {
    /// Shown in the status; default "paused by an operator". At most 500 characters, no
    /// control characters.
    #[schema(max_length = 500, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    reason: Option<String>,
}

impl PauseRequest {
    /// The reason to record. Control characters are refused: they garble logs, and PostgreSQL
    /// cannot store NUL.
    fn reason(self) -> Result<String, AppError> {
        let Some(reason) = self.reason.filter(|reason| !reason.trim().is_empty()) else {
            return Ok("paused by an operator".to_string());
        };
        if reason.chars().count() > MAX_REASON_CHARS {
            return Err(AppError::InvalidBody(format!(
                "reason is longer than {MAX_REASON_CHARS} characters"
            )));
        }
        if reason.chars().any(char::is_control) {
            return Err(AppError::InvalidBody(
                "reason contains control characters".into(),
            ));
        }
        Ok(reason)
    }
}

/// Pauses the sync of every partner, or of `?partner=` (persisted; idempotent: a second
/// pause keeps the first reason and time). Partner calls stop within seconds, including a
/// run in flight.
#[utoipa::path(
    post,
    path = "/api/v1/sync/pause",
    tag = "sync",
    security(("admin_token" = [])),
    params(PartnerQuery),
    request_body(
        content = Option<PauseRequest>,
        content_type = "application/json",
        description = "Optional; an empty body pauses with the default reason"
    ),
    responses(
        (status = 200, description = "Paused; the service's status", body = StatusBody),
        (status = 404, description = "`unknown_partner`", body = ErrorBody),
    )
)]
pub async fn pause(
    State(state): State<AppState>,
    query: QueryParams,
    JsonBody(request): JsonBody<PauseRequest>,
) -> Result<Json<StatusBody>, AppError> {
    let reason = request.reason()?;
    for engine in PartnerQuery::parse(&query)?.engines(&state)? {
        engine.pause(&reason).await?;
    }
    status_body(&state).await.map(Json)
}

/// Resumes the sync of every partner, or of `?partner=`; idempotent. Any request body is
/// ignored.
#[utoipa::path(
    post,
    path = "/api/v1/sync/resume",
    tag = "sync",
    security(("admin_token" = [])),
    params(PartnerQuery),
    responses(
        (status = 200, description = "Running; the service's status", body = StatusBody),
        (status = 404, description = "`unknown_partner`", body = ErrorBody),
    )
)]
pub async fn resume(
    State(state): State<AppState>,
    query: QueryParams,
) -> Result<Json<StatusBody>, AppError> {
    for engine in PartnerQuery::parse(&query)?.engines(&state)? {
        engine.resume().await?;
    }
    status_body(&state).await.map(Json)
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"experience": 14}))]
pub struct TriggerRequest {
    /// One synced experience; default all of them.
    #[schema(value_type = Option<i64>, minimum = 1)]
    experience: Option<ExperienceId>,
    /// First day; default today (in the partner's time zone).
    from: Option<NaiveDate>,
    /// Last day; default the end of the horizon.
    to: Option<NaiveDate>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TriggerResponse {
    /// Product-dates queued (those already queued or in flight are not counted twice).
    queued: usize,
    from: NaiveDate,
    to: NaiveDate,
}

/// Re-syncs a range now: its days go ahead of routine work. Every field is optional (all
/// experiences of every partner, or of `?partner=`, today … the end of the horizon).
#[utoipa::path(
    post,
    path = "/api/v1/sync/trigger",
    tag = "sync",
    security(("admin_token" = [])),
    params(PartnerQuery),
    request_body(
        content = Option<TriggerRequest>,
        content_type = "application/json",
        description = "Optional; an empty body re-syncs every experience over the horizon"
    ),
    responses(
        (status = 202, description = "Queued", body = TriggerResponse),
        (status = 400, description = "`invalid_body`, or `date_outside_horizon` for a range that is not ordered and inside the horizon", body = ErrorBody),
        (status = 404, description = "`unknown_experience`, `unknown_partner`", body = ErrorBody),
    )
)]
pub async fn trigger(
    State(state): State<AppState>,
    query: QueryParams,
    JsonBody(request): JsonBody<TriggerRequest>,
) -> Result<(StatusCode, Json<TriggerResponse>), AppError> {
    let mut engines = PartnerQuery::parse(&query)?.engines(&state)?;
    if let Some(experience) = request.experience {
        // The experience's own partner; another partner named alongside does not sync it.
        engines.retain(|engine| engine.experiences().contains(&experience));
        if engines.is_empty() {
            return Err(AppError::UnknownExperience(experience));
        }
    }
    let (first, last) = state.sync.horizon();
    let mut queued = 0;
    for engine in engines {
        // Each partner's own horizon by default: partners' todays can be a day apart.
        let (own_first, own_last) = engine.horizon();
        let from = request.from.unwrap_or(own_first);
        let to = request.to.unwrap_or(own_last);
        queued +=
            engine
                .trigger(request.experience, from, to)
                .await
                .map_err(|error| match error {
                    TriggerError::Store(error) => AppError::Store(error),
                    TriggerError::UnknownExperience(id) => AppError::UnknownExperience(id),
                    outside @ TriggerError::OutsideHorizon { .. } => {
                        AppError::DateOutsideHorizon(outside.to_string())
                    }
                })?;
    }
    let from = request.from.unwrap_or(first);
    let to = request.to.unwrap_or(last);
    Ok((
        StatusCode::ACCEPTED,
        Json(TriggerResponse { queued, from, to }),
    ))
}
