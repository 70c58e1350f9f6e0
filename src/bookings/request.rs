//! What a booking request must say, parsed into the store's terms before anything is touched.

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::{DEFAULT_HOLD, MAX_HOLD};
use crate::domain::{ExperienceId, Seats};
use crate::storage::{HoldRequest, PaxQuantity};

/// No pax type is sold by the thousand; anything larger is a mistake, refused before it can
/// overflow a sum.
const MAX_QUANTITY: Seats = 1_000;
/// A booking names at most this many pax types.
const MAX_PAX_TYPES: usize = 32;
const MAX_PAX_TYPE_LENGTH: usize = 100;

/// Why a booking request was refused before reaching the store.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidBooking {
    #[error("the Idempotency-Key header is required (1 to 255 printable ASCII characters)")]
    MissingKey,
    #[error("the Idempotency-Key header must be 1 to 255 printable ASCII characters")]
    InvalidKey,
    #[error("{0}")]
    Field(String),
}

/// The `Idempotency-Key` of a hold: 1 to 255 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// `None` when the header is absent.
    pub fn parse(header: Option<&[u8]>) -> Result<Self, InvalidBooking> {
        let bytes = header.ok_or(InvalidBooking::MissingKey)?;
        let printable = bytes.iter().all(|b| (0x20..=0x7e).contains(b));
        if bytes.is_empty() || bytes.len() > 255 || !printable {
            return Err(InvalidBooking::InvalidKey);
        }
        String::from_utf8(bytes.to_vec())
            .map(Self)
            .map_err(|_| InvalidBooking::InvalidKey)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `POST /api/v1/bookings`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"experience": 15, "date": "2026-12-06", "startTime": "00:00",
    "pax": [{"type": "ADULT_12~99", "quantity": 2}], "holdSeconds": 600}))]
pub struct HoldBody {
    /// Required; an empty body is refused like any other without it.
    #[schema(required = true)]
    pub experience: Option<ExperienceId>,
    /// `YYYY-MM-DD`, within the synced horizon.
    pub date: String,
    /// `HH:MM`, the slot's start.
    pub start_time: String,
    /// Each pax type once.
    pub pax: Vec<PaxBody>,
    /// How long the seats are held; default 600, at most 3600.
    pub hold_seconds: Option<i64>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaxBody {
    #[serde(rename = "type")]
    pub pax_type: String,
    pub quantity: i64,
}

fn invalid(message: impl Into<String>) -> InvalidBooking {
    InvalidBooking::Field(message.into())
}

/// A hold's length: `seconds` if given (1 to 3600), else the default.
pub fn hold_length(seconds: Option<i64>) -> Result<chrono::Duration, InvalidBooking> {
    let max = MAX_HOLD.as_secs() as i64;
    let seconds = seconds.unwrap_or(DEFAULT_HOLD.as_secs() as i64);
    if !(1..=max).contains(&seconds) {
        return Err(invalid(format!(
            "holdSeconds must be from 1 to {max}, got {seconds}"
        )));
    }
    chrono::Duration::from_std(Duration::from_secs(seconds as u64))
        .map_err(|e| invalid(e.to_string()))
}

impl HoldBody {
    /// The hold as the store takes it, made at `now`.
    pub fn parse(&self, now: DateTime<Utc>) -> Result<HoldRequest, InvalidBooking> {
        let experience = self
            .experience
            .ok_or_else(|| invalid("experience is required"))?;
        let date = NaiveDate::parse_from_str(&self.date, "%Y-%m-%d")
            .map_err(|_| invalid(format!("date {:?} is not a YYYY-MM-DD date", self.date)))?;
        let start_time = NaiveTime::parse_from_str(&self.start_time, "%H:%M").map_err(|_| {
            invalid(format!(
                "startTime {:?} is not an HH:MM time",
                self.start_time
            ))
        })?;
        if self.pax.is_empty() {
            return Err(invalid("pax must name at least one pax type"));
        }
        if self.pax.len() > MAX_PAX_TYPES {
            return Err(invalid(format!(
                "pax names {} pax types; at most {MAX_PAX_TYPES}",
                self.pax.len()
            )));
        }
        let mut pax: Vec<PaxQuantity> = Vec::with_capacity(self.pax.len());
        for wanted in &self.pax {
            let pax_type = &wanted.pax_type;
            if pax_type.is_empty()
                || pax_type.len() > MAX_PAX_TYPE_LENGTH
                || pax_type.chars().any(char::is_control)
            {
                return Err(invalid(format!(
                    "a pax type is 1 to {MAX_PAX_TYPE_LENGTH} bytes with no control characters"
                )));
            }
            if pax.iter().any(|seen| seen.pax_type == wanted.pax_type) {
                return Err(invalid(format!(
                    "pax type {:?} is named twice",
                    wanted.pax_type
                )));
            }
            if !(1..=MAX_QUANTITY).contains(&wanted.quantity) {
                return Err(invalid(format!(
                    "quantity of {:?} must be from 1 to {MAX_QUANTITY}, got {}",
                    wanted.pax_type, wanted.quantity
                )));
            }
            pax.push(PaxQuantity {
                pax_type: wanted.pax_type.clone(),
                quantity: wanted.quantity,
            });
        }
        Ok(HoldRequest {
            experience,
            date,
            start_time,
            pax,
            expires_at: now + hold_length(self.hold_seconds)?,
        })
    }

