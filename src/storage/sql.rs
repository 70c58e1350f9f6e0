//! What both backends run as it is: each statement once, with `$N` placeholders (SQLite reads
//! `$N` as the N-th argument too), and the code around it. A backend calls these on its sqlx
//! database type (`Sqlite::slots_between(&self.reader, …)`) with its own pools and transactions, so
//! the backends differ only where they must: how a transaction takes its locks, whose clock
//! stamps a lease, how a day is written in bulk, how a start time is stored.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::future::Future;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use futures::TryStreamExt;
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Pool, Transaction, Type};

use super::bookings::{
    Amendment, BookedPax, Booking, BookingChange, BookingStatus, BookingTotals, HoldOutcome,
    HoldRequest, KeyedHold, Refusal, ResellerBooking, ResellerQuery, ResellerRecord,
};
use super::coordination::StoredSyncRequest;
use super::inventory::StoredPrice;
use super::inventory::{PaxRow, SlotRow, served_slots};
use super::{
    DuringExt, LastFetch, Lease, Posting, ServedSlot, SlotHistory, StoreError, SyncControl,
    SyncRequest,
};
use crate::domain::{ExperienceId, Seats};
use crate::ledger::booking::{
    BookedPool, BookingMove, InsufficientCapacity, PlannedMove, PoolAccount, plan_move, plan_rebook,
};
use crate::ledger::posting::{PlannedPosting, RunningBalance};
use crate::ledger::{self, AccountKind, Transfer, VerifyReport, Violation};

/// One partner's sync requests as stored (`$1` the partner), with their ids: the statement
/// that takes them adds the backend's lock.
pub(crate) const SYNC_REQUESTS: &str = "SELECT id, partner,
            (SELECT code FROM experiences e WHERE e.id = experience_id) AS experience_id,
            from_date, to_date, requested_at
     FROM sync_triggers WHERE partner = $1 OR partner IS NULL ORDER BY id";

/// Joins a day's pool (available account `a` of slot `s`) to the accounts customers' bookings
/// opened on it: `held`, `sold` and `shortfall`, all three or none.
pub(crate) const BOOKED_ACCOUNTS: &str = "
    LEFT JOIN accounts held ON held.slot_id = s.id AND held.kind = 'held'
        AND (held.pax_type = a.pax_type OR (held.pax_type IS NULL AND a.pax_type IS NULL))
    LEFT JOIN accounts sold ON sold.slot_id = s.id AND sold.kind = 'sold'
        AND (sold.pax_type = a.pax_type OR (sold.pax_type IS NULL AND a.pax_type IS NULL))
    LEFT JOIN accounts shortfall ON shortfall.slot_id = s.id AND shortfall.kind = 'shortfall'
        AND (shortfall.pax_type = a.pax_type
             OR (shortfall.pax_type IS NULL AND a.pax_type IS NULL))";

