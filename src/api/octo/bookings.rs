//! `/octo/bookings`: OCTO's reservations, confirmations, extensions, cancellations and
//! updates, each carried out by the bookings service as an ordinary booking (the same ledger
//! moves, the same no-oversell guarantee). The reseller's `uuid` is the hold's idempotency
//! key; what the ledger does not hold (contact, notes, unit items' uuids) is kept as the
//! booking's reseller record, written in the same transaction as the change it comes with.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::{Extension, extract::rejection::QueryRejection};
use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use uuid::Uuid;

use super::booking_wire::{
    BookingAvailabilityBody, BookingBody, BookingDocument, BookingListQuery, CancellationBody,
    CancellationRequest, ConfirmationRequest, ContactBody, DeliveryOptionBody, ExtendRequest,
    OctoBookingStatus, ReservationRequest, TicketBody, UnitItemBody, UnitItemRecord,
    UnitItemRequest, UpdateRequest,
};
use super::catalogue::{self, OPTION_ID, SlotTimes};
use super::conventions::{Capabilities, OctoJson};
use super::error::{OctoError, OctoErrorBody};
use super::{check_option, synced_product};
use crate::api::AppState;
use crate::bookings::{BookingError, HoldBody, IdempotencyKey, PaxBody};
use crate::domain::{ExperienceId, Price};
use crate::storage::{
    Amendment, Booking, BookingChange, BookingStatus, Inventory, Refusal, ResellerBooking,
    ResellerQuery, ResellerRecord, ServedSlot, StoreError,
};

/// Idempotency keys of OCTO reservations: `octo:` and the booking's uuid.
const KEY_PREFIX: &str = "octo:";
/// The longest note, reference or contact field kept.
const MAX_TEXT: usize = 1_000;
/// A hold lasts at most an hour (the bookings service's limit).
const MAX_EXPIRATION_MINUTES: i64 = 60;

/// A booking made through `/octo`, with what its reseller sent.
struct OctoBooking {
    booking: Booking,
    uuid: Uuid,
    reseller_reference: Option<String>,
    document: BookingDocument,
    updated_at: DateTime<Utc>,
}

/// Reserves seats: an `ON_HOLD` booking until `utcExpiresAt`. The same `uuid` sent again
/// with the same request answers the same booking.
#[utoipa::path(
    post,
    path = "/octo/bookings",
    tag = "octo",
    security(("sales_token" = [])),
    params(("Octo-Capabilities" = Option<String>, Header, description = "`octo/pricing` adds the booking's and each unit item's `pricing`")),
    request_body = ReservationRequest,
    responses(
        (status = 200, description = "The booking, on hold", body = BookingBody),
        (status = 400, description = "INVALID_PRODUCT_ID, INVALID_OPTION_ID, INVALID_AVAILABILITY_ID, INVALID_UNIT_ID, INVALID_BOOKING_UUID (the uuid was used for another request), UNPROCESSABLE_ENTITY (no unit items, not enough seats), BAD_REQUEST or UNAUTHORIZED", body = OctoErrorBody),
        (status = 500, description = "INTERNAL_SERVER_ERROR", body = OctoErrorBody),
    )
)]
pub async fn reserve(
    State(state): State<AppState>,
    Extension(capabilities): Extension<Capabilities>,
    OctoJson(request): OctoJson<ReservationRequest>,
) -> Result<Json<BookingBody>, OctoError> {
    let uuid = match request.uuid.as_deref() {
        Some(raw) => parse_uuid(raw)?,
        None => Uuid::new_v4(),
    };
    let experience = synced_product(&state, request.product_id.as_deref())?;
    check_option(request.option_id.as_deref())?;
    let slot = find_slot(&state, experience, request.availability_id.as_deref()).await?;
    let requested = request
        .unit_items
        .as_deref()
        .filter(|items| !items.is_empty())
        .ok_or_else(|| {
            OctoError::UnprocessableEntity("unitItems must name at least one unit".into())
        })?;
    let unit_items = unit_records(requested, &slot, &[])?;
    check_text("notes", request.notes.as_deref())?;
    let body = hold_body(
        experience,
        &slot,
        &unit_items,
        hold_seconds(request.expiration_minutes)?,
    );
    let key = format!("{KEY_PREFIX}{uuid}");
    let key = IdempotencyKey::parse(Some(key.as_bytes())).map_err(|_| invalid_uuid(&key))?;
    let answer = state
        .bookings
        .hold(key.clone(), body)
        .await
        .map_err(|error| refused(error, &uuid))?;
    if answer.replayed
        && let Some(found) = find(&state, uuid)
            .await?
            .filter(|found| found.record.is_some())
    {
        return render(&state, capabilities, with_record(found, uuid)?).await;
    }
    let document = BookingDocument {
        notes: request.notes,
        unit_items,
        ..BookingDocument::default()
    };
    let amendment = Amendment {
        record: Some(record(uuid, None, &document)?),
        ..Amendment::default()
    };
    state
        .bookings
        .amend(answer.booking.id, amendment)
        .await
        .map_err(|error| refused(error, &uuid))?;
    render(&state, capabilities, existing(&state, uuid).await?).await
}

