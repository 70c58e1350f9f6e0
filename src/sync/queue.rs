//! The work queue: product-dates waiting for a partner call, nearest first, each at most once.
//!
//! It holds only keys, so its memory is bounded by products × horizon whatever the backlog.
//! Every queued day can carry the batches (tier runs, manual triggers) waiting for it, so a
//! tier knows when all of its days are done even when another tier queued them first.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use tokio::sync::Notify;

use super::ProductDate;

/// Manual triggers go ahead of routine work; within a class, nearer dates go first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Urgency {
    Manual,
    Routine,
}

/// A group of days someone waits on: one tier run or one trigger.
#[derive(Debug, Default)]
pub struct Batch {
    state: std::sync::Mutex<BatchState>,
    done: Notify,
}

#[derive(Debug, Default)]
struct BatchState {
    outstanding: usize,
    failed: usize,
}

impl Batch {
    fn add(&self) {
        self.lock().outstanding += 1;
    }

    fn settle(&self, ok: bool) {
        let mut state = self.lock();
        state.outstanding = state.outstanding.saturating_sub(1);
        if !ok {
            state.failed += 1;
        }
        if state.outstanding == 0 {
            self.done.notify_waiters();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BatchState> {
        // The state is two counters; a panic elsewhere cannot leave them half-written.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits until every day of the batch is done; returns how many failed.
    pub async fn finished(&self) -> usize {
        loop {
            let notified = self.done.notified();
            {
                let state = self.lock();
                if state.outstanding == 0 {
                    return state.failed;
                }
            }
            notified.await;
        }
    }
}

#[derive(Debug, Default)]
struct Entry {
    /// Set while queued.
    urgency: Option<Urgency>,
    in_flight: bool,
    /// The most urgent request made while in flight, kept in case the call is put back.
    urgency_if_requeued: Option<Urgency>,
    waiters: Vec<Arc<Batch>>,
}

#[derive(Debug, Default)]
pub struct WorkQueue {
    ordered: BTreeSet<(Urgency, ProductDate)>,
    entries: HashMap<ProductDate, Entry>,
    /// Days finished while a tier read what is due from the store, per open watch: the tier's
    /// snapshot may predate their fetch, so it must not queue them again.
    watches: HashMap<u64, HashSet<ProductDate>>,
    next_watch: u64,
}

/// An open [`WorkQueue::watch_finishes`].
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Watch(u64);

impl WorkQueue {
    /// Queues `day` unless it is already queued at the same or a higher urgency; a day in
    /// flight is served by the call under way. Either way `batch` (if any) waits for it.
    /// Returns whether this call queued it, moved it up, or found it in flight.
    pub fn push(&mut self, day: ProductDate, urgency: Urgency, batch: Option<&Arc<Batch>>) -> bool {
        let entry = self.entries.entry(day).or_default();
        if let Some(batch) = batch {
            batch.add();
            entry.waiters.push(batch.clone());
        }
        if entry.in_flight {
            entry.urgency_if_requeued = Some(
                entry
                    .urgency_if_requeued
                    .map_or(urgency, |asked| asked.min(urgency)),
            );
            return true;
        }
        match entry.urgency {
            Some(current) if current <= urgency => false,
            current => {
                if let Some(current) = current {
                    self.ordered.remove(&(current, day));
                }
                entry.urgency = Some(urgency);
                self.ordered.insert((urgency, day));
                true
            }
        }
    }

    /// Takes the most urgent day and marks it in flight.
    pub fn pop(&mut self) -> Option<(ProductDate, Urgency)> {
        let (urgency, day) = self.ordered.pop_first()?;
        if let Some(entry) = self.entries.get_mut(&day) {
            entry.urgency = None;
            entry.in_flight = true;
        }
        Some((day, urgency))
    }

    /// Takes the most urgent day and, after it, the queued days of the same experience on the
    /// dates that follow (up to `max` days in all, stopping at the first not queued), all
    /// marked in flight: what one ranged call fetches.
    pub fn pop_run(&mut self, max: usize) -> Vec<(ProductDate, Urgency)> {
        let Some(first) = self.pop() else {
            return Vec::new();
        };
        let mut run = vec![first];
        while run.len() < max {
            let Some((last, _)) = run.last() else { break };
            let Some(date) = last.date.succ_opt() else {
                break;
            };
            let next = ProductDate {
                date,
                experience: last.experience,
            };
            let Some(entry) = self.entries.get_mut(&next) else {
                break;
            };
            let Some(urgency) = entry.urgency.take() else {
                break;
            };
            entry.in_flight = true;
            self.ordered.remove(&(urgency, next));
            run.push((next, urgency));
        }
        run
    }

    /// Puts an in-flight day back (its call was cancelled or rate limited); waiters keep
    /// waiting.
    pub fn requeue(&mut self, day: ProductDate, urgency: Urgency) {
        let mut urgency = urgency;
        if let Some(entry) = self.entries.get_mut(&day) {
            entry.in_flight = false;
            urgency = urgency.min(entry.urgency_if_requeued.take().unwrap_or(urgency));
        }
        self.push(day, urgency, None);
    }

    /// Ends an in-flight day (applied, or parked after its retries) and tells its waiters.
    pub fn finish(&mut self, day: ProductDate, ok: bool) {
        if let Some(entry) = self.entries.remove(&day) {
            for batch in &entry.waiters {
                batch.settle(ok);
            }
        }
        if ok {
            for finished in self.watches.values_mut() {
                finished.insert(day);
            }
        }
    }

    /// Starts recording the days finished from now on, until [`WorkQueue::finished_since`].
    pub fn watch_finishes(&mut self) -> Watch {
        self.next_watch += 1;
        self.watches.insert(self.next_watch, HashSet::new());
        Watch(self.next_watch)
    }

    /// The days finished since `watch` began; ends it.
    pub fn finished_since(&mut self, watch: Watch) -> HashSet<ProductDate> {
        self.watches.remove(&watch.0).unwrap_or_default()
    }

    pub fn pending(&self) -> usize {
        self.ordered.len()
    }

    pub fn in_flight(&self) -> usize {
        self.entries
            .values()
            .filter(|entry| entry.in_flight)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ExperienceId;
    use chrono::NaiveDate;

    fn day(experience: i64, d: u32) -> ProductDate {
        ProductDate {
            experience: ExperienceId::try_from(experience).unwrap(),
            date: NaiveDate::from_ymd_opt(2026, 12, d).unwrap(),
        }
    }

    #[test]
    fn nearer_dates_first_and_manual_ahead_of_routine() {
        let mut queue = WorkQueue::default();
        queue.push(day(14, 9), Urgency::Routine, None);
        queue.push(day(14, 3), Urgency::Routine, None);
        queue.push(day(15, 20), Urgency::Manual, None);
        let order: Vec<_> = std::iter::from_fn(|| queue.pop().map(|(d, _)| d)).collect();
        assert_eq!(order, [day(15, 20), day(14, 3), day(14, 9)]);
    }

    #[test]
    fn a_run_takes_the_following_queued_days_of_the_same_experience() {
        let mut queue = WorkQueue::default();
        for d in [1, 2, 3, 5] {
            queue.push(day(14, d), Urgency::Routine, None);
        }
        queue.push(day(15, 1), Urgency::Routine, None);
        let run: Vec<ProductDate> = queue.pop_run(10).into_iter().map(|(d, _)| d).collect();
        assert_eq!(
            run,
            [day(14, 1), day(14, 2), day(14, 3)],
            "stops at the gap"
        );
        assert_eq!(queue.in_flight(), 3);
        let run: Vec<ProductDate> = queue.pop_run(10).into_iter().map(|(d, _)| d).collect();
        assert_eq!(run, [day(15, 1)]);
        let run: Vec<ProductDate> = queue.pop_run(1).into_iter().map(|(d, _)| d).collect();
        assert_eq!(run, [day(14, 5)]);
        assert!(queue.pop_run(10).is_empty());
    }

    #[test]
    fn a_day_is_queued_once_and_can_be_upgraded() {
        let mut queue = WorkQueue::default();
        assert!(queue.push(day(14, 3), Urgency::Routine, None));
        assert!(!queue.push(day(14, 3), Urgency::Routine, None));
        assert!(queue.push(day(14, 3), Urgency::Manual, None));
        assert!(!queue.push(day(14, 3), Urgency::Manual, None));
        assert_eq!(queue.pending(), 1);
        assert_eq!(queue.pop(), Some((day(14, 3), Urgency::Manual)));
        // In flight: served by the call under way, not queued again...
        assert!(queue.push(day(14, 3), Urgency::Manual, None));
        assert_eq!(queue.pending(), 0);
        assert_eq!(queue.in_flight(), 1);
        // ...unless that call is put back, at the most urgent level asked for meanwhile.
        queue.requeue(day(14, 3), Urgency::Routine);
        assert_eq!(queue.pop(), Some((day(14, 3), Urgency::Manual)));
    }

    #[test]
    fn a_watch_sees_the_days_finished_while_it_was_open() {
        let mut queue = WorkQueue::default();
        queue.push(day(14, 3), Urgency::Routine, None);
        queue.push(day(14, 4), Urgency::Routine, None);
        let (before, _) = queue.pop().unwrap();
        queue.finish(before, true);
        let watch = queue.watch_finishes();
        let (during, _) = queue.pop().unwrap();
        queue.finish(during, true);
        assert_eq!(queue.finished_since(watch), HashSet::from([day(14, 4)]));
    }

    #[tokio::test]
    async fn a_batch_finishes_when_all_its_days_do_even_if_queued_by_another() {
        let mut queue = WorkQueue::default();
        let tier = Arc::new(Batch::default());
        queue.push(day(14, 3), Urgency::Routine, None);
        queue.push(day(14, 3), Urgency::Routine, Some(&tier));
        queue.push(day(14, 4), Urgency::Routine, Some(&tier));
        let (first, _) = queue.pop().unwrap();
        queue.finish(first, true);
        let (second, urgency) = queue.pop().unwrap();
        queue.requeue(second, urgency);
        let (second, _) = queue.pop().unwrap();
        queue.finish(second, false);
        assert_eq!(tier.finished().await, 1);
        assert_eq!((queue.pending(), queue.in_flight()), (0, 0));
    }
}
