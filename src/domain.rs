//! Domain types shared by every layer. They are parsed once at the edge (partner payloads,
//! HTTP paths, config) so the inner layers never re-validate.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use arrayvec::ArrayString;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A partner product id ("experience" on the marketplace side): an opaque string of up to 64
/// URL-safe characters (letters, digits, `-`, `_`, `.`, `~`). Leap's ids are positive integers
/// and stay numbers in JSON; an OCTO product id such as `"6b90-tour"` is a JSON string. Inline
/// and `Copy`, so it is passed around as freely as the integer it generalises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExperienceId(ArrayString<{ ExperienceId::MAX_LEN }>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "experience id must be a positive integer or 1 to 64 letters, digits, '-', '_', '.' or '~', got {0:?}"
)]
pub struct InvalidExperienceId(pub String);

impl ExperienceId {
    pub const MAX_LEN: usize = 64;

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The id as a positive integer when it is one (every Leap id).
    pub fn as_number(&self) -> Option<i64> {
        self.as_str().parse().ok()
    }
}

impl TryFrom<i64> for ExperienceId {
    type Error = InvalidExperienceId;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        if value > 0 {
            value.to_string().parse()
        } else {
            Err(InvalidExperienceId(value.to_string()))
        }
    }
}

impl TryFrom<String> for ExperienceId {
    type Error = InvalidExperienceId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl FromStr for ExperienceId {
    type Err = InvalidExperienceId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let url_safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~');
        // A number must be a positive 64-bit one written plainly (`0`, `-3`, `015` are
        // mistakes, not product ids), so every id of digits alone is a JSON number.
        let digits = s.strip_prefix('-').unwrap_or(s);
        let numeric = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
        let plain_positive = || s.parse::<i64>().is_ok_and(|n| n > 0 && n.to_string() == s);
        if s.is_empty() || !s.chars().all(url_safe) || (numeric && !plain_positive()) {
            return Err(InvalidExperienceId(s.to_string()));
        }
        ArrayString::from(s)
            .map(Self)
            .map_err(|_| InvalidExperienceId(s.to_string()))
    }
}

impl fmt::Display for ExperienceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Numbers first in numeric order (14 before 100), then the other ids in byte order.
impl Ord for ExperienceId {
    fn cmp(&self, other: &Self) -> Ordering {
        let key = |id: &Self| {
            let number = id.as_number();
            (number.is_none(), number, id.0)
        };
        key(self).cmp(&key(other))
    }
}

impl PartialOrd for ExperienceId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Serialize for ExperienceId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.as_number() {
            Some(number) => serializer.serialize_i64(number),
            None => serializer.serialize_str(self.as_str()),
        }
    }
}

impl<'de> Deserialize<'de> for ExperienceId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            // serde_json's number, not i64: with `arbitrary_precision` an untagged i64 fails.
            Number(serde_json::Number),
            Text(String),
        }
        match Wire::deserialize(deserializer)? {
            Wire::Number(number) => match number.as_i64() {
                Some(number) => Self::try_from(number),
                None => Err(InvalidExperienceId(number.to_string())),
            },
            Wire::Text(text) => text.parse(),
        }
        .map_err(serde::de::Error::custom)
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

/// A price as exact integers: minor units at one explicit scale shared by both amounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinorUnits {
    pub final_price: i64,
    pub original_price: i64,
    pub scale: u32,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("price {0} does not fit 64 bits")]
pub struct PriceOutOfRange(pub Decimal);

impl MinorUnits {
    pub fn from_price(price: &Price) -> Result<Self, PriceOutOfRange> {
        let final_price = price.final_price.normalize();
        let original_price = price.original_price.normalize();
        let scale = final_price.scale().max(original_price.scale());
        let to_minor = |mut amount: Decimal| {
            amount.rescale(scale);
            i64::try_from(amount.mantissa()).map_err(|_| PriceOutOfRange(amount))
        };
        Ok(Self {
            final_price: to_minor(final_price)?,
            original_price: to_minor(original_price)?,
            scale,
        })
    }

    pub fn into_price(self, currency: String) -> Price {
        Price {
            final_price: Decimal::new(self.final_price, self.scale).normalize(),
            original_price: Decimal::new(self.original_price, self.scale).normalize(),
            currency,
        }
    }
}

/// A sellable date and its "from" price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatePrice {
    pub date: NaiveDate,
    pub price: Price,
}

/// A pax price on a sellable slot, as the "from" price rule reads it.
pub(crate) struct SellablePaxPrice {
    pub date: NaiveDate,
    pub slot_id: i64,
    pub is_primary: bool,
    pub price: Price,
}