/// Confirms a booking on hold with its contact and reference; given `unitItems`, its seats
/// change to them in the same transaction.
#[utoipa::path(
    post,
    path = "/octo/bookings/{uuid}/confirm",
    tag = "octo",
    security(("sales_token" = [])),
    params(
        ("uuid" = String, Path, description = "The booking's uuid"),
        ("Octo-Capabilities" = Option<String>, Header, description = "`octo/pricing` adds prices"),
    ),
    request_body = ConfirmationRequest,
    responses(
        (status = 200, description = "The booking, confirmed", body = BookingBody),
        (status = 400, description = "INVALID_BOOKING_UUID (unknown or expired), INVALID_UNIT_ID, UNPROCESSABLE_ENTITY (cancelled, not enough seats), BAD_REQUEST or UNAUTHORIZED", body = OctoErrorBody),
        (status = 500, description = "INTERNAL_SERVER_ERROR", body = OctoErrorBody),
    )
)]
pub async fn confirm(
    State(state): State<AppState>,
    Extension(capabilities): Extension<Capabilities>,
    uuid: Result<Path<String>, PathRejection>,
    OctoJson(request): OctoJson<ConfirmationRequest>,
) -> Result<Json<BookingBody>, OctoError> {
    let uuid = path_uuid(uuid)?;
    let mut octo = existing(&state, uuid).await?;
    let contact = request
        .contact
        .ok_or_else(|| OctoError::BadRequest("contact is required".into()))?;
    check_contact(&contact)?;
    check_text("resellerReference", request.reseller_reference.as_deref())?;
    let rebook = match request.unit_items.as_deref() {
        Some(requested) => {
            let slot = booked_slot(&state, &octo.booking).await?;
            let items = requested_items(requested, &slot, &octo.document.unit_items)?;
            let rebook = rebook_request(octo.booking.experience, &slot, &items, &octo.booking)?;
            octo.document.unit_items = items;
            Some(rebook).filter(|rebook| moves_seats(&octo.booking, rebook))
        }
        None => None,
    };
    octo.document.contact = contact;
    if request.reseller_reference.is_some() {
        octo.reseller_reference = request.reseller_reference;
    }
    let amendment = Amendment {
        rebook,
        change: Some(BookingChange::Confirm),
        record: Some(octo.record()?),
    };
    amend(&state, capabilities, octo, amendment).await
}

/// Holds a booking's seats longer: until `expirationMinutes` from now.
#[utoipa::path(
    post,
    path = "/octo/bookings/{uuid}/extend",
    tag = "octo",
    security(("sales_token" = [])),
    params(("uuid" = String, Path, description = "The booking's uuid")),
    request_body = ExtendRequest,
    responses(
        (status = 200, description = "The booking, on hold", body = BookingBody),
        (status = 400, description = "INVALID_BOOKING_UUID, UNPROCESSABLE_ENTITY (not on hold), BAD_REQUEST or UNAUTHORIZED", body = OctoErrorBody),
        (status = 500, description = "INTERNAL_SERVER_ERROR", body = OctoErrorBody),
    )
)]
pub async fn extend(
    State(state): State<AppState>,
    Extension(capabilities): Extension<Capabilities>,
    uuid: Result<Path<String>, PathRejection>,
    OctoJson(request): OctoJson<ExtendRequest>,
) -> Result<Json<BookingBody>, OctoError> {
    let uuid = path_uuid(uuid)?;
    let octo = existing(&state, uuid).await?;
    let seconds = hold_seconds(request.expiration_minutes)?;
    let until = deadline(seconds)?;
    let amendment = Amendment {
        change: Some(BookingChange::Extend(until)),
        record: Some(octo.record()?),
        ..Amendment::default()
    };
    amend(&state, capabilities, octo, amendment).await
}

