//! Copies the WAL back into the database file beside the writer. Left to SQLite, the commit
//! that fills the WAL past `wal_autocheckpoint` copies it, and every write queued behind that
//! commit waits tens of milliseconds (the tail of a sale's holds, `cargo bench --bench
//! bookings`). Here a commit only notes that writes happened; at most once a second a
//! connection of its own runs a passive checkpoint, which never takes the write lock. The
//! writer's own automatic checkpoint stays as the backstop should this fall behind.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sqlx::SqlitePool;

/// The least time between two checkpoints.
const EVERY: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub(super) struct Checkpointer {
    /// One read-write connection, apart from the writer's.
    pool: SqlitePool,
    running: Arc<AtomicBool>,
    last: Arc<Mutex<Instant>>,
}

impl Checkpointer {
    pub(super) fn new(pool: SqlitePool) -> Self {
        Self {
            pool,
            running: Arc::default(),
            last: Arc::new(Mutex::new(Instant::now())),
        }
    }

    /// Called after a write transaction: starts a checkpoint unless one ran within the last
    /// second or is running.
    pub(super) fn after_write(&self) {
        {
            let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
            if last.elapsed() < EVERY || self.running.swap(true, Ordering::AcqRel) {
                return;
            }
            *last = Instant::now();
        }
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&this.pool)
                .await
            {
                tracing::warn!(%error, "copying the SQLite WAL into the database failed; the writer's own checkpoint remains");
            }
            this.running.store(false, Ordering::Release);
        });
    }
}
