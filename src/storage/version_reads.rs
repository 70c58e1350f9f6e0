//! Booking-version reads shared by the concurrent readers of the same days.
//!
//! When a sale opens, thousands of clients read the same day at once, and every cached answer
//! is served only after the database confirmed its days' booking version: one query per read,
//! all alike. Here readers of the same days share one query instead, on one rule that keeps
//! each answer exact: a reader only joins a query that has not been sent yet, so the version it
//! gets was read after it arrived. Per key, one query runs at a time; readers that arrive
//! meanwhile form the next one, sent as soon as the running one is back. Under load the
//! database sees one version query per key per round trip, however many readers wait.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::NaiveDate;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use super::{Inventory, StoreError};
use crate::domain::ExperienceId;

/// An experience's days, `from..=to`.
pub(super) type DateRange = (ExperienceId, NaiveDate, NaiveDate);

/// Keys with a query forming or running are few (the days being read right now); past this
/// many the bookkeeping starts over. Queries under way still finish and answer their readers;
/// only their sharing with later arrivals is lost.
const MAX_KEYS: usize = 4096;

/// One query and the readers waiting for it. `None` if it failed: each reader then reads on
/// its own, so it gets the error itself (or an answer, if the failure was passing).
type Round = Shared<BoxFuture<'static, Option<i64>>>;

pub(super) struct VersionReads {
    store: Arc<dyn Inventory>,
    rounds: Arc<Mutex<HashMap<DateRange, Rounds>>>,
    /// Names each round, so it finds its own entry even after the bookkeeping started over.
    next_round: AtomicU64,
}

#[derive(Default)]
struct Rounds {
    /// Waiting for `running` to come back; new readers join it.
    forming: Option<(u64, Round)>,
    /// Sent; new readers do not join it, as it may have read the version before they came.
    running: Option<(u64, Round)>,
}

