//! Model check of the store and its ledger. A proptest state machine sends the real store
//! random fetched days (slot and pax remainings up and down, slots and pax vanishing and coming
//! back, whole days emptying, prices changing), replays of earlier fetches, late fetches older
//! than the day's newest, and pairs of applies running at once through two store handles. After
//! every step the store must equal a small in-memory model: what each day serves, each pool's
//! balance and posting chain (one posting per change, none for an unchanged value), each day's
//! checkpoint, the ledger's counts, and `verify`.
//!
//! One store per backend serves every case; each case gets experiences of its own. Cases:
//! `PROPTEST_CASES` (default [`DEFAULT_CASES`]).

mod common;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use common::*;
use invsync::domain::{DatePrice, DayFetch, ExperienceId, PaxAvailability, Price, Slot};
use invsync::storage::{self, ApplyOutcome, ServedSlot, Store};
use proptest::prelude::*;
use proptest::strategy::Union;
use proptest::test_runner::{Config, TestRunner};
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest};
use rust_decimal::Decimal;
use uuid::Uuid;

const DEFAULT_CASES: u32 = 48;
const MAX_STEPS: usize = 16;
const EXPERIENCES: usize = 2;
const DATES: [&str; 2] = ["2026-12-01", "2026-12-02"];
const TIMES: [&str; 3] = ["04:00", "04:30", "05:00"];
/// In the partner's order; the first is the primary pax.
const PAX_TYPES: [&str; 3] = ["ADULT_12~99", "CHILD_3~11", "INFANT_0~4"];
const PRICES_CENTS: [i64; 4] = [0, 4300, 21214, 24214];
/// Seconds between two fresh fetches.
const FETCH_SPACING: i64 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Day {
    experience: usize,
    date: usize,
}

/// What the partner says about one pax type of a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PaxSays {
    remaining: i64,
    cents: i64,
}

/// What the partner says about one slot: its own remaining and each pax type it sells.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SlotSays {
    remaining: i64,
    pax: [Option<PaxSays>; 3],
}

/// A day's answer, by slot position (`None`: the slot is not listed).
type DaySays = [Option<SlotSays>; 3];

/// One edit of what the partner said last about a day.
#[derive(Debug, Clone)]
enum Change {
    /// Sets the slot's remaining; a slot not listed comes (back) with its primary pax.
    SlotRemaining {
        slot: usize,
        remaining: i64,
    },
    /// Sets a pax type's remaining in a listed slot; a pax not listed comes (back).
    PaxRemaining {
        slot: usize,
        pax: usize,
        remaining: i64,
    },
    PaxPrice {
        slot: usize,
        pax: usize,
        cents: i64,
    },
    SlotVanishes {
        slot: usize,
    },
    PaxVanishes {
        slot: usize,
        pax: usize,
    },
    /// The partner answers `[]`.
    DayEmpties,
}

impl Change {
    fn edit(&self, says: &mut DaySays) {
        match *self {
            Self::SlotRemaining { slot, remaining } => match &mut says[slot] {
                Some(listed) => listed.remaining = remaining,
                None => {
                    says[slot] = Some(SlotSays {
                        remaining,
                        pax: [
                            Some(PaxSays {
                                remaining,
                                cents: 21214,
                            }),
                            None,
                            None,
                        ],
                    })
                }
            },
            Self::PaxRemaining {
                slot,
                pax,
                remaining,
            } => {
                if let Some(listed) = &mut says[slot] {
                    let cents = listed.pax[pax].map_or(4300, |p| p.cents);
                    listed.pax[pax] = Some(PaxSays { remaining, cents });
                }
            }
            Self::PaxPrice { slot, pax, cents } => {
                if let Some(listed) = says[slot].as_mut().and_then(|s| s.pax[pax].as_mut()) {
                    listed.cents = cents;
                }
            }
            Self::SlotVanishes { slot } => says[slot] = None,
            Self::PaxVanishes { slot, pax } => {
                if let Some(listed) = &mut says[slot] {
                    listed.pax[pax] = None;
                }
            }
            Self::DayEmpties => *says = Default::default(),
        }
    }
}

/// One fetched day the partner answered, as the script generated it.
#[derive(Debug, Clone)]
struct Fetch {
    day: Day,
    /// Seconds after the test's epoch.
    at: i64,
    says: DaySays,
}

