//! Storage: one small trait per concern, one implementation of each per backend, the backend
//! picked once from the database URL.
//!
//! The concerns: [`Inventory`] (what is served), [`Mirror`] (applying fetched days),
//! [`Ledger`] (slot history and verification), [`Bookings`] (customers' holds and sales), and, in `coordination`, [`Pause`], [`Leases`]
//! and [`SyncRequests`]. [`Store`] is all of them, for the code that wires the daemon
//! (`Arc<dyn Store>`); code that needs one concern can take just that trait. Each backend
//! (`sqlite/`, `postgres/`) implements each concern in a file of the same name and owns its
//! migrations (`migrations/sqlite`, `migrations/postgres`); the SQL both run as it is lives
//! once in `sql.rs`, so the backends differ only where they must. The rules (which transfers
//! a fetch implies, how the served price is chosen) live in `ledger` and `domain`, so both
//! backends behave identically. A decorator implements the concerns it changes and forwards
//! the others with [`forward_store!`](crate::forward_store).

mod bookings;
mod cached;
mod coordination;
mod forward;
mod inventory;
mod ledger;
mod mirror;
mod postgres;
mod sql;
mod sqlite;
mod types;
mod version_reads;

use std::sync::Arc;

use crate::domain::PriceOutOfRange;
use crate::ledger::PostingError;

pub use bookings::{
    Amendment, BookedPax, Booking, BookingChange, BookingStatus, BookingTotals, Bookings,
    HoldOutcome, HoldRequest, KeyedHold, PaxQuantity, Refusal, ResellerBooking, ResellerQuery,
    ResellerRecord,
};
pub use cached::{CachedStore, Rendered};
pub use coordination::{Fence, Lease, Leases, Pause, SyncControl, SyncRequest, SyncRequests};
pub use inventory::{Inventory, ServedSlot};
pub use ledger::{Ledger, Posting, SlotHistory};
pub use mirror::{ApplyOutcome, LastFetch, Mirror};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// The whole store: every concern, as the daemon wires it (`Arc<dyn Store>`). Anything that
/// implements all the concerns is a `Store`.
pub trait Store: Inventory + Mirror + Ledger + Bookings + Pause + Leases + SyncRequests {}

impl<T> Store for T where
    T: Inventory + Mirror + Ledger + Bookings + Pause + Leases + SyncRequests + ?Sized
{
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Carries the URL with its password already redacted ([`redact_url`]).
    #[error("unsupported database URL {0:?}: expected sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    #[error("database error while {action}: {source}")]
    Database {
        action: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("running database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("ledger refused the posting: {0}")]
    Posting(#[from] PostingError),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("this instance no longer holds the sync lease; the apply was refused")]
    LeaseLost,
}

/// A price too large to store is refused as corrupt data, like any value the schema cannot hold.
impl From<PriceOutOfRange> for StoreError {
    fn from(error: PriceOutOfRange) -> Self {
        Self::Corrupt(error.to_string())
    }
}

/// Attaches what the store was doing to a database error.
pub(crate) trait DuringExt<T> {
    fn during(self, action: &'static str) -> Result<T, StoreError>;
}

impl<T> DuringExt<T> for Result<T, sqlx::Error> {
    fn during(self, action: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Database { action, source })
    }
}

/// Opens the backend named by the URL's scheme and brings its schema up to date.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl(redact_url(url)))
    }
}

/// `url` fit for a message or a log line: the password of its user info and any `password=`
/// query parameter replaced, whatever the scheme (a mistyped scheme is exactly when the URL
/// gets printed).
pub fn redact_url(url: &str) -> String {
    const REDACTED: &str = "[redacted]";
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut redacted = match base.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            match authority.rsplit_once('@') {
                Some((user_info, host)) => {
                    let user = user_info
                        .split_once(':')
                        .map_or(user_info, |(user, _)| user);
                    let password = if user_info.contains(':') {
                        format!(":{REDACTED}")
                    } else {
                        String::new()
                    };
                    format!("{scheme}://{user}{password}@{host}{path}")
                }
                None => base.to_string(),
            }
        }
        None => base.to_string(),
    };
    if let Some(query) = query {
        let parameters: Vec<String> = query
            .split('&')
            .map(|parameter| match parameter.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                    format!("{key}={REDACTED}")
                }
                _ => parameter.to_string(),
            })
            .collect();
        redacted.push('?');
        redacted.push_str(&parameters.join("&"));
    }
    redacted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_passwords_in_messages() {
        for (url, shown) in [
            (
                "postgress://u:pw@host/db",
                "postgress://u:[redacted]@host/db",
            ),
            (
                "postgres://u:p%40ss:w@db.example:5432/x?sslmode=require",
                "postgres://u:[redacted]@db.example:5432/x?sslmode=require",
            ),
            (
                "postgres://db/x?user=u&password=pw&sslmode=disable",
                "postgres://db/x?user=u&password=[redacted]&sslmode=disable",
            ),
            ("postgres://u@host/db", "postgres://u@host/db"),
            ("sqlite://data/invsync.db", "sqlite://data/invsync.db"),
            ("mysql://root:hunter2@h", "mysql://root:[redacted]@h"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }

    #[tokio::test]
    async fn a_mistyped_database_url_does_not_print_its_password() {
        let error = connect("postgress://u:pw@host/db")
            .await
            .err()
            .expect("an unknown scheme is refused");
        let message = error.to_string();
        assert!(
            message.contains("postgress://u:[redacted]@host/db"),
            "{message}"
        );
        assert!(!message.contains(":pw@"), "{message}");
        assert!(!format!("{error:?}").contains(":pw@"), "{error:?}");
    }
}
