//! Storage and ledger conformance: every test runs against every backend.

mod common;

use common::*;
use invsync::storage::ApplyOutcome;

fn tuesday_slots(day: chrono::NaiveDate, adult_left: i64) -> Vec<invsync::domain::Slot> {
    vec![
        slot(
            day,
            "04:30",
            2000,
            vec![
                pax("ADULT_12~99", adult_left, "242.14", true),
                pax("CHILD_3~11", 1000, "73", false),
            ],
        ),
        slot(
            day,
            "04:00",
            2000,
            vec![pax("ADULT_12~99", 1000, "212.14", true)],
        ),
    ]
}

/// Applies product 14's Tuesday 2026-12-01 as first seen (1000 adults left at 04:30).
async fn apply_first_tuesday(
    backend: &TestStore,
) -> (invsync::domain::ExperienceId, chrono::NaiveDate) {
    let (id, day) = (experience(14), date("2026-12-01"));
    backend
        .store
        .apply_fetch(&fetch_at(id, day, 0, tuesday_slots(day, 1000)), None)
        .await
        .unwrap();
    (id, day)
}

#[tokio::test]
async fn applied_day_is_served_ordered_with_exact_prices() {
    for backend in backends().await {
        let (id, day) = (experience(14), date("2026-12-01"));
        let outcome = backend
            .store
            .apply_fetch(&fetch_at(id, day, 0, tuesday_slots(day, 1000)), None)
            .await
            .unwrap();
        assert_eq!(
            outcome,
            ApplyOutcome::Applied {
                slots: 2,
                transfers: 5
            },
            "{}",
            backend.name
        );
        let slots = backend.store.slots_on(id, day).await.unwrap();
        let times: Vec<String> = slots.iter().map(|s| s.start_time.to_string()).collect();
        assert_eq!(times, ["04:00:00", "04:30:00"], "{}", backend.name);
        assert_eq!(slots[1].remaining, 2000);
        assert_eq!(slots[1].pax[0].price.final_price, money("242.14"));
        assert_eq!(slots[1].pax[0].price.final_price.to_string(), "242.14");
        assert_eq!(slots[1].pax[1].price.final_price.to_string(), "73");
        assert_eq!(slots[1].pax[1].remaining, 1000);
        assert!(backend.store.experience_exists(id).await.unwrap());
        assert!(backend.store.verify().await.unwrap().ok);
    }
}

#[tokio::test]
async fn unchanged_day_and_replayed_fetch_post_nothing() {
    for backend in backends().await {
        let (id, day) = (experience(14), date("2026-12-01"));
        let first = fetch_at(id, day, 0, tuesday_slots(day, 1000));
        backend.store.apply_fetch(&first, None).await.unwrap();
        assert_eq!(
            backend.store.apply_fetch(&first, None).await.unwrap(),
            ApplyOutcome::AlreadyApplied
        );
        let again = fetch_at(id, day, 60, tuesday_slots(day, 1000));
        assert_eq!(
            backend.store.apply_fetch(&again, None).await.unwrap(),
            ApplyOutcome::Applied {
                slots: 2,
                transfers: 0
            }
        );
        let report = backend.store.verify().await.unwrap();
        assert!(report.ok, "{report:?}");
        assert_eq!(report.transactions, 1, "{}", backend.name);
    }
}

#[tokio::test]
async fn an_older_fetch_never_overwrites_a_newer_one() {
    for backend in backends().await {
        let (id, day) = (experience(14), date("2026-12-01"));
        let newer = fetch_at(id, day, 100, tuesday_slots(day, 990));
        let older = fetch_at(id, day, 50, tuesday_slots(day, 1000));
        backend.store.apply_fetch(&newer, None).await.unwrap();
        assert_eq!(
            backend.store.apply_fetch(&older, None).await.unwrap(),
            ApplyOutcome::Superseded
        );
        let slots = backend.store.slots_on(id, day).await.unwrap();
        assert_eq!(slots[1].pax[0].remaining, 990, "{}", backend.name);
    }
}

