//! The HTTP client for the partner's inventory API.

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{RequestBuilder, StatusCode, Url, redirect};

use super::error::{ClientBuildError, PartnerError};
use super::octo::{self, OctoOption};
use super::pacing::Pacer;
use super::wire;
use crate::domain::{DayFetch, ExperienceId, Secret};
use crate::telemetry::names;

/// Bodies larger than this are not inventory for one product-day; refuse to buffer them.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// How much of an error body is kept for messages.
const BODY_EXCERPT_CHARS: usize = 200;

/// Everything needed to talk to the partner.
#[derive(Debug, Clone)]
pub struct PartnerClientConfig {
    /// e.g. `https://partner.example.com`; may carry a path prefix.
    pub base_url: String,
    pub api_key: Secret,
    pub rate_limit_per_minute: NonZeroU32,
    /// For the whole exchange: connect, send, and read the full body.
    pub request_timeout: Duration,
    pub protocol: Protocol,
}

/// Which form of the partner API a client speaks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Protocol {
    /// Leap: `GET /api/v1/inventory/{id}?date=`, the key in `x-api-key`.
    #[default]
    Leap,
    /// OCTO: `POST /availability` for up to `days_per_call` consecutive days, the key as a
    /// bearer token; each experience's OCTO product and option (an experience not named is
    /// the product of its id, default option).
    Octo {
        products: HashMap<ExperienceId, OctoProductRef>,
        days_per_call: NonZeroU32,
    },
}

/// Where an experience is found at an OCTO supplier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OctoProductRef {
    pub product_id: String,
    /// `None`: the product's default option.
    pub option_id: Option<String>,
}

/// A cheap-to-clone handle on the partner API. All clones share one outbound rate limiter,
/// so every caller (tiers, manual triggers, backfill) draws from the same budget.
#[derive(Clone)]
pub struct PartnerClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base_url: Url,
    /// Kept only to scrub it out of any text that came back from the network.
    api_key: Secret,
    pacer: Pacer,
    request_timeout: Duration,
    protocol: Protocol,
    /// OCTO products' options as read from the supplier, once per process.
    octo_options: Mutex<HashMap<ExperienceId, OptionCell>>,
}

/// An OCTO product's option, once read.
type OptionCell = Arc<tokio::sync::OnceCell<Arc<OctoOption>>>;

/// The User-Agent of every call.
const USER_AGENT: &str = concat!("invsync/", env!("CARGO_PKG_VERSION"));

impl PartnerClient {
    pub fn new(config: PartnerClientConfig) -> Result<Self, ClientBuildError> {
        Self::with_user_agent(config, USER_AGENT.to_string())
    }

    /// Names `instance` in the User-Agent, so that the calls of several instances on one key
    /// can be told apart (by the partner's support, by the simulator's call log). A name that
    /// cannot go in a header is left out.
    pub fn for_instance(
        config: PartnerClientConfig,
        instance: &str,
    ) -> Result<Self, ClientBuildError> {
        let tagged = format!("{USER_AGENT} ({instance})");
        let user_agent = match HeaderValue::from_str(&tagged) {
            Ok(_) => tagged,
            Err(_) => USER_AGENT.to_string(),
        };
        Self::with_user_agent(config, user_agent)
    }

