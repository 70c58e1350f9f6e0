//! The partner's JSON exactly as it travels over the wire, and its conversion into domain
//! types.
//!
//! These types are both `Deserialize` (the client reads them) and `Serialize` (the built-in
//! simulator writes them), so the two can never drift apart. Field order follows the partner's
//! own responses. Unknown fields are ignored: the partner adds fields without notice.
//!
//! Counts (`remaining`, `min`, `max`) are kept as raw JSON numbers here so that a fractional or
//! negative count is rejected by [`WireSlot::into_slot`] with a message naming the field and the
//! slot, rather than by serde with a bare "invalid type" message.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Number;

use crate::domain::{PaxAvailability, Price, Seats, Slot};

/// One slot of one day: an element of the `GET /api/v1/inventory/{id}?date=` response array.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireSlot {
    pub start_date: String,
    pub start_time: String,
    pub end_time: String,
    pub provider_slot_id: String,
    pub remaining: Number,
    pub currency_code: String,
    pub variant_id: i64,
    pub pax_availability: Vec<WirePax>,
}

/// One pax type of a slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WirePax {
    pub max: Number,
    pub min: Number,
    pub remaining: Number,
    #[serde(rename = "type")]
    pub pax_type: String,
    /// The partner sends `isPrimary: true` on the primary pax only and omits it elsewhere.
    #[serde(
        default,
        deserialize_with = "null_as_false",
        skip_serializing_if = "is_false"
    )]
    pub is_primary: bool,
    pub description: String,
    pub name: String,
    pub price: WirePrice,
}

/// A pax price. Amounts go through their decimal text, never through `f64`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WirePrice {
    /// Always 0 in practice, even when final < original: never derive a price from it.
    #[serde(default, with = "rust_decimal::serde::arbitrary_precision")]
    pub discount: Decimal,
    #[serde(with = "rust_decimal::serde::arbitrary_precision")]
    pub final_price: Decimal,
    #[serde(with = "rust_decimal::serde::arbitrary_precision")]
    pub original_price: Decimal,
    pub currency_code: String,
}

/// The body of a `429`: `{"rateLimitState": {"reset": <epoch ms>, ...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitBody {
    pub rate_limit_state: RateLimitState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitState {
    /// Epoch milliseconds at which a request will be accepted again.
    pub reset: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u32>,
}

/// Reads `rateLimitState.reset` out of a 429 body, tolerating anything else in it.
///
/// Only `reset` is looked at: the other fields vary between partner deployments, and a
/// surprise in them must not cost us the one value we act on.
pub fn rate_limit_reset(body: &[u8]) -> Option<DateTime<Utc>> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let reset_ms = value.pointer("/rateLimitState/reset")?.as_i64()?;
    DateTime::from_timestamp_millis(reset_ms)
}

/// Why a day's response body could not be turned into domain slots.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DayParseError {
    #[error("body is not valid JSON (truncated or garbage): {0}")]
    NotJson(String),
    #[error("expected a JSON array of slots, got {0}")]
    NotAnArray(&'static str),
    #[error("slot {slot}: {detail}")]
    SlotShape { slot: String, detail: String },
    #[error(transparent)]
    InvalidSlot(#[from] InvalidSlot),
    #[error("two slots share {field} {value:?}")]
    DuplicateSlot { field: &'static str, value: String },
}

/// A slot that parsed as JSON but breaks a rule of the domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("slot {slot}: {field} {problem}")]
pub struct InvalidSlot {
    /// The provider slot id, or the start time when the id itself is the problem.
    pub slot: String,
    /// The JSON path of the offending field inside the slot, e.g. `paxAvailability[CHILD_3~11].remaining`.
    pub field: String,
    pub problem: String,
}

/// Parses a whole `200` body for `requested_date` into validated domain slots, in the
/// partner's order.
pub fn parse_day_body(body: &[u8], requested_date: NaiveDate) -> Result<Vec<Slot>, DayParseError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|error| DayParseError::NotJson(error.to_string()))?;
    let serde_json::Value::Array(elements) = value else {
        return Err(DayParseError::NotAnArray(json_kind(&value)));
    };

    let mut slots = Vec::with_capacity(elements.len());
    // Each slot is deserialised on its own so a shape error can say which slot it was in.
    for (index, element) in elements.into_iter().enumerate() {
        let label = slot_label(&element, index);
        // The path says which field had the wrong shape, e.g. `paxAvailability[1].min`.
        let wire: WireSlot = serde_path_to_error::deserialize(element).map_err(|error| {
            DayParseError::SlotShape {
                slot: label,
                detail: error.to_string(),
            }
        })?;
        slots.push(wire);
    }
    validate_day(slots, requested_date)
}