#[tokio::test]
async fn a_change_is_a_balanced_posting_traced_to_its_fetch() {
    for backend in backends().await {
        let (id, day) = apply_first_tuesday(&backend).await;
        let sale = fetch_at(id, day, 60, tuesday_slots(day, 983));
        assert_eq!(
            backend.store.apply_fetch(&sale, None).await.unwrap(),
            ApplyOutcome::Applied {
                slots: 2,
                transfers: 1
            }
        );
        let served = backend.store.slots_on(id, day).await.unwrap();
        assert_eq!(served[1].pax[0].remaining, 983);
        let history = backend
            .store
            .slot_history(id, day, time("04:30"))
            .await
            .unwrap()
            .expect("slot exists");
        let adult: Vec<_> = history
            .postings
            .iter()
            .filter(|p| p.pax_type.as_deref() == Some("ADULT_12~99"))
            .collect();
        assert_eq!(adult.len(), 2, "{}", backend.name);
        assert_eq!(
            (adult[0].amount, adult[0].balance_after, adult[0].version),
            (1000, 1000, 1)
        );
        assert_eq!(
            (adult[1].amount, adult[1].balance_after, adult[1].version),
            (-17, 983, 2)
        );
        assert_eq!(adult[1].fetch_id, Some(sale.id.to_string()));
        assert_eq!(adult[1].fetched_at, Some(sale.fetched_at));
        assert!(backend.store.verify().await.unwrap().ok);
    }
}

#[tokio::test]
async fn a_vanished_slot_or_pax_goes_to_zero_and_is_no_longer_served() {
    for backend in backends().await {
        let (id, day) = apply_first_tuesday(&backend).await;
        // 04:00 vanishes; 04:30 loses its child pax.
        let mut remaining = tuesday_slots(day, 1000);
        remaining.truncate(1);
        remaining[0].pax.truncate(1);
        let outcome = backend
            .store
            .apply_fetch(&fetch_at(id, day, 60, remaining), None)
            .await
            .unwrap();
        assert_eq!(
            outcome,
            ApplyOutcome::Applied {
                slots: 1,
                transfers: 3
            },
            "{}",
            backend.name
        );
        let served = backend.store.slots_on(id, day).await.unwrap();
        assert_eq!(served.len(), 1);
        assert_eq!(served[0].pax.len(), 1);
        let closed = backend
            .store
            .slot_history(id, day, time("04:00"))
            .await
            .unwrap()
            .expect("closed slot keeps its history");
        assert!(!closed.is_open);
        assert_eq!(closed.postings.last().map(|p| p.balance_after), Some(0));
        assert!(backend.store.verify().await.unwrap().ok);
        // It comes back: capacity is posted again.
        let back = fetch_at(id, day, 120, tuesday_slots(day, 1000));
        backend.store.apply_fetch(&back, None).await.unwrap();
        assert_eq!(backend.store.slots_on(id, day).await.unwrap().len(), 2);
        assert!(backend.store.verify().await.unwrap().ok);
    }
}

#[tokio::test]
async fn partner_text_and_large_numbers_are_stored_exactly() {
    for backend in backends().await {
        let (id, day) = (experience(14), date("2026-12-01"));
        // Not representable as a double: a float anywhere on the way would round it.
        let huge = (1i64 << 53) + 1;
        let mut adult = pax("ADULT_12~99", huge, "1234567.891", true);
        adult.name = r#"Adult "VIP" \ Erwachsene – 大人 🎟"#.into();
        adult.description = "line one\nline two\t'quoted' NULL".into();
        let slots = vec![slot(day, "04:00", huge, vec![adult.clone()])];
        backend
            .store
            .apply_fetch(&fetch_at(id, day, 0, slots), None)
            .await
            .unwrap();
        let served = backend.store.slots_on(id, day).await.unwrap();
        assert_eq!(served[0].remaining, huge, "{}", backend.name);
        assert_eq!(served[0].pax, vec![adult], "{}", backend.name);
        assert!(backend.store.verify().await.unwrap().ok);
    }
}

