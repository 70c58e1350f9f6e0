//! From mirrored slots to OCTO's products, availabilities and calendar days. An experience is
//! a product with one option; its pax types are the option's units; each slot is an
//! availability whose id is its local start.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;

use super::error::OctoError;
use super::wire::{
    AvailabilityBody, AvailabilityStatus, CalendarDayBody, OptionBody, OptionRestrictionsBody,
    PricingBody, ProductBody, UnitBody, UnitPricingBody, UnitRestrictionsBody, UnitType,
};
use crate::domain::{ExperienceId, PaxAvailability, Price, Seats};
use crate::storage::ServedSlot;

/// The one option of every product.
pub const OPTION_ID: &str = "DEFAULT";

/// An availability id and a local date-time as OCTO writes them: ISO 8601 with the offset.
const LOCAL_DATE_TIME: &str = "%Y-%m-%dT%H:%M:%S%:z";

/// What the slots seen in the synced horizon tell about one product.
pub struct Catalogue {
    start_times: BTreeSet<NaiveTime>,
    /// In the order first seen (the partner lists the primary pax first).
    units: Vec<UnitSeen>,
}

struct UnitSeen {
    pax_type: String,
    name: String,
    /// The loosest bounds seen: a slot may be stricter, and a booking is checked against its
    /// slot's.
    min: i64,
    max: i64,
    lowest_prices: Vec<Price>,
}

impl Catalogue {
    pub fn new<'a>(slots: impl IntoIterator<Item = &'a ServedSlot>) -> Self {
        let mut catalogue = Self {
            start_times: BTreeSet::new(),
            units: Vec::new(),
        };
        for slot in slots {
            catalogue.start_times.insert(slot.start_time);
            for pax in &slot.pax {
                match catalogue
                    .units
                    .iter_mut()
                    .find(|unit| unit.pax_type == pax.pax_type)
                {
                    Some(unit) => {
                        unit.min = unit.min.min(pax.min);
                        unit.max = unit.max.max(pax.max);
                        keep_lowest(&mut unit.lowest_prices, &pax.price);
                    }
                    None => catalogue.units.push(UnitSeen {
                        pax_type: pax.pax_type.clone(),
                        name: pax.name.clone(),
                        min: pax.min,
                        max: pax.max,
                        lowest_prices: vec![pax.price.clone()],
                    }),
                }
            }
        }
        catalogue
    }

    /// Whether no slot was seen: OCTO has no way to describe a product without a start time.
    pub fn is_empty(&self) -> bool {
        self.start_times.is_empty()
    }

    pub fn has_unit(&self, unit_id: &str) -> bool {
        self.units.iter().any(|unit| unit.pax_type == unit_id)
    }

    pub fn product(
        &self,
        id: ExperienceId,
        zone: Tz,
        pricing: bool,
    ) -> Result<ProductBody, OctoError> {
        let units = self
            .units
            .iter()
            .map(|unit| unit.body(pricing))
            .collect::<Result<Vec<_>, _>>()?;
        let currencies: BTreeSet<&str> = self
            .units
            .iter()
            .flat_map(|unit| &unit.lowest_prices)
            .map(|price| price.currency.as_str())
            .collect();
        let default_currency = self
            .units
            .first()
            .and_then(|unit| unit.lowest_prices.first())
            .map(|price| price.currency.clone());
        Ok(ProductBody {
            id: id.to_string(),
            internal_name: format!("Experience {id}"),
            reference: None,
            locale: "en",
            time_zone: zone.name().to_string(),
            allow_freesale: false,
            instant_confirmation: true,
            instant_delivery: true,
            availability_required: true,
            availability_type: "START_TIME",
            delivery_formats: vec!["QRCODE"],
            delivery_methods: vec!["VOUCHER"],
            // The partner checks names against its list: sales are settled with it directly.
            redemption_method: "MANIFEST",
            options: vec![OptionBody {
                id: OPTION_ID,
                default: true,
                internal_name: "Default",
                reference: None,
                availability_local_start_times: self
                    .start_times
                    .iter()
                    .map(|time| time.format("%H:%M").to_string())
                    .collect(),
                // A booking can be cancelled until the slot starts.
                cancellation_cutoff: "0 minutes",
                cancellation_cutoff_amount: 0,
                cancellation_cutoff_unit: "minute",
                required_contact_fields: Vec::new(),
                restrictions: OptionRestrictionsBody {
                    min_units: 1,
                    max_units: None,
                },
                units,
            }],
            default_currency: default_currency.filter(|_| pricing),
            available_currencies: pricing
                .then(|| currencies.into_iter().map(str::to_string).collect()),
            pricing_per: pricing.then_some("UNIT"),
            // The partner's final price is what the customer pays.
            include_tax: pricing.then_some(true),
        })
    }
}

