//! Fuzzing with proptest (cargo-fuzz needs a nightly toolchain): the partner payload parser and
//! the HTTP API's handling of paths, query strings, headers and bodies. A panic fails.
//!
//! - The parser gets arbitrary bytes, arbitrary JSON, and the real partner responses in
//!   `fixtures/responses/` with fields dropped, duplicated and retyped, odd numbers, dates and
//!   times, deep nesting, long strings and bytes cut or garbled. It must answer a day that keeps
//!   every domain rule or a typed error saying what was wrong. Some of those bodies also go
//!   through the real partner client (which must say `Malformed` with the parser's reason) and
//!   every accepted day into a real store (which must take it and still verify).
//! - The OCTO parsers get the simulator's OCTO answers mutated the same way, and arbitrary
//!   JSON: each a set of valid days or a typed error.
//! - The real router gets random requests on every route, admin ones with and without the
//!   token: never a 5xx, and every error is JSON with a documented `code`.
//!
//! Each target tries its default number of inputs (a few seconds in all); `PROPTEST_CASES=N`
//! makes every target try N. Each prints how many it tried.

mod common;

use std::cell::Cell;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::http::HeaderValue;
use chrono::NaiveDate;
use common::*;
use invsync::api::AppState;
use invsync::config::Settings;
use invsync::domain::{DayFetch, Secret, Slot};
use invsync::partner::wire::{DayParseError, parse_day_body};
use invsync::partner::{PartnerClient, PartnerClientConfig, PartnerError};
use invsync::simulator::{InProcessPartner, Simulator, SimulatorConfig};
use invsync::storage::{CachedStore, Mirror, Store};
use invsync::sync::clock::Clock;
use invsync::sync::engine::{Engine, EngineConfig};
use invsync::sync::partners::SyncPartners;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use rust_decimal::Decimal;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

const FIXTURES: [(&str, &str); 3] = [
    (
        "2026-11-30",
        include_str!("../fixtures/responses/14_2026-11-30_monday.json"),
    ),
    (
        "2026-12-03",
        include_str!("../fixtures/responses/14_2026-12-03_thursday.json"),
    ),
    (
        "2026-12-06",
        include_str!("../fixtures/responses/15_2026-12-06_sunday.json"),
    ),
];

/// The partner's field names, so random objects often look like slots.
const FIELDS: [&str; 17] = [
    "startDate",
    "startTime",
    "endTime",
    "providerSlotId",
    "remaining",
    "currencyCode",
    "variantId",
    "paxAvailability",
    "max",
    "min",
    "type",
    "isPrimary",
    "description",
    "name",
    "price",
    "finalPrice",
    "originalPrice",
];

/// Numbers a parser gets wrong: huge, negative, fractional, exponents, beyond every integer
/// and decimal type.
const ODD_NUMBERS: [&str; 16] = [
    "0",
    "-0",
    "-1",
    "1.5",
    "12.0",
    "1e3",
    "1E-7",
    "2147483648",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551616",
    "1e400",
    "79228162514264337593543950335",
    "0.0000000000000000000000000001",
    "99999999999999999999999999999.99",
];

/// Valid-looking numbers at the limits of 64-bit seats and exact prices.
const EXTREME_NUMBERS: [&str; 10] = [
    "0",
    "1000000000",
    "1000000001",
    "4611686018427387904",
    "9223372036854775807",
    "999999999999.999999",
    "0.000001",
    "0.0000001",
    "0.0000000000000000000000000001",
    "79228162514264337593543950335",
];

/// Dates and times as the partner might garble them.
const ODD_TEXTS: [&str; 20] = [
    "",
    " ",
    "2026-12-03",
    "2026-12-3",
    "2026-02-30",
    "+2026-12-03",
    "-001-12-03",
    "0000-01-01",
    "9999-12-31",
    "2026-12-03T04:00",
    "04:00",
    "4:00",
    "24:00",
    "23:60",
    "04:00:00",
    "٠٤:٠٠",
    "SGD",
    "ADULT_12~99",
    "\u{0}",
    "null",
];

fn inputs(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(default)
}

/// Runs `test` on `cases` values of `strategy`; panics with the minimal failing input.
fn fuzz<S: Strategy>(
    target: &str,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        max_shrink_time: 60_000,
        ..Config::default()
    });
    if let Err(failure) = runner.run(&strategy, test) {
        panic!("{target}: {failure}");
    }
    eprintln!("{target}: {cases} inputs tried");
}

