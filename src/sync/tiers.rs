//! Tiers: which days are refreshed how often, what is due, and what the budget allows.

use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, Timelike, Utc};

use super::quiet;
use crate::config::TierSettings;

/// Why a tier runs: its cron fired, or this instance just became the leader and catches up
/// on whatever went stale meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    Scheduled,
    CatchUp,
}

/// The ages at which a day is due in one tier run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueAge {
    pub running: Duration,
    /// For a date on one of the product's quiet weekdays.
    pub quiet: Duration,
}

impl DueAge {
    pub fn is_due(&self, age: Duration, quiet: bool) -> bool {
        age >= if quiet { self.quiet } else { self.running }
    }
}

#[derive(Debug, Clone)]
pub struct Tier {
    pub settings: TierSettings,
}

impl Tier {
    pub fn name(&self) -> &str {
        &self.settings.name
    }

    /// The next time the tier's cron fires after `now`.
    pub fn next_run(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.settings
            .cron
            .schedule
            .find_next_occurrence(&whole_second(now), false)
            .ok()
    }

    /// How often the tier fires: the gap between its next two runs after `now`.
    pub fn period(&self, now: DateTime<Utc>) -> Duration {
        let mut runs = self.settings.cron.schedule.iter_after(whole_second(now));
        match (runs.next(), runs.next()) {
            (Some(first), Some(second)) => (second - first).to_std().unwrap_or(Duration::MAX),
            _ => Duration::MAX,
        }
    }

    /// The tier's dates, given today.
    pub fn dates(&self, today: NaiveDate) -> (NaiveDate, NaiveDate) {
        let offset = |days: u32| {
            today
                .checked_add_days(Days::new(u64::from(days)))
                .unwrap_or(NaiveDate::MAX)
        };
        (
            offset(self.settings.first_day),
            offset(self.settings.last_day),
        )
    }

    /// How old a day must be to be due in a run of this tier starting at `now`: a period, or
    /// [`quiet::PROBE_PERIOD`] on a quiet weekday. A run takes time to drain, so a scheduled
    /// run (which queues only the days it owns) counts a day as due from a tenth of a period
    /// old: one fetched late in the previous run (up to nine tenths of a period after it
    /// fired) is still refreshed by this one; one just fetched by a trigger or a catch-up is
    /// not. A catch-up run (start-up, new leader) fetches
    /// nothing fresh.
    pub fn due_age(&self, run: Run, now: DateTime<Utc>) -> DueAge {
        let period = self.period(now);
        let early = match run {
            Run::Scheduled => period / 10 * 9,
            Run::CatchUp => Duration::ZERO,
        };
        DueAge {
            running: period.saturating_sub(early),
            quiet: period.max(quiet::PROBE_PERIOD).saturating_sub(early),
        }
    }

    pub fn covers(&self, offset: u32) -> bool {
        (self.settings.first_day..=self.settings.last_day).contains(&offset)
    }
}

/// Cron fires on whole seconds; without this the next run would inherit `now`'s fraction.
fn whole_second(now: DateTime<Utc>) -> DateTime<Utc> {
    now.with_nanosecond(0).unwrap_or(now)
}

/// The tier that keeps the day at `offset` fresh: the most frequent one covering it (the first
/// configured on a tie). The others find it fresh and skip it.
pub fn owner(tiers: &[Tier], offset: u32, now: DateTime<Utc>) -> Option<usize> {
    tiers
        .iter()
        .enumerate()
        .filter(|(_, tier)| tier.covers(offset))
        .min_by_key(|&(index, tier)| (tier.period(now), index))
        .map(|(index, _)| index)
}

/// One line of `invsync plan`: what a tier costs per day and whether the budget covers it.
#[derive(Debug, Clone, PartialEq)]
pub struct TierPlan {
    pub name: String,
    pub owned_days: usize,
    pub runs_per_day: f64,
    pub calls_per_day: u64,
    /// Of those, the probes of quiet weekdays' dates.
    pub quiet_calls_per_day: u64,
    /// Share of the tier's wanted calls the budget left for it (nearer tiers go first).
    pub covered: f64,
}

