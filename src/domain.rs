//! Domain types shared by every layer. They are parsed once at the edge (partner payloads,
//! HTTP paths, config) so the inner layers never re-validate.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A partner product id ("experience" on the marketplace side). Always positive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct ExperienceId(i64);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("experience id must be a positive integer, got {0:?}")]
pub struct InvalidExperienceId(pub String);

impl ExperienceId {
    pub fn get(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for ExperienceId {
    type Error = InvalidExperienceId;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        if value > 0 {
            Ok(Self(value))
        } else {
            Err(InvalidExperienceId(value.to_string()))
        }
    }
}

impl From<ExperienceId> for i64 {
    fn from(id: ExperienceId) -> i64 {
        id.0
    }
}

impl FromStr for ExperienceId {
    type Err = InvalidExperienceId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let value: i64 = s.parse().map_err(|_| InvalidExperienceId(s.to_string()))?;
        Self::try_from(value).map_err(|_| InvalidExperienceId(s.to_string()))
    }
}

impl fmt::Display for ExperienceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A count of seats. Capacity is never fractional and never negative.
pub type Seats = i64;

/// An exact price as the partner sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price {
    pub final_price: Decimal,
    pub original_price: Decimal,
    pub currency: String,
}

/// One pax type (ADULT_12~99, CHILD_3~11, ...) of one slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaxAvailability {
    pub pax_type: String,
    pub name: String,
    pub description: String,
    pub min: i64,
    pub max: i64,
    pub remaining: Seats,
    pub is_primary: bool,
    pub price: Price,
}

/// One bookable time slot of one day, as observed at the partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub provider_slot_id: String,
    pub start_date: NaiveDate,
    pub start_time: NaiveTime,
    pub end_time: NaiveTime,
    pub remaining: Seats,
    pub currency: String,
    pub variant_id: i64,
    pub pax: Vec<PaxAvailability>,
}

/// Everything the partner said about one (experience, date) at one moment: the unit the
/// store applies atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayFetch {
    pub id: Uuid,
    pub experience: ExperienceId,
    pub date: NaiveDate,
    pub fetched_at: DateTime<Utc>,
    pub slots: Vec<Slot>,
}

impl DayFetch {
    pub fn new(experience: ExperienceId, date: NaiveDate, slots: Vec<Slot>) -> Self {
        Self {
            id: Uuid::new_v4(),
            experience,
            date,
            fetched_at: Utc::now(),
            slots,
        }
    }
}

/// A string that must never be printed: API keys, admin tokens, passwords.
#[derive(Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn experience_id_parses_only_positive_integers() {
        assert_eq!("14".parse::<ExperienceId>().map(ExperienceId::get), Ok(14));
        for bad in ["0", "-3", "abc", "1.5", "", "99999999999999999999"] {
            assert!(bad.parse::<ExperienceId>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn secret_debug_is_redacted() {
        let secret = Secret::new("hunter2");
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}