    /// What identifies the request for its idempotency key: SHA-256 of its fields in a fixed
    /// form (the default hold length written out), so a repeat with the same meaning matches
    /// whatever its JSON spacing or key order.
    pub fn canonical_hash(&self) -> String {
        let mut canonical = format!(
            "experience={}\ndate={}\nstartTime={}\nholdSeconds={}\n",
            self.experience.map(|id| id.to_string()).unwrap_or_default(),
            self.date,
            self.start_time,
            self.hold_seconds.unwrap_or(DEFAULT_HOLD.as_secs() as i64)
        );
        for pax in &self.pax {
            // Lengths first, so no pax type can imitate a field separator.
            let _ = writeln!(
                canonical,
                "pax={}:{}={}",
                pax.pax_type.len(),
                pax.pax_type,
                pax.quantity
            );
        }
        let digest = Sha256::digest(canonical.as_bytes());
        digest
            .iter()
            .fold(String::with_capacity(64), |mut hex, byte| {
                let _ = write!(hex, "{byte:02x}");
                hex
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(pax: &[(&str, i64)]) -> HoldBody {
        HoldBody {
            experience: Some("15".parse().unwrap()),
            date: "2026-12-06".into(),
            start_time: "00:00".into(),
            pax: pax
                .iter()
                .map(|&(pax_type, quantity)| PaxBody {
                    pax_type: pax_type.into(),
                    quantity,
                })
                .collect(),
            hold_seconds: None,
        }
    }

    #[test]
    fn keys_are_one_to_255_printable_ascii_characters() {
        assert_eq!(IdempotencyKey::parse(None), Err(InvalidBooking::MissingKey));
        for bad in [&b""[..], &[b'a'; 256][..], b"tab\there", "é".as_bytes()] {
            assert_eq!(
                IdempotencyKey::parse(Some(bad)),
                Err(InvalidBooking::InvalidKey)
            );
        }
        let key = IdempotencyKey::parse(Some(&[b'k'; 255])).expect("255 is allowed");
        assert_eq!(key.as_str().len(), 255);
    }

    #[test]
    fn requests_are_refused_for_bad_quantities_and_repeated_pax() {
        let now = Utc::now();
        for pax in [
            vec![],
            vec![("ADULT", 0)],
            vec![("ADULT", -1)],
            vec![("ADULT", 1_000_001)],
            vec![("ADULT", i64::MAX)],
            vec![("ADULT", 1), ("ADULT", 2)],
            vec![("", 1)],
            vec![("AD\0ULT", 1)],
        ] {
            assert!(body(&pax).parse(now).is_err(), "{pax:?}");
        }
        let mut long = body(&[("ADULT", 1)]);
        long.hold_seconds = Some(3601);
        assert!(long.parse(now).is_err());
        long.hold_seconds = Some(3600);
        assert!(long.parse(now).is_ok());
    }

    #[test]
    fn the_hash_depends_on_meaning_only() {
        let mut explicit = body(&[("ADULT", 2)]);
        explicit.hold_seconds = Some(600);
        assert_eq!(
            body(&[("ADULT", 2)]).canonical_hash(),
            explicit.canonical_hash()
        );
        assert_ne!(
            body(&[("ADULT", 2)]).canonical_hash(),
            body(&[("ADULT", 3)]).canonical_hash()
        );
    }
}
