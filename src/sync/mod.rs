//! The sync engine: fetch product-dates from the partner (paced by the client's global limiter,
//! retried with backoff) and apply each fetched day to the store in one transaction.

pub mod clock;
pub mod engine;
pub mod lease;
pub mod partners;
pub mod queue;
pub mod quiet;
pub mod real_time_store;
pub mod scheduler;
pub mod status;
pub mod tiers;

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use chrono::NaiveDate;
use futures::StreamExt;
use tracing::Instrument;

use crate::domain::{DayFetch, ExperienceId};
use crate::partner::{CallGate, Partner, PartnerError};
use crate::storage::{ApplyOutcome, Fence, Store, StoreError};
use lease::Tenure;

/// One unit of sync work: one product on one date (one partner call, or a day of a ranged
/// one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProductDate {
    pub date: NaiveDate,
    pub experience: ExperienceId,
}

impl std::fmt::Display for ProductDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "experience {} on {}", self.experience, self.date)
    }
}

/// The days the sync keeps: `today` and the following days, `horizon_days` in all.
pub fn horizon(today: NaiveDate, horizon_days: u32) -> (NaiveDate, NaiveDate) {
    let last = today
        .checked_add_days(chrono::Days::new(u64::from(horizon_days.saturating_sub(1))))
        .unwrap_or(today);
    (today, last)
}

/// Every product-date of `from..=to`, nearest date first.
pub fn product_dates(
    experiences: &[ExperienceId],
    from: NaiveDate,
    to: NaiveDate,
) -> impl Iterator<Item = ProductDate> + '_ {
    from.iter_days()
        .take_while(move |date| *date <= to)
        .flat_map(move |date| {
            experiences
                .iter()
                .map(move |&experience| ProductDate { date, experience })
        })
}

/// How transient partner failures are retried before a day is given up for this run.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub first_delay: Duration,
    pub max_delay: Duration,
    pub max_retries: usize,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retries: 5,
        }
    }
}

/// Fetches one day, retrying transient failures (5xx, timeouts, malformed bodies) with
/// exponential backoff and jitter. A 429 is retried as often as it takes: the partner's pacer
/// already holds every caller until the partner's reset, so nothing is lost and nothing
/// hammers. A rejected key or a bad request is returned at once, and so is
/// [`PartnerError::Withheld`]: `may_call` is asked right before every attempt is sent (after
/// the pacer's wait and any backoff), and a no ends the fetch without a call.
pub async fn fetch_with_retry(
    partner: &dyn Partner,
    day: ProductDate,
    policy: RetryPolicy,
    may_call: &CallGate<'_>,
    on_retry: impl FnMut(&PartnerError),
) -> Result<DayFetch, PartnerError> {
    with_retry(day, policy, on_retry, || {
        partner.fetch_day_gated(day.experience, day.date, may_call)
    })
    .await
}

/// Calls `call` until it succeeds, fails for good, or runs out of retries; see
/// [`fetch_with_retry`].
async fn with_retry<T, F: Future<Output = Result<T, PartnerError>>>(
    what: impl std::fmt::Display,
    policy: RetryPolicy,
    mut on_retry: impl FnMut(&PartnerError),
    mut call: impl FnMut() -> F,
) -> Result<T, PartnerError> {
    let backoff = ExponentialBuilder::default()
        .with_min_delay(policy.first_delay)
        .with_max_delay(policy.max_delay)
        .with_max_times(policy.max_retries)
        .with_jitter();
    // Counts every call, across 429 rounds too; the partner client's log line for each call
    // is emitted inside its `partner_call{attempt}` span.
    let mut attempt = 0_u32;
    loop {
        let result = (|| {
            attempt += 1;
            call().instrument(tracing::info_span!("partner_call", attempt))
        })
        .retry(backoff)
        .when(PartnerError::is_transient)
        .notify(|error, delay| {
            on_retry(error);
            tracing::warn!(%what, %error, retry_in_ms = delay.as_millis() as u64, "partner call failed, retrying");
        })
        .await;
        match result {
            Err(error @ PartnerError::RateLimited { .. }) => on_retry(&error),
            other => return other,
        }
    }
}

