//! The OCTO supplier API (`/octo`, booking side) through the real HTTP server on both
//! backends, along the octotravel validator's scenarios: reserve, extend, confirm, update,
//! cancel, get and list, in OCTO's shapes and errors, with every seat move visible on the
//! native API and the ledger verified after each.

mod common;

use std::collections::HashSet;

use chrono::{DateTime, Days, NaiveDate, NaiveDateTime, Utc};
use common::*;
use invsync::domain::{PaxAvailability, Slot};
use reqwest::Method;
use serde_json::{Value, json};

const SALES_TOKEN: &str = "test-sales-token";
const ADULT: &str = "ADULT_12~99";
const CHILD: &str = "CHILD_3~11";

/// Required by OCTO on a booking, a unit item, a contact, a booking's availability, a ticket,
/// a cancellation and a price.
const BOOKING_FIELDS: &[&str] = &[
    "id",
    "uuid",
    "testMode",
    "resellerReference",
    "supplierReference",
    "status",
    "utcCreatedAt",
    "utcUpdatedAt",
    "utcExpiresAt",
    "utcRedeemedAt",
    "utcConfirmedAt",
    "productId",
    "optionId",
    "cancellable",
    "cancellation",
    "freesale",
    "availabilityId",
    "availability",
    "contact",
    "notes",
    "deliveryMethods",
    "voucher",
    "unitItems",
];
const UNIT_ITEM_FIELDS: &[&str] = &[
    "uuid",
    "resellerReference",
    "supplierReference",
    "unitId",
    "status",
    "utcRedeemedAt",
    "contact",
    "ticket",
];
const CONTACT_FIELDS: &[&str] = &[
    "fullName",
    "firstName",
    "lastName",
    "emailAddress",
    "phoneNumber",
    "postalCode",
    "country",
    "notes",
    "locales",
];
const BOOKING_AVAILABILITY_FIELDS: &[&str] = &[
    "id",
    "localDateTimeStart",
    "localDateTimeEnd",
    "allDay",
    "openingHours",
];
const TICKET_FIELDS: &[&str] = &["redemptionMethod", "utcRedeemedAt", "deliveryOptions"];
const CANCELLATION_FIELDS: &[&str] = &["refund", "reason", "utcCancelledAt"];
const DELIVERY_FORMATS: &[&str] = &[
    "QRCODE",
    "CODE128",
    "AZTECCODE",
    "PDF_URL",
    "PKPASS_URL",
    "PNG_URL",
    "GOOGLE_WALLET_URL",
];

/// OCTO's UUID: lowercase, hyphenated, a version digit and an RFC 4122 variant.
fn is_octo_uuid(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, &b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
        && bytes[14].is_ascii_digit()
        && matches!(bytes[19], b'0' | b'8' | b'9' | b'a' | b'b')
}

/// OCTO's UTC date-time: `YYYY-MM-DDTHH:MM:SS`, optionally `.mmm`, then `Z`.
fn utc(value: &Value, what: &str) -> DateTime<Utc> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is a UTC date-time: {value}"));
    let body = text
        .strip_suffix('Z')
        .unwrap_or_else(|| panic!("{what} ends in Z: {text}"));
    let (seconds, fraction) = body.split_at(body.len().min(19));
    assert!(
        fraction.is_empty()
            || (fraction.len() == 4
                && fraction.starts_with('.')
                && fraction[1..].bytes().all(|b| b.is_ascii_digit())),
        "{what} has no or 3 fractional digits: {text}"
    );
    NaiveDateTime::parse_from_str(seconds, "%Y-%m-%dT%H:%M:%S")
        .unwrap_or_else(|e| panic!("{what} is YYYY-MM-DDTHH:MM:SS: {text}: {e}"))
        .and_utc()
        + chrono::Duration::milliseconds(
            fraction
                .get(1..)
                .filter(|digits| !digits.is_empty())
                .map_or(0, |digits| digits.parse().expect("digits")),
        )
}

fn assert_string_or_null(value: &Value, what: &str) {
    assert!(
        value.is_null() || value.is_string(),
        "{what} is a string or null: {value}"
    );
}

fn assert_contact(contact: &Value, what: &str) {
    assert_fields(contact, CONTACT_FIELDS, what);
    for field in &CONTACT_FIELDS[..CONTACT_FIELDS.len() - 1] {
        assert_string_or_null(&contact[*field], &format!("{what}.{field}"));
    }
    assert!(
        contact["locales"]
            .as_array()
            .is_some_and(|locales| locales.iter().all(Value::is_string)),
        "{what}.locales is a string array: {contact}"
    );
}

fn assert_ticket(ticket: &Value, what: &str) {
    assert_fields(ticket, TICKET_FIELDS, what);
    assert!(
        ["DIGITAL", "PRINT", "MANIFEST"]
            .contains(&ticket["redemptionMethod"].as_str().unwrap_or("")),
        "{what}.redemptionMethod: {ticket}"
    );
    assert!(ticket["utcRedeemedAt"].is_null(), "{what}: {ticket}");
    for option in ticket["deliveryOptions"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}.deliveryOptions is an array: {ticket}"))
    {
        assert!(
            DELIVERY_FORMATS.contains(&option["deliveryFormat"].as_str().unwrap_or("")),
            "{what}.deliveryFormat: {option}"
        );
        assert!(
            option["deliveryValue"]
                .as_str()
                .is_some_and(|value| !value.is_empty()),
            "{what}.deliveryValue: {option}"
        );
    }
}