    fn with_user_agent(
        config: PartnerClientConfig,
        user_agent: String,
    ) -> Result<Self, ClientBuildError> {
        let base_url = parse_base_url(&config.base_url)?;
        if config.api_key.is_empty() {
            return Err(ClientBuildError::EmptyApiKey);
        }
        let key = match config.protocol {
            Protocol::Leap => config.api_key.expose().to_string(),
            Protocol::Octo { .. } => format!("Bearer {}", config.api_key.expose()),
        };
        let mut key_header =
            HeaderValue::from_str(&key).map_err(|_| ClientBuildError::InvalidApiKey)?;
        // Keeps the key out of reqwest's and hyper's Debug output.
        key_header.set_sensitive(true);
        let mut headers = HeaderMap::new();
        match config.protocol {
            Protocol::Leap => headers.insert("x-api-key", key_header),
            Protocol::Octo { .. } => headers.insert(AUTHORIZATION, key_header),
        };

        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(config.request_timeout)
            // A redirect could carry our key header to another host; treat it as an error.
            .redirect(redirect::Policy::none())
            .user_agent(user_agent)
            .build()
            .map_err(|error| ClientBuildError::Http(error.without_url().to_string()))?;

        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base_url,
                api_key: config.api_key,
                pacer: Pacer::new(config.rate_limit_per_minute, config.request_timeout),
                request_timeout: config.request_timeout,
                protocol: config.protocol,
                octo_options: Mutex::default(),
            }),
        })
    }

    /// The partner quota this client paces itself to.
    pub fn rate_limit_per_minute(&self) -> NonZeroU32 {
        self.inner.pacer.rate_limit_per_minute()
    }

    /// The spacing the pacer keeps between two calls.
    pub fn pacing_period(&self) -> Duration {
        self.inner.pacer.period()
    }

    /// Fetches one (experience, date): waits for the shared limiter, then makes exactly one
    /// request. It never retries; the sync engine owns retry policy (and wraps each attempt in
    /// a `partner_call{attempt}` span, so this call's log line carries its attempt number).
    ///
    /// Cancel-safe: dropping the future while it waits for the limiter spends no budget, so a
    /// pause can abandon queued fetches at once. Dropped once the request is out, the call
    /// counts against the window until its deadline, as the partner may still count it.
    pub async fn fetch_day(
        &self,
        experience: ExperienceId,
        date: NaiveDate,
    ) -> Result<DayFetch, PartnerError> {
        self.fetch_day_gated(experience, date, &|| true).await
    }

    /// [`PartnerClient::fetch_day`], asking `may_send` after the pacer's wait, right before
    /// the request goes out: the sync stops calling the moment its lease may have run out.
    pub async fn fetch_day_gated(
        &self,
        experience: ExperienceId,
        date: NaiveDate,
        may_send: &super::CallGate<'_>,
    ) -> Result<DayFetch, PartnerError> {
        let Protocol::Octo { products, .. } = &self.inner.protocol else {
            return self.fetch_leap_day(experience, date, may_send).await;
        };
        let mut days = self
            .fetch_octo_days(products, experience, &[date], may_send)
            .await?;
        days.pop().ok_or_else(|| PartnerError::Malformed {
            experience,
            date,
            detail: "no day in the answer".into(),
        })
    }

    /// The most days one call fetches: an OCTO range, or one Leap day.
    pub fn days_per_call(&self) -> NonZeroU32 {
        match &self.inner.protocol {
            Protocol::Leap => NonZeroU32::MIN,
            Protocol::Octo { days_per_call, .. } => *days_per_call,
        }
    }

    /// `dates` (consecutive, ascending) of one experience: one OCTO availability call for
    /// the range, or one Leap call per day.
    pub async fn fetch_days_gated(
        &self,
        experience: ExperienceId,
        dates: &[NaiveDate],
        may_send: &super::CallGate<'_>,
    ) -> Result<Vec<DayFetch>, PartnerError> {
        let Protocol::Octo { products, .. } = &self.inner.protocol else {
            let mut fetched = Vec::with_capacity(dates.len());
            for &date in dates {
                fetched.push(self.fetch_leap_day(experience, date, may_send).await?);
            }
            return Ok(fetched);
        };
        self.fetch_octo_days(products, experience, dates, may_send)
            .await
    }

    async fn fetch_leap_day(
        &self,
        experience: ExperienceId,
        date: NaiveDate,
        may_send: &super::CallGate<'_>,
    ) -> Result<DayFetch, PartnerError> {
        let request = self.inner.http.get(self.inventory_url(experience, date));
        self.paced(
            experience,
            date,
            may_send,
            request,
            |status, body, reset| {
                classify(experience, date, status, body, reset, |text| {
                    self.redact(text)
                })
            },
        )
        .await
    }

    /// `dates` (at least one) in one availability call, after the product's option (read
    /// once).
    async fn fetch_octo_days(
        &self,
        products: &HashMap<ExperienceId, OctoProductRef>,
        experience: ExperienceId,
        dates: &[NaiveDate],
        may_send: &super::CallGate<'_>,
    ) -> Result<Vec<DayFetch>, PartnerError> {
        let (Some(&first), Some(&last)) = (dates.first(), dates.last()) else {
            return Ok(Vec::new());
        };
        // Read once per product; the first of several concurrent fetches reads it for all.
        let cell = self.lock_options().entry(experience).or_default().clone();
        let option = cell
            .get_or_try_init(|| async {
                let product =
                    products
                        .get(&experience)
                        .cloned()
                        .unwrap_or_else(|| OctoProductRef {
                            product_id: experience.to_string(),
                            option_id: None,
                        });
                let request = self
                    .inner
                    .http
                    .get(self.octo_url(&["products", &product.product_id]));
                self.paced(
                    experience,
                    first,
                    may_send,
                    request,
                    |status, body, reset| {
                        self.classify_with(experience, first, status, body, reset, |body| {
                            octo::parse_product(body, product.option_id.as_deref())
                        })
                    },
                )
                .await
                .map(Arc::new)
            })
            .await?
            .clone();
        let body = serde_json::json!({
            "productId": option.product_id,
            "optionId": option.option_id,
            "localDateStart": first,
            "localDateEnd": last,
        });
        let request = self
            .inner
            .http
            .post(self.octo_url(&["availability"]))
            .header("octo-capabilities", octo::PRICING)
            .json(&body);
        self.paced(
            experience,
            first,
            may_send,
            request,
            |status, body, reset| {
                self.classify_with(experience, first, status, body, reset, |body| {
                    let days = octo::parse_availability(body, &option, dates)
                        .map_err(|error| error.to_string())?;
                    Ok(days
                        .into_iter()
                        .map(|(date, slots)| DayFetch::new(experience, date, slots))
                        .collect::<Vec<_>>())
                })
            },
        )
        .await
    }

    fn lock_options(&self) -> std::sync::MutexGuard<'_, HashMap<ExperienceId, OptionCell>> {
        // A map of cells: a panic cannot leave it half-written.
        self.inner
            .octo_options
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// One call: waits for the pacer, asks `may_send`, sends `request`, reads the answer and
    /// has `classify` judge it; the pacer learns how it went, and the call is logged and
    /// counted.
    async fn paced<T: Described>(
        &self,
        experience: ExperienceId,
        date: NaiveDate,
        may_send: &super::CallGate<'_>,
        request: RequestBuilder,
        classify: impl FnOnce(StatusCode, &[u8], Option<DateTime<Utc>>) -> Result<T, PartnerError>,
    ) -> Result<T, PartnerError> {
        let permit = self.inner.pacer.until_ready().await;
        if !may_send() {
            // Nothing sent: the slot is spent, which only slows the pace.
            permit.not_sent();
            return Err(PartnerError::Withheld);
        }
        let started = Instant::now();
        let (reached, result) = match self.exchange(request, experience, date).await {
            (reached, Ok(answer)) => (
                reached,
                classify(answer.status, &answer.body, answer.retry_after),
            ),
            (reached, Err(error)) => (reached, Err(error)),
        };
        match (reached, &result) {
            // The hold goes up as the permit goes, so no waiting caller slips out before it.
            (_, Err(PartnerError::RateLimited { reset_at })) => permit.rate_limited(*reset_at),
            (Reached::Answered(_), _) => permit.answered(),
            (Reached::NotSent, _) => permit.not_sent(),
            // The partner may still count it until its deadline, which dropping records.
            (Reached::Unanswered, _) => drop(permit),
        }
        let status = match reached {
            Reached::Answered(status) => Some(status),
            Reached::NotSent | Reached::Unanswered => None,
        };
        let latency = started.elapsed();
        let outcome = result.as_ref().map_or_else(PartnerError::code, |_| "ok");
        metrics::counter!(names::PARTNER_REQUESTS, "outcome" => outcome).increment(1);
        metrics::histogram!(names::PARTNER_REQUEST_DURATION, "outcome" => outcome).record(latency);
        let latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        let status = status.map(|status| status.as_u16());
        match &result {
            Ok(answer) => tracing::info!(
                %experience, %date, status, latency_ms, slots = answer.slots(),
                "partner {}", T::WHAT
            ),
            Err(error) => tracing::warn!(
                %experience, %date, status, latency_ms, error_code = error.code(), %error,
                "partner {} failed", T::WHAT
            ),
        }
        result
    }

    /// One HTTP round trip, its body read whole. Also returns how far it got, for the pacer
    /// and the log line.
    async fn exchange(
        &self,
        request: RequestBuilder,
        experience: ExperienceId,
        date: NaiveDate,
    ) -> (Reached, Result<Answer, PartnerError>) {
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                let reached = if error.is_connect() {
                    Reached::NotSent
                } else {
                    Reached::Unanswered
                };
                return (reached, Err(self.transport_error(error)));
            }
        };
        let status = response.status();
        let retry_after = retry_after(response.headers());

        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) if body.len() + chunk.len() > MAX_BODY_BYTES => {
                    let detail = format!("body exceeds {MAX_BODY_BYTES} bytes");
                    return (
                        Reached::Answered(status),
                        Err(PartnerError::Malformed {
                            experience,
                            date,
                            detail,
                        }),
                    );
                }
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(error) => {
                    return (Reached::Answered(status), Err(self.transport_error(error)));
                }
            }
        }
        let answer = Answer {
            status,
            body,
            retry_after,
        };
        (Reached::Answered(status), Ok(answer))
    }

    /// [`classify_with`] with this client's redaction.
    fn classify_with<T>(
        &self,
        experience: ExperienceId,
        date: NaiveDate,
        status: StatusCode,
        body: &[u8],
        retry_after: Option<DateTime<Utc>>,
        parse: impl FnOnce(&[u8]) -> Result<T, String>,
    ) -> Result<T, PartnerError> {
        classify_with(
            experience,
            date,
            status,
            body,
            retry_after,
            |text| self.redact(text),
            parse,
        )
    }

    fn transport_error(&self, error: reqwest::Error) -> PartnerError {
        let detail = if error.is_timeout() {
            format!(
                "no complete response within {:?}",
                self.inner.request_timeout
            )
        } else {
            // reqwest's own message is terse; the cause chain says what actually happened.
            let error = error.without_url();
            let mut detail = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                detail.push_str(": ");
                detail.push_str(&cause.to_string());
                source = cause.source();
            }
            detail
        };
        PartnerError::Transient {
            status: None,
            detail: self.redact(detail),
        }
    }

    /// `segments` under the OCTO base URL.
    fn octo_url(&self, segments: &[&str]) -> Url {
        let mut url = self.inner.base_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn inventory_url(&self, experience: ExperienceId, date: NaiveDate) -> Url {
        let mut url = self.inner.base_url.clone();
        // `parse_base_url` guarantees the URL can be a base, so this branch always runs.
        if let Ok(mut segments) = url.path_segments_mut() {
            segments
                .pop_if_empty()
                .extend(["api", "v1", "inventory", &experience.to_string()]);
        }
        url.query_pairs_mut()
            .append_pair("date", &date.format("%Y-%m-%d").to_string());
        url
    }

    /// The start of an error body, printable and scrubbed of the key (some servers echo it).
    fn redact(&self, text: String) -> String {
        let key = self.inner.api_key.expose();
        if key.is_empty() || !text.contains(key) {
            text
        } else {
            text.replace(key, "[redacted]")
        }
    }
}

