//! Booking moves made by any instance, announced with `NOTIFY` as they commit and followed
//! with `LISTEN`, so every instance's read cache forgets the days they changed.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::NaiveDate;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::broadcast;

use crate::domain::ExperienceId;
use crate::storage::InventoryChange;

pub(super) const CHANNEL: &str = "invsync_inventory";
/// Changes a slow follower may fall behind by before it is told to forget everything.
const BACKLOG: usize = 4096;
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);

pub(super) fn payload(experience: ExperienceId, date: NaiveDate) -> String {
    format!("{} {date}", experience.get())
}

fn parse(payload: &str) -> InventoryChange {
    let mut parts = payload.split(' ');
    let experience = parts.next().and_then(|id| id.parse::<ExperienceId>().ok());
    let date = parts.next().and_then(|date| date.parse::<NaiveDate>().ok());
    match (experience, date) {
        (Some(experience), Some(date)) => InventoryChange::Day(experience, date),
        _ => InventoryChange::Unknown,
    }
}

/// Listens once the first follower asks, and stops when the last one is gone.
pub(super) struct ChangeFeed {
    pool: PgPool,
    sender: Arc<OnceLock<broadcast::Sender<InventoryChange>>>,
}

impl ChangeFeed {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            sender: Arc::default(),
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<InventoryChange> {
        let sender = self.sender.get_or_init(|| {
            let (sender, _) = broadcast::channel(BACKLOG);
            tokio::spawn(listen(self.pool.clone(), sender.clone()));
            sender
        });
        sender.subscribe()
    }
}

async fn listen(pool: PgPool, sender: broadcast::Sender<InventoryChange>) {
    tokio::select! {
        () = sender.closed() => {}
        () = relay(pool, &sender) => {}
    }
}

/// Relays notifications for as long as it runs. Whenever the connection is lost (and once it
/// is back), followers are told that changes may have been missed.
async fn relay(pool: PgPool, sender: &broadcast::Sender<InventoryChange>) {
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for inventory changes; retrying");
                tokio::time::sleep(RECONNECT_PAUSE).await;
                continue;
            }
        };
        if let Err(error) = listener.listen(CHANNEL).await {
            tracing::warn!(%error, "cannot listen for inventory changes; retrying");
            tokio::time::sleep(RECONNECT_PAUSE).await;
            continue;
        }
        // Anything committed before LISTEN took effect was not heard.
        let _ = sender.send(InventoryChange::Unknown);
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => {
                    let _ = sender.send(parse(notification.payload()));
                }
                Ok(None) => {
                    let _ = sender.send(InventoryChange::Unknown);
                }
                Err(error) => {
                    tracing::warn!(%error, "lost the inventory change feed; reconnecting");
                    let _ = sender.send(InventoryChange::Unknown);
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_garbage_means_unknown() {
        let experience = ExperienceId::try_from(14).expect("positive");
        let date = NaiveDate::from_ymd_opt(2026, 12, 6).expect("date");
        assert_eq!(
            parse(&payload(experience, date)),
            InventoryChange::Day(experience, date)
        );
        assert_eq!(parse("14"), InventoryChange::Unknown);
        assert_eq!(parse("x 2026-12-06"), InventoryChange::Unknown);
    }
}
