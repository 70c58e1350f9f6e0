//! The ledger invariants `invsync verify` and `GET /api/v1/ledger/verify` check.
//!
//! Each check is one portable SQL query that returns a human-readable line per violation, so
//! the checks run inside the database (bounded memory whatever the ledger's size) and both
//! backends run exactly the same rules.

use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Invariant {
    TransactionBalanced,
    EntriesMatchTransfers,
    BalanceEqualsEntries,
    ChainContiguous,
    FloorRespected,
    BalancesSumToZero,
    ServedEqualsObserved,
    BookingsMatchHeldAndSold,
    ReferencesResolve,
}

/// `(invariant, query)`: each query yields one TEXT column describing one violation per row.
pub const CHECKS: &[(Invariant, &str)] = &[
    (
        Invariant::TransactionBalanced,
        "SELECT 'transaction ' || CAST(transaction_id AS TEXT) || ' sums to '
                || CAST(SUM(amount) AS TEXT)
         FROM entries GROUP BY transaction_id HAVING SUM(amount) <> 0",
    ),
    (
        Invariant::EntriesMatchTransfers,
        // An account's entries in a transaction (one since migration 0008, one per transfer
        // before it) sum to what the transaction's transfers move on it. The place check
        // stands in for a unique key SQLite's transfers do not have (migration 0007), so
        // postings do not pay for it.
        "SELECT 'account ' || CAST(account_id AS TEXT) || ' moves by '
                || CAST(SUM(entered) AS TEXT) || ' in transaction '
                || CAST(transaction_id AS TEXT) || ' but its transfers move it by '
                || CAST(SUM(transferred) AS TEXT)
         FROM (SELECT transaction_id, account_id, amount AS entered, 0 AS transferred
               FROM entries
               UNION ALL
               SELECT transaction_id, debit_account_id, 0, -amount FROM transfers
               UNION ALL
               SELECT transaction_id, credit_account_id, 0, amount FROM transfers) moves
         GROUP BY transaction_id, account_id
         HAVING SUM(entered) <> SUM(transferred)
         UNION ALL
         SELECT 'transfer ' || CAST(position AS TEXT) || ' of transaction '
                || CAST(transaction_id AS TEXT) || ' is recorded '
                || CAST(COUNT(*) AS TEXT) || ' times'
         FROM transfers GROUP BY transaction_id, position HAVING COUNT(*) > 1",
    ),
    (
        Invariant::BalanceEqualsEntries,
        "SELECT 'account ' || CAST(a.id AS TEXT) || ' stores balance ' || CAST(a.balance AS TEXT)
                || ' but its entries sum to ' || CAST(COALESCE(s.total, 0) AS TEXT)
         FROM accounts a
         LEFT JOIN (SELECT account_id, SUM(amount) AS total FROM entries GROUP BY account_id) s
                ON s.account_id = a.id
         WHERE a.balance <> COALESCE(s.total, 0)",
    ),
    (
        Invariant::ChainContiguous,
        "SELECT 'account ' || CAST(a.id AS TEXT) || ' is at version ' || CAST(a.version AS TEXT)
                || ' but holds ' || CAST(COALESCE(s.n, 0) AS TEXT) || ' entries numbered '
                || CAST(COALESCE(s.low, 0) AS TEXT) || '..' || CAST(COALESCE(s.high, 0) AS TEXT)
         FROM accounts a
         LEFT JOIN (SELECT account_id, COUNT(*) AS n, MIN(version) AS low, MAX(version) AS high
                    FROM entries GROUP BY account_id) s ON s.account_id = a.id
         WHERE COALESCE(s.n, 0) <> a.version OR COALESCE(s.high, 0) <> a.version
            OR COALESCE(s.low, 1) <> 1
         UNION ALL
         SELECT 'entry ' || CAST(version AS TEXT) || ' of account ' || CAST(account_id AS TEXT)
                || ' says balance ' || CAST(balance_after AS TEXT)
                || ' after it, the chain sums to '
                || CAST(running AS TEXT)
         FROM (SELECT account_id, version, balance_after,
                      SUM(amount) OVER (PARTITION BY account_id ORDER BY version
                                        ROWS UNBOUNDED PRECEDING) AS running
               FROM entries) chained
         WHERE running <> balance_after",
    ),
    (
        Invariant::FloorRespected,
        "SELECT 'account ' || CAST(id AS TEXT) || ' (' || kind || ') is negative: '
                || CAST(balance AS TEXT)
         FROM accounts WHERE kind IN ('available', 'held', 'sold') AND balance < 0
         UNION ALL
         SELECT 'account ' || CAST(id AS TEXT) || ' (shortfall) is positive: '
                || CAST(balance AS TEXT)
         FROM accounts WHERE kind = 'shortfall' AND balance > 0",
    ),
    (
        Invariant::BalancesSumToZero,
        "SELECT 'all balances sum to ' || CAST(SUM(balance) AS TEXT)
         FROM accounts HAVING SUM(balance) <> 0",
    ),
    (
        // A pool's accounts always add up to the allotment the partner last reported
        // (0 for a closed slot or a vanished pax): available + held + sold, less the shortfall
        // (a shortfall account's balance is 0 or negative).
        Invariant::ServedEqualsObserved,
        "SELECT 'slot ' || s.provider_slot_id || ' counts '
                || COALESCE(CAST(a.balance + COALESCE(b.seats, 0) AS TEXT), 'no account')
                || ' seats (available + held + sold - shortfall) but the partner last reported '
                || CAST(CASE WHEN s.is_open THEN s.observed_remaining ELSE 0 END AS TEXT)
         FROM slots s
         LEFT JOIN accounts a ON a.slot_id = s.id AND a.pax_type IS NULL AND a.kind = 'available'
         LEFT JOIN (SELECT slot_id, SUM(balance) AS seats FROM accounts
                    WHERE pax_type IS NULL AND kind IN ('held', 'sold', 'shortfall')
                    GROUP BY slot_id) b ON b.slot_id = s.id
         WHERE a.id IS NULL
            OR a.balance + COALESCE(b.seats, 0)
               <> CASE WHEN s.is_open THEN s.observed_remaining ELSE 0 END
         UNION ALL
         SELECT 'slot ' || s.provider_slot_id || ' pax ' || p.pax_type || ' counts '
                || COALESCE(CAST(a.balance + COALESCE(b.seats, 0) AS TEXT), 'no account')
                || ' seats (available + held + sold - shortfall) but the partner last reported '
                || CAST(CASE WHEN s.is_open AND p.is_present THEN p.observed_remaining ELSE 0 END
                        AS TEXT)
         FROM slot_pax p
         JOIN slots s ON s.id = p.slot_id
         LEFT JOIN accounts a ON a.slot_id = p.slot_id AND a.pax_type = p.pax_type
                             AND a.kind = 'available'
         LEFT JOIN (SELECT slot_id, pax_type, SUM(balance) AS seats FROM accounts
                    WHERE pax_type IS NOT NULL AND kind IN ('held', 'sold', 'shortfall')
                    GROUP BY slot_id, pax_type) b
                ON b.slot_id = p.slot_id AND b.pax_type = p.pax_type
         WHERE a.id IS NULL
            OR a.balance + COALESCE(b.seats, 0)
               <> CASE WHEN s.is_open AND p.is_present THEN p.observed_remaining ELSE 0 END",
    ),
    (
        // A pool's held seats are the quantities of the bookings on hold on it, its sold seats
        // those of the confirmed ones (the slot's pool counts every pax of a booking).
        Invariant::BookingsMatchHeldAndSold,
        "WITH booked AS (
             SELECT b.slot_id, bp.pax_type,
                    CASE b.status WHEN 'on_hold' THEN 'held' ELSE 'sold' END AS kind,
                    bp.quantity
             FROM bookings b JOIN booking_pax bp ON bp.booking_id = b.id
             WHERE b.status IN ('on_hold', 'confirmed')
             UNION ALL
             SELECT b.slot_id, NULL,
                    CASE b.status WHEN 'on_hold' THEN 'held' ELSE 'sold' END, bp.quantity
             FROM bookings b JOIN booking_pax bp ON bp.booking_id = b.id
             WHERE b.status IN ('on_hold', 'confirmed')
         ), expected AS (
             SELECT slot_id, pax_type, kind, SUM(quantity) AS seats FROM booked
             GROUP BY slot_id, pax_type, kind
         )
         SELECT 'account ' || CAST(a.id AS TEXT) || ' (' || a.kind || ' of slot '
                || CAST(a.slot_id AS TEXT) || COALESCE(' pax ' || a.pax_type, '') || ') is '
                || CAST(a.balance AS TEXT) || ' but its bookings take '
                || CAST(COALESCE(e.seats, 0) AS TEXT)
         FROM accounts a
         LEFT JOIN expected e ON e.slot_id = a.slot_id AND e.kind = a.kind
              AND (e.pax_type = a.pax_type OR (e.pax_type IS NULL AND a.pax_type IS NULL))
         WHERE a.kind IN ('held', 'sold') AND a.balance <> COALESCE(e.seats, 0)
         UNION ALL
         SELECT 'slot ' || CAST(e.slot_id AS TEXT) || COALESCE(' pax ' || e.pax_type, '')
                || ' has ' || CAST(e.seats AS TEXT) || ' seats ' || e.kind
                || ' by bookings but no such account'
         FROM expected e
         LEFT JOIN accounts a ON a.slot_id = e.slot_id AND a.kind = e.kind
              AND (e.pax_type = a.pax_type OR (e.pax_type IS NULL AND a.pax_type IS NULL))
         WHERE a.id IS NULL",
    ),
    (
        // Both backends leave these to this check rather than to foreign keys (migration 0004).
        Invariant::ReferencesResolve,
        "SELECT 'transfer ' || CAST(t.position AS TEXT) || ' of transaction '
                || CAST(t.transaction_id AS TEXT)
                || ' names a missing journal transaction or account'
         FROM transfers t
         LEFT JOIN journal_transactions j ON j.id = t.transaction_id
         LEFT JOIN accounts d ON d.id = t.debit_account_id
         LEFT JOIN accounts c ON c.id = t.credit_account_id
         WHERE j.id IS NULL OR d.id IS NULL OR c.id IS NULL
         UNION ALL
         SELECT 'entry ' || CAST(e.version AS TEXT) || ' of account '
                || CAST(e.account_id AS TEXT)
                || ' names a missing journal transaction or account'
         FROM entries e
         LEFT JOIN journal_transactions j ON j.id = e.transaction_id
         LEFT JOIN accounts a ON a.id = e.account_id
         WHERE j.id IS NULL OR a.id IS NULL",
    ),
];

/// A report lists at most this many violations (the first found) and counts them all.
pub const MAX_REPORTED_VIOLATIONS: usize = 100;

/// How many rows of the ledger a verification looked at.
pub const COUNTS: &str = "SELECT (SELECT COUNT(*) FROM accounts), \
     (SELECT COUNT(*) FROM journal_transactions), (SELECT COUNT(*) FROM entries)";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Violation {
    pub invariant: Invariant,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    pub ok: bool,
    pub accounts: i64,
    pub transactions: i64,
    pub entries: i64,
    /// The first [`MAX_REPORTED_VIOLATIONS`] violations found.
    pub violations: Vec<Violation>,
    /// Every violation found, listed or not.
    pub violation_count: u64,
}

impl VerifyReport {
    pub fn new(counts: (i64, i64, i64), violations: Vec<Violation>, violation_count: u64) -> Self {
        Self {
            ok: violation_count == 0,
            accounts: counts.0,
            transactions: counts.1,
            entries: counts.2,
            violations,
            violation_count,
        }
    }
}
