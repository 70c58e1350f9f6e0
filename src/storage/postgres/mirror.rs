//! Applying a fetched day on PostgreSQL (see the backend's module for how applies of the same
//! day and experience queue).

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{NaiveDate, NaiveTime, Utc};
use sqlx::{PgConnection, PgExecutor, Postgres};

use super::coordination::read_lease_and_clock;
use super::{PostgresStore, day_lock_key};
use crate::domain::{DayFetch, ExperienceId, MinorUnits};
use crate::ledger::posting::{DayPool, PlannedPosting, RunningBalance, day_transfers};
use crate::ledger::{AccountId, Transfer};
use crate::storage::mirror::Postings;
use crate::storage::sql::{BOOKED_ACCOUNTS, Journal, JournalSource, Portable, booked_shortfall};
use crate::storage::{ApplyOutcome, DuringExt, Fence, LastFetch, Mirror, StoreError};

/// Creates the experiences that do not exist yet, each with its partner account.
async fn insert_experiences(
    executor: impl PgExecutor<'_>,
    ids: &[ExperienceId],
) -> Result<(), StoreError> {
    let codes: Vec<&str> = ids.iter().map(ExperienceId::as_str).collect();
    sqlx::query(
        "WITH new_experiences AS (
             INSERT INTO experiences (code, created_at)
             SELECT requested.code, $2 FROM UNNEST($1::text[]) AS requested (code)
             ON CONFLICT (code) DO NOTHING
             RETURNING id
         ), requested AS (
             SELECT id FROM new_experiences
             UNION SELECT id FROM experiences WHERE code = ANY($1::text[])
         )
         INSERT INTO accounts (experience_id, kind)
         SELECT requested.id, 'partner' FROM requested
         WHERE NOT EXISTS (SELECT 1 FROM accounts a
                           WHERE a.experience_id = requested.id AND a.kind = 'partner')
         ON CONFLICT (experience_id) WHERE kind = 'partner' DO NOTHING",
    )
    .bind(&codes)
    .bind(Utc::now())
    .execute(executor)
    .await
    .during("recording the experiences and their partner accounts")?;
    Ok(())
}

/// What the store knows about a day before applying a fetch of it.
#[derive(sqlx::FromRow)]
struct DayCheckpoint {
    /// This very fetch was applied before.
    seen: bool,
    /// A fetch at least as new is already applied.
    superseded: bool,
    /// The experience's key and partner account, once it exists.
    experience: Option<i64>,
    partner: Option<AccountId>,
}

/// A fetched day as column arrays, one per column of `slots` and of `slot_pax`.
#[derive(Default)]
struct DayColumns {
    slot_ids: Vec<String>,
    slot_dates: Vec<NaiveDate>,
    start_times: Vec<NaiveTime>,
    end_times: Vec<NaiveTime>,
    slot_currencies: Vec<String>,
    variant_ids: Vec<i64>,
    slot_remaining: Vec<i64>,
    /// The provider slot id of each pax row, to find its slot's row id.
    pax_slot_ids: Vec<String>,
    pax_types: Vec<String>,
    positions: Vec<i32>,
    names: Vec<String>,
    descriptions: Vec<String>,
    min_pax: Vec<i64>,
    max_pax: Vec<i64>,
    primaries: Vec<bool>,
    pax_currencies: Vec<String>,
    price_scales: Vec<i32>,
    final_prices: Vec<i64>,
    original_prices: Vec<i64>,
    pax_remaining: Vec<i64>,
}