/// A response, read whole.
struct Answer {
    status: StatusCode,
    body: Vec<u8>,
    /// From a `Retry-After` header (seconds or an HTTP date).
    retry_after: Option<DateTime<Utc>>,
}

/// What a call fetched, as its log line names it.
trait Described {
    const WHAT: &'static str;
    fn slots(&self) -> usize;
}

impl Described for DayFetch {
    const WHAT: &'static str = "fetch";
    fn slots(&self) -> usize {
        self.slots.len()
    }
}

impl Described for Vec<DayFetch> {
    const WHAT: &'static str = "fetch";
    fn slots(&self) -> usize {
        self.iter().map(|day| day.slots.len()).sum()
    }
}

impl Described for OctoOption {
    const WHAT: &'static str = "product";
    fn slots(&self) -> usize {
        0
    }
}

fn retry_after(headers: &HeaderMap) -> Option<DateTime<Utc>> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?;
    match text.trim().parse::<i64>() {
        Ok(seconds) => Some(Utc::now() + chrono::Duration::seconds(seconds.clamp(0, 3600))),
        Err(_) => DateTime::parse_from_rfc2822(text)
            .ok()
            .map(|at| at.with_timezone(&Utc)),
    }
}

/// How far one exchange got: what the pacer records as the call's answer time depends on it.
#[derive(Clone, Copy)]
enum Reached {
    /// No connection could be made: the request never left.
    NotSent,
    /// The request may have reached the partner, but no response came back.
    Unanswered,
    /// A response came back (its body read, cut off or refused).
    Answered(StatusCode),
}

