//! OCTO's booking shapes as they go over the wire (`octotravel/typespec`): the requests a
//! reseller sends, the booking answered, and the document kept with each booking for what
//! the ledger does not hold (contact, notes, unit items' uuids).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::wire::PricingBody;

/// `POST /octo/bookings`: a reservation (a hold). OCTO's `currency` is accepted and ignored:
/// prices are the partner's, in its currency.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"uuid": "0c3e2e4a-4a3f-4b7e-9d4e-0d5f1a0e8b1c", "productId": "14",
    "optionId": "DEFAULT", "availabilityId": "2026-12-06T09:00:00+08:00",
    "unitItems": [{"unitId": "ADULT_12~99"}, {"unitId": "ADULT_12~99"}]}))]
pub struct ReservationRequest {
    /// The reseller's id for the booking, and its idempotency key: the same reservation sent
    /// again answers the same booking. Generated when absent.
    pub uuid: Option<String>,
    #[schema(required = true, value_type = String)]
    pub product_id: Option<String>,
    #[schema(required = true, value_type = String)]
    pub option_id: Option<String>,
    #[schema(required = true, value_type = String)]
    pub availability_id: Option<String>,
    /// How long the seats are held: 1 to 60 minutes, 10 when absent.
    pub expiration_minutes: Option<i64>,
    pub notes: Option<String>,
    /// One per seat.
    #[schema(required = true, value_type = Vec<UnitItemRequest>)]
    pub unit_items: Option<Vec<UnitItemRequest>>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnitItemRequest {
    /// Kept when given, generated otherwise.
    pub uuid: Option<String>,
    #[schema(required = true, value_type = String)]
    pub unit_id: Option<String>,
    pub reseller_reference: Option<String>,
    pub contact: Option<ContactBody>,
}

/// `POST /octo/bookings/{uuid}/confirm`. OCTO's `emailReceipt` is accepted and ignored: no
/// email is sent.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"resellerReference": "RES-1001",
    "contact": {"fullName": "Ada Lovelace", "emailAddress": "ada@example.com"}}))]
pub struct ConfirmationRequest {
    #[schema(required = true, value_type = ContactBody)]
    pub contact: Option<ContactBody>,
    pub reseller_reference: Option<String>,
    /// Replaces the unit items: the booking's seats change with its confirmation, in one
    /// ledger move.
    pub unit_items: Option<Vec<UnitItemRequest>>,
}

/// `POST /octo/bookings/{uuid}/extend`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExtendRequest {
    /// From now: 1 to 60 minutes, 10 when absent.
    pub expiration_minutes: Option<i64>,
}

/// `POST /octo/bookings/{uuid}/cancel`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CancellationRequest {
    pub reason: Option<String>,
    /// Cancels a confirmed booking even after its slot started.
    pub force: Option<bool>,
}

/// `PATCH /octo/bookings/{uuid}`: every field optional; the seats change (another slot,
/// product or unit items) in one ledger move, or nothing changes. `emailReceipt` is accepted
/// and ignored.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateRequest {
    pub reseller_reference: Option<String>,
    pub product_id: Option<String>,
    pub option_id: Option<String>,
    pub availability_id: Option<String>,
    pub expiration_minutes: Option<i64>,
    pub notes: Option<String>,
    /// Replaces the unit items; an item keeps its uuid when sent with it.
    pub unit_items: Option<Vec<UnitItemRequest>>,
    pub contact: Option<ContactBody>,
}

/// A contact as OCTO writes it: every key present, `null` when unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContactBody {
    #[serde(default)]
    pub full_name: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub email_address: Option<String>,
    #[serde(default)]
    pub phone_number: Option<String>,
    #[serde(default)]
    pub postal_code: Option<String>,
    #[serde(default)]
    pub country: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub locales: Vec<String>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(deserializer)?.unwrap_or_default())
}

impl ContactBody {
    /// Every text of the contact, for checking their lengths.
    pub fn texts(&self) -> impl Iterator<Item = &String> {
        [
            &self.full_name,
            &self.first_name,
            &self.last_name,
            &self.email_address,
            &self.phone_number,
            &self.postal_code,
            &self.country,
            &self.notes,
        ]
        .into_iter()
        .flatten()
        .chain(&self.locales)
    }
}

/// What is kept with a booking made through `/octo`, as the store's reseller document.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BookingDocument {
    pub notes: Option<String>,
    pub contact: ContactBody,
    pub unit_items: Vec<UnitItemRecord>,
    pub cancellation_reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnitItemRecord {
    pub uuid: String,
    pub unit_id: String,
    pub reseller_reference: Option<String>,
    pub contact: ContactBody,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OctoBookingStatus {
    OnHold,
    Confirmed,
    Cancelled,
    Expired,
}

/// A booking as OCTO answers it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BookingBody {
    /// invsync's booking id.
    pub id: String,
    /// The reseller's uuid for it.
    pub uuid: String,
    pub test_mode: bool,
    pub reseller_reference: Option<String>,
    /// invsync's booking id: what the partner's manifest and the native API know it by.
    pub supplier_reference: String,
    pub status: OctoBookingStatus,
    pub utc_created_at: String,
    pub utc_updated_at: String,
    /// The hold's deadline, while on hold (and once expired).
    pub utc_expires_at: Option<String>,
    pub utc_redeemed_at: Option<String>,
    pub utc_confirmed_at: Option<String>,
    pub product_id: String,
    pub option_id: &'static str,
    /// Until the slot starts, unless cancelled or expired.
    pub cancellable: bool,
    pub cancellation: Option<CancellationBody>,
    pub freesale: bool,
    pub availability_id: String,
    pub availability: BookingAvailabilityBody,
    pub contact: ContactBody,
    pub notes: Option<String>,
    pub delivery_methods: Vec<&'static str>,
    pub voucher: Option<TicketBody>,
    pub unit_items: Vec<UnitItemBody>,
    /// With `octo/pricing`: the booking's total at the prices its seats were held at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pricing: Option<PricingBody>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CancellationBody {
    /// Always `FULL`: the seats go back and nothing is charged.
    pub refund: &'static str,
    pub reason: Option<String>,
    pub utc_cancelled_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BookingAvailabilityBody {
    pub id: String,
    pub local_date_time_start: String,
    pub local_date_time_end: String,
    pub all_day: bool,
    #[schema(value_type = Vec<Object>)]
    pub opening_hours: Vec<serde_json::Value>,
}

/// A voucher: the booking's reference, shown as a QR code and checked against the partner's
/// manifest.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketBody {
    pub redemption_method: &'static str,
    pub utc_redeemed_at: Option<String>,
    pub delivery_options: Vec<DeliveryOptionBody>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryOptionBody {
    pub delivery_format: &'static str,
    pub delivery_value: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnitItemBody {
    pub uuid: String,
    pub reseller_reference: Option<String>,
    pub supplier_reference: Option<String>,
    pub unit_id: String,
    pub status: OctoBookingStatus,
    pub utc_redeemed_at: Option<String>,
    pub contact: ContactBody,
    /// No per-seat tickets: the voucher covers the booking.
    pub ticket: Option<TicketBody>,
    /// With `octo/pricing`: the seat's price as held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pricing: Option<PricingBody>,
}

/// `GET /octo/bookings`: at least one of the references.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct BookingListQuery {
    /// The reference a reseller confirmed its bookings with.
    pub reseller_reference: Option<String>,
    /// A booking's `supplierReference`.
    pub supplier_reference: Option<String>,
}
