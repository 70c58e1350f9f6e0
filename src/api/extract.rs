//! Extractors that parse path and query input into domain types, rejecting bad input with an
//! [`AppError`] (JSON, stable code) instead of axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use chrono::{NaiveDate, NaiveTime};
use serde::de::DeserializeOwned;
use utoipa::IntoParams;

use super::error::AppError;
use super::layers::MAX_BODY_BYTES;
use crate::domain::ExperienceId;

/// `{id}` of `/api/v1/experience/{id}/…`; also its OpenAPI parameter.
#[derive(IntoParams)]
#[into_params(names("id"), parameter_in = Path)]
pub struct ExperiencePath(
    /// The experience (partner product) id: a Leap number or an OCTO product's string id
    /// (1–64 letters, digits, `-`, `_`, `.`, `~`).
    #[param(value_type = ExperienceId, example = "14")]
    pub ExperienceId,
);

impl<S: Send + Sync> FromRequestParts<S> for ExperiencePath {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let Path(raw): Path<String> = Path::from_request_parts(parts, state)
            .await
            .map_err(|e| AppError::InvalidExperienceId(e.body_text()))?;
        raw.parse()
            .map(Self)
            .map_err(|e: crate::domain::InvalidExperienceId| {
                AppError::InvalidExperienceId(e.to_string())
            })
    }
}

/// The query string as plain key/value pairs; each handler parses the keys it needs. A key
/// it needs that is given twice is rejected rather than guessed at.
pub struct QueryParams(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let Query(params) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|e| AppError::InvalidDate(e.body_text()))?;
        Ok(Self(params))
    }
}

impl QueryParams {
    /// The one value of the required parameter `name`; `reject` makes the error, whose
    /// message shows the expected `form`.
    fn required(
        &self,
        name: &str,
        form: &str,
        reject: fn(String) -> AppError,
    ) -> Result<&str, AppError> {
        let mut values = self
            .0
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str());
        match (values.next(), values.next()) {
            (Some(value), None) => Ok(value),
            (None, _) => Err(reject(format!("query parameter {name}={form} is required"))),
            (Some(_), Some(_)) => Err(reject(format!(
                "query parameter {name} is given more than once"
            ))),
        }
    }

    /// The optional parameter `name`, refused when given more than once.
    pub fn optional(&self, name: &str) -> Result<Option<&str>, AppError> {
        let mut values = self
            .0
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str());
        match (values.next(), values.next()) {
            (value, None) => Ok(value),
            (_, Some(_)) => Err(AppError::InvalidBody(format!(
                "query parameter {name} is given more than once"
            ))),
        }
    }

    /// The required `date=YYYY-MM-DD` parameter.
    pub fn date(&self) -> Result<NaiveDate, AppError> {
        let raw = self.required("date", "YYYY-MM-DD", AppError::InvalidDate)?;
        NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .ok()
            .filter(|_| raw.len() == 10)
            .ok_or_else(|| AppError::InvalidDate(format!("date {raw:?} is not a YYYY-MM-DD date")))
    }

    /// The required `startTime=HH:MM` parameter.
    pub fn start_time(&self) -> Result<NaiveTime, AppError> {
        let raw = self.required("startTime", "HH:MM", AppError::InvalidStartTime)?;
        NaiveTime::parse_from_str(raw, "%H:%M")
            .ok()
            .filter(|_| raw.len() == 5)
            .ok_or_else(|| AppError::InvalidStartTime(format!("startTime {raw:?} is not HH:MM")))
    }
}

/// A JSON request body; an empty body (or `null`) means `T::default()`. A body must be sent as
/// `application/json`, match `T` exactly and fit in [`MAX_BODY_BYTES`].
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for JsonBody<T> {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, AppError> {
        let is_json = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
        let body =
            Bytes::from_request(request, state)
                .await
                .map_err(|rejection| match rejection.status() {
                    StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge {
                        limit: MAX_BODY_BYTES,
                    },
                    _ => AppError::InvalidBody(rejection.body_text()),
                })?;
        // No body at all means "no options"; whitespace alone is not a JSON document.
        if body.is_empty() {
            return Ok(Self(T::default()));
        }
        if !is_json {
            return Err(AppError::UnsupportedMediaType(
                "send the body as Content-Type: application/json".into(),
            ));
        }
        // serde would also fill a struct from an array (`[14, "2026-12-01"]`), so look at the
        // first byte: a body is an object, or `null` ("no options", like an empty body).
        let first_byte = body.iter().find(|byte| !byte.is_ascii_whitespace());
        if !matches!(first_byte, Some(b'{' | b'n')) {
            return Err(AppError::InvalidBody(
                "the body must be a JSON object".into(),
            ));
        }
        serde_json::from_slice::<Option<T>>(&body)
            .map(|options| Self(options.unwrap_or_default()))
            .map_err(|e| AppError::InvalidBody(format!("invalid JSON body: {e}")))
    }
}