impl DayColumns {
    fn new(fetch: &DayFetch) -> Result<Self, StoreError> {
        let mut columns = Self::default();
        for slot in &fetch.slots {
            columns.slot_ids.push(slot.provider_slot_id.clone());
            columns.slot_dates.push(slot.start_date);
            columns.start_times.push(slot.start_time);
            columns.end_times.push(slot.end_time);
            columns.slot_currencies.push(slot.currency.clone());
            columns.variant_ids.push(slot.variant_id);
            columns.slot_remaining.push(slot.remaining);
            for (position, pax) in slot.pax.iter().enumerate() {
                let price = MinorUnits::from_price(&pax.price)?;
                columns.pax_slot_ids.push(slot.provider_slot_id.clone());
                columns.pax_types.push(pax.pax_type.clone());
                columns.positions.push(to_int(position, "pax position")?);
                columns.names.push(pax.name.clone());
                columns.descriptions.push(pax.description.clone());
                columns.min_pax.push(pax.min);
                columns.max_pax.push(pax.max);
                columns.primaries.push(pax.is_primary);
                columns.pax_currencies.push(pax.price.currency.clone());
                columns
                    .price_scales
                    .push(to_int(price.scale, "price scale")?);
                columns.final_prices.push(price.final_price);
                columns.original_prices.push(price.original_price);
                columns.pax_remaining.push(pax.remaining);
            }
        }
        Ok(columns)
    }
}

/// A count or scale as PostgreSQL's `integer`.
fn to_int<T>(value: T, what: &str) -> Result<i32, StoreError>
where
    T: TryInto<i32> + Copy + std::fmt::Display,
{
    value
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("{what} {value} does not fit an integer")))
}

/// Records the fetch and upserts the day's slots and pax with their pools' available
/// accounts, all in one statement. The pools rely on their unique indexes alone (`ON CONFLICT
/// DO NOTHING`): a `NOT EXISTS` pre-check was planned as a scan of every pool whenever the
/// table's statistics lagged its growth (24 ms a day at 7,000 slots), while a conflict costs
/// only an unused identity value.
async fn write_mirror(
    conn: &mut PgConnection,
    experience: i64,
    fetch: &DayFetch,
    fetch_id: &str,
    day: &DayColumns,
) -> Result<(), StoreError> {
    sqlx::query(
        "WITH this_fetch AS (
             INSERT INTO fetches (id, experience_id, service_date, fetched_at, applied_at,
                                  slot_count)
             VALUES ($1::uuid, $2, $3, $4, $5, $6)
             RETURNING id
         ), day_slots AS (
             INSERT INTO slots (experience_id, provider_slot_id, service_date, start_time,
                                end_time, currency, variant_id, observed_remaining, is_open,
                                last_fetch_id)
             SELECT $2, s.provider_slot_id, s.service_date, s.start_time, s.end_time,
                    s.currency, s.variant_id, s.remaining, TRUE, this_fetch.id
             FROM this_fetch,
                  UNNEST($7::text[], $8::date[], $9::time[], $10::time[], $11::text[],
                         $12::bigint[], $13::bigint[])
                      AS s (provider_slot_id, service_date, start_time, end_time, currency,
                            variant_id, remaining)
             ON CONFLICT (experience_id, service_date, provider_slot_id) DO UPDATE SET
                 start_time = EXCLUDED.start_time,
                 end_time = EXCLUDED.end_time, currency = EXCLUDED.currency,
                 variant_id = EXCLUDED.variant_id,
                 observed_remaining = EXCLUDED.observed_remaining, is_open = TRUE,
                 last_fetch_id = EXCLUDED.last_fetch_id
             RETURNING id, provider_slot_id
         ), slot_pools AS (
             INSERT INTO accounts (experience_id, kind, slot_id)
             SELECT $2, 'available', day_slots.id FROM day_slots
             ON CONFLICT DO NOTHING
         ), day_pax AS (
             INSERT INTO slot_pax (slot_id, pax_type, position, name, description, min_pax,
                                   max_pax, is_primary, currency, price_scale,
                                   final_price_minor, original_price_minor,
                                   observed_remaining, is_present, last_fetch_id)
             SELECT day_slots.id, p.pax_type, p.position, p.name, p.description, p.min_pax,
                    p.max_pax, p.is_primary, p.currency, p.price_scale, p.final_price_minor,
                    p.original_price_minor, p.remaining, TRUE, this_fetch.id
             FROM this_fetch,
                  UNNEST($14::text[], $15::text[], $16::integer[], $17::text[], $18::text[],
                         $19::bigint[], $20::bigint[], $21::boolean[], $22::text[],
                         $23::integer[], $24::bigint[], $25::bigint[], $26::bigint[])
                      AS p (provider_slot_id, pax_type, position, name, description, min_pax,
                            max_pax, is_primary, currency, price_scale, final_price_minor,
                            original_price_minor, remaining)
                  JOIN day_slots USING (provider_slot_id)
             ON CONFLICT (slot_id, pax_type) DO UPDATE SET
                 position = EXCLUDED.position, name = EXCLUDED.name,
                 description = EXCLUDED.description, min_pax = EXCLUDED.min_pax,
                 max_pax = EXCLUDED.max_pax, is_primary = EXCLUDED.is_primary,
                 currency = EXCLUDED.currency, price_scale = EXCLUDED.price_scale,
                 final_price_minor = EXCLUDED.final_price_minor,
                 original_price_minor = EXCLUDED.original_price_minor,
                 observed_remaining = EXCLUDED.observed_remaining, is_present = TRUE,
                 last_fetch_id = EXCLUDED.last_fetch_id
             RETURNING slot_id, pax_type
         )
         INSERT INTO accounts (experience_id, kind, slot_id, pax_type)
         SELECT $2, 'available', day_pax.slot_id, day_pax.pax_type FROM day_pax
         ON CONFLICT DO NOTHING",
    )
    .bind(fetch_id)
    .bind(experience)
    .bind(fetch.date)
    .bind(fetch.fetched_at)
    .bind(Utc::now())
    .bind(to_int(fetch.slots.len(), "slot count")?)
    .bind(&day.slot_ids)
    .bind(&day.slot_dates)
    .bind(&day.start_times)
    .bind(&day.end_times)
    .bind(&day.slot_currencies)
    .bind(&day.variant_ids)
    .bind(&day.slot_remaining)
    .bind(&day.pax_slot_ids)
    .bind(&day.pax_types)
    .bind(&day.positions)
    .bind(&day.names)
    .bind(&day.descriptions)
    .bind(&day.min_pax)
    .bind(&day.max_pax)
    .bind(&day.primaries)
    .bind(&day.pax_currencies)
    .bind(&day.price_scales)
    .bind(&day.final_prices)
    .bind(&day.original_prices)
    .bind(&day.pax_remaining)
    .execute(conn)
    .await
    .during("writing the day's slots and pax")?;
    Ok(())
}