fn odd_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(&ODD_NUMBERS[..])
            .prop_map(|text| serde_json::from_str(text).expect("a JSON number")),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
    ]
}

fn odd_text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(&ODD_TEXTS[..]).prop_map(String::from),
        any::<String>(),
        (1usize..20_000).prop_map(|len| "x".repeat(len)),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(&FIELDS[..]).prop_map(String::from),
        1 => any::<String>(),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        odd_number(),
        odd_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..10)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// One edit of a parsed response, at the node `at` picks among all of them.
#[derive(Debug, Clone)]
enum TreeEdit {
    Replace(Index, Value),
    /// Replaces one of the numbers (counts, prices, ids), keeping the shape.
    ReplaceNumber(Index, Value),
    DropChild(Index, Index),
    DuplicateElement(Index, Index),
    /// Wraps the node in `depth` arrays.
    Nest(Index, usize),
}

/// One edit of the serialized bytes.
#[derive(Debug, Clone)]
enum ByteEdit {
    Truncate(Index),
    Insert(Index, u8),
    /// Repeats `len` bytes from a position (e.g. a key, making it appear twice).
    Repeat(Index, usize),
}

fn tree_edit() -> impl Strategy<Value = TreeEdit> {
    prop_oneof![
        3 => (any::<Index>(), odd_number()).prop_map(|(at, n)| TreeEdit::ReplaceNumber(at, n)),
        3 => (any::<Index>(), odd_text()).prop_map(|(at, s)| TreeEdit::Replace(at, Value::String(s))),
        2 => (any::<Index>(), json_value()).prop_map(|(at, v)| TreeEdit::Replace(at, v)),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(at, child)| TreeEdit::DropChild(at, child)),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(at, child)| TreeEdit::DuplicateElement(at, child)),
        1 => (any::<Index>(), prop_oneof![1usize..10, 100usize..300])
            .prop_map(|(at, depth)| TreeEdit::Nest(at, depth)),
    ]
}

fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    prop_oneof![
        (any::<Index>()).prop_map(ByteEdit::Truncate),
        (
            any::<Index>(),
            prop::sample::select(vec![0xff, 0xc3, 0x00, b'"', b',', b'}', b']'])
        )
            .prop_map(|(at, byte)| ByteEdit::Insert(at, byte)),
        (any::<Index>(), 1usize..64).prop_map(|(at, len)| ByteEdit::Repeat(at, len)),
    ]
}

/// JSON pointers to every node of `value` that `wanted` accepts, parents first.
fn pointers(value: &Value, at: String, wanted: fn(&Value) -> bool, all: &mut Vec<String>) {
    if wanted(value) {
        all.push(at.clone());
    }
    match value {
        Value::Array(elements) => {
            for (i, element) in elements.iter().enumerate() {
                pointers(element, format!("{at}/{i}"), wanted, all);
            }
        }
        Value::Object(fields) => {
            for (name, field) in fields {
                let escaped = name.replace('~', "~0").replace('/', "~1");
                pointers(field, format!("{at}/{escaped}"), wanted, all);
            }
        }
        _ => {}
    }
}

impl TreeEdit {
    fn apply(&self, document: &mut Value) {
        let wanted: fn(&Value) -> bool = match self {
            Self::ReplaceNumber(..) => Value::is_number,
            _ => |_| true,
        };
        let mut all = Vec::new();
        pointers(document, String::new(), wanted, &mut all);
        if all.is_empty() {
            return;
        }
        let at = match self {
            Self::Replace(at, _)
            | Self::ReplaceNumber(at, _)
            | Self::DropChild(at, _)
            | Self::DuplicateElement(at, _)
            | Self::Nest(at, _) => at.get(&all),
        };
        let Some(node) = document.pointer_mut(at) else {
            return;
        };
        match self {
            Self::Replace(_, value) | Self::ReplaceNumber(_, value) => *node = value.clone(),
            Self::DropChild(_, child) => match node {
                Value::Array(elements) if !elements.is_empty() => {
                    elements.remove(child.index(elements.len()));
                }
                Value::Object(fields) if !fields.is_empty() => {
                    let name = fields.keys().nth(child.index(fields.len())).cloned();
                    name.and_then(|name| fields.remove(&name));
                }
                _ => {}
            },
            Self::DuplicateElement(_, child) => {
                if let Value::Array(elements) = node
                    && !elements.is_empty()
                {
                    let copy = elements[child.index(elements.len())].clone();
                    elements.push(copy);
                }
            }
            Self::Nest(_, depth) => {
                for _ in 0..*depth {
                    *node = Value::Array(vec![node.take()]);
                }
            }
        }
    }
}

