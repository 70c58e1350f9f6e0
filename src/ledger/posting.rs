//! What one fetched day posts: the transfers that bring its pools to what the partner reports,
//! and the rows they write (entries, and each moved account's new running state). Both
//! backends write exactly this plan; only how they write it differs.

use std::collections::HashMap;

use super::{
    AccountId, AccountKind, AccountState, Entry, PoolObservation, PostingError, Transfer,
    capacity_transfers,
};
use crate::domain::Seats;

/// An account's stored balance and the version of its latest entry.
#[derive(Debug, Clone, Copy)]
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
}

/// The transfers that bring the day's pools to what the partner reports (none when unchanged).
pub(crate) fn day_transfers(partner: AccountId, pools: &[DayPool]) -> Vec<Transfer> {
    let observations: Vec<PoolObservation> = pools
        .iter()
        .map(|pool| PoolObservation {
            available: pool.account,
            balance: pool.balance,
            observed: pool.observed,
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

/// The ledger rows one day's transfers write.
#[derive(Debug)]
pub(crate) struct DayPosting {
    pub entries: Vec<Entry>,
    /// Ordered by account id, so every writer touches rows in the same order.
    pub updates: Vec<AccountUpdate>,
}

impl DayPosting {
    pub fn post(
        transfers: &[Transfer],
        partner: AccountId,
        partner_state: RunningBalance,
        pools: &[DayPool],
    ) -> Result<Self, PostingError> {
        let mut accounts: HashMap<AccountId, AccountState> = pools
            .iter()
            .map(|pool| {
                let state = AccountState {
                    kind: AccountKind::Available,
                    balance: pool.balance,
                    version: pool.version,
                };
                (pool.account, state)
            })
            .collect();
        accounts.insert(
            partner,
            AccountState {
                kind: AccountKind::Partner,
                balance: partner_state.balance,
                version: partner_state.version,
            },
        );
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
}
