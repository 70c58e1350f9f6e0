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
    fn experience_id_parses_only_positive_integers() {
        assert_eq!("14".parse::<ExperienceId>().map(ExperienceId::get), Ok(14));
        for bad in ["0", "-3", "abc", "1.5", "", "99999999999999999999"] {
            assert!(bad.parse::<ExperienceId>().is_err(), "{bad} accepted");
        }
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
