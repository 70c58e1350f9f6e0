//! `/octo`: an OCTO supplier API (octo.travel), so an OCTO reseller can discover the synced
//! experiences, read their availability and book them without a custom integration. Reads
//! come from the store, like the native API; bookings go through the bookings service, like
//! the native ones ([`bookings`]). Its conventions are OCTO's rather than ours (errors, status
//! codes, `Octo-Capabilities`). Supported capability: `octo/pricing`.

mod booking_wire;
mod bookings;
mod catalogue;
mod conventions;
mod error;
mod wire;

use std::collections::BTreeSet;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::header::HOST;
use axum::{Extension, Json};
use chrono::{NaiveDate, Utc};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use self::catalogue::{Catalogue, OPTION_ID};
use self::conventions::{Capabilities, OctoJson};
use self::error::{OctoError, OctoErrorBody};
use self::wire::{
    AvailabilityBody, AvailabilityCalendarRequest, AvailabilityCheckRequest, CalendarDayBody,
    ProductBody, SupplierBody, SupplierContactBody, UnitQuantity,
};
use super::AppState;
use crate::domain::ExperienceId;
use crate::storage::{Inventory, ServedSlot};

/// The OCTO routes, for callers with the sales token (or the admin token).
pub fn routes(state: &AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(supplier))
        .routes(routes!(products))
        .routes(routes!(product))
        .routes(routes!(availability))
        .routes(routes!(calendar))
        .routes(routes!(bookings::reserve, bookings::bookings))
        .routes(routes!(bookings::booking, bookings::update))
        .routes(routes!(bookings::confirm))
        .routes(routes!(bookings::extend))
        .routes(routes!(bookings::cancel))
        .route_layer(axum::middleware::from_fn(conventions::capabilities))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            conventions::require_sales,
        ))
}

/// This supplier: the service itself, reached at the URL the request came in on.
#[utoipa::path(
    get,
    path = "/octo/supplier",
    tag = "octo",
    security(("sales_token" = [])),
    params(("Octo-Capabilities" = Option<String>, Header, description = "Capabilities asked for, comma-separated; `octo/pricing` is supported")),
    responses(
        (status = 200, description = "The supplier", body = SupplierBody,
         headers(("Octo-Capabilities" = String, description = "The capabilities applied"))),
        (status = 400, description = "UNAUTHORIZED: missing or wrong token", body = OctoErrorBody),
        (status = 500, description = "INTERNAL_SERVER_ERROR", body = OctoErrorBody),
    )
)]
async fn supplier(headers: HeaderMap) -> Json<SupplierBody> {
    let host = headers
        .get(HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("localhost");
    // Behind a proxy that terminates TLS, its header says how the reseller called.
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    Json(SupplierBody {
        id: "invsync",
        name: "invsync",
        endpoint: format!("{scheme}://{host}/octo"),
        contact: SupplierContactBody {
            website: None,
            email: None,
            telephone: None,
            address: None,
        },
    })
}

/// Every synced experience with a slot in the synced horizon, as a product with one option
/// (`DEFAULT`) whose units are its pax types.
#[utoipa::path(
    get,
    path = "/octo/products",
    tag = "octo",
    security(("sales_token" = [])),
    params(("Octo-Capabilities" = Option<String>, Header, description = "`octo/pricing` adds currencies and each unit's lowest price")),
    responses(
        (status = 200, description = "The products", body = Vec<ProductBody>,
         headers(("Octo-Capabilities" = String, description = "The capabilities applied"))),
        (status = 400, description = "UNAUTHORIZED: missing or wrong token", body = OctoErrorBody),
        (status = 500, description = "INTERNAL_SERVER_ERROR", body = OctoErrorBody),
    )
)]
async fn products(
    State(state): State<AppState>,
    Extension(capabilities): Extension<Capabilities>,
) -> Result<Json<Vec<ProductBody>>, OctoError> {
    let mut products = Vec::new();
    for id in state.sync.experiences() {
        let catalogue = load_catalogue(&state, id).await?;
        if !catalogue.is_empty() {
            let zone = state.sync.timezone_of(id);
            products.push(catalogue.product(id, zone, capabilities.pricing)?);
        }
    }
    Ok(Json(products))
}