#[tokio::test]
async fn a_provider_slot_id_reused_on_another_date_is_another_slot() {
    for backend in backends().await {
        let id = experience(14);
        let (tuesday, thursday) = (date("2026-12-01"), date("2026-12-03"));
        let reused = |day, adults| {
            let mut slot = slot(
                day,
                "04:00",
                2000,
                vec![pax("ADULT_12~99", adults, "212.14", true)],
            );
            slot.provider_slot_id = "225532707686_reused".into();
            vec![slot]
        };
        for (seconds, day, adults) in [(0, tuesday, 1000), (1, thursday, 900)] {
            let fetch = fetch_at(id, day, seconds, reused(day, adults));
            backend.store.apply_fetch(&fetch, None).await.unwrap();
        }
        for (day, adults) in [(tuesday, 1000), (thursday, 900)] {
            let served = backend.store.slots_on(id, day).await.unwrap();
            assert_eq!(served.len(), 1, "{} {day}", backend.name);
            assert_eq!(served[0].start_date, day, "{}", backend.name);
            assert_eq!(served[0].pax[0].remaining, adults, "{}", backend.name);
            let history = backend
                .store
                .slot_history(id, day, time("04:00"))
                .await
                .unwrap()
                .expect("the slot's history");
            assert!(history.is_open, "{} {day}", backend.name);
        }
        assert!(backend.store.verify().await.unwrap().ok);
    }
}