impl ByteEdit {
    fn apply(&self, bytes: &mut Vec<u8>) {
        match self {
            Self::Truncate(at) => bytes.truncate(at.index(bytes.len() + 1)),
            Self::Insert(at, byte) => bytes.insert(at.index(bytes.len() + 1), *byte),
            Self::Repeat(at, len) if !bytes.is_empty() => {
                let start = at.index(bytes.len());
                let end = (start + len).min(bytes.len());
                let copy = bytes[start..end].to_vec();
                bytes.splice(start..start, copy);
            }
            Self::Repeat(..) => {}
        }
    }
}

/// Bytes shown as (lossy) text when a failing input is reported.
#[derive(Clone, Default)]
struct Text(Vec<u8>);

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

/// A real partner response with some edits, and the date it answers.
fn mutated_response() -> impl Strategy<Value = (NaiveDate, Text)> {
    edited_response(
        prop::collection::vec(tree_edit(), 0..4),
        prop::collection::vec(byte_edit(), 0..2),
    )
}

/// A real partner response with numbers at the limits of what the store holds: seat counts
/// near the ledger's 64-bit sums, prices with many decimals or many digits.
fn response_with_extreme_numbers() -> impl Strategy<Value = (NaiveDate, Text)> {
    let extreme = prop::sample::select(&EXTREME_NUMBERS[..])
        .prop_map(|text| serde_json::from_str::<Value>(text).expect("a JSON number"));
    let edit = (any::<Index>(), extreme).prop_map(|(at, n)| TreeEdit::ReplaceNumber(at, n));
    edited_response(prop::collection::vec(edit, 1..4), Just(Vec::new()))
}

fn edited_response(
    tree_edits: impl Strategy<Value = Vec<TreeEdit>>,
    byte_edits: impl Strategy<Value = Vec<ByteEdit>>,
) -> impl Strategy<Value = (NaiveDate, Text)> {
    let documents = FIXTURES
        .iter()
        .map(|(day, body)| {
            (
                date(day),
                serde_json::from_str(body).expect("fixture is JSON"),
            )
        })
        .collect();
    edited_documents(documents, tree_edits, byte_edits)
}

/// One of `documents` (each with the date it answers) with some edits.
fn edited_documents(
    documents: Vec<(NaiveDate, Value)>,
    tree_edits: impl Strategy<Value = Vec<TreeEdit>>,
    byte_edits: impl Strategy<Value = Vec<ByteEdit>>,
) -> impl Strategy<Value = (NaiveDate, Text)> {
    (0..documents.len(), tree_edits, byte_edits).prop_map(move |(at, tree_edits, byte_edits)| {
        let (day, mut document) = documents[at].clone();
        for edit in &tree_edits {
            edit.apply(&mut document);
        }
        let mut bytes = serde_json::to_vec(&document).expect("serializes");
        for edit in &byte_edits {
            edit.apply(&mut bytes);
        }
        (day, Text(bytes))
    })
}

/// Every rule a parsed day must keep, or every field a rejection must name.
fn check_parse(
    body: &[u8],
    requested: NaiveDate,
) -> Result<Result<Vec<Slot>, DayParseError>, TestCaseError> {
    let parsed = parse_day_body(body, requested);
    match &parsed {
        Ok(slots) => check_day(slots, requested)?,
        Err(error) => {
            prop_assert!(!error.to_string().trim().is_empty());
            if let DayParseError::InvalidSlot(invalid) = error {
                prop_assert!(!invalid.field.is_empty() && !invalid.problem.is_empty());
            }
        }
    }
    Ok(parsed)
}

