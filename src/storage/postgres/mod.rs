//! The production PostgreSQL backend; several daemon instances may share one database.
//!
//! A fetched day is applied in one transaction of a fixed handful of statements whatever its
//! size: each table is written by one statement over column arrays (`UNNEST`), never one round
//! trip per slot or pax. Applies of the same day serialise on a transaction-scoped advisory
//! lock, across processes; the experience's partner account, which every posting touches, is
//! locked only once the day's mirror is written, so days of one experience are mirrored in
//! parallel and only their ledger step queues.

mod bookings;
mod coordination;
mod inventory;
mod ledger;
mod mirror;

use std::str::FromStr;
use std::time::Duration;

use chrono::{NaiveDate, NaiveTime};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool, Postgres};

use super::mirror::Postings;
use super::sql::{JournalPosting, Portable};
use super::{DuringExt, StoreError};
use crate::domain::ExperienceId;

const MAX_CONNECTIONS: u32 = 10;
/// Bounds both waiting for a pooled connection and opening a new one.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct PostgresStore {
    pool: PgPool,
    postings: Postings,
}

impl PostgresStore {
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .during("parsing the PostgreSQL URL")?
            .application_name("invsync");
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .during("connecting to PostgreSQL")?;
        // The migrator holds an advisory lock, so instances starting together migrate once.
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self {
            pool,
            postings: Postings::On,
        })
    }

    /// This store without ledger postings: only to measure what the ledger costs.
    pub fn without_postings(self) -> Self {
        Self {
            postings: Postings::Off,
            ..self
        }
    }
}

/// The advisory lock every writer of a day's pools takes: the sync's apply of the day and each
/// booking move on it. An experience id holds only URL-safe characters (never a quote), so the
/// key may be written into SQL text.
fn day_lock_key(experience: ExperienceId, date: NaiveDate) -> String {
    format!("invsync.apply_fetch:{experience}:{date}")
}

impl Portable for Postgres {
    type StartTime = NaiveTime;

    fn start_time(time: NaiveTime) -> NaiveTime {
        time
    }

    async fn lock_day(
        conn: &mut PgConnection,
        experience: ExperienceId,
        date: NaiveDate,
    ) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(day_lock_key(experience, date))
            .execute(conn)
            .await
            .during("waiting for the day's lock")?;
        Ok(())
    }

    async fn write_postings(
        conn: &mut PgConnection,
        postings: &[JournalPosting<'_>],
    ) -> Result<(), StoreError> {
        for posting in postings {
            mirror::write_posting(
                &mut *conn,
                posting.journal,
                posting.transfers,
                posting.posting,
            )
            .await?;
        }
        Ok(())
    }
}
