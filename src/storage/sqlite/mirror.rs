//! Applying a fetched day on SQLite: the whole day in a few multi-statement round trips to the
//! single writer connection, under the write lock its first statement takes.

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::{Row, Sqlite, SqliteConnection};

use super::{SqliteStore, format_time};
use crate::domain::{DayFetch, ExperienceId, MinorUnits};
use crate::ledger::posting::{DayPool, PlannedPosting, RunningBalance, day_transfers};
use crate::ledger::{AccountId, Transfer};
use crate::storage::mirror::Postings;
use crate::storage::sql::{BOOKED_ACCOUNTS, Journal, JournalSource, Portable, booked_shortfall};
use crate::storage::{ApplyOutcome, DuringExt, Fence, LastFetch, Mirror, StoreError};

/// What the store knows about a day before applying a fetch of it, and where a posting for
/// it would start.
#[derive(sqlx::FromRow)]
struct DayCheckpoint {
    /// This very fetch was applied before.
    seen: bool,
    /// When the newest applied fetch of the day was made.
    newest: Option<DateTime<Utc>>,
    /// The experience's key.
    experience: i64,
    partner: AccountId,
    #[sqlx(flatten)]
    start: PostingStart,
}

/// Records an experience and opens its partner account, unless they exist already.
const ENSURE_EXPERIENCE: &str =
    "INSERT OR IGNORE INTO experiences (code, created_at) VALUES (?, ?);
     INSERT OR IGNORE INTO accounts (experience_id, kind)
     SELECT id, 'partner' FROM experiences WHERE code = ?";

async fn ensure_experience(
    conn: &mut SqliteConnection,
    id: ExperienceId,
) -> Result<(), StoreError> {
    sqlx::query(ENSURE_EXPERIENCE)
        .bind(id.as_str())
        .bind(Utc::now())
        .bind(id.as_str())
        .execute(&mut *conn)
        .await
        .during("recording the experience and its partner account")?;
    Ok(())
}

/// [`ENSURE_EXPERIENCE`], then what the store knows about the day and where a posting would
/// start. An apply begins with a plain (deferred) `BEGIN` and this command, whose first
/// statement writes: that takes the write lock before anything is read, waiting out other
/// writers on a fresh snapshot exactly as `BEGIN IMMEDIATE` would, and saves the extra round
/// trip to the worker thread that sqlx spends checking a custom `BEGIN`.
static ENSURE_EXPERIENCE_READ_CHECKPOINT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{ENSURE_EXPERIENCE};
         SELECT EXISTS (SELECT 1 FROM fetches WHERE id = ?) AS seen,
                (SELECT last_fetched_at FROM product_dates
                 WHERE experience_id = experience.id AND service_date = ?) AS newest,
                experience.id AS experience,
                partner.id AS partner, partner.balance, partner.version,
                (SELECT COALESCE(MAX(id), 0) FROM journal_transactions) AS last_transaction
         FROM experiences experience
         JOIN accounts partner ON partner.experience_id = experience.id
                              AND partner.kind = 'partner'
         WHERE experience.code = ?"
    )
});

/// A fetched slot as one element of the JSON array a statement reads with `json_each`.
#[derive(Serialize)]
struct SlotJson<'a> {
    provider_slot_id: &'a str,
    service_date: NaiveDate,
    start_time: String,
    end_time: String,
    currency: &'a str,
    variant_id: i64,
    remaining: i64,
}

/// A fetched pax, named by its slot's provider id (the slot's row id may not exist yet).
#[derive(Serialize)]
struct PaxJson<'a> {
    provider_slot_id: &'a str,
    pax_type: &'a str,
    position: usize,
    name: &'a str,
    description: &'a str,
    min_pax: i64,
    max_pax: i64,
    is_primary: bool,
    currency: &'a str,
    price_scale: u32,
    final_price_minor: i64,
    original_price_minor: i64,
    remaining: i64,
}

/// A fetched day as two JSON arrays, so each table is written by one statement whatever the
/// day's size: every statement is a round trip to the connection's worker thread, and one
/// per slot and pax would dominate an apply.
struct DayJson {
    slots: String,
    pax: String,
}

