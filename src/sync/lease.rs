//! This process's hold on the sync lease, as far as calling the partner goes.
//!
//! The database grants and judges the lease by its own clock: a lease granted for `ttl` runs
//! out no earlier than `ttl` after the claim call started (see [`Leases::acquire_lease`]).
//! So the hold is counted down on tokio's clock (monotonic time in production, the paused
//! clock in tests) from the instant before the claim call: it never outlives the lease,
//! whatever the hosts' wall clocks say, however long the call blocked. Partner calls stop a
//! margin earlier still. A process that stalls (GC, SIGSTOP, a slow database) wakes past its
//! deadline and withholds its calls until a renewal gets through.
//!
//! [`Leases::acquire_lease`]: crate::storage::Leases::acquire_lease

use std::time::Duration;

use tokio::time::Instant;

use crate::storage::{Lease, Store, StoreError};

/// How long before the hold ends partner calls stop: a fifth of the lease or more, so a
/// timer firing late or a call slow to reach the partner still lands inside the lease; and
/// one pacing period when the lease allows it, so a successor's first call comes at least
/// that long after this process's last and the pace holds across a takeover. At most half the
/// lease, so renewals every third of it keep the calls going.
pub fn call_margin(ttl: Duration, pacing_period: Duration) -> Duration {
    pacing_period.max(ttl / 5).min(ttl / 2)
}

/// The lease as held by this process, and until when it may call the partner under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenure {
    pub lease: Lease,
    /// No partner call starts at or after this instant.
    pub calls_until: Instant,
}

impl Tenure {
    /// The hold given by `lease`, granted for `ttl` by a claim call that started at `asked`.
    pub fn granted(lease: Lease, asked: Instant, ttl: Duration, margin: Duration) -> Self {
        Self {
            lease,
            calls_until: asked + ttl.saturating_sub(margin),
        }
    }

    pub fn may_call(&self) -> bool {
        Instant::now() < self.calls_until
    }
}

/// Claims or renews the lease for `holder`; `None` while another holder has it. A claim that
/// took so long that its hold has already ended is returned too: it allows no call.
pub async fn claim(
    store: &dyn Store,
    holder: &str,
    ttl: Duration,
    margin: Duration,
) -> Result<Option<Tenure>, StoreError> {
    let asked = Instant::now();
    let claimed = store.acquire_lease(holder, ttl).await?;
    Ok(claimed.map(|lease| Tenure::granted(lease, asked, ttl, margin)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease() -> Lease {
        Lease {
            holder: Some("a".into()),
            token: 1,
            expires_at: chrono::DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn the_margin_is_a_pacing_period_within_a_fifth_and_a_half_of_the_lease() {
        let s = Duration::from_secs;
        // 30 rpm under the default 10 s lease: one pacing period.
        assert_eq!(
            call_margin(s(10), Duration::from_millis(2010)),
            Duration::from_millis(2010)
        );
        // A fast pace: a fifth of the lease.
        assert_eq!(call_margin(s(10), Duration::from_millis(100)), s(2));
        // A slow pace: half the lease, no more.
        assert_eq!(call_margin(s(10), s(30)), s(5));
    }

    #[tokio::test(start_paused = true)]
    async fn the_hold_counts_from_before_the_claim_and_ends_a_margin_early() {
        let asked = Instant::now();
        // The claim call itself took 4 s (a slow database): those count against the hold.
        tokio::time::sleep(Duration::from_secs(4)).await;
        let tenure = Tenure::granted(
            lease(),
            asked,
            Duration::from_secs(10),
            Duration::from_secs(2),
        );
        assert_eq!(tenure.calls_until, asked + Duration::from_secs(8));
        assert!(tenure.may_call());
        tokio::time::sleep(Duration::from_millis(3999)).await;
        assert!(tenure.may_call());
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert!(!tenure.may_call(), "a call at the deadline");
    }

    #[tokio::test(start_paused = true)]
    async fn a_claim_that_blocked_past_its_hold_allows_no_call() {
        let asked = Instant::now();
        tokio::time::sleep(Duration::from_secs(9)).await;
        let tenure = Tenure::granted(
            lease(),
            asked,
            Duration::from_secs(10),
            Duration::from_secs(2),
        );
        assert!(!tenure.may_call());
    }
}