/// Closes the pax the fetch no longer returns (they have vanished at the partner) and moves
/// the day's checkpoint to this fetch; the statement this starts closes the vanished slots.
const CLOSE_PAX_AND_CHECKPOINT: &str = "WITH vanished_pax AS (
         UPDATE slot_pax SET is_present = FALSE, observed_remaining = 0, last_fetch_id = $1::uuid
         WHERE is_present AND last_fetch_id <> $1::uuid
           AND slot_id IN (SELECT id FROM slots WHERE experience_id = $2 AND service_date = $3)
     ), checkpoint AS (
         INSERT INTO product_dates (experience_id, service_date, last_fetch_id, last_fetched_at,
                                    slot_count)
         VALUES ($2, $3, $1::uuid, $4, $5)
         ON CONFLICT (experience_id, service_date) DO UPDATE SET
             last_fetch_id = EXCLUDED.last_fetch_id,
             last_fetched_at = EXCLUDED.last_fetched_at, slot_count = EXCLUDED.slot_count
     )";

const CLOSE_SLOTS: &str = "UPDATE slots SET is_open = FALSE, observed_remaining = 0,
                          last_fetch_id = $1::uuid
     WHERE experience_id = $2 AND service_date = $3 AND is_open AND last_fetch_id <> $1::uuid";

