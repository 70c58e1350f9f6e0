-- An entry is identified by its account and its place in that account's chain, which is how
-- it is read (slot history) and checked (`verify`). The rowid was a second b-tree written for
-- every entry of every posting, and nothing read it. SQLite cannot change a table's key, so
-- the table is rebuilt `WITHOUT ROWID` with the same columns and immutability triggers.
CREATE TABLE entries_rebuilt (
    transaction_id  INTEGER NOT NULL,
    transfer_id     INTEGER NOT NULL,
    account_id      INTEGER NOT NULL,
    amount          INTEGER NOT NULL CHECK (amount <> 0),
    balance_after   INTEGER NOT NULL,
    version         INTEGER NOT NULL CHECK (version > 0),
    created_at      TEXT NOT NULL,
    PRIMARY KEY (account_id, version)
) WITHOUT ROWID;
INSERT INTO entries_rebuilt SELECT transaction_id, transfer_id, account_id, amount,
                                   balance_after, version, created_at FROM entries;
DROP TABLE entries;
ALTER TABLE entries_rebuilt RENAME TO entries;
CREATE TRIGGER entries_immutable_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable'); END;
CREATE TRIGGER entries_immutable_delete BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable'); END;