/// Cancels a booking: a hold's seats are released, a confirmed booking's refunded. A
/// confirmed booking whose slot has started is cancelled only with `force`.
#[utoipa::path(
    post,
    path = "/octo/bookings/{uuid}/cancel",
    tag = "octo",
    security(("sales_token" = [])),
    params(("uuid" = String, Path, description = "The booking's uuid")),
    request_body = CancellationRequest,
    responses(
        (status = 200, description = "The booking, cancelled", body = BookingBody),
        (status = 400, description = "INVALID_BOOKING_UUID, UNPROCESSABLE_ENTITY (past the cancellation cutoff), BAD_REQUEST or UNAUTHORIZED", body = OctoErrorBody),
        (status = 500, description = "INTERNAL_SERVER_ERROR", body = OctoErrorBody),
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    Extension(capabilities): Extension<Capabilities>,
    uuid: Result<Path<String>, PathRejection>,
    OctoJson(request): OctoJson<CancellationRequest>,
) -> Result<Json<BookingBody>, OctoError> {
    let uuid = path_uuid(uuid)?;
    let mut octo = existing(&state, uuid).await?;
    check_text("reason", request.reason.as_deref())?;
    let zone = state.sync.timezone_of(octo.booking.experience);
    if octo.booking.status == BookingStatus::Confirmed
        && !request.force.unwrap_or(false)
        && started(zone, &octo.booking, crate::bookings::now())
    {
        return Err(OctoError::UnprocessableEntity(
            "the slot has started: past the cancellation cutoff".into(),
        ));
    }
    octo.document.cancellation_reason = request.reason;
    let amendment = Amendment {
        change: Some(BookingChange::Cancel),
        record: Some(octo.record()?),
        ..Amendment::default()
    };
    amend(&state, capabilities, octo, amendment).await
}

/// Changes a booking on hold or confirmed: its slot, product or unit items (the seats move in
/// one ledger transaction, or nothing changes), its hold's deadline, contact, notes or
/// reference.
#[utoipa::path(
    patch,
    path = "/octo/bookings/{uuid}",
    tag = "octo",
    security(("sales_token" = [])),
    params(("uuid" = String, Path, description = "The booking's uuid")),
    request_body = UpdateRequest,
    responses(
        (status = 200, description = "The booking as changed", body = BookingBody),
        (status = 400, description = "INVALID_BOOKING_UUID, INVALID_PRODUCT_ID, INVALID_OPTION_ID, INVALID_AVAILABILITY_ID, INVALID_UNIT_ID, UNPROCESSABLE_ENTITY (ended, not enough seats), BAD_REQUEST or UNAUTHORIZED", body = OctoErrorBody),
        (status = 500, description = "INTERNAL_SERVER_ERROR", body = OctoErrorBody),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    Extension(capabilities): Extension<Capabilities>,
    uuid: Result<Path<String>, PathRejection>,
    OctoJson(request): OctoJson<UpdateRequest>,
) -> Result<Json<BookingBody>, OctoError> {
    let uuid = path_uuid(uuid)?;
    let mut octo = existing(&state, uuid).await?;
    check_text("notes", request.notes.as_deref())?;
    check_text("resellerReference", request.reseller_reference.as_deref())?;
    if let Some(contact) = &request.contact {
        check_contact(contact)?;
    }
    let moves = request.product_id.is_some()
        || request.availability_id.is_some()
        || request.unit_items.is_some();
    let seconds = request
        .expiration_minutes
        .map(|minutes| hold_seconds(Some(minutes)))
        .transpose()?;
    let (rebook, change) = if moves {
        let experience = match request.product_id.as_deref() {
            Some(raw) => synced_product(&state, Some(raw))?,
            None => octo.booking.experience,
        };
        if request.option_id.is_some() {
            check_option(request.option_id.as_deref())?;
        }
        let slot = match request.availability_id.as_deref() {
            Some(raw) => find_slot(&state, experience, Some(raw)).await?,
            None if experience == octo.booking.experience => {
                booked_slot(&state, &octo.booking).await?
            }
            None => {
                return Err(OctoError::InvalidAvailabilityId {
                    availability_id: String::new(),
                });
            }
        };
        let items = match request.unit_items.as_deref() {
            Some(requested) => requested_items(requested, &slot, &octo.document.unit_items)?,
            None => octo.document.unit_items.clone(),
        };
        let mut rebook = rebook_request(experience, &slot, &items, &octo.booking)?;
        octo.document.unit_items = items;
        if moves_seats(&octo.booking, &rebook) {
            if let Some(seconds) = seconds {
                rebook.expires_at = deadline(seconds)?;
            }
            (Some(rebook), None)
        } else {
            (
                None,
                seconds
                    .map(deadline)
                    .transpose()?
                    .map(BookingChange::Extend),
            )
        }
    } else {
        let change = seconds
            .map(deadline)
            .transpose()?
            .map(BookingChange::Extend);
        (None, change)
    };
    if let Some(contact) = request.contact {
        octo.document.contact = contact;
    }
    if request.notes.is_some() {
        octo.document.notes = request.notes;
    }
    if request.reseller_reference.is_some() {
        octo.reseller_reference = request.reseller_reference;
    }
    if matches!(
        octo.booking.status,
        BookingStatus::Cancelled | BookingStatus::Expired
    ) {
        return Err(OctoError::UnprocessableEntity(format!(
            "the booking is {} and can no longer be changed",
            octo.booking.status.as_str()
        )));
    }
    let amendment = Amendment {
        rebook,
        change,
        record: Some(octo.record()?),
    };
    amend(&state, capabilities, octo, amendment).await
}

