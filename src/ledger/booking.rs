//! A booking's moves on the ledger (DESIGN section 7). A booking draws on its slot's pool (the
//! sum of its quantities) and on each pax pool it names; every move of it moves all of those
//! pools in one journal transaction:
//!
//! - hold: `available → held`;
//! - confirm: `held → sold`;
//! - release (cancel of a hold, expiry): `held → available`;
//! - refund (cancel of a confirmed booking): `sold → available`.
//!
//! Seats given back to a pool whose holds and sales exceed the partner's allotment first cover
//! its shortfall; only the rest go back on sale.

use std::collections::HashMap;

use super::posting::{PlannedPosting, RunningBalance};
use super::{AccountId, AccountKind, AccountState, PostingError, Transfer};
use crate::domain::Seats;

/// What a move does to a booking's seats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookingMove {
    Hold,
    Confirm,
    Release,
    Refund,
}

/// One account of a pool, as read in the transaction that moves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PoolAccount {
    pub id: AccountId,
    pub running: RunningBalance,
}

/// A pool a booking draws on: its four accounts and the booking's quantity of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BookedPool {
    /// `None` for the slot's own pool.
    pub pax_type: Option<String>,
    pub available: PoolAccount,
    pub held: PoolAccount,
    pub sold: PoolAccount,
    pub shortfall: PoolAccount,
    pub quantity: Seats,
}

impl BookedPool {
    fn accounts(&self) -> [(AccountKind, PoolAccount); 4] {
        [
            (AccountKind::Available, self.available),
            (AccountKind::Held, self.held),
            (AccountKind::Sold, self.sold),
            (AccountKind::Shortfall, self.shortfall),
        ]
    }
}

/// Why a hold cannot be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsufficientCapacity {
    /// `None` for the slot's own pool.
    pub pax_type: Option<String>,
    pub wanted: Seats,
    pub left: Seats,
}

/// The transfers of one move of a booking.
fn booking_transfers(booking_move: BookingMove, pools: &[BookedPool]) -> Vec<Transfer> {
    let mut transfers = Vec::with_capacity(pools.len() * 2);
    for pool in pools {
        let quantity = pool.quantity;
        let (from, to) = match booking_move {
            BookingMove::Hold => (pool.available.id, pool.held.id),
            BookingMove::Confirm => (pool.held.id, pool.sold.id),
            BookingMove::Release => (pool.held.id, pool.available.id),
            BookingMove::Refund => (pool.sold.id, pool.available.id),
        };
        let given_back = matches!(booking_move, BookingMove::Release | BookingMove::Refund);
        let cover = if given_back {
            quantity.min(-pool.shortfall.running.balance).max(0)
        } else {
            0
        };
        transfers.extend(super::transfer_between(from, pool.shortfall.id, cover));
        transfers.extend(super::transfer_between(from, to, quantity - cover));
    }
    transfers
}

/// The hold a move would be refused for: the first pool with fewer seats available than the
/// booking takes of it.
fn first_short(pools: &[BookedPool]) -> Option<InsufficientCapacity> {
    pools
        .iter()
        .find(|pool| pool.available.running.balance < pool.quantity)
        .map(|short| InsufficientCapacity {
            pax_type: short.pax_type.clone(),
            wanted: short.quantity,
            left: short.available.running.balance.max(0),
        })
}

fn account_states<'p>(
    pools: impl IntoIterator<Item = &'p BookedPool>,
) -> HashMap<AccountId, AccountState> {
    pools
        .into_iter()
        .flat_map(BookedPool::accounts)
        .map(|(kind, account)| {
            let state = AccountState {
                kind,
                balance: account.running.balance,
                version: account.running.version,
            };
            (account.id, state)
        })
        .collect()
}

/// One move of a booking: its transfers and the posting they make.
#[derive(Debug)]
pub(crate) struct PlannedMove {
    pub transfers: Vec<Transfer>,
    pub posting: PlannedPosting,
}

