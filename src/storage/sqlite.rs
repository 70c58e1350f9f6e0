//! The embedded SQLite backend: one file under `data/` in WAL mode.
//!
//! Writes go through a pool of exactly one connection and start with `BEGIN IMMEDIATE`, so a
//! write transaction takes the database's write lock up front and can never fail halfway on a
//! read-to-write lock upgrade. Reads use a separate read-only pool that WAL lets run beside the
//! writer.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqliteConnection, SqlitePool};

use super::{
    ApplyOutcome, DatePrice, DayPool, DayPosting, DuringExt, Fence, LastFetch, Lease, MinorUnits,
    PaxRow, Posting, RunningBalance, SellablePaxRow, ServedSlot, SlotHistory, SlotRow, Store,
    StoreError, SyncControl, SyncRequest, day_transfers, sellable_dates_from_rows, served_slots,
    verify_ledger,
};
use crate::domain::{DayFetch, ExperienceId};
use crate::ledger::{AccountId, VerifyReport};

const TIME_FORMAT: &str = "%H:%M";
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(120);

pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .during("parsing the SQLite URL")?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let path = options.get_filename();
        if path.as_os_str() == ":memory:" {
            // The reader and writer pools would each get a different empty database.
            return Err(StoreError::UnsupportedUrl(format!(
                "{url} (in-memory SQLite is not supported; use a file)"
            )));
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Corrupt(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        // Generous: the single writer connection is shared by every write, and a test running
        // under tokio's paused clock must not see a spurious timeout.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await
            .during("opening the SQLite database")?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.read_only(true))
            .await
            .during("opening the SQLite database for reading")?;
        Ok(Self { writer, reader })
    }
}

fn format_time(time: NaiveTime) -> String {
    time.format(TIME_FORMAT).to_string()
}

async fn ensure_experience(
    conn: &mut SqliteConnection,
    id: ExperienceId,
) -> Result<AccountId, StoreError> {
    sqlx::query("INSERT OR IGNORE INTO experiences (id, created_at) VALUES (?, ?)")
        .bind(id.get())
        .bind(Utc::now())
        .execute(&mut *conn)
        .await
        .during("recording the experience")?;
    sqlx::query("INSERT OR IGNORE INTO accounts (experience_id, kind) VALUES (?, 'partner')")
        .bind(id.get())
        .execute(&mut *conn)
        .await
        .during("opening the partner account")?;
    sqlx::query_scalar("SELECT id FROM accounts WHERE experience_id = ? AND kind = 'partner'")
        .bind(id.get())
        .fetch_one(&mut *conn)
        .await
        .during("reading the partner account")
}