fn check_day(slots: &[Slot], requested: NaiveDate) -> Result<(), TestCaseError> {
    let mut ids = HashSet::new();
    let mut times = HashSet::new();
    for slot in slots {
        prop_assert_eq!(slot.start_date, requested);
        prop_assert!(!slot.provider_slot_id.trim().is_empty());
        prop_assert!(ids.insert(&slot.provider_slot_id), "duplicate id");
        prop_assert!(times.insert(slot.start_time), "duplicate start time");
        prop_assert!(slot.remaining >= 0);
        prop_assert!(!slot.currency.trim().is_empty());
        let mut types = HashSet::new();
        for pax in &slot.pax {
            prop_assert!(!pax.pax_type.trim().is_empty());
            prop_assert!(types.insert(&pax.pax_type), "duplicate pax type");
            prop_assert!(pax.remaining >= 0 && pax.min >= 0 && pax.max >= 0);
            prop_assert!(pax.price.final_price >= Decimal::ZERO);
            prop_assert!(pax.price.original_price >= Decimal::ZERO);
            prop_assert_eq!(&pax.price.currency, &slot.currency);
        }
    }
    Ok(())
}

#[test]
fn the_parser_survives_arbitrary_bytes() {
    let requested = date("2026-12-03");
    fuzz(
        "parser, arbitrary bytes",
        inputs(3_000),
        prop::collection::vec(any::<u8>(), 0..512),
        |body| check_parse(&body, requested).map(drop),
    );
}

#[test]
fn the_parser_survives_arbitrary_json() {
    let requested = date("2026-12-03");
    let bodies = prop_oneof![
        json_value(),
        prop::collection::vec(json_value(), 0..4).prop_map(Value::Array),
    ]
    .prop_map(|value| serde_json::to_vec(&value).expect("serializes"));
    fuzz("parser, arbitrary JSON", inputs(2_000), bodies, |body| {
        check_parse(&body, requested).map(drop)
    });
}

#[test]
fn the_parser_survives_mutated_partner_responses() {
    let accepted = Cell::new(0);
    fuzz(
        "parser, mutated partner responses",
        inputs(3_000),
        mutated_response(),
        |(requested, body)| {
            let parsed = check_parse(&body.0, requested)?;
            accepted.set(accepted.get() + usize::from(parsed.is_ok()));
            Ok(())
        },
    );
    eprintln!("  of which {} parsed as a valid day", accepted.get());
    assert!(
        accepted.get() > 0,
        "no mutated response parsed: the inputs miss the parser"
    );
}

/// The simulator's OCTO answers for product 14 (its product, and its availability from a date
/// over three days), the way an OCTO supplier sends them.
fn octo_documents() -> (Value, Vec<(NaiveDate, Value)>) {
    let sim = Simulator::new(SimulatorConfig::new(Secret::new("fuzz")));
    let product = sim.octo_product(experience(14)).expect("product 14");
    let availability = FIXTURES
        .iter()
        .map(|(day, _)| {
            let first = date(day);
            let last = first.checked_add_days(chrono::Days::new(2)).expect("date");
            let body = sim
                .octo_availability(experience(14), first, last)
                .expect("availability");
            (first, body)
        })
        .collect();
    (product, availability)
}

/// Every rule the days parsed from an OCTO answer must keep, or a typed error.
fn check_octo_parse(
    body: &[u8],
    option: &invsync::partner::octo::OctoOption,
    first: NaiveDate,
) -> Result<bool, TestCaseError> {
    let dates: Vec<NaiveDate> = first.iter_days().take(3).collect();
    match invsync::partner::octo::parse_availability(body, option, &dates) {
        Ok(days) => {
            prop_assert_eq!(days.len(), dates.len());
            for (date, slots) in &days {
                check_day(slots, *date)?;
            }
            Ok(true)
        }
        Err(error) => {
            prop_assert!(!error.to_string().trim().is_empty());
            Ok(false)
        }
    }
}

#[test]
fn the_octo_parsers_survive_mutated_and_arbitrary_answers() {
    let (product, availability) = octo_documents();
    let option = invsync::partner::octo::parse_product(
        &serde_json::to_vec(&product).expect("serializes"),
        None,
    )
    .expect("the simulator's product parses");
    let accepted = Cell::new(0);
    fuzz(
        "OCTO availability, mutated supplier answers",
        inputs(2_000),
        edited_documents(
            availability,
            prop::collection::vec(tree_edit(), 0..4),
            prop::collection::vec(byte_edit(), 0..2),
        ),
        |(first, body)| {
            let parsed = check_octo_parse(&body.0, &option, first)?;
            accepted.set(accepted.get() + usize::from(parsed));
            Ok(())
        },
    );
    assert!(accepted.get() > 0, "no mutated answer parsed");
    fuzz(
        "OCTO product, mutated supplier answers",
        inputs(1_000),
        edited_documents(
            vec![(date("2026-12-03"), product)],
            prop::collection::vec(tree_edit(), 0..4),
            prop::collection::vec(byte_edit(), 0..2),
        ),
        |(_, body)| {
            if let Err(error) = invsync::partner::octo::parse_product(&body.0, None) {
                prop_assert!(!error.trim().is_empty());
            }
            Ok(())
        },
    );
    let first = date("2026-12-03");
    fuzz(
        "OCTO parsers, arbitrary JSON",
        inputs(1_000),
        prop::collection::vec(json_value(), 0..4)
            .prop_map(|values| serde_json::to_vec(&Value::Array(values)).expect("serializes")),
        |body| {
            check_octo_parse(&body, &option, first)?;
            let _ = invsync::partner::octo::parse_product(&body, None);
            Ok(())
        },
    );
}

