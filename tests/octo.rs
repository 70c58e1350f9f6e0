//! The OCTO supplier API (`/octo`, read side) through the real HTTP server on both backends:
//! products and availability in OCTO's shapes, with every field the specification
//! (`octotravel/typespec`) requires, OCTO's errors and its `Octo-Capabilities` header.

mod common;

use chrono::{Days, NaiveDate};
use common::*;
use invsync::domain::{PaxAvailability, Slot};
use serde_json::{Value, json};

const SALES_TOKEN: &str = "test-sales-token";

/// Required by OCTO on a product, an option, a unit, its restrictions, an availability, a
/// calendar day and a price.
const PRODUCT_FIELDS: &[&str] = &[
    "id",
    "internalName",
    "reference",
    "locale",
    "timeZone",
    "allowFreesale",
    "instantConfirmation",
    "instantDelivery",
    "availabilityRequired",
    "availabilityType",
    "deliveryFormats",
    "deliveryMethods",
    "redemptionMethod",
    "options",
];
const PRODUCT_PRICING_FIELDS: &[&str] = &[
    "defaultCurrency",
    "availableCurrencies",
    "pricingPer",
    "includeTax",
];
const OPTION_FIELDS: &[&str] = &[
    "id",
    "default",
    "internalName",
    "reference",
    "availabilityLocalStartTimes",
    "cancellationCutoff",
    "cancellationCutoffAmount",
    "cancellationCutoffUnit",
    "requiredContactFields",
    "restrictions",
    "units",
];
const UNIT_FIELDS: &[&str] = &[
    "id",
    "internalName",
    "reference",
    "type",
    "restrictions",
    "requiredContactFields",
];
const UNIT_RESTRICTION_FIELDS: &[&str] = &[
    "minAge",
    "maxAge",
    "idRequired",
    "minQuantity",
    "maxQuantity",
    "paxCount",
    "accompaniedBy",
];
const AVAILABILITY_FIELDS: &[&str] = &[
    "id",
    "localDateTimeStart",
    "localDateTimeEnd",
    "utcCutoffAt",
    "allDay",
    "available",
    "status",
    "vacancies",
    "capacity",
    "maxUnits",
    "openingHours",
];
const CALENDAR_FIELDS: &[&str] = &[
    "localDate",
    "available",
    "status",
    "vacancies",
    "capacity",
    "openingHours",
];

/// The days the tests put slots on, relative to today in the partner's zone.
struct TestDays {
    today: NaiveDate,
    /// Two slots and a sold-out one.
    busy: NaiveDate,
    /// One slot, nearly full.
    limited: NaiveDate,
    /// The horizon's last day.
    last: NaiveDate,
}

fn after(day: NaiveDate, days: u64) -> NaiveDate {
    day.checked_add_days(Days::new(days)).expect("date")
}

fn adult(remaining: i64, final_price: &str) -> PaxAvailability {
    pax("ADULT_12~99", remaining, final_price, true)
}

fn child(remaining: i64, final_price: &str) -> PaxAvailability {
    pax("CHILD_3~11", remaining, final_price, false)
}

