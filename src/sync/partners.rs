//! Every partner's sync in one daemon: an engine per partner, each with its own pacer,
//! queue, pause, tiers and status, all led by the instance holding the one sync lease.

use std::sync::Arc;

use chrono::NaiveDate;
use chrono_tz::Tz;
use tokio::task::JoinSet;

use super::clock::Clock;
use super::engine::Engine;
use super::status::SyncStatus;
use crate::domain::ExperienceId;
use crate::storage::StoreError;

/// The engines of every configured partner, by name; never empty.
#[derive(Clone)]
pub struct SyncPartners {
    engines: Arc<[Engine]>,
}

impl SyncPartners {
    /// `None` without engines: a daemon syncs from at least one partner.
    pub fn new(engines: Vec<Engine>) -> Option<Self> {
        (!engines.is_empty()).then(|| Self {
            engines: engines.into(),
        })
    }

    pub fn engines(&self) -> &[Engine] {
        &self.engines
    }

    /// The first partner's engine by name (the only one of a one-partner configuration).
    pub fn first(&self) -> &Engine {
        &self.engines[0]
    }

    pub fn named(&self, partner: &str) -> Option<&Engine> {
        self.engines
            .iter()
            .find(|engine| engine.partner() == partner)
    }

    /// The engine syncing `experience`.
    pub fn of(&self, experience: ExperienceId) -> Option<&Engine> {
        self.engines
            .iter()
            .find(|engine| engine.experiences().contains(&experience))
    }

    /// Every synced experience, partner by partner.
    pub fn experiences(&self) -> impl Iterator<Item = ExperienceId> + '_ {
        self.engines
            .iter()
            .flat_map(|engine| engine.experiences().iter().copied())
    }

    /// The time zone whose "today" `experience` is synced by; the first partner's for an
    /// experience no partner syncs.
    pub fn timezone_of(&self, experience: ExperienceId) -> Tz {
        self.of(experience).unwrap_or(self.first()).timezone()
    }

    pub fn clock(&self) -> Clock {
        self.first().clock()
    }

    /// The dates any partner's horizon covers: partners in zones a day apart start on
    /// different todays.
    pub fn horizon(&self) -> (NaiveDate, NaiveDate) {
        let (mut first, mut last) = self.first().horizon();
        for (from, to) in self.engines[1..].iter().map(Engine::horizon) {
            (first, last) = (first.min(from), last.max(to));
        }
        (first, last)
    }

    /// Starts every engine; the set ends after [`SyncPartners::shutdown`].
    pub fn start(&self) -> JoinSet<()> {
        let mut tasks = JoinSet::new();
        for engine in self.engines.iter() {
            let mut started = engine.start();
            tasks.spawn(async move { while started.join_next().await.is_some() {} });
        }
        tasks
    }

    pub fn shutdown(&self) {
        for engine in self.engines.iter() {
            engine.shutdown();
        }
    }

    /// Each partner's sync status, in the engines' order ([`SyncStatus::combine`] sums them).
    pub async fn status(&self) -> Result<Vec<SyncStatus>, StoreError> {
        let mut partners = Vec::with_capacity(self.engines.len());
        for engine in self.engines.iter() {
            partners.push(engine.status().await?);
        }
        Ok(partners)
    }

    /// Every partner's sync status together, and each one's.
    pub async fn combined_status(&self) -> Result<(SyncStatus, Vec<SyncStatus>), StoreError> {
        let partners = self.status().await?;
        let combined =
            SyncStatus::combine(&partners).expect("SyncPartners::new refuses no engines");
        Ok((combined, partners))
    }
}