/// One booking, as it stands.
#[utoipa::path(
    get,
    path = "/octo/bookings/{uuid}",
    tag = "octo",
    security(("sales_token" = [])),
    params(("uuid" = String, Path, description = "The booking's uuid")),
    responses(
        (status = 200, description = "The booking", body = BookingBody),
        (status = 400, description = "INVALID_BOOKING_UUID or UNAUTHORIZED", body = OctoErrorBody),
        (status = 500, description = "INTERNAL_SERVER_ERROR", body = OctoErrorBody),
    )
)]
pub async fn booking(
    State(state): State<AppState>,
    Extension(capabilities): Extension<Capabilities>,
    uuid: Result<Path<String>, PathRejection>,
) -> Result<Json<BookingBody>, OctoError> {
    let uuid = path_uuid(uuid)?;
    let octo = existing(&state, uuid).await?;
    render(&state, capabilities, octo).await
}

/// The bookings with a reseller reference or a supplier reference, newest first.
#[utoipa::path(
    get,
    path = "/octo/bookings",
    tag = "octo",
    security(("sales_token" = [])),
    params(BookingListQuery),
    responses(
        (status = 200, description = "The bookings found (none is an empty list)", body = Vec<BookingBody>),
        (status = 400, description = "BAD_REQUEST (neither reference given) or UNAUTHORIZED", body = OctoErrorBody),
        (status = 500, description = "INTERNAL_SERVER_ERROR", body = OctoErrorBody),
    )
)]
pub async fn bookings(
    State(state): State<AppState>,
    Extension(capabilities): Extension<Capabilities>,
    query: Result<Query<BookingListQuery>, QueryRejection>,
) -> Result<Json<Vec<BookingBody>>, OctoError> {
    let Query(query) = query.map_err(|rejection| OctoError::BadRequest(rejection.body_text()))?;
    let found = match (&query.reseller_reference, &query.supplier_reference) {
        (_, Some(supplier)) => match Uuid::parse_str(supplier) {
            Ok(id) => lookup(&state, &ResellerQuery::Booking(id)).await?,
            // Not one of this supplier's references: nothing has it.
            Err(_) => Vec::new(),
        },
        (Some(reseller), None) => {
            lookup(&state, &ResellerQuery::ResellerReference(reseller.clone())).await?
        }
        (None, None) => {
            return Err(OctoError::BadRequest(
                "give resellerReference or supplierReference".into(),
            ));
        }
    };
    let mut bodies = Vec::with_capacity(found.len());
    for found in found {
        let Some(uuid) = found
            .record
            .as_ref()
            .and_then(|record| Uuid::parse_str(&record.uuid).ok())
        else {
            continue;
        };
        let octo = with_record(found, uuid)?;
        let both_match = query
            .reseller_reference
            .as_ref()
            .is_none_or(|reference| octo.reseller_reference.as_ref() == Some(reference));
        if both_match {
            bodies.push(render(&state, capabilities, octo).await?.0);
        }
    }
    Ok(Json(bodies))
}

async fn amend(
    state: &AppState,
    capabilities: Capabilities,
    octo: OctoBooking,
    amendment: Amendment,
) -> Result<Json<BookingBody>, OctoError> {
    let uuid = octo.uuid;
    state
        .bookings
        .amend(octo.booking.id, amendment)
        .await
        .map_err(|error| refused(error, &uuid))?;
    // Answered as stored, so a later GET reads the same booking, `utcUpdatedAt` included.
    render(state, capabilities, existing(state, uuid).await?).await
}

async fn lookup(
    state: &AppState,
    query: &ResellerQuery,
) -> Result<Vec<ResellerBooking>, OctoError> {
    state
        .bookings
        .reseller_bookings(query)
        .await
        .map_err(OctoError::from)
}

async fn find(state: &AppState, uuid: Uuid) -> Result<Option<ResellerBooking>, OctoError> {
    let key = ResellerQuery::Key(format!("{KEY_PREFIX}{uuid}"));
    Ok(lookup(state, &key).await?.into_iter().next())
}