/// One product; `INVALID_PRODUCT_ID` for an experience that is not synced or has no slot in
/// the synced horizon.
#[utoipa::path(
    get,
    path = "/octo/products/{productId}",
    tag = "octo",
    security(("sales_token" = [])),
    params(
        ("productId" = String, Path, description = "The experience id", example = "14"),
        ("Octo-Capabilities" = Option<String>, Header, description = "`octo/pricing` adds currencies and each unit's lowest price"),
    ),
    responses(
        (status = 200, description = "The product", body = ProductBody,
         headers(("Octo-Capabilities" = String, description = "The capabilities applied"))),
        (status = 400, description = "INVALID_PRODUCT_ID, or UNAUTHORIZED", body = OctoErrorBody),
        (status = 500, description = "INTERNAL_SERVER_ERROR", body = OctoErrorBody),
    )
)]
async fn product(
    State(state): State<AppState>,
    Extension(capabilities): Extension<Capabilities>,
    product_id: Result<Path<String>, PathRejection>,
) -> Result<Json<ProductBody>, OctoError> {
    let raw = product_id.map(|Path(raw)| raw).unwrap_or_default();
    let id = synced_product(&state, Some(&raw))?;
    let catalogue = load_catalogue(&state, id).await?;
    if catalogue.is_empty() {
        return Err(OctoError::InvalidProductId {
            message: format!("product {raw:?} has no slot in the synced horizon"),
            product_id: raw,
        });
    }
    Ok(Json(catalogue.product(
        id,
        state.sync.timezone_of(id),
        capabilities.pricing,
    )?))
}

/// The slots of a product as availabilities, by `localDate`, by `localDateStart` +
/// `localDateEnd`, or by `availabilityIds`. Only what is known is answered: dates before
/// today (in the product's zone) or past the synced horizon, and ids of no slot, are absent.
#[utoipa::path(
    post,
    path = "/octo/availability",
    tag = "octo",
    security(("sales_token" = [])),
    params(("Octo-Capabilities" = Option<String>, Header, description = "`octo/pricing` adds each availability's `unitPricing`")),
    request_body = AvailabilityCheckRequest,
    responses(
        (status = 200, description = "The availabilities, by start", body = Vec<AvailabilityBody>,
         headers(("Octo-Capabilities" = String, description = "The capabilities applied"))),
        (status = 400, description = "INVALID_PRODUCT_ID, INVALID_OPTION_ID, INVALID_UNIT_ID, INVALID_AVAILABILITY_ID, BAD_REQUEST (no dates nor ids, dates and ids together, a bad date, a malformed body) or UNAUTHORIZED", body = OctoErrorBody),
        (status = 500, description = "INTERNAL_SERVER_ERROR", body = OctoErrorBody),
    )
)]
async fn availability(
    State(state): State<AppState>,
    Extension(capabilities): Extension<Capabilities>,
    OctoJson(request): OctoJson<AvailabilityCheckRequest>,
) -> Result<Json<Vec<AvailabilityBody>>, OctoError> {
    let id = synced_product(&state, request.product_id.as_deref())?;
    check_option(request.option_id.as_deref())?;
    let zone = state.sync.timezone_of(id);
    let selection = Selection::of(&request, zone)?;
    check_units(&state, id, request.units.as_deref()).await?;
    let horizon = state.horizon();
    let (dates, wanted_ids) = match selection {
        Selection::Dates { first, last } => (known_dates(&state, first, last), None),
        Selection::Ids(ids) => {
            let dates = ids
                .iter()
                .map(|(date, _)| *date)
                .filter(|date| (horizon.first..=horizon.last).contains(date))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let wanted: BTreeSet<String> = ids.into_iter().map(|(_, id)| id).collect();
            (dates, Some(wanted))
        }
    };
    let now = Utc::now();
    let mut availabilities = Vec::new();
    for (_, slots) in slot_days(&state, id, dates).await? {
        for slot in &slots {
            let body = catalogue::availability(slot, zone, now, capabilities.pricing)?;
            if wanted_ids
                .as_ref()
                .is_none_or(|wanted| wanted.contains(&body.id))
            {
                availabilities.push(body);
            }
        }
    }
    Ok(Json(availabilities))
}