/// Consecutive days of one experience, fetched together where the partner answers ranges.
#[derive(Debug, Clone, Copy)]
struct Run<'a>(&'a [ProductDate]);

impl std::fmt::Display for Run<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.0.first(), self.0.last()) {
            (Some(first), Some(last)) if self.0.len() > 1 => write!(
                f,
                "experience {} from {} to {}",
                first.experience, first.date, last.date
            ),
            (Some(day), _) => day.fmt(f),
            _ => f.write_str("no day"),
        }
    }
}

/// What [`fetch_run_with_retry`] fetched: each day's fetch or error, and how many calls
/// were sent apart from the retries reported to `on_retry`.
pub struct RunFetched {
    pub days: Vec<(ProductDate, Result<DayFetch, PartnerError>)>,
    pub calls: u64,
}

/// A call's final attempt was sent unless it was withheld.
fn sent<T>(result: &Result<T, PartnerError>) -> u64 {
    u64::from(!matches!(result, Err(PartnerError::Withheld)))
}

/// Fetches `run` (consecutive days of one experience, ascending) in one call with retries, or
/// day by day when it is a single day. A range that still fails after its retries is split:
/// each of its days is fetched alone, so one bad day costs only itself. A rejected key or a
/// withheld call fails every day of the run at once.
pub async fn fetch_run_with_retry(
    partner: &dyn Partner,
    run: &[ProductDate],
    policy: RetryPolicy,
    may_call: &CallGate<'_>,
    mut on_retry: impl FnMut(&PartnerError),
) -> RunFetched {
    let [first, ..] = run else {
        return RunFetched {
            days: Vec::new(),
            calls: 0,
        };
    };
    if run.len() == 1 {
        let fetched = fetch_with_retry(partner, *first, policy, may_call, on_retry).await;
        return RunFetched {
            calls: sent(&fetched),
            days: vec![(*first, fetched)],
        };
    }
    let dates: Vec<NaiveDate> = run.iter().map(|day| day.date).collect();
    let ranged = with_retry(Run(run), policy, &mut on_retry, || {
        partner.fetch_days_gated(first.experience, &dates, may_call)
    })
    .await;
    let calls = sent(&ranged);
    match ranged {
        Ok(days) if days.len() == run.len() => RunFetched {
            days: run.iter().copied().zip(days.into_iter().map(Ok)).collect(),
            calls,
        },
        Err(error) if error.is_fatal() || matches!(error, PartnerError::Withheld) => RunFetched {
            days: run.iter().map(|&day| (day, Err(error.clone()))).collect(),
            calls,
        },
        outcome => {
            if let Err(error) = &outcome {
                tracing::warn!(run = %Run(run), %error, "a range kept failing; fetching its days one by one");
            }
            let mut fetched = RunFetched {
                days: Vec::with_capacity(run.len()),
                calls,
            };
            for &day in run {
                let alone = fetch_with_retry(partner, day, policy, may_call, &mut on_retry).await;
                fetched.calls += sent(&alone);
                fetched.days.push((day, alone));
            }
            fetched
        }
    }
}