/// What the validator's BookingValidator checks, and the spec's rules for each status.
fn assert_booking(booking: &Value, what: &str) {
    assert_fields(booking, BOOKING_FIELDS, what);
    let status = booking["status"].as_str().unwrap_or("");
    assert!(
        ["ON_HOLD", "CONFIRMED", "CANCELLED", "EXPIRED"].contains(&status),
        "{what}: status {booking}"
    );
    assert!(
        booking["id"].as_str().is_some_and(|id| !id.is_empty()),
        "{what}: id {booking}"
    );
    assert!(
        booking["uuid"].as_str().is_some_and(is_octo_uuid),
        "{what}: uuid is a lowercase UUID: {}",
        booking["uuid"]
    );
    assert_eq!(booking["testMode"], false, "{what}");
    assert_eq!(booking["freesale"], false, "{what}");
    assert_string_or_null(&booking["resellerReference"], what);
    assert!(
        booking["supplierReference"]
            .as_str()
            .is_some_and(|reference| !reference.is_empty()),
        "{what}: supplierReference {booking}"
    );
    utc(&booking["utcCreatedAt"], "utcCreatedAt");
    utc(&booking["utcUpdatedAt"], "utcUpdatedAt");
    assert!(booking["utcRedeemedAt"].is_null(), "{what}");
    assert_eq!(booking["productId"], "14", "{what}");
    assert_eq!(booking["optionId"], "DEFAULT", "{what}");
    assert!(booking["cancellable"].is_boolean(), "{what}");

    let availability = &booking["availability"];
    assert_fields(
        availability,
        BOOKING_AVAILABILITY_FIELDS,
        "booking availability",
    );
    assert!(
        booking["availabilityId"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "{what}"
    );
    assert_eq!(availability["id"], booking["availabilityId"], "{what}");
    for end in ["localDateTimeStart", "localDateTimeEnd"] {
        let text = availability[end].as_str().unwrap_or("");
        assert!(
            DateTime::parse_from_rfc3339(text).is_ok(),
            "{what}: availability.{end} has an offset: {availability}"
        );
    }
    assert!(availability["allDay"].is_boolean(), "{what}");
    assert!(availability["openingHours"].is_array(), "{what}");

    assert_contact(&booking["contact"], &format!("{what}.contact"));
    assert_string_or_null(&booking["notes"], what);
    assert_eq!(booking["deliveryMethods"], json!(["VOUCHER"]), "{what}");

    let items = booking["unitItems"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: unitItems is an array: {booking}"));
    let mut uuids = HashSet::new();
    for item in items {
        assert_fields(item, UNIT_ITEM_FIELDS, "unit item");
        let uuid = item["uuid"].as_str().unwrap_or("");
        assert!(is_octo_uuid(uuid), "{what}: unit item uuid {item}");
        assert!(
            uuids.insert(uuid.to_string()),
            "{what}: unit item uuids are unique: {items:?}"
        );
        assert_string_or_null(&item["resellerReference"], "unit item resellerReference");
        assert_string_or_null(&item["supplierReference"], "unit item supplierReference");
        assert!(
            [ADULT, CHILD].contains(&item["unitId"].as_str().unwrap_or("")),
            "{what}: {item}"
        );
        assert_eq!(
            item["status"], booking["status"],
            "{what}: unit item status {item}"
        );
        assert!(item["utcRedeemedAt"].is_null(), "{what}: {item}");
        assert_contact(&item["contact"], &format!("{what}: unit item contact"));
        assert!(item["ticket"].is_null(), "{what}: unit item ticket {item}");
    }

    match status {
        "ON_HOLD" | "CONFIRMED" => {
            assert_eq!(
                booking["cancellable"], true,
                "{what}: before the slot starts"
            );
            assert!(booking["cancellation"].is_null(), "{what}: {booking}");
            assert!(!items.is_empty(), "{what}: {booking}");
            assert_ticket(&booking["voucher"], &format!("{what}.voucher"));
            if status == "ON_HOLD" {
                utc(&booking["utcExpiresAt"], "utcExpiresAt while ON_HOLD");
                assert!(booking["utcConfirmedAt"].is_null(), "{what}: {booking}");
            } else {
                assert!(booking["utcExpiresAt"].is_null(), "{what}: {booking}");
                utc(&booking["utcConfirmedAt"], "utcConfirmedAt when CONFIRMED");
            }
        }
        "CANCELLED" => {
            assert_eq!(booking["cancellable"], false, "{what}");
            assert!(booking["utcExpiresAt"].is_null(), "{what}: {booking}");
            assert!(booking["voucher"].is_null(), "{what}: {booking}");
            assert!(items.is_empty(), "{what}: {booking}");
            let cancellation = &booking["cancellation"];
            assert_fields(cancellation, CANCELLATION_FIELDS, "cancellation");
            assert_eq!(cancellation["refund"], "FULL", "{what}");
            assert_string_or_null(&cancellation["reason"], "cancellation reason");
            utc(&cancellation["utcCancelledAt"], "utcCancelledAt");
        }
        _ => {
            assert!(booking["voucher"].is_null(), "{what}: {booking}");
        }
    }
}

fn assert_price(price: &Value, retail: i64, original: i64, what: &str) {
    assert_fields(price, PRICING_FIELDS, what);
    assert_eq!(
        (&price["retail"], &price["original"]),
        (&json!(retail), &json!(original)),
        "{what}: {price}"
    );
    assert!(
        price["net"].is_null() || price["net"].is_i64(),
        "{what}: {price}"
    );
    assert_eq!(price["currency"], "SGD", "{what}");
    assert_eq!(price["currencyPrecision"], 2, "{what}");
    assert_eq!(price["includedTaxes"], json!([]), "{what}");
}

/// Two answers for the same booking in the same state: every key equal (named when not).
fn assert_same_booking(read: &Value, answered: &Value, what: &str) {
    let (read, answered) = (
        read.as_object().expect("an object"),
        answered.as_object().expect("an object"),
    );
    let keys: std::collections::BTreeSet<&String> = read.keys().chain(answered.keys()).collect();
    let differing: Vec<String> = keys
        .into_iter()
        .filter(|key| read.get(*key) != answered.get(*key))
        .map(|key| {
            format!(
                "{key}: read {} answered {}",
                read.get(key).unwrap_or(&Value::Null),
                answered.get(key).unwrap_or(&Value::Null)
            )
        })
        .collect();
    assert!(differing.is_empty(), "{what}: {differing:#?}");
}

fn unit_ids(booking: &Value) -> Vec<String> {
    let mut ids: Vec<String> = booking["unitItems"]
        .as_array()
        .expect("unitItems")
        .iter()
        .map(|item| item["unitId"].as_str().expect("unitId").to_string())
        .collect();
    ids.sort();
    ids
}

/// The days the tests put slots on, relative to today in the partner's zone.
struct TestDays {
    /// 09:00 and 10:00 with 20 seats each, 11:00 with 2, 12:00 sold out.
    main: NaiveDate,
    /// 09:00 with 10 seats, for the race.
    race: NaiveDate,
}

fn after(day: NaiveDate, days: u64) -> NaiveDate {
    day.checked_add_days(Days::new(days)).expect("date")
}

fn adult(remaining: i64, final_price: &str) -> PaxAvailability {
    pax(ADULT, remaining, final_price, true)
}

fn child(remaining: i64, final_price: &str) -> PaxAvailability {
    pax(CHILD, remaining, final_price, false)
}

/// The app with sync off, a sales token and a queue budget long enough for the race,
/// experience 14 mirrored on two days.
async fn octo_app(backend: TestStore) -> (TestApp, TestDays) {
    let app = spawn_app_with(backend, |settings| {
        settings.sync.enabled = false;
        settings.server.sales_token = Some(invsync::domain::Secret::new(SALES_TOKEN));
        settings.server.queue_budget_ms = std::num::NonZeroU32::new(60_000).expect("non-zero");
    })
    .await;
    let today = app.today();
    let days = TestDays {
        main: after(today, 2),
        race: after(today, 3),
    };
    let mirrored: [(NaiveDate, Vec<Slot>); 2] = [
        (
            days.main,
            vec![
                slot(
                    days.main,
                    "09:00",
                    20,
                    vec![adult(20, "212.14"), child(20, "43")],
                ),
                slot(
                    days.main,
                    "10:00",
                    20,
                    vec![adult(20, "242.14"), child(20, "73")],
                ),
                slot(
                    days.main,
                    "11:00",
                    2,
                    vec![adult(2, "212.14"), child(2, "43")],
                ),
                slot(days.main, "12:00", 0, vec![adult(0, "212.14")]),
            ],
        ),
        (
            days.race,
            vec![slot(days.race, "09:00", 10, vec![adult(10, "200.5")])],
        ),
    ];
    for (n, (day, slots)) in mirrored.into_iter().enumerate() {
        let seconds = i64::try_from(n).expect("few days");
        app.backend
            .store
            .apply_fetch(&fetch_at(experience(14), day, seconds, slots), None)
            .await
            .expect("fetch applies");
    }
    (app, days)
}

fn availability_id(day: NaiveDate, time: &str) -> String {
    format!("{day}T{time}:00+08:00")
}

/// An OCTO call with the sales token: status and JSON body.
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    capabilities: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = app
        .http
        .request(method, format!("{}/octo{path}", app.base))
        .bearer_auth(SALES_TOKEN);
    if let Some(capabilities) = capabilities {
        request = request.header("Octo-Capabilities", capabilities);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("server answers");
    let status = response.status().as_u16();
    let text = response.text().await.expect("a body");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{path}: a JSON body ({e}), got {status} {text:?}"));
    (status, body)
}

async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    call(app, Method::GET, path, None, None).await
}

async fn post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    call(app, Method::POST, path, None, Some(body)).await
}