impl DayJson {
    fn new(fetch: &DayFetch) -> Result<Self, StoreError> {
        let mut slots = Vec::with_capacity(fetch.slots.len());
        let mut pax_rows = Vec::new();
        for slot in &fetch.slots {
            slots.push(SlotJson {
                provider_slot_id: &slot.provider_slot_id,
                service_date: slot.start_date,
                start_time: format_time(slot.start_time),
                end_time: format_time(slot.end_time),
                currency: &slot.currency,
                variant_id: slot.variant_id,
                remaining: slot.remaining,
            });
            for (position, pax) in slot.pax.iter().enumerate() {
                let price = MinorUnits::from_price(&pax.price)?;
                pax_rows.push(PaxJson {
                    provider_slot_id: &slot.provider_slot_id,
                    pax_type: &pax.pax_type,
                    position,
                    name: &pax.name,
                    description: &pax.description,
                    min_pax: pax.min,
                    max_pax: pax.max,
                    is_primary: pax.is_primary,
                    currency: &pax.price.currency,
                    price_scale: price.scale,
                    final_price_minor: price.final_price,
                    original_price_minor: price.original_price,
                    remaining: pax.remaining,
                });
            }
        }
        Ok(Self {
            slots: to_json(&slots)?,
            pax: to_json(&pax_rows)?,
        })
    }
}

fn to_json(rows: &impl Serialize) -> Result<String, StoreError> {
    serde_json::to_string(rows)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode rows as JSON: {e}")))
}

/// Records the fetch, writes the day's slots and pax into the mirror tables (marking the ones
/// the partner no longer returns as closed / absent), makes sure every pool has an available
/// account, and moves the day's checkpoint to this fetch.
const WRITE_MIRROR: &str =
    "INSERT INTO fetches (id, experience_id, service_date, fetched_at, applied_at, slot_count)
         VALUES (?, ?, ?, ?, ?, ?);

         INSERT INTO slots (experience_id, provider_slot_id, service_date, start_time,
                            end_time, currency, variant_id, observed_remaining, is_open,
                            last_fetch_id)
         SELECT ?, s.value ->> 'provider_slot_id', s.value ->> 'service_date',
                s.value ->> 'start_time', s.value ->> 'end_time', s.value ->> 'currency',
                s.value ->> 'variant_id', s.value ->> 'remaining', 1, ?
         -- `WHERE true`: SQLite needs it to parse `INSERT … SELECT … ON CONFLICT`.
         FROM json_each(?) AS s WHERE true
         ON CONFLICT (experience_id, service_date, provider_slot_id) DO UPDATE SET
            start_time = excluded.start_time,
            end_time = excluded.end_time, currency = excluded.currency,
            variant_id = excluded.variant_id,
            observed_remaining = excluded.observed_remaining, is_open = 1,
            last_fetch_id = excluded.last_fetch_id;

         INSERT INTO slot_pax (slot_id, pax_type, position, name, description, min_pax,
                               max_pax, is_primary, currency, price_scale,
                               final_price_minor, original_price_minor,
                               observed_remaining, is_present, last_fetch_id)
         SELECT s.id, p.value ->> 'pax_type', p.value ->> 'position', p.value ->> 'name',
                p.value ->> 'description', p.value ->> 'min_pax', p.value ->> 'max_pax',
                p.value ->> 'is_primary', p.value ->> 'currency', p.value ->> 'price_scale',
                p.value ->> 'final_price_minor', p.value ->> 'original_price_minor',
                p.value ->> 'remaining', 1, ?
         FROM json_each(?) AS p
         -- CROSS JOIN keeps the day's pax as the outer loop: one index lookup each, never a
         -- scan of the experience's slots.
         CROSS JOIN slots s
         WHERE s.experience_id = ? AND s.service_date = ?
           AND s.provider_slot_id = p.value ->> 'provider_slot_id'
         ON CONFLICT (slot_id, pax_type) DO UPDATE SET
            position = excluded.position, name = excluded.name,
            description = excluded.description, min_pax = excluded.min_pax,
            max_pax = excluded.max_pax, is_primary = excluded.is_primary,
            currency = excluded.currency, price_scale = excluded.price_scale,
            final_price_minor = excluded.final_price_minor,
            original_price_minor = excluded.original_price_minor,
            observed_remaining = excluded.observed_remaining, is_present = 1,
            last_fetch_id = excluded.last_fetch_id;

         INSERT INTO accounts (experience_id, kind, slot_id, pax_type)
         SELECT experience_id, 'available', id, NULL FROM slots
         WHERE experience_id = ? AND service_date = ? AND last_fetch_id = ?
         UNION ALL
         SELECT s.experience_id, 'available', p.slot_id, p.pax_type FROM slot_pax p
         JOIN slots s ON s.id = p.slot_id
         WHERE s.experience_id = ? AND s.service_date = ? AND p.last_fetch_id = ?
         ON CONFLICT DO NOTHING;

         -- Everything of this day that the fetch did not touch has vanished at the partner.
         UPDATE slot_pax SET is_present = 0, observed_remaining = 0, last_fetch_id = ?
         WHERE is_present = 1 AND last_fetch_id <> ?
           AND slot_id IN (SELECT id FROM slots WHERE experience_id = ? AND service_date = ?);

         UPDATE slots SET is_open = 0, observed_remaining = 0, last_fetch_id = ?
         WHERE experience_id = ? AND service_date = ? AND is_open = 1 AND last_fetch_id <> ?;

         INSERT INTO product_dates (experience_id, service_date, last_fetch_id, last_fetched_at,
                                    slot_count)
         VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (experience_id, service_date) DO UPDATE SET
            last_fetch_id = excluded.last_fetch_id,
            last_fetched_at = excluded.last_fetched_at, slot_count = excluded.slot_count";