/// The daily budget split over the tiers, nearest tier first. Day by day (`days_per_call`
/// 1), each product-date costs one call per run of the most frequent tier that covers it, or
/// one per [`quiet::PROBE_PERIOD`] on a quiet weekday (products run on `running_weekdays` of
/// 7 on average). With ranges, a run of a tier of several days costs each product one call
/// per `days_per_call` of them, quiet ones included.
pub fn plan(
    tiers: &[Tier],
    products: u64,
    running_weekdays: f64,
    days_per_call: u32,
    budget_per_day: u64,
    now: DateTime<Utc>,
) -> Vec<TierPlan> {
    let day = Duration::from_secs(86_400);
    let mut order: Vec<(usize, &Tier)> = tiers.iter().enumerate().collect();
    order.sort_by_key(|(_, tier)| (tier.settings.first_day, tier.period(now)));
    let mut left = budget_per_day;
    order
        .into_iter()
        .map(|(index, tier)| {
            let owned_days = (tier.settings.first_day..=tier.settings.last_day)
                .filter(|&offset| owner(tiers, offset, now) == Some(index))
                .count();
            let per_day = |period: Duration| day.as_secs_f64() / period.as_secs_f64().max(1.0);
            let runs_per_day = per_day(tier.period(now));
            let product_days = products as f64 * owned_days as f64;
            // A one-day run reads each day alone, ranges or not.
            let (running, quiet) = if days_per_call > 1 && owned_days > 1 {
                let calls_per_run = owned_days.div_ceil(days_per_call as usize);
                (products as f64 * calls_per_run as f64 * runs_per_day, 0.0)
            } else {
                (
                    product_days * running_weekdays / 7.0 * runs_per_day,
                    product_days * (7.0 - running_weekdays) / 7.0
                        * per_day(tier.period(now).max(quiet::PROBE_PERIOD)),
                )
            };
            let calls_per_day = (running + quiet).ceil() as u64;
            let granted = calls_per_day.min(left);
            left -= granted;
            TierPlan {
                name: tier.name().to_string(),
                owned_days,
                runs_per_day,
                calls_per_day,
                quiet_calls_per_day: quiet.ceil() as u64,
                covered: if calls_per_day == 0 {
                    1.0
                } else {
                    granted as f64 / calls_per_day as f64
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SyncSettings;

    fn default_tiers() -> Vec<Tier> {
        SyncSettings::default()
            .tiers()
            .into_iter()
            .map(|settings| Tier { settings })
            .collect()
    }

    #[test]
    fn default_tier_periods_and_ownership() {
        let now: DateTime<Utc> = "2026-11-22T05:07:00Z".parse().unwrap();
        let tiers = default_tiers();
        let periods: Vec<u64> = tiers.iter().map(|t| t.period(now).as_secs()).collect();
        assert_eq!(periods, [900, 14_400, 86_400, 86_400]);
        let owned: Vec<usize> = plan(&tiers, 1, 7.0, 1, u64::MAX, now)
            .iter()
            .map(|t| t.owned_days)
            .collect();
        // today owns day 0, week days 1–6, month days 7–29, horizon days 30–59.
        assert_eq!(owned, [1, 6, 23, 30]);
    }

    #[test]
    fn scheduled_runs_refresh_days_from_the_previous_run_and_catch_up_fetches_nothing_fresh() {
        let now: DateTime<Utc> = "2026-11-22T05:07:00Z".parse().unwrap();
        let tiers = default_tiers();
        let minutes = |m: u64| Duration::from_secs(m * 60);
        let today = tiers[0].due_age(Run::Scheduled, now);
        // Fetched 13 minutes into the previous run, 2 minutes before this one.
        assert!(today.is_due(minutes(2), false));
        // Fetched by a trigger a minute ago.
        assert!(!today.is_due(minutes(1), false));
        let catch_up = tiers[0].due_age(Run::CatchUp, now);
        assert!(!catch_up.is_due(minutes(14), false));
        assert!(catch_up.is_due(minutes(15), false));
        // A quiet weekday's date waits for the probe period, whichever tier looks at it.
        assert!(!today.is_due(minutes(47 * 60), true));
        assert!(today.is_due(minutes(48 * 60 - 10), true));
        // Probed late in yesterday's drain, or at any time the day before.
        let horizon = tiers[3].due_age(Run::Scheduled, now);
        assert!(!horizon.is_due(minutes(24 * 60), true));
        assert!(horizon.is_due(minutes(27 * 60), true));
    }

    #[test]
    fn the_contract_budget_covers_two_products_but_not_450() {
        let now: DateTime<Utc> = "2026-11-22T05:07:00Z".parse().unwrap();
        let tiers = default_tiers();
        let budget = 30 * 1440;
        let small = plan(&tiers, 2, 7.0, 1, budget, now);
        assert!(small.iter().all(|tier| tier.covered == 1.0));
        let large = plan(&tiers, 450, 7.0, 1, budget, now);
        assert_eq!(large[0].calls_per_day, 450 * 96);
        assert_eq!(large[0].covered, 1.0);
        assert!(large[1..].iter().all(|tier| tier.covered == 0.0));
        // Running 2.5 days a week, the rest probed every 48 h: it all fits.
        let weekly = plan(&tiers, 450, 2.5, 1, budget, now);
        let wanted: u64 = weekly.iter().map(|tier| tier.calls_per_day).sum();
        assert!((38_000..41_000).contains(&wanted), "{weekly:?}");
        assert!(weekly.iter().all(|tier| tier.covered == 1.0));
    }

    #[test]
    fn ranges_cost_a_product_one_call_per_run_of_each_tier() {
        let now: DateTime<Utc> = "2026-11-22T05:07:00Z".parse().unwrap();
        let tiers = default_tiers();
        let per_product: Vec<u64> = plan(&tiers, 1, 7.0, 31, u64::MAX, now)
            .iter()
            .map(|tier| tier.calls_per_day)
            .collect();
        // today 96 runs of 1 day; the week's 6 days 6 times a day; month and horizon daily.
        assert_eq!(per_product, [96, 6, 1, 1]);
        let day_by_day: u64 = plan(&tiers, 1, 7.0, 1, u64::MAX, now)
            .iter()
            .map(|tier| tier.calls_per_day)
            .sum();
        assert_eq!(day_by_day, 185);
        // 43,200 calls a day: 415 products instead of 233.
        let budget = 30 * 1440;
        let fits = plan(&tiers, 415, 7.0, 31, budget, now);
        assert!(fits.iter().all(|tier| tier.covered == 1.0), "{fits:?}");
        // Running 2.5 days a week: today's quiet days are still probed, the rest ride along.
        let weekly: u64 = plan(&tiers, 450, 2.5, 31, budget, now)
            .iter()
            .map(|tier| tier.calls_per_day)
            .sum();
        assert!((18_000..21_000).contains(&weekly), "{weekly}");
    }
}
