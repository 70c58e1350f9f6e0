//! What `GET /api/v1/sync/status` reports.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncStatus {
    /// `running` or `paused`.
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

impl SyncStatus {
    pub fn is_paused(&self) -> bool {
        self.state == "paused"
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParkedDay {
    pub experience: i64,
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
    pub experience: i64,
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
