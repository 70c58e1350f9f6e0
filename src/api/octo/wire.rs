//! The OCTO JSON shapes this supplier API reads and writes, field for field as the
//! specification (`octotravel/typespec`) names them. Money is integers in minor units.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct SupplierBody {
    pub id: &'static str,
    pub name: &'static str,
    /// The base URL of this API, as the request reached it.
    pub endpoint: String,
    pub contact: SupplierContactBody,
}

/// The service knows no contact details of its own; OCTO has every one nullable.
#[derive(Serialize, ToSchema)]
pub struct SupplierContactBody {
    pub website: Option<String>,
    pub email: Option<String>,
    pub telephone: Option<String>,
    pub address: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductBody {
    /// The experience id.
    #[schema(example = "14")]
    pub id: String,
    pub internal_name: String,
    pub reference: Option<String>,
    pub locale: &'static str,
    /// The partner's IANA time zone.
    #[schema(example = "Asia/Singapore")]
    pub time_zone: String,
    pub allow_freesale: bool,
    pub instant_confirmation: bool,
    pub instant_delivery: bool,
    pub availability_required: bool,
    /// Always `START_TIME`: every slot has a start.
    pub availability_type: &'static str,
    pub delivery_formats: Vec<&'static str>,
    pub delivery_methods: Vec<&'static str>,
    pub redemption_method: &'static str,
    pub options: Vec<OptionBody>,
    /// With `octo/pricing`, as are the three fields below.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_currency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_currencies: Option<Vec<String>>,
    /// `UNIT`: the partner prices each pax.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pricing_per: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include_tax: Option<bool>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OptionBody {
    /// Always `DEFAULT`: an experience is sold as one option.
    pub id: &'static str,
    pub default: bool,
    pub internal_name: &'static str,
    pub reference: Option<String>,
    /// `HH:MM`, every start seen in the synced horizon.
    pub availability_local_start_times: Vec<String>,
    pub cancellation_cutoff: &'static str,
    pub cancellation_cutoff_amount: i64,
    pub cancellation_cutoff_unit: &'static str,
    pub required_contact_fields: Vec<&'static str>,
    pub restrictions: OptionRestrictionsBody,
    pub units: Vec<UnitBody>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OptionRestrictionsBody {
    pub min_units: i64,
    pub max_units: Option<i64>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnitBody {
    /// The pax type.
    #[schema(example = "ADULT_12~99")]
    pub id: String,
    pub internal_name: String,
    pub reference: Option<String>,
    #[serde(rename = "type")]
    pub unit_type: UnitType,
    pub restrictions: UnitRestrictionsBody,
    pub required_contact_fields: Vec<&'static str>,
    /// With `octo/pricing`: the lowest price seen per currency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pricing_from: Option<Vec<PricingBody>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UnitType {
    Adult,
    Youth,
    Child,
    Infant,
    Family,
    Senior,
    Student,
    Military,
    Other,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnitRestrictionsBody {
    pub min_age: u32,
    pub max_age: u32,
    pub id_required: bool,
    /// The pax type's `min`.
    pub min_quantity: Option<i64>,
    /// The pax type's `max`.
    pub max_quantity: Option<i64>,
    pub pax_count: i64,
    pub accompanied_by: Vec<String>,
}

/// A price in minor units: `retail` / 10^`currencyPrecision` is the partner's final price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PricingBody {
    /// The partner's original (strike-through) price.
    pub original: i64,
    /// The partner's final price, what the customer pays.
    pub retail: i64,
    /// The partner reports no wholesale price.
    pub net: Option<i64>,
    pub currency: String,
    pub currency_precision: u32,
    /// The partner reports no taxes apart; always empty.
    #[schema(value_type = Vec<Object>)]
    pub included_taxes: Vec<serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnitPricingBody {
    pub unit_id: String,
    #[serde(flatten)]
    pub pricing: PricingBody,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AvailabilityStatus {
    // Ordered from least to most sellable: a day takes its best slot's.
    Closed,
    SoldOut,
    Limited,
    Available,
}

impl AvailabilityStatus {
    pub fn is_available(self) -> bool {
        matches!(self, Self::Available | Self::Limited)
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AvailabilityBody {
    /// The slot's local start with its UTC offset; stable for as long as the slot exists.
    #[schema(example = "2026-12-06T09:00:00+08:00")]
    pub id: String,
    pub local_date_time_start: String,
    pub local_date_time_end: String,
    /// The slot's start: a slot is sold until it starts.
    #[schema(example = "2026-12-06T01:00:00Z")]
    pub utc_cutoff_at: String,
    pub all_day: bool,
    pub available: bool,
    pub status: AvailabilityStatus,
    /// Seats one could still book: the slot's remaining, or the pax types' together if fewer.
    pub vacancies: i64,
    /// The slot's allotment as the partner last reported it.
    pub capacity: i64,
    /// The most units one booking can take.
    pub max_units: i64,
    #[schema(value_type = Vec<Object>)]
    pub opening_hours: Vec<serde_json::Value>,
    /// With `octo/pricing`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_pricing: Option<Vec<UnitPricingBody>>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CalendarDayBody {
    #[schema(example = "2026-12-06")]
    pub local_date: String,
    pub available: bool,
    /// The most sellable status among the day's slots; `CLOSED` for a day without one.
    pub status: AvailabilityStatus,
    /// The most vacancies of one slot that day.
    pub vacancies: i64,
    /// The largest capacity of one slot that day.
    pub capacity: i64,
    #[schema(value_type = Vec<Object>)]
    pub opening_hours: Vec<serde_json::Value>,
    /// With `octo/pricing`: per unit, the lowest price of the day's sellable slots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_pricing_from: Option<Vec<UnitPricingBody>>,
}

/// `POST /octo/availability`. Give `localDate`, or `localDateStart` and `localDateEnd`, or
/// `availabilityIds`, never dates and ids together. Fields OCTO defines that this supplier
/// does not use (`currency`) are accepted and ignored.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"productId": "14", "optionId": "DEFAULT", "localDateStart": "2026-12-06", "localDateEnd": "2026-12-08"}))]
pub struct AvailabilityCheckRequest {
    /// Read as optional so that a missing one is `INVALID_PRODUCT_ID`, as OCTO has it.
    #[schema(required = true, value_type = String)]
    pub product_id: Option<String>,
    #[schema(required = true, value_type = String)]
    pub option_id: Option<String>,
    pub local_date: Option<String>,
    pub local_date_start: Option<String>,
    pub local_date_end: Option<String>,
    pub availability_ids: Option<Vec<String>>,
    /// Each unit id must be one of the product's units.
    pub units: Option<Vec<UnitQuantity>>,
}

/// `POST /octo/availability/calendar`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"productId": "14", "optionId": "DEFAULT", "localDateStart": "2026-12-01", "localDateEnd": "2026-12-31"}))]
pub struct AvailabilityCalendarRequest {
    #[schema(required = true, value_type = String)]
    pub product_id: Option<String>,
    #[schema(required = true, value_type = String)]
    pub option_id: Option<String>,
    #[schema(required = true, value_type = String)]
    pub local_date_start: Option<String>,
    #[schema(required = true, value_type = String)]
    pub local_date_end: Option<String>,
    pub units: Option<Vec<UnitQuantity>>,
}

/// A unit asked about. Its `quantity` is accepted and does not change the answer.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UnitQuantity {
    pub id: String,
}
