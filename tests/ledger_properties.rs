//! Property test on the real store: any sequence of observed remainings, appearing and
//! vanishing slots and pax, and replayed fetches keeps every ledger invariant, and what is
//! served always equals the latest observation.

mod common;

use common::*;
use invsync::domain::{DayFetch, Slot};
use proptest::prelude::*;

const TIMES: [&str; 3] = ["04:00", "04:30", "05:00"];

/// One observed slot: slot remaining, adult remaining, child remaining if the child pax is sold.
type ObservedSlot = Option<(i64, i64, Option<i64>)>;

fn observed_slot() -> impl Strategy<Value = ObservedSlot> {
    prop::option::weighted(0.8, (0i64..30, 0i64..30, prop::option::of(0i64..30)))
}

#[derive(Debug, Clone)]
enum Step {
    Observe([ObservedSlot; 3]),
    /// Re-apply the n-th earlier fetch (modulo how many there are).
    Replay(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => prop::array::uniform3(observed_slot()).prop_map(Step::Observe),
        1 => any::<usize>().prop_map(Step::Replay),
    ]
}

fn slots_of(day: chrono::NaiveDate, observed: &[ObservedSlot; 3]) -> Vec<Slot> {
    TIMES
        .iter()
        .zip(observed)
        .filter_map(|(start, observed)| {
            let (remaining, adult, child) = (*observed)?;
            let mut pax_list = vec![pax("ADULT_12~99", adult, "212.14", true)];
            if let Some(child) = child {
                pax_list.push(pax("CHILD_3~11", child, "43", false));
            }
            Some(slot(day, start, remaining, pax_list))
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn any_observation_sequence_keeps_the_ledger_true(steps in prop::collection::vec(step(), 1..12)) {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            for backend in backends().await {
                let (id, day) = (experience(14), date("2026-12-01"));
                let mut applied: Vec<DayFetch> = Vec::new();
                let mut latest: Vec<Slot> = Vec::new();
                for (seconds, step) in steps.iter().enumerate() {
                    match step {
                        Step::Observe(observed) => {
                            let fetch = fetch_at(id, day, seconds as i64, slots_of(day, observed));
                            backend.store.apply_fetch(&fetch, None).await.unwrap();
                            latest = fetch.slots.clone();
                            applied.push(fetch);
                        }
                        Step::Replay(n) if !applied.is_empty() => {
                            let fetch = &applied[n % applied.len()];
                            backend.store.apply_fetch(fetch, None).await.unwrap();
                        }
                        Step::Replay(_) => {}
                    }
                    let report = backend.store.verify().await.unwrap();
                    prop_assert!(report.ok, "{}: {:?}", backend.name, report.violations);
                    let served = backend.store.slots_on(id, day).await.unwrap();
                    let mut expected = latest.clone();
                    expected.sort_by_key(|s| s.start_time);
                    prop_assert_eq!(served.len(), expected.len());
                    for (served, expected) in served.iter().zip(&expected) {
                        prop_assert_eq!(served.remaining, expected.remaining);
                        let served_pax: Vec<i64> = served.pax.iter().map(|p| p.remaining).collect();
                        let expected_pax: Vec<i64> = expected.pax.iter().map(|p| p.remaining).collect();
                        prop_assert_eq!(served_pax, expected_pax);
                    }
                }
            }
            Ok(())
        })?;
    }
}