#[tokio::test]
async fn an_empty_day_closes_everything() {
    for backend in backends().await {
        let (id, day) = apply_first_tuesday(&backend).await;
        backend
            .store
            .apply_fetch(&fetch_at(id, day, 60, vec![]), None)
            .await
            .unwrap();
        assert!(backend.store.slots_on(id, day).await.unwrap().is_empty());
        assert!(
            backend
                .store
                .sellable_dates(id, day, day)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(backend.store.verify().await.unwrap().ok);
    }
}

#[tokio::test]
async fn sellable_dates_skip_sold_out_days_and_use_the_primary_price() {
    for backend in backends().await {
        let id = experience(15);
        let (sunday, next_sunday, sold_out) =
            (date("2026-12-06"), date("2026-12-13"), date("2026-12-20"));
        let sunday_slot = |day, remaining| {
            vec![slot(
                day,
                "00:00",
                remaining,
                vec![
                    pax("INFANT_0~4", 10, "0", false),
                    pax("ADULT_12~99", 150, "341", true),
                    pax("CHILD_5~15", 10, "137", false),
                ],
            )]
        };
        for (seconds, day, remaining) in [(0, sunday, 170), (1, next_sunday, 5), (2, sold_out, 0)] {
            backend
                .store
                .apply_fetch(
                    &fetch_at(id, day, seconds, sunday_slot(day, remaining)),
                    None,
                )
                .await
                .unwrap();
        }
        let dates = backend
            .store
            .sellable_dates(id, sunday, sold_out)
            .await
            .unwrap();
        let listed: Vec<_> = dates.iter().map(|d| d.date).collect();
        assert_eq!(listed, [sunday, next_sunday], "{}", backend.name);
        assert_eq!(dates[0].price.final_price, money("341"));
    }
}

#[tokio::test]
async fn concurrent_applies_of_one_day_post_once() {
    for backend in backends().await {
        let (id, day) = (experience(14), date("2026-12-01"));
        let fetches: Vec<_> = (0..8)
            .map(|i| fetch_at(id, day, i, tuesday_slots(day, 1000)))
            .collect();
        let results = futures::future::join_all(
            fetches
                .iter()
                .map(|fetch| backend.store.apply_fetch(fetch, None)),
        )
        .await;
        let mut transfers = 0;
        for result in results {
            match result.expect("no constraint error") {
                ApplyOutcome::Applied { transfers: t, .. } => transfers += t,
                ApplyOutcome::Superseded | ApplyOutcome::AlreadyApplied => {}
            }
        }
        assert_eq!(transfers, 5, "{}", backend.name);
        let report = backend.store.verify().await.unwrap();
        assert!(report.ok, "{report:?}");
        assert_eq!(backend.store.slots_on(id, day).await.unwrap().len(), 2);
    }
}

/// Two processes (two stores with their own pools) on one database apply the same fetches of
/// several days at once: each fetch is applied by one of them and found done by the other (or
/// is superseded for both), the newest fetch of each day wins, and days of one experience,
/// which share its partner account, never collide.
#[tokio::test]
async fn two_processes_applying_the_same_fetches_at_once_agree() {
    for backend in backends().await {
        let other_process = invsync::storage::connect(&backend.url)
            .await
            .expect("second process connects");
        let id = experience(14);
        let days = ["2026-12-01", "2026-12-03", "2026-12-06", "2026-12-08"].map(date);
        // Per day, fetches one second apart, each seeing one adult seat fewer.
        let fetches: Vec<_> = days
            .iter()
            .flat_map(|&day| {
                (0..4).map(move |i| fetch_at(id, day, i, tuesday_slots(day, 1000 - i)))
            })
            .collect();
        let applies = fetches.iter().flat_map(|fetch| {
            [
                backend.store.apply_fetch(fetch, None),
                other_process.apply_fetch(fetch, None),
            ]
        });
        let outcomes: Vec<ApplyOutcome> = futures::future::join_all(applies)
            .await
            .into_iter()
            .map(|result| result.expect("no constraint or version error"))
            .collect();
        for (fetch, pair) in fetches.iter().zip(outcomes.chunks(2)) {
            assert!(
                matches!(
                    pair,
                    [ApplyOutcome::Applied { .. }, ApplyOutcome::AlreadyApplied]
                        | [ApplyOutcome::AlreadyApplied, ApplyOutcome::Applied { .. }]
                        | [ApplyOutcome::Superseded, ApplyOutcome::Superseded]
                ),
                "{}: fetch of {} at {} had outcomes {pair:?}",
                backend.name,
                fetch.date,
                fetch.fetched_at
            );
        }
        for day in days {
            let served = backend.store.slots_on(id, day).await.unwrap();
            assert_eq!(
                served[1].pax[0].remaining, 997,
                "{}: the newest fetch of {day} wins",
                backend.name
            );
        }
        let report = backend.store.verify().await.unwrap();
        assert!(report.ok, "{}: {report:?}", backend.name);
    }
}

/// The database itself, not only the code, refuses to rewrite history or overdraw a pool.
#[tokio::test]
async fn the_database_enforces_immutability_and_the_floor() {
    for backend in backends().await {
        apply_first_tuesday(&backend).await;
        let raw = raw_connection(&backend).await;
        let mut refusals = vec![
            (
                "UPDATE entries SET amount = amount + 1",
                "ledger entries are immutable",
            ),
            ("DELETE FROM entries", "ledger entries are immutable"),
            (
                "UPDATE transfers SET amount = 1",
                "ledger transfers are immutable",
            ),
            ("DELETE FROM transfers", "ledger transfers are immutable"),
            (
                "UPDATE journal_transactions SET reason = 'rewritten'",
                "journal transactions are immutable",
            ),
            (
                "DELETE FROM journal_transactions",
                "journal transactions are immutable",
            ),
            (
                "UPDATE fetches SET slot_count = 0",
                "fetch records are immutable",
            ),
            ("DELETE FROM accounts", "ledger accounts are never deleted"),
            (
                "UPDATE accounts SET balance = -1 WHERE kind = 'available'",
                match backend.name {
                    "postgres" => "check constraint \"accounts_floor\"",
                    _ => {
                        "CHECK constraint failed: kind = 'partner'\n           OR (kind = 'shortfall' AND balance <= 0)"
                    }
                },
            ),
        ];
        if backend.name == "postgres" {
            // TRUNCATE skips row triggers; PostgreSQL's statement triggers refuse it too.
            refusals.extend([
                ("TRUNCATE entries CASCADE", "ledger entries are immutable"),
                (
                    "TRUNCATE transfers CASCADE",
                    "ledger transfers are immutable",
                ),
                (
                    "TRUNCATE journal_transactions CASCADE",
                    "journal transactions are immutable",
                ),
                ("TRUNCATE fetches CASCADE", "fetch records are immutable"),
                (
                    "TRUNCATE accounts CASCADE",
                    "ledger accounts are never deleted",
                ),
            ]);
        }
        for (statement, refusal) in refusals {
            let error = raw
                .execute(statement)
                .await
                .expect_err(&format!("{}: {statement} was accepted", backend.name));
            assert!(
                error.to_string().contains(refusal),
                "{}: {statement} failed for another reason than {refusal:?}: {error}",
                backend.name
            );
        }
        assert!(backend.store.verify().await.unwrap().ok);
    }
}

/// An entry slipped into a posted transaction no longer sums with its transfers, and the
/// verifier names the account and the transaction.
#[tokio::test]
async fn verify_names_an_entry_its_transfers_do_not_account_for() {
    for backend in backends().await {
        apply_first_tuesday(&backend).await;
        let raw = raw_connection(&backend).await;
        raw.execute(
            "INSERT INTO entries (transaction_id, account_id, amount, balance_after, version,
                                  created_at)
             SELECT e.transaction_id, e.account_id, e.amount, e.balance_after, 1000000,
                    e.created_at
             FROM entries e ORDER BY e.transaction_id, e.account_id LIMIT 1",
        )
        .await
        .unwrap();
        let report = backend.store.verify().await.unwrap();
        let unmatched = report.violations.iter().any(|v| {
            serde_json::to_string(&v.invariant)
                .unwrap()
                .contains("entries_match_transfers")
                && v.detail.contains("but its transfers move it by")
        });
        assert!(unmatched, "{}: {report:?}", backend.name);
    }
}

