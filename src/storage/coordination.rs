//! Coordination of instances and operators: the persisted pause, the lease that lets one
//! instance poll the partner (and the fence an apply proves with it), and operators' requests
//! to re-sync, recorded for whichever instance holds the lease.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use super::StoreError;
use crate::domain::ExperienceId;

/// Each partner's sync pause, which survives restarts and is shared by every instance.
#[async_trait]
pub trait Pause: Send + Sync + 'static {
    /// The persisted pause state of `partner`'s sync; running when never paused.
    async fn sync_control(&self, partner: &str) -> Result<SyncControl, StoreError>;

    /// Pauses `partner`'s sync; pausing a paused sync keeps its original reason and time.
    async fn pause_sync(
        &self,
        partner: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<SyncControl, StoreError>;

    /// Resumes `partner`'s sync; resuming a running sync changes nothing.
    async fn resume_sync(
        &self,
        partner: &str,
        at: DateTime<Utc>,
    ) -> Result<SyncControl, StoreError>;
}

/// The partner-polling lease.
#[async_trait]
pub trait Leases: Send + Sync + 'static {
    /// Takes or renews the partner-polling lease for `holder` for `ttl`; `None` while another
    /// holder's lease is still running. Decided and stamped with the database's clock at a
    /// moment inside the call, so a granted lease runs out no earlier than `ttl` after the
    /// call started: the caller counts it down on its own monotonic clock from before the
    /// call, trusting no host's wall clock.
    async fn acquire_lease(
        &self,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<Lease>, StoreError>;

    /// The lease as it stands, whoever holds it.
    async fn current_lease(&self) -> Result<Lease, StoreError>;

    /// Hands the lease back early: it runs out `gap` from now by the database's clock (the
    /// pacing gap, so the next leader's first call keeps the rate).
    async fn release_lease(
        &self,
        lease: &Lease,
        gap: std::time::Duration,
    ) -> Result<(), StoreError>;
}

/// Operators' requests to re-sync a range now.
#[async_trait]
pub trait SyncRequests: Send + Sync + 'static {
    /// Records an operator's request to re-sync `from..=to` (one experience or all of a
    /// partner's), for whichever instance holds the lease.
    async fn request_sync(&self, request: &SyncRequest) -> Result<(), StoreError>;

    /// Takes every recorded request for `partner`'s sync (and any stored without a partner),
    /// oldest first; each is returned once.
    async fn take_sync_requests(&self, partner: &str) -> Result<Vec<SyncRequest>, StoreError>;
}

/// Whether operators (or a rejected API key) paused a partner's sync, why, and since when.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SyncControl {
    pub paused: bool,
    pub reason: Option<String>,
    pub changed_at: DateTime<Utc>,
}

impl SyncControl {
    /// A sync never paused.
    pub fn running() -> Self {
        Self {
            paused: false,
            reason: None,
            changed_at: DateTime::UNIX_EPOCH,
        }
    }
}

/// The right to poll the partner, held by one instance at a time.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Lease {
    pub holder: Option<String>,
    /// Grows with every change of holder: a write fenced with an older token is refused.
    pub token: i64,
    pub expires_at: DateTime<Utc>,
}

impl Lease {
    /// The lease after `holder` asks for it at `now` (the database's clock): renewed when it
    /// already holds it, taken over (with a new token) when it is free or has run out, `None`
    /// when someone else holds it.
    pub fn claimed_by(
        &self,
        holder: &str,
        now: DateTime<Utc>,
        ttl: std::time::Duration,
    ) -> Option<Lease> {
        let running = self.expires_at > now;
        let mine = self.holder.as_deref() == Some(holder);
        if running && !mine {
            return None;
        }
        Some(Lease {
            holder: Some(holder.to_string()),
            token: if running { self.token } else { self.token + 1 },
            expires_at: now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX),
        })
    }
}

/// What an apply must prove before it writes: the lease it acts under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub lease: Lease,
}

impl Fence {
    /// Refuses unless `current` (read under a lock in the apply's transaction) is still this
    /// fence's lease and has not run out at `now`, the database's clock.
    pub(crate) fn check(&self, current: &Lease, now: DateTime<Utc>) -> Result<(), StoreError> {
        if current.holder == self.lease.holder
            && current.token == self.lease.token
            && current.expires_at > now
        {
            Ok(())
        } else {
            Err(StoreError::LeaseLost)
        }
    }
}

/// An operator's request to re-sync a range of one partner's sync now: one experience, or
/// all of the partner's (`None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRequest {
    pub partner: String,
    pub experience: Option<ExperienceId>,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub requested_at: DateTime<Utc>,
}

/// A recorded request as stored, with the id it is taken by.
#[derive(sqlx::FromRow)]
pub(crate) struct StoredSyncRequest {
    pub id: i64,
    partner: Option<String>,
    experience_id: Option<String>,
    from_date: NaiveDate,
    to_date: NaiveDate,
    requested_at: DateTime<Utc>,
}

impl TryFrom<StoredSyncRequest> for SyncRequest {
    type Error = StoreError;
    fn try_from(stored: StoredSyncRequest) -> Result<Self, StoreError> {
        Ok(Self {
            partner: stored.partner.unwrap_or_default(),
            experience: stored
                .experience_id
                .map(ExperienceId::try_from)
                .transpose()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            from: stored.from_date,
            to: stored.to_date,
            requested_at: stored.requested_at,
        })
    }
}
