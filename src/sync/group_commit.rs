//! Group commit: fetched days that reach the store while another commit is under way are
//! applied together, in one transaction, by whichever worker commits next.
//!
//! Each worker still waits for its own day's outcome, so what a crash can lose stays the days
//! in flight (one per worker). Paced at the partner's rate, applies never overlap and every
//! commit holds one day; when applying falls behind (a large rate limit, a slow disk), the
//! days that piled up share one commit instead of queueing for one each.

use std::sync::{Mutex, MutexGuard};

use tokio::sync::oneshot;

use crate::domain::DayFetch;
use crate::storage::{ApplyOutcome, Fence, Store, StoreError};

/// A fetched day waiting for a commit, with where to send its outcome.
struct Waiting {
    fetch: DayFetch,
    fence: Fence,
    outcome: oneshot::Sender<Result<ApplyOutcome, StoreError>>,
}

#[derive(Default)]
pub struct GroupCommit {
    waiting: Mutex<Vec<Waiting>>,
    /// Held while a batch is being applied; the next holder takes whatever waits by then.
    committing: tokio::sync::Mutex<()>,
}

impl GroupCommit {
    fn waiting(&self) -> MutexGuard<'_, Vec<Waiting>> {
        // Plain data that a panic cannot leave half-updated.
        self.waiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies `fetch` under `fence`, alone or with whatever other days wait at the same time,
    /// and returns its outcome together with how many commits this call made (0 when another
    /// caller's commit carried the day).
    pub async fn apply(
        &self,
        store: &dyn Store,
        fetch: DayFetch,
        fence: Fence,
    ) -> (Result<ApplyOutcome, StoreError>, usize) {
        let (sender, receiver) = oneshot::channel();
        self.waiting().push(Waiting {
            fetch,
            fence,
            outcome: sender,
        });
        let commits = {
            let _committing = self.committing.lock().await;
            let batch = std::mem::take(&mut *self.waiting());
            commit(store, batch).await
        };
        let outcome = receiver.await.unwrap_or_else(|_| {
            // Only a commit cancelled half-way drops a day's sender; the day was not applied.
            Err(StoreError::Corrupt(
                "the apply carrying this day was cancelled".into(),
            ))
        });
        (outcome, commits)
    }
}

/// Applies `batch` in one transaction per lease token (a batch normally has one); returns the
/// number of commits. When a shared transaction fails for another reason than a lost lease,
/// each day is applied alone, so one bad day costs no other day its apply.
async fn commit(store: &dyn Store, mut batch: Vec<Waiting>) -> usize {
    let mut commits = 0;
    while !batch.is_empty() {
        let token = batch[0].fence.lease.token;
        let split = batch
            .iter()
            .position(|waiting| waiting.fence.lease.token != token)
            .unwrap_or(batch.len());
        let rest = batch.split_off(split);
        commits += commit_one_lease(store, batch).await;
        batch = rest;
    }
    commits
}