/// The "from" price of each date: per slot the primary pax (else the first in partner order;
/// rows must come ordered by date, slot and position), then the lowest final price per date
/// among the slots priced in the currency of the day's first slot: prices in different
/// currencies are not comparable, so a slot in another currency never sets the day's price.
pub(crate) fn cheapest_primary_by_date(rows: Vec<SellablePaxPrice>) -> Vec<DatePrice> {
    let mut dates: Vec<DatePrice> = Vec::new();
    let mut slot_prices: Vec<(NaiveDate, Price)> = Vec::new();
    let mut current_slot: Option<(i64, bool)> = None;
    for row in rows {
        match current_slot {
            Some((slot, _)) if slot != row.slot_id => current_slot = None,
            _ => {}
        }
        match current_slot {
            None => {
                slot_prices.push((row.date, row.price));
                current_slot = Some((row.slot_id, row.is_primary));
            }
            Some((slot, false)) if row.is_primary => {
                if let Some(last) = slot_prices.last_mut() {
                    last.1 = row.price;
                }
                current_slot = Some((slot, true));
            }
            Some(_) => {}
        }
    }
    for (date, price) in slot_prices {
        match dates.last_mut() {
            Some(last) if last.date == date => {
                if price.currency == last.price.currency
                    && price.final_price < last.price.final_price
                {
                    last.price = price;
                }
            }
            _ => dates.push(DatePrice { date, price }),
        }
    }
    dates
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
    fn experience_ids_are_url_safe_strings_and_numbers_stay_numbers() {
        let leap: ExperienceId = "14".parse().unwrap();
        assert_eq!(leap.as_number(), Some(14));
        assert_eq!(serde_json::to_string(&leap).unwrap(), "14");
        let octo: ExperienceId = "6b90-tour_A.1~".parse().unwrap();
        assert_eq!(octo.as_number(), None);
        assert_eq!(serde_json::to_string(&octo).unwrap(), "\"6b90-tour_A.1~\"");
        for text in ["14", "\"14\"", "\"6b90-tour_A.1~\"", "\"007a\""] {
            let id: ExperienceId = serde_json::from_str(text).unwrap();
            let again: ExperienceId =
                serde_json::from_str(&serde_json::to_string(&id).unwrap()).unwrap();
            assert_eq!(id, again, "{text}");
        }
        let too_long = "x".repeat(ExperienceId::MAX_LEN + 1);
        let bad_ids = [
            "0",
            "000",
            "007",
            "-3",
            "99999999999999999999",
            "",
            "a b",
            "a/b",
            "é",
            "1.5e3 ",
        ];
        for bad in bad_ids.into_iter().chain([too_long.as_str()]) {
            assert!(bad.parse::<ExperienceId>().is_err(), "{bad:?} accepted");
        }
        for bad in ["0", "-3", "1.5", "\"\"", "\"a/b\"", "null"] {
            assert!(
                serde_json::from_str::<ExperienceId>(bad).is_err(),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn experience_ids_sort_numbers_numerically_then_strings() {
        let mut ids: Vec<ExperienceId> = ["b", "100", "a", "14", "007a"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        ids.sort();
        let order: Vec<&str> = ids.iter().map(ExperienceId::as_str).collect();
        assert_eq!(order, ["14", "100", "007a", "a", "b"]);
    }

    fn price(final_price: &str) -> Price {
        Price {
            final_price: Decimal::from_str(final_price).unwrap(),
            original_price: Decimal::from_str("999.9").unwrap(),
            currency: "SGD".into(),
        }
    }

    #[test]
    fn minor_units_round_trip_exactly() {
        for text in ["242.14", "73", "0", "0.1", "1234567.891"] {
            let p = price(text);
            let units = MinorUnits::from_price(&p).unwrap();
            assert_eq!(units.into_price("SGD".into()), p, "{text}");
        }
        let units = MinorUnits::from_price(&price("242.14")).unwrap();
        assert_eq!((units.final_price, units.scale), (24214, 2));
    }

    #[test]
    fn from_price_uses_primary_pax_not_free_infant() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
        let row = |slot_id, is_primary, p: &str| SellablePaxPrice {
            date: day,
            slot_id,
            is_primary,
            price: price(p),
        };
        let rows = vec![
            row(1, false, "0"),
            row(1, true, "341"),
            row(1, false, "137"),
            row(2, false, "400"),
            row(2, false, "5"),
        ];
        let dates = cheapest_primary_by_date(rows);
        assert_eq!(dates.len(), 1);
        assert_eq!(dates[0].price.final_price, Decimal::from(341));
    }

    #[test]
    fn from_price_compares_prices_within_one_currency() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
        let row = |slot_id, p: &str, currency: &str| SellablePaxPrice {
            date: day,
            slot_id,
            is_primary: true,
            price: Price {
                currency: currency.into(),
                ..price(p)
            },
        };
        let rows = vec![
            row(1, "341", "SGD"),
            row(2, "5", "USD"),
            row(3, "300", "SGD"),
        ];
        let dates = cheapest_primary_by_date(rows);
        assert_eq!(dates.len(), 1);
        assert_eq!(dates[0].price.final_price, Decimal::from(300));
        assert_eq!(dates[0].price.currency, "SGD");
    }

    #[test]
    fn secret_debug_is_redacted() {
        let secret = Secret::new("hunter2");
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}
