//! Product definitions the simulator serves, loaded from `fixtures/products/*.json`.
//!
//! A definition describes one product's regular week: on which weekdays it runs and the
//! slots (start time, capacity, pax prices) each of those days has. The simulator turns it
//! into the partner's response for any date. See `fixtures/README.md` for the format.

use std::collections::HashSet;

use chrono::{Datelike, NaiveDate, Weekday};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Number;

use crate::domain::ExperienceId;
use crate::partner::wire::{WirePax, WirePrice, WireSlot, parse_hh_mm};

/// The definitions compiled into the binary, so the simulator works from any directory.
const BUILTIN_PRODUCTS: [(&str, &str); 2] = [
    (
        "fixtures/products/14.json",
        include_str!("../../fixtures/products/14.json"),
    ),
    (
        "fixtures/products/15.json",
        include_str!("../../fixtures/products/15.json"),
    ),
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProductDefinition {
    pub product_id: ExperienceId,
    pub variant_id: i64,
    pub currency_code: String,
    /// Slot ids are `{prefix}_{YYYY-MM-DD}T{HH:MM}`, like the partner's.
    pub provider_slot_id_prefix: String,
    /// Days of the week with inventory; every other day answers `[]`.
    pub weekdays: Vec<Weekday>,
    pub pax_types: Vec<PaxTypeDefinition>,
    pub slots: Vec<SlotDefinition>,
}

/// What a pax type is, independent of any slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PaxTypeDefinition {
    #[serde(rename = "type")]
    pub pax_type: String,
    pub name: String,
    pub description: String,
    pub min: i64,
    pub max: i64,
    #[serde(default)]
    pub is_primary: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SlotDefinition {
    /// `HH:MM`; the end time is the same, as at the real partner.
    pub start_time: String,
    pub remaining: i64,
    /// The pax types this slot sells, in the order served.
    pub pax: Vec<SlotPaxDefinition>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SlotPaxDefinition {
    #[serde(rename = "type")]
    pub pax_type: String,
    pub remaining: i64,
    #[serde(with = "rust_decimal::serde::arbitrary_precision")]
    pub final_price: Decimal,
    #[serde(with = "rust_decimal::serde::arbitrary_precision")]
    pub original_price: Decimal,
}

#[derive(Debug, thiserror::Error)]
#[error("product definition {source_name}: {problem}")]
pub struct FixtureError {
    pub source_name: String,
    pub problem: String,
}

impl ProductDefinition {
    /// Parses and checks one definition; `source_name` only labels errors.
    pub fn from_json(source_name: &str, json: &str) -> Result<Self, FixtureError> {
        let problem = |problem: String| FixtureError {
            source_name: source_name.to_string(),
            problem,
        };
        let definition: Self = serde_json::from_str(json).map_err(|e| problem(e.to_string()))?;

        let known_types: HashSet<&str> = definition
            .pax_types
            .iter()
            .map(|pax| pax.pax_type.as_str())
            .collect();
        for slot in &definition.slots {
            if parse_hh_mm(&slot.start_time).is_none() {
                return Err(problem(format!(
                    "startTime {:?} is not HH:MM",
                    slot.start_time
                )));
            }
            if let Some(unknown) = slot
                .pax
                .iter()
                .find(|pax| !known_types.contains(pax.pax_type.as_str()))
            {
                return Err(problem(format!(
                    "slot {} uses pax type {:?} missing from paxTypes",
                    slot.start_time, unknown.pax_type
                )));
            }
        }
        Ok(definition)
    }

    /// The partner's answer for `date` before any simulated change.
    pub fn day(&self, date: NaiveDate) -> Vec<WireSlot> {
        if !self.weekdays.contains(&date.weekday()) {
            return Vec::new();
        }
        let date_text = date.format("%Y-%m-%d").to_string();
        self.slots
            .iter()
            .map(|slot| WireSlot {
                start_date: date_text.clone(),
                start_time: slot.start_time.clone(),
                end_time: slot.start_time.clone(),
                provider_slot_id: format!(
                    "{}_{date_text}T{}",
                    self.provider_slot_id_prefix, slot.start_time
                ),
                remaining: Number::from(slot.remaining),
                currency_code: self.currency_code.clone(),
                variant_id: self.variant_id,
                pax_availability: slot
                    .pax
                    .iter()
                    .filter_map(|pax| self.wire_pax(pax))
                    .collect(),
            })
            .collect()
    }

    fn wire_pax(&self, slot_pax: &SlotPaxDefinition) -> Option<WirePax> {
        // `from_json` guarantees the type is defined; `None` would only drop the pax.
        let pax_type = self
            .pax_types
            .iter()
            .find(|known| known.pax_type == slot_pax.pax_type)?;
        Some(WirePax {
            max: Number::from(pax_type.max),
            min: Number::from(pax_type.min),
            remaining: Number::from(slot_pax.remaining),
            pax_type: pax_type.pax_type.clone(),
            is_primary: pax_type.is_primary,
            description: pax_type.description.clone(),
            name: pax_type.name.clone(),
            price: WirePrice {
                discount: Decimal::ZERO,
                final_price: slot_pax.final_price,
                original_price: slot_pax.original_price,
                currency_code: self.currency_code.clone(),
            },
        })
    }
}

/// Products 14 and 15 as observed at the real partner.
pub fn builtin_products() -> Result<Vec<ProductDefinition>, FixtureError> {
    BUILTIN_PRODUCTS
        .iter()
        .map(|(source_name, json)| ProductDefinition::from_json(source_name, json))
        .collect()
}

/// Where synthetic product ids start, clear of the real partner's small ids.
pub const SYNTHETIC_FIRST_ID: i64 = 1_000;
const WEEK: [Weekday; 7] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
    Weekday::Sat,
    Weekday::Sun,
];

/// `count` made-up products shaped like the real ones, for load and scale runs: each runs on
/// 1 to 4 weekdays with 1 to 12 half-hourly slots of an adult and a child pax type. The same
/// `seed` gives the same catalog. Ids are `SYNTHETIC_FIRST_ID..SYNTHETIC_FIRST_ID + count`.
pub fn synthetic_products(count: usize, seed: u64) -> Vec<ProductDefinition> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|index| {
            let id = SYNTHETIC_FIRST_ID + index as i64;
            synthetic_product(
                ExperienceId::try_from(id).expect("synthetic ids are positive"),
                &mut rng,
            )
        })
        .collect()
}