async fn patch(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    call(app, Method::PATCH, path, None, Some(body)).await
}

/// The validator's reservation: product, option, slot and one unit item per unit, no uuids.
fn reservation(availability: &str, units: &[&str]) -> Value {
    json!({
        "productId": "14",
        "optionId": "DEFAULT",
        "availabilityId": availability,
        "unitItems": units.iter().map(|unit| json!({"unitId": unit})).collect::<Vec<_>>(),
    })
}

/// Reserves and expects an ON_HOLD booking.
async fn reserve(app: &TestApp, availability: &str, units: &[&str]) -> Value {
    let (status, booking) = post(app, "/bookings", reservation(availability, units)).await;
    assert_eq!(status, 200, "{}: reserve: {booking}", app.backend.name);
    assert_eq!(booking["status"], "ON_HOLD", "{booking}");
    booking
}

fn uuid_of(booking: &Value) -> String {
    booking["uuid"].as_str().expect("uuid").to_string()
}

/// The validator's confirmation contact.
fn validator_contact() -> Value {
    json!({"firstName": "John", "lastName": "Doe", "emailAddress": "johndoe@mail.com",
           "fullName": "John Doe", "notes": "Test note"})
}

fn assert_contact_echoed(booking: &Value, sent: &Value) {
    for (field, value) in sent.as_object().expect("contact") {
        assert_eq!(
            booking["contact"][field], *value,
            "contact.{field}: {booking}"
        );
    }
}

