//! The embedded SQLite backend: one file under `data/` in WAL mode.
//!
//! Writes go through a pool of exactly one connection, and every write transaction takes the
//! database's write lock up front (`BEGIN IMMEDIATE`, or a first statement that writes), so it
//! can never fail halfway on a read-to-write lock upgrade. Reads use a separate read-only pool
//! that WAL lets run beside the writer.

mod bookings;
mod checkpoint;
mod coordination;
mod inventory;
mod ledger;
mod mirror;

use std::str::FromStr;
use std::time::Duration;

use chrono::{NaiveDate, NaiveTime};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqliteConnection, SqlitePool};

use self::checkpoint::Checkpointer;
use super::mirror::Postings;
use super::sql::{JournalPosting, Portable};
use super::{DuringExt, StoreError};
use crate::domain::ExperienceId;

const TIME_FORMAT: &str = "%H:%M";
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(120);

pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    checkpointer: Checkpointer,
    postings: Postings,
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
                "{} (in-memory SQLite is not supported; use a file)",
                super::redact_url(url)
            )));
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Corrupt(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        // Generous timeout: the single writer connection is shared by every write, and a test
        // running under tokio's paused clock must not see a spurious timeout. No ping before
        // each use: an embedded connection cannot go stale, and every ping is a round trip to
        // the connection's worker thread. The WAL is copied back into the database every
        // 10,000 pages (about 40 MB) rather than 1,000 should the checkpointer beside it fall
        // behind (see `checkpoint`): the pages every apply rewrites (the accounts, the newest
        // entries) are copied once per checkpoint however often they changed, so fewer
        // checkpoints copy less.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(false)
            .connect_with(options.clone().pragma("wal_autocheckpoint", "10000"))
            .await
            .during("opening the SQLite database")?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let checkpointer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await
            .during("opening the SQLite database for checkpoints")?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(false)
            .connect_with(options.read_only(true))
            .await
            .during("opening the SQLite database for reading")?;
        Ok(Self {
            writer,
            reader,
            checkpointer: Checkpointer::new(checkpointer),
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

fn format_time(time: NaiveTime) -> String {
    time.format(TIME_FORMAT).to_string()
}

impl Portable for Sqlite {
    /// Stored as text, `HH:MM`.
    type StartTime = String;

    fn start_time(time: NaiveTime) -> String {
        format_time(time)
    }

    /// Every write transaction holds the database's write lock from its start.
    async fn lock_day(
        _conn: &mut SqliteConnection,
        _experience: ExperienceId,
        _date: NaiveDate,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    async fn write_postings(
        conn: &mut SqliteConnection,
        postings: &[JournalPosting<'_>],
    ) -> Result<(), StoreError> {
        // The writer is alone: the journal's ids are numbered here, from the last one.
        let (last,): (i64,) =
            sqlx::query_as("SELECT COALESCE(MAX(id), 0) FROM journal_transactions")
                .fetch_one(&mut *conn)
                .await
                .during("reading the journal's last transaction")?;
        for (id, posting) in (last + 1..).zip(postings) {
            mirror::write_posting(
                &mut *conn,
                id,
                posting.journal,
                posting.transfers,
                posting.posting,
            )
            .await?;
        }
        Ok(())
    }
}