/// Validates the wire slots of `requested_date` into domain slots, in order; whichever form
/// of the partner API they came in.
pub fn validate_day(
    wire: Vec<WireSlot>,
    requested_date: NaiveDate,
) -> Result<Vec<Slot>, DayParseError> {
    let slots = wire
        .into_iter()
        .map(|slot| slot.into_slot(requested_date))
        .collect::<Result<Vec<_>, _>>()?;
    // The store identifies a slot by both; a duplicate would make one of them silently win.
    let mut ids = HashSet::new();
    let mut times = HashSet::new();
    for slot in &slots {
        if !ids.insert(slot.provider_slot_id.as_str()) {
            return Err(DayParseError::DuplicateSlot {
                field: "providerSlotId",
                value: slot.provider_slot_id.clone(),
            });
        }
        if !times.insert(slot.start_time) {
            return Err(DayParseError::DuplicateSlot {
                field: "startTime",
                value: slot.start_time.format("%H:%M").to_string(),
            });
        }
    }
    Ok(slots)
}

impl WireSlot {
    /// Validates this slot as part of the answer for `requested_date`.
    pub fn into_slot(self, requested_date: NaiveDate) -> Result<Slot, InvalidSlot> {
        let slot_name = if self.provider_slot_id.trim().is_empty() {
            format!("at {}", self.start_time)
        } else {
            self.provider_slot_id.clone()
        };
        let invalid = |field: &str, problem: String| InvalidSlot {
            slot: slot_name.clone(),
            field: field.to_string(),
            problem,
        };

        if self.provider_slot_id.trim().is_empty() {
            return Err(invalid("providerSlotId", "is empty".into()));
        }
        let start_date = NaiveDate::parse_from_str(&self.start_date, "%Y-%m-%d").map_err(|_| {
            invalid(
                "startDate",
                format!("is not YYYY-MM-DD: {:?}", self.start_date),
            )
        })?;
        // An answer for another day would be stored under the requested one.
        if start_date != requested_date {
            return Err(invalid(
                "startDate",
                format!("is {start_date}, but {requested_date} was requested"),
            ));
        }
        let start_time = parse_hh_mm(&self.start_time)
            .ok_or_else(|| invalid("startTime", format!("is not HH:MM: {:?}", self.start_time)))?;
        let end_time = parse_hh_mm(&self.end_time)
            .ok_or_else(|| invalid("endTime", format!("is not HH:MM: {:?}", self.end_time)))?;
        let remaining =
            seat_count(&self.remaining).map_err(|problem| invalid("remaining", problem))?;
        if self.currency_code.trim().is_empty() {
            return Err(invalid("currencyCode", "is empty".into()));
        }

        let mut pax = Vec::with_capacity(self.pax_availability.len());
        let mut seen_types = HashSet::new();
        for wire_pax in self.pax_availability {
            if wire_pax.pax_type.trim().is_empty() {
                return Err(invalid("paxAvailability[].type", "is empty".into()));
            }
            let at = |field: &str| format!("paxAvailability[{}].{field}", wire_pax.pax_type);
            if !seen_types.insert(wire_pax.pax_type.clone()) {
                return Err(invalid(&at("type"), "appears twice in the slot".into()));
            }
            let remaining = seat_count(&wire_pax.remaining)
                .map_err(|problem| invalid(&at("remaining"), problem))?;
            let min = seat_count(&wire_pax.min).map_err(|problem| invalid(&at("min"), problem))?;
            let max = seat_count(&wire_pax.max).map_err(|problem| invalid(&at("max"), problem))?;
            let price = wire_pax.price;
            for (field, amount) in [
                ("price.finalPrice", price.final_price),
                ("price.originalPrice", price.original_price),
            ] {
                if amount < Decimal::ZERO {
                    return Err(invalid(&at(field), format!("is negative: {amount}")));
                }
                if amount.normalize().scale() > MAX_PRICE_DECIMALS {
                    let problem = format!("has more than {MAX_PRICE_DECIMALS} decimals: {amount}");
                    return Err(invalid(&at(field), problem));
                }
                if amount >= Decimal::from(MAX_PRICE) {
                    let problem = format!("is implausibly large: {amount}");
                    return Err(invalid(&at(field), problem));
                }
            }
            // The slot's served price and the "from" price compare pax prices with each
            // other; a pax priced in another currency than its slot would make that
            // comparison silently wrong, so the whole day is rejected instead.
            if price.currency_code != self.currency_code {
                return Err(invalid(
                    &at("price.currencyCode"),
                    format!(
                        "is {:?} but the slot's currencyCode is {:?}",
                        price.currency_code, self.currency_code
                    ),
                ));
            }
            pax.push(PaxAvailability {
                pax_type: wire_pax.pax_type,
                name: wire_pax.name,
                description: wire_pax.description,
                min,
                max,
                remaining,
                is_primary: wire_pax.is_primary,
                price: Price {
                    final_price: price.final_price,
                    original_price: price.original_price,
                    currency: price.currency_code,
                },
            });
        }

        Ok(Slot {
            provider_slot_id: self.provider_slot_id,
            start_date,
            start_time,
            end_time,
            remaining,
            currency: self.currency_code,
            variant_id: self.variant_id,
            pax,
        })
    }
}