/// One fetch reaching the store.
#[derive(Debug, Clone)]
enum Arrival {
    /// A fresh fetch: the day's newest answer with `changes` applied.
    Fresh { day: Day, changes: Vec<Change> },
    /// A new fetch taken `lag` seconds before the day's newest one, arriving only now.
    Late {
        day: Day,
        lag: i64,
        changes: Vec<Change>,
    },
    /// The `n`-th fetch of the case again, the very same `DayFetch`.
    Replay { n: usize },
}

#[derive(Debug, Clone)]
enum Transition {
    Apply(Arrival),
    /// Both applied at the same time, through two store handles.
    Concurrent(Arrival, Arrival),
}

impl Transition {
    fn arrivals(&self) -> Vec<&Arrival> {
        match self {
            Self::Apply(arrival) => vec![arrival],
            Self::Concurrent(first, second) => vec![first, second],
        }
    }
}

/// The generator's side: every fetch made so far and the newest answer per day.
#[derive(Debug, Clone, Default)]
struct Script {
    clock: i64,
    newest: BTreeMap<Day, Fetch>,
    fetches: Vec<Fetch>,
}

impl Script {
    fn arrive(&mut self, arrival: &Arrival) {
        let (day, at, changes) = match arrival {
            Arrival::Fresh { day, changes } => {
                self.clock += FETCH_SPACING;
                (*day, self.clock, changes)
            }
            Arrival::Late { day, lag, changes } => {
                let newest = self.newest.get(day).map_or(self.clock, |fetch| fetch.at);
                (*day, newest - lag, changes)
            }
            Arrival::Replay { .. } => return,
        };
        let mut says = self
            .newest
            .get(&day)
            .map(|fetch| fetch.says.clone())
            .unwrap_or_default();
        for change in changes {
            change.edit(&mut says);
        }
        let fetch = Fetch { day, at, says };
        if matches!(arrival, Arrival::Fresh { .. }) {
            self.newest.insert(day, fetch.clone());
        }
        self.fetches.push(fetch);
    }
}

fn change() -> impl Strategy<Value = Change> + Clone {
    let (slot, pax, remaining) = (0..TIMES.len(), 0..PAX_TYPES.len(), 0i64..8);
    prop_oneof![
        4 => (slot.clone(), remaining.clone())
            .prop_map(|(slot, remaining)| Change::SlotRemaining { slot, remaining }),
        4 => (slot.clone(), pax.clone(), remaining)
            .prop_map(|(slot, pax, remaining)| Change::PaxRemaining { slot, pax, remaining }),
        2 => (slot.clone(), pax.clone(), prop::sample::select(&PRICES_CENTS[..]))
            .prop_map(|(slot, pax, cents)| Change::PaxPrice { slot, pax, cents }),
        1 => slot.clone().prop_map(|slot| Change::SlotVanishes { slot }),
        1 => (slot, pax).prop_map(|(slot, pax)| Change::PaxVanishes { slot, pax }),
        1 => Just(Change::DayEmpties),
    ]
}

fn new_fetch() -> impl Strategy<Value = Arrival> {
    let day =
        (0..EXPERIENCES, 0..DATES.len()).prop_map(|(experience, date)| Day { experience, date });
    let changes = prop::collection::vec(change(), 0..4);
    prop_oneof![
        3 => (day.clone(), changes.clone()).prop_map(|(day, changes)| Arrival::Fresh { day, changes }),
        1 => (day, 0..=2 * FETCH_SPACING, changes)
            .prop_map(|(day, lag, changes)| Arrival::Late { day, lag, changes }),
    ]
}

fn arrival(fetches_so_far: usize) -> BoxedStrategy<Arrival> {
    if fetches_so_far == 0 {
        return new_fetch().boxed();
    }
    prop_oneof![
        4 => new_fetch(),
        1 => (0..fetches_so_far).prop_map(|n| Arrival::Replay { n }),
    ]
    .boxed()
}

struct LedgerModel;

impl ReferenceStateMachine for LedgerModel {
    type State = Script;
    type Transition = Transition;

    fn init_state() -> BoxedStrategy<Script> {
        Just(Script::default()).boxed()
    }

    fn transitions(script: &Script) -> BoxedStrategy<Transition> {
        let made = script.fetches.len();
        Union::new_weighted(vec![
            (6, arrival(made).prop_map(Transition::Apply).boxed()),
            (
                2,
                (arrival(made), arrival(made))
                    .prop_map(|(first, second)| Transition::Concurrent(first, second))
                    .boxed(),
            ),
            // The same fetch applied twice at once.
            (
                1,
                new_fetch()
                    .prop_map(move |first| {
                        Transition::Concurrent(first, Arrival::Replay { n: made })
                    })
                    .boxed(),
            ),
        ])
        .boxed()
    }

