//! What a journal transaction writes: the entries its transfers make and each moved account's
//! new running state. Both backends write exactly this plan, for a fetched day (the transfers
//! that bring its pools to what the partner reports) and for a booking's move alike; only how
//! they write it differs.

use std::collections::HashMap;

use super::{
    AccountId, AccountKind, AccountState, Entry, PoolObservation, PostingError, Transfer,
    capacity_transfers,
};
use crate::domain::Seats;

/// An account's stored balance and the version of its latest entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RunningBalance {
    pub balance: Seats,
    pub version: i64,
}

/// One inventory pool of the day being applied, read back after the mirror was written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DayPool {
    /// The pool's available account.
    pub account: AccountId,
    pub balance: Seats,
    pub version: i64,
    /// What the partner now reports; 0 for a pool that vanished.
    pub observed: Seats,
    /// Held plus sold.
    pub committed: Seats,
    /// The pool's shortfall account, once customers have booked it.
    pub shortfall: Option<(AccountId, RunningBalance)>,
}

/// The transfers that bring the day's pools to what the partner reports (none when unchanged).
pub(crate) fn day_transfers(partner: AccountId, pools: &[DayPool]) -> Vec<Transfer> {
    let observations: Vec<PoolObservation> = pools
        .iter()
        .map(|pool| PoolObservation {
            available: pool.account,
            balance: pool.balance,
            observed: pool.observed,
            committed: pool.committed,
            shortfall: pool
                .shortfall
                .map(|(account, state)| (account, state.balance)),
        })
        .collect();
    capacity_transfers(partner, &observations)
}

/// An account's new running state, written only if it still has the version it was read at:
/// a concurrent writer's change then fails loudly instead of merging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AccountUpdate {
    pub account: AccountId,
    pub balance: Seats,
    pub version: i64,
    pub read_version: i64,
}

/// The ledger rows one journal transaction writes.
#[derive(Debug)]
pub(crate) struct PlannedPosting {
    pub entries: Vec<Entry>,
    /// Ordered by account id, so every writer touches rows in the same order.
    pub updates: Vec<AccountUpdate>,
}

impl PlannedPosting {
    /// Posts `transfers` against the accounts' running states as read.
    pub fn plan(
        transfers: &[Transfer],
        mut accounts: HashMap<AccountId, AccountState>,
    ) -> Result<Self, PostingError> {
        let entries = super::post(transfers, &mut accounts)?;
        // One entry per account the transaction moves: it is the account's new state.
        let mut updates: Vec<AccountUpdate> = entries
            .iter()
            .map(|entry| AccountUpdate {
                account: entry.account,
                balance: entry.balance_after,
                version: entry.version,
                read_version: entry.version - 1,
            })
            .collect();
        updates.sort_by_key(|update| update.account);
        Ok(Self { entries, updates })
    }

    /// A fetched day's posting: its pools' available and shortfall accounts and the
    /// experience's partner account.
    pub fn day(
        transfers: &[Transfer],
        partner: AccountId,
        partner_state: RunningBalance,
        pools: &[DayPool],
    ) -> Result<Self, PostingError> {
        let state = |kind, running: RunningBalance| AccountState {
            kind,
            balance: running.balance,
            version: running.version,
        };
        let mut accounts = HashMap::with_capacity(pools.len() + 1);
        for pool in pools {
            let available = RunningBalance {
                balance: pool.balance,
                version: pool.version,
            };
            accounts.insert(pool.account, state(AccountKind::Available, available));
            if let Some((account, running)) = pool.shortfall {
                accounts.insert(account, state(AccountKind::Shortfall, running));
            }
        }
        accounts.insert(partner, state(AccountKind::Partner, partner_state));
        Self::plan(transfers, accounts)
    }
}
