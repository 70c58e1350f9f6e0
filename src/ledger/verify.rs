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
         FROM accounts WHERE kind <> 'partner' AND balance < 0",
    ),
    (
        Invariant::BalancesSumToZero,
        "SELECT 'all balances sum to ' || CAST(SUM(balance) AS TEXT)
         FROM accounts HAVING SUM(balance) <> 0",
    ),
    (
        Invariant::ServedEqualsObserved,
        "SELECT 'slot ' || s.provider_slot_id || ' serves '
                || COALESCE(CAST(a.balance AS TEXT), 'no account')
                || ' but the partner last reported '
                || CAST(CASE WHEN s.is_open THEN s.observed_remaining ELSE 0 END AS TEXT)
         FROM slots s
         LEFT JOIN accounts a ON a.slot_id = s.id AND a.pax_type IS NULL AND a.kind = 'available'
         WHERE a.id IS NULL
            OR a.balance <> CASE WHEN s.is_open THEN s.observed_remaining ELSE 0 END
         UNION ALL
         SELECT 'slot ' || s.provider_slot_id || ' pax ' || p.pax_type || ' serves '
                || COALESCE(CAST(a.balance AS TEXT), 'no account')
                || ' but the partner last reported '
                || CAST(CASE WHEN s.is_open AND p.is_present THEN p.observed_remaining ELSE 0 END
                        AS TEXT)
         FROM slot_pax p
         JOIN slots s ON s.id = p.slot_id
         LEFT JOIN accounts a ON a.slot_id = p.slot_id AND a.pax_type = p.pax_type
                             AND a.kind = 'available'
         WHERE a.id IS NULL
            OR a.balance <> CASE WHEN s.is_open AND p.is_present THEN p.observed_remaining
                                 ELSE 0 END",
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