/// The posting of one move of a booking. A hold is refused, naming the first pool short, when
/// any pool has fewer seats available than the booking takes of it.
pub(crate) fn plan_move(
    booking_move: BookingMove,
    pools: &[BookedPool],
) -> Result<Result<PlannedMove, InsufficientCapacity>, PostingError> {
    if booking_move == BookingMove::Hold
        && let Some(short) = first_short(pools)
    {
        return Ok(Err(short));
    }
    let accounts = account_states(pools);
    let transfers = booking_transfers(booking_move, pools);
    let posting = PlannedPosting::plan(&transfers, accounts)?;
    Ok(Ok(PlannedMove { transfers, posting }))
}

/// Moves a booking to other seats in one posting: its seats go back (released, or refunded
/// when `confirmed`) and the new ones are taken (held, or held and sold), or nothing moves
/// when the new pools lack the seats even with the old ones back. The pools may overlap:
/// changing only quantities moves just the difference.
pub(crate) fn plan_rebook(
    confirmed: bool,
    old: &[BookedPool],
    new: &[BookedPool],
) -> Result<Result<PlannedMove, InsufficientCapacity>, PostingError> {
    let accounts = account_states(old.iter().chain(new));
    let give_back = if confirmed {
        BookingMove::Refund
    } else {
        BookingMove::Release
    };
    let mut transfers = booking_transfers(give_back, old);
    // The new seats are judged with the old ones already back.
    let mut given_back = accounts.clone();
    super::post(&transfers, &mut given_back)?;
    let running = |account: PoolAccount| {
        let state = given_back.get(&account.id).map(|state| RunningBalance {
            balance: state.balance,
            version: state.version,
        });
        PoolAccount {
            running: state.unwrap_or(account.running),
            ..account
        }
    };
    let new: Vec<BookedPool> = new
        .iter()
        .map(|pool| BookedPool {
            available: running(pool.available),
            held: running(pool.held),
            sold: running(pool.sold),
            shortfall: running(pool.shortfall),
            ..pool.clone()
        })
        .collect();
    if let Some(short) = first_short(&new) {
        return Ok(Err(short));
    }
    transfers.extend(booking_transfers(BookingMove::Hold, &new));
    if confirmed {
        transfers.extend(booking_transfers(BookingMove::Confirm, &new));
    }
    let posting = PlannedPosting::plan(&transfers, accounts)?;
    Ok(Ok(PlannedMove { transfers, posting }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{PoolObservation, capacity_transfers};

    fn account(id: AccountId, balance: Seats) -> PoolAccount {
        PoolAccount {
            id,
            running: RunningBalance {
                balance,
                version: 1,
            },
        }
    }

    /// A pool with accounts 10 + 4n … 13 + 4n.
    fn pool(n: i64, [available, held, sold, shortfall]: [Seats; 4], quantity: Seats) -> BookedPool {
        BookedPool {
            pax_type: (n > 0).then(|| format!("PAX{n}")),
            available: account(10 + 4 * n, available),
            held: account(11 + 4 * n, held),
            sold: account(12 + 4 * n, sold),
            shortfall: account(13 + 4 * n, shortfall),
            quantity,
        }
    }

    fn balances(pools: &[BookedPool], posting: &PlannedPosting) -> Vec<[Seats; 4]> {
        let after: HashMap<AccountId, Seats> = posting
            .entries
            .iter()
            .map(|entry| (entry.account, entry.balance_after))
            .collect();
        pools
            .iter()
            .map(|pool| {
                pool.accounts()
                    .map(|(_, a)| after.get(&a.id).copied().unwrap_or(a.running.balance))
            })
            .collect()
    }

    #[test]
    fn a_hold_confirm_and_refund_move_every_pool_of_the_booking() {
        let pools = [pool(0, [10, 0, 0, 0], 3), pool(1, [4, 0, 0, 0], 3)];
        let held = plan_move(BookingMove::Hold, &pools)
            .unwrap()
            .unwrap()
            .posting;
        assert_eq!(
            balances(&pools, &held),
            [[7, 3, 0, 0], [1, 3, 0, 0]],
            "both pools held in one posting"
        );
        let pools = [pool(0, [7, 3, 0, 0], 3), pool(1, [1, 3, 0, 0], 3)];
        let confirmed = plan_move(BookingMove::Confirm, &pools)
            .unwrap()
            .unwrap()
            .posting;
        assert_eq!(balances(&pools, &confirmed), [[7, 0, 3, 0], [1, 0, 3, 0]]);
        let pools = [pool(0, [7, 0, 3, 0], 3), pool(1, [1, 0, 3, 0], 3)];
        let refunded = plan_move(BookingMove::Refund, &pools)
            .unwrap()
            .unwrap()
            .posting;
        assert_eq!(balances(&pools, &refunded), [[10, 0, 0, 0], [4, 0, 0, 0]]);
    }

    #[test]
    fn a_hold_is_refused_whole_when_any_pool_is_short() {
        let pools = [pool(0, [10, 0, 0, 0], 3), pool(1, [2, 0, 0, 0], 3)];
        let refused = plan_move(BookingMove::Hold, &pools).unwrap().unwrap_err();
        assert_eq!(
            refused,
            InsufficientCapacity {
                pax_type: Some("PAX1".into()),
                wanted: 3,
                left: 2
            }
        );
    }

    #[test]
    fn a_rebook_takes_the_new_seats_with_the_old_ones_back() {
        // Slot pool: 1 available, 3 held by the booking; it grows to 4: only with its own 3
        // back does it fit.
        let old = [pool(0, [1, 3, 0, 0], 3)];
        let new = [pool(0, [1, 3, 0, 0], 4)];
        let moved = plan_rebook(false, &old, &new).unwrap().unwrap().posting;
        assert_eq!(balances(&new, &moved), [[0, 4, 0, 0]]);
        let too_many = [pool(0, [1, 3, 0, 0], 5)];
        assert_eq!(
            plan_rebook(false, &old, &too_many).unwrap().unwrap_err(),
            InsufficientCapacity {
                pax_type: None,
                wanted: 5,
                left: 4
            }
        );
    }

    #[test]
    fn a_confirmed_rebook_to_another_slot_refunds_the_old_seats_and_sells_the_new() {
        let old = [pool(0, [2, 0, 3, 0], 3)];
        let new = [pool(1, [5, 0, 0, 0], 2)];
        let moved = plan_rebook(true, &old, &new).unwrap().unwrap().posting;
        assert_eq!(balances(&old, &moved), [[5, 0, 0, 0]]);
        assert_eq!(balances(&new, &moved), [[3, 0, 2, 0]]);
        let net: Seats = moved.entries.iter().map(|entry| entry.amount).sum();
        assert_eq!(net, 0, "one balanced posting");
    }

    #[test]
    fn seats_given_back_cover_the_shortfall_first() {
        // Allotment 2, with 5 held: available 0, shortfall −3. Releasing 4 covers the 3 and
        // puts 1 back on sale.
        let pools = [pool(0, [0, 5, 0, -3], 4)];
        let released = plan_move(BookingMove::Release, &pools)
            .unwrap()
            .unwrap()
            .posting;
        assert_eq!(balances(&pools, &released), [[1, 1, 0, 0]]);
    }

    #[test]
    fn a_sync_below_held_and_sold_records_the_shortfall_and_never_touches_them() {
        const PARTNER: AccountId = 1;
        let observe = |observed, available, shortfall| PoolObservation {
            available: 10,
            balance: available,
            observed,
            committed: 6,
            shortfall: Some((13, shortfall)),
        };
        // 4 held + 2 sold, 4 available (allotment 10) → allotment 3: available 0, shortfall −3.
        let down = capacity_transfers(PARTNER, &[observe(3, 4, 0)]);
        assert_eq!(
            down,
            [
                Transfer {
                    debit: 10,
                    credit: PARTNER,
                    amount: 4
                },
                Transfer {
                    debit: 13,
                    credit: PARTNER,
                    amount: 3
                }
            ]
        );
        // Back up to 8: the shortfall is covered and 2 seats are on sale again.
        let up = capacity_transfers(PARTNER, &[observe(8, 0, -3)]);
        assert_eq!(
            up,
            [
                Transfer {
                    debit: PARTNER,
                    credit: 10,
                    amount: 2
                },
                Transfer {
                    debit: PARTNER,
                    credit: 13,
                    amount: 3
                }
            ]
        );
    }
}
