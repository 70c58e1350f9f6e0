//! The client for the partner's ("Leap") inventory API: one rate-limited request per
//! (product, date), its response validated into domain types, and every failure classified
//! so the sync engine can decide between retrying, backing off and stopping.

mod client;
mod error;
pub mod octo;
mod pacing;
pub mod wire;

use std::num::NonZeroU32;
use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDate;

pub(crate) use client::classify;
pub use client::{OctoProductRef, PartnerClient, PartnerClientConfig, Protocol};
pub use error::{ClientBuildError, PartnerError};
pub use pacing::Pacer;

use crate::domain::{DayFetch, ExperienceId};

/// Asked right before a call is sent: `false` withholds it ([`PartnerError::Withheld`]).
pub type CallGate<'a> = dyn Fn() -> bool + Send + Sync + 'a;

/// Where the sync engine gets days from: the HTTP client in production, an in-process
/// simulator in paused-clock tests and benchmarks. Every implementation paces its calls.
#[async_trait]
pub trait Partner: Send + Sync + 'static {
    /// One day, asking `may_send` right before the request would go out. An implementation
    /// that waits (on its pacer) before sending asks after the wait, which may be long (a
    /// 429's hold).
    async fn fetch_day_gated(
        &self,
        experience: ExperienceId,
        date: NaiveDate,
        may_send: &CallGate<'_>,
    ) -> Result<DayFetch, PartnerError>;

    /// One day, sent whenever the pacer allows.
    async fn fetch_day(
        &self,
        experience: ExperienceId,
        date: NaiveDate,
    ) -> Result<DayFetch, PartnerError> {
        self.fetch_day_gated(experience, date, &|| true).await
    }

    /// The most days one call fetches; above 1, the sync asks for consecutive days of a
    /// product together ([`Partner::fetch_days_gated`]).
    fn days_per_call(&self) -> NonZeroU32 {
        NonZeroU32::MIN
    }

    /// The days `dates` (consecutive, ascending) of one experience, one fetch per date (a
    /// date without slots too), in as few calls as this partner allows: one per date unless
    /// it answers ranges. Fails whole: a failed range is the caller's to split.
    async fn fetch_days_gated(
        &self,
        experience: ExperienceId,
        dates: &[NaiveDate],
        may_send: &CallGate<'_>,
    ) -> Result<Vec<DayFetch>, PartnerError> {
        let mut fetched = Vec::with_capacity(dates.len());
        for &date in dates {
            fetched.push(self.fetch_day_gated(experience, date, may_send).await?);
        }
        Ok(fetched)
    }

    fn rate_limit_per_minute(&self) -> NonZeroU32;

    /// The spacing the pacer keeps between two calls.
    fn pacing_period(&self) -> Duration;
}

#[async_trait]
impl Partner for PartnerClient {
    async fn fetch_day_gated(
        &self,
        experience: ExperienceId,
        date: NaiveDate,
        may_send: &CallGate<'_>,
    ) -> Result<DayFetch, PartnerError> {
        PartnerClient::fetch_day_gated(self, experience, date, may_send).await
    }

    fn days_per_call(&self) -> NonZeroU32 {
        PartnerClient::days_per_call(self)
    }

    async fn fetch_days_gated(
        &self,
        experience: ExperienceId,
        dates: &[NaiveDate],
        may_send: &CallGate<'_>,
    ) -> Result<Vec<DayFetch>, PartnerError> {
        PartnerClient::fetch_days_gated(self, experience, dates, may_send).await
    }

    fn rate_limit_per_minute(&self) -> NonZeroU32 {
        PartnerClient::rate_limit_per_minute(self)
    }

    fn pacing_period(&self) -> Duration {
        PartnerClient::pacing_period(self)
    }
}