/// A partner whose every answer is `200` with the body the test sets.
struct ScriptedBody(Arc<Mutex<Vec<u8>>>);

impl wiremock::Respond for ScriptedBody {
    fn respond(&self, _: &wiremock::Request) -> wiremock::ResponseTemplate {
        let body = self.0.lock().expect("body lock").clone();
        wiremock::ResponseTemplate::new(200).set_body_raw(body, "application/json")
    }
}

#[test]
fn the_partner_client_turns_mutated_responses_into_days_or_malformed_errors() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let body = Arc::new(Mutex::new(Vec::new()));
    let server = runtime.block_on(async {
        let server = wiremock::MockServer::start().await;
        wiremock::Mock::given(wiremock::matchers::any())
            .respond_with(ScriptedBody(body.clone()))
            .mount(&server)
            .await;
        server
    });
    let client = runtime.block_on(async {
        PartnerClient::new(PartnerClientConfig {
            base_url: server.uri(),
            api_key: Secret::new(SIM_KEY),
            rate_limit_per_minute: 60_000.try_into().expect("non-zero"),
            request_timeout: std::time::Duration::from_secs(5),
            protocol: invsync::partner::Protocol::Leap,
        })
        .expect("partner client")
    });
    let id = experience(14);
    let (days, malformed) = (Cell::new(0), Cell::new(0));
    fuzz(
        "partner client, mutated partner responses",
        inputs(300),
        mutated_response(),
        |(requested, sent)| {
            let parsed = check_parse(&sent.0, requested)?;
            *body.lock().expect("body lock") = sent.0;
            match (runtime.block_on(client.fetch_day(id, requested)), parsed) {
                (Ok(day), Ok(slots)) => {
                    prop_assert_eq!((day.experience, day.date), (id, requested));
                    prop_assert_eq!(day.slots, slots);
                    days.set(days.get() + 1);
                }
                (
                    Err(PartnerError::Malformed {
                        experience,
                        date,
                        detail,
                    }),
                    Err(reason),
                ) => {
                    prop_assert_eq!((experience, date), (id, requested));
                    prop_assert_eq!(detail, reason.to_string());
                    malformed.set(malformed.get() + 1);
                }
                (fetched, parsed) => {
                    prop_assert!(false, "client said {fetched:?}, parser said {parsed:?}")
                }
            }
            Ok(())
        },
    );
    eprintln!("  {} days, {} malformed", days.get(), malformed.get());
    assert!(
        days.get() > 0 && malformed.get() > 0,
        "one outcome never tried"
    );
}

#[test]
fn every_day_the_parser_accepts_can_be_stored() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    for backend in runtime.block_on(backends()) {
        let store = backend.store.clone();
        let id = experience(14);
        let stored = Cell::new(0);
        fuzz(
            &format!("{}: storing accepted days", backend.name),
            inputs(300),
            response_with_extreme_numbers(),
            |(requested, body)| {
                let Ok(slots) = check_parse(&body.0, requested)? else {
                    return Ok(());
                };
                let applied =
                    runtime.block_on(store.apply_fetch(&DayFetch::new(id, requested, slots), None));
                prop_assert!(applied.is_ok(), "{applied:?}");
                stored.set(stored.get() + 1);
                Ok(())
            },
        );
        let report = runtime.block_on(store.verify()).expect("verify runs");
        assert!(report.ok, "{}: {:?}", backend.name, report.violations);
        eprintln!("  {} days stored", stored.get());
        assert!(stored.get() > 0, "{}: no day was stored", backend.name);
    }
}

