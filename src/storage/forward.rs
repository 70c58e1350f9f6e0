//! Pass-throughs for decorators, written once: a store that wraps another implements the
//! concerns it changes and forwards the rest with [`forward_store!`](crate::forward_store).

/// Implements the named concerns for `$store` by handing every call to `self.$inner` (an
/// `Arc<dyn Store>`), e.g. `forward_store!(CachedStore => inner: Ledger, Pause, SyncRequests)`.
/// Every concern but [`Leases`](crate::storage::Leases), which each decorator so far changes.
#[macro_export]
macro_rules! forward_store {
    ($store:ty => $inner:ident: $($concern:ident),+ $(,)?) => {
        $($crate::forward_store!(@$concern $store, $inner);)+
    };
    (@Inventory $store:ty, $inner:ident) => {
        #[::async_trait::async_trait]
        impl $crate::storage::Inventory for $store {
            async fn experience_exists(
                &self,
                id: $crate::domain::ExperienceId,
            ) -> ::std::result::Result<bool, $crate::storage::StoreError> {
                self.$inner.experience_exists(id).await
            }
            async fn slots_between(
                &self,
                id: $crate::domain::ExperienceId,
                from: ::chrono::NaiveDate,
                to: ::chrono::NaiveDate,
            ) -> ::std::result::Result<Vec<$crate::storage::ServedSlot>, $crate::storage::StoreError> {
                self.$inner.slots_between(id, from, to).await
            }
            async fn sellable_dates(
                &self,
                id: $crate::domain::ExperienceId,
                from: ::chrono::NaiveDate,
                to: ::chrono::NaiveDate,
            ) -> ::std::result::Result<Vec<$crate::domain::DatePrice>, $crate::storage::StoreError> {
                self.$inner.sellable_dates(id, from, to).await
            }
            async fn booking_version(
                &self,
                id: $crate::domain::ExperienceId,
                from: ::chrono::NaiveDate,
                to: ::chrono::NaiveDate,
            ) -> ::std::result::Result<i64, $crate::storage::StoreError> {
                self.$inner.booking_version(id, from, to).await
            }
        }
    };
    (@Mirror $store:ty, $inner:ident) => {
        #[::async_trait::async_trait]
        impl $crate::storage::Mirror for $store {
            async fn ensure_experiences(
                &self,
                ids: &[$crate::domain::ExperienceId],
            ) -> ::std::result::Result<(), $crate::storage::StoreError> {
                self.$inner.ensure_experiences(ids).await
            }
            async fn apply_fetch(
                &self,
                fetch: &$crate::domain::DayFetch,
                fence: Option<&$crate::storage::Fence>,
            ) -> ::std::result::Result<$crate::storage::ApplyOutcome, $crate::storage::StoreError> {
                self.$inner.apply_fetch(fetch, fence).await
            }
            async fn last_fetches(
                &self,
                from: ::chrono::NaiveDate,
                to: ::chrono::NaiveDate,
            ) -> ::std::result::Result<Vec<$crate::storage::LastFetch>, $crate::storage::StoreError> {
                self.$inner.last_fetches(from, to).await
            }
        }
    };
    (@Ledger $store:ty, $inner:ident) => {
        #[::async_trait::async_trait]
        impl $crate::storage::Ledger for $store {
            async fn slot_history(
                &self,
                id: $crate::domain::ExperienceId,
                date: ::chrono::NaiveDate,
                start_time: ::chrono::NaiveTime,
            ) -> ::std::result::Result<Option<$crate::storage::SlotHistory>, $crate::storage::StoreError> {
                self.$inner.slot_history(id, date, start_time).await
            }
            async fn verify(
                &self,
            ) -> ::std::result::Result<$crate::ledger::VerifyReport, $crate::storage::StoreError> {
                self.$inner.verify().await
            }
        }
    };
    (@Pause $store:ty, $inner:ident) => {
        #[::async_trait::async_trait]
        impl $crate::storage::Pause for $store {
            async fn sync_control(
                &self,
                partner: &str,
            ) -> ::std::result::Result<$crate::storage::SyncControl, $crate::storage::StoreError> {
                self.$inner.sync_control(partner).await
            }
            async fn pause_sync(
                &self,
                partner: &str,
                reason: &str,
                at: ::chrono::DateTime<::chrono::Utc>,
            ) -> ::std::result::Result<$crate::storage::SyncControl, $crate::storage::StoreError> {
                self.$inner.pause_sync(partner, reason, at).await
            }
            async fn resume_sync(
                &self,
                partner: &str,
                at: ::chrono::DateTime<::chrono::Utc>,
            ) -> ::std::result::Result<$crate::storage::SyncControl, $crate::storage::StoreError> {
                self.$inner.resume_sync(partner, at).await
            }
        }
    };
    (@SyncRequests $store:ty, $inner:ident) => {
        #[::async_trait::async_trait]
        impl $crate::storage::SyncRequests for $store {
            async fn request_sync(
                &self,
                request: &$crate::storage::SyncRequest,
            ) -> ::std::result::Result<(), $crate::storage::StoreError> {
                self.$inner.request_sync(request).await
            }
            async fn take_sync_requests(
                &self,
                partner: &str,
            ) -> ::std::result::Result<Vec<$crate::storage::SyncRequest>, $crate::storage::StoreError> {
                self.$inner.take_sync_requests(partner).await
            }
        }
    };
    (@Bookings $store:ty, $inner:ident) => {
        #[::async_trait::async_trait]
        impl $crate::storage::Bookings for $store {
            async fn hold_shortfall(
                &self,
                key: &str,
                request: &$crate::storage::HoldRequest,
                now: ::chrono::DateTime<::chrono::Utc>,
            ) -> ::std::result::Result<
                Option<$crate::ledger::booking::InsufficientCapacity>,
                $crate::storage::StoreError,
            > {
                self.$inner.hold_shortfall(key, request, now).await
            }
            async fn hold_batch(
                &self,
                holds: &[$crate::storage::KeyedHold],
                now: ::chrono::DateTime<::chrono::Utc>,
            ) -> ::std::result::Result<
                Vec<$crate::storage::HoldOutcome>,
                $crate::storage::StoreError,
            > {
                self.$inner.hold_batch(holds, now).await
            }
            async fn booking(
                &self,
                id: ::uuid::Uuid,
                now: ::chrono::DateTime<::chrono::Utc>,
            ) -> ::std::result::Result<Option<$crate::storage::Booking>, $crate::storage::StoreError> {
                self.$inner.booking(id, now).await
            }
            async fn amend_booking(
                &self,
                id: ::uuid::Uuid,
                amendment: &$crate::storage::Amendment,
                now: ::chrono::DateTime<::chrono::Utc>,
            ) -> ::std::result::Result<
                ::std::result::Result<$crate::storage::Booking, $crate::storage::Refusal>,
                $crate::storage::StoreError,
            > {
                self.$inner.amend_booking(id, amendment, now).await
            }
            async fn reseller_bookings(
                &self,
                query: &$crate::storage::ResellerQuery,
                now: ::chrono::DateTime<::chrono::Utc>,
            ) -> ::std::result::Result<
                Vec<$crate::storage::ResellerBooking>,
                $crate::storage::StoreError,
            > {
                self.$inner.reseller_bookings(query, now).await
            }
            async fn due_holds(
                &self,
                now: ::chrono::DateTime<::chrono::Utc>,
                limit: i64,
            ) -> ::std::result::Result<Vec<::uuid::Uuid>, $crate::storage::StoreError> {
                self.$inner.due_holds(now, limit).await
            }
            async fn booking_totals(
                &self,
            ) -> ::std::result::Result<$crate::storage::BookingTotals, $crate::storage::StoreError> {
                self.$inner.booking_totals().await
            }
            async fn recent_bookings(
                &self,
                limit: i64,
                now: ::chrono::DateTime<::chrono::Utc>,
            ) -> ::std::result::Result<Vec<$crate::storage::Booking>, $crate::storage::StoreError> {
                self.$inner.recent_bookings(limit, now).await
            }
        }
    };
}
