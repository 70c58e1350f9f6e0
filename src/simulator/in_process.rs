//! The simulator as a [`Partner`] without HTTP: the same answers, rate window, faults and call
//! log, classified exactly as the HTTP client classifies them, and paced by the same
//! [`Pacer`]. It runs on tokio's clock, so paused-clock tests and benchmarks can drive the real
//! engine through days of simulated time in seconds.
//!
//! It speaks either form of the partner API: Leap ([`InProcessPartner::new`], one call per
//! product-date) or OCTO ([`InProcessPartner::octo`]: a product's option read once, then one
//! `POST /availability` call for up to `days_per_call` consecutive days), each call answered
//! by the simulator's own route code. [`InProcessPartner::with_latency`] gives every call a
//! network latency, with the pacer's permit held from sending to the answer, as the HTTP
//! client holds it.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use axum::http::StatusCode;
use chrono::{DateTime, NaiveDate, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::Simulator;
use super::http::PartnerAnswer;
use crate::domain::{DayFetch, ExperienceId};
use crate::partner::octo::{self, OctoOption};
use crate::partner::{CallGate, Pacer, Partner, PartnerError, classify};
use crate::sync::clock::Clock;

pub struct InProcessPartner {
    sim: Simulator,
    pacer: Pacer,
    clock: Clock,
    /// A slow answer beyond this counts as a timeout, as the HTTP client's would.
    request_timeout: Duration,
    kind: Kind,
    /// Each call's round trip, drawn uniformly; `None`: the simulator answers at once.
    latency: Option<Latency>,
}

/// Which form of the API is spoken.
enum Kind {
    Leap,
    Octo {
        days_per_call: NonZeroU32,
        /// Each product's option, read once (the first of concurrent fetches reads it).
        options: Mutex<HashMap<ExperienceId, OptionCell>>,
    },
}

type OptionCell = Arc<tokio::sync::OnceCell<Arc<OctoOption>>>;

struct Latency {
    range: RangeInclusive<Duration>,
    rng: Mutex<StdRng>,
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
            kind: Kind::Leap,
            latency: None,
        }
    }

    /// [`InProcessPartner::new`] speaking OCTO: `GET /octo/products/{id}` once per product
    /// (its default option), then `POST /octo/availability` with `octo/pricing` for up to
    /// `days_per_call` consecutive days in one call. Every call, the product read included,
    /// is paced, rate limited, faulted and logged.
    pub fn octo(
        sim: Simulator,
        rate_limit_per_minute: NonZeroU32,
        clock: Clock,
        days_per_call: NonZeroU32,
    ) -> Self {
        Self {
            kind: Kind::Octo {
                days_per_call,
                options: Mutex::default(),
            },
            ..Self::new(sim, rate_limit_per_minute, clock)
        }
    }

    /// Every call takes a round trip drawn uniformly from `latency` (seeded by `seed`): half
    /// of it before the simulator counts and answers the call, half on the way back. The
    /// pacer's permit is held from sending to the answer, so its window guard sees the
    /// answer times; a fetch is stamped when the simulator answered.
    #[must_use]
    pub fn with_latency(mut self, latency: RangeInclusive<Duration>, seed: u64) -> Self {
        self.latency = Some(Latency {
            range: latency,
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
        });
        self
    }

    fn api_key(&self) -> String {
        self.sim.shared.api_key.expose().to_string()
    }

    /// One call: waits for the pacer, asks `may_send`, has the simulator `answer` (after half
    /// the latency), waits out the rest of the latency and any slow fault, and has `judge`
    /// read the answer, given when the simulator answered. The pacer learns how it went.
    async fn call<T>(
        &self,
        may_send: &CallGate<'_>,
        answer: impl FnOnce() -> PartnerAnswer,
        judge: impl FnOnce(StatusCode, &[u8], DateTime<Utc>) -> Result<T, PartnerError>,
    ) -> Result<T, PartnerError> {
        let permit = self.pacer.until_ready().await;
        if !may_send() {
            permit.not_sent();
            return Err(PartnerError::Withheld);
        }
        let latency = self.latency.as_ref().map_or(Duration::ZERO, |latency| {
            let mut rng = latency.rng.lock().unwrap_or_else(PoisonError::into_inner);
            rng.random_range(latency.range.clone())
        });
        let there = latency / 2;
        if !there.is_zero() {
            tokio::time::sleep(there).await;
        }
        // The simulator counts the call, reads its inventory and answers now.
        let answer = answer();
        let answered_at = self.clock.now();
        let back = (latency - there) + answer.delay.unwrap_or_default();
        if there + back >= self.request_timeout {
            tokio::time::sleep(self.request_timeout.saturating_sub(there)).await;
            // Unanswered: the dropped permit counts the call until its deadline.
            return Err(PartnerError::Transient {
                status: None,
                detail: format!("no complete response within {:?}", self.request_timeout),
            });
        }
        if !back.is_zero() {
            tokio::time::sleep(back).await;
        }
        let result = judge(answer.status, &answer.body, answered_at);
        match &result {
            Err(PartnerError::RateLimited { reset_at }) => permit.rate_limited(*reset_at),
            _ => permit.answered(),
        }
        result
    }

    async fn fetch_leap_day(
        &self,
        experience: ExperienceId,
        date: NaiveDate,
        may_send: &CallGate<'_>,
    ) -> Result<DayFetch, PartnerError> {
        let key = self.api_key();
        let product_id = experience.to_string();
        let date_text = date.format("%Y-%m-%d").to_string();
        self.call(
            may_send,
            || {
                self.sim
                    .answer_partner_call(Some(&key), &product_id, Some(&date_text))
            },
            |status, body, answered_at| {
                classify(experience, date, status, body, None, |text| text).map(|fetch| DayFetch {
                    fetched_at: answered_at,
                    ..fetch
                })
            },
        )
        .await
    }

    /// `dates` (consecutive, ascending) in one availability call, after the product's option
    /// (read once, by a call of its own).
    async fn fetch_octo_days(
        &self,
        options: &Mutex<HashMap<ExperienceId, OptionCell>>,
        experience: ExperienceId,
        dates: &[NaiveDate],
        may_send: &CallGate<'_>,
    ) -> Result<Vec<DayFetch>, PartnerError> {
        let (Some(&first), Some(&last)) = (dates.first(), dates.last()) else {
            return Ok(Vec::new());
        };
        let key = self.api_key();
        let cell = options
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(experience)
            .or_default()
            .clone();
        let option = cell
            .get_or_try_init(|| async {
                let product_id = experience.to_string();
                self.call(
                    may_send,
                    || self.sim.answer_octo_product_call(Some(&key), &product_id),
                    |status, body, _| {
                        judge_octo(experience, first, status, body, |body| {
                            octo::parse_product(body, None)
                        })
                    },
                )
                .await
                .map(Arc::new)
            })
            .await?
            .clone();
        self.call(
            may_send,
            || {
                self.sim.answer_octo_availability_call(
                    Some(&key),
                    &option.product_id,
                    &option.option_id,
                    first,
                    last,
                )
            },
            |status, body, answered_at| {
                judge_octo(experience, first, status, body, |body| {
                    let days = octo::parse_availability(body, &option, dates)
                        .map_err(|error| error.to_string())?;
                    Ok(days
                        .into_iter()
                        .map(|(date, slots)| DayFetch {
                            fetched_at: answered_at,
                            ..DayFetch::new(experience, date, slots)
                        })
                        .collect())
                })
            },
        )
        .await
    }
}

