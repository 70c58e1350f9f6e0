//! What both backends run as it is: each statement once, with `$N` placeholders (SQLite reads
//! `$N` as the N-th argument too), and the code around it. A backend calls these on its sqlx
//! database type (`Sqlite::slots_on(&self.reader, …)`) with its own pools and transactions, so
//! the backends differ only where they must: how a transaction takes its locks, whose clock
//! stamps a lease, how a day is written in bulk, how a start time is stored.

use std::future::Future;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use futures::TryStreamExt;
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Pool, Transaction, Type};

use super::coordination::StoredSyncRequest;
use super::inventory::{PaxRow, SlotRow, served_slots};
use super::{
    DuringExt, LastFetch, Lease, Posting, ServedSlot, SlotHistory, StoreError, SyncControl,
    SyncRequest,
};
use crate::domain::ExperienceId;
use crate::ledger::{self, VerifyReport, Violation};

/// A sync request as stored, with its id: the statement that takes them adds the backend's
/// lock.
pub(crate) const SYNC_REQUESTS: &str =
    "SELECT id, experience_id, from_date, to_date, requested_at FROM sync_triggers ORDER BY id";

/// One verification at a time in this process: each runs whole-ledger queries, and callers in
/// parallel would take the connections the sync's applies need.
static VERIFY_GATE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The shared code, for both of sqlx's database types (`impl Portable for Sqlite` and for
/// `Postgres`, in each backend's module). The bounds say what of sqlx it uses; stated once
/// here, they are checked against each backend where it implements the trait.
pub(crate) trait Portable: Database
where
    for<'c> &'c mut Self::Connection: Executor<'c, Database = Self>,
    for<'q> Self::Arguments<'q>: IntoArguments<'q, Self>,
    for<'q> i64: Encode<'q, Self> + Type<Self>,
    for<'q> Option<i64>: Encode<'q, Self> + Type<Self>,
    for<'q> &'q str: Encode<'q, Self> + Type<Self>,
    for<'q> Option<&'q str>: Encode<'q, Self> + Type<Self>,
    for<'q> NaiveDate: Encode<'q, Self> + Type<Self>,
    for<'q> DateTime<Utc>: Encode<'q, Self> + Type<Self>,
    for<'r> (bool,): FromRow<'r, Self::Row>,
    for<'r> (String,): FromRow<'r, Self::Row>,
    for<'r> (i64, i64, i64): FromRow<'r, Self::Row>,
    for<'r> (i64, String, bool): FromRow<'r, Self::Row>,
    for<'r> SlotRow: FromRow<'r, Self::Row>,
    for<'r> PaxRow: FromRow<'r, Self::Row>,
    for<'r> Posting: FromRow<'r, Self::Row>,
    for<'r> LastFetch: FromRow<'r, Self::Row>,
    for<'r> SyncControl: FromRow<'r, Self::Row>,
    for<'r> Lease: FromRow<'r, Self::Row>,
    for<'r> StoredSyncRequest: FromRow<'r, Self::Row>,
{
    /// A slot's start time as this backend stores it.
    type StartTime: for<'q> Encode<'q, Self> + Type<Self> + Send;

    fn start_time(time: NaiveTime) -> Self::StartTime;

    async fn experience_exists(pool: &Pool<Self>, id: ExperienceId) -> Result<bool, StoreError> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM experiences WHERE id = $1)")
            .bind(id.get())
            .fetch_one(pool)
            .await
            .during("looking up an experience")
    }

    /// Open slots of a day ordered by start time, each with its pool's available balance.
    async fn slots_on(
        pool: &Pool<Self>,
        id: ExperienceId,
        date: NaiveDate,
    ) -> Result<Vec<ServedSlot>, StoreError> {
        let slot_rows: Vec<SlotRow> = sqlx::query_as(
            "SELECT s.id, s.provider_slot_id, s.start_time, a.balance AS remaining
             FROM slots s
             JOIN accounts a ON a.slot_id = s.id AND a.pax_type IS NULL AND a.kind = 'available'
             WHERE s.experience_id = $1 AND s.service_date = $2 AND s.is_open
             ORDER BY s.start_time, s.id",
        )
        .bind(id.get())
        .bind(date)
        .fetch_all(pool)
        .await
        .during("reading a day's slots")?;
        let pax_rows: Vec<PaxRow> = sqlx::query_as(
            "SELECT p.slot_id, p.pax_type, p.name, p.description, p.min_pax, p.max_pax,
                    p.is_primary, p.currency, p.price_scale, p.final_price_minor,
                    p.original_price_minor, a.balance
             FROM slot_pax p
             JOIN slots s ON s.id = p.slot_id
             JOIN accounts a ON a.slot_id = p.slot_id AND a.pax_type = p.pax_type
                            AND a.kind = 'available'
             WHERE s.experience_id = $1 AND s.service_date = $2 AND s.is_open AND p.is_present
             ORDER BY p.slot_id, p.position",
        )
        .bind(id.get())
        .bind(date)
        .fetch_all(pool)
        .await
        .during("reading a day's pax")?;
        served_slots(date, slot_rows, pax_rows)
    }

    async fn last_fetches(
        pool: &Pool<Self>,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<LastFetch>, StoreError> {
        sqlx::query_as(
            "SELECT experience_id AS experience, service_date AS date,
                    last_fetched_at AS fetched_at, CAST(slot_count AS BIGINT) AS slot_count
             FROM product_dates WHERE service_date BETWEEN $1 AND $2",
        )
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await
        .during("reading the last fetch of each day")
    }

    /// The open slot starting then (else the newest closed one), with every posting on its
    /// accounts.
    async fn slot_history(
        pool: &Pool<Self>,
        id: ExperienceId,
        date: NaiveDate,
        start_time: NaiveTime,
    ) -> Result<Option<SlotHistory>, StoreError> {
        let slot: Option<(i64, String, bool)> = sqlx::query_as(
            "SELECT id, provider_slot_id, is_open FROM slots
             WHERE experience_id = $1 AND service_date = $2 AND start_time = $3
             ORDER BY is_open DESC, id DESC LIMIT 1",
        )
        .bind(id.get())
        .bind(date)
        .bind(Self::start_time(start_time))
        .fetch_optional(pool)
        .await
        .during("looking up a slot")?;
        let Some((slot_id, provider_slot_id, is_open)) = slot else {
            return Ok(None);
        };
        let postings: Vec<Posting> = sqlx::query_as(
            "SELECT e.created_at AS at, e.transaction_id, e.account_id,
                    a.kind AS account_kind, a.pax_type, e.amount, e.balance_after, e.version,
                    CAST(j.fetch_id AS TEXT) AS fetch_id, f.fetched_at
             FROM entries e
             JOIN accounts a ON a.id = e.account_id
             JOIN journal_transactions j ON j.id = e.transaction_id
             JOIN fetches f ON f.id = j.fetch_id
             WHERE a.slot_id = $1
             ORDER BY e.transaction_id, e.account_id",
        )
        .bind(slot_id)
        .fetch_all(pool)
        .await
        .during("reading a slot's postings")?;
        Ok(Some(SlotHistory {
            provider_slot_id,
            start_date: date,
            start_time,
            is_open,
            postings,
        }))
    }

    /// Runs every ledger check in the transaction `snapshot` begins, which should give all of
    /// them one snapshot; it is begun only once this verification's turn has come.
    async fn verify(
        snapshot: impl Future<Output = Result<Transaction<'static, Self>, sqlx::Error>> + Send,
    ) -> Result<VerifyReport, StoreError> {
        let _turn = VERIFY_GATE.lock().await;
        let mut tx = snapshot.await.during("starting the verification")?;
        let mut violations = Vec::new();
        let mut violation_count = 0u64;
        for &(invariant, check) in ledger::verify::CHECKS {
            // Counted in full, kept only up to the report's limit: a corrupt ledger can have a
            // violation per row.
            let mut details = sqlx::query_scalar::<Self, String>(check).fetch(&mut *tx);
            while let Some(detail) = details
                .try_next()
                .await
                .during("checking a ledger invariant")?
            {
                violation_count += 1;
                if violations.len() < ledger::verify::MAX_REPORTED_VIOLATIONS {
                    violations.push(Violation { invariant, detail });
                }
            }
        }
        let counts: (i64, i64, i64) = sqlx::query_as(ledger::verify::COUNTS)
            .fetch_one(&mut *tx)
            .await
            .during("counting the ledger")?;
        Ok(VerifyReport::new(counts, violations, violation_count))
    }

    async fn sync_control(pool: &Pool<Self>) -> Result<SyncControl, StoreError> {
        sqlx::query_as("SELECT paused, reason, changed_at FROM sync_control WHERE id = 1")
            .fetch_one(pool)
            .await
            .during("reading the sync control")
    }

    /// Pauses unless paused already, then reads the state back from the same pool.
    async fn pause_sync(
        pool: &Pool<Self>,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<SyncControl, StoreError> {
        sqlx::query(
            "UPDATE sync_control SET paused = TRUE, reason = $1, changed_at = $2
             WHERE id = 1 AND NOT paused",
        )
        .bind(reason)
        .bind(at)
        .execute(pool)
        .await
        .during("pausing the sync")?;
        Self::sync_control(pool).await
    }

    /// Resumes unless running already, then reads the state back from the same pool.
    async fn resume_sync(pool: &Pool<Self>, at: DateTime<Utc>) -> Result<SyncControl, StoreError> {
        sqlx::query(
            "UPDATE sync_control SET paused = FALSE, reason = NULL, changed_at = $1
             WHERE id = 1 AND paused",
        )
        .bind(at)
        .execute(pool)
        .await
        .during("resuming the sync")?;
        Self::sync_control(pool).await
    }

    async fn lease<'e>(executor: impl Executor<'e, Database = Self>) -> Result<Lease, StoreError> {
        sqlx::query_as("SELECT holder, token, expires_at FROM sync_lease WHERE id = 1")
            .fetch_one(executor)
            .await
            .during("reading the sync lease")
    }

    /// Finishes a claim begun by the backend: `tx` has locked the lease as it read `current`
    /// at `now`, by the clock the backend trusts.
    async fn claim_lease(
        mut tx: Transaction<'static, Self>,
        current: &Lease,
        now: DateTime<Utc>,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<Lease>, StoreError> {
        let Some(claimed) = current.claimed_by(holder, now, ttl) else {
            return Ok(None);
        };
        sqlx::query("UPDATE sync_lease SET holder = $1, token = $2, expires_at = $3 WHERE id = 1")
            .bind(claimed.holder.as_deref())
            .bind(claimed.token)
            .bind(claimed.expires_at)
            .execute(&mut *tx)
            .await
            .during("claiming the sync lease")?;
        tx.commit().await.during("committing the sync lease")?;
        Ok(Some(claimed))
    }

    async fn request_sync(pool: &Pool<Self>, request: &SyncRequest) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sync_triggers (experience_id, from_date, to_date, requested_at)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(request.experience.map(ExperienceId::get))
        .bind(request.from)
        .bind(request.to)
        .bind(request.requested_at)
        .execute(pool)
        .await
        .during("recording a sync request")?;
        Ok(())
    }

    /// Takes every request, oldest first, in the write transaction `begin` starts; `select` is
    /// [`SYNC_REQUESTS`] with whatever lock the backend needs to keep another taker off them.
    async fn take_sync_requests(
        begin: impl Future<Output = Result<Transaction<'static, Self>, sqlx::Error>> + Send,
        select: &str,
    ) -> Result<Vec<SyncRequest>, StoreError> {
        let mut tx = begin.await.during("starting to take sync requests")?;
        let rows: Vec<StoredSyncRequest> = sqlx::query_as(select)
            .fetch_all(&mut *tx)
            .await
            .during("reading sync requests")?;
        if let Some(last) = rows.last() {
            sqlx::query("DELETE FROM sync_triggers WHERE id <= $1")
                .bind(last.id)
                .execute(&mut *tx)
                .await
                .during("taking sync requests")?;
        }
        tx.commit().await.during("committing taken sync requests")?;
        rows.into_iter().map(SyncRequest::try_from).collect()
    }
}
