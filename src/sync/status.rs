//! What `GET /api/v1/sync/status` reports.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::ExperienceId;

/// The state of one partner's sync, or of every partner's together.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncStatus {
    /// The partner this is the sync of; absent where several partners' are summed up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner: Option<PartnerOf>,
    /// `running` or `paused` (for several partners: `paused` only when all are).
    pub state: &'static str,
    /// This instance's name in the sync lease.
    pub instance: String,
    /// `leader` (this instance polls the partner) or `follower`.
    pub role: &'static str,
    /// The instance holding the lease now, if any.
    pub leader: Option<String>,
    pub lease_expires_at: DateTime<Utc>,
    pub pause_reason: Option<String>,
    pub paused_since: Option<DateTime<Utc>>,
    /// Product-dates queued for a partner call.
    pub pending: usize,
    pub in_flight: usize,
    /// Days whose retries ran out this cycle; they are retried on the next cycle.
    pub parked: Vec<ParkedDay>,
    pub tiers: Vec<TierStatus>,
    pub counters: Counters,
    pub rate_limit_per_minute: u32,
    pub pacing_period_ms: u64,
    /// The most consecutive days of a product one partner call reads (1 but for OCTO).
    pub days_per_call: u32,
    pub last_error: Option<LastError>,
    pub freshness: Vec<Freshness>,
}

/// A partner by name and kind.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PartnerOf {
    pub name: String,
    /// `leap` or `octo`.
    pub kind: &'static str,
}

impl SyncStatus {
    pub fn is_paused(&self) -> bool {
        self.state == "paused"
    }

    /// Several partners' syncs as one: queues, parked days, counters and rate limits add up;
    /// each tier is named `partner/tier`; freshness is that of every product-date together.
    /// One partner's status is returned as it is; `None` for none.
    pub fn combine(statuses: &[SyncStatus]) -> Option<SyncStatus> {
        let (first, rest) = statuses.split_first()?;
        if rest.is_empty() {
            return Some(first.clone());
        }
        let all_paused = statuses.iter().all(SyncStatus::is_paused);
        let mut combined = first.clone();
        combined.partner = None;
        combined.state = if all_paused { "paused" } else { "running" };
        if !all_paused {
            combined.pause_reason = None;
            combined.paused_since = None;
        }
        combined.pending = statuses.iter().map(|s| s.pending).sum();
        combined.in_flight = statuses.iter().map(|s| s.in_flight).sum();
        combined.parked = statuses.iter().flat_map(|s| s.parked.clone()).collect();
        combined.tiers = statuses
            .iter()
            .flat_map(|s| {
                let partner = s.partner.as_ref().map_or("", |p| p.name.as_str());
                s.tiers.iter().map(move |tier| TierStatus {
                    name: format!("{partner}/{}", tier.name),
                    ..tier.clone()
                })
            })
            .collect();
        combined.counters = statuses.iter().fold(Counters::default(), |sum, s| {
            let c = &s.counters;
            Counters {
                calls: sum.calls + c.calls,
                rate_limited: sum.rate_limited + c.rate_limited,
                retries: sum.retries + c.retries,
                failures: sum.failures + c.failures,
                days_applied: sum.days_applied + c.days_applied,
                transfers_posted: sum.transfers_posted + c.transfers_posted,
            }
        });
        combined.rate_limit_per_minute = statuses.iter().map(|s| s.rate_limit_per_minute).sum();
        combined.pacing_period_ms = statuses.iter().map(|s| s.pacing_period_ms).min()?;
        combined.days_per_call = statuses.iter().map(|s| s.days_per_call).max()?;
        combined.last_error = statuses
            .iter()
            .filter_map(|s| s.last_error.clone())
            .max_by_key(|error| error.at);
        for (index, window) in combined.freshness.iter_mut().enumerate() {
            let windows: Vec<&Freshness> = statuses
                .iter()
                .filter_map(|s| s.freshness.get(index))
                .collect();
            window.product_dates = windows.iter().map(|w| w.product_dates).sum();
            window.never_fetched = windows.iter().map(|w| w.never_fetched).sum();
            window.oldest_fetch = windows.iter().filter_map(|w| w.oldest_fetch).min();
        }
        Some(combined)
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParkedDay {
    pub experience: ExperienceId,
    pub date: NaiveDate,
    pub error: String,
    pub since: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TierStatus {
    pub name: String,
    pub cron: String,
    pub first_day: u32,
    pub last_day: u32,
    pub last_start: Option<DateTime<Utc>>,
    pub last_finish: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
    pub next_run: Option<DateTime<Utc>>,
    /// Days the last run queued.
    pub last_queued: usize,
    /// Runs skipped because the previous run had not finished: the tier cannot keep up.
    pub skipped_runs: u64,
    /// True while the tier's previous run was still going when it fired again.
    pub behind: bool,
}

#[derive(Debug, Clone, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Counters {
    pub calls: u64,
    pub rate_limited: u64,
    pub retries: u64,
    pub failures: u64,
    pub days_applied: u64,
    pub transfers_posted: u64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastError {
    pub at: DateTime<Utc>,
    pub experience: ExperienceId,
    pub date: NaiveDate,
    pub code: &'static str,
    pub message: String,
}

/// How stale a window of days is: the oldest last fetch among its product-dates.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Freshness {
    /// `today`, `week` (today + 6 days) or `month` (today + 29 days).
    pub window: &'static str,
    pub product_dates: usize,
    pub never_fetched: usize,
    pub oldest_fetch: Option<DateTime<Utc>>,
}