/// The booking with `uuid`, or OCTO's `INVALID_BOOKING_UUID`.
async fn existing(state: &AppState, uuid: Uuid) -> Result<OctoBooking, OctoError> {
    let found = find(state, uuid)
        .await?
        .ok_or_else(|| invalid_uuid(&uuid.to_string()))?;
    with_record(found, uuid)
}

/// A found booking with its record; one whose record was never written (the process stopped
/// right after the hold) reads with its unit items made from its pax.
fn with_record(found: ResellerBooking, uuid: Uuid) -> Result<OctoBooking, OctoError> {
    let (reseller_reference, document) = match &found.record {
        Some(record) => (
            record.reseller_reference.clone(),
            serde_json::from_str::<BookingDocument>(&record.document).map_err(|error| {
                StoreError::Corrupt(format!("reseller record of {uuid}: {error}"))
            })?,
        ),
        None => (None, BookingDocument::default()),
    };
    let booking = found.booking;
    let document = BookingDocument {
        unit_items: items_of(&booking, document.unit_items),
        ..document
    };
    Ok(OctoBooking {
        updated_at: found.updated_at.unwrap_or(booking.created_at),
        booking,
        uuid,
        reseller_reference,
        document,
    })
}

/// The booking's unit items: those recorded, as many of each unit as it holds seats of, any
/// missing one given a uuid derived from the booking (the same at every read).
fn items_of(booking: &Booking, recorded: Vec<UnitItemRecord>) -> Vec<UnitItemRecord> {
    let mut left: Vec<(&str, i64)> = booking
        .pax
        .iter()
        .map(|pax| (pax.pax_type.as_str(), pax.quantity))
        .collect();
    let mut items = Vec::with_capacity(recorded.len());
    // In the reseller's order, as many of each unit as the booking holds.
    for item in recorded {
        if let Some((_, count)) = left
            .iter_mut()
            .find(|(unit, count)| *unit == item.unit_id && *count > 0)
        {
            *count -= 1;
            items.push(item);
        }
    }
    for (pax, (_, missing)) in booking.pax.iter().zip(&left) {
        for n in pax.quantity - missing..pax.quantity {
            items.push(UnitItemRecord {
                uuid: Uuid::new_v5(&booking.id, format!("{}#{n}", pax.pax_type).as_bytes())
                    .to_string(),
                unit_id: pax.pax_type.clone(),
                reseller_reference: None,
                contact: ContactBody::default(),
            });
        }
    }
    items
}

impl OctoBooking {
    /// The reseller record the booking is kept with.
    fn record(&self) -> Result<ResellerRecord, OctoError> {
        record(self.uuid, self.reseller_reference.clone(), &self.document)
    }
}

fn record(
    uuid: Uuid,
    reseller_reference: Option<String>,
    document: &BookingDocument,
) -> Result<ResellerRecord, OctoError> {
    let document = serde_json::to_string(document).map_err(|error| {
        tracing::error!(%error, "an OCTO booking document did not serialize");
        OctoError::Internal
    })?;
    Ok(ResellerRecord {
        uuid: uuid.to_string(),
        reseller_reference,
        document,
    })
}

/// The open slot an availability id names, among the product's slots.
async fn find_slot(
    state: &AppState,
    experience: ExperienceId,
    raw: Option<&str>,
) -> Result<ServedSlot, OctoError> {
    let raw = raw.unwrap_or_default();
    let zone = state.sync.timezone_of(experience);
    let invalid = || OctoError::InvalidAvailabilityId {
        availability_id: raw.to_string(),
    };
    let (date, canonical) = catalogue::parse_availability_id(zone, raw).ok_or_else(invalid)?;
    if state.horizon().check(date).is_err() {
        return Err(invalid());
    }
    state
        .store
        .slots_on(experience, date)
        .await?
        .into_iter()
        .find(|slot| {
            SlotTimes::new(zone, slot.start_date, slot.start_time, slot.end_time).id() == canonical
        })
        .ok_or_else(invalid)
}

/// The slot a booking holds seats on, as served now.
async fn booked_slot(state: &AppState, booking: &Booking) -> Result<ServedSlot, OctoError> {
    state
        .store
        .slots_on(booking.experience, booking.date)
        .await?
        .into_iter()
        .find(|slot| slot.start_time == booking.start_time)
        .ok_or_else(|| {
            OctoError::UnprocessableEntity("the booking's slot is no longer on sale".into())
        })
}

/// The unit items asked for, at least one; see [`unit_records`].
fn requested_items(
    requested: &[UnitItemRequest],
    slot: &ServedSlot,
    current: &[UnitItemRecord],
) -> Result<Vec<UnitItemRecord>, OctoError> {
    if requested.is_empty() {
        return Err(OctoError::UnprocessableEntity(
            "unitItems must name at least one unit".into(),
        ));
    }
    unit_records(requested, slot, current)
}