/// Writes the day's slots and pax into the mirror tables, marking the ones the partner no
/// longer returns as closed / absent, and makes sure every pool has an available account.
async fn write_mirror(conn: &mut SqliteConnection, fetch: &DayFetch) -> Result<(), StoreError> {
    let fetch_id = fetch.id.to_string();
    let experience = fetch.experience.get();
    for slot in &fetch.slots {
        let slot_id: i64 = sqlx::query_scalar(
            "INSERT INTO slots (experience_id, provider_slot_id, service_date, start_time,
                                end_time, currency, variant_id, observed_remaining, is_open,
                                last_fetch_id)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?)
             ON CONFLICT (experience_id, provider_slot_id) DO UPDATE SET
                service_date = excluded.service_date, start_time = excluded.start_time,
                end_time = excluded.end_time, currency = excluded.currency,
                variant_id = excluded.variant_id,
                observed_remaining = excluded.observed_remaining, is_open = 1,
                last_fetch_id = excluded.last_fetch_id
             RETURNING id",
        )
        .bind(experience)
        .bind(&slot.provider_slot_id)
        .bind(slot.start_date)
        .bind(format_time(slot.start_time))
        .bind(format_time(slot.end_time))
        .bind(&slot.currency)
        .bind(slot.variant_id)
        .bind(slot.remaining)
        .bind(&fetch_id)
        .fetch_one(&mut *conn)
        .await
        .during("upserting a slot")?;
        sqlx::query(
            "INSERT OR IGNORE INTO accounts (experience_id, kind, slot_id) VALUES (?, 'available', ?)",
        )
        .bind(experience)
        .bind(slot_id)
        .execute(&mut *conn)
        .await
        .during("opening a slot's available account")?;
        for (position, pax) in slot.pax.iter().enumerate() {
            let price = MinorUnits::from_price(&pax.price)?;
            sqlx::query(
                "INSERT INTO slot_pax (slot_id, pax_type, position, name, description, min_pax,
                                       max_pax, is_primary, currency, price_scale,
                                       final_price_minor, original_price_minor,
                                       observed_remaining, is_present, last_fetch_id)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)
                 ON CONFLICT (slot_id, pax_type) DO UPDATE SET
                    position = excluded.position, name = excluded.name,
                    description = excluded.description, min_pax = excluded.min_pax,
                    max_pax = excluded.max_pax, is_primary = excluded.is_primary,
                    currency = excluded.currency, price_scale = excluded.price_scale,
                    final_price_minor = excluded.final_price_minor,
                    original_price_minor = excluded.original_price_minor,
                    observed_remaining = excluded.observed_remaining, is_present = 1,
                    last_fetch_id = excluded.last_fetch_id",
            )
            .bind(slot_id)
            .bind(&pax.pax_type)
            .bind(position as i64)
            .bind(&pax.name)
            .bind(&pax.description)
            .bind(pax.min)
            .bind(pax.max)
            .bind(pax.is_primary)
            .bind(&pax.price.currency)
            .bind(price.scale)
            .bind(price.final_price)
            .bind(price.original_price)
            .bind(pax.remaining)
            .bind(&fetch_id)
            .execute(&mut *conn)
            .await
            .during("upserting a slot's pax")?;
            sqlx::query(
                "INSERT OR IGNORE INTO accounts (experience_id, kind, slot_id, pax_type)
                 VALUES (?, 'available', ?, ?)",
            )
            .bind(experience)
            .bind(slot_id)
            .bind(&pax.pax_type)
            .execute(&mut *conn)
            .await
            .during("opening a pax pool's available account")?;
        }
    }
    // Everything of this day that the fetch did not touch has vanished at the partner.
    sqlx::query(
        "UPDATE slot_pax SET is_present = 0, observed_remaining = 0, last_fetch_id = ?1
         WHERE is_present = 1 AND last_fetch_id <> ?1
           AND slot_id IN (SELECT id FROM slots WHERE experience_id = ?2 AND service_date = ?3)",
    )
    .bind(&fetch_id)
    .bind(experience)
    .bind(fetch.date)
    .execute(&mut *conn)
    .await
    .during("marking vanished pax")?;
    sqlx::query(
        "UPDATE slots SET is_open = 0, observed_remaining = 0, last_fetch_id = ?1
         WHERE experience_id = ?2 AND service_date = ?3 AND is_open = 1 AND last_fetch_id <> ?1",
    )
    .bind(&fetch_id)
    .bind(experience)
    .bind(fetch.date)
    .execute(&mut *conn)
    .await
    .during("closing vanished slots")?;
    Ok(())
}