/// The day's pools as this fetch leaves them, and the experience's partner account. The
/// statement's snapshot predates its own updates, so a slot or pax this fetch did not write
/// (another `last_fetch_id`) is one that vanished, and counts 0.
///
/// The pools are not locked: the day's advisory lock already queues every apply that writes
/// them, and the balance update's version guard refuses a change made any other way (locking
/// them wrote a row lock per pool, on unchanged days too). The partner account is: every
/// posting of the experience moves it, so they queue here, and a lock that waited returns
/// the row as the previous holder left it.
static READ_POOLS_AND_PARTNER: LazyLock<String> = LazyLock::new(|| {
    format!(
        "partner AS (
         SELECT balance, version FROM accounts WHERE id = $6 FOR NO KEY UPDATE
     )
     SELECT a.id AS account, a.balance, a.version,
            CASE WHEN s.last_fetch_id = $1::uuid AND s.is_open
                      AND (a.pax_type IS NULL OR (p.last_fetch_id = $1::uuid AND p.is_present))
                 THEN COALESCE(p.observed_remaining, s.observed_remaining) ELSE 0 END
                AS observed,
            COALESCE(held.balance, 0) + COALESCE(sold.balance, 0) AS committed,
            shortfall.id AS shortfall, shortfall.balance AS shortfall_balance,
            shortfall.version AS shortfall_version,
            partner.balance AS partner_balance, partner.version AS partner_version
     FROM partner, slots s
     JOIN accounts a ON a.slot_id = s.id AND a.kind = 'available'
     LEFT JOIN slot_pax p ON p.slot_id = s.id AND p.pax_type = a.pax_type
     {BOOKED_ACCOUNTS}
     WHERE s.experience_id = $2 AND s.service_date = $3
     ORDER BY a.id"
    )
});

static CLOSE_VANISHED: LazyLock<String> =
    LazyLock::new(|| format!("{CLOSE_PAX_AND_CHECKPOINT} {CLOSE_SLOTS}"));

static CLOSE_VANISHED_READ_POOLS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{CLOSE_PAX_AND_CHECKPOINT}, closed_slots AS ({CLOSE_SLOTS}), {}",
        *READ_POOLS_AND_PARTNER
    )
});

/// A pool of the day with its partner account's running state on every row.
#[derive(sqlx::FromRow)]
struct PoolRow {
    account: AccountId,
    balance: i64,
    version: i64,
    observed: i64,
    committed: i64,
    shortfall: Option<AccountId>,
    shortfall_balance: Option<i64>,
    shortfall_version: Option<i64>,
    partner_balance: i64,
    partner_version: i64,
}

/// Closes what the fetch no longer returns (it has vanished at the partner) and moves the
/// day's checkpoint to this fetch, in one statement that, when the store posts, also reads
/// the day's pools and locks the partner account.
async fn close_vanished(
    conn: &mut PgConnection,
    experience: i64,
    fetch: &DayFetch,
    fetch_id: &str,
    partner: AccountId,
    postings: Postings,
) -> Result<Vec<PoolRow>, StoreError> {
    let (sql, partner) = match postings {
        Postings::On => (CLOSE_VANISHED_READ_POOLS.as_str(), Some(partner)),
        Postings::Off => (CLOSE_VANISHED.as_str(), None),
    };
    let mut close = sqlx::query_as(sql)
        .bind(fetch_id)
        .bind(experience)
        .bind(fetch.date)
        .bind(fetch.fetched_at)
        .bind(to_int(fetch.slots.len(), "slot count")?);
    if let Some(partner) = partner {
        close = close.bind(partner);
    }
    close
        .fetch_all(conn)
        .await
        .during("closing vanished slots and saving the day's checkpoint")
}

/// Posts the transfers that bring the day's pool accounts to what the partner now reports.
/// Returns how many transfers were posted.
async fn reconcile_ledger(
    conn: &mut PgConnection,
    fetch: &DayFetch,
    fetch_id: &str,
    partner: AccountId,
    rows: Vec<PoolRow>,
) -> Result<usize, StoreError> {
    let Some(first) = rows.first() else {
        return Ok(0);
    };
    let partner_state = RunningBalance {
        balance: first.partner_balance,
        version: first.partner_version,
    };
    let pools: Vec<DayPool> = rows
        .into_iter()
        .map(|row| DayPool {
            account: row.account,
            balance: row.balance,
            version: row.version,
            observed: row.observed,
            committed: row.committed,
            shortfall: booked_shortfall(
                row.shortfall,
                row.shortfall_balance,
                row.shortfall_version,
            ),
        })
        .collect();
    let transfers = day_transfers(partner, &pools);
    if transfers.is_empty() {
        return Ok(0);
    }
    let posting = PlannedPosting::day(&transfers, partner, partner_state, &pools)?;
    let journal = Journal {
        experience: fetch.experience,
        source: JournalSource::Fetch(fetch_id),
    };
    write_posting(conn, journal, &transfers, &posting).await?;
    Ok(transfers.len())
}