/// `days` as runs for [`fetch_run_with_retry`]: consecutive dates of one experience, at most
/// `days_per_call` each, nearest first.
pub fn runs(
    days: impl IntoIterator<Item = ProductDate>,
    days_per_call: usize,
) -> Vec<Vec<ProductDate>> {
    let mut days: Vec<ProductDate> = days.into_iter().collect();
    days.sort_unstable_by_key(|day| (day.experience, day.date));
    days.dedup();
    let mut runs: Vec<Vec<ProductDate>> = Vec::new();
    for day in days {
        match runs.last_mut() {
            Some(run)
                if run.len() < days_per_call
                    && run.last().is_some_and(|last| {
                        last.experience == day.experience && last.date.succ_opt() == Some(day.date)
                    }) =>
            {
                run.push(day);
            }
            _ => runs.push(vec![day]),
        }
    }
    runs.sort_by_key(|run| run.first().map(|day| (day.date, day.experience)));
    runs
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("partner rejected the API key: {0}")]
    PartnerRejectedKey(PartnerError),
    #[error(
        "another instance ({holder}) holds the sync lease: a running daemon syncs this \
         database; ask it to re-sync with POST /api/v1/sync/trigger instead"
    )]
    LeaseHeldElsewhere { holder: String },
    #[error("claiming the sync lease: {0}")]
    Lease(#[source] StoreError),
    #[error(
        "the sync lease could not be kept (renewals failed, or another instance took it over); \
         partner calls stopped, the days not yet applied can be synced again"
    )]
    LeaseLost,
    #[error("applying {day}: {source}")]
    Store {
        day: ProductDate,
        #[source]
        source: StoreError,
    },
}

/// What one sync run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncSummary {
    pub fetched: usize,
    pub changed: usize,
    pub transfers: usize,
    /// Days still failing after every retry, with the last error: never silently skipped.
    pub failed: Vec<(ProductDate, String)>,
}

/// How many partner calls may wait on the limiter at once; the limiter, not this, sets the
/// pace, but a little overlap hides each call's latency.
const FETCHES_IN_FLIGHT: usize = 4;

/// Who a one-shot run claims the sync lease as, and for how long at a time.
#[derive(Debug, Clone)]
pub struct LeaseClaim {
    pub holder: String,
    pub ttl: Duration,
}

/// A one-shot run's hold on the lease, renewed by [`LeaseClaim::keep`] while the run goes on.
type Held = std::sync::Mutex<Option<Tenure>>;

fn held(held: &Held) -> std::sync::MutexGuard<'_, Option<Tenure>> {
    // Plain data that a panic cannot leave half-updated.
    held.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl LeaseClaim {
    /// Takes the lease; a run never calls the partner while a daemon holds it.
    async fn take(&self, store: &dyn Store, margin: Duration) -> Result<Tenure, SyncError> {
        match lease::claim(store, &self.holder, self.ttl, margin).await {
            Ok(Some(tenure)) if tenure.may_call() => Ok(tenure),
            Ok(Some(_)) => Err(SyncError::LeaseLost),
            Ok(None) => Err(SyncError::LeaseHeldElsewhere {
                holder: store
                    .current_lease()
                    .await
                    .ok()
                    .and_then(|lease| lease.holder)
                    .unwrap_or_default(),
            }),
            Err(error) => Err(SyncError::Lease(error)),
        }
    }

    /// Renews the lease every third of its length for as long as it is polled, also while
    /// the run waits on a 429's hold or a backoff. A renewal counts from before its call, so
    /// one that blocks extends nothing; once another holder has the lease, the hold is gone
    /// and the run's calls are withheld.
    async fn keep(&self, store: &dyn Store, margin: Duration, hold: &Held) -> Infallible {
        loop {
            tokio::time::sleep(self.ttl / 3).await;
            match lease::claim(store, &self.holder, self.ttl, margin).await {
                Ok(Some(renewed)) => {
                    let mut current = held(hold);
                    if current
                        .as_ref()
                        .is_some_and(|tenure| tenure.calls_until < renewed.calls_until)
                    {
                        *current = Some(renewed);
                    }
                }
                Ok(None) => {
                    tracing::warn!("another instance took the sync lease; stopping calls");
                    *held(hold) = None;
                    return std::future::pending().await;
                }
                // Nothing extended: the hold runs out at its deadline unless a renewal passes.
                Err(error) => tracing::warn!(%error, "cannot renew the sync lease"),
            }
        }
    }
}

