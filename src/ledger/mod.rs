//! The capacity ledger's rules, independent of any database.
//!
//! Every change of allocated capacity is a journal transaction of transfers; a transfer debits
//! one account and credits another by the same positive amount. Balances are `credits - debits`,
//! so the sum of all balances is always zero. Each account a transaction moves gets one entry in
//! its chain: the net of the transaction's transfers on it, and the balance it leaves. The
//! storage backends persist what this module decides; the database constraints (floor,
//! immutability) are the second line of defence.

pub mod booking;
pub(crate) mod posting;
pub mod verify;

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use crate::domain::Seats;

pub use verify::{Invariant, VerifyReport, Violation};

pub type AccountId = i64;

/// What an account represents. Every kind but `Partner` belongs to one inventory pool (a slot,
/// or a slot's pax type); `Available`, `Held` and `Sold` can never go below zero, `Shortfall`
/// never above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountKind {
    /// An experience's source of capacity; goes negative as capacity is allocated.
    Partner,
    /// Seats of a pool that can be sold now.
    Available,
    /// Seats held for customers, until they confirm, cancel or their hold expires.
    Held,
    /// Seats sold to customers.
    Sold,
    /// Seats held or sold beyond the partner's current allotment (0 or negative): the pool's
    /// `available + held + sold + shortfall` is always the allotment last reported.
    Shortfall,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Partner => "partner",
            Self::Available => "available",
            Self::Held => "held",
            Self::Sold => "sold",
            Self::Shortfall => "shortfall",
        }
    }

    /// Whether an account of this kind may hold `balance`.
    pub fn admits(self, balance: Seats) -> bool {
        match self {
            Self::Partner => true,
            Self::Shortfall => balance <= 0,
            Self::Available | Self::Held | Self::Sold => balance >= 0,
        }
    }
}

impl fmt::Display for AccountKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AccountKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "partner" => Ok(Self::Partner),
            "available" => Ok(Self::Available),
            "held" => Ok(Self::Held),
            "sold" => Ok(Self::Sold),
            "shortfall" => Ok(Self::Shortfall),
            other => Err(format!("unknown account kind {other:?}")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transfer {
    pub debit: AccountId,
    pub credit: AccountId,
    pub amount: Seats,
}

/// One pool as the sync sees it: its available account, the ledger's balance, what the
/// partner now reports (the allotment; 0 for a pool that vanished), and what customers hold
/// and bought of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolObservation {
    pub available: AccountId,
    pub balance: Seats,
    pub observed: Seats,
    /// Held plus sold: seats a sync never takes back.
    pub committed: Seats,
    /// The pool's shortfall account and balance, once customers have booked it.
    pub shortfall: Option<(AccountId, Seats)>,
}

/// The transfer that moves `amount` (either sign) from `from` to `to`; none for 0.
pub fn transfer_between(from: AccountId, to: AccountId, amount: Seats) -> Option<Transfer> {
    match amount.signum() {
        1 => Some(Transfer {
            debit: from,
            credit: to,
            amount,
        }),
        -1 => Some(Transfer {
            debit: to,
            credit: from,
            amount: -amount,
        }),
        _ => None,
    }
}

/// The transfers that bring every pool to the allotment the partner reports: available to
/// allotment − held − sold, or to 0 with the uncovered seats in the pool's shortfall. Holds and
/// sales are never touched. Unchanged pools produce nothing, so re-applying an observation is
/// a no-op.
pub fn capacity_transfers(partner: AccountId, pools: &[PoolObservation]) -> Vec<Transfer> {
    let mut transfers = Vec::new();
    for pool in pools {
        let uncovered = pool.observed - pool.committed;
        transfers.extend(transfer_between(
            partner,
            pool.available,
            uncovered.max(0) - pool.balance,
        ));
        if let Some((shortfall, balance)) = pool.shortfall {
            transfers.extend(transfer_between(
                partner,
                shortfall,
                uncovered.min(0) - balance,
            ));
        }
    }
    transfers
}

/// An account's running state: its balance and the version of its latest entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountState {
    pub kind: AccountKind,
    pub balance: Seats,
    pub version: i64,
}