/// A transfer recorded twice under one place of its transaction is refused (PostgreSQL's key)
/// or named by the verifier (SQLite, whose postings do not pay for that key).
#[tokio::test]
async fn a_transfer_recorded_twice_is_refused_or_named() {
    for backend in backends().await {
        apply_first_tuesday(&backend).await;
        let raw = raw_connection(&backend).await;
        let copied = raw
            .execute(
                "INSERT INTO transfers (transaction_id, position, debit_account_id,
                                        credit_account_id, amount)
                 SELECT transaction_id, position, debit_account_id, credit_account_id, amount
                 FROM transfers ORDER BY transaction_id, position LIMIT 1",
            )
            .await;
        if backend.name == "postgres" {
            let error = copied.expect_err("PostgreSQL keys transfers by transaction and place");
            assert!(
                error.to_string().contains("transfers_pkey"),
                "refused for another reason: {error}"
            );
            continue;
        }
        copied.expect("SQLite takes the copy, for verify to name");
        let report = backend.store.verify().await.unwrap();
        assert!(
            report
                .violations
                .iter()
                .any(|v| v.detail.ends_with("is recorded 2 times")),
            "{}: {report:?}",
            backend.name
        );
    }
}

/// The journal's references are checked by the verifier rather than by foreign keys (they
/// cost half a posting): a transfer naming nothing that exists, and an entry naming a journal
/// transaction that does not, are named.
#[tokio::test]
async fn verify_names_a_dangling_journal_reference() {
    for backend in backends().await {
        apply_first_tuesday(&backend).await;
        let raw = raw_connection(&backend).await;
        raw.execute(
            "INSERT INTO transfers (transaction_id, position, debit_account_id,
                                    credit_account_id, amount)
             VALUES (900000, 1, 900001, 900002, 1)",
        )
        .await
        .unwrap();
        raw.execute(
            "INSERT INTO entries (transaction_id, account_id, amount, balance_after, version,
                                  created_at)
             SELECT 900005, e.account_id, e.amount, e.balance_after, 1000000, e.created_at
             FROM entries e ORDER BY e.transaction_id, e.account_id LIMIT 1",
        )
        .await
        .unwrap();
        let report = backend.store.verify().await.unwrap();
        let named: Vec<String> = report
            .violations
            .iter()
            .filter(|v| {
                serde_json::to_string(&v.invariant)
                    .unwrap()
                    .contains("references_resolve")
            })
            .map(|v| v.detail.clone())
            .collect();
        assert!(!report.ok);
        assert!(
            named
                .iter()
                .any(|detail| detail.contains("transfer 1 of transaction 900000")),
            "{}: {report:?}",
            backend.name
        );
        assert!(
            named
                .iter()
                .any(|detail| detail.contains("names a missing journal transaction")),
            "{}: {report:?}",
            backend.name
        );
    }
}