/// Writes a journal transaction with its transfers and entries and moves the accounts'
/// running balances, in one statement. Transfers are numbered by their place in the posting.
pub(super) async fn write_posting(
    conn: &mut PgConnection,
    journal: Journal<'_>,
    transfers: &[Transfer],
    posting: &PlannedPosting,
) -> Result<(), StoreError> {
    let debits: Vec<AccountId> = transfers.iter().map(|t| t.debit).collect();
    let credits: Vec<AccountId> = transfers.iter().map(|t| t.credit).collect();
    let amounts: Vec<i64> = transfers.iter().map(|t| t.amount).collect();
    let entries = &posting.entries;
    let entry_accounts: Vec<AccountId> = entries.iter().map(|e| e.account).collect();
    let entry_amounts: Vec<i64> = entries.iter().map(|e| e.amount).collect();
    let balances_after: Vec<i64> = entries.iter().map(|e| e.balance_after).collect();
    let versions: Vec<i64> = entries.iter().map(|e| e.version).collect();
    let updates = &posting.updates;
    let updated_accounts: Vec<AccountId> = updates.iter().map(|u| u.account).collect();
    let new_balances: Vec<i64> = updates.iter().map(|u| u.balance).collect();
    let new_versions: Vec<i64> = updates.iter().map(|u| u.version).collect();
    let read_versions: Vec<i64> = updates.iter().map(|u| u.read_version).collect();
    let updated = sqlx::query(
        "WITH txn AS (
             INSERT INTO journal_transactions (experience_id, fetch_id, booking_id, reason,
                                               created_at)
             VALUES ((SELECT id FROM experiences WHERE code = $1), $2::uuid, $15, $16, $3)
             RETURNING id
         ), moved AS (
             -- WITH ORDINALITY numbers the transfers from 1.
             INSERT INTO transfers (transaction_id, position, debit_account_id,
                                    credit_account_id, amount)
             SELECT txn.id, t.position, t.debit, t.credit, t.amount
             FROM txn, UNNEST($4::bigint[], $5::bigint[], $6::bigint[]) WITH ORDINALITY
                      AS t (debit, credit, amount, position)
         ), posted AS (
             INSERT INTO entries (transaction_id, account_id, amount, balance_after, version,
                                  created_at)
             SELECT txn.id, e.account, e.amount, e.balance_after, e.version, $3
             FROM txn, UNNEST($7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[])
                      AS e (account, amount, balance_after, version)
         )
         UPDATE accounts a SET balance = u.balance, version = u.version
         FROM UNNEST($11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[])
                  AS u (id, balance, version, read_version)
         WHERE a.id = u.id AND a.version = u.read_version",
    )
    .bind(journal.experience.as_str())
    .bind(journal.fetch_id())
    .bind(Utc::now())
    .bind(&debits)
    .bind(&credits)
    .bind(&amounts)
    .bind(&entry_accounts)
    .bind(&entry_amounts)
    .bind(&balances_after)
    .bind(&versions)
    .bind(&updated_accounts)
    .bind(&new_balances)
    .bind(&new_versions)
    .bind(&read_versions)
    .bind(journal.booking_id())
    .bind(journal.reason())
    .execute(conn)
    .await
    .during("posting a journal transaction")?;
    // The version guard makes a concurrent writer's change fail loudly, never merge.
    if updated.rows_affected() != updates.len() as u64 {
        return Err(StoreError::Corrupt(format!(
            "accounts {updated_accounts:?} changed while they were being posted to"
        )));
    }
    Ok(())
}

#[async_trait]
impl Mirror for PostgresStore {
    async fn ensure_experiences(&self, ids: &[ExperienceId]) -> Result<(), StoreError> {
        insert_experiences(&self.pool, ids).await
    }