/// Unit items as kept: each a unit (pax type) the slot sells, with its uuid (kept when sent,
/// else that of a current item of the same unit not yet taken, else new).
fn unit_records(
    requested: &[UnitItemRequest],
    slot: &ServedSlot,
    current: &[UnitItemRecord],
) -> Result<Vec<UnitItemRecord>, OctoError> {
    let mut items: Vec<UnitItemRecord> = Vec::with_capacity(requested.len());
    for item in requested {
        let unit_id = item.unit_id.clone().unwrap_or_default();
        if !slot.pax.iter().any(|pax| pax.pax_type == unit_id) {
            return Err(OctoError::InvalidUnitId { unit_id });
        }
        check_text("resellerReference", item.reseller_reference.as_deref())?;
        if let Some(contact) = &item.contact {
            check_contact(contact)?;
        }
        let uuid = match item.uuid.as_deref() {
            Some(raw) => parse_uuid(raw)?.to_string(),
            None => Uuid::new_v4().to_string(),
        };
        if items.iter().any(|taken| taken.uuid == uuid) {
            return Err(OctoError::BadRequest(format!(
                "unit item uuid {uuid} is given twice"
            )));
        }
        let kept = current.iter().find(|kept| kept.uuid == uuid);
        items.push(UnitItemRecord {
            uuid,
            unit_id,
            reseller_reference: item
                .reseller_reference
                .clone()
                .or_else(|| kept.and_then(|kept| kept.reseller_reference.clone())),
            contact: item
                .contact
                .clone()
                .or_else(|| kept.map(|kept| kept.contact.clone()))
                .unwrap_or_default(),
        });
    }
    Ok(items)
}

/// The native hold the unit items make on `slot`.
fn hold_body(
    experience: ExperienceId,
    slot: &ServedSlot,
    items: &[UnitItemRecord],
    hold_seconds: i64,
) -> HoldBody {
    let mut pax: Vec<PaxBody> = Vec::new();
    for item in items {
        match pax.iter_mut().find(|pax| pax.pax_type == item.unit_id) {
            Some(pax) => pax.quantity += 1,
            None => pax.push(PaxBody {
                pax_type: item.unit_id.clone(),
                quantity: 1,
            }),
        }
    }
    HoldBody {
        experience: Some(experience),
        date: slot.start_date.to_string(),
        start_time: slot.start_time.format("%H:%M").to_string(),
        pax,
        hold_seconds: Some(hold_seconds),
    }
}

/// The seats a booking moves to: `items` on `slot` of `experience`, held until its deadline
/// now.
fn rebook_request(
    experience: ExperienceId,
    slot: &ServedSlot,
    items: &[UnitItemRecord],
    booking: &Booking,
) -> Result<crate::storage::HoldRequest, OctoError> {
    let now = crate::bookings::now();
    let left = (booking.expires_at - now).num_seconds().max(1);
    let body = hold_body(
        experience,
        slot,
        items,
        left.min(MAX_EXPIRATION_MINUTES * 60),
    );
    let mut request = body
        .parse(now)
        .map_err(|error| OctoError::BadRequest(error.to_string()))?;
    request.expires_at = booking.expires_at.max(now);
    Ok(request)
}

/// Whether `request` asks for other seats than the booking holds: another slot, or other
/// quantities. The same seats again move nothing.
fn moves_seats(booking: &Booking, request: &crate::storage::HoldRequest) -> bool {
    let mut held: Vec<(&str, i64)> = booking
        .pax
        .iter()
        .map(|pax| (pax.pax_type.as_str(), pax.quantity))
        .collect();
    let mut wanted: Vec<(&str, i64)> = request
        .pax
        .iter()
        .map(|pax| (pax.pax_type.as_str(), pax.quantity))
        .collect();
    held.sort_unstable();
    wanted.sort_unstable();
    (booking.experience, booking.date, booking.start_time)
        != (request.experience, request.date, request.start_time)
        || held != wanted
}

/// `expirationMinutes` as a hold's length in seconds: 1 to 60 minutes, the bookings service's
/// default when absent.
fn hold_seconds(minutes: Option<i64>) -> Result<i64, OctoError> {
    match minutes {
        None => Ok(crate::bookings::DEFAULT_HOLD.as_secs() as i64),
        Some(minutes) if (1..=MAX_EXPIRATION_MINUTES).contains(&minutes) => Ok(minutes * 60),
        Some(minutes) => Err(OctoError::BadRequest(format!(
            "expirationMinutes must be from 1 to {MAX_EXPIRATION_MINUTES}, got {minutes}"
        ))),
    }
}