/// The rounds hold plain data that a panic cannot leave half-updated.
fn lock(rounds: &Mutex<HashMap<DateRange, Rounds>>) -> MutexGuard<'_, HashMap<DateRange, Rounds>> {
    rounds
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl VersionReads {
    pub(super) fn new(store: Arc<dyn Inventory>) -> Self {
        Self {
            store,
            rounds: Arc::default(),
            next_round: AtomicU64::new(0),
        }
    }

    /// The days' booking version, read from the database after this call began.
    pub(super) async fn read(&self, range: DateRange) -> Result<i64, StoreError> {
        match self.round(range).await {
            Some(version) => Ok(version),
            None => self.store.booking_version(range.0, range.1, range.2).await,
        }
    }

    /// The forming round of `range`, joined or started. A round is driven by whichever of its
    /// readers is polled, so a reader that gives up does not strand the others.
    fn round(&self, range: DateRange) -> Round {
        let mut all = lock(&self.rounds);
        if all.len() >= MAX_KEYS && !all.contains_key(&range) {
            all.clear();
        }
        let rounds = all.entry(range).or_default();
        if let Some((_, forming)) = &rounds.forming {
            return forming.clone();
        }
        let id = self.next_round.fetch_add(1, Ordering::Relaxed);
        let previous = rounds.running.as_ref().map(|(_, running)| running.clone());
        let store = self.store.clone();
        let shared = self.rounds.clone();
        let round = async move {
            if let Some(previous) = previous {
                previous.await;
            }
            if let Some(rounds) = lock(&shared).get_mut(&range)
                && rounds
                    .forming
                    .as_ref()
                    .is_some_and(|(forming, _)| *forming == id)
            {
                rounds.running = rounds.forming.take();
            }
            let version = store.booking_version(range.0, range.1, range.2).await.ok();
            let mut all = lock(&shared);
            if let Some(rounds) = all.get_mut(&range)
                && rounds
                    .running
                    .as_ref()
                    .is_some_and(|(running, _)| *running == id)
            {
                rounds.running = None;
                if rounds.forming.is_none() {
                    all.remove(&range);
                }
            }
            version
        }
        .boxed()
        .shared();
        rounds.forming = Some((id, round.clone()));
        round
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

    use async_trait::async_trait;
    use tokio::sync::Semaphore;

    use super::*;
    use crate::domain::DatePrice;
    use crate::storage::ServedSlot;

    /// Booking versions as the test sets them: each query reads the version when sent, then
    /// waits for a permit before it answers, so the test decides when queries come back.
    struct GatedVersions {
        version: AtomicI64,
        sent: AtomicUsize,
        answers: Semaphore,
    }

    #[async_trait]
    impl Inventory for GatedVersions {
        async fn experience_exists(&self, _: ExperienceId) -> Result<bool, StoreError> {
            unreachable!("only versions are read")
        }
        async fn slots_between(
            &self,
            _: ExperienceId,
            _: NaiveDate,
            _: NaiveDate,
        ) -> Result<Vec<ServedSlot>, StoreError> {
            unreachable!("only versions are read")
        }
        async fn sellable_dates(
            &self,
            _: ExperienceId,
            _: NaiveDate,
            _: NaiveDate,
        ) -> Result<Vec<DatePrice>, StoreError> {
            unreachable!("only versions are read")
        }
        async fn booking_version(
            &self,
            _: ExperienceId,
            _: NaiveDate,
            _: NaiveDate,
        ) -> Result<i64, StoreError> {
            let version = self.version.load(Ordering::SeqCst);
            self.sent.fetch_add(1, Ordering::SeqCst);
            self.answers
                .acquire()
                .await
                .expect("the test keeps the gate open")
                .forget();
            Ok(version)
        }
    }

    fn gated() -> Arc<GatedVersions> {
        Arc::new(GatedVersions {
            version: AtomicI64::new(0),
            sent: AtomicUsize::new(0),
            answers: Semaphore::new(0),
        })
    }

    fn day(date: u32) -> DateRange {
        let experience = ExperienceId::try_from(14_i64).expect("an experience id");
        let date = NaiveDate::from_ymd_opt(2026, 12, date).expect("a date");
        (experience, date, date)
    }

    async fn until_sent(store: &GatedVersions, count: usize) {
        while store.sent.load(Ordering::SeqCst) < count {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn readers_who_came_while_a_query_ran_share_the_next_one_and_see_what_it_read() {
        let store = gated();
        let reads = Arc::new(VersionReads::new(store.clone()));
        let read = |range| {
            let reads = reads.clone();
            tokio::spawn(async move { reads.read(range).await.expect("a version") })
        };
        let first = read(day(10));
        until_sent(&store, 1).await;
        // A booking commits after the first query read the version: readers from now on
        // must not be answered with that query's version.
        store.version.store(1, Ordering::SeqCst);
        let later: Vec<_> = (0..50).map(|_| read(day(10))).collect();
        let other_day = read(day(11));
        until_sent(&store, 2).await;
        tokio::task::yield_now().await;
        assert_eq!(
            store.sent.load(Ordering::SeqCst),
            2,
            "the later readers of day 10 wait for the running query; day 11 reads at once"
        );
        store.answers.add_permits(1_000);
        assert_eq!(first.await.expect("joined"), 0);
        for reader in later {
            assert_eq!(reader.await.expect("joined"), 1);
        }
        assert_eq!(other_day.await.expect("joined"), 1);
        assert_eq!(
            store.sent.load(Ordering::SeqCst),
            3,
            "fifty readers of day 10 shared one query"
        );
        assert!(lock(&reads.rounds).is_empty(), "nothing is kept once read");
    }

    #[tokio::test]
    async fn a_reader_who_gives_up_leaves_the_others_their_answer() {
        let store = gated();
        let reads = Arc::new(VersionReads::new(store.clone()));
        let running = {
            let reads = reads.clone();
            tokio::spawn(async move { reads.read(day(10)).await })
        };
        until_sent(&store, 1).await;
        // The reader that started the forming round gives up; one that joined it stays.
        let starter = {
            let reads = reads.clone();
            tokio::spawn(async move { reads.read(day(10)).await })
        };
        tokio::task::yield_now().await;
        let joiner = {
            let reads = reads.clone();
            tokio::spawn(async move { reads.read(day(10)).await })
        };
        tokio::task::yield_now().await;
        starter.abort();
        store.version.store(7, Ordering::SeqCst);
        store.answers.add_permits(1_000);
        assert_eq!(running.await.expect("joined").expect("a version"), 0);
        assert_eq!(joiner.await.expect("joined").expect("a version"), 7);
    }
}