/// What one journal transaction does to one account, as written to the account's entry chain:
/// the net of the transaction's transfers on it. Balances in between are never stored, as no
/// one could ever have read them; the transfers say who moved what to whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub account: AccountId,
    pub amount: Seats,
    pub balance_after: Seats,
    pub version: i64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PostingError {
    #[error(
        "transfer of {amount} from account {debit} to {credit} is not a positive amount between two accounts"
    )]
    InvalidTransfer {
        debit: AccountId,
        credit: AccountId,
        amount: Seats,
    },
    #[error("account {0} is not known to this posting")]
    UnknownAccount(AccountId),
    #[error("account {account} ({kind}) would cross its bound to {balance}")]
    Overdrawn {
        account: AccountId,
        kind: AccountKind,
        balance: Seats,
    },
}

/// Posts one journal transaction's transfers against the accounts' running states, returning
/// the entries to store (one per account the transfers move on balance, in the order the
/// transfers first touch them) and leaving `accounts` at the new balances and versions.
/// Nothing is changed when any transfer is invalid or the transaction would leave an account
/// outside its kind's bound.
pub fn post(
    transfers: &[Transfer],
    accounts: &mut HashMap<AccountId, AccountState>,
) -> Result<Vec<Entry>, PostingError> {
    // (account, net amount) in the order first touched, and where each account is in it.
    let mut moved: Vec<(AccountId, Seats)> = Vec::with_capacity(transfers.len() + 1);
    let mut place: HashMap<AccountId, usize> = HashMap::with_capacity(transfers.len() + 1);
    for transfer in transfers {
        if transfer.amount <= 0 || transfer.debit == transfer.credit {
            return Err(PostingError::InvalidTransfer {
                debit: transfer.debit,
                credit: transfer.credit,
                amount: transfer.amount,
            });
        }
        for (account, amount) in [
            (transfer.debit, -transfer.amount),
            (transfer.credit, transfer.amount),
        ] {
            if !accounts.contains_key(&account) {
                return Err(PostingError::UnknownAccount(account));
            }
            match place.get(&account) {
                Some(&at) => moved[at].1 += amount,
                None => {
                    place.insert(account, moved.len());
                    moved.push((account, amount));
                }
            }
        }
    }
    let mut entries = Vec::with_capacity(moved.len());
    for (account, amount) in moved.into_iter().filter(|&(_, net)| net != 0) {
        let state = accounts
            .get(&account)
            .ok_or(PostingError::UnknownAccount(account))?;
        let balance_after = state.balance + amount;
        if !state.kind.admits(balance_after) {
            return Err(PostingError::Overdrawn {
                account,
                kind: state.kind,
                balance: balance_after,
            });
        }
        entries.push(Entry {
            account,
            amount,
            balance_after,
            version: state.version + 1,
        });
    }
    for entry in &entries {
        if let Some(state) = accounts.get_mut(&entry.account) {
            state.balance = entry.balance_after;
            state.version = entry.version;
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PARTNER: AccountId = 1;

    fn accounts(pools: &[(AccountId, Seats)]) -> HashMap<AccountId, AccountState> {
        let mut map = HashMap::from([(
            PARTNER,
            AccountState {
                kind: AccountKind::Partner,
                balance: -pools.iter().map(|(_, b)| b).sum::<Seats>(),
                version: 0,
            },
        )]);
        for &(id, balance) in pools {
            map.insert(
                id,
                AccountState {
                    kind: AccountKind::Available,
                    balance,
                    version: 0,
                },
            );
        }
        map
    }

    #[test]
    fn unchanged_pools_post_nothing() {
        let pools = [PoolObservation {
            available: 2,
            balance: 5,
            observed: 5,
            committed: 0,
            shortfall: None,
        }];
        assert!(capacity_transfers(PARTNER, &pools).is_empty());
    }

    #[test]
    fn growth_and_shrink_move_capacity_between_partner_and_pool() {
        let pools = [
            PoolObservation {
                available: 2,
                balance: 5,
                observed: 8,
                committed: 0,
                shortfall: None,
            },
            PoolObservation {
                available: 3,
                balance: 5,
                observed: 0,
                committed: 0,
                shortfall: None,
            },
        ];
        assert_eq!(
            capacity_transfers(PARTNER, &pools),
            vec![
                Transfer {
                    debit: PARTNER,
                    credit: 2,
                    amount: 3
                },
                Transfer {
                    debit: 3,
                    credit: PARTNER,
                    amount: 5
                },
            ]
        );
    }

    #[test]
    fn overdraft_is_refused_and_leaves_accounts_untouched() {
        let mut state = accounts(&[(2, 1)]);
        let before = state.clone();
        let result = post(
            &[Transfer {
                debit: 2,
                credit: PARTNER,
                amount: 2,
            }],
            &mut state,
        );
        assert!(matches!(
            result,
            Err(PostingError::Overdrawn { account: 2, .. })
        ));
        assert_eq!(state, before);
    }

    fn transfer(debit: AccountId, credit: AccountId, amount: Seats) -> Transfer {
        Transfer {
            debit,
            credit,
            amount,
        }
    }

    #[test]
    fn an_account_gets_one_entry_a_transaction_with_the_net_of_its_transfers() {
        let mut state = accounts(&[(2, 5), (3, 5)]);
        let transfers = [
            transfer(PARTNER, 2, 3),
            transfer(3, PARTNER, 1),
            transfer(3, 2, 2),
        ];
        let entries = post(&transfers, &mut state).expect("no floor is crossed");
        let entry = |account, amount, balance_after| Entry {
            account,
            amount,
            balance_after,
            version: 1,
        };
        assert_eq!(
            entries,
            [entry(PARTNER, -2, -12), entry(2, 5, 10), entry(3, -3, 2)]
        );
        assert_eq!(state[&PARTNER].balance, -12);
        assert_eq!(state[&2].version, 1);
    }

    #[test]
    fn transfers_that_cancel_out_leave_the_account_without_an_entry() {
        let mut state = accounts(&[(2, 5), (3, 5)]);
        let transfers = [transfer(PARTNER, 2, 4), transfer(3, PARTNER, 4)];
        let entries = post(&transfers, &mut state).expect("no floor is crossed");
        assert_eq!(
            entries.iter().map(|e| e.account).collect::<Vec<_>>(),
            [2, 3]
        );
        assert_eq!((state[&PARTNER].balance, state[&PARTNER].version), (-10, 0));
    }

    proptest! {
        /// Any sequence of observations keeps every invariant: entries balance, chains are
        /// contiguous, floors hold, balances sum to zero, and pools end at what was observed.
        #[test]
        fn observations_keep_invariants(rounds in prop::collection::vec(prop::collection::vec(0i64..50, 4), 1..20)) {
            let mut state = accounts(&[(2, 0), (3, 0), (4, 0), (5, 0)]);
            let mut chain: HashMap<AccountId, Vec<Entry>> = HashMap::new();
            for observed in rounds {
                let pools: Vec<_> = observed.iter().enumerate().map(|(i, &n)| {
                    let id = i as AccountId + 2;
                    PoolObservation { available: id, balance: state[&id].balance, observed: n, committed: 0, shortfall: None }
                }).collect();
                let transfers = capacity_transfers(PARTNER, &pools);
                let entries = post(&transfers, &mut state).expect("observations never overdraw");
                prop_assert_eq!(entries.iter().map(|e| e.amount).sum::<Seats>(), 0);
                let moved: std::collections::HashSet<_> = entries.iter().map(|e| e.account).collect();
                prop_assert_eq!(moved.len(), entries.len(), "one entry per account moved");
                for entry in entries {
                    chain.entry(entry.account).or_default().push(entry);
                }
                for (i, &n) in observed.iter().enumerate() {
                    prop_assert_eq!(state[&(i as AccountId + 2)].balance, n);
                }
                prop_assert_eq!(state.values().map(|s| s.balance).sum::<Seats>(), 0);
            }
            for (account, entries) in chain {
                let mut running = 0;
                for (i, entry) in entries.iter().enumerate() {
                    running += entry.amount;
                    prop_assert_eq!(entry.version, i as i64 + 1);
                    prop_assert_eq!(entry.balance_after, running);
                }
                prop_assert_eq!(state[&account].version, entries.len() as i64);
            }
        }
    }
}