/// Every pool of the day as one JSON row of `[account, balance, version, observed, committed,
/// shortfall, shortfall balance, shortfall version]`: sqlx hands each row over from its worker
/// thread separately, and a day has dozens of pools.
static READ_POOLS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT json_group_array(json_array(
            a.id, a.balance, a.version,
            CASE WHEN s.is_open AND (a.pax_type IS NULL OR p.is_present)
                 THEN COALESCE(p.observed_remaining, s.observed_remaining) ELSE 0 END,
            COALESCE(held.balance, 0) + COALESCE(sold.balance, 0),
            shortfall.id, shortfall.balance, shortfall.version))
        FROM slots s
        JOIN accounts a ON a.slot_id = s.id AND a.kind = 'available'
        LEFT JOIN slot_pax p ON p.slot_id = s.id AND p.pax_type = a.pax_type
        {BOOKED_ACCOUNTS}
        WHERE s.experience_id = ? AND s.service_date = ?"
    )
});

/// The mirror, then the pools as the mirror left them, for a posting.
static WRITE_MIRROR_READ_POOLS: LazyLock<String> =
    LazyLock::new(|| format!("{WRITE_MIRROR};\n{}", *READ_POOLS));

/// Writes the day's mirror (see [`WRITE_MIRROR`]) and, when the store posts, reads the day's
/// pools back as JSON ([`READ_POOLS`]): `Some` exactly when postings are on.
///
/// All in one multi-statement round trip: each round trip hands the connection's worker
/// thread a command and waits for its answer, and with one per statement those hand-offs
/// were a third of an apply. sqlx binds the `?`s of consecutive statements from one argument
/// list in order, so each statement's values are bound right after the previous one's.
async fn write_mirror(
    conn: &mut SqliteConnection,
    experience: i64,
    fetch: &DayFetch,
    fetch_id: &str,
    day: &DayJson,
    postings: Postings,
) -> Result<Option<String>, StoreError> {
    let slot_count = fetch.slots.len() as i64;
    let sql = match postings {
        Postings::On => WRITE_MIRROR_READ_POOLS.as_str(),
        Postings::Off => WRITE_MIRROR,
    };
    let mirror = sqlx::query(sql)
        // fetches
        .bind(fetch_id)
        .bind(experience)
        .bind(fetch.date)
        .bind(fetch.fetched_at)
        .bind(Utc::now())
        .bind(slot_count)
        // slots
        .bind(experience)
        .bind(fetch_id)
        .bind(&day.slots)
        // slot_pax
        .bind(fetch_id)
        .bind(&day.pax)
        .bind(experience)
        .bind(fetch.date)
        // accounts: the slots' pools, then the pax pools
        .bind(experience)
        .bind(fetch.date)
        .bind(fetch_id)
        .bind(experience)
        .bind(fetch.date)
        .bind(fetch_id)
        // vanished pax
        .bind(fetch_id)
        .bind(fetch_id)
        .bind(experience)
        .bind(fetch.date)
        // vanished slots
        .bind(fetch_id)
        .bind(experience)
        .bind(fetch.date)
        .bind(fetch_id)
        // product_dates
        .bind(experience)
        .bind(fetch.date)
        .bind(fetch_id)
        .bind(fetch.fetched_at)
        .bind(slot_count);
    match postings {
        Postings::On => {
            let row = mirror
                // the pools
                .bind(experience)
                .bind(fetch.date)
                .fetch_one(&mut *conn)
                .await
                .during("writing the fetched day")?;
            Ok(Some(row.try_get(0).during("reading the day's pools")?))
        }
        Postings::Off => {
            mirror
                .execute(&mut *conn)
                .await
                .during("writing the fetched day")?;
            Ok(None)
        }
    }
}

