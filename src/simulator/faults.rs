//! Failure injection: how often the simulated partner misbehaves, and how.

use std::time::Duration;

use rand::Rng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

/// Percentages of authenticated, non-rate-limited calls that fail in each way. They are
/// exclusive (one roll per call), so they must add up to at most 100.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Faults {
    /// `500` with a JSON error body.
    pub server_error_percent: u8,
    /// A correct answer sent only after `slow_delay_ms`: set it beyond the client's timeout.
    pub slow_percent: u8,
    pub slow_delay_ms: u64,
    /// `200` whose body is an HTML error page from a "proxy".
    pub garbage_percent: u8,
    /// `200` whose JSON stops halfway (a complete HTTP message with a cut-off document).
    pub truncated_percent: u8,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            server_error_percent: 0,
            slow_percent: 0,
            slow_delay_ms: 30_000,
            garbage_percent: 0,
            truncated_percent: 0,
        }
    }
}

/// How the simulator spoiled one call, as its call log records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Fault {
    ServerError,
    /// The answer was held back `slow_delay_ms`.
    Slow,
    Garbage,
    Truncated,
}

impl Faults {
    pub(super) fn total_percent(&self) -> u16 {
        [
            self.server_error_percent,
            self.slow_percent,
            self.garbage_percent,
            self.truncated_percent,
        ]
        .into_iter()
        .map(u16::from)
        .sum()
    }

    /// One roll of the seeded RNG decides the call's fate, so a seed replays the same run.
    pub(super) fn roll(&self, rng: &mut StdRng) -> Option<Fault> {
        let roll: u16 = rng.random_range(0..100);
        let bands = [
            (self.server_error_percent, Fault::ServerError),
            (self.slow_percent, Fault::Slow),
            (self.garbage_percent, Fault::Garbage),
            (self.truncated_percent, Fault::Truncated),
        ];
        let mut upper = 0u16;
        for (percent, fault) in bands {
            upper += u16::from(percent);
            if roll < upper {
                return Some(fault);
            }
        }
        None
    }

    pub(super) fn slow_delay(&self) -> Duration {
        Duration::from_millis(self.slow_delay_ms)
    }
}