impl UnitSeen {
    fn body(&self, pricing: bool) -> Result<UnitBody, OctoError> {
        let (min_age, max_age) = ages(&self.pax_type);
        Ok(UnitBody {
            id: self.pax_type.clone(),
            internal_name: if self.name.is_empty() {
                self.pax_type.clone()
            } else {
                self.name.clone()
            },
            reference: None,
            unit_type: unit_type(&self.pax_type),
            restrictions: UnitRestrictionsBody {
                min_age,
                max_age,
                id_required: false,
                min_quantity: Some(self.min),
                max_quantity: Some(self.max),
                pax_count: 1,
                accompanied_by: Vec::new(),
            },
            required_contact_fields: Vec::new(),
            pricing_from: pricing
                .then(|| {
                    self.lowest_prices
                        .iter()
                        .map(pricing_body)
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?,
        })
    }
}

/// A pax type's OCTO type, from its name's leading word (`ADULT_12~99` is an adult).
pub fn unit_type(pax_type: &str) -> UnitType {
    let word = pax_type
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or_default();
    match word.to_ascii_uppercase().as_str() {
        "ADULT" => UnitType::Adult,
        "YOUTH" => UnitType::Youth,
        "CHILD" => UnitType::Child,
        "INFANT" => UnitType::Infant,
        "FAMILY" => UnitType::Family,
        "SENIOR" => UnitType::Senior,
        "STUDENT" => UnitType::Student,
        "MILITARY" => UnitType::Military,
        _ => UnitType::Other,
    }
}

/// The age range a pax type's name carries (`CHILD_3~11`), else any age.
fn ages(pax_type: &str) -> (u32, u32) {
    pax_type
        .split_once('_')
        .and_then(|(_, range)| range.split_once('~'))
        .and_then(|(min, max)| Some((min.trim().parse().ok()?, max.trim().parse().ok()?)))
        .unwrap_or((0, 99))
}

/// Keeps, per currency, the lowest final price.
fn keep_lowest(lowest: &mut Vec<Price>, price: &Price) {
    match lowest
        .iter_mut()
        .find(|kept| kept.currency == price.currency)
    {
        Some(kept) if price.final_price < kept.final_price => *kept = price.clone(),
        Some(_) => {}
        None => lowest.push(price.clone()),
    }
}

/// The digits after the decimal point of an ISO 4217 currency's minor unit.
fn iso_minor_digits(currency: &str) -> u32 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        "CLF" | "UYW" => 4,
        _ => 2,
    }
}

/// A price in minor units, exactly: the currency's usual precision, or more when the partner
/// sent more digits, so no amount is ever rounded.
pub fn pricing_body(price: &Price) -> Result<PricingBody, OctoError> {
    let retail = price.final_price.normalize();
    let original = price.original_price.normalize();
    let precision = iso_minor_digits(&price.currency)
        .max(retail.scale())
        .max(original.scale());
    let minor = |mut amount: Decimal| {
        amount.rescale(precision);
        i64::try_from(amount.mantissa()).map_err(|_| {
            tracing::error!(%amount, "a price does not fit 64 bits in minor units");
            OctoError::Internal
        })
    };
    Ok(PricingBody {
        original: minor(original)?,
        retail: minor(retail)?,
        net: None,
        currency: price.currency.clone(),
        currency_precision: precision,
        included_taxes: Vec::new(),
    })
}

fn unit_prices(lowest: &[(String, Price)]) -> Result<Vec<UnitPricingBody>, OctoError> {
    lowest
        .iter()
        .map(|(unit_id, price)| {
            Ok(UnitPricingBody {
                unit_id: unit_id.clone(),
                pricing: pricing_body(price)?,
            })
        })
        .collect()
}