/// Fetches and applies every day, in order of proximity, holding the sync lease so no other
/// instance polls meanwhile. A bad API key, a lease held elsewhere, a lease that cannot be
/// kept or a store failure stops the run; a day that keeps failing is reported in the
/// summary.
pub async fn sync_days(
    partner: &dyn Partner,
    store: &dyn Store,
    days: impl IntoIterator<Item = ProductDate>,
    policy: RetryPolicy,
    claim: &LeaseClaim,
) -> Result<SyncSummary, SyncError> {
    let margin = lease::call_margin(claim.ttl, partner.pacing_period());
    let hold: Held = std::sync::Mutex::new(Some(claim.take(store, margin).await?));
    let lease = held(&hold).as_ref().map(|tenure| tenure.lease.clone());
    let outcome = tokio::select! {
        outcome = fetch_and_apply(partner, store, days, policy, &hold) => outcome,
        never = claim.keep(store, margin, &hold) => match never {},
    };
    // Hand the lease back: a daemon may take over one pacing period after our last call.
    let lease = held(&hold).take().map(|tenure| tenure.lease).or(lease);
    if let Some(lease) = lease
        && let Err(error) = store.release_lease(&lease, partner.pacing_period()).await
    {
        tracing::warn!(%error, "cannot hand the sync lease back; it runs out by itself");
    }
    outcome
}

async fn fetch_and_apply(
    partner: &dyn Partner,
    store: &dyn Store,
    days: impl IntoIterator<Item = ProductDate>,
    policy: RetryPolicy,
    hold: &Held,
) -> Result<SyncSummary, SyncError> {
    let may_call = || held(hold).as_ref().is_some_and(Tenure::may_call);
    let may_call: &CallGate<'_> = &may_call;
    let days_per_call = partner.days_per_call().get() as usize;
    let mut fetches = futures::stream::iter(runs(days, days_per_call))
        .map(|run| async move {
            futures::stream::iter(
                fetch_run_with_retry(partner, &run, policy, may_call, |_| {})
                    .await
                    .days,
            )
        })
        .buffered(FETCHES_IN_FLIGHT)
        .flatten();
    let mut summary = SyncSummary::default();
    while let Some((day, fetched)) = fetches.next().await {
        let fetch = match fetched {
            Ok(fetch) => fetch,
            Err(PartnerError::Withheld) => return Err(SyncError::LeaseLost),
            Err(error) if error.is_fatal() => return Err(SyncError::PartnerRejectedKey(error)),
            Err(error) => {
                tracing::error!(%day, %error, "giving up on this day for this run");
                summary.failed.push((day, error.to_string()));
                continue;
            }
        };
        summary.fetched += 1;
        // The database refuses the write if the lease is no longer this one.
        let Some(lease) = held(hold).as_ref().map(|tenure| tenure.lease.clone()) else {
            return Err(SyncError::LeaseLost);
        };
        let outcome = store
            .apply_fetch(&fetch, Some(&Fence { lease }))
            .await
            .map_err(|source| SyncError::Store { day, source })?;
        if let ApplyOutcome::Applied { transfers, .. } = outcome
            && transfers > 0
        {
            summary.changed += 1;
            summary.transfers += transfers;
        }
        tracing::info!(%day, slots = fetch.slots.len(), ?outcome, "applied");
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_dates_go_nearest_first_and_cover_the_range() {
        let ids: Vec<ExperienceId> = [14, 15]
            .map(|id| ExperienceId::try_from(id).unwrap())
            .into();
        let from = NaiveDate::from_ymd_opt(2026, 12, 30).unwrap();
        let to = NaiveDate::from_ymd_opt(2027, 1, 2).unwrap();
        let days: Vec<_> = product_dates(&ids, from, to).collect();
        assert_eq!(days.len(), 8);
        assert!(days.windows(2).all(|pair| pair[0].date <= pair[1].date));
        assert_eq!(days[7].date, to);
    }
}
