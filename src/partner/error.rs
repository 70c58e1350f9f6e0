//! What can go wrong talking to the partner, classified by what the caller should do next.
//!
//! No variant carries a `reqwest::Error` or a URL: messages are built from redacted text so
//! the API key can never leak through `Display` or `Debug`.

use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::ExperienceId;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartnerError {
    /// `429`: the key's quota is used up (possibly by another client on the same key).
    /// `reset_at` comes from the body's `rateLimitState.reset`; `None` when the body was odd.
    #[error("partner rate limit exceeded ({})", describe_reset(.reset_at))]
    RateLimited { reset_at: Option<DateTime<Utc>> },

    /// `401`/`403`: the key is wrong or revoked. Retrying cannot help and hammers the partner.
    #[error("partner rejected the API key (HTTP {status})")]
    Unauthorized { status: u16 },

    /// Any other `4xx` (e.g. `404` for a product the partner does not know).
    #[error("partner rejected the request (HTTP {status}): {body_excerpt}")]
    BadRequest { status: u16, body_excerpt: String },

    /// `5xx`, timeouts, connection failures, a body cut off by the connection.
    #[error("partner unavailable{}: {detail}", describe_status(.status))]
    Transient { status: Option<u16>, detail: String },

    /// A response that arrived complete but cannot be trusted: invalid JSON, wrong types,
    /// values the domain rejects, an unexpected status.
    #[error("malformed partner response for experience {experience} on {date}: {detail}")]
    Malformed {
        experience: ExperienceId,
        date: NaiveDate,
        detail: String,
    },

    /// Not sent: the caller's gate said no right before sending (this instance may no longer
    /// hold the sync lease). The partner saw nothing.
    #[error("call withheld: this instance may no longer hold the sync lease")]
    Withheld,
}

impl PartnerError {
    /// Worth trying the same (product, date) again later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::RateLimited { .. }) || self.is_transient()
    }

    /// A failure of this one exchange (5xx, timeout, broken or garbled body): retry it with
    /// backoff.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. } | Self::Malformed { .. })
    }

    /// Stop polling and tell an operator: nothing will work until the key is fixed.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Self::Unauthorized { .. })
    }

    /// A stable machine code for status endpoints, metrics and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::RateLimited { .. } => "rate_limited",
            Self::Unauthorized { .. } => "unauthorized",
            Self::BadRequest { .. } => "bad_request",
            Self::Transient { .. } => "transient",
            Self::Malformed { .. } => "malformed",
            Self::Withheld => "withheld",
        }
    }
}

/// The client could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum ClientBuildError {
    #[error("partner base URL {url:?} is invalid: {reason}")]
    InvalidBaseUrl { url: String, reason: String },
    #[error("partner API key is empty")]
    EmptyApiKey,
    #[error("partner API key contains characters not allowed in an HTTP header")]
    InvalidApiKey,
    #[error("could not build the HTTP client: {0}")]
    Http(String),
}

fn describe_reset(reset_at: &Option<DateTime<Utc>>) -> String {
    match reset_at {
        Some(at) => format!("quota resets at {}", at.to_rfc3339()),
        None => "no reset time given".to_string(),
    }
}

fn describe_status(status: &Option<u16>) -> String {
    match status {
        Some(status) => format!(" (HTTP {status})"),
        None => String::new(),
    }
}