/// A local date-time in the product's zone. A time inside a daylight-saving gap does not
/// exist there; it is read with the offset in force before the gap (02:30 becomes 03:30).
fn zoned(zone: Tz, local: NaiveDateTime) -> DateTime<Tz> {
    zone.from_local_datetime(&local)
        .earliest()
        .unwrap_or_else(|| {
            let before = zone
                .offset_from_utc_datetime(&(local - Duration::days(1)))
                .fix();
            zone.from_utc_datetime(&(local - Duration::seconds(before.local_minus_utc().into())))
        })
}

/// An availability id as this supplier writes it, read back: the local date it falls on in
/// `zone` and its canonical form (the same instant written with the zone's offset).
pub fn parse_availability_id(zone: Tz, id: &str) -> Option<(NaiveDate, String)> {
    let start = DateTime::parse_from_rfc3339(id).ok()?.with_timezone(&zone);
    Some((
        start.date_naive(),
        start.format(LOCAL_DATE_TIME).to_string(),
    ))
}

/// A slot's start and end in the product's zone.
pub struct SlotTimes {
    pub start: DateTime<Tz>,
    pub end: DateTime<Tz>,
}

impl SlotTimes {
    pub fn new(zone: Tz, date: NaiveDate, start: NaiveTime, end: NaiveTime) -> Self {
        // An end before the start is on the next day.
        let end_date = if end < start {
            date.succ_opt().unwrap_or(date)
        } else {
            date
        };
        Self {
            start: zoned(zone, date.and_time(start)),
            end: zoned(zone, end_date.and_time(end)),
        }
    }

    /// The availability id: the local start with its offset.
    pub fn id(&self) -> String {
        self.start.format(LOCAL_DATE_TIME).to_string()
    }

    pub fn local_end(&self) -> String {
        self.end.format(LOCAL_DATE_TIME).to_string()
    }
}

/// One slot as an OCTO availability at `now`.
pub fn availability(
    slot: &ServedSlot,
    zone: Tz,
    now: DateTime<Utc>,
    pricing: bool,
) -> Result<AvailabilityBody, OctoError> {
    let times = SlotTimes::new(zone, slot.start_date, slot.start_time, slot.end_time);
    let start = times.start;
    // A booking takes seats from the slot and from each pax type it names.
    let pax_seats = slot.pax.iter().fold(0, |sum: Seats, pax| {
        sum.saturating_add(pax.remaining.max(0))
    });
    let vacancies = slot.remaining.max(0).min(pax_seats);
    let capacity = slot.allotment.max(vacancies);
    let largest_booking = slot
        .pax
        .iter()
        .fold(0, |sum: i64, pax| sum.saturating_add(pax.max.max(0)));
    let status = if now >= start.with_timezone(&Utc) {
        AvailabilityStatus::Closed
    } else if vacancies == 0 {
        AvailabilityStatus::SoldOut
    } else if vacancies < capacity - vacancies {
        AvailabilityStatus::Limited
    } else {
        AvailabilityStatus::Available
    };
    let unit_pricing = pricing
        .then(|| {
            let prices: Vec<(String, Price)> = slot
                .pax
                .iter()
                .map(|pax| (pax.pax_type.clone(), pax.price.clone()))
                .collect();
            unit_prices(&prices)
        })
        .transpose()?;
    let id = times.id();
    Ok(AvailabilityBody {
        local_date_time_start: id.clone(),
        id,
        local_date_time_end: times.local_end(),
        utc_cutoff_at: start
            .with_timezone(&Utc)
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
        all_day: false,
        available: status.is_available(),
        status,
        vacancies,
        capacity,
        max_units: vacancies.min(largest_booking),
        opening_hours: Vec::new(),
        unit_pricing,
    })
}

/// One day of the calendar from its slots: the best status of a slot, the most vacancies and
/// capacity of one slot, and per unit the lowest price among the slots still on sale.
pub fn calendar_day(
    date: NaiveDate,
    slots: &[ServedSlot],
    zone: Tz,
    now: DateTime<Utc>,
    pricing: bool,
) -> Result<CalendarDayBody, OctoError> {
    let mut status = AvailabilityStatus::Closed;
    let mut vacancies = 0;
    let mut capacity = 0;
    let mut lowest: Vec<(String, Price)> = Vec::new();
    for slot in slots {
        let slot_availability = availability(slot, zone, now, false)?;
        status = status.max(slot_availability.status);
        capacity = capacity.max(slot_availability.capacity);
        if slot_availability.status != AvailabilityStatus::Closed {
            vacancies = vacancies.max(slot_availability.vacancies);
        }
        if slot_availability.available {
            keep_lowest_per_unit(&mut lowest, &slot.pax);
        }
    }
    Ok(CalendarDayBody {
        local_date: date.to_string(),
        available: status.is_available(),
        status,
        vacancies,
        capacity,
        opening_hours: Vec::new(),
        unit_pricing_from: pricing.then(|| unit_prices(&lowest)).transpose()?,
    })
}

