//! Quiet weekdays: the weekdays a product does not run, learned from what the partner last
//! answered for each date of the horizon. Their days are probed every [`PROBE_PERIOD`] instead
//! of every tier run, and never dropped, so the budget goes to days with inventory.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{Datelike, Weekday};

use super::ProductDate;
use crate::domain::ExperienceId;
use crate::storage::LastFetch;

/// A weekday is quiet for a product once at least this many of its dates in the horizon were
/// fetched and every one of them last came back empty. One empty date (a holiday, a sold-out
/// day) never makes a weekday quiet while another date of it has slots.
pub const EMPTY_DATES: usize = 3;

/// How often each date of a quiet weekday is still fetched: a product that starts running on a
/// new weekday shows within this (plus one run of the tier owning the date), and once one
/// date of that weekday has slots, all its dates are back on their tier's period.
pub const PROBE_PERIOD: Duration = Duration::from_secs(48 * 60 * 60);

#[derive(Debug, Default)]
pub struct QuietWeekdays(HashSet<(ExperienceId, Weekday)>);

impl QuietWeekdays {
    /// Learns from the last fetch of every product-date of the horizon.
    pub fn learn(fetches: &[LastFetch]) -> Self {
        // (empty dates, whether any date had slots) per (product, weekday)
        let mut seen: HashMap<(ExperienceId, Weekday), (usize, bool)> = HashMap::new();
        for fetch in fetches {
            let (empty, running) = seen
                .entry((fetch.experience, fetch.date.weekday()))
                .or_default();
            if fetch.slot_count == 0 {
                *empty += 1;
            } else {
                *running = true;
            }
        }
        Self(
            seen.into_iter()
                .filter(|&(_, (empty, running))| !running && empty >= EMPTY_DATES)
                .map(|(weekday, _)| weekday)
                .collect(),
        )
    }

    pub fn contains(&self, day: ProductDate) -> bool {
        self.0.contains(&(day.experience, day.date.weekday()))
    }

    /// How many (product, weekday) pairs are quiet.
    pub fn count(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, NaiveDate, Utc};

    fn fetch(experience: i64, date: NaiveDate, slot_count: u32) -> LastFetch {
        LastFetch {
            experience: ExperienceId::try_from(experience).unwrap(),
            date,
            fetched_at: DateTime::<Utc>::UNIX_EPOCH,
            slot_count,
        }
    }

    fn day(experience: i64, date: NaiveDate) -> ProductDate {
        ProductDate {
            experience: ExperienceId::try_from(experience).unwrap(),
            date,
        }
    }

    #[test]
    fn a_weekday_is_quiet_only_when_enough_of_its_dates_are_all_empty() {
        // Mondays of December 2026: the 7th, 14th, 21st and 28th.
        let mondays: Vec<NaiveDate> = [7, 14, 21, 28]
            .map(|d| NaiveDate::from_ymd_opt(2026, 12, d).unwrap())
            .into();
        let mut fetches: Vec<LastFetch> = mondays.iter().map(|&d| fetch(14, d, 0)).collect();
        // Product 15 runs on Mondays except on a holiday.
        fetches.extend(
            mondays
                .iter()
                .map(|&d| fetch(15, d, u32::from(d.day() != 21))),
        );
        // Product 16 has only two empty Mondays fetched so far.
        fetches.extend(mondays[..2].iter().map(|&d| fetch(16, d, 0)));
        let quiet = QuietWeekdays::learn(&fetches);
        assert!(quiet.contains(day(14, mondays[0])));
        assert!(!quiet.contains(day(15, mondays[2])));
        assert!(!quiet.contains(day(16, mondays[0])));
        assert_eq!(quiet.count(), 1);
    }
}
