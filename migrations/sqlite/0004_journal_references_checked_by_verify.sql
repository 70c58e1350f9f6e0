-- The journal's references (a transfer's transaction and accounts, an entry's transaction,
-- transfer and account) are written by the one statement that posts them, from the journal
-- row it inserts and the accounts it has just read under the write lock, and `verify` checks
-- every one of them (`references_resolve`). PostgreSQL drops them for speed (its foreign keys
-- are row triggers, half a posting); here they cost only a few percent of an apply, but both
-- backends keep one rule, so the same conformance tests hold on each. SQLite cannot drop a
-- constraint, so both tables are rebuilt without them, with the same columns, indexes and
-- immutability triggers.
CREATE TABLE entries_rebuilt (
    id              INTEGER PRIMARY KEY,
    transaction_id  INTEGER NOT NULL,
    transfer_id     INTEGER NOT NULL,
    account_id      INTEGER NOT NULL,
    amount          INTEGER NOT NULL CHECK (amount <> 0),
    balance_after   INTEGER NOT NULL,
    version         INTEGER NOT NULL CHECK (version > 0),
    created_at      TEXT NOT NULL,
    UNIQUE (account_id, version)
);
INSERT INTO entries_rebuilt SELECT id, transaction_id, transfer_id, account_id, amount,
                                   balance_after, version, created_at FROM entries;
DROP TABLE entries;
ALTER TABLE entries_rebuilt RENAME TO entries;
CREATE INDEX entries_by_transaction ON entries (transaction_id);
CREATE INDEX entries_by_transfer ON entries (transfer_id);
CREATE TRIGGER entries_immutable_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable'); END;
CREATE TRIGGER entries_immutable_delete BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable'); END;

CREATE TABLE transfers_rebuilt (
    id                 INTEGER PRIMARY KEY,
    transaction_id     INTEGER NOT NULL,
    debit_account_id   INTEGER NOT NULL,
    credit_account_id  INTEGER NOT NULL,
    amount             INTEGER NOT NULL CHECK (amount > 0),
    CHECK (debit_account_id <> credit_account_id)
);
INSERT INTO transfers_rebuilt SELECT id, transaction_id, debit_account_id, credit_account_id,
                                     amount FROM transfers;
DROP TABLE transfers;
ALTER TABLE transfers_rebuilt RENAME TO transfers;
CREATE TRIGGER transfers_immutable_update BEFORE UPDATE ON transfers
BEGIN SELECT RAISE(ABORT, 'ledger transfers are immutable'); END;
CREATE TRIGGER transfers_immutable_delete BEFORE DELETE ON transfers
BEGIN SELECT RAISE(ABORT, 'ledger transfers are immutable'); END;

-- What those keys also guaranteed: an account the journal names is never deleted.
CREATE TRIGGER accounts_kept BEFORE DELETE ON accounts
BEGIN SELECT RAISE(ABORT, 'ledger accounts are never deleted'); END;
