//! Tiers: which days are refreshed how often, what is due, and what the budget allows.

use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, Timelike, Utc};

use crate::config::TierSettings;

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

    /// A day fetched `age` ago is due again for this tier. A little slack keeps a day fetched
    /// just after the previous run from being skipped by the next one.
    pub fn is_due(&self, age: Duration, now: DateTime<Utc>) -> bool {
        age >= self.period(now).mul_f64(0.9)
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
fn owner(tiers: &[Tier], offset: u32, now: DateTime<Utc>) -> Option<usize> {
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
    /// Share of the tier's wanted calls the budget left for it (nearer tiers go first).
    pub covered: f64,
}

/// The daily budget split over the tiers, nearest tier first: each product-date costs one call
/// per run of the most frequent tier that covers it.
pub fn plan(
    tiers: &[Tier],
    products: u64,
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
            let runs_per_day = day.as_secs_f64() / tier.period(now).as_secs_f64().max(1.0);
            let calls_per_day = (products as f64 * owned_days as f64 * runs_per_day).ceil() as u64;
            let granted = calls_per_day.min(left);
            left -= granted;
            TierPlan {
                name: tier.name().to_string(),
                owned_days,
                runs_per_day,
                calls_per_day,
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
        let owned: Vec<usize> = plan(&tiers, 1, u64::MAX, now)
            .iter()
            .map(|t| t.owned_days)
            .collect();
        // today owns day 0, week days 1–6, month days 7–29, horizon days 30–59.
        assert_eq!(owned, [1, 6, 23, 30]);
    }

    #[test]
    fn the_contract_budget_covers_two_products_but_not_450() {
        let now: DateTime<Utc> = "2026-11-22T05:07:00Z".parse().unwrap();
        let tiers = default_tiers();
        let budget = 30 * 1440;
        let small = plan(&tiers, 2, budget, now);
        assert!(small.iter().all(|tier| tier.covered == 1.0));
        let large = plan(&tiers, 450, budget, now);
        assert_eq!(large[0].calls_per_day, 450 * 96);
        assert_eq!(large[0].covered, 1.0);
        assert!(large[1..].iter().all(|tier| tier.covered == 0.0));
    }
}