    async fn apply_fetch(
        &self,
        fetch: &DayFetch,
        fence: Option<&Fence>,
    ) -> Result<ApplyOutcome, StoreError> {
        let day = DayColumns::new(fetch)?;
        let fetch_id = fetch.id.to_string();
        // One round trip begins the transaction and queues it behind every other apply of
        // this day, whichever process runs it; each statement after it sees everything the
        // previous holder committed (the key: see `day_lock_key`).
        //
        // The commit does not wait for the WAL flush: an OS or database crash can lose the
        // last fraction of a second of applied days, but always whole transactions, newest
        // first, each with its own checkpoint and postings. The sync then simply sees those
        // days as not fetched yet and fetches them again; the ledger stays balanced. A crash
        // of invsync itself loses nothing the database acknowledged.
        //
        // Every statement of an apply reaches one day's rows by key. Without seq scans the
        // planner keeps to the indexes even when the tables' statistics lag their growth (a
        // first backfill): the balance update was planned as a scan of every account, 3 ms a
        // day at 25,000 accounts and growing. For the same reason, and so that they are not
        // planned again for every day, the statements use their generic plans.
        let begin = format!(
            "BEGIN; SET LOCAL synchronous_commit = off; SET LOCAL enable_seqscan = off;
             SET LOCAL plan_cache_mode = force_generic_plan;
             SELECT pg_advisory_xact_lock(hashtextextended('{}', 0))",
            day_lock_key(fetch.experience, fetch.date)
        );
        let mut tx = self
            .pool
            .begin_with(begin)
            .await
            .during("starting the apply transaction")?;
        if let Some(fence) = fence {
            // FOR SHARE: a takeover's UPDATE waits until this apply has committed. Expiry is
            // judged by the database's clock, as the lease was granted.
            let (current, now) = read_lease_and_clock(&mut tx, "FOR SHARE").await?;
            fence.check(&current, now)?;
        }
        let checkpoint: DayCheckpoint = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM fetches WHERE id = $1::uuid) AS seen,
                    COALESCE((SELECT last_fetched_at >= $4 FROM product_dates
                              WHERE experience_id = experience.id AND service_date = $3), FALSE)
                        AS superseded,
                    experience.id AS experience,
                    (SELECT id FROM accounts WHERE experience_id = experience.id
                                                AND kind = 'partner') AS partner
             FROM (SELECT (SELECT id FROM experiences WHERE code = $2) AS id) experience",
        )
        .bind(&fetch_id)
        .bind(fetch.experience.as_str())
        .bind(fetch.date)
        .bind(fetch.fetched_at)
        .fetch_one(&mut *tx)
        .await
        .during("reading the day's checkpoint")?;
        if checkpoint.seen || checkpoint.superseded {
            // Ends the transaction now, releasing the day's lock for the next apply.
            tx.rollback().await.during("ending the apply transaction")?;
            return Ok(if checkpoint.seen {
                ApplyOutcome::AlreadyApplied
            } else {
                ApplyOutcome::Superseded
            });
        }
        let (experience, partner) = match (checkpoint.experience, checkpoint.partner) {
            (Some(experience), Some(partner)) => (experience, partner),
            _ => {
                insert_experiences(&mut *tx, &[fetch.experience]).await?;
                sqlx::query_as(
                    "SELECT e.id, a.id FROM experiences e
                     JOIN accounts a ON a.experience_id = e.id AND a.kind = 'partner'
                     WHERE e.code = $1",
                )
                .bind(fetch.experience.as_str())
                .fetch_one(&mut *tx)
                .await
                .during("reading the partner account")?
            }
        };
        write_mirror(&mut tx, experience, fetch, &fetch_id, &day).await?;
        let pools = close_vanished(
            &mut tx,
            experience,
            fetch,
            &fetch_id,
            partner,
            self.postings,
        )
        .await?;
        let transfers = reconcile_ledger(&mut tx, fetch, &fetch_id, partner, pools).await?;
        tx.commit().await.during("committing the fetched day")?;
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
        Postgres::last_fetches(&self.pool, from, to).await
    }
}