fn assert_error(answer: &(u16, Value), code: &str, id_field: Option<(&str, &str)>) {
    let (status, body) = answer;
    assert_eq!(*status, 400, "{code}: {body}");
    assert_eq!(body["error"], code, "{body}");
    assert!(
        body["errorMessage"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    if let Some((field, value)) = id_field {
        assert_eq!(body[field], value, "{body}");
    }
}

/// A slot's remaining and each pax's, as the native `/slots` serves them.
async fn native(app: &TestApp, day: NaiveDate, start: &str) -> (i64, Vec<(String, i64)>) {
    let (status, slots) = app
        .get(&format!("/api/v1/experience/14/slots?date={day}"))
        .await;
    assert_eq!(status, 200, "{slots}");
    let slot = slots
        .as_array()
        .expect("slots")
        .iter()
        .find(|slot| slot["startTime"] == start)
        .unwrap_or_else(|| panic!("a slot at {start}: {slots}"));
    let pax = slot["paxAvailability"]
        .as_array()
        .expect("pax")
        .iter()
        .map(|p| {
            (
                p["type"].as_str().expect("type").to_string(),
                p["remaining"].as_i64().expect("remaining"),
            )
        })
        .collect();
    (slot["remaining"].as_i64().expect("remaining"), pax)
}

/// The native view of a slot whose pools (the slot's and each unit's) all started at
/// `capacity`, with `adults` and `children` left in the unit pools.
fn pools(capacity: i64, adults: i64, children: i64) -> (i64, Vec<(String, i64)>) {
    let taken = (capacity - adults) + (capacity - children);
    (
        capacity - taken,
        vec![(ADULT.into(), adults), (CHILD.into(), children)],
    )
}

/// A 20-seat slot (09:00, 10:00) with `adults` and `children` left in the unit pools.
fn seats(adults: i64, children: i64) -> (i64, Vec<(String, i64)>) {
    pools(20, adults, children)
}

async fn assert_verified(app: &TestApp) {
    let (status, report) = app.verify().await;
    assert_eq!(status, 200);
    assert_eq!(report["ok"], true, "{}: {report}", app.backend.name);
}

#[tokio::test]
async fn a_reservation_holds_seats_and_reads_back_with_every_field() {
    for backend in backends().await {
        let (app, days) = octo_app(backend).await;
        let name = app.backend.name;
        let nine = availability_id(days.main, "09:00");

        // As the validator reserves: no uuids at all, the supplier makes them.
        let (status, booking) = call(
            &app,
            Method::POST,
            "/bookings",
            Some(PRICING),
            Some(reservation(&nine, &[ADULT, ADULT, CHILD])),
        )
        .await;
        assert_eq!(status, 200, "{name}: {booking}");
        assert_booking(&booking, "reservation");
        assert_eq!(booking["status"], "ON_HOLD");
        assert_eq!(booking["availabilityId"], nine);
        assert_eq!(
            booking["availability"]["localDateTimeStart"], nine,
            "{booking}"
        );
        assert_eq!(booking["availability"]["allDay"], false);
        assert_eq!(booking["resellerReference"], Value::Null);
        assert_eq!(unit_ids(&booking), [ADULT, ADULT, CHILD], "{name}");
        assert!(
            utc(&booking["utcExpiresAt"], "utcExpiresAt") > utc(&booking["utcCreatedAt"], "c"),
            "{booking}"
        );
        // Pricing: 2 × 212.14 + 43, exact in cents, and each unit's own.
        assert_price(&booking["pricing"], 46_728, 76_728, "booking pricing");
        for item in booking["unitItems"].as_array().expect("items") {
            let (retail, original) = if item["unitId"] == ADULT {
                (21_214, 31_214)
            } else {
                (4_300, 14_300)
            };
            assert_price(&item["pricing"], retail, original, "unit item pricing");
        }
        assert_eq!(
            native(&app, days.main, "09:00").await,
            seats(18, 19),
            "{name}: held seats leave the native remaining"
        );

        let uuid = uuid_of(&booking);
        let (status, read) = call(
            &app,
            Method::GET,
            &format!("/bookings/{uuid}"),
            Some(PRICING),
            None,
        )
        .await;
        assert_eq!(status, 200, "{read}");
        assert_same_booking(
            &read,
            &booking,
            &format!("{name}: GET answers the booking as reserved"),
        );
        let (status, plain) = get(&app, &format!("/bookings/{uuid}")).await;
        assert_eq!(status, 200, "{plain}");
        assert!(
            plain.get("pricing").is_none(),
            "no pricing unasked: {plain}"
        );
        assert!(
            plain["unitItems"][0].get("pricing").is_none(),
            "no pricing unasked: {plain}"
        );

        // A reseller's own uuids, references, notes and hold time are kept.
        let own = uuid::Uuid::new_v4().to_string();
        let item = uuid::Uuid::new_v4().to_string();
        let (status, mine) = post(
            &app,
            "/bookings",
            json!({
                "uuid": own, "productId": "14", "optionId": "DEFAULT", "availabilityId": nine,
                "unitItems": [{"unitId": CHILD, "uuid": item, "resellerReference": "seat-1"}],
                "notes": "window seat", "expirationMinutes": 45,
            }),
        )
        .await;
        assert_eq!(status, 200, "{name}: {mine}");
        assert_booking(&mine, "reservation with uuids");
        assert_eq!(mine["uuid"], own);
        assert_ne!(mine["id"], booking["id"]);
        assert_ne!(mine["supplierReference"], booking["supplierReference"]);
        assert_eq!(mine["notes"], "window seat");
        assert_eq!(mine["unitItems"][0]["uuid"], item, "{mine}");
        assert_eq!(
            mine["unitItems"][0]["resellerReference"], "seat-1",
            "{mine}"
        );
        let hold = utc(&mine["utcExpiresAt"], "e") - utc(&mine["utcCreatedAt"], "c");
        assert!(
            (44..=46).contains(&hold.num_minutes()),
            "{name}: expirationMinutes 45 gives a {hold} hold: {mine}"
        );
        assert_eq!(native(&app, days.main, "09:00").await, seats(18, 18));
        assert_verified(&app).await;
    }
}

#[tokio::test]
async fn a_repeated_uuid_answers_the_same_booking_and_a_different_request_is_refused() {
    for backend in backends().await {
        let (app, days) = octo_app(backend).await;
        let name = app.backend.name;
        let own = uuid::Uuid::new_v4().to_string();
        let mut body = reservation(&availability_id(days.main, "09:00"), &[ADULT, ADULT]);
        body["uuid"] = json!(own);

        let (status, first) = post(&app, "/bookings", body.clone()).await;
        assert_eq!(status, 200, "{name}: {first}");
        assert_eq!(first["uuid"], own);
        let (status, again) = post(&app, "/bookings", body.clone()).await;
        assert_eq!(status, 200, "{name}: a retry: {again}");
        assert_eq!(again["id"], first["id"], "{name}: the same booking");
        assert_eq!(again["uuid"], own);
        assert_eq!(unit_ids(&again), [ADULT, ADULT]);
        assert_eq!(
            native(&app, days.main, "09:00").await,
            seats(18, 20),
            "{name}: the retry moved nothing"
        );

        let mut other = body.clone();
        other["unitItems"] = json!([{"unitId": ADULT}, {"unitId": ADULT}, {"unitId": ADULT}]);
        let answer = post(&app, "/bookings", other).await;
        assert_error(
            &answer,
            "INVALID_BOOKING_UUID",
            Some(("uuid", own.as_str())),
        );
        let mut elsewhere = body.clone();
        elsewhere["availabilityId"] = json!(availability_id(days.main, "10:00"));
        let answer = post(&app, "/bookings", elsewhere).await;
        assert_error(
            &answer,
            "INVALID_BOOKING_UUID",
            Some(("uuid", own.as_str())),
        );

        let (status, read) = get(&app, &format!("/bookings/{own}")).await;
        assert_eq!(status, 200, "{read}");
        assert_eq!(
            unit_ids(&read),
            [ADULT, ADULT],
            "{name}: the first request stands"
        );
        assert_eq!(native(&app, days.main, "09:00").await, seats(18, 20));
        assert_eq!(native(&app, days.main, "10:00").await, seats(20, 20));
        assert_verified(&app).await;
    }
}

/// A refused request: what it is, its body, the OCTO error code, and the id field the error
/// must name with its value.
type RefusedCase<'a> = (&'a str, Value, &'a str, Option<(&'a str, &'a str)>);

#[tokio::test]
async fn refused_requests_get_octos_errors_and_move_nothing() {
    for backend in backends().await {
        let (app, days) = octo_app(backend).await;
        let name = app.backend.name;
        let nine = availability_id(days.main, "09:00");
        let thirteen = availability_id(days.main, "13:00");
        let good = reservation(&nine, &[ADULT]);
        let with = |field: &str, value: Value| {
            let mut body = good.clone();
            body[field] = value;
            body
        };

        let cases: Vec<RefusedCase> = vec![
            (
                "product",
                with("productId", json!("invalidProductId")),
                "INVALID_PRODUCT_ID",
                Some(("productId", "invalidProductId")),
            ),
            (
                "option",
                with("optionId", json!("invalidOptionId")),
                "INVALID_OPTION_ID",
                Some(("optionId", "invalidOptionId")),
            ),
            (
                "availability",
                with("availabilityId", json!("invalidAvailabilityId")),
                "INVALID_AVAILABILITY_ID",
                Some(("availabilityId", "invalidAvailabilityId")),
            ),
            (
                "no slot then",
                with("availabilityId", json!(thirteen)),
                "INVALID_AVAILABILITY_ID",
                Some(("availabilityId", thirteen.as_str())),
            ),
            (
                "unit",
                with("unitItems", json!([{"unitId": "invalidUnitId"}])),
                "INVALID_UNIT_ID",
                Some(("unitId", "invalidUnitId")),
            ),
            (
                "no unit items",
                {
                    let mut body = good.clone();
                    body.as_object_mut().expect("object").remove("unitItems");
                    body
                },
                "UNPROCESSABLE_ENTITY",
                None,
            ),
            (
                "empty unit items",
                with("unitItems", json!([])),
                "UNPROCESSABLE_ENTITY",
                None,
            ),
            (
                "sold out",
                with("availabilityId", json!(availability_id(days.main, "12:00"))),
                "UNPROCESSABLE_ENTITY",
                None,
            ),
            (
                "more than the seats",
                reservation(&availability_id(days.main, "11:00"), &[ADULT, ADULT, CHILD]),
                "UNPROCESSABLE_ENTITY",
                None,
            ),
        ];
        for (case, body, code, field) in cases {
            let answer = post(&app, "/bookings", body).await;
            let (status, body) = &answer;
            assert!(
                *status == 400 && body["error"] == code,
                "{name}: {case}: expected 400 {code}, got {status} {body}"
            );
            assert_error(&answer, code, field);
        }

        // An unknown booking is INVALID_BOOKING_UUID on every route, never a 404.
        let unknown = uuid::Uuid::new_v4().to_string();
        for uuid in ["invalidUUID", unknown.as_str()] {
            let field = Some(("uuid", uuid));
            let path = format!("/bookings/{uuid}");
            assert_error(&get(&app, &path).await, "INVALID_BOOKING_UUID", field);
            let confirm = post(&app, &format!("{path}/confirm"), json!({"contact": {}})).await;
            assert_error(&confirm, "INVALID_BOOKING_UUID", field);
            let extend = post(
                &app,
                &format!("{path}/extend"),
                json!({"expirationMinutes": 31}),
            )
            .await;
            assert_error(&extend, "INVALID_BOOKING_UUID", field);
            let cancel = post(&app, &format!("{path}/cancel"), json!({})).await;
            assert_error(&cancel, "INVALID_BOOKING_UUID", field);
            let update = patch(&app, &path, json!({"notes": "Test note"})).await;
            assert_error(&update, "INVALID_BOOKING_UUID", field);
        }

        // Listing needs a filter; a filter that matches nothing is an empty list.
        assert_error(&get(&app, "/bookings").await, "BAD_REQUEST", None);
        assert_eq!(
            get(&app, "/bookings?resellerReference=nobody").await,
            (200, json!([])),
            "{name}"
        );

        let response = app
            .http
            .post(format!("{}/octo/bookings", app.base))
            .json(&good)
            .send()
            .await
            .expect("answers");
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("JSON");
        assert_error(&(status, body), "UNAUTHORIZED", None);

        assert_eq!(
            native(&app, days.main, "09:00").await,
            seats(20, 20),
            "{name}"
        );
        assert_eq!(
            native(&app, days.main, "11:00").await,
            pools(2, 2, 2),
            "{name}"
        );
        assert_verified(&app).await;
    }
}

#[tokio::test]
async fn a_reservation_is_extended_confirmed_and_found_by_its_references() {
    for backend in backends().await {
        let (app, days) = octo_app(backend).await;
        let name = app.backend.name;
        let mut body = reservation(&availability_id(days.main, "09:00"), &[ADULT, ADULT]);
        body["notes"] = json!("Booking note");
        let (status, held) = post(&app, "/bookings", body).await;
        assert_eq!(status, 200, "{name}: {held}");
        let uuid = uuid_of(&held);

        let (status, extended) = post(
            &app,
            &format!("/bookings/{uuid}/extend"),
            json!({"expirationMinutes": 31}),
        )
        .await;
        assert_eq!(status, 200, "{name}: {extended}");
        assert_booking(&extended, "extended");
        assert_eq!(extended["status"], "ON_HOLD");
        assert_eq!(
            (&extended["id"], &extended["uuid"]),
            (&held["id"], &held["uuid"])
        );
        assert!(
            extended["utcExpiresAt"].as_str() > held["utcExpiresAt"].as_str()
                && utc(&extended["utcExpiresAt"], "e") > utc(&held["utcExpiresAt"], "e"),
            "{name}: the hold runs later: {} then {}",
            held["utcExpiresAt"],
            extended["utcExpiresAt"]
        );

        let reference = format!("reseller-{}", uuid::Uuid::new_v4().simple());
        let contact = validator_contact();
        let (status, confirmed) = post(
            &app,
            &format!("/bookings/{uuid}/confirm"),
            json!({"contact": contact, "resellerReference": reference}),
        )
        .await;
        assert_eq!(status, 200, "{name}: {confirmed}");
        assert_booking(&confirmed, "confirmed");
        assert_eq!(confirmed["status"], "CONFIRMED");
        assert_eq!(
            (&confirmed["id"], &confirmed["uuid"]),
            (&held["id"], &held["uuid"])
        );
        assert_eq!(confirmed["resellerReference"], reference);
        assert_contact_echoed(&confirmed, &contact);
        assert_eq!(
            confirmed["notes"], "Booking note",
            "{name}: the contact's notes are not the booking's"
        );
        assert_eq!(confirmed["supplierReference"], held["supplierReference"]);
        assert_eq!(unit_ids(&confirmed), [ADULT, ADULT]);
        assert_eq!(
            native(&app, days.main, "09:00").await,
            seats(18, 20),
            "{name}: sold seats stay off sale"
        );
        assert_verified(&app).await;

        let (status, read) = get(&app, &format!("/bookings/{uuid}")).await;
        assert_eq!(status, 200, "{read}");
        assert_same_booking(
            &read,
            &confirmed,
            &format!("{name}: GET answers the booking as confirmed"),
        );

        for query in [
            format!("resellerReference={reference}"),
            format!(
                "supplierReference={}",
                held["supplierReference"].as_str().expect("reference")
            ),
        ] {
            let (status, found) = get(&app, &format!("/bookings?{query}")).await;
            assert_eq!(status, 200, "{name}: {query}: {found}");
            let found = found.as_array().expect("an array");
            assert_eq!(found.len(), 1, "{name}: {query}: {found:?}");
            assert_booking(&found[0], "listed");
            assert_same_booking(&found[0], &confirmed, &format!("{name}: listed by {query}"));
        }
    }
}

#[tokio::test]
async fn confirming_with_other_unit_items_replaces_them_and_their_seats() {
    for backend in backends().await {
        let (app, days) = octo_app(backend).await;
        let name = app.backend.name;
        let held = reserve(&app, &availability_id(days.main, "10:00"), &[ADULT, ADULT]).await;
        let uuid = uuid_of(&held);
        assert_eq!(native(&app, days.main, "10:00").await, seats(18, 20));

        let answer = post(
            &app,
            &format!("/bookings/{uuid}/confirm"),
            json!({"contact": validator_contact(),
                   "unitItems": [{"unitId": "invalidUnitId"}, {"unitId": "invalidUnitId"}]}),
        )
        .await;
        assert_error(
            &answer,
            "INVALID_UNIT_ID",
            Some(("unitId", "invalidUnitId")),
        );
        let (status, still) = get(&app, &format!("/bookings/{uuid}")).await;
        assert_eq!(status, 200, "{still}");
        assert_eq!(
            still["status"], "ON_HOLD",
            "{name}: a refused confirmation changes nothing"
        );
        assert_eq!(unit_ids(&still), [ADULT, ADULT]);
        assert_eq!(native(&app, days.main, "10:00").await, seats(18, 20));

        // Reserve 2, confirm 3 (no uuids): the booking and the seats follow.
        let (status, confirmed) = post(
            &app,
            &format!("/bookings/{uuid}/confirm"),
            json!({"contact": validator_contact(), "resellerReference": "three",
                   "unitItems": [{"unitId": ADULT}, {"unitId": ADULT}, {"unitId": ADULT}]}),
        )
        .await;
        assert_eq!(status, 200, "{name}: {confirmed}");
        assert_booking(&confirmed, "confirmed with 3");
        assert_eq!(confirmed["status"], "CONFIRMED");
        assert_eq!(confirmed["id"], held["id"]);
        assert_eq!(unit_ids(&confirmed), [ADULT, ADULT, ADULT], "{name}");
        assert_eq!(
            native(&app, days.main, "10:00").await,
            seats(17, 20),
            "{name}: 3 seats sold"
        );
        assert_verified(&app).await;

        // And down: reserve 3, confirm 1.
        let held = reserve(
            &app,
            &availability_id(days.main, "10:00"),
            &[CHILD, CHILD, CHILD],
        )
        .await;
        assert_eq!(native(&app, days.main, "10:00").await, seats(17, 17));
        let (status, confirmed) = post(
            &app,
            &format!("/bookings/{}/confirm", uuid_of(&held)),
            json!({"contact": {"fullName": "John Doe"}, "unitItems": [{"unitId": CHILD}]}),
        )
        .await;
        assert_eq!(status, 200, "{name}: {confirmed}");
        assert_eq!(unit_ids(&confirmed), [CHILD]);
        assert_eq!(
            native(&app, days.main, "10:00").await,
            seats(17, 19),
            "{name}"
        );
        assert_verified(&app).await;
    }
}

#[tokio::test]
async fn cancelling_a_reservation_or_a_confirmed_booking_puts_its_seats_back() {
    for backend in backends().await {
        let (app, days) = octo_app(backend).await;
        let name = app.backend.name;
        let nine = availability_id(days.main, "09:00");
        let reason = json!({"reason": "Reason for cancellation"});

        let held = reserve(&app, &nine, &[ADULT, ADULT, CHILD]).await;
        assert_eq!(native(&app, days.main, "09:00").await, seats(18, 19));
        let (status, cancelled) = post(
            &app,
            &format!("/bookings/{}/cancel", uuid_of(&held)),
            reason.clone(),
        )
        .await;
        assert_eq!(status, 200, "{name}: {cancelled}");
        assert_booking(&cancelled, "cancelled reservation");
        assert_eq!(cancelled["status"], "CANCELLED");
        assert_eq!(
            cancelled["cancellation"]["reason"],
            "Reason for cancellation"
        );
        for field in [
            "id",
            "uuid",
            "productId",
            "optionId",
            "availabilityId",
            "supplierReference",
        ] {
            assert_eq!(cancelled[field], held[field], "{name}: {field} kept");
        }
        assert_eq!(cancelled["availability"]["id"], nine);
        assert_eq!(
            native(&app, days.main, "09:00").await,
            seats(20, 20),
            "{name}: the held seats are back on sale"
        );
        assert_verified(&app).await;

        let held = reserve(&app, &nine, &[ADULT, ADULT, ADULT]).await;
        let uuid = uuid_of(&held);
        let (status, confirmed) = post(
            &app,
            &format!("/bookings/{uuid}/confirm"),
            json!({"contact": validator_contact(), "resellerReference": "to-cancel"}),
        )
        .await;
        assert_eq!(
            (status, &confirmed["status"]),
            (200, &json!("CONFIRMED")),
            "{confirmed}"
        );
        assert_eq!(native(&app, days.main, "09:00").await, seats(17, 20));
        let (status, cancelled) =
            post(&app, &format!("/bookings/{uuid}/cancel"), reason.clone()).await;
        assert_eq!(status, 200, "{name}: {cancelled}");
        assert_booking(&cancelled, "cancelled booking");
        assert_eq!(
            cancelled["cancellation"]["reason"],
            "Reason for cancellation"
        );
        assert_eq!(cancelled["resellerReference"], "to-cancel");
        assert_contact_echoed(&cancelled, &validator_contact());
        assert_eq!(
            native(&app, days.main, "09:00").await,
            seats(20, 20),
            "{name}: the sold seats are back on sale"
        );
        let (status, read) = get(&app, &format!("/bookings/{uuid}")).await;
        assert_eq!(status, 200, "{read}");
        assert_same_booking(
            &read,
            &cancelled,
            &format!("{name}: GET answers the booking as cancelled"),
        );
        assert_verified(&app).await;
    }
}

#[tokio::test]
async fn updating_moves_a_booking_between_slots_and_changes_its_units_in_one_step() {
    for backend in backends().await {
        let (app, days) = octo_app(backend).await;
        let name = app.backend.name;
        let (nine, ten, eleven) = (
            availability_id(days.main, "09:00"),
            availability_id(days.main, "10:00"),
            availability_id(days.main, "11:00"),
        );
        let held = reserve(&app, &nine, &[ADULT, ADULT]).await;
        let uuid = uuid_of(&held);
        let path = format!("/bookings/{uuid}");

        // Change date.
        let (status, moved) = patch(&app, &path, json!({"availabilityId": ten})).await;
        assert_eq!(status, 200, "{name}: {moved}");
        assert_booking(&moved, "moved");
        assert_eq!(
            (&moved["availabilityId"], &moved["availability"]["id"]),
            (&json!(ten), &json!(ten))
        );
        assert_eq!(
            (&moved["id"], &moved["status"]),
            (&held["id"], &json!("ON_HOLD"))
        );
        assert_eq!(unit_ids(&moved), [ADULT, ADULT], "{name}: unit items kept");
        assert_eq!(
            native(&app, days.main, "09:00").await,
            seats(20, 20),
            "{name}: old slot"
        );
        assert_eq!(
            native(&app, days.main, "10:00").await,
            seats(18, 20),
            "{name}: new slot"
        );
        assert_verified(&app).await;

        // Unit items: 2 → 3.
        let (status, more) = patch(
            &app,
            &path,
            json!({"unitItems": [{"unitId": ADULT}, {"unitId": ADULT}, {"unitId": ADULT}]}),
        )
        .await;
        assert_eq!(status, 200, "{name}: {more}");
        assert_booking(&more, "three units");
        assert_eq!(unit_ids(&more), [ADULT, ADULT, ADULT]);
        assert_eq!(more["availabilityId"], ten);
        assert_eq!(
            native(&app, days.main, "10:00").await,
            seats(17, 20),
            "{name}"
        );

        // Contact and notes.
        let contact = json!({"fullName": "John Doe", "firstName": "John", "lastName": "Doe",
                             "emailAddress": "johndoe@email.com", "phoneNumber": "+00000000",
                             "country": "GB", "notes": "Test notes contact", "locales": ["en"]});
        let (status, noted) = patch(
            &app,
            &path,
            json!({"contact": contact, "notes": "Test note"}),
        )
        .await;
        assert_eq!(status, 200, "{name}: {noted}");
        assert_booking(&noted, "noted");
        assert_contact_echoed(&noted, &contact);
        assert_eq!(noted["notes"], "Test note");
        assert_eq!(
            unit_ids(&noted),
            [ADULT, ADULT, ADULT],
            "{name}: unit items kept"
        );
        assert_eq!(noted["availabilityId"], ten);

        // Refused: 11:00 has 2 seats for 3; nothing changes.
        let answer = patch(&app, &path, json!({"availabilityId": eleven})).await;
        assert_error(&answer, "UNPROCESSABLE_ENTITY", None);
        for (body, code, field) in [
            (
                json!({"availabilityId": "invalidAvailabilityId"}),
                "INVALID_AVAILABILITY_ID",
                Some(("availabilityId", "invalidAvailabilityId")),
            ),
            (
                json!({"unitItems": [{"unitId": "invalidUnitId"}]}),
                "INVALID_UNIT_ID",
                Some(("unitId", "invalidUnitId")),
            ),
            (
                json!({"productId": "invalidProductId"}),
                "INVALID_PRODUCT_ID",
                Some(("productId", "invalidProductId")),
            ),
        ] {
            assert_error(&patch(&app, &path, body).await, code, field);
        }
        let (status, read) = get(&app, &path).await;
        assert_eq!(status, 200, "{read}");
        assert_eq!(
            read["availabilityId"], ten,
            "{name}: the refused move left it: {read}"
        );
        assert_eq!(unit_ids(&read), [ADULT, ADULT, ADULT]);
        assert_eq!(read["notes"], "Test note");
        assert_eq!(
            native(&app, days.main, "10:00").await,
            seats(17, 20),
            "{name}"
        );
        assert_eq!(
            native(&app, days.main, "11:00").await,
            pools(2, 2, 2),
            "{name}"
        );
        assert_verified(&app).await;

        // A confirmed booking moves too, sold seats and all.
        let (status, confirmed) = post(
            &app,
            &format!("{path}/confirm"),
            json!({"contact": validator_contact()}),
        )
        .await;
        assert_eq!(
            (status, &confirmed["status"]),
            (200, &json!("CONFIRMED")),
            "{confirmed}"
        );
        let (status, back) = patch(&app, &path, json!({"availabilityId": nine})).await;
        assert_eq!(status, 200, "{name}: {back}");
        assert_booking(&back, "confirmed and moved");
        assert_eq!(back["status"], "CONFIRMED");
        assert_eq!(back["availabilityId"], nine);
        assert_eq!(
            native(&app, days.main, "09:00").await,
            seats(17, 20),
            "{name}"
        );
        assert_eq!(
            native(&app, days.main, "10:00").await,
            seats(20, 20),
            "{name}"
        );
        assert_verified(&app).await;
    }
}

#[tokio::test]
async fn a_thousand_resellers_race_for_ten_seats_and_exactly_ten_win() {
    for backend in backends().await {
        let (app, days) = octo_app(backend).await;
        let name = app.backend.name;
        let body = reservation(&availability_id(days.race, "09:00"), &[ADULT]);
        let reservations = (0..1000).map(|_| {
            let (app, body) = (&app, &body);
            async move { post(app, "/bookings", body.clone()).await }
        });
        let answers = futures::future::join_all(reservations).await;
        let won: Vec<&Value> = answers
            .iter()
            .filter(|(status, booking)| *status == 200 && booking["status"] == "ON_HOLD")
            .map(|(_, booking)| booking)
            .collect();
        let refused = answers
            .iter()
            .filter(|(status, body)| *status == 400 && body["error"] == "UNPROCESSABLE_ENTITY")
            .count();
        assert_eq!(
            (won.len(), refused),
            (10, 990),
            "{name}: {:?}",
            answers
                .iter()
                .filter(|(status, body)| *status != 200
                    && !(*status == 400 && body["error"] == "UNPROCESSABLE_ENTITY"))
                .take(3)
                .collect::<Vec<_>>()
        );
        let uuids: HashSet<&str> = won.iter().filter_map(|b| b["uuid"].as_str()).collect();
        let ids: HashSet<&str> = won.iter().filter_map(|b| b["id"].as_str()).collect();
        assert_eq!((uuids.len(), ids.len()), (10, 10), "{name}: ten bookings");
        for booking in &won {
            assert_booking(booking, "a winner");
        }
        assert_eq!(
            native(&app, days.race, "09:00").await,
            (0, vec![(ADULT.into(), 0)]),
            "{name}"
        );
        assert_verified(&app).await;
    }
}