fn deadline(seconds: i64) -> Result<DateTime<Utc>, OctoError> {
    crate::bookings::request::hold_length(Some(seconds))
        .map(|length| crate::bookings::now() + length)
        .map_err(|error| OctoError::BadRequest(error.to_string()))
}

fn check_text(field: &str, text: Option<&str>) -> Result<(), OctoError> {
    match text {
        Some(text) if text.chars().count() > MAX_TEXT => Err(OctoError::BadRequest(format!(
            "{field} is longer than {MAX_TEXT} characters"
        ))),
        _ => Ok(()),
    }
}

fn check_contact(contact: &ContactBody) -> Result<(), OctoError> {
    contact
        .texts()
        .try_for_each(|text| check_text("contact", Some(text)))
}

fn parse_uuid(raw: &str) -> Result<Uuid, OctoError> {
    Uuid::parse_str(raw).map_err(|_| invalid_uuid(raw))
}

fn path_uuid(raw: Result<Path<String>, PathRejection>) -> Result<Uuid, OctoError> {
    let raw = raw.map(|Path(raw)| raw).unwrap_or_default();
    parse_uuid(&raw)
}

fn invalid_uuid(raw: &str) -> OctoError {
    OctoError::InvalidBookingUuid {
        uuid: raw.to_string(),
        message: format!("no booking has uuid {raw:?}"),
    }
}

/// The bookings service's refusal in OCTO's words.
fn refused(error: BookingError, uuid: &Uuid) -> OctoError {
    match error {
        BookingError::Invalid(invalid) => OctoError::BadRequest(invalid.to_string()),
        BookingError::KeyInFlight => OctoError::UnprocessableEntity(
            "a request with this uuid is being processed; retry shortly".into(),
        ),
        BookingError::KeyReused => OctoError::InvalidBookingUuid {
            uuid: uuid.to_string(),
            message: "this uuid was used for another reservation".into(),
        },
        BookingError::Store(error) => OctoError::Store(error),
        BookingError::Refused(refusal) => match refusal {
            Refusal::UnknownExperience => OctoError::InvalidProductId {
                product_id: String::new(),
                message: "the product is not synced".into(),
            },
            Refusal::SlotNotFound => OctoError::InvalidAvailabilityId {
                availability_id: String::new(),
            },
            Refusal::UnknownPaxType(unit_id) => OctoError::InvalidUnitId { unit_id },
            Refusal::QuantityOutOfRange {
                pax_type,
                quantity,
                min,
                max,
            } => OctoError::UnprocessableEntity(format!(
                "{quantity} of unit {pax_type:?}: from {min} to {max} may be booked"
            )),
            Refusal::InsufficientCapacity(short) => {
                OctoError::UnprocessableEntity(match short.pax_type {
                    Some(unit) => format!(
                        "not enough seats: {} of unit {unit:?} asked, {} left",
                        short.wanted, short.left
                    ),
                    None => format!(
                        "not enough seats: {} asked, {} left",
                        short.wanted, short.left
                    ),
                })
            }
            Refusal::NotFound => invalid_uuid(&uuid.to_string()),
            Refusal::Expired => OctoError::InvalidBookingUuid {
                uuid: uuid.to_string(),
                message: "the booking's hold has expired".into(),
            },
            Refusal::Cancelled => OctoError::UnprocessableEntity("the booking is cancelled".into()),
            Refusal::NotOnHold(status) => OctoError::UnprocessableEntity(format!(
                "the booking is {}: only a hold can be extended",
                status.as_str()
            )),
        },
    }
}