/// Posts the transfers that bring the day's pool accounts to what the mirror now says.
/// Returns how many transfers were posted.
async fn reconcile_ledger(
    conn: &mut SqliteConnection,
    fetch: &DayFetch,
    partner: AccountId,
) -> Result<usize, StoreError> {
    let pools: Vec<DayPool> = sqlx::query_as(
        "SELECT a.id AS account, a.balance, a.version,
                CASE WHEN s.is_open AND (a.pax_type IS NULL OR p.is_present)
                     THEN COALESCE(p.observed_remaining, s.observed_remaining) ELSE 0 END
                    AS observed
         FROM slots s
         JOIN accounts a ON a.slot_id = s.id AND a.kind = 'available'
         LEFT JOIN slot_pax p ON p.slot_id = s.id AND p.pax_type = a.pax_type
         WHERE s.experience_id = ? AND s.service_date = ?",
    )
    .bind(fetch.experience.get())
    .bind(fetch.date)
    .fetch_all(&mut *conn)
    .await
    .during("reading the day's pool balances")?;
    let transfers = day_transfers(partner, &pools);
    if transfers.is_empty() {
        return Ok(0);
    }
    let partner_state: RunningBalance =
        sqlx::query_as("SELECT balance, version FROM accounts WHERE id = ?")
            .bind(partner)
            .fetch_one(&mut *conn)
            .await
            .during("reading the partner balance")?;
    let posting = DayPosting::post(&transfers, partner, partner_state, &pools)?;

    let now = Utc::now();
    let transaction_id: i64 = sqlx::query_scalar(
        "INSERT INTO journal_transactions (experience_id, fetch_id, reason, created_at)
         VALUES (?, ?, 'sync', ?) RETURNING id",
    )
    .bind(fetch.experience.get())
    .bind(fetch.id.to_string())
    .bind(now)
    .fetch_one(&mut *conn)
    .await
    .during("opening a journal transaction")?;
    let mut transfer_ids = Vec::with_capacity(transfers.len());
    for transfer in &transfers {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO transfers (transaction_id, debit_account_id, credit_account_id, amount)
             VALUES (?, ?, ?, ?) RETURNING id",
        )
        .bind(transaction_id)
        .bind(transfer.debit)
        .bind(transfer.credit)
        .bind(transfer.amount)
        .fetch_one(&mut *conn)
        .await
        .during("recording a transfer")?;
        transfer_ids.push(id);
    }
    for entry in &posting.entries {
        sqlx::query(
            "INSERT INTO entries (transaction_id, transfer_id, account_id, amount, balance_after,
                                  version, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(transaction_id)
        .bind(transfer_ids[entry.transfer])
        .bind(entry.account)
        .bind(entry.amount)
        .bind(entry.balance_after)
        .bind(entry.version)
        .bind(now)
        .execute(&mut *conn)
        .await
        .during("recording a ledger entry")?;
    }
    for update in &posting.updates {
        // The version guard makes a concurrent writer's change fail loudly, never merge.
        let updated = sqlx::query(
            "UPDATE accounts SET balance = ?, version = ? WHERE id = ? AND version = ?",
        )
        .bind(update.balance)
        .bind(update.version)
        .bind(update.account)
        .bind(update.read_version)
        .execute(&mut *conn)
        .await
        .during("updating an account balance")?;
        if updated.rows_affected() != 1 {
            return Err(StoreError::Corrupt(format!(
                "account {} changed while a fetch was being applied",
                update.account
            )));
        }
    }
    Ok(transfers.len())
}

#[async_trait]
impl Store for SqliteStore {
    async fn ensure_experiences(&self, ids: &[ExperienceId]) -> Result<(), StoreError> {
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .during("starting a write transaction")?;
        for &id in ids {
            ensure_experience(&mut tx, id).await?;
        }
        tx.commit().await.during("committing the experiences")
    }

    async fn apply_fetch(
        &self,
        fetch: &DayFetch,
        fence: Option<&Fence>,
    ) -> Result<ApplyOutcome, StoreError> {
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .during("starting the apply transaction")?;
        if let Some(fence) = fence {
            // BEGIN IMMEDIATE holds the write lock: no takeover can commit until this does.
            fence.check(&read_lease(&mut tx).await?)?;
        }
        let fetch_id = fetch.id.to_string();
        let seen: Option<i64> = sqlx::query_scalar("SELECT 1 FROM fetches WHERE id = ?")
            .bind(&fetch_id)
            .fetch_optional(&mut *tx)
            .await
            .during("looking up the fetch")?;
        if seen.is_some() {
            return Ok(ApplyOutcome::AlreadyApplied);
        }
        let newest: Option<DateTime<Utc>> = sqlx::query_scalar(
            "SELECT last_fetched_at FROM product_dates WHERE experience_id = ? AND service_date = ?",
        )
        .bind(fetch.experience.get())
        .bind(fetch.date)
        .fetch_optional(&mut *tx)
        .await
        .during("reading the day's checkpoint")?;
        if newest.is_some_and(|newest| newest >= fetch.fetched_at) {
            return Ok(ApplyOutcome::Superseded);
        }

        let partner = ensure_experience(&mut tx, fetch.experience).await?;
        sqlx::query(
            "INSERT INTO fetches (id, experience_id, service_date, fetched_at, applied_at, slot_count)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&fetch_id)
        .bind(fetch.experience.get())
        .bind(fetch.date)
        .bind(fetch.fetched_at)
        .bind(Utc::now())
        .bind(fetch.slots.len() as i64)
        .execute(&mut *tx)
        .await
        .during("recording the fetch")?;
        write_mirror(&mut tx, fetch).await?;
        let transfers = reconcile_ledger(&mut tx, fetch, partner).await?;
        sqlx::query(
            "INSERT INTO product_dates (experience_id, service_date, last_fetch_id, last_fetched_at,
                                        slot_count)
             VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (experience_id, service_date) DO UPDATE SET
                last_fetch_id = excluded.last_fetch_id,
                last_fetched_at = excluded.last_fetched_at, slot_count = excluded.slot_count",
        )
        .bind(fetch.experience.get())
        .bind(fetch.date)
        .bind(&fetch_id)
        .bind(fetch.fetched_at)
        .bind(fetch.slots.len() as i64)
        .execute(&mut *tx)
        .await
        .during("saving the day's checkpoint")?;
        tx.commit().await.during("committing the fetched day")?;
        Ok(ApplyOutcome::Applied {
            slots: fetch.slots.len(),
            transfers,
        })
    }