/// The verifier catches tampering that bypasses the ledger code.
#[tokio::test]
async fn verify_names_each_violation() {
    for backend in backends().await {
        apply_first_tuesday(&backend).await;
        let raw = raw_connection(&backend).await;
        raw.execute("UPDATE accounts SET balance = balance + 7 WHERE kind = 'available' AND pax_type IS NULL")
            .await
            .unwrap();
        let report = backend.store.verify().await.unwrap();
        assert!(!report.ok);
        let invariants: Vec<String> = report
            .violations
            .iter()
            .map(|v| serde_json::to_string(&v.invariant).unwrap())
            .collect();
        for expected in [
            "balance_equals_entries",
            "balances_sum_to_zero",
            "served_equals_observed",
        ] {
            assert!(
                invariants.iter().any(|i| i.contains(expected)),
                "{}: {expected} missing from {invariants:?}",
                backend.name
            );
        }
    }
}

/// A ledger as the schema before migration 0006 held it (entries had an id of their own, and
/// one per side of each transfer): slots `test_2026-12-01T04:00` and `T05:00` of product 14,
/// first seen with 5 and 4 seats in one transaction (so the partner took two entries in it),
/// then 04:00 with 3. Times and timestamps are written as the SQLite store writes them, so
/// they compare as its queries compare them.
const LEDGER_BEFORE_0006: &str = "
INSERT INTO experiences (id, created_at) VALUES (14, '2026-11-01T00:00:00+00:00');
INSERT INTO fetches (id, experience_id, service_date, fetched_at, applied_at, slot_count)
VALUES ('00000000-0000-4000-8000-000000000001', 14, '2026-12-01',
        '2026-11-01T00:00:00+00:00', '2026-11-01T00:00:00+00:00', 2),
       ('00000000-0000-4000-8000-000000000002', 14, '2026-12-01',
        '2026-11-01T00:10:00+00:00', '2026-11-01T00:10:00+00:00', 2);
INSERT INTO product_dates (experience_id, service_date, last_fetch_id, last_fetched_at,
                           slot_count)
VALUES (14, '2026-12-01', '00000000-0000-4000-8000-000000000002',
        '2026-11-01T00:10:00+00:00', 2);
INSERT INTO slots (experience_id, provider_slot_id, service_date, start_time, end_time,
                   currency, variant_id, observed_remaining, is_open, last_fetch_id)
VALUES (14, 'test_2026-12-01T04:00', '2026-12-01', '04:00', '04:00', 'SGD', 32, 3, TRUE,
        '00000000-0000-4000-8000-000000000002'),
       (14, 'test_2026-12-01T05:00', '2026-12-01', '05:00', '05:00', 'SGD', 32, 4, TRUE,
        '00000000-0000-4000-8000-000000000002');
INSERT INTO accounts (experience_id, kind, slot_id, balance, version)
VALUES (14, 'partner', NULL, -7, 3), (14, 'available', 1, 3, 2), (14, 'available', 2, 4, 1);
INSERT INTO journal_transactions (experience_id, fetch_id, reason, created_at)
VALUES (14, '00000000-0000-4000-8000-000000000001', 'sync', '2026-11-01T00:00:00+00:00'),
       (14, '00000000-0000-4000-8000-000000000002', 'sync', '2026-11-01T00:10:00+00:00');
INSERT INTO transfers (transaction_id, debit_account_id, credit_account_id, amount)
VALUES (1, 1, 2, 5), (1, 1, 3, 4), (2, 2, 1, 2);
INSERT INTO entries (transaction_id, transfer_id, account_id, amount, balance_after, version,
                     created_at)
VALUES (1, 1, 1, -5, -5, 1, '2026-11-01T00:00:00+00:00'),
       (1, 1, 2, 5, 5, 1, '2026-11-01T00:00:00+00:00'),
       (1, 2, 1, -4, -9, 2, '2026-11-01T00:00:00+00:00'),
       (1, 2, 3, 4, 4, 1, '2026-11-01T00:00:00+00:00'),
       (2, 3, 2, -2, 3, 2, '2026-11-01T00:10:00+00:00'),
       (2, 3, 1, 2, -7, 3, '2026-11-01T00:10:00+00:00')";