async fn commit_one_lease(store: &dyn Store, batch: Vec<Waiting>) -> usize {
    // The newest fence is the strictest: the lease must still run at the latest check.
    let Some(fence) = batch
        .iter()
        .map(|waiting| &waiting.fence)
        .max_by_key(|fence| fence.at)
        .cloned()
    else {
        return 0;
    };
    let fetches: Vec<DayFetch> = batch.iter().map(|waiting| waiting.fetch.clone()).collect();
    match store.apply_fetches(&fetches, Some(&fence)).await {
        Ok(outcomes) => {
            for (waiting, outcome) in batch.into_iter().zip(outcomes) {
                // A worker that stopped waiting no longer needs its outcome.
                let _ = waiting.outcome.send(Ok(outcome));
            }
            1
        }
        Err(StoreError::LeaseLost) => {
            for waiting in batch {
                let _ = waiting.outcome.send(Err(StoreError::LeaseLost));
            }
            0
        }
        Err(error) if batch.len() == 1 => {
            if let Some(waiting) = batch.into_iter().next() {
                let _ = waiting.outcome.send(Err(error));
            }
            0
        }
        Err(error) => {
            tracing::warn!(%error, days = batch.len(), "a shared commit failed; applying its days one at a time");
            let mut commits = 0;
            for waiting in batch {
                let outcome = store
                    .apply_fetch(&waiting.fetch, Some(&waiting.fence))
                    .await;
                commits += usize::from(outcome.is_ok());
                let _ = waiting.outcome.send(outcome);
            }
            commits
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::{NaiveDate, Utc};

    use super::*;
    use crate::domain::{ExperienceId, Secret};
    use crate::simulator::{Simulator, SimulatorConfig};
    use crate::storage::{SqliteStore, Store};

    fn simulated_days(count: usize) -> Vec<DayFetch> {
        let sim = Simulator::new(SimulatorConfig::new(Secret::new("test")));
        let experience = ExperienceId::try_from(14).expect("positive id");
        let first = NaiveDate::from_ymd_opt(2030, 1, 1).expect("date");
        first
            .iter_days()
            .filter_map(|date| {
                let slots: Vec<_> = sim
                    .inventory(experience, date)
                    .ok()?
                    .into_iter()
                    .map(|slot| slot.into_slot(date))
                    .collect::<Result<_, _>>()
                    .ok()?;
                (!slots.is_empty()).then(|| DayFetch::new(experience, date, slots))
            })
            .take(count)
            .collect()
    }

    async fn leader_store() -> (tempfile::TempDir, SqliteStore, Fence) {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("group.db").display());
        let store = SqliteStore::connect(&url).await.expect("store");
        let lease = store
            .acquire_lease("test", Utc::now(), Duration::from_secs(60))
            .await
            .expect("lease")
            .expect("the lease is free");
        let fence = Fence {
            lease,
            at: Utc::now(),
        };
        (dir, store, fence)
    }

    #[tokio::test]
    async fn days_that_wait_together_share_one_commit() {
        let (_dir, store, fence) = leader_store().await;
        let group = GroupCommit::default();
        let [a, b, c]: [DayFetch; 3] = simulated_days(3).try_into().expect("three days");
        // The first day commits alone; the other two wait for it and then share a commit.
        let (a, b, c) = tokio::join!(
            group.apply(&store, a, fence.clone()),
            group.apply(&store, b, fence.clone()),
            group.apply(&store, c, fence.clone()),
        );
        for (outcome, _) in [&a, &b, &c] {
            assert!(
                matches!(outcome, Ok(ApplyOutcome::Applied { .. })),
                "{outcome:?}"
            );
        }
        assert_eq!(a.1 + b.1 + c.1, 2, "commits for three days");
        let report = store.verify().await.expect("verify");
        assert!(report.ok, "{report:?}");
    }

    #[tokio::test]
    async fn a_bad_day_costs_no_other_day_its_apply() {
        let (_dir, store, fence) = leader_store().await;
        let group = GroupCommit::default();
        let [a, mut bad, c]: [DayFetch; 3] = simulated_days(3).try_into().expect("three days");
        // The database refuses a negative remaining, failing the commit `bad` shares with `c`.
        bad.slots[0].remaining = -1;
        let (a, bad, c) = tokio::join!(
            group.apply(&store, a, fence.clone()),
            group.apply(&store, bad, fence.clone()),
            group.apply(&store, c, fence.clone()),
        );
        assert!(matches!(a.0, Ok(ApplyOutcome::Applied { .. })), "{a:?}");
        assert!(matches!(bad.0, Err(StoreError::Database { .. })), "{bad:?}");
        assert!(matches!(c.0, Ok(ApplyOutcome::Applied { .. })), "{c:?}");
        let applied = store
            .last_fetches(
                NaiveDate::from_ymd_opt(2030, 1, 1).expect("date"),
                NaiveDate::from_ymd_opt(2030, 12, 31).expect("date"),
            )
            .await
            .expect("checkpoints");
        assert_eq!(applied.len(), 2, "the good days' checkpoints: {applied:?}");
    }

    #[tokio::test]
    async fn a_lost_lease_refuses_every_waiting_day() {
        let (_dir, store, mut fence) = leader_store().await;
        fence.lease.token += 1;
        let group = GroupCommit::default();
        let [a, b]: [DayFetch; 2] = simulated_days(2).try_into().expect("two days");
        let (a, b) = tokio::join!(
            group.apply(&store, a, fence.clone()),
            group.apply(&store, b, fence.clone()),
        );
        assert!(matches!(a.0, Err(StoreError::LeaseLost)), "{a:?}");
        assert!(matches!(b.0, Err(StoreError::LeaseLost)), "{b:?}");
    }
}
