//! The simulator as a [`Partner`] without HTTP: the same answers, rate window, faults and call
//! log, classified exactly as the HTTP client classifies them, and paced by the same
//! [`Pacer`]. It runs on tokio's clock, so paused-clock tests and benchmarks can drive the real
//! engine through days of simulated time in seconds.

use std::num::NonZeroU32;
use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDate;

use super::Simulator;
use crate::domain::{DayFetch, ExperienceId};
use crate::partner::{CallGate, Pacer, Partner, PartnerError, classify};
use crate::sync::clock::Clock;

pub struct InProcessPartner {
    sim: Simulator,
    pacer: Pacer,
    clock: Clock,
    /// A slow answer beyond this counts as a timeout, as the HTTP client's would.
    request_timeout: Duration,
}

impl InProcessPartner {
    /// Calls `sim` with its own key, at most `rate_limit_per_minute`, stamping fetches with
    /// `clock` (share it with the engine).
    pub fn new(sim: Simulator, rate_limit_per_minute: NonZeroU32, clock: Clock) -> Self {
        let request_timeout = Duration::from_secs(20);
        Self {
            sim,
            pacer: Pacer::new(rate_limit_per_minute, request_timeout),
            clock,
            request_timeout,
        }
    }
}

#[async_trait]
impl Partner for InProcessPartner {
    async fn fetch_day_gated(
        &self,
        experience: ExperienceId,
        date: NaiveDate,
        may_send: &CallGate<'_>,
    ) -> Result<DayFetch, PartnerError> {
        let permit = self.pacer.until_ready().await;
        if !may_send() {
            permit.not_sent();
            return Err(PartnerError::Withheld);
        }
        let key = self.sim.shared.api_key.expose().to_string();
        let answer = self.sim.answer_partner_call(
            Some(&key),
            &experience.to_string(),
            Some(&date.format("%Y-%m-%d").to_string()),
        );
        if let Some(delay) = answer.delay {
            tokio::time::sleep(delay.min(self.request_timeout)).await;
            if delay >= self.request_timeout {
                // Unanswered: the dropped permit counts the call until its deadline.
                return Err(PartnerError::Transient {
                    status: None,
                    detail: format!("no complete response within {:?}", self.request_timeout),
                });
            }
        }
        let result = classify(
            experience,
            date,
            answer.status,
            &answer.body,
            None,
            |text| text,
        );
        match &result {
            Err(PartnerError::RateLimited { reset_at }) => permit.rate_limited(*reset_at),
            _ => permit.answered(),
        }
        result.map(|fetch| DayFetch {
            fetched_at: self.clock.now(),
            ..fetch
        })
    }

    fn rate_limit_per_minute(&self) -> NonZeroU32 {
        self.pacer.rate_limit_per_minute()
    }

    fn pacing_period(&self) -> Duration {
        self.pacer.period()
    }
}
