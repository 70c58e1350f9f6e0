//! Wall-clock time that advances with tokio's clock, so a test with a paused clock moves
//! "now" and "today" for the whole engine, and production gets real time.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin_utc: DateTime<Utc>,
    origin: Instant,
}

impl Clock {
    /// Real time, from now on.
    pub fn system() -> Self {
        Self::starting_at(Utc::now())
    }

    /// A clock that reads `origin_utc` now and advances with tokio's clock.
    pub fn starting_at(origin_utc: DateTime<Utc>) -> Self {
        Self {
            origin_utc,
            origin: Instant::now(),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.at(Instant::now())
    }

    /// What this clock read (or will read) at `instant`.
    pub fn at(&self, instant: Instant) -> DateTime<Utc> {
        let elapsed = chrono::Duration::from_std(instant.saturating_duration_since(self.origin))
            .unwrap_or_default();
        self.origin_utc + elapsed
    }

    /// Today's calendar date in the partner's time zone.
    pub fn today(&self, zone: Tz) -> NaiveDate {
        self.now().with_timezone(&zone).date_naive()
    }
}