/// Keeps, per unit and currency, the lowest final price, units in the order first seen.
fn keep_lowest_per_unit(lowest: &mut Vec<(String, Price)>, pax: &[PaxAvailability]) {
    for pax in pax {
        match lowest.iter_mut().find(|(unit_id, price)| {
            *unit_id == pax.pax_type && price.currency == pax.price.currency
        }) {
            Some((_, kept)) if pax.price.final_price < kept.final_price => {
                *kept = pax.price.clone()
            }
            Some(_) => {}
            None => lowest.push((pax.pax_type.clone(), pax.price.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn price(final_price: &str, original: &str, currency: &str) -> Price {
        Price {
            final_price: Decimal::from_str(final_price).expect("amount"),
            original_price: Decimal::from_str(original).expect("amount"),
            currency: currency.into(),
        }
    }

    #[test]
    fn unit_types_come_from_the_pax_type_name() {
        for (pax_type, expected) in [
            ("ADULT_12~99", UnitType::Adult),
            ("CHILD_3~11", UnitType::Child),
            ("INFANT_0~4", UnitType::Infant),
            ("youth", UnitType::Youth),
            ("SENIOR_65~99", UnitType::Senior),
            ("STUDENT", UnitType::Student),
            ("FAMILY_4", UnitType::Family),
            ("GROUP_10", UnitType::Other),
            ("", UnitType::Other),
        ] {
            assert_eq!(unit_type(pax_type), expected, "{pax_type}");
        }
        assert_eq!(ages("ADULT_12~99"), (12, 99));
        assert_eq!(ages("CHILD_5~15"), (5, 15));
        assert_eq!(ages("ADULT"), (0, 99));
        assert_eq!(ages("ADULT_x~9"), (0, 99));
    }

    #[test]
    fn prices_become_exact_minor_units() {
        let adult = pricing_body(&price("212.14", "312.14", "SGD")).expect("fits");
        assert_eq!((adult.retail, adult.original), (21214, 31214));
        assert_eq!(adult.currency_precision, 2);
        let child = pricing_body(&price("73", "173", "SGD")).expect("fits");
        assert_eq!((child.retail, child.original), (7300, 17300));
        let yen = pricing_body(&price("4500", "5000", "JPY")).expect("fits");
        assert_eq!((yen.retail, yen.currency_precision), (4500, 0));
        // More digits than the currency's usual: kept, never rounded.
        let fine = pricing_body(&price("0.125", "0.2", "USD")).expect("fits");
        assert_eq!(
            (fine.retail, fine.original, fine.currency_precision),
            (125, 200, 3)
        );
        assert!(pricing_body(&price("99999999999999999999", "1", "SGD")).is_err());
    }

    #[test]
    fn availability_ids_are_read_in_the_products_zone() {
        let zone = chrono_tz::Asia::Singapore;
        let (date, canonical) =
            parse_availability_id(zone, "2026-12-05T17:00:00Z").expect("valid id");
        assert_eq!(date, NaiveDate::from_ymd_opt(2026, 12, 6).expect("date"));
        assert_eq!(canonical, "2026-12-06T01:00:00+08:00");
        assert!(parse_availability_id(zone, "2026-12-06 01:00").is_none());
    }

    #[test]
    fn a_time_in_a_daylight_saving_gap_still_has_an_instant() {
        let zone = chrono_tz::Europe::Berlin;
        let gap = NaiveDate::from_ymd_opt(2026, 3, 29)
            .expect("date")
            .and_hms_opt(2, 30, 0)
            .expect("time");
        assert_eq!(
            zoned(zone, gap).format(LOCAL_DATE_TIME).to_string(),
            "2026-03-29T03:30:00+02:00"
        );
    }
}
