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

use super::AppState;
use super::error::AppError;
use super::extract::JsonBody;
use crate::domain::ExperienceId;
use crate::sync::engine::TriggerError;
use crate::sync::status::SyncStatus;

/// Rejects admin requests without `Authorization: Bearer <server.admin_token>`.
pub async fn require_admin(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, AppError> {
    let Some(expected) = state
        .settings
        .server
        .admin_token
        .as_ref()
        .filter(|token| !token.is_empty())
    else {
        return Err(AppError::Unauthorized(
            "admin endpoints are disabled: set INVSYNC_SERVER__ADMIN_TOKEN".into(),
        ));
    };
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    if bool::from(presented.as_bytes().ct_eq(expected.expose().as_bytes())) {
        Ok(next.run(request).await)
    } else {
        Err(AppError::Unauthorized(
            "missing or wrong admin token (Authorization: Bearer …)".into(),
        ))
    }
}

/// `GET /api/v1/sync/status`
pub async fn status(State(state): State<AppState>) -> Result<Json<SyncStatus>, AppError> {
    Ok(Json(state.engine.status().await?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PauseRequest {
    reason: Option<String>,
}

/// `POST /api/v1/sync/pause` with an optional `{"reason": "…"}`; idempotent.
pub async fn pause(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<PauseRequest>,
) -> Result<Json<SyncStatus>, AppError> {
    let reason = request
        .reason
        .filter(|reason| !reason.trim().is_empty())
        .unwrap_or_else(|| "paused by an operator".to_string());
    state.engine.pause(&reason).await?;
    Ok(Json(state.engine.status().await?))
}

/// `POST /api/v1/sync/resume`; idempotent.
pub async fn resume(State(state): State<AppState>) -> Result<Json<SyncStatus>, AppError> {
    state.engine.resume().await?;
    Ok(Json(state.engine.status().await?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerRequest {
    experience: Option<ExperienceId>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
}

#[derive(Debug, Serialize)]
pub struct TriggerResponse {
    queued: usize,
    from: NaiveDate,
    to: NaiveDate,
}

/// `POST /api/v1/sync/trigger` `{"experience": 14, "from": "…", "to": "…"}`, every field
/// optional (all experiences, today … the end of the horizon): queued ahead of routine work.
pub async fn trigger(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<TriggerRequest>,
) -> Result<(StatusCode, Json<TriggerResponse>), AppError> {
    let (first, last) = state.engine.horizon();
    let from = request.from.unwrap_or(first);
    let to = request.to.unwrap_or(last);
    let queued =
        state
            .engine
            .trigger(request.experience, from, to)
            .map_err(|error| match error {
                TriggerError::UnknownExperience(id) => AppError::UnknownExperience(id),
                outside @ TriggerError::OutsideHorizon { .. } => {
                    AppError::DateOutsideHorizon(outside.to_string())
                }
            })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(TriggerResponse { queued, from, to }),
    ))
}
