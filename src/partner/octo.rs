//! The OCTO form of the partner API (octo.travel), as suppliers such as Ventrata and Bókun
//! serve it: a product's option and units from `GET /products/{id}`, its availability from
//! `POST /availability` with `octo/pricing`. Each availability of the day becomes a slot in
//! the Leap wire form and goes through the same validation, so both kinds store alike.
//!
//! OCTO has no seats per unit: every pax pool of a slot follows the slot's `vacancies`.

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Number;

use super::wire::{DayParseError, WirePax, WirePrice, WireSlot, validate_day};
use crate::domain::Slot;

/// The capability asked for on availability: unit prices with each slot.
pub const PRICING: &str = "octo/pricing";

/// The allotment of a freesale availability (no vacancies, no capacity).
pub const FREESALE_SEATS: i64 = 1_000_000;

/// The option of a product this service syncs, with its units in the supplier's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OctoOption {
    pub product_id: String,
    pub option_id: String,
    pub units: Vec<OctoUnit>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OctoUnit {
    pub id: String,
    pub name: String,
    pub description: String,
    pub unit_type: String,
    pub min: Option<Number>,
    pub max: Option<Number>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireProduct {
    id: String,
    #[serde(default)]
    options: Vec<WireOption>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireOption {
    id: String,
    #[serde(default)]
    default: bool,
    #[serde(default)]
    units: Vec<WireUnit>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireUnit {
    id: String,
    #[serde(default)]
    internal_name: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    reference: Option<String>,
    #[serde(default, rename = "type")]
    unit_type: Option<String>,
    #[serde(default)]
    restrictions: Option<WireUnitRestrictions>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireUnitRestrictions {
    #[serde(default)]
    min_quantity: Option<Number>,
    #[serde(default)]
    max_quantity: Option<Number>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireAvailability {
    id: String,
    local_date_time_start: String,
    local_date_time_end: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    vacancies: Option<Number>,
    #[serde(default)]
    capacity: Option<Number>,
    #[serde(default)]
    unit_pricing: Vec<WireUnitPricing>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireUnitPricing {
    unit_id: String,
    original: i64,
    retail: i64,
    currency: String,
    currency_precision: u32,
}

/// The option to sync of a `GET /products/{id}` answer: `option_id`, else the product's
/// default option, else its first.
pub fn parse_product(body: &[u8], option_id: Option<&str>) -> Result<OctoOption, String> {
    let product: WireProduct =
        serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(body))
            .map_err(|error| format!("product: {error}"))?;
    let option = match option_id {
        Some(wanted) => product
            .options
            .into_iter()
            .find(|option| option.id == wanted),
        None => {
            let default = product.options.iter().position(|option| option.default);
            let mut options = product.options;
            match default {
                Some(at) => Some(options.swap_remove(at)),
                None => options.into_iter().next(),
            }
        }
    }
    .ok_or_else(|| {
        format!(
            "product {:?} has no option {}",
            product.id,
            option_id.unwrap_or("at all")
        )
    })?;
    if option.units.is_empty() {
        return Err(format!("option {:?} has no units", option.id));
    }
    let units = option
        .units
        .into_iter()
        .map(|unit| {
            let (min, max) = unit
                .restrictions
                .map_or((None, None), |r| (r.min_quantity, r.max_quantity));
            OctoUnit {
                name: unit
                    .internal_name
                    .or(unit.title)
                    .unwrap_or_else(|| unit.id.clone()),
                description: unit.reference.unwrap_or_default(),
                unit_type: unit.unit_type.unwrap_or_default(),
                id: unit.id,
                min,
                max,
            }
        })
        .collect();
    Ok(OctoOption {
        product_id: product.id,
        option_id: option.id,
        units,
    })
}

/// The slots of each of `dates` in a `POST /availability` answer, a date without any
/// included. A `CLOSED` availability is left out (its slot is closed, as a vanished Leap slot
/// is); one of a date not asked for is ignored.
pub fn parse_availability(
    body: &[u8],
    option: &OctoOption,
    dates: &[NaiveDate],
) -> Result<Vec<(NaiveDate, Vec<Slot>)>, DayParseError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|error| DayParseError::NotJson(error.to_string()))?;
    let serde_json::Value::Array(elements) = value else {
        return Err(DayParseError::NotAnArray("something else"));
    };
    let mut by_date: Vec<(NaiveDate, Vec<WireSlot>)> =
        dates.iter().map(|&date| (date, Vec::new())).collect();
    for (index, element) in elements.into_iter().enumerate() {
        let availability: WireAvailability =
            serde_path_to_error::deserialize(element).map_err(|error| {
                DayParseError::SlotShape {
                    slot: format!("#{index}"),
                    detail: error.to_string(),
                }
            })?;
        if availability.status.as_deref() == Some("CLOSED") {
            continue;
        }
        let start = local_date_time(&availability, &availability.local_date_time_start)?;
        if let Some((_, slots)) = by_date.iter_mut().find(|(day, _)| *day == start.date()) {
            slots.push(wire_slot(availability, option)?);
        }
    }
    by_date
        .into_iter()
        .map(|(date, slots)| Ok((date, validate_day(slots, date)?)))
        .collect()
}

/// A local date-time of an availability, as written (its offset dropped).
fn local_date_time(
    availability: &WireAvailability,
    text: &str,
) -> Result<NaiveDateTime, DayParseError> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.naive_local())
        .map_err(|_| DayParseError::SlotShape {
            slot: availability.id.clone(),
            detail: format!("{text:?} is not an ISO 8601 date-time with an offset"),
        })
}

/// One availability as a Leap wire slot.
fn wire_slot(
    availability: WireAvailability,
    option: &OctoOption,
) -> Result<WireSlot, DayParseError> {
    let shape = |detail: String| DayParseError::SlotShape {
        slot: availability.id.clone(),
        detail,
    };
    let start = local_date_time(&availability, &availability.local_date_time_start)?;
    let end = local_date_time(&availability, &availability.local_date_time_end)?;
    // A freesale availability has no vacancies; its capacity, if any, is what can be sold,
    // else it sells without a limit the ledger could hold: it is given a large allotment.
    let vacancies = availability
        .vacancies
        .clone()
        .or_else(|| availability.capacity.clone())
        .unwrap_or_else(|| Number::from(FREESALE_SEATS));
    let primary = option
        .units
        .iter()
        .position(|unit| unit.unit_type == "ADULT")
        .unwrap_or(0);
    let mut currency = None;
    let mut pax = Vec::with_capacity(option.units.len());
    for (place, unit) in option.units.iter().enumerate() {
        // A unit without a price here is not sold at this slot.
        let Some(pricing) = availability
            .unit_pricing
            .iter()
            .find(|pricing| pricing.unit_id == unit.id)
        else {
            continue;
        };
        let scale = pricing.currency_precision;
        if scale > 28 {
            return Err(shape(format!(
                "currencyPrecision {scale} of unit {:?} is out of range",
                unit.id
            )));
        }
        currency.get_or_insert_with(|| pricing.currency.clone());
        pax.push(WirePax {
            min: unit.min.clone().unwrap_or_else(|| Number::from(0)),
            max: unit.max.clone().unwrap_or_else(|| vacancies.clone()),
            remaining: vacancies.clone(),
            pax_type: unit.id.clone(),
            is_primary: place == primary,
            description: unit.description.clone(),
            name: unit.name.clone(),
            price: WirePrice {
                discount: Decimal::ZERO,
                final_price: Decimal::new(pricing.retail, scale),
                original_price: Decimal::new(pricing.original, scale),
                currency_code: pricing.currency.clone(),
            },
        });
    }
    if pax.is_empty() {
        return Err(shape("has no unitPricing for any unit".into()));
    }
    Ok(WireSlot {
        start_date: start.date().format("%Y-%m-%d").to_string(),
        start_time: start.format("%H:%M").to_string(),
        end_time: end.format("%H:%M").to_string(),
        provider_slot_id: availability.id,
        remaining: vacancies,
        currency_code: currency.unwrap_or_default(),
        variant_id: 0,
        pax_availability: pax,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A product as `octotravel/octomock` shapes one: extra fields, a unit without
    /// restrictions' quantities.
    const PRODUCT: &str = r#"{
        "id": "6b903f95-b2b4-4a0b-8b8d-7c8a59f2b8a1", "internalName": "Tour", "locale": "en",
        "timeZone": "Europe/London", "availabilityType": "START_TIME",
        "options": [
          {"id": "OTHER", "default": false, "units": [{"id": "x"}]},
          {"id": "DEFAULT", "default": true, "internalName": "Default",
           "units": [
             {"id": "unit_child", "internalName": "Child", "type": "CHILD",
              "restrictions": {"minAge": 3, "maxAge": 17, "minQuantity": null, "maxQuantity": 10}},
             {"id": "unit_adult", "internalName": "Adult", "reference": "18+", "type": "ADULT",
              "restrictions": {"minAge": 18, "maxAge": 99}}]}]}"#;

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 6).expect("date")
    }

    #[test]
    fn the_default_option_and_its_units_are_read() {
        let option = parse_product(PRODUCT.as_bytes(), None).expect("parses");
        assert_eq!(option.option_id, "DEFAULT");
        let names: Vec<&str> = option.units.iter().map(|unit| unit.name.as_str()).collect();
        assert_eq!(names, ["Child", "Adult"]);
        assert!(parse_product(PRODUCT.as_bytes(), Some("NONE")).is_err());
        assert_eq!(
            parse_product(PRODUCT.as_bytes(), Some("OTHER"))
                .expect("named option")
                .option_id,
            "OTHER"
        );
    }

    #[test]
    fn availabilities_become_validated_slots_with_exact_prices() {
        let option = parse_product(PRODUCT.as_bytes(), None).expect("parses");
        let body = r#"[
          {"id": "2026-12-06T09:00:00+00:00", "localDateTimeStart": "2026-12-06T09:00:00+00:00",
           "localDateTimeEnd": "2026-12-06T11:30:00+00:00", "allDay": false, "available": true,
           "status": "AVAILABLE", "vacancies": 12, "capacity": 20, "maxUnits": null,
           "unitPricing": [
             {"unitId": "unit_adult", "original": 5000, "retail": 4550, "net": null,
              "currency": "GBP", "currencyPrecision": 2, "includedTaxes": []},
             {"unitId": "unit_child", "original": 2500, "retail": 2500, "net": null,
              "currency": "GBP", "currencyPrecision": 2, "includedTaxes": []}]},
          {"id": "2026-12-06T14:00:00+00:00", "localDateTimeStart": "2026-12-06T14:00:00+00:00",
           "localDateTimeEnd": "2026-12-06T16:00:00+00:00", "status": "CLOSED", "vacancies": 0,
           "unitPricing": []},
          {"id": "2026-12-07T09:00:00+00:00", "localDateTimeStart": "2026-12-07T09:00:00+00:00",
           "localDateTimeEnd": "2026-12-07T11:00:00+00:00", "status": "AVAILABLE",
           "vacancies": 3, "unitPricing": [
             {"unitId": "unit_adult", "original": 5000, "retail": 5000,
              "currency": "GBP", "currencyPrecision": 2}]},
          {"id": "2026-12-09T09:00:00+00:00", "localDateTimeStart": "2026-12-09T09:00:00+00:00",
           "localDateTimeEnd": "2026-12-09T11:00:00+00:00", "unitPricing": []}]"#;
        let next = day().succ_opt().expect("date");
        let days = parse_availability(body.as_bytes(), &option, &[day(), next]).expect("parses");
        assert_eq!(days.len(), 2, "a date not asked for is not read");
        assert_eq!(days[1].0, next);
        assert_eq!(days[1].1.len(), 1, "the next day's slot is its own");
        assert_eq!(
            days[1].1[0].pax.len(),
            1,
            "a unit without a price is not sold there"
        );
        let (date, slots) = &days[0];
        assert_eq!(*date, day());
        assert_eq!(slots.len(), 1, "the closed one is not on sale");
        let slot = &slots[0];
        assert_eq!(slot.provider_slot_id, "2026-12-06T09:00:00+00:00");
        assert_eq!(slot.start_time.format("%H:%M").to_string(), "09:00");
        assert_eq!(slot.end_time.format("%H:%M").to_string(), "11:30");
        assert_eq!(slot.remaining, 12);
        let adult = slot
            .pax
            .iter()
            .find(|pax| pax.pax_type == "unit_adult")
            .expect("adult");
        assert!(adult.is_primary);
        assert_eq!(adult.price.final_price, Decimal::new(4550, 2));
        assert_eq!(adult.price.original_price, Decimal::new(50, 0));
        assert_eq!((adult.min, adult.max, adult.remaining), (0, 12, 12));
        let child = slot
            .pax
            .iter()
            .find(|pax| pax.pax_type == "unit_child")
            .expect("child");
        assert_eq!(child.max, 10);
    }

    #[test]
    fn a_broken_availability_is_a_typed_error_naming_it() {
        let option = parse_product(PRODUCT.as_bytes(), None).expect("parses");
        for body in [
            "not json",
            "{}",
            r#"[{"id": "a", "localDateTimeStart": "tomorrow", "localDateTimeEnd": "x"}]"#,
            r#"[{"id": "a", "localDateTimeStart": "2026-12-06T09:00:00Z",
                 "localDateTimeEnd": "2026-12-06T10:00:00Z", "vacancies": -1,
                 "unitPricing": [
                   {"unitId": "unit_adult", "original": 1, "retail": 1, "currency": "GBP", "currencyPrecision": 2},
                   {"unitId": "unit_child", "original": 1, "retail": 1, "currency": "GBP", "currencyPrecision": 2}]}]"#,
            r#"[{"id": "a", "localDateTimeStart": "2026-12-06T09:00:00Z",
                 "localDateTimeEnd": "2026-12-06T10:00:00Z", "vacancies": 4, "unitPricing": []}]"#,
        ] {
            assert!(
                parse_availability(body.as_bytes(), &option, &[day()]).is_err(),
                "{body}"
            );
        }
    }
}