fn synthetic_product(product_id: ExperienceId, rng: &mut StdRng) -> ProductDefinition {
    let runs_on = rng.random_range(1..=4);
    let mut weekdays: Vec<Weekday> = WEEK.choose_multiple(rng, runs_on).copied().collect();
    weekdays.sort_by_key(|day| day.num_days_from_monday());
    let pax_type = |pax_type: &str, name: &str, is_primary| PaxTypeDefinition {
        pax_type: pax_type.into(),
        name: name.into(),
        description: format!("{name} ticket"),
        min: 1,
        max: 20,
        is_primary,
    };
    let first_slot_minutes = rng.random_range(12..24) * 30;
    let slots = (0..rng.random_range(1..=12))
        .map(|index| {
            let minutes = first_slot_minutes + index * 30;
            let capacity = rng.random_range(1..=50) * 10;
            let adult_cents: i64 = rng.random_range(1_000..40_000);
            let child_cents = adult_cents / 2;
            let pax = |pax_type: &str, cents: i64| SlotPaxDefinition {
                pax_type: pax_type.into(),
                remaining: capacity / 2,
                final_price: Decimal::new(cents, 2),
                original_price: Decimal::new(cents + 1_000, 2),
            };
            SlotDefinition {
                start_time: format!("{:02}:{:02}", (minutes / 60) % 24, minutes % 60),
                remaining: capacity,
                pax: vec![pax("ADULT", adult_cents), pax("CHILD", child_cents)],
            }
        })
        .collect();
    ProductDefinition {
        product_id,
        variant_id: product_id.as_number().unwrap_or_default(),
        currency_code: "SGD".into(),
        provider_slot_id_prefix: format!("syn{product_id}"),
        weekdays,
        pax_types: vec![
            pax_type("ADULT", "Adult", true),
            pax_type("CHILD", "Child", false),
        ],
        slots,
    }
}