/// One entry per local date from `localDateStart` to `localDateEnd` that is known: today (in
/// the product's zone) through the end of the synced horizon.
#[utoipa::path(
    post,
    path = "/octo/availability/calendar",
    tag = "octo",
    security(("sales_token" = [])),
    params(("Octo-Capabilities" = Option<String>, Header, description = "`octo/pricing` adds each day's `unitPricingFrom`")),
    request_body = AvailabilityCalendarRequest,
    responses(
        (status = 200, description = "The days, ascending", body = Vec<CalendarDayBody>,
         headers(("Octo-Capabilities" = String, description = "The capabilities applied"))),
        (status = 400, description = "INVALID_PRODUCT_ID, INVALID_OPTION_ID, INVALID_UNIT_ID, BAD_REQUEST (a missing or bad date, a malformed body) or UNAUTHORIZED", body = OctoErrorBody),
        (status = 500, description = "INTERNAL_SERVER_ERROR", body = OctoErrorBody),
    )
)]
async fn calendar(
    State(state): State<AppState>,
    Extension(capabilities): Extension<Capabilities>,
    OctoJson(request): OctoJson<AvailabilityCalendarRequest>,
) -> Result<Json<Vec<CalendarDayBody>>, OctoError> {
    let id = synced_product(&state, request.product_id.as_deref())?;
    check_option(request.option_id.as_deref())?;
    let (Some(first), Some(last)) = (&request.local_date_start, &request.local_date_end) else {
        return Err(OctoError::BadRequest(
            "localDateStart and localDateEnd are required".into(),
        ));
    };
    let (first, last) = date_range(first, last)?;
    check_units(&state, id, request.units.as_deref()).await?;
    let zone = state.sync.timezone_of(id);
    let now = Utc::now();
    slot_days(&state, id, known_dates(&state, first, last))
        .await?
        .iter()
        .map(|(date, slots)| catalogue::calendar_day(*date, slots, zone, now, capabilities.pricing))
        .collect::<Result<Vec<_>, _>>()
        .map(Json)
}

/// What an availability check asks for.
enum Selection {
    Dates {
        first: NaiveDate,
        last: NaiveDate,
    },
    /// Each id's local date and canonical form.
    Ids(Vec<(NaiveDate, String)>),
}

impl Selection {
    fn of(request: &AvailabilityCheckRequest, zone: chrono_tz::Tz) -> Result<Self, OctoError> {
        let ids = request
            .availability_ids
            .as_ref()
            .filter(|ids| !ids.is_empty());
        let dates = (
            &request.local_date,
            &request.local_date_start,
            &request.local_date_end,
        );
        match (ids, dates) {
            (Some(ids), (None, None, None)) => ids
                .iter()
                .map(|id| {
                    catalogue::parse_availability_id(zone, id).ok_or_else(|| {
                        OctoError::InvalidAvailabilityId {
                            availability_id: id.clone(),
                        }
                    })
                })
                .collect::<Result<_, _>>()
                .map(Self::Ids),
            (Some(_), _) => Err(OctoError::BadRequest(
                "give availabilityIds or dates, not both".into(),
            )),
            (None, (Some(date), None, None)) => {
                let date = local_date("localDate", date)?;
                Ok(Self::Dates {
                    first: date,
                    last: date,
                })
            }
            (None, (None, Some(first), Some(last))) => {
                let (first, last) = date_range(first, last)?;
                Ok(Self::Dates { first, last })
            }
            (None, (None, None, None)) => Err(OctoError::BadRequest(
                "either localDate, localDateStart/localDateEnd or availabilityIds is required"
                    .into(),
            )),
            (None, _) => Err(OctoError::BadRequest(
                "give localDate alone, or localDateStart with localDateEnd".into(),
            )),
        }
    }
}