    async fn experience_exists(&self, id: ExperienceId) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM experiences WHERE id = ?")
            .bind(id.get())
            .fetch_optional(&self.reader)
            .await
            .during("looking up an experience")?;
        Ok(found.is_some())
    }

    async fn slots_on(
        &self,
        id: ExperienceId,
        date: NaiveDate,
    ) -> Result<Vec<ServedSlot>, StoreError> {
        let slot_rows: Vec<SlotRow> = sqlx::query_as(
            "SELECT s.id, s.provider_slot_id, s.start_time, a.balance AS remaining
             FROM slots s
             JOIN accounts a ON a.slot_id = s.id AND a.pax_type IS NULL AND a.kind = 'available'
             WHERE s.experience_id = ? AND s.service_date = ? AND s.is_open = 1
             ORDER BY s.start_time, s.id",
        )
        .bind(id.get())
        .bind(date)
        .fetch_all(&self.reader)
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
             WHERE s.experience_id = ? AND s.service_date = ? AND s.is_open = 1
               AND p.is_present = 1
             ORDER BY p.slot_id, p.position",
        )
        .bind(id.get())
        .bind(date)
        .fetch_all(&self.reader)
        .await
        .during("reading a day's pax")?;
        served_slots(date, slot_rows, pax_rows)
    }

    async fn sellable_dates(
        &self,
        id: ExperienceId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DatePrice>, StoreError> {
        let rows: Vec<SellablePaxRow> = sqlx::query_as(
            "SELECT s.service_date, s.id AS slot_id, p.is_primary, p.currency, p.price_scale,
                    p.final_price_minor, p.original_price_minor
             FROM slots s
             JOIN accounts a ON a.slot_id = s.id AND a.pax_type IS NULL AND a.kind = 'available'
             JOIN slot_pax p ON p.slot_id = s.id AND p.is_present = 1
             WHERE s.experience_id = ? AND s.service_date BETWEEN ? AND ?
               AND s.is_open = 1 AND a.balance > 0
             ORDER BY s.service_date, s.id, p.position",
        )
        .bind(id.get())
        .bind(from)
        .bind(to)
        .fetch_all(&self.reader)
        .await
        .during("reading sellable dates")?;
        sellable_dates_from_rows(rows)
    }

    async fn slot_history(
        &self,
        id: ExperienceId,
        date: NaiveDate,
        start_time: NaiveTime,
    ) -> Result<Option<SlotHistory>, StoreError> {
        let slot: Option<(i64, String, bool)> = sqlx::query_as(
            "SELECT id, provider_slot_id, is_open FROM slots
             WHERE experience_id = ? AND service_date = ? AND start_time = ?
             ORDER BY is_open DESC, id DESC LIMIT 1",
        )
        .bind(id.get())
        .bind(date)
        .bind(format_time(start_time))
        .fetch_optional(&self.reader)
        .await
        .during("looking up a slot")?;
        let Some((slot_id, provider_slot_id, is_open)) = slot else {
            return Ok(None);
        };
        let postings: Vec<Posting> = sqlx::query_as(
            "SELECT e.created_at AS at, e.transaction_id, e.transfer_id, e.account_id,
                    a.kind AS account_kind, a.pax_type, e.amount, e.balance_after, e.version,
                    j.fetch_id, f.fetched_at
             FROM entries e
             JOIN accounts a ON a.id = e.account_id
             JOIN journal_transactions j ON j.id = e.transaction_id
             JOIN fetches f ON f.id = j.fetch_id
             WHERE a.slot_id = ?
             ORDER BY e.id",
        )
        .bind(slot_id)
        .fetch_all(&self.reader)
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

    async fn verify(&self) -> Result<VerifyReport, StoreError> {
        // One read transaction so every check sees the same snapshot.
        let mut tx = self
            .reader
            .begin()
            .await
            .during("starting the verification")?;
        verify_ledger::<Sqlite>(&mut tx).await
    }

    async fn last_fetches(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<LastFetch>, StoreError> {
        sqlx::query_as(
            "SELECT experience_id AS experience, service_date AS date,
                    last_fetched_at AS fetched_at
             FROM product_dates WHERE service_date BETWEEN ? AND ?",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.reader)
        .await
        .during("reading the last fetch of each day")
    }

    async fn sync_control(&self) -> Result<SyncControl, StoreError> {
        read_sync_control(&self.reader).await
    }

    async fn pause_sync(&self, reason: &str, at: DateTime<Utc>) -> Result<SyncControl, StoreError> {
        sqlx::query(
            "UPDATE sync_control SET paused = 1, reason = ?, changed_at = ?
             WHERE id = 1 AND paused = 0",
        )
        .bind(reason)
        .bind(at)
        .execute(&self.writer)
        .await
        .during("pausing the sync")?;
        read_sync_control(&self.writer).await
    }

    async fn acquire_lease(
        &self,
        holder: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .during("starting the lease transaction")?;
        let Some(claimed) = read_lease(&mut tx).await?.claimed_by(holder, now, ttl) else {
            return Ok(None);
        };
        sqlx::query("UPDATE sync_lease SET holder = ?, token = ?, expires_at = ? WHERE id = 1")
            .bind(&claimed.holder)
            .bind(claimed.token)
            .bind(claimed.expires_at)
            .execute(&mut *tx)
            .await
            .during("claiming the sync lease")?;
        tx.commit().await.during("committing the sync lease")?;
        Ok(Some(claimed))
    }

    async fn current_lease(&self) -> Result<Lease, StoreError> {
        sqlx::query_as("SELECT holder, token, expires_at FROM sync_lease WHERE id = 1")
            .fetch_one(&self.reader)
            .await
            .during("reading the sync lease")
    }

    async fn request_sync(&self, request: &SyncRequest) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sync_triggers (experience_id, from_date, to_date, requested_at)
             VALUES (?, ?, ?, ?)",
        )
        .bind(request.experience.map(ExperienceId::get))
        .bind(request.from)
        .bind(request.to)
        .bind(request.requested_at)
        .execute(&self.writer)
        .await
        .during("recording a sync request")?;
        Ok(())
    }

    async fn take_sync_requests(&self) -> Result<Vec<SyncRequest>, StoreError> {
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .during("starting to take sync requests")?;
        let rows: Vec<(i64, Option<i64>, NaiveDate, NaiveDate, DateTime<Utc>)> = sqlx::query_as(
            "SELECT id, experience_id, from_date, to_date, requested_at FROM sync_triggers
             ORDER BY id",
        )
        .fetch_all(&mut *tx)
        .await
        .during("reading sync requests")?;
        if let Some(&(last, ..)) = rows.last() {
            sqlx::query("DELETE FROM sync_triggers WHERE id <= ?")
                .bind(last)
                .execute(&mut *tx)
                .await
                .during("taking sync requests")?;
        }
        tx.commit().await.during("committing taken sync requests")?;
        rows.into_iter()
            .map(|(_, experience, from, to, at)| SyncRequest::try_from((experience, from, to, at)))
            .collect()
    }

    async fn release_lease(
        &self,
        lease: &Lease,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE sync_lease SET expires_at = ? WHERE id = 1 AND holder = ? AND token = ?",
        )
        .bind(expires_at)
        .bind(&lease.holder)
        .bind(lease.token)
        .execute(&self.writer)
        .await
        .during("releasing the sync lease")?;
        Ok(())
    }

    async fn resume_sync(&self, at: DateTime<Utc>) -> Result<SyncControl, StoreError> {
        sqlx::query(
            "UPDATE sync_control SET paused = 0, reason = NULL, changed_at = ?
             WHERE id = 1 AND paused = 1",
        )
        .bind(at)
        .execute(&self.writer)
        .await
        .during("resuming the sync")?;
        read_sync_control(&self.writer).await
    }
}

async fn read_sync_control(pool: &SqlitePool) -> Result<SyncControl, StoreError> {
    sqlx::query_as("SELECT paused, reason, changed_at FROM sync_control WHERE id = 1")
        .fetch_one(pool)
        .await
        .during("reading the sync control")
}

async fn read_lease(conn: &mut SqliteConnection) -> Result<Lease, StoreError> {
    sqlx::query_as("SELECT holder, token, expires_at FROM sync_lease WHERE id = 1")
        .fetch_one(conn)
        .await
        .during("reading the sync lease")
}
