//! A store for simulated time: every call runs on a runtime of its own with a real clock,
//! awaited through `spawn_blocking`. Tokio does not auto-advance a paused clock while a
//! blocking task runs, so under a paused clock simulated time moves only while the engine
//! really waits (pacer, backoff, schedule), never because a database round trip took real time.
//! Paused-clock tests and benchmarks put the real store behind it.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};

use crate::domain::{DatePrice, DayFetch, ExperienceId};
use crate::storage::{
    ApplyOutcome, Fence, Inventory, LastFetch, Lease, Leases, Ledger, Mirror, Pause, ServedSlot,
    SlotHistory, Store, StoreError, SyncControl, SyncRequest, SyncRequests,
};

/// The real store, reached so that its work takes no simulated time (see the module).
pub struct RealTimeStore {
    runtime: Option<tokio::runtime::Runtime>,
    inner: Arc<dyn Store>,
}

impl RealTimeStore {
    /// Opens the store at `url` on a runtime of its own.
    pub async fn connect(url: &str) -> anyhow::Result<Arc<dyn Store>> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let url = url.to_string();
        let inner = runtime
            .spawn(async move { crate::storage::connect(&url).await })
            .await??;
        Ok(Arc::new(Self {
            runtime: Some(runtime),
            inner,
        }))
    }

    async fn call<T, F>(&self, operation: impl FnOnce(Arc<dyn Store>) -> F + Send + 'static) -> T
    where
        T: Send + 'static,
        F: std::future::Future<Output = T> + Send + 'static,
    {
        let handle = self
            .runtime
            .as_ref()
            .expect("runtime lives as long as the store")
            .handle()
            .clone();
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || handle.block_on(operation(inner)))
            .await
            .expect("store call")
    }
}

impl Drop for RealTimeStore {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[async_trait::async_trait]
impl Inventory for RealTimeStore {
    async fn experience_exists(&self, id: ExperienceId) -> Result<bool, StoreError> {
        self.call(move |s| async move { s.experience_exists(id).await })
            .await
    }

    async fn slots_between(
        &self,
        id: ExperienceId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<ServedSlot>, StoreError> {
        self.call(move |s| async move { s.slots_between(id, from, to).await })
            .await
    }

    async fn sellable_dates(
        &self,
        id: ExperienceId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DatePrice>, StoreError> {
        self.call(move |s| async move { s.sellable_dates(id, from, to).await })
            .await
    }

    async fn booking_version(
        &self,
        id: ExperienceId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<i64, StoreError> {
        self.call(move |s| async move { s.booking_version(id, from, to).await })
            .await
    }
}

#[async_trait::async_trait]
impl Mirror for RealTimeStore {
    async fn ensure_experiences(&self, ids: &[ExperienceId]) -> Result<(), StoreError> {
        let ids = ids.to_vec();
        self.call(move |s| async move { s.ensure_experiences(&ids).await })
            .await
    }

    async fn apply_fetch(
        &self,
        fetch: &DayFetch,
        fence: Option<&Fence>,
    ) -> Result<ApplyOutcome, StoreError> {
        let fetch = fetch.clone();
        let fence = fence.cloned();
        self.call(move |s| async move { s.apply_fetch(&fetch, fence.as_ref()).await })
            .await
    }

    async fn last_fetches(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<LastFetch>, StoreError> {
        self.call(move |s| async move { s.last_fetches(from, to).await })
            .await
    }
}

#[async_trait::async_trait]
impl Ledger for RealTimeStore {
    async fn slot_history(
        &self,
        id: ExperienceId,
        date: NaiveDate,
        start: NaiveTime,
    ) -> Result<Option<SlotHistory>, StoreError> {
        self.call(move |s| async move { s.slot_history(id, date, start).await })
            .await
    }

    async fn verify(&self) -> Result<crate::ledger::VerifyReport, StoreError> {
        self.call(|s| async move { s.verify().await }).await
    }
}

#[async_trait::async_trait]
impl Pause for RealTimeStore {
    async fn sync_control(&self, partner: &str) -> Result<SyncControl, StoreError> {
        let partner = partner.to_string();
        self.call(move |s| async move { s.sync_control(&partner).await })
            .await
    }

    async fn pause_sync(
        &self,
        partner: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<SyncControl, StoreError> {
        let (partner, reason) = (partner.to_string(), reason.to_string());
        self.call(move |s| async move { s.pause_sync(&partner, &reason, at).await })
            .await
    }

    async fn resume_sync(
        &self,
        partner: &str,
        at: DateTime<Utc>,
    ) -> Result<SyncControl, StoreError> {
        let partner = partner.to_string();
        self.call(move |s| async move { s.resume_sync(&partner, at).await })
            .await
    }
}

#[async_trait::async_trait]
impl Leases for RealTimeStore {
    async fn acquire_lease(
        &self,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<Lease>, StoreError> {
        let holder = holder.to_string();
        self.call(move |s| async move { s.acquire_lease(&holder, ttl).await })
            .await
    }

    async fn current_lease(&self) -> Result<Lease, StoreError> {
        self.call(|s| async move { s.current_lease().await }).await
    }

    async fn release_lease(
        &self,
        lease: &Lease,
        gap: std::time::Duration,
    ) -> Result<(), StoreError> {
        let lease = lease.clone();
        self.call(move |s| async move { s.release_lease(&lease, gap).await })
            .await
    }
}

#[async_trait::async_trait]
impl SyncRequests for RealTimeStore {
    async fn request_sync(&self, request: &SyncRequest) -> Result<(), StoreError> {
        let request = request.clone();
        self.call(move |s| async move { s.request_sync(&request).await })
            .await
    }

    async fn take_sync_requests(&self, partner: &str) -> Result<Vec<SyncRequest>, StoreError> {
        let partner = partner.to_string();
        self.call(move |s| async move { s.take_sync_requests(&partner).await })
            .await
    }
}

// Bookings are not driven under simulated time: they reach the real store directly.
crate::forward_store!(RealTimeStore => inner: Bookings);