/// The partner account's running state and the journal's last transaction id, read together.
#[derive(sqlx::FromRow)]
struct PostingStart {
    balance: i64,
    version: i64,
    last_transaction: i64,
}

/// Posts the transfers that bring the day's pool accounts to what the mirror now says
/// (`pools_json`, read back by [`write_mirror`]), starting from `start` (read with the
/// checkpoint, under the same write lock). Returns how many transfers were posted.
async fn reconcile_ledger(
    conn: &mut SqliteConnection,
    fetch: &DayFetch,
    fetch_id: &str,
    partner: AccountId,
    start: &PostingStart,
    pools_json: &str,
) -> Result<usize, StoreError> {
    type PoolJson = (
        AccountId,
        i64,
        i64,
        i64,
        i64,
        Option<AccountId>,
        Option<i64>,
        Option<i64>,
    );
    let pools: Vec<DayPool> = serde_json::from_str::<Vec<PoolJson>>(pools_json)
        .map_err(|e| StoreError::Corrupt(format!("the day's pools as read back: {e}")))?
        .into_iter()
        .map(
            |(
                account,
                balance,
                version,
                observed,
                committed,
                shortfall,
                sf_balance,
                sf_version,
            )| {
                DayPool {
                    account,
                    balance,
                    version,
                    observed,
                    committed,
                    shortfall: booked_shortfall(shortfall, sf_balance, sf_version),
                }
            },
        )
        .collect();
    let transfers = day_transfers(partner, &pools);
    if transfers.is_empty() {
        return Ok(0);
    }
    let partner_state = RunningBalance {
        balance: start.balance,
        version: start.version,
    };
    let posting = PlannedPosting::day(&transfers, partner, partner_state, &pools)?;
    // The transaction holds the database's write lock, so nobody else can take the next id:
    // assigning it here saves reading it back.
    let journal = Journal {
        experience: fetch.experience,
        source: JournalSource::Fetch(fetch_id),
    };
    write_posting(
        conn,
        start.last_transaction + 1,
        journal,
        &transfers,
        &posting,
    )
    .await?;
    Ok(transfers.len())
}