/// The app with sync off and a sales token, experience 14 mirrored on a few days (and one day
/// past the horizon), experience 15 configured but without a slot.
async fn octo_app(backend: TestStore) -> (TestApp, TestDays) {
    let app = spawn_app_with(backend, |settings| {
        settings.sync.enabled = false;
        settings.server.sales_token = Some(invsync::domain::Secret::new(SALES_TOKEN));
    })
    .await;
    let today = app.today();
    let days = TestDays {
        today,
        busy: after(today, 2),
        limited: after(today, 3),
        last: after(today, 59),
    };
    let mirrored: [(NaiveDate, Vec<Slot>); 4] = [
        (
            days.busy,
            vec![
                slot(
                    days.busy,
                    "04:00",
                    2000,
                    vec![adult(1000, "212.14"), child(1000, "43")],
                ),
                slot(
                    days.busy,
                    "04:30",
                    2000,
                    vec![adult(1000, "242.14"), child(1000, "73")],
                ),
                slot(days.busy, "05:00", 0, vec![adult(0, "212.14")]),
            ],
        ),
        (
            days.limited,
            vec![slot(days.limited, "09:00", 10, vec![adult(3, "200.5")])],
        ),
        (
            days.last,
            vec![slot(days.last, "04:00", 5, vec![adult(5, "212.14")])],
        ),
        (
            after(days.last, 1),
            vec![slot(after(days.last, 1), "23:00", 5, vec![adult(5, "1")])],
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

/// An OCTO call: status, the `Octo-Capabilities` answered, and the JSON body.
async fn octo(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    capabilities: Option<&str>,
    body: Option<Value>,
) -> (u16, Option<String>, Value) {
    let url = format!("{}/octo{path}", app.base);
    let mut request = match &body {
        Some(body) => app.http.post(url).json(body),
        None => app.http.get(url),
    };
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(capabilities) = capabilities {
        request = request.header("Octo-Capabilities", capabilities);
    }
    let response = request.send().await.expect("server answers");
    let status = response.status().as_u16();
    let applied = response
        .headers()
        .get("octo-capabilities")
        .map(|value| value.to_str().expect("ASCII").to_string());
    (status, applied, response.json().await.expect("JSON body"))
}

async fn sales(app: &TestApp, path: &str, body: Option<Value>) -> (u16, Value) {
    let (status, _, body) = octo(app, path, Some(SALES_TOKEN), None, body).await;
    (status, body)
}

/// A POST of raw bytes as JSON.
async fn post_raw(app: &TestApp, path: &str, body: &'static str) -> (u16, Value) {
    let response = app
        .http
        .post(format!("{}/octo{path}", app.base))
        .bearer_auth(SALES_TOKEN)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("server answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

fn assert_error(answer: &(u16, Value), code: &str, id_field: Option<(&str, &str)>) {
    let (status, body) = answer;
    assert_eq!(*status, 400, "{body}");
    assert_eq!(body["error"], code, "{body}");
    assert!(
        body["errorMessage"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    if let Some((field, value)) = id_field {
        assert_eq!(body[field], value, "{body}");
    }
}

fn ids(availabilities: &Value) -> Vec<String> {
    availabilities
        .as_array()
        .expect("an array")
        .iter()
        .map(|a| a["id"].as_str().expect("id").to_string())
        .collect()
}

fn availability_id(day: NaiveDate, time: &str) -> String {
    format!("{day}T{time}:00+08:00")
}

#[tokio::test]
async fn the_supplier_and_products_carry_every_required_field() {
    for backend in backends().await {
        let (app, days) = octo_app(backend).await;
        let name = app.backend.name;

        let (status, applied, supplier) =
            octo(&app, "/supplier", Some(SALES_TOKEN), None, None).await;
        assert_eq!(status, 200, "{name}: {supplier}");
        assert_eq!(applied.as_deref(), Some(""), "{name}: no capability asked");
        assert_fields(
            &supplier,
            &["id", "name", "endpoint", "contact"],
            "supplier",
        );
        assert_fields(
            &supplier["contact"],
            &["website", "email", "telephone", "address"],
            "contact",
        );
        assert!(
            supplier["endpoint"]
                .as_str()
                .is_some_and(|endpoint| endpoint.starts_with("http://127.0.0.1:")
                    && endpoint.ends_with("/octo")),
            "{supplier}"
        );

        // Experience 15 is synced but has no slot: OCTO cannot describe it yet.
        let (status, applied, products) =
            octo(&app, "/products", Some(ADMIN_TOKEN), None, None).await;
        assert_eq!(status, 200, "{name}: the admin token works too: {products}");
        assert_eq!(applied.as_deref(), Some(""));
        let products = products.as_array().expect("an array").clone();
        assert_eq!(products.len(), 1, "{name}: {products:?}");
        let product = &products[0];
        assert_fields(product, PRODUCT_FIELDS, "product");
        assert_eq!(product["id"], "14");
        assert_eq!(product["timeZone"], "Asia/Singapore");
        assert_eq!(product["availabilityType"], "START_TIME");
        assert!(product.get("pricingPer").is_none(), "no pricing unasked");
        let options = product["options"].as_array().expect("options");
        assert_eq!(options.len(), 1);
        let option = &options[0];
        assert_fields(option, OPTION_FIELDS, "option");
        assert_eq!(option["id"], "DEFAULT");
        assert_eq!(option["default"], true);
        // Slots past the horizon are not seen: 23:00 is only there.
        assert_eq!(
            option["availabilityLocalStartTimes"],
            json!(["04:00", "04:30", "05:00", "09:00"]),
            "{name}"
        );
        let units = option["units"].as_array().expect("units");
        assert_eq!(units.len(), 2, "{units:?}");
        for unit in units {
            assert_fields(unit, UNIT_FIELDS, "unit");
            assert_fields(
                &unit["restrictions"],
                UNIT_RESTRICTION_FIELDS,
                "restrictions",
            );
            assert!(unit.get("pricingFrom").is_none());
        }
        assert_eq!(units[0]["id"], "ADULT_12~99");
        assert_eq!(units[0]["type"], "ADULT");
        assert_eq!(units[1]["id"], "CHILD_3~11");
        assert_eq!(units[1]["type"], "CHILD");
        assert_eq!(
            units[1]["restrictions"],
            json!({"minAge": 3, "maxAge": 11, "idRequired": false, "minQuantity": 1,
                   "maxQuantity": 20, "paxCount": 1, "accompaniedBy": []})
        );

        let (status, one) = sales(&app, "/products/14", None).await;
        assert_eq!(status, 200, "{one}");
        assert_eq!(one, *product, "{name}: one product reads as listed");

        // With pricing: currencies, and each unit's lowest price in minor units.
        let (status, applied, priced) = octo(
            &app,
            "/products/14",
            Some(SALES_TOKEN),
            Some("octo/content, octo/pricing"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{priced}");
        assert_eq!(applied.as_deref(), Some(PRICING), "only pricing is applied");
        assert_fields(&priced, PRODUCT_PRICING_FIELDS, "priced product");
        assert_eq!(priced["defaultCurrency"], "SGD");
        assert_eq!(priced["availableCurrencies"], json!(["SGD"]));
        assert_eq!(priced["pricingPer"], "UNIT");
        let priced_units = &priced["options"][0]["units"];
        for unit in priced_units.as_array().expect("units") {
            for price in unit["pricingFrom"].as_array().expect("pricingFrom") {
                assert_fields(price, PRICING_FIELDS, "pricingFrom");
            }
        }
        assert_eq!(
            priced_units[0]["pricingFrom"],
            json!([{"original": 30050, "retail": 20050, "net": null, "currency": "SGD",
                    "currencyPrecision": 2, "includedTaxes": []}]),
            "{name}: the adult's lowest is 200.50 on {}",
            days.limited
        );
        assert_eq!(priced_units[1]["pricingFrom"][0]["retail"], 4300);

        for missing in ["15", "99", "abc", "0"] {
            let answer = sales(&app, &format!("/products/{missing}"), None).await;
            assert_error(&answer, "INVALID_PRODUCT_ID", Some(("productId", missing)));
        }
    }
}

#[tokio::test]
async fn availability_answers_each_slot_by_date_range_or_id() {
    for backend in backends().await {
        let (app, days) = octo_app(backend).await;
        let name = app.backend.name;
        let check = |body: Value| octo(&app, "/availability", Some(SALES_TOKEN), None, Some(body));

        let (status, applied, busy) = check(json!({
            "productId": "14", "optionId": "DEFAULT", "localDate": days.busy.to_string()
        }))
        .await;
        assert_eq!(status, 200, "{name}: {busy}");
        assert_eq!(applied.as_deref(), Some(""));
        assert_eq!(
            ids(&busy),
            [
                availability_id(days.busy, "04:00"),
                availability_id(days.busy, "04:30"),
                availability_id(days.busy, "05:00")
            ]
        );
        for availability in busy.as_array().expect("array") {
            assert_fields(availability, AVAILABILITY_FIELDS, "availability");
            assert!(availability.get("unitPricing").is_none());
        }
        let eve = days.busy.pred_opt().expect("date");
        assert_eq!(
            busy[0],
            json!({
                "id": availability_id(days.busy, "04:00"),
                "localDateTimeStart": availability_id(days.busy, "04:00"),
                "localDateTimeEnd": availability_id(days.busy, "04:00"),
                "utcCutoffAt": format!("{eve}T20:00:00Z"),
                "allDay": false,
                "available": true,
                "status": "AVAILABLE",
                "vacancies": 2000,
                "capacity": 2000,
                "maxUnits": 40,
                "openingHours": [],
            }),
            "{name}"
        );
        assert_eq!(busy[2]["status"], "SOLD_OUT");
        assert_eq!(busy[2]["available"], false);
        assert_eq!(busy[2]["vacancies"], 0);

        // A range reaching before today and past the horizon answers what is known inside.
        let (status, _, range) = check(json!({
            "productId": "14", "optionId": "DEFAULT",
            "localDateStart": after(days.today, 0).pred_opt().expect("date").to_string(),
            "localDateEnd": after(days.last, 30).to_string(),
        }))
        .await;
        assert_eq!(status, 200, "{range}");
        assert_eq!(
            ids(&range),
            [
                availability_id(days.busy, "04:00"),
                availability_id(days.busy, "04:30"),
                availability_id(days.busy, "05:00"),
                availability_id(days.limited, "09:00"),
                availability_id(days.last, "04:00"),
            ],
            "{name}: the slot stored past the horizon is not served"
        );
        let limited = &range[3];
        assert_eq!(
            (
                &limited["status"],
                &limited["vacancies"],
                &limited["capacity"]
            ),
            (&json!("LIMITED"), &json!(3), &json!(10)),
            "{limited}"
        );
        assert_eq!(limited["available"], true);

        // By ids, in any offset that names the same instant; an id of no slot is absent.
        let (status, _, by_id) = check(json!({
            "productId": "14", "optionId": "DEFAULT",
            "availabilityIds": [
                availability_id(days.limited, "09:00"),
                format!("{}T20:30:00Z", eve),
                availability_id(days.limited, "10:00"),
            ],
        }))
        .await;
        assert_eq!(status, 200, "{by_id}");
        assert_eq!(
            ids(&by_id),
            [
                availability_id(days.busy, "04:30"),
                availability_id(days.limited, "09:00")
            ]
        );

        // Pricing: each unit's price as exact minor units; units given are checked.
        let (status, applied, priced) = octo(
            &app,
            "/availability",
            Some(SALES_TOKEN),
            Some(PRICING),
            Some(json!({
                "productId": "14", "optionId": "DEFAULT", "localDate": days.busy.to_string(),
                "units": [{"id": "ADULT_12~99", "quantity": 2}],
            })),
        )
        .await;
        assert_eq!(status, 200, "{priced}");
        assert_eq!(applied.as_deref(), Some(PRICING));
        let unit_pricing = &priced[1]["unitPricing"];
        for price in unit_pricing.as_array().expect("unitPricing") {
            assert_fields(price, PRICING_FIELDS, "unitPricing");
        }
        assert_eq!(
            *unit_pricing,
            json!([
                {"unitId": "ADULT_12~99", "original": 34214, "retail": 24214, "net": null,
                 "currency": "SGD", "currencyPrecision": 2, "includedTaxes": []},
                {"unitId": "CHILD_3~11", "original": 17300, "retail": 7300, "net": null,
                 "currency": "SGD", "currencyPrecision": 2, "includedTaxes": []},
            ]),
            "{name}"
        );

        // Dates wholly outside the horizon: nothing known, not an error.
        let (status, _, before) = check(json!({
            "productId": "14", "optionId": "DEFAULT",
            "localDate": days.today.pred_opt().expect("date").to_string(),
        }))
        .await;
        assert_eq!((status, before), (200, json!([])));
    }
}

#[tokio::test]
async fn the_calendar_has_one_entry_per_known_date() {
    for backend in backends().await {
        let (app, days) = octo_app(backend).await;
        let name = app.backend.name;
        let (status, applied, calendar) = octo(
            &app,
            "/availability/calendar",
            Some(SALES_TOKEN),
            None,
            Some(json!({
                "productId": "14", "optionId": "DEFAULT",
                "localDateStart": days.today.pred_opt().expect("date").to_string(),
                "localDateEnd": days.limited.to_string(),
            })),
        )
        .await;
        assert_eq!(status, 200, "{name}: {calendar}");
        assert_eq!(applied.as_deref(), Some(""));
        let entries = calendar.as_array().expect("array");
        let dates: Vec<&str> = entries
            .iter()
            .map(|day| day["localDate"].as_str().expect("localDate"))
            .collect();
        let expected: Vec<String> = (0..4).map(|n| after(days.today, n).to_string()).collect();
        assert_eq!(dates, expected, "{name}: yesterday is not known");
        for entry in entries {
            assert_fields(entry, CALENDAR_FIELDS, "calendar day");
            assert!(entry.get("unitPricingFrom").is_none());
        }
        assert_eq!(
            entries[0],
            json!({"localDate": days.today.to_string(), "available": false, "status": "CLOSED",
                   "vacancies": 0, "capacity": 0, "openingHours": []})
        );
        assert_eq!(
            (
                &entries[2]["status"],
                &entries[2]["vacancies"],
                &entries[2]["capacity"]
            ),
            (&json!("AVAILABLE"), &json!(2000), &json!(2000))
        );
        assert_eq!(
            (
                &entries[3]["status"],
                &entries[3]["vacancies"],
                &entries[3]["available"]
            ),
            (&json!("LIMITED"), &json!(3), &json!(true))
        );

        let (status, applied, priced) = octo(
            &app,
            "/availability/calendar",
            Some(SALES_TOKEN),
            Some(PRICING),
            Some(json!({
                "productId": "14", "optionId": "DEFAULT",
                "localDateStart": days.busy.to_string(),
                "localDateEnd": after(days.last, 10).to_string(),
            })),
        )
        .await;
        assert_eq!(status, 200, "{priced}");
        assert_eq!(applied.as_deref(), Some(PRICING));
        let entries = priced.as_array().expect("array");
        assert_eq!(
            entries.last().map(|day| day["localDate"].clone()),
            Some(json!(days.last.to_string())),
            "{name}: the range ends at the horizon"
        );
        assert_eq!(
            entries[0]["unitPricingFrom"],
            json!([
                {"unitId": "ADULT_12~99", "original": 31214, "retail": 21214, "net": null,
                 "currency": "SGD", "currencyPrecision": 2, "includedTaxes": []},
                {"unitId": "CHILD_3~11", "original": 14300, "retail": 4300, "net": null,
                 "currency": "SGD", "currencyPrecision": 2, "includedTaxes": []},
            ]),
            "{name}: the lowest of the day's slots on sale"
        );
        assert_eq!(entries[2]["status"], "CLOSED");
        assert_eq!(
            entries[2]["unitPricingFrom"],
            json!([]),
            "a closed day has no price"
        );
    }
}

#[tokio::test]
async fn errors_are_octos() {
    for backend in backends().await {
        let (app, days) = octo_app(backend).await;
        let day = days.busy.to_string();

        for token in [None, Some("wrong-token")] {
            let (status, _, body) = octo(&app, "/products", token, None, None).await;
            assert_error(&(status, body), "UNAUTHORIZED", None);
            let (status, _, body) = octo(
                &app,
                "/availability",
                token,
                None,
                Some(json!({"productId": "14", "optionId": "DEFAULT", "localDate": day})),
            )
            .await;
            assert_error(&(status, body), "UNAUTHORIZED", None);
        }

        for path in ["/availability", "/availability/calendar"] {
            let answer = sales(
                &app,
                path,
                Some(json!({"productId": "99", "optionId": "DEFAULT", "localDate": day})),
            )
            .await;
            assert_error(&answer, "INVALID_PRODUCT_ID", Some(("productId", "99")));
            let answer = sales(&app, path, Some(json!({"optionId": "DEFAULT"}))).await;
            assert_error(&answer, "INVALID_PRODUCT_ID", Some(("productId", "")));
            let answer = sales(
                &app,
                path,
                Some(json!({"productId": "14", "optionId": "VIP",
                            "localDateStart": day, "localDateEnd": day})),
            )
            .await;
            assert_error(&answer, "INVALID_OPTION_ID", Some(("optionId", "VIP")));
            let answer = sales(
                &app,
                path,
                Some(json!({"productId": "14", "optionId": "DEFAULT",
                            "localDateStart": day, "localDateEnd": day,
                            "units": [{"id": "SENIOR_65~99", "quantity": 1}]})),
            )
            .await;
            assert_error(&answer, "INVALID_UNIT_ID", Some(("unitId", "SENIOR_65~99")));
            for malformed in ["{", "[]", "", "{\"productId\": 14}"] {
                let answer = post_raw(&app, path, malformed).await;
                assert_error(&answer, "BAD_REQUEST", None);
            }
        }

        let availability = |body: Value| sales(&app, "/availability", Some(body));
        for body in [
            json!({"productId": "14", "optionId": "DEFAULT"}),
            json!({"productId": "14", "optionId": "DEFAULT", "localDate": day,
                   "availabilityIds": [availability_id(days.busy, "04:00")]}),
            json!({"productId": "14", "optionId": "DEFAULT", "localDateStart": day,
                   "availabilityIds": [availability_id(days.busy, "04:00")]}),
            json!({"productId": "14", "optionId": "DEFAULT", "localDateStart": day}),
            json!({"productId": "14", "optionId": "DEFAULT", "localDate": day,
                   "localDateEnd": day}),
            json!({"productId": "14", "optionId": "DEFAULT", "localDate": "2026-13-01"}),
            json!({"productId": "14", "optionId": "DEFAULT",
                   "localDateStart": days.limited.to_string(), "localDateEnd": day}),
        ] {
            assert_error(&availability(body).await, "BAD_REQUEST", None);
        }
        let answer = availability(json!({"productId": "14", "optionId": "DEFAULT",
                                         "availabilityIds": ["tomorrow at nine"]}))
        .await;
        assert_error(
            &answer,
            "INVALID_AVAILABILITY_ID",
            Some(("availabilityId", "tomorrow at nine")),
        );

        for body in [
            json!({"productId": "14", "optionId": "DEFAULT"}),
            json!({"productId": "14", "optionId": "DEFAULT", "localDateStart": day}),
            json!({"productId": "14", "optionId": "DEFAULT",
                   "localDateStart": day, "localDateEnd": "soon"}),
        ] {
            let answer = sales(&app, "/availability/calendar", Some(body)).await;
            assert_error(&answer, "BAD_REQUEST", None);
        }
    }
}

#[tokio::test]
async fn octo_routes_are_in_the_openapi_document() {
    let backend = sqlite_store().await;
    let (app, _) = octo_app(backend).await;
    let (status, document) = app.get("/openapi.json").await;
    assert_eq!(status, 200);
    for (path, method) in [
        ("/octo/supplier", "get"),
        ("/octo/products", "get"),
        ("/octo/products/{productId}", "get"),
        ("/octo/availability", "post"),
        ("/octo/availability/calendar", "post"),
    ] {
        let operation = &document["paths"][path][method];
        assert_eq!(operation["tags"], json!(["octo"]), "{path}: {operation}");
        assert!(
            operation["responses"]["200"]["headers"]
                .get("Octo-Capabilities")
                .is_some(),
            "{path}: {operation}"
        );
        assert!(
            operation["responses"].get("401").is_none(),
            "{path}: OCTO refuses a token with 400: {operation}"
        );
    }
    assert!(
        document["components"]["schemas"]
            .get("OctoErrorBody")
            .is_some()
    );
}