impl fmt::Debug for PartnerClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartnerClient")
            .field("base_url", &self.inner.base_url.as_str())
            .field("api_key", &self.inner.api_key)
            .field("rate_limit_per_minute", &self.rate_limit_per_minute())
            .field("request_timeout", &self.inner.request_timeout)
            .finish_non_exhaustive()
    }
}

/// Turns one Leap answer into a fetched day or a classified error. `redact` scrubs the key
/// out of any text taken from the body (some servers echo it).
pub(crate) fn classify(
    experience: ExperienceId,
    date: NaiveDate,
    status: StatusCode,
    body: &[u8],
    retry_after: Option<DateTime<Utc>>,
    redact: impl Fn(String) -> String,
) -> Result<DayFetch, PartnerError> {
    classify_with(
        experience,
        date,
        status,
        body,
        retry_after,
        redact,
        |body| {
            wire::parse_day_body(body, date)
                .map(|slots| DayFetch::new(experience, date, slots))
                .map_err(|error| error.to_string())
        },
    )
}

/// Turns one answer of either kind into what `parse` reads from a success, or a classified
/// error: the status decides, whichever form of the API answered.
fn classify_with<T>(
    experience: ExperienceId,
    date: NaiveDate,
    status: StatusCode,
    body: &[u8],
    retry_after: Option<DateTime<Utc>>,
    redact: impl Fn(String) -> String,
    parse: impl FnOnce(&[u8]) -> Result<T, String>,
) -> Result<T, PartnerError> {
    let excerpt = |body: &[u8]| {
        redact(
            String::from_utf8_lossy(body)
                .chars()
                .take(BODY_EXCERPT_CHARS)
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect(),
        )
    };
    match status.as_u16() {
        200..=299 => parse(body).map_err(|detail| PartnerError::Malformed {
            experience,
            date,
            detail: redact(detail),
        }),
        429 => Err(PartnerError::RateLimited {
            reset_at: wire::rate_limit_reset(body).or(retry_after),
        }),
        code @ (401 | 403) => Err(PartnerError::Unauthorized { status: code }),
        // "Request Timeout" is the server giving up on us, not a verdict on the request.
        code @ (408 | 500..=599) => Err(PartnerError::Transient {
            status: Some(code),
            detail: excerpt(body),
        }),
        code @ 400..=499 => Err(PartnerError::BadRequest {
            status: code,
            body_excerpt: excerpt(body),
        }),
        code => Err(PartnerError::Malformed {
            experience,
            date,
            detail: format!("unexpected HTTP status {code} (redirects are not followed)"),
        }),
    }
}

fn parse_base_url(text: &str) -> Result<Url, ClientBuildError> {
    let invalid = |reason: &str| ClientBuildError::InvalidBaseUrl {
        url: text.to_string(),
        reason: reason.to_string(),
    };
    let url = Url::parse(text).map_err(|error| invalid(&error.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("scheme must be http or https"));
    }
    if url.cannot_be_a_base() || url.query().is_some() {
        return Err(invalid("must be a plain http(s) base without a query"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inventory_url_keeps_a_base_path_prefix() {
        let client = PartnerClient::new(PartnerClientConfig {
            base_url: "http://127.0.0.1:9/leap/".into(),
            api_key: Secret::new("k"),
            rate_limit_per_minute: NonZeroU32::new(30).expect("non-zero"),
            request_timeout: Duration::from_secs(1),
            protocol: Protocol::Leap,
        })
        .expect("builds");
        let date = NaiveDate::from_ymd_opt(2026, 12, 3).expect("date");
        let experience = ExperienceId::try_from(14).expect("id");
        assert_eq!(
            client.inventory_url(experience, date).as_str(),
            "http://127.0.0.1:9/leap/api/v1/inventory/14?date=2026-12-03"
        );
    }
}
