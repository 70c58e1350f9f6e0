//! Extractors that parse path and query input into domain types, rejecting bad input with an
//! [`AppError`] (JSON, stable code) instead of axum's plain-text rejections.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use chrono::{NaiveDate, NaiveTime};

use super::error::AppError;
use crate::domain::ExperienceId;

/// `{id}` of `/api/v1/experience/{id}/…`.
pub struct ExperiencePath(pub ExperienceId);

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

/// The query string as plain key/value pairs; each handler parses the keys it needs.
pub struct QueryParams(HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let Query(params) = Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| AppError::InvalidDate(e.body_text()))?;
        Ok(Self(params))
    }
}

impl QueryParams {
    /// The required `date=YYYY-MM-DD` parameter.
    pub fn date(&self) -> Result<NaiveDate, AppError> {
        let raw = self.0.get("date").ok_or_else(|| {
            AppError::InvalidDate("query parameter date=YYYY-MM-DD is required".into())
        })?;
        NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .ok()
            .filter(|_| raw.len() == 10)
            .ok_or_else(|| AppError::InvalidDate(format!("date {raw:?} is not a YYYY-MM-DD date")))
    }

    /// The required `startTime=HH:MM` parameter.
    pub fn start_time(&self) -> Result<NaiveTime, AppError> {
        let raw = self.0.get("startTime").ok_or_else(|| {
            AppError::InvalidStartTime("query parameter startTime=HH:MM is required".into())
        })?;
        NaiveTime::parse_from_str(raw, "%H:%M")
            .ok()
            .filter(|_| raw.len() == 5)
            .ok_or_else(|| AppError::InvalidStartTime(format!("startTime {raw:?} is not HH:MM")))
    }
}