    fn apply(mut script: Script, transition: &Transition) -> Script {
        for arrival in transition.arrivals() {
            script.arrive(arrival);
        }
        script
    }

    /// A replay needs its fetch to exist (shrinking removes fetches).
    fn preconditions(script: &Script, transition: &Transition) -> bool {
        let mut made = script.fetches.len();
        transition
            .arrivals()
            .into_iter()
            .all(|arrival| match arrival {
                Arrival::Replay { n } => *n < made,
                _ => {
                    made += 1;
                    true
                }
            })
    }
}

/// One inventory pool: a slot's own capacity (`pax: None`) or one pax type's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Pool {
    day: Day,
    slot: usize,
    pax: Option<usize>,
}

impl Pool {
    /// What the partner says this pool holds (0 when its slot or pax is not listed).
    fn observed(self, says: &DaySays) -> i64 {
        let Some(slot) = &says[self.slot] else {
            return 0;
        };
        match self.pax {
            None => slot.remaining,
            Some(pax) => slot.pax[pax].map_or(0, |p| p.remaining),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct PoolLedger {
    balance: i64,
    postings: usize,
}

/// What the store must hold after the fetches it applied.
#[derive(Debug, Clone, Default)]
struct Model {
    /// The applied answer per day.
    mirror: BTreeMap<Day, DaySays>,
    /// The newest applied fetch time per day.
    checkpoint: BTreeMap<Day, i64>,
    /// Indices (into the script's fetches) of the fetches applied.
    applied: HashSet<usize>,
    pools: BTreeMap<Pool, PoolLedger>,
    transactions: i64,
    /// Transactions that moved their partner account (its transfers do not cancel out); each
    /// wrote one entry on it.
    partner_entries: i64,
}

impl Model {
    fn apply(&mut self, n: usize, fetch: &Fetch) -> ApplyOutcome {
        if self.applied.contains(&n) {
            return ApplyOutcome::AlreadyApplied;
        }
        if self.checkpoint.get(&fetch.day) >= Some(&fetch.at) {
            return ApplyOutcome::Superseded;
        }
        for (slot, listed) in fetch.says.iter().enumerate() {
            let Some(listed) = listed else { continue };
            let pax = (0..PAX_TYPES.len()).filter(|&p| listed.pax[p].is_some());
            for pax in std::iter::once(None).chain(pax.map(Some)) {
                let pool = Pool {
                    day: fetch.day,
                    slot,
                    pax,
                };
                self.pools.entry(pool).or_default();
            }
        }
        let mut transfers = 0;
        let mut partner_moves = 0;
        for (pool, ledger) in self.pools.iter_mut().filter(|(p, _)| p.day == fetch.day) {
            let observed = pool.observed(&fetch.says);
            if observed != ledger.balance {
                partner_moves += ledger.balance - observed;
                ledger.balance = observed;
                ledger.postings += 1;
                transfers += 1;
            }
        }
        self.transactions += i64::from(transfers > 0);
        self.partner_entries += i64::from(partner_moves != 0);
        self.mirror.insert(fetch.day, fetch.says.clone());
        self.checkpoint.insert(fetch.day, fetch.at);
        self.applied.insert(n);
        ApplyOutcome::Applied {
            slots: fetch.says.iter().flatten().count(),
            transfers,
        }
    }

    /// Accounts, journal transactions and entries this case's applies added to the ledger:
    /// one entry per pool a transaction moved, and one on the partner account.
    fn ledger_counts(&self) -> (i64, i64, i64) {
        let pool_entries: usize = self.pools.values().map(|pool| pool.postings).sum();
        (
            self.pools.len() as i64,
            self.transactions,
            pool_entries as i64 + self.partner_entries,
        )
    }
}

/// The backend every case of one test runs on (the state machine's `init_test` takes no
/// arguments, so the test hands it over through this thread's slot).
#[derive(Clone)]
struct Backend {
    name: &'static str,
    runtime: tokio::runtime::Handle,
    /// Two handles on one database, as two processes would have.
    stores: [Arc<dyn Store>; 2],
    next_experience: Arc<std::sync::atomic::AtomicI64>,
}

thread_local! {
    static BACKEND: RefCell<Option<Backend>> = const { RefCell::new(None) };
}

struct StoreUnderTest {
    backend: Backend,
    experiences: [ExperienceId; EXPERIENCES],
    /// The `DayFetch` id of each script fetch seen so far.
    fetch_ids: Vec<Uuid>,
    model: Model,
    /// The ledger's counts before this case.
    baseline: (i64, i64, i64),
}

fn epoch() -> DateTime<Utc> {
    "2026-11-01T00:00:00Z".parse().expect("instant")
}

fn price(cents: i64) -> Price {
    Price {
        final_price: Decimal::new(cents, 2),
        original_price: Decimal::new(cents + 10_000, 2),
        currency: "SGD".into(),
    }
}

fn served_pax(slot: &SlotSays) -> Vec<PaxAvailability> {
    (0..PAX_TYPES.len())
        .filter_map(|p| {
            let says = slot.pax[p]?;
            Some(PaxAvailability {
                remaining: says.remaining,
                is_primary: p == 0,
                price: price(says.cents),
                ..pax(PAX_TYPES[p], 0, "0", false)
            })
        })
        .collect()
}

impl StoreUnderTest {
    fn block_on<T>(&self, work: impl Future<Output = T>) -> T {
        self.backend.runtime.block_on(work)
    }

    fn store(&self) -> &dyn Store {
        self.backend.stores[0].as_ref()
    }

    fn experience_and_date(&self, day: Day) -> (ExperienceId, NaiveDate) {
        (self.experiences[day.experience], date(DATES[day.date]))
    }

    fn slot_id(&self, day: Day, slot: usize) -> String {
        let (_, date) = self.experience_and_date(day);
        format!("model_{date}T{}", TIMES[slot])
    }

    fn served(&self, day: Day, says: &DaySays) -> Vec<ServedSlot> {
        let (_, start_date) = self.experience_and_date(day);
        says.iter()
            .enumerate()
            .filter_map(|(position, slot)| {
                let slot = slot.as_ref()?;
                Some(ServedSlot {
                    provider_slot_id: self.slot_id(day, position),
                    start_date,
                    start_time: time(TIMES[position]),
                    remaining: slot.remaining,
                    pax: served_pax(slot),
                })
            })
            .collect()
    }

    fn day_fetch(&self, n: usize, fetch: &Fetch) -> DayFetch {
        let (experience, date) = self.experience_and_date(fetch.day);
        let slots = self
            .served(fetch.day, &fetch.says)
            .into_iter()
            .map(|served| Slot {
                provider_slot_id: served.provider_slot_id,
                start_date: date,
                start_time: served.start_time,
                end_time: served.start_time,
                remaining: served.remaining,
                currency: "SGD".into(),
                variant_id: 32,
                pax: served.pax,
            })
            .collect();
        DayFetch {
            id: self.fetch_ids[n],
            experience,
            date,
            fetched_at: epoch() + Duration::seconds(fetch.at),
            slots,
        }
    }

    /// Which script fetch each arrival of `transition` is; fresh and late ones get new ids.
    fn fetch_indices(&mut self, transition: &Transition) -> Vec<usize> {
        transition
            .arrivals()
            .into_iter()
            .map(|arrival| match arrival {
                Arrival::Replay { n } => *n,
                _ => {
                    self.fetch_ids.push(Uuid::new_v4());
                    self.fetch_ids.len() - 1
                }
            })
            .collect()
    }

    fn apply_one(&mut self, script: &Script, n: usize) {
        let fetch = self.day_fetch(n, &script.fetches[n]);
        let outcome = self
            .block_on(self.store().apply_fetch(&fetch, None))
            .unwrap_or_else(|error| panic!("{}: apply failed: {error}", self.backend.name));
        let expected = self.model.apply(n, &script.fetches[n]);
        assert_eq!(
            outcome, expected,
            "{}: outcome of {fetch:?}",
            self.backend.name
        );
    }

    /// Applies both at once, then advances the model in whichever serial order explains what
    /// the store answered.
    fn apply_concurrently(&mut self, script: &Script, first: usize, second: usize) {
        let (a, b) = (
            self.day_fetch(first, &script.fetches[first]),
            self.day_fetch(second, &script.fetches[second]),
        );
        let [one, other] = &self.backend.stores;
        let (outcome_a, outcome_b) = self.block_on(async {
            tokio::join!(one.apply_fetch(&a, None), other.apply_fetch(&b, None))
        });
        let name = self.backend.name;
        let outcomes = (
            outcome_a.unwrap_or_else(|error| panic!("{name}: concurrent apply failed: {error}")),
            outcome_b.unwrap_or_else(|error| panic!("{name}: concurrent apply failed: {error}")),
        );
        // Each order is positions into `[first, second]`, so one fetch applied twice works too.
        let serial = |order: [usize; 2]| {
            let mut model = self.model.clone();
            let mut expected = [None; 2];
            for position in order {
                let n = [first, second][position];
                expected[position] = Some(model.apply(n, &script.fetches[n]));
            }
            (expected, model)
        };
        let explained = [[0, 1], [1, 0]]
            .into_iter()
            .map(serial)
            .find(|(expected, _)| *expected == [Some(outcomes.0), Some(outcomes.1)]);
        let Some((_, model)) = explained else {
            panic!("{name}: no serial order explains {outcomes:?} for {a:?} and {b:?}");
        };
        self.model = model;
    }

    fn ledger_counts(&self) -> (i64, i64, i64) {
        let report = self.block_on(self.store().verify()).expect("verify runs");
        assert!(report.ok, "{}: {:?}", self.backend.name, report.violations);
        (report.accounts, report.transactions, report.entries)
    }

    fn check_day(&self, day: Day) {
        let name = self.backend.name;
        let (experience, date) = self.experience_and_date(day);
        let says = self.model.mirror.get(&day).cloned().unwrap_or_default();
        let served = self
            .block_on(self.store().slots_on(experience, date))
            .expect("slots_on");
        assert_eq!(served, self.served(day, &says), "{name}: served {day:?}");

        for slot in 0..TIMES.len() {
            let pools: BTreeMap<Option<String>, PoolLedger> = self
                .model
                .pools
                .iter()
                .filter(|(pool, _)| pool.day == day && pool.slot == slot)
                .map(|(pool, ledger)| (pool.pax.map(|p| PAX_TYPES[p].to_string()), *ledger))
                .collect();
            let history = self
                .block_on(
                    self.store()
                        .slot_history(experience, date, time(TIMES[slot])),
                )
                .expect("slot_history");
            let Some(history) = history else {
                assert!(
                    pools.is_empty(),
                    "{name}: no history for {day:?} slot {slot}"
                );
                continue;
            };
            assert_eq!(
                history.is_open,
                says[slot].is_some(),
                "{name}: {day:?} slot {slot} open"
            );
            let mut chains: BTreeMap<Option<String>, Vec<&storage::Posting>> = BTreeMap::new();
            for posting in &history.postings {
                chains
                    .entry(posting.pax_type.clone())
                    .or_default()
                    .push(posting);
            }
            for (pax_type, ledger) in &pools {
                let chain = chains.remove(pax_type).unwrap_or_default();
                let what = format!("{name}: {day:?} slot {slot} pool {pax_type:?}");
                assert_eq!(chain.len(), ledger.postings, "{what}: postings {chain:#?}");
                let last = chain.last().map_or(0, |posting| posting.balance_after);
                assert_eq!(last, ledger.balance, "{what}: balance");
                for (version, posting) in (1..).zip(&chain) {
                    assert_eq!(posting.version, version, "{what}: chain");
                    assert_ne!(posting.amount, 0, "{what}: empty posting");
                    let fetch = Uuid::parse_str(&posting.fetch_id).expect("fetch id");
                    let n = self.fetch_ids.iter().position(|id| *id == fetch);
                    assert!(
                        n.is_some_and(|n| self.model.applied.contains(&n)),
                        "{what}: posting from a fetch that was not applied: {posting:?}"
                    );
                }
            }
            assert!(
                chains.is_empty(),
                "{name}: postings on unknown pools {chains:?}"
            );
        }
    }

    /// `/dates`: days with an open slot that has seats and a pax, at the lowest price of
    /// those slots' primary pax (the first listed when the primary is not).
    fn check_sellable_dates(&self, experience: usize) {
        let expected: Vec<DatePrice> = (0..DATES.len())
            .filter_map(|date| {
                let day = Day { experience, date };
                let says = self.model.mirror.get(&day)?;
                let cheapest = says
                    .iter()
                    .flatten()
                    .filter(|slot| slot.remaining > 0)
                    .filter_map(|slot| slot.pax.iter().flatten().next())
                    .map(|primary| primary.cents)
                    .min()?;
                Some(DatePrice {
                    date: self.experience_and_date(day).1,
                    price: price(cheapest),
                })
            })
            .collect();
        let (id, from) = self.experience_and_date(Day {
            experience,
            date: 0,
        });
        let to = date(DATES[DATES.len() - 1]);
        let served = self
            .block_on(self.store().sellable_dates(id, from, to))
            .expect("sellable_dates");
        assert_eq!(served, expected, "{}: sellable dates", self.backend.name);
    }

    fn check_checkpoints(&self) {
        let from = date(DATES[0]);
        let to = date(DATES[DATES.len() - 1]);
        let mut stored: Vec<(ExperienceId, NaiveDate, DateTime<Utc>)> = self
            .block_on(self.store().last_fetches(from, to))
            .expect("last_fetches")
            .into_iter()
            .filter(|last| self.experiences.contains(&last.experience))
            .map(|last| (last.experience, last.date, last.fetched_at))
            .collect();
        stored.sort();
        let mut expected: Vec<_> = self
            .model
            .checkpoint
            .iter()
            .map(|(day, at)| {
                let (experience, date) = self.experience_and_date(*day);
                (experience, date, epoch() + Duration::seconds(*at))
            })
            .collect();
        expected.sort();
        assert_eq!(stored, expected, "{}: checkpoints", self.backend.name);
    }
}

impl StateMachineTest for StoreUnderTest {
    type SystemUnderTest = Self;
    type Reference = LedgerModel;

    fn init_test(_: &Script) -> Self {
        let backend = BACKEND.with_borrow(|backend| backend.clone().expect("a backend is set"));
        let first = backend
            .next_experience
            .fetch_add(EXPERIENCES as i64, std::sync::atomic::Ordering::Relaxed);
        let experiences = std::array::from_fn(|i| experience(first + i as i64));
        let mut sut = Self {
            backend,
            experiences,
            fetch_ids: Vec::new(),
            model: Model::default(),
            baseline: (0, 0, 0),
        };
        sut.block_on(sut.store().ensure_experiences(&experiences))
            .expect("experiences");
        sut.baseline = sut.ledger_counts();
        sut
    }

    fn apply(mut sut: Self, script: &Script, transition: Transition) -> Self {
        match sut.fetch_indices(&transition)[..] {
            [n] => sut.apply_one(script, n),
            [first, second] => sut.apply_concurrently(script, first, second),
            _ => unreachable!("a transition is one or two arrivals"),
        }
        sut
    }

    fn check_invariants(sut: &Self, _: &Script) {
        for experience in 0..EXPERIENCES {
            for date in 0..DATES.len() {
                sut.check_day(Day { experience, date });
            }
            sut.check_sellable_dates(experience);
        }
        sut.check_checkpoints();
        let (accounts, transactions, entries) = sut.model.ledger_counts();
        let (base_accounts, base_transactions, base_entries) = sut.baseline;
        assert_eq!(
            sut.ledger_counts(),
            (
                base_accounts + accounts,
                base_transactions + transactions,
                base_entries + entries
            ),
            "{}: ledger counts (accounts, transactions, entries)",
            sut.backend.name
        );
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

/// Runs the state machine against `backend`, every case on the same database.
fn check_against_model(runtime: &tokio::runtime::Runtime, backend: TestStore) {
    let second = runtime
        .block_on(storage::connect(&backend.url))
        .expect("a second store handle");
    BACKEND.set(Some(Backend {
        name: backend.name,
        runtime: runtime.handle().clone(),
        stores: [backend.store.clone(), second],
        next_experience: Arc::new(1.into()),
    }));
    let config = Config {
        cases: cases(),
        // A failure on PostgreSQL shrinks slowly; keep CI bounded.
        max_shrink_time: 120_000,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config.clone());
    let started = std::time::Instant::now();
    let result = runner.run(
        &LedgerModel::sequential_strategy(1..MAX_STEPS),
        |(script, transitions, seen)| {
            StoreUnderTest::test_sequential(config.clone(), script, transitions, seen);
            Ok(())
        },
    );
    BACKEND.set(None);
    if let Err(failure) = result {
        panic!(
            "{}: the store departs from the model: {failure}",
            backend.name
        );
    }
    eprintln!(
        "{}: {} cases of up to {MAX_STEPS} steps matched the model in {:.1?}",
        backend.name,
        config.cases,
        started.elapsed()
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn sqlite_store_matches_the_model() {
    let runtime = runtime();
    let backend = runtime.block_on(sqlite_store());
    check_against_model(&runtime, backend);
}

#[test]
fn postgres_store_matches_the_model() {
    let runtime = runtime();
    if let Some(backend) = runtime.block_on(postgres_store()) {
        check_against_model(&runtime, backend);
    }
}