/// The postings of that slot's pool, oldest first, as (amount, version).
async fn postings_at_four(backend: &TestStore) -> Vec<(i64, i64)> {
    backend
        .store
        .slot_history(experience(14), date("2026-12-01"), time("04:00"))
        .await
        .unwrap()
        .expect("the slot is still there")
        .postings
        .iter()
        .map(|p| (p.amount, p.version))
        .collect()
}

/// Upgrading a database that already holds a ledger keeps all of it: it verifies, the slot's
/// history reads the same postings in order, and the next fetch continues the same chains.
#[tokio::test]
async fn an_upgrade_keeps_and_continues_an_existing_ledger() {
    for database in empty_databases().await {
        let raw = raw_connection_to(&database.url).await;
        // The backend's migrations before 0006, as files: the store's own migrator then finds
        // them applied, with the same checksums, and runs only what came after.
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(database.name);
        let earlier = tempfile::tempdir().unwrap();
        for file in std::fs::read_dir(&folder).unwrap() {
            let file = file.unwrap();
            if file.file_name().to_string_lossy().as_ref() < "0006" {
                std::fs::copy(file.path(), earlier.path().join(file.file_name())).unwrap();
            }
        }
        let migrator = sqlx::migrate::Migrator::new(earlier.path()).await.unwrap();
        raw.migrate(&migrator).await;
        for statement in LEDGER_BEFORE_0006.split(';') {
            raw.execute(statement).await.unwrap();
        }

        let backend = database.open().await;
        let (id, day) = (experience(14), date("2026-12-01"));
        let report = backend.store.verify().await.unwrap();
        assert!(
            report.ok && report.entries == 6,
            "{}: {report:?}",
            backend.name
        );
        assert_eq!(
            postings_at_four(&backend).await,
            [(5, 1), (-2, 2)],
            "{}",
            backend.name
        );

        // 04:00 sells two more seats and 05:00 is gone: one transaction of two transfers,
        // one entry on each of the three accounts, the partner's the net of both.
        let sold = fetch_at(id, day, 3600, vec![slot(day, "04:00", 1, vec![])]);
        backend.store.apply_fetch(&sold, None).await.unwrap();
        let report = backend.store.verify().await.unwrap();
        assert!(
            report.ok && report.entries == 9,
            "{}: {report:?}",
            backend.name
        );
        let partner_chain = raw
            .fetch_integers(
                "SELECT amount, balance_after, version FROM entries
                 WHERE account_id = 1 ORDER BY version",
            )
            .await;
        assert_eq!(
            partner_chain,
            [(-5, -5, 1), (-4, -9, 2), (2, -7, 3), (6, -1, 4)],
            "{}",
            backend.name
        );
        let served = backend.store.slots_on(id, day).await.unwrap();
        assert_eq!(served[0].remaining, 1, "{}", backend.name);
        assert_eq!(
            postings_at_four(&backend).await,
            [(5, 1), (-2, 2), (-2, 3)],
            "{}",
            backend.name
        );

        // The numeric experience kept its key under its id written out, and an OCTO product's
        // string id takes the next key beside it.
        let octo: invsync::domain::ExperienceId = "6b90-tour".parse().unwrap();
        let first = fetch_at(octo, day, 0, vec![slot(day, "04:00", 6, vec![])]);
        backend.store.apply_fetch(&first, None).await.unwrap();
        assert_eq!(
            raw.fetch_integers(
                "SELECT id, CAST(code AS BIGINT), (SELECT COUNT(*) FROM experiences)
                 FROM experiences WHERE code = '14'"
            )
            .await,
            [(14, 14, 2)],
            "{}",
            backend.name
        );
        let served = backend.store.slots_on(octo, day).await.unwrap();
        assert_eq!(served[0].remaining, 6, "{}", backend.name);
        assert_eq!(
            backend.store.slots_on(id, day).await.unwrap()[0].remaining,
            1
        );
        assert!(backend.store.verify().await.unwrap().ok, "{}", backend.name);
    }
}