fn local_date(field: &str, raw: &str) -> Result<NaiveDate, OctoError> {
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .filter(|_| raw.len() == 10)
        .ok_or_else(|| OctoError::BadRequest(format!("{field} {raw:?} is not a YYYY-MM-DD date")))
}

fn date_range(first: &str, last: &str) -> Result<(NaiveDate, NaiveDate), OctoError> {
    let first = local_date("localDateStart", first)?;
    let last = local_date("localDateEnd", last)?;
    if first > last {
        return Err(OctoError::BadRequest(format!(
            "localDateStart {first} is after localDateEnd {last}"
        )));
    }
    Ok((first, last))
}

/// The dates of `first..=last` the service keeps (today in the partner's zone through the
/// horizon); the others are unknown, not wrong.
fn known_dates(state: &AppState, first: NaiveDate, last: NaiveDate) -> Vec<NaiveDate> {
    let horizon = state.horizon();
    let first = first.max(horizon.first);
    let last = last.min(horizon.last);
    first.iter_days().take_while(|date| *date <= last).collect()
}

/// The experience a `productId` names, if the service syncs it.
fn synced_product(state: &AppState, raw: Option<&str>) -> Result<ExperienceId, OctoError> {
    let raw = raw.unwrap_or_default();
    raw.parse::<ExperienceId>()
        .ok()
        .filter(|&id| state.sync.of(id).is_some())
        .ok_or_else(|| OctoError::InvalidProductId {
            product_id: raw.to_string(),
            message: format!("no product {raw:?}; GET /octo/products lists them"),
        })
}

fn check_option(raw: Option<&str>) -> Result<(), OctoError> {
    match raw {
        Some(OPTION_ID) => Ok(()),
        other => Err(OctoError::InvalidOptionId {
            option_id: other.unwrap_or_default().to_string(),
        }),
    }
}

/// Refuses a unit the product does not sell; reads the product only when units are given.
async fn check_units(
    state: &AppState,
    id: ExperienceId,
    units: Option<&[UnitQuantity]>,
) -> Result<(), OctoError> {
    let Some(units) = units.filter(|units| !units.is_empty()) else {
        return Ok(());
    };
    let catalogue = load_catalogue(state, id).await?;
    match units.iter().find(|unit| !catalogue.has_unit(&unit.id)) {
        Some(unknown) => Err(OctoError::InvalidUnitId {
            unit_id: unknown.id.clone(),
        }),
        None => Ok(()),
    }
}

/// What the slots of the whole synced horizon say about a product.
async fn load_catalogue(state: &AppState, id: ExperienceId) -> Result<Catalogue, OctoError> {
    let horizon = state.horizon();
    let days = slot_days(state, id, known_dates(state, horizon.first, horizon.last)).await?;
    Ok(Catalogue::new(days.iter().flat_map(|(_, slots)| slots)))
}

/// The open slots of each of `dates` (ascending), read in one range.
async fn slot_days(
    state: &AppState,
    id: ExperienceId,
    dates: Vec<NaiveDate>,
) -> Result<Vec<(NaiveDate, Vec<ServedSlot>)>, OctoError> {
    let (Some(&first), Some(&last)) = (dates.first(), dates.last()) else {
        return Ok(Vec::new());
    };
    let mut slots = state
        .store
        .slots_between(id, first, last)
        .await?
        .into_iter()
        .peekable();
    let mut days = Vec::with_capacity(dates.len());
    for date in dates {
        let mut on_date = Vec::new();
        while let Some(slot) = slots.next_if(|slot| slot.start_date <= date) {
            if slot.start_date == date {
                on_date.push(slot);
            }
        }
        days.push((date, on_date));
    }
    Ok(days)
}