/// Every `code` the API documents for an error.
const ERROR_CODES: [&str; 15] = [
    "invalid_experience_id",
    "invalid_date",
    "date_outside_horizon",
    "invalid_start_time",
    "invalid_body",
    "unauthorized",
    "unknown_experience",
    "slot_not_found",
    "not_found",
    "method_not_allowed",
    "payload_too_large",
    "unsupported_media_type",
    "timeout",
    "overloaded",
    "internal",
];

const ROUTES: [&str; 13] = [
    "/api/v1/experience/{id}/slots",
    "/api/v1/experience/{id}/dates",
    "/api/v1/experience/{id}/slots/history",
    "/api/v1/sync/status",
    "/api/v1/sync/pause",
    "/api/v1/sync/resume",
    "/api/v1/sync/trigger",
    "/api/v1/ledger/verify",
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/api/v1/experience/{id}",
];

const METHODS: [&str; 8] = [
    "GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "BREW",
];

/// Percent-encodes every byte but unreserved ones, so any bytes make a valid URL.
fn percent_encode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// Text a client might put in a path segment or a query value, near valid and not.
fn fuzzed_text(today: NaiveDate) -> impl Strategy<Value = Vec<u8>> + Clone {
    let near_today =
        (-3i64..70).prop_map(move |offset| (today + chrono::Duration::days(offset)).to_string());
    prop_oneof![
        3 => near_today.prop_map(String::into_bytes),
        2 => prop::sample::select(&ODD_TEXTS[..]).prop_map(|t| t.as_bytes().to_vec()),
        1 => prop::sample::select(&ODD_NUMBERS[..]).prop_map(|t| t.as_bytes().to_vec()),
        2 => prop::sample::select(vec!["14", "15", "77"]).prop_map(|t| t.as_bytes().to_vec()),
        2 => prop::collection::vec(any::<u8>(), 0..24),
    ]
}

#[derive(Debug, Clone)]
struct FuzzedRequest {
    method: &'static str,
    path: String,
    query: String,
    /// `None`: no `Authorization`; `Some(None)`: the right admin token.
    authorization: Option<Option<Vec<u8>>>,
    content_type: Option<Vec<u8>>,
    body: Option<Text>,
}

fn fuzzed_request(today: NaiveDate) -> impl Strategy<Value = FuzzedRequest> {
    let id = fuzzed_text(today).prop_map(|id| percent_encode(&id));
    let route = (prop::sample::select(&ROUTES[..]), id.clone())
        .prop_map(|(route, id)| route.replace("{id}", &id));
    let path = prop_oneof![
        4 => route,
        1 => prop::collection::vec(id, 0..5).prop_map(|segments| format!("/{}", segments.join("/"))),
    ];
    let name = prop_oneof![
        3 => prop::sample::select(vec!["date", "startTime", "from", "to", "experience"])
            .prop_map(|n| n.as_bytes().to_vec()),
        1 => prop::collection::vec(any::<u8>(), 0..8),
    ];
    let query = prop::collection::vec((name, fuzzed_text(today)), 0..4).prop_map(|pairs| {
        pairs
            .iter()
            .map(|(name, value)| format!("{}={}", percent_encode(name), percent_encode(value)))
            .collect::<Vec<_>>()
            .join("&")
    });
    let authorization = prop_oneof![
        1 => Just(None),
        2 => Just(Some(None)),
        1 => prop::collection::vec(any::<u8>(), 0..40).prop_map(|token| Some(Some(token))),
    ];
    let content_type = prop::option::of(prop_oneof![
        3 => Just(b"application/json".to_vec()),
        1 => Just(b"application/json; charset=utf-8".to_vec()),
        1 => Just(b"text/plain".to_vec()),
        1 => prop::collection::vec(any::<u8>(), 0..20),
    ]);
    let trigger_like = prop::collection::vec(
        (
            prop::sample::select(vec!["experience", "from", "to", "reason", "extra"]),
            prop_oneof![
                fuzzed_text(today)
                    .prop_map(|text| Value::String(String::from_utf8_lossy(&text).into())),
                json_value(),
            ],
        ),
        0..4,
    )
    .prop_map(|fields| {
        let object: serde_json::Map<String, Value> = fields
            .into_iter()
            .map(|(name, value)| (name.to_string(), value))
            .collect();
        serde_json::to_vec(&object).expect("serializes")
    });
    let body = prop::option::of(
        prop_oneof![
            3 => trigger_like,
            1 => json_value().prop_map(|value| serde_json::to_vec(&value).expect("serializes")),
            1 => prop::collection::vec(any::<u8>(), 0..64),
        ]
        .prop_map(Text),
    );
    (
        prop::sample::select(&METHODS[..]),
        path,
        query,
        authorization,
        content_type,
        body,
    )
        .prop_map(
            |(method, path, query, authorization, content_type, body)| FuzzedRequest {
                method,
                path,
                query,
                authorization,
                content_type,
                body,
            },
        )
}