/// Writes journal transaction `transaction_id` (the next id: the caller holds the write lock)
/// with its transfers and entries, and moves the accounts' running balances.
pub(super) async fn write_posting(
    conn: &mut SqliteConnection,
    transaction_id: i64,
    journal: Journal<'_>,
    transfers: &[Transfer],
    posting: &PlannedPosting,
) -> Result<(), StoreError> {
    // One round trip, bound in order (see `write_mirror`). Each column is its own JSON array
    // of integers, read by position: `json_each` yields an integer element as a value, where a
    // row array was rendered as text and parsed again for every column read from it (about a
    // tenth of the ledger's cost, `cargo bench --bench ingest`). The version guard of the last
    // statement makes a concurrent writer's change fail loudly, never merge.
    let column = |values: Vec<i64>| to_json(&values);
    let entries = &posting.entries;
    let updates = &posting.updates;
    let now = Utc::now();
    let written = sqlx::query(
        "INSERT INTO journal_transactions (id, experience_id, fetch_id, booking_id, reason,
                                           created_at)
         VALUES (?, (SELECT id FROM experiences WHERE code = ?), ?, ?, ?, ?);

         -- `json_each` keys count from 0; transfers are numbered from 1.
         INSERT INTO transfers (transaction_id, position, debit_account_id, credit_account_id,
                                amount)
         SELECT ?, debit.key + 1, debit.value, ? ->> debit.key, ? ->> debit.key
         FROM json_each(?) debit;

         INSERT INTO entries (transaction_id, account_id, amount, balance_after, version,
                              created_at)
         SELECT ?, account.value, ? ->> account.key, ? ->> account.key, ? ->> account.key, ?
         FROM json_each(?) account;

         -- MATERIALIZED: the update reads each row's columns once.
         WITH u (id, balance, version, read_version) AS MATERIALIZED (
             SELECT account.value, ? ->> account.key, ? ->> account.key, ? ->> account.key
             FROM json_each(?) account)
         UPDATE accounts SET balance = u.balance, version = u.version
         FROM u WHERE accounts.id = u.id AND accounts.version = u.read_version",
    )
    // journal_transactions
    .bind(transaction_id)
    .bind(journal.experience.as_str())
    .bind(journal.fetch_id())
    .bind(journal.booking_id())
    .bind(journal.reason())
    .bind(now)
    // transfers
    .bind(transaction_id)
    .bind(column(transfers.iter().map(|t| t.credit).collect())?)
    .bind(column(transfers.iter().map(|t| t.amount).collect())?)
    .bind(column(transfers.iter().map(|t| t.debit).collect())?)
    // entries
    .bind(transaction_id)
    .bind(column(entries.iter().map(|e| e.amount).collect())?)
    .bind(column(entries.iter().map(|e| e.balance_after).collect())?)
    .bind(column(entries.iter().map(|e| e.version).collect())?)
    .bind(now)
    .bind(column(entries.iter().map(|e| e.account).collect())?)
    // balances
    .bind(column(updates.iter().map(|u| u.balance).collect())?)
    .bind(column(updates.iter().map(|u| u.version).collect())?)
    .bind(column(updates.iter().map(|u| u.read_version).collect())?)
    .bind(column(updates.iter().map(|u| u.account).collect())?)
    .execute(&mut *conn)
    .await
    .during("posting a journal transaction")?;
    // The inserts write every row or fail, so a short count is the version guard refusing.
    let expected = 1 + transfers.len() + entries.len() + updates.len();
    if written.rows_affected() != expected as u64 {
        return Err(StoreError::Corrupt(format!(
            "accounts {:?} changed while they were being posted to",
            posting
                .updates
                .iter()
                .map(|u| u.account)
                .collect::<Vec<_>>()
        )));
    }
    Ok(())
}

#[async_trait]
impl Mirror for SqliteStore {
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
        // Deferred: the checkpoint's command writes first (see
        // `ENSURE_EXPERIENCE_READ_CHECKPOINT`), which takes the write lock.
        let mut tx = self
            .writer
            .begin()
            .await
            .during("starting the apply transaction")?;
        let fetch_id = fetch.id.to_string();
        let experience = fetch.experience.as_str();
        let checkpoint: DayCheckpoint = sqlx::query_as(&ENSURE_EXPERIENCE_READ_CHECKPOINT)
            .bind(experience)
            .bind(Utc::now())
            .bind(experience)
            .bind(&fetch_id)
            .bind(fetch.date)
            .bind(experience)
            .fetch_one(&mut *tx)
            .await
            .during("reading the day's checkpoint")?;
        if let Some(fence) = fence {
            // The write lock is held: no takeover can commit until this apply does.
            fence.check(&Sqlite::lease(&mut *tx).await?, Utc::now())?;
        }
        if checkpoint.seen {
            return Ok(ApplyOutcome::AlreadyApplied);
        }
        if checkpoint
            .newest
            .is_some_and(|newest| newest >= fetch.fetched_at)
        {
            return Ok(ApplyOutcome::Superseded);
        }
        let day = DayJson::new(fetch)?;
        let pools = write_mirror(
            &mut tx,
            checkpoint.experience,
            fetch,
            &fetch_id,
            &day,
            self.postings,
        )
        .await?;
        let transfers = match pools {
            Some(pools) => {
                reconcile_ledger(
                    &mut tx,
                    fetch,
                    &fetch_id,
                    checkpoint.partner,
                    &checkpoint.start,
                    &pools,
                )
                .await?
            }
            None => 0,
        };
        tx.commit().await.during("committing the fetched day")?;
        self.checkpointer.after_write();
        Ok(ApplyOutcome::Applied {
            slots: fetch.slots.len(),
            transfers,
        })
    }

    async fn last_fetches(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<LastFetch>, StoreError> {
        Sqlite::last_fetches(&self.reader, from, to).await
    }
}