/// An OCTO answer judged as the HTTP client judges it: a success is read by `parse` (a
/// failure is malformed), any other status is classified as on the Leap route.
fn judge_octo<T>(
    experience: ExperienceId,
    date: NaiveDate,
    status: StatusCode,
    body: &[u8],
    parse: impl FnOnce(&[u8]) -> Result<T, String>,
) -> Result<T, PartnerError> {
    if status.is_success() {
        return parse(body).map_err(|detail| PartnerError::Malformed {
            experience,
            date,
            detail,
        });
    }
    match classify(experience, date, status, body, None, |text| text) {
        Err(error) => Err(error),
        // Only a success is ever parsed, and this one is not.
        Ok(_) => Err(PartnerError::Malformed {
            experience,
            date,
            detail: format!("unexpected HTTP status {status}"),
        }),
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
        let Kind::Octo { options, .. } = &self.kind else {
            return self.fetch_leap_day(experience, date, may_send).await;
        };
        let mut days = self
            .fetch_octo_days(options, experience, &[date], may_send)
            .await?;
        days.pop().ok_or_else(|| PartnerError::Malformed {
            experience,
            date,
            detail: "no day in the answer".into(),
        })
    }

    fn days_per_call(&self) -> NonZeroU32 {
        match &self.kind {
            Kind::Leap => NonZeroU32::MIN,
            Kind::Octo { days_per_call, .. } => *days_per_call,
        }
    }

    async fn fetch_days_gated(
        &self,
        experience: ExperienceId,
        dates: &[NaiveDate],
        may_send: &CallGate<'_>,
    ) -> Result<Vec<DayFetch>, PartnerError> {
        match &self.kind {
            Kind::Leap => {
                let mut fetched = Vec::with_capacity(dates.len());
                for &date in dates {
                    fetched.push(self.fetch_leap_day(experience, date, may_send).await?);
                }
                Ok(fetched)
            }
            Kind::Octo { options, .. } => {
                self.fetch_octo_days(options, experience, dates, may_send)
                    .await
            }
        }
    }

    fn rate_limit_per_minute(&self) -> NonZeroU32 {
        self.pacer.rate_limit_per_minute()
    }

    fn pacing_period(&self) -> Duration {
        self.pacer.period()
    }
}