/// Parses the partner's strict `HH:MM` (two digits each, 00:00–23:59).
pub fn parse_hh_mm(text: &str) -> Option<NaiveTime> {
    let bytes = text.as_bytes();
    let well_formed = bytes.len() == 5
        && bytes[2] == b':'
        && [0, 1, 3, 4].iter().all(|&i| bytes[i].is_ascii_digit());
    if !well_formed {
        return None;
    }
    NaiveTime::parse_from_str(text, "%H:%M").ok()
}

/// Prices are stored exactly, as integers in minor units at one scale per price: these bounds
/// keep any accepted price within 64 bits (below 10^12 at 10^-6 precision).
const MAX_PRICE_DECIMALS: u32 = 6;
const MAX_PRICE: i64 = 1_000_000_000_000;

/// The largest seat count believed: far beyond any real capacity, and far enough below
/// `i64::MAX` that an experience's partner account (minus the sum of all its pools) can never
/// overflow.
const MAX_SEATS: Seats = 1_000_000_000;

/// A JSON number that must be a non-negative integer (`12.0` and `1e3` are rejected too:
/// the partner never sends them, so seeing one means something upstream changed).
fn seat_count(number: &Number) -> Result<Seats, String> {
    match number.as_i64() {
        Some(count) if (0..=MAX_SEATS).contains(&count) => Ok(count),
        Some(count) if count > MAX_SEATS => Err(format!("is implausibly large: {count}")),
        Some(count) => Err(format!("is negative: {count}")),
        None => Err(format!("is not an integer seat count: {number}")),
    }
}

fn slot_label(element: &serde_json::Value, index: usize) -> String {
    match element
        .get("providerSlotId")
        .and_then(serde_json::Value::as_str)
    {
        Some(id) if !id.trim().is_empty() => format!("#{index} ({id})"),
        _ => format!("#{index}"),
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn null_as_false<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(deserializer)?.unwrap_or(false))
}

fn is_false(value: &bool) -> bool {
    !value
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn price_json(final_price: &str) -> String {
        format!(
            r#"{{"discount":0,"finalPrice":{final_price},"originalPrice":{final_price},"currencyCode":"SGD"}}"#
        )
    }

    #[test]
    fn prices_round_trip_exactly() {
        for text in ["242.14", "73", "0", "212.10", "0.1", "99999999.99"] {
            let price: WirePrice = serde_json::from_str(&price_json(text)).expect("parses");
            assert_eq!(price.final_price, Decimal::from_str(text).expect("decimal"));
            assert_eq!(price.final_price.to_string(), text);
            let written = serde_json::to_string(&price).expect("serialises");
            assert!(
                written.contains(&format!(r#""finalPrice":{text},"#)),
                "{written}"
            );
        }
    }

    #[test]
    fn is_primary_is_written_only_when_true() {
        let pax_json = |primary: &str| {
            format!(
                r#"{{"max":20,"min":1,"remaining":5,"type":"ADULT_12~99",{primary}"description":"d","name":"n","price":{}}}"#,
                price_json("1")
            )
        };
        let primary: WirePax =
            serde_json::from_str(&pax_json(r#""isPrimary":true,"#)).expect("parses");
        let absent: WirePax = serde_json::from_str(&pax_json("")).expect("parses");
        let null: WirePax =
            serde_json::from_str(&pax_json(r#""isPrimary":null,"#)).expect("parses");
        assert!(primary.is_primary);
        assert!(!absent.is_primary && !null.is_primary);
        assert!(
            serde_json::to_string(&primary)
                .expect("ser")
                .contains(r#""isPrimary":true"#)
        );
        assert!(
            !serde_json::to_string(&absent)
                .expect("ser")
                .contains("isPrimary")
        );
    }

    #[test]
    fn hh_mm_is_strict() {
        assert_eq!(parse_hh_mm("04:30"), NaiveTime::from_hms_opt(4, 30, 0));
        assert_eq!(parse_hh_mm("23:59"), NaiveTime::from_hms_opt(23, 59, 0));
        for bad in [
            "4:30", "04:30:00", "24:00", "04:60", "0430", "", "ab:cd", "04-30",
        ] {
            assert_eq!(parse_hh_mm(bad), None, "{bad} accepted");
        }
    }

    #[test]
    fn rate_limit_reset_tolerates_odd_bodies() {
        let reset = rate_limit_reset(br#"{"rateLimitState":{"reset":1764730800000,"limit":"x"}}"#);
        assert_eq!(
            reset.map(|at| at.timestamp_millis()),
            Some(1_764_730_800_000)
        );
        for odd in [
            &b""[..],
            b"[]",
            b"{}",
            br#"{"rateLimitState":{"reset":"soon"}}"#,
            b"<html>",
        ] {
            assert_eq!(rate_limit_reset(odd), None);
        }
    }
}