impl FuzzedRequest {
    /// `None` for what no HTTP server would pass on: an invalid URI or header value.
    fn build(&self) -> Option<axum::http::Request<axum::body::Body>> {
        let mut request = axum::http::Request::builder()
            .method(self.method)
            .uri(format!("{}?{}", self.path, self.query));
        match &self.authorization {
            None => {}
            Some(None) => {
                request = request.header("authorization", format!("Bearer {ADMIN_TOKEN}"))
            }
            Some(Some(value)) => {
                request = request.header("authorization", HeaderValue::from_bytes(value).ok()?)
            }
        }
        if let Some(content_type) = &self.content_type {
            request = request.header("content-type", HeaderValue::from_bytes(content_type).ok()?);
        }
        let body = self.body.clone().unwrap_or_default();
        request.body(axum::body::Body::from(body.0)).ok()
    }
}

/// The real router over `database`, wired as `serve` wires it, its sync engine never started.
async fn api_router(database: Arc<dyn Store>) -> axum::Router {
    let store = Arc::new(CachedStore::new(database));
    let mut settings = Settings::default();
    settings.server.admin_token = Some(Secret::new(ADMIN_TOKEN));
    store
        .ensure_experiences(&settings.partner.experiences)
        .await
        .expect("experiences");
    let clock = Clock::system();
    let simulator = Simulator::new(SimulatorConfig::new(Secret::new(SIM_KEY)));
    let partner = InProcessPartner::new(simulator, settings.partner.rate_limit_per_minute, clock);
    let engine = Engine::new(
        EngineConfig::from_settings(&settings),
        store.clone(),
        Arc::new(partner),
        clock,
    )
    .await
    .expect("engine");
    invsync::api::router(AppState {
        bookings: invsync::bookings::BookingDesk::new(store.clone()),
        store,
        sync: SyncPartners::new(vec![engine]).expect("one partner"),
        settings: Arc::new(settings),
        metrics: invsync::telemetry::metrics(),
        shutdown: CancellationToken::new(),
    })
}

#[test]
fn the_api_answers_any_request_without_a_5xx_and_errors_in_json() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    for backend in runtime.block_on(backends()) {
        let name = backend.name;
        let router = runtime.block_on(api_router(backend.store.clone()));
        let today = Settings::default().partner.today();
        let (sent, answered) = (Cell::new(0), Cell::new(0));
        fuzz(
            &format!("{name}: HTTP requests"),
            inputs(1_000),
            fuzzed_request(today),
            |fuzzed| {
                let Some(request) = fuzzed.build() else {
                    return Ok(());
                };
                let response = runtime
                    .block_on(router.clone().oneshot(request))
                    .expect("the router answers");
                sent.set(sent.get() + 1);
                let status = response.status();
                let content_type = response.headers().get("content-type").cloned();
                let body = runtime
                    .block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
                    .expect("a body");
                prop_assert!(!status.is_server_error(), "{status}: {body:?}");
                answered.set(answered.get() + usize::from(status.is_success()));
                if status.is_client_error() && fuzzed.method != "HEAD" {
                    prop_assert_eq!(
                        content_type.as_ref().and_then(|v| v.to_str().ok()),
                        Some("application/json")
                    );
                    let body: Value = serde_json::from_slice(&body)
                        .map_err(|e| TestCaseError::fail(format!("not JSON: {e}")))?;
                    let code = body["code"].as_str().unwrap_or_default();
                    prop_assert!(ERROR_CODES.contains(&code), "{body}");
                    prop_assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
                }
                Ok(())
            },
        );
        eprintln!(
            "  {} requests reached the router, {} answered 2xx",
            sent.get(),
            answered.get()
        );
        assert!(answered.get() > 0, "{name}: no request was valid");
    }
}