/// A pool's shortfall account as [`BOOKED_ACCOUNTS`] reads it: `None` until a booking opened it.
pub(crate) fn booked_shortfall(
    account: Option<i64>,
    balance: Option<i64>,
    version: Option<i64>,
) -> Option<(i64, crate::ledger::posting::RunningBalance)> {
    match (account, balance, version) {
        (Some(account), Some(balance), Some(version)) => Some((
            account,
            crate::ledger::posting::RunningBalance { balance, version },
        )),
        _ => None,
    }
}

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
    for<'q> Option<DateTime<Utc>>: Encode<'q, Self> + Type<Self>,
    for<'r> (i64,): FromRow<'r, Self::Row>,
    for<'r> (i64, i64): FromRow<'r, Self::Row>,
    for<'r> PoolLimitsRow: FromRow<'r, Self::Row>,
    for<'r> (String, NaiveDate): FromRow<'r, Self::Row>,
    for<'r> (String, i64): FromRow<'r, Self::Row>,
    for<'r> BookingRow: FromRow<'r, Self::Row>,
    for<'r> BookedPaxRow: FromRow<'r, Self::Row>,
    for<'r> ResellerRow: FromRow<'r, Self::Row>,
    for<'r> PaxRuleRow: FromRow<'r, Self::Row>,
    for<'r> PoolAccountRow: FromRow<'r, Self::Row>,
    for<'r> (String, String, Option<String>): FromRow<'r, Self::Row>,
    for<'r> (String,): FromRow<'r, Self::Row>,
{
    /// A slot's start time as this backend stores it.
    type StartTime: for<'q> Encode<'q, Self> + Type<Self> + Send;

    fn start_time(time: NaiveTime) -> Self::StartTime;

    /// Queues this transaction behind every other writer of the day's pools (the sync's apply
    /// of the day and every booking move on it), whichever process runs them.
    fn lock_day(
        conn: &mut Self::Connection,
        experience: ExperienceId,
        date: NaiveDate,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Writes journal transactions, in order, each with its transfers and entries, and moves
    /// the accounts' running balances, refusing (as corrupt) an account that changed since it
    /// was read.
    fn write_postings(
        conn: &mut Self::Connection,
        postings: &[JournalPosting<'_>],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    async fn experience_exists(pool: &Pool<Self>, id: ExperienceId) -> Result<bool, StoreError> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM experiences WHERE code = $1)")
            .bind(id.as_str())
            .fetch_one(pool)
            .await
            .during("looking up an experience")
    }

    /// Open slots of the days `from..=to` by date and start time, each with its pool's
    /// available balance.
    async fn slots_between(
        pool: &Pool<Self>,
        id: ExperienceId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<ServedSlot>, StoreError> {
        let slot_rows: Vec<SlotRow> = sqlx::query_as(
            "SELECT s.id, s.provider_slot_id, s.service_date, s.start_time, s.end_time,
                    s.observed_remaining AS allotment, a.balance AS remaining
             FROM slots s
             JOIN accounts a ON a.slot_id = s.id AND a.pax_type IS NULL AND a.kind = 'available'
             WHERE s.experience_id = (SELECT id FROM experiences WHERE code = $1)
               AND s.service_date BETWEEN $2 AND $3 AND s.is_open
             ORDER BY s.service_date, s.start_time, s.id",
        )
        .bind(id.as_str())
        .bind(from)
        .bind(to)
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
             WHERE s.experience_id = (SELECT id FROM experiences WHERE code = $1)
               AND s.service_date BETWEEN $2 AND $3 AND s.is_open AND p.is_present
             ORDER BY p.slot_id, p.position",
        )
        .bind(id.as_str())
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await
        .during("reading a day's pax")?;
        served_slots(slot_rows, pax_rows)
    }

    async fn last_fetches(
        pool: &Pool<Self>,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<LastFetch>, StoreError> {
        sqlx::query_as(
            "SELECT e.code AS experience, d.service_date AS date,
                    d.last_fetched_at AS fetched_at, CAST(d.slot_count AS BIGINT) AS slot_count
             FROM product_dates d JOIN experiences e ON e.id = d.experience_id
             WHERE d.service_date BETWEEN $1 AND $2",
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
             WHERE experience_id = (SELECT id FROM experiences WHERE code = $1)
               AND service_date = $2 AND start_time = $3
             ORDER BY is_open DESC, id DESC LIMIT 1",
        )
        .bind(id.as_str())
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
                    j.reason, CAST(j.fetch_id AS TEXT) AS fetch_id, f.fetched_at,
                    j.booking_id
             FROM entries e
             JOIN accounts a ON a.id = e.account_id
             JOIN journal_transactions j ON j.id = e.transaction_id
             LEFT JOIN fetches f ON f.id = j.fetch_id
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

    async fn sync_control(pool: &Pool<Self>, partner: &str) -> Result<SyncControl, StoreError> {
        let control: Option<SyncControl> =
            sqlx::query_as("SELECT paused, reason, changed_at FROM sync_pauses WHERE partner = $1")
                .bind(partner)
                .fetch_optional(pool)
                .await
                .during("reading the sync pause")?;
        Ok(control.unwrap_or_else(SyncControl::running))
    }

    /// Pauses unless paused already, then reads the state back from the same pool.
    async fn pause_sync(
        pool: &Pool<Self>,
        partner: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<SyncControl, StoreError> {
        sqlx::query(
            "INSERT INTO sync_pauses (partner, paused, reason, changed_at)
             VALUES ($1, TRUE, $2, $3)
             ON CONFLICT (partner) DO UPDATE
             SET paused = TRUE, reason = excluded.reason, changed_at = excluded.changed_at
             WHERE NOT sync_pauses.paused",
        )
        .bind(partner)
        .bind(reason)
        .bind(at)
        .execute(pool)
        .await
        .during("pausing the sync")?;
        Self::sync_control(pool, partner).await
    }

    /// Resumes unless running already, then reads the state back from the same pool.
    async fn resume_sync(
        pool: &Pool<Self>,
        partner: &str,
        at: DateTime<Utc>,
    ) -> Result<SyncControl, StoreError> {
        sqlx::query(
            "UPDATE sync_pauses SET paused = FALSE, reason = NULL, changed_at = $2
             WHERE partner = $1 AND paused",
        )
        .bind(partner)
        .bind(at)
        .execute(pool)
        .await
        .during("resuming the sync")?;
        Self::sync_control(pool, partner).await
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
            "INSERT INTO sync_triggers (partner, experience_id, from_date, to_date, requested_at)
             VALUES ($1, (SELECT id FROM experiences WHERE code = $2), $3, $4, $5)",
        )
        .bind(request.partner.as_str())
        .bind(request.experience.as_ref().map(ExperienceId::as_str))
        .bind(request.from)
        .bind(request.to)
        .bind(request.requested_at)
        .execute(pool)
        .await
        .during("recording a sync request")?;
        Ok(())
    }

    /// Takes `partner`'s requests, oldest first, in the write transaction `begin` starts;
    /// `select` is [`SYNC_REQUESTS`] with whatever lock the backend needs to keep another
    /// taker off them.
    async fn take_sync_requests(
        begin: impl Future<Output = Result<Transaction<'static, Self>, sqlx::Error>> + Send,
        select: &str,
        partner: &str,
    ) -> Result<Vec<SyncRequest>, StoreError> {
        let mut tx = begin.await.during("starting to take sync requests")?;
        let rows: Vec<StoredSyncRequest> = sqlx::query_as(select)
            .bind(partner)
            .fetch_all(&mut *tx)
            .await
            .during("reading sync requests")?;
        if let Some(last) = rows.last() {
            sqlx::query(
                "DELETE FROM sync_triggers WHERE id <= $1 AND (partner = $2 OR partner IS NULL)",
            )
            .bind(last.id)
            .bind(partner)
            .execute(&mut *tx)
            .await
            .during("taking sync requests")?;
        }
        tx.commit().await.during("committing taken sync requests")?;
        rows.into_iter().map(SyncRequest::try_from).collect()
    }

    /// Claims `key` in its own committed transaction, so a concurrent repeat sees it in
    /// flight rather than waiting for the first request's booking.
    async fn hold_shortfall(
        pool: &Pool<Self>,
        key: &str,
        request: &HoldRequest,
        now: DateTime<Utc>,
    ) -> Result<Option<InsufficientCapacity>, StoreError> {
        let pools: Vec<PoolLimitsRow> = sqlx::query_as(
            "WITH slot AS (
                 SELECT id FROM slots
                 WHERE experience_id = (SELECT id FROM experiences WHERE code = $1)
                   AND service_date = $2 AND start_time = $3 AND is_open
                 ORDER BY id LIMIT 1
             )
             SELECT a.pax_type, a.balance, p.min_pax, p.max_pax
             FROM slot JOIN accounts a ON a.slot_id = slot.id
             LEFT JOIN slot_pax p ON p.slot_id = slot.id AND p.pax_type = a.pax_type
                                 AND p.is_present
             WHERE a.kind = 'available'
               AND NOT EXISTS (SELECT 1 FROM idempotency_keys WHERE key = $4)
               AND NOT EXISTS (SELECT 1 FROM bookings b
                               WHERE b.slot_id = slot.id AND b.status = 'on_hold'
                                 AND b.expires_at <= $5)",
        )
        .bind(request.experience.as_str())
        .bind(request.date)
        .bind(Self::start_time(request.start_time))
        .bind(key)
        .bind(now)
        .fetch_all(pool)
        .await
        .during("checking a hold's pools")?;
        // A pool's seats left, if the request may take `quantity` of it at all (a quantity
        // outside the pax type's limits is the hold's own refusal to make).
        let available = |pax_type: Option<&str>, quantity: Seats| {
            pools
                .iter()
                .find(|(pool, ..)| pool.as_deref() == pax_type)
                .filter(|(_, _, min, max)| match (min, max) {
                    (Some(min), Some(max)) => (*min..=*max).contains(&quantity),
                    _ => pax_type.is_none(),
                })
                .map(|&(_, balance, ..)| balance)
        };
        let total: Seats = request.pax.iter().map(|pax| pax.quantity).sum();
        let wanted: Vec<(Option<&str>, Seats)> = std::iter::once((None, total))
            .chain(
                request
                    .pax
                    .iter()
                    .map(|pax| (Some(pax.pax_type.as_str()), pax.quantity)),
            )
            .collect();
        let mut left = Vec::with_capacity(wanted.len());
        for &(pax_type, quantity) in &wanted {
            match available(pax_type, quantity) {
                Some(balance) => left.push(balance),
                // Unknown here: the hold itself says what is wrong.
                None => return Ok(None),
            }
        }
        Ok(wanted
            .iter()
            .zip(left)
            .find(|((_, quantity), left)| left < quantity)
            .map(|(&(pax_type, wanted), left)| InsufficientCapacity {
                pax_type: pax_type.map(str::to_string),
                wanted,
                left: left.max(0),
            }))
    }

    /// Takes `holds` in order in `tx` (a write transaction), each whole or not at all, and
    /// commits if any was held (see [`super::Bookings::hold_batch`]). Every hold is decided
    /// in memory against the pools as the batch leaves them, then the held ones are written
    /// together: a few statements for the batch and one posting per hold.
    async fn hold_batch(
        mut tx: Transaction<'static, Self>,
        holds: &[KeyedHold],
        now: DateTime<Utc>,
    ) -> Result<Vec<HoldOutcome>, StoreError> {
        // Every day the holds draw on is locked up front and in one order, so batches that
        // share days queue instead of deadlocking.
        let mut days: Vec<(ExperienceId, NaiveDate)> = holds
            .iter()
            .map(|hold| (hold.request.experience, hold.request.date))
            .collect();
        days.sort_unstable();
        days.dedup();
        for &(experience, date) in &days {
            Self::lock_day(&mut tx, experience, date).await?;
        }
        let known = Self::known_keys(&mut tx, holds).await?;
        let mut slots = HashMap::new();
        // Keys held earlier in this batch, each with its place in `held`.
        let mut taken: HashMap<&str, usize> = HashMap::new();
        let mut held: Vec<HeldSeats<'_>> = Vec::new();
        let mut outcomes = Vec::with_capacity(holds.len());
        for hold in holds {
            let earlier = taken.get(hold.key.as_str()).map(|&place| &held[place]);
            let outcome = match (earlier, known.get(&hold.key)) {
                (Some(first), _) if first.hold.request_hash != hold.request_hash => {
                    HoldOutcome::KeyReused
                }
                (Some(first), _) => HoldOutcome::Replay(first.booking.clone()),
                // A key's row is written in the transaction that books it, so a row without a
                // booking can only be left by an older version's claim: it is taken over.
                (None, Some((hash, Some(_)))) if *hash != hold.request_hash => {
                    HoldOutcome::KeyReused
                }
                (None, Some((_, Some(booking)))) => {
                    let earlier = Self::read_booking(&mut tx, booking).await?.ok_or_else(|| {
                        StoreError::Corrupt(format!(
                            "idempotency key names missing booking {booking}"
                        ))
                    })?;
                    HoldOutcome::Replay(earlier.as_of(now))
                }
                (None, _) => match Self::plan_hold(&mut tx, hold, &mut slots, now).await? {
                    Ok(seats) => {
                        taken.insert(hold.key.as_str(), held.len());
                        let booking = seats.booking.clone();
                        held.push(seats);
                        HoldOutcome::Held(booking)
                    }
                    Err(refusal) => HoldOutcome::Refused(refusal),
                },
            };
            outcomes.push(outcome);
        }
        // Nothing held: nothing to keep (a slot's lapsed holds are the sweeper's to release).
        if held.is_empty() {
            return Ok(outcomes);
        }
        Self::write_holds(&mut tx, &held, now).await?;
        for &(experience, date) in &days {
            Self::bump_day_version(&mut tx, experience, date).await?;
        }
        tx.commit().await.during("committing holds")?;
        Ok(outcomes)
    }

    /// The stored keys among `holds`': each with its request's hash and booking.
    async fn known_keys(
        conn: &mut Self::Connection,
        holds: &[KeyedHold],
    ) -> Result<HashMap<String, (String, Option<String>)>, StoreError> {
        let sql = format!(
            "SELECT key, request_hash, booking_id FROM idempotency_keys WHERE key IN {}",
            placeholders(1, holds.len())
        );
        let mut query = sqlx::query_as::<Self, (String, String, Option<String>)>(&sql);
        for hold in holds {
            query = query.bind(hold.key.as_str());
        }
        let rows = query
            .fetch_all(&mut *conn)
            .await
            .during("reading idempotency keys")?;
        Ok(rows
            .into_iter()
            .map(|(key, hash, booking)| (key, (hash, booking)))
            .collect())
    }

    /// Writes the batch's held bookings: their rows, pax, postings (in the order they were
    /// planned, each from the balances the one before left) and keys.
    async fn write_holds(
        conn: &mut Self::Connection,
        held: &[HeldSeats<'_>],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let ids: Vec<String> = held.iter().map(|seats| seats.hold.id.to_string()).collect();
        let sql = format!(
            "INSERT INTO bookings (id, experience_id, slot_id, status, created_at, expires_at)
             VALUES {}",
            placeholders(held.len(), 6)
        );
        let mut query = sqlx::query::<Self>(&sql);
        for (seats, id) in held.iter().zip(&ids) {
            query = query
                .bind(id.as_str())
                .bind(seats.experience)
                .bind(seats.slot)
                .bind(BookingStatus::OnHold.as_str())
                .bind(now)
                .bind(seats.hold.request.expires_at);
        }
        query
            .execute(&mut *conn)
            .await
            .during("recording bookings")?;
        let pax: Vec<(&str, &[(PaxRuleRow, Seats)])> = held
            .iter()
            .zip(&ids)
            .map(|(seats, id)| (id.as_str(), seats.pax.as_slice()))
            .collect();
        Self::write_pax(&mut *conn, &pax).await?;
        let postings: Vec<JournalPosting<'_>> = held
            .iter()
            .zip(&ids)
            .map(|(seats, id)| JournalPosting {
                journal: Journal {
                    experience: seats.hold.request.experience,
                    source: JournalSource::Booking { id, reason: "hold" },
                },
                transfers: &seats.planned.transfers,
                posting: &seats.planned.posting,
            })
            .collect();
        Self::write_postings(&mut *conn, &postings).await?;
        let sql = format!(
            "INSERT INTO idempotency_keys (key, request_hash, booking_id, claimed_at)
             VALUES {}
             ON CONFLICT (key) DO UPDATE
                 SET request_hash = excluded.request_hash, booking_id = excluded.booking_id,
                     claimed_at = excluded.claimed_at
                 WHERE idempotency_keys.booking_id IS NULL
             RETURNING key",
            placeholders(held.len(), 4)
        );
        let mut query = sqlx::query_as::<Self, (String,)>(&sql);
        for (seats, id) in held.iter().zip(&ids) {
            query = query
                .bind(seats.hold.key.as_str())
                .bind(seats.hold.request_hash.as_str())
                .bind(id.as_str())
                .bind(now);
        }
        let written = query
            .fetch_all(&mut *conn)
            .await
            .during("recording idempotency keys")?;
        // Read under the day's lock, a key can only have been taken since by a request for
        // another day on another instance; the batch is retried hold by hold.
        if written.len() != held.len() {
            return Err(StoreError::Corrupt(
                "an idempotency key was taken by a concurrent request".into(),
            ));
        }
        Ok(())
    }

    /// Writes the pax of each `(booking id, pax)`, in one statement.
    async fn write_pax(
        conn: &mut Self::Connection,
        bookings: &[(&str, &[(PaxRuleRow, Seats)])],
    ) -> Result<(), StoreError> {
        let rows: usize = bookings.iter().map(|(_, pax)| pax.len()).sum();
        let sql = format!(
            "INSERT INTO booking_pax (booking_id, pax_type, position, quantity, currency,
                                      price_scale, final_price_minor, original_price_minor)
             VALUES {}",
            placeholders(rows, 8)
        );
        let mut query = sqlx::query::<Self>(&sql);
        for &(id, pax) in bookings {
            for (rule, quantity) in pax {
                query = query
                    .bind(id)
                    .bind(rule.pax_type.as_str())
                    .bind(i64::from(rule.position))
                    .bind(*quantity)
                    .bind(rule.price.currency.as_str())
                    .bind(i64::from(rule.price.price_scale))
                    .bind(rule.price.final_price_minor)
                    .bind(rule.price.original_price_minor);
            }
        }
        query
            .execute(&mut *conn)
            .await
            .during("recording bookings' pax")?;
        Ok(())
    }

    /// The slot a hold asks for, with its pax types and pools as they stand under the day's
    /// lock, once its lapsed holds are released.
    async fn open_slot(
        conn: &mut Self::Connection,
        request: &HoldRequest,
        now: DateTime<Utc>,
    ) -> Result<Result<OpenSlot, Refusal>, StoreError> {
        if !sqlx::query_scalar::<Self, bool>(
            "SELECT EXISTS (SELECT 1 FROM experiences WHERE code = $1)",
        )
        .bind(request.experience.as_str())
        .fetch_one(&mut *conn)
        .await
        .during("looking up an experience")?
        {
            return Ok(Err(Refusal::UnknownExperience));
        }
        let slot: Option<(i64, i64)> = sqlx::query_as(
            "SELECT id, experience_id FROM slots
             WHERE experience_id = (SELECT id FROM experiences WHERE code = $1)
               AND service_date = $2 AND start_time = $3 AND is_open
             ORDER BY id LIMIT 1",
        )
        .bind(request.experience.as_str())
        .bind(request.date)
        .bind(Self::start_time(request.start_time))
        .fetch_optional(&mut *conn)
        .await
        .during("looking up the slot to hold")?;
        let Some((id, experience)) = slot else {
            return Ok(Err(Refusal::SlotNotFound));
        };
        let rules: Vec<PaxRuleRow> = sqlx::query_as(
            "SELECT pax_type, position, min_pax, max_pax, currency, price_scale,
                    final_price_minor, original_price_minor
             FROM slot_pax WHERE slot_id = $1 AND is_present ORDER BY position",
        )
        .bind(id)
        .fetch_all(&mut *conn)
        .await
        .during("reading the slot's pax types")?;
        sqlx::query(
            "INSERT INTO accounts (experience_id, kind, slot_id, pax_type)
             SELECT $1, k.kind, $2, p.pax_type
             FROM (SELECT 'held' AS kind UNION ALL SELECT 'sold' UNION ALL SELECT 'shortfall') k
             CROSS JOIN (SELECT CAST(NULL AS TEXT) AS pax_type
                         UNION ALL SELECT pax_type FROM slot_pax WHERE slot_id = $2) p
             WHERE TRUE
             ON CONFLICT DO NOTHING",
        )
        .bind(experience)
        .bind(id)
        .execute(&mut *conn)
        .await
        .during("opening the slot's booking accounts")?;
        // Holds on this slot past their deadline go back on sale before anyone is refused.
        Self::expire_due_on_slot(&mut *conn, id, now).await?;
        let accounts = Self::pool_accounts(&mut *conn, id).await?;
        Ok(Ok(OpenSlot {
            id,
            experience,
            rules,
            accounts,
        }))
    }

    /// Decides a hold against its slot's pools as the batch has left them: the seats it
    /// takes (the pools then show them taken), or its refusal.
    async fn plan_hold<'h>(
        conn: &mut Self::Connection,
        hold: &'h KeyedHold,
        slots: &mut HashMap<SlotKey, Result<OpenSlot, Refusal>>,
        now: DateTime<Utc>,
    ) -> Result<Result<HeldSeats<'h>, Refusal>, StoreError> {
        let request = &hold.request;
        let slot = match slots.entry((request.experience, request.date, request.start_time)) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(new) => new.insert(Self::open_slot(&mut *conn, request, now).await?),
        };
        let slot = match slot {
            Ok(slot) => slot,
            Err(refusal) => return Ok(Err(refusal.clone())),
        };
        let pax = match priced_pax(&slot.rules, request) {
            Ok(pax) => pax,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let pools = booked_pools(&slot.accounts, slot.id, &priced_quantities(&pax))?;
        let planned = match plan_move(BookingMove::Hold, &pools)? {
            Ok(planned) => planned,
            Err(short) => return Ok(Err(Refusal::InsufficientCapacity(short))),
        };
        for update in &planned.posting.updates {
            if let Some(account) = slot.accounts.iter_mut().find(|a| a.id == update.account) {
                account.balance = update.balance;
                account.version = update.version;
            }
        }
        let booked = booked_pax(&pax)?;
        Ok(Ok(HeldSeats {
            hold,
            slot: slot.id,
            experience: slot.experience,
            booking: Booking {
                id: hold.id,
                status: BookingStatus::OnHold,
                experience: request.experience,
                date: request.date,
                start_time: request.start_time,
                pax: booked,
                created_at: now,
                expires_at: request.expires_at,
                confirmed_at: None,
                cancelled_at: None,
            },
            pax,
            planned,
        }))
    }

    /// The `available`, `held`, `sold` and `shortfall` accounts of every pool of `slot`.
    async fn pool_accounts(
        conn: &mut Self::Connection,
        slot: i64,
    ) -> Result<Vec<PoolAccountRow>, StoreError> {
        sqlx::query_as(
            "SELECT id, kind, pax_type, balance, version FROM accounts
             WHERE slot_id = $1 AND kind IN ('available', 'held', 'sold', 'shortfall')",
        )
        .bind(slot)
        .fetch_all(&mut *conn)
        .await
        .during("reading the booking's pools")
    }

    /// Marks the day's served inventory as changed by a booking, for every read cache.
    async fn bump_day_version(
        conn: &mut Self::Connection,
        experience: ExperienceId,
        date: NaiveDate,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE product_dates SET booking_changes = booking_changes + 1
             WHERE experience_id = (SELECT id FROM experiences WHERE code = $1)
               AND service_date = $2",
        )
        .bind(experience.as_str())
        .bind(date)
        .execute(&mut *conn)
        .await
        .during("marking the day as changed")?;
        Ok(())
    }

    /// How often bookings have changed the days `from..=to` of an experience: it only grows.
    async fn booking_version(
        pool: &Pool<Self>,
        id: ExperienceId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<i64, StoreError> {
        let (version,): (i64,) = sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(booking_changes), 0) AS BIGINT) FROM product_dates
             WHERE experience_id = (SELECT id FROM experiences WHERE code = $1)
               AND service_date BETWEEN $2 AND $3",
        )
        .bind(id.as_str())
        .bind(from)
        .bind(to)
        .fetch_one(pool)
        .await
        .during("reading the days' booking version")?;
        Ok(version)
    }

    async fn read_booking(
        conn: &mut Self::Connection,
        id: &str,
    ) -> Result<Option<Booking>, StoreError> {
        let row: Option<BookingRow> = sqlx::query_as(
            "SELECT b.id, b.status, e.code AS experience, s.service_date, s.start_time,
                    b.created_at, b.expires_at, b.confirmed_at, b.cancelled_at
             FROM bookings b JOIN slots s ON s.id = b.slot_id
             JOIN experiences e ON e.id = b.experience_id
             WHERE b.id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .during("reading a booking")?;
        let Some(row) = row else {
            return Ok(None);
        };
        let pax: Vec<BookedPaxRow> = sqlx::query_as(
            "SELECT pax_type, quantity, currency, price_scale, final_price_minor,
                    original_price_minor
             FROM booking_pax WHERE booking_id = $1 ORDER BY position",
        )
        .bind(id)
        .fetch_all(&mut *conn)
        .await
        .during("reading a booking's pax")?;
        row.into_booking(pax).map(Some)
    }

    async fn booking(
        pool: &Pool<Self>,
        id: uuid::Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<Booking>, StoreError> {
        let mut conn = pool.acquire().await.during("reading a booking")?;
        let booking = Self::read_booking(&mut conn, &id.to_string()).await?;
        Ok(booking.map(|booking| booking.as_of(now)))
    }

    /// Releases every hold of `slot` past its deadline; the caller holds the day's lock.
    async fn expire_due_on_slot(
        conn: &mut Self::Connection,
        slot: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let due: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM bookings
             WHERE slot_id = $1 AND status = 'on_hold' AND expires_at <= $2",
        )
        .bind(slot)
        .bind(now)
        .fetch_all(&mut *conn)
        .await
        .during("finding the slot's lapsed holds")?;
        for (id,) in due {
            if let Some(booking) = Self::read_booking(&mut *conn, &id).await? {
                let release = BookingMove::Release;
                Self::post_move(
                    &mut *conn,
                    &id,
                    booking,
                    release,
                    BookingStatus::Expired,
                    now,
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Amends a booking in `tx` (a write transaction) and commits what it did; a refusal
    /// commits only the release of a hold found past its deadline.
    async fn amend_booking(
        mut tx: Transaction<'static, Self>,
        id: uuid::Uuid,
        amendment: &Amendment,
        now: DateTime<Utc>,
    ) -> Result<Result<Booking, Refusal>, StoreError> {
        let id_text = id.to_string();
        let day: Option<(String, NaiveDate)> = sqlx::query_as(
            "SELECT e.code, s.service_date
             FROM bookings b JOIN slots s ON s.id = b.slot_id
             JOIN experiences e ON e.id = b.experience_id
             WHERE b.id = $1",
        )
        .bind(id_text.as_str())
        .fetch_optional(&mut *tx)
        .await
        .during("finding a booking's day")?;
        let Some((experience, date)) = day else {
            return Ok(Err(Refusal::NotFound));
        };
        let mut days = vec![(stored_experience(&experience)?, date)];
        if let Some(request) = &amendment.rebook {
            days.push((request.experience, request.date));
        }
        days.sort_unstable();
        days.dedup();
        for &(experience, date) in &days {
            Self::lock_day(&mut tx, experience, date).await?;
        }
        // Read again under the lock: another instance may have moved it meanwhile.
        let Some(booking) = Self::read_booking(&mut tx, &id_text).await? else {
            return Ok(Err(Refusal::NotFound));
        };
        if !days.contains(&(booking.experience, booking.date)) {
            return Err(StoreError::Corrupt(format!(
                "booking {id} moved to another day while being amended; retry"
            )));
        }
        if booking.status == BookingStatus::OnHold && booking.expires_at <= now {
            let expired = Self::post_move(
                &mut tx,
                &id_text,
                booking,
                BookingMove::Release,
                BookingStatus::Expired,
                now,
            )
            .await?;
            tx.commit()
                .await
                .during("committing a lapsed hold's release")?;
            let ends_it = amendment.rebook.is_none()
                && matches!(
                    amendment.change,
                    Some(BookingChange::Expire | BookingChange::Cancel)
                );
            return Ok(if ends_it {
                Ok(expired)
            } else {
                Err(Refusal::Expired)
            });
        }
        let mut booking = booking;
        if let Some(request) = &amendment.rebook {
            booking = match Self::rebook(&mut tx, &id_text, booking, request, now).await? {
                Ok(rebooked) => rebooked,
                Err(refusal) => return Ok(Err(refusal)),
            };
        }
        if let Some(change) = amendment.change {
            booking = match Self::apply_change(&mut tx, &id_text, booking, change, now).await? {
                Ok(changed) => changed,
                Err(refusal) => return Ok(Err(refusal)),
            };
        }
        if let Some(record) = &amendment.record {
            Self::write_record(&mut tx, &id_text, record, now).await?;
        }
        tx.commit().await.during("committing a booking change")?;
        Ok(Ok(booking))
    }

    /// Moves a hold or a confirmed booking to the seats `request` asks for, in one posting
    /// (see [`plan_rebook`]); the caller holds the locks of both days.
    async fn rebook(
        conn: &mut Self::Connection,
        id: &str,
        booking: Booking,
        request: &HoldRequest,
        now: DateTime<Utc>,
    ) -> Result<Result<Booking, Refusal>, StoreError> {
        let confirmed = match booking.status {
            BookingStatus::OnHold => false,
            BookingStatus::Confirmed => true,
            BookingStatus::Cancelled => return Ok(Err(Refusal::Cancelled)),
            BookingStatus::Expired => return Ok(Err(Refusal::Expired)),
        };
        let slot = match Self::open_slot(&mut *conn, request, now).await? {
            Ok(slot) => slot,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let pax = match priced_pax(&slot.rules, request) {
            Ok(pax) => pax,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let (old_slot,): (i64,) = sqlx::query_as("SELECT slot_id FROM bookings WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *conn)
            .await
            .during("reading a booking's slot")?;
        let old_accounts = if old_slot == slot.id {
            None
        } else {
            Some(Self::pool_accounts(&mut *conn, old_slot).await?)
        };
        let old = booked_pools(
            old_accounts.as_deref().unwrap_or(&slot.accounts),
            old_slot,
            &booking_quantities(&booking),
        )?;
        let new = booked_pools(&slot.accounts, slot.id, &priced_quantities(&pax))?;
        // One posting moves the seats within an experience; a move to another experience's
        // slot is a posting on each (a journal transaction belongs to one experience), in the
        // same database transaction.
        let moves = if request.experience == booking.experience {
            vec![(booking.experience, plan_rebook(confirmed, &old, &new)?)]
        } else {
            vec![
                (booking.experience, plan_rebook(confirmed, &old, &[])?),
                (request.experience, plan_rebook(confirmed, &[], &new)?),
            ]
        };
        let mut planned = Vec::with_capacity(moves.len());
        for (experience, planned_move) in moves {
            match planned_move {
                Ok(planned_move) => planned.push((experience, planned_move)),
                Err(short) => return Ok(Err(Refusal::InsufficientCapacity(short))),
            }
        }
        let postings: Vec<JournalPosting<'_>> = planned
            .iter()
            .map(|(experience, planned)| JournalPosting {
                journal: Journal {
                    experience: *experience,
                    source: JournalSource::Booking {
                        id,
                        reason: "rebook",
                    },
                },
                transfers: &planned.transfers,
                posting: &planned.posting,
            })
            .collect();
        Self::write_postings(&mut *conn, &postings).await?;
        let expires_at = if confirmed {
            booking.expires_at
        } else {
            request.expires_at
        };
        sqlx::query(
            "UPDATE bookings SET experience_id = (SELECT experience_id FROM slots WHERE id = $1),
                                 slot_id = $1, expires_at = $2
             WHERE id = $3",
        )
        .bind(slot.id)
        .bind(expires_at)
        .bind(id)
        .execute(&mut *conn)
        .await
        .during("moving a booking")?;
        sqlx::query("DELETE FROM booking_pax WHERE booking_id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await
            .during("replacing a booking's pax")?;
        Self::write_pax(&mut *conn, &[(id, pax.as_slice())]).await?;
        Self::bump_day_version(&mut *conn, booking.experience, booking.date).await?;
        if (request.experience, request.date) != (booking.experience, booking.date) {
            Self::bump_day_version(&mut *conn, request.experience, request.date).await?;
        }
        Ok(Ok(Booking {
            experience: request.experience,
            date: request.date,
            start_time: request.start_time,
            pax: booked_pax(&pax)?,
            expires_at,
            ..booking
        }))
    }

    async fn write_record(
        conn: &mut Self::Connection,
        id: &str,
        record: &ResellerRecord,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO reseller_bookings (booking_id, uuid, reseller_reference, document,
                                            updated_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (booking_id) DO UPDATE
                 SET reseller_reference = excluded.reseller_reference,
                     document = excluded.document, updated_at = excluded.updated_at",
        )
        .bind(id)
        .bind(record.uuid.as_str())
        .bind(record.reseller_reference.as_deref())
        .bind(record.document.as_str())
        .bind(now)
        .execute(&mut *conn)
        .await
        .during("recording a reseller's booking")?;
        Ok(())
    }

    async fn reseller_bookings(
        pool: &Pool<Self>,
        query: &ResellerQuery,
        now: DateTime<Utc>,
    ) -> Result<Vec<ResellerBooking>, StoreError> {
        const LIMIT: i64 = 1000;
        let (condition, value) = match query {
            ResellerQuery::Key(key) => (
                "b.id = (SELECT booking_id FROM idempotency_keys WHERE key = $1)",
                key.clone(),
            ),
            ResellerQuery::Booking(id) => {
                ("b.id = $1 AND r.booking_id IS NOT NULL", id.to_string())
            }
            ResellerQuery::ResellerReference(reference) => {
                ("r.reseller_reference = $1", reference.clone())
            }
        };
        let sql = format!(
            "SELECT b.id, r.uuid, r.reseller_reference, r.document, r.updated_at
             FROM bookings b LEFT JOIN reseller_bookings r ON r.booking_id = b.id
             WHERE {condition}
             ORDER BY b.created_at DESC, b.id LIMIT {LIMIT}"
        );
        let mut conn = pool.acquire().await.during("reading resellers' bookings")?;
        let rows: Vec<ResellerRow> = sqlx::query_as(&sql)
            .bind(value.as_str())
            .fetch_all(&mut *conn)
            .await
            .during("finding resellers' bookings")?;
        let mut found = Vec::with_capacity(rows.len());
        for row in rows {
            let Some(booking) = Self::read_booking(&mut conn, &row.id).await? else {
                continue;
            };
            let record = match (row.uuid, row.document) {
                (Some(uuid), Some(document)) => Some(ResellerRecord {
                    uuid,
                    reseller_reference: row.reseller_reference,
                    document,
                }),
                _ => None,
            };
            found.push(ResellerBooking {
                booking: booking.as_of(now),
                record,
                updated_at: row.updated_at,
            });
        }
        Ok(found)
    }

    /// Decides and posts one change of `booking` (read under the day's lock, and not a hold
    /// past its deadline).
    async fn apply_change(
        conn: &mut Self::Connection,
        id: &str,
        booking: Booking,
        change: BookingChange,
        now: DateTime<Utc>,
    ) -> Result<Result<Booking, Refusal>, StoreError> {
        use BookingStatus::{Cancelled, Confirmed, Expired, OnHold};
        let (booking_move, status) = match (booking.status, change) {
            // Released already (by another instance's sweeper): nothing to count twice.
            (Expired, BookingChange::Expire) => return Ok(Err(Refusal::Expired)),
            (_, BookingChange::Expire) => return Ok(Ok(booking)),
            (OnHold, BookingChange::Confirm) => (BookingMove::Confirm, Confirmed),
            (OnHold, BookingChange::Cancel) => (BookingMove::Release, Cancelled),
            (OnHold, BookingChange::Extend(until)) => {
                sqlx::query("UPDATE bookings SET expires_at = $1 WHERE id = $2")
                    .bind(until)
                    .bind(id)
                    .execute(&mut *conn)
                    .await
                    .during("extending a hold")?;
                return Ok(Ok(Booking {
                    expires_at: until,
                    ..booking
                }));
            }
            (Confirmed, BookingChange::Confirm) => return Ok(Ok(booking)),
            (Confirmed, BookingChange::Cancel) => (BookingMove::Refund, Cancelled),
            (Cancelled | Expired, BookingChange::Cancel) => return Ok(Ok(booking)),
            (Cancelled, _) => return Ok(Err(Refusal::Cancelled)),
            (Expired, _) => return Ok(Err(Refusal::Expired)),
            (Confirmed, BookingChange::Extend(_)) => {
                return Ok(Err(Refusal::NotOnHold(Confirmed)));
            }
        };
        Self::post_move(conn, id, booking, booking_move, status, now)
            .await
            .map(Ok)
    }

    /// Posts `booking_move` on every pool of the booking and records its new `status`.
    async fn post_move(
        conn: &mut Self::Connection,
        id: &str,
        booking: Booking,
        booking_move: BookingMove,
        status: BookingStatus,
        now: DateTime<Utc>,
    ) -> Result<Booking, StoreError> {
        use BookingStatus::{Cancelled, Confirmed};
        let reason = match (booking_move, status) {
            (BookingMove::Confirm, _) => "confirm",
            (_, BookingStatus::Expired) => "expire",
            (BookingMove::Hold, _) => "hold",
            _ => "cancel",
        };
        let slot: (i64,) = sqlx::query_as("SELECT slot_id FROM bookings WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *conn)
            .await
            .during("reading a booking's slot")?;
        let quantities = booking_quantities(&booking);
        let accounts = Self::pool_accounts(&mut *conn, slot.0).await?;
        let pools = booked_pools(&accounts, slot.0, &quantities)?;
        let planned = plan_move(booking_move, &pools)?
            .map_err(|short| StoreError::Corrupt(format!("releasing seats: {short:?}")))?;
        let journal = Journal {
            experience: booking.experience,
            source: JournalSource::Booking { id, reason },
        };
        let posting = JournalPosting {
            journal,
            transfers: &planned.transfers,
            posting: &planned.posting,
        };
        Self::write_postings(&mut *conn, &[posting]).await?;
        let confirmed_at = (status == Confirmed)
            .then_some(now)
            .or(booking.confirmed_at);
        let cancelled_at = (status == Cancelled).then_some(now);
        sqlx::query(
            "UPDATE bookings SET status = $1, confirmed_at = $2, cancelled_at = $3,
                                 ended_at = $4
             WHERE id = $5",
        )
        .bind(status.as_str())
        .bind(confirmed_at)
        .bind(cancelled_at)
        .bind((status != Confirmed).then_some(now))
        .bind(id)
        .execute(&mut *conn)
        .await
        .during("recording a booking's status")?;
        Self::bump_day_version(&mut *conn, booking.experience, booking.date).await?;
        Ok(Booking {
            status,
            confirmed_at,
            cancelled_at,
            ..booking
        })
    }

    async fn recent_bookings(
        pool: &Pool<Self>,
        limit: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<Booking>, StoreError> {
        let mut conn = pool.acquire().await.during("reading recent bookings")?;
        let ids: Vec<(String,)> =
            sqlx::query_as("SELECT id FROM bookings ORDER BY created_at DESC, id LIMIT $1")
                .bind(limit)
                .fetch_all(&mut *conn)
                .await
                .during("listing recent bookings")?;
        let mut bookings = Vec::with_capacity(ids.len());
        for (id,) in ids {
            if let Some(booking) = Self::read_booking(&mut conn, &id).await? {
                bookings.push(booking.as_of(now));
            }
        }
        Ok(bookings)
    }

    async fn due_holds(
        pool: &Pool<Self>,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<uuid::Uuid>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM bookings WHERE status = 'on_hold' AND expires_at <= $1
             ORDER BY expires_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(pool)
        .await
        .during("finding lapsed holds")?;
        rows.iter().map(|(id,)| parse_uuid(id)).collect()
    }

    async fn booking_totals(pool: &Pool<Self>) -> Result<BookingTotals, StoreError> {
        let (seats_on_hold,): (i64,) = sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(balance), 0) AS BIGINT) FROM accounts
             WHERE kind = 'held' AND pax_type IS NULL",
        )
        .fetch_one(pool)
        .await
        .during("counting seats on hold")?;
        let shortfall: Vec<(String, i64)> = sqlx::query_as(
            "SELECT e.code, CAST(-SUM(a.balance) AS BIGINT) FROM accounts a
             JOIN experiences e ON e.id = a.experience_id
             WHERE a.kind = 'shortfall' AND a.pax_type IS NULL
             GROUP BY e.code",
        )
        .fetch_all(pool)
        .await
        .during("counting shortfalls")?;
        let mut shortfall = shortfall
            .into_iter()
            .map(|(id, seats)| Ok((stored_experience(&id)?, seats)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        shortfall.sort_unstable();
        Ok(BookingTotals {
            seats_on_hold,
            shortfall,
        })
    }
}

/// Who a journal transaction is for: a fetched day, or a booking's move.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Journal<'a> {
    pub experience: ExperienceId,
    pub source: JournalSource<'a>,
}

/// A journal transaction to write: what it is, its transfers and the entries they make.
pub(crate) struct JournalPosting<'a> {
    pub journal: Journal<'a>,
    pub transfers: &'a [Transfer],
    pub posting: &'a PlannedPosting,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum JournalSource<'a> {
    Fetch(&'a str),
    /// `reason`: `hold`, `confirm`, `cancel` or `expire`.
    Booking {
        id: &'a str,
        reason: &'static str,
    },
}

impl Journal<'_> {
    pub fn fetch_id(&self) -> Option<&str> {
        match self.source {
            JournalSource::Fetch(id) => Some(id),
            JournalSource::Booking { .. } => None,
        }
    }

    pub fn booking_id(&self) -> Option<&str> {
        match self.source {
            JournalSource::Fetch(_) => None,
            JournalSource::Booking { id, .. } => Some(id),
        }
    }

    pub fn reason(&self) -> &'static str {
        match self.source {
            JournalSource::Fetch(_) => "sync",
            JournalSource::Booking { reason, .. } => reason,
        }
    }
}

/// The four accounts of each pool of `slot` named in `quantities` (`None`: the slot's own
/// pool), with those quantities.
fn booked_pools(
    accounts: &[PoolAccountRow],
    slot: i64,
    quantities: &[(Option<String>, Seats)],
) -> Result<Vec<BookedPool>, StoreError> {
    quantities
        .iter()
        .map(|(pax_type, quantity)| {
            let account = |kind: AccountKind| {
                accounts
                    .iter()
                    .find(|row| row.kind == kind && row.pax_type == *pax_type)
                    .map(|row| PoolAccount {
                        id: row.id,
                        running: RunningBalance {
                            balance: row.balance,
                            version: row.version,
                        },
                    })
                    .ok_or_else(|| {
                        StoreError::Corrupt(format!(
                            "slot {slot} pool {pax_type:?} has no {kind} account"
                        ))
                    })
            };
            Ok(BookedPool {
                pax_type: pax_type.clone(),
                available: account(AccountKind::Available)?,
                held: account(AccountKind::Held)?,
                sold: account(AccountKind::Sold)?,
                shortfall: account(AccountKind::Shortfall)?,
                quantity: *quantity,
            })
        })
        .collect()
}

/// The pax a hold asks for with their rules and prices, in the slot's order, or why the
/// slot's pax types do not allow it.
fn priced_pax(
    rules: &[PaxRuleRow],
    request: &HoldRequest,
) -> Result<Vec<(PaxRuleRow, Seats)>, Refusal> {
    let mut pax = Vec::with_capacity(request.pax.len());
    for wanted in &request.pax {
        let Some(rule) = rules.iter().find(|rule| rule.pax_type == wanted.pax_type) else {
            return Err(Refusal::UnknownPaxType(wanted.pax_type.clone()));
        };
        if !(rule.min_pax..=rule.max_pax).contains(&wanted.quantity) {
            return Err(Refusal::QuantityOutOfRange {
                pax_type: wanted.pax_type.clone(),
                quantity: wanted.quantity,
                min: rule.min_pax,
                max: rule.max_pax,
            });
        }
        pax.push((rule.clone(), wanted.quantity));
    }
    pax.sort_by_key(|(rule, _)| rule.position);
    Ok(pax)
}

/// What a booking takes of each pool: the slot's own (`None`, every pax) and each pax type's.
fn pool_quantities<'p>(
    pax: impl Iterator<Item = (&'p String, Seats)> + Clone,
) -> Vec<(Option<String>, Seats)> {
    let total: Seats = pax.clone().map(|(_, quantity)| quantity).sum();
    std::iter::once((None, total))
        .chain(pax.map(|(pax_type, quantity)| (Some(pax_type.clone()), quantity)))
        .collect()
}

fn priced_quantities(pax: &[(PaxRuleRow, Seats)]) -> Vec<(Option<String>, Seats)> {
    pool_quantities(
        pax.iter()
            .map(|(rule, quantity)| (&rule.pax_type, *quantity)),
    )
}

fn booking_quantities(booking: &Booking) -> Vec<(Option<String>, Seats)> {
    pool_quantities(booking.pax.iter().map(|pax| (&pax.pax_type, pax.quantity)))
}

fn booked_pax(pax: &[(PaxRuleRow, Seats)]) -> Result<Vec<BookedPax>, StoreError> {
    pax.iter()
        .map(|(rule, quantity)| {
            Ok(BookedPax {
                pax_type: rule.pax_type.clone(),
                quantity: *quantity,
                unit_price: rule.price.clone().into_price()?,
            })
        })
        .collect()
}

/// A slot of a batch of holds, by experience, date and start time.
type SlotKey = (ExperienceId, NaiveDate, NaiveTime);

/// A hold of a batch that fits: what it writes.
pub(crate) struct HeldSeats<'h> {
    hold: &'h KeyedHold,
    slot: i64,
    /// The experience's key.
    experience: i64,
    booking: Booking,
    /// Its pax types' rules (with their prices) and quantities, in the slot's order.
    pax: Vec<(PaxRuleRow, Seats)>,
    planned: PlannedMove,
}

/// `($1, $2, …), (…)`: `rows` rows of `columns` placeholders, numbered in order.
fn placeholders(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|row| {
            let row: Vec<String> = (1..=columns)
                .map(|column| format!("${}", row * columns + column))
                .collect();
            format!("({})", row.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A slot being held in a batch: its pax types, and its pools as the batch has left them.
pub(crate) struct OpenSlot {
    id: i64,
    /// The experience's key.
    experience: i64,
    rules: Vec<PaxRuleRow>,
    accounts: Vec<PoolAccountRow>,
}

fn stored_experience(code: &str) -> Result<ExperienceId, StoreError> {
    code.parse()
        .map_err(|e: crate::domain::InvalidExperienceId| StoreError::Corrupt(e.to_string()))
}

fn parse_uuid(text: &str) -> Result<uuid::Uuid, StoreError> {
    uuid::Uuid::parse_str(text)
        .map_err(|e| StoreError::Corrupt(format!("booking id {text:?}: {e}")))
}

/// A pool of the slot being held: its pax type (`None` for the slot's own), available seats,
/// and the pax type's quantity limits.
pub(crate) type PoolLimitsRow = (Option<String>, i64, Option<i64>, Option<i64>);

/// A pax type of the slot being held, with its rules and current price.
#[derive(Clone, FromRow)]
pub(crate) struct PaxRuleRow {
    pax_type: String,
    position: i32,
    min_pax: i64,
    max_pax: i64,
    #[sqlx(flatten)]
    price: StoredPrice,
}

#[derive(FromRow)]
pub(crate) struct PoolAccountRow {
    id: i64,
    kind: AccountKind,
    pax_type: Option<String>,
    balance: i64,
    version: i64,
}

#[derive(FromRow)]
pub(crate) struct BookingRow {
    id: String,
    status: String,
    experience: String,
    service_date: NaiveDate,
    start_time: NaiveTime,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    confirmed_at: Option<DateTime<Utc>>,
    cancelled_at: Option<DateTime<Utc>>,
}

#[derive(FromRow)]
pub(crate) struct ResellerRow {
    id: String,
    uuid: Option<String>,
    reseller_reference: Option<String>,
    document: Option<String>,
    updated_at: Option<DateTime<Utc>>,
}

#[derive(FromRow)]
pub(crate) struct BookedPaxRow {
    pax_type: String,
    quantity: i64,
    #[sqlx(flatten)]
    price: StoredPrice,
}

impl BookingRow {
    fn into_booking(self, pax: Vec<BookedPaxRow>) -> Result<Booking, StoreError> {
        Ok(Booking {
            id: parse_uuid(&self.id)?,
            status: BookingStatus::parse(&self.status)?,
            experience: stored_experience(&self.experience)?,
            date: self.service_date,
            start_time: self.start_time,
            pax: pax
                .into_iter()
                .map(|row| {
                    Ok(BookedPax {
                        pax_type: row.pax_type,
                        quantity: row.quantity,
                        unit_price: row.price.into_price()?,
                    })
                })
                .collect::<Result<_, StoreError>>()?,
            created_at: self.created_at,
            expires_at: self.expires_at,
            confirmed_at: self.confirmed_at,
            cancelled_at: self.cancelled_at,
        })
    }
}