fn utc(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn started(zone: Tz, booking: &Booking, now: DateTime<Utc>) -> bool {
    let times = SlotTimes::new(zone, booking.date, booking.start_time, booking.start_time);
    times.start.with_timezone(&Utc) <= now
}

fn status(status: BookingStatus) -> OctoBookingStatus {
    match status {
        BookingStatus::OnHold => OctoBookingStatus::OnHold,
        BookingStatus::Confirmed => OctoBookingStatus::Confirmed,
        BookingStatus::Cancelled => OctoBookingStatus::Cancelled,
        BookingStatus::Expired => OctoBookingStatus::Expired,
    }
}

/// The booking as OCTO shows it.
async fn render(
    state: &AppState,
    capabilities: Capabilities,
    octo: OctoBooking,
) -> Result<Json<BookingBody>, OctoError> {
    let zone = state.sync.timezone_of(octo.booking.experience);
    let now = crate::bookings::now();
    let booking = &octo.booking;
    // The slot's end as last synced; a slot gone from sale is shown by its start.
    let end = state
        .store
        .slots_on(booking.experience, booking.date)
        .await?
        .into_iter()
        .find(|slot| slot.start_time == booking.start_time)
        .map_or(booking.start_time, |slot| slot.end_time);
    let times = SlotTimes::new(zone, booking.date, booking.start_time, end);
    let live = matches!(
        booking.status,
        BookingStatus::OnHold | BookingStatus::Confirmed
    );
    let reference = booking.id.to_string();
    let item_status = status(booking.status);
    let unit_items = if booking.status == BookingStatus::Cancelled {
        Vec::new()
    } else {
        octo.document
            .unit_items
            .iter()
            .map(|item| {
                Ok(UnitItemBody {
                    uuid: item.uuid.clone(),
                    reseller_reference: item.reseller_reference.clone(),
                    supplier_reference: None,
                    unit_id: item.unit_id.clone(),
                    status: item_status,
                    utc_redeemed_at: None,
                    contact: item.contact.clone(),
                    ticket: None,
                    pricing: capabilities
                        .pricing
                        .then(|| unit_price(booking, &item.unit_id))
                        .flatten()
                        .map(catalogue::pricing_body)
                        .transpose()?,
                })
            })
            .collect::<Result<Vec<_>, OctoError>>()?
    };
    let ended_at = booking.cancelled_at.or(match booking.status {
        BookingStatus::Expired => Some(booking.expires_at),
        _ => None,
    });
    let cancellation = ended_at.map(|at| CancellationBody {
        refund: "FULL",
        reason: match booking.status {
            BookingStatus::Expired => Some("the hold expired".into()),
            _ => octo.document.cancellation_reason.clone(),
        },
        utc_cancelled_at: utc(at),
    });
    let updated_at = [
        Some(octo.updated_at),
        Some(booking.created_at),
        booking.confirmed_at,
        ended_at,
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(booking.created_at);
    let pricing = if capabilities.pricing {
        total_price(booking)?
            .map(|price| catalogue::pricing_body(&price))
            .transpose()?
    } else {
        None
    };
    let availability_id = times.id();
    Ok(Json(BookingBody {
        id: reference.clone(),
        uuid: octo.uuid.to_string(),
        test_mode: false,
        reseller_reference: octo.reseller_reference.clone(),
        supplier_reference: reference.clone(),
        status: status(booking.status),
        utc_created_at: utc(booking.created_at),
        utc_updated_at: utc(updated_at),
        utc_expires_at: matches!(
            booking.status,
            BookingStatus::OnHold | BookingStatus::Expired
        )
        .then(|| utc(booking.expires_at)),
        utc_redeemed_at: None,
        utc_confirmed_at: booking.confirmed_at.map(utc),
        product_id: booking.experience.to_string(),
        option_id: OPTION_ID,
        cancellable: live && !started(zone, booking, now),
        cancellation,
        freesale: false,
        availability: BookingAvailabilityBody {
            id: availability_id.clone(),
            local_date_time_start: availability_id.clone(),
            local_date_time_end: times.local_end(),
            all_day: false,
            opening_hours: Vec::new(),
        },
        availability_id,
        contact: octo.document.contact.clone(),
        notes: octo.document.notes.clone(),
        delivery_methods: vec!["VOUCHER"],
        voucher: live.then(|| TicketBody {
            redemption_method: "MANIFEST",
            utc_redeemed_at: None,
            delivery_options: vec![DeliveryOptionBody {
                delivery_format: "QRCODE",
                delivery_value: reference,
            }],
        }),
        unit_items,
        pricing,
    }))
}

fn unit_price<'b>(booking: &'b Booking, unit_id: &str) -> Option<&'b Price> {
    booking
        .pax
        .iter()
        .find(|pax| pax.pax_type == unit_id)
        .map(|pax| &pax.unit_price)
}

/// The booking's total at the prices its seats were held at, when they share a currency.
fn total_price(booking: &Booking) -> Result<Option<Price>, OctoError> {
    let Some(first) = booking.pax.first() else {
        return Ok(None);
    };
    let currency = &first.unit_price.currency;
    if booking
        .pax
        .iter()
        .any(|pax| &pax.unit_price.currency != currency)
    {
        return Ok(None);
    }
    let sum = |price: fn(&Price) -> Decimal| {
        booking.pax.iter().try_fold(Decimal::ZERO, |total, pax| {
            price(&pax.unit_price)
                .checked_mul(Decimal::from(pax.quantity))
                .and_then(|amount| total.checked_add(amount))
        })
    };
    match (
        sum(|price| price.final_price),
        sum(|price| price.original_price),
    ) {
        (Some(final_price), Some(original_price)) => Ok(Some(Price {
            final_price,
            original_price,
            ..first.unit_price.clone()
        })),
        _ => {
            tracing::error!(booking = %booking.id, "a booking's total overflows");
            Err(OctoError::Internal)
        }
    }
}
