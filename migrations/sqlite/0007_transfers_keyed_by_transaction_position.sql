-- A transfer is identified by its journal transaction and its place in it (1, 2, ...), and an
-- entry names its transfer by that place within the entry's own transaction, as on
-- PostgreSQL (where drawing a global id per transfer took about a fifth of the ledger's cost),
-- so both backends keep one schema for `verify` and the slot history. Here the posting no
-- longer reads the highest transfer id first.
--
-- The table keeps its rowid and gains the place as a column. `verify` checks that no
-- transaction holds a place twice (`transfer_paired`): a unique index on (transaction_id,
-- position), or rebuilding the table keyed by it, made every posting about 25 µs slower
-- (a tenth of the ledger's cost, `cargo bench --bench ingest`), and only the posting, under
-- the write lock, numbers transfers. SQLite adds a NOT NULL column only with a default, which
-- existing rows take until they are numbered below; the posting always writes the place.
ALTER TABLE transfers ADD COLUMN position INTEGER NOT NULL DEFAULT 1 CHECK (position > 0);
ALTER TABLE entries RENAME COLUMN transfer_id TO transfer_position;

-- Existing rows are numbered once, in the order their ids were drawn. The journal is
-- append-only, so its update triggers are lifted only for this, inside this migration's
-- transaction.
DROP TRIGGER transfers_immutable_update;
DROP TRIGGER entries_immutable_update;
UPDATE entries SET transfer_position = numbered.position
FROM (SELECT id, row_number() OVER (PARTITION BY transaction_id ORDER BY id) AS position
      FROM transfers) numbered
WHERE numbered.id = entries.transfer_position;
UPDATE transfers SET position = numbered.position
FROM (SELECT id, row_number() OVER (PARTITION BY transaction_id ORDER BY id) AS position
      FROM transfers) numbered
WHERE numbered.id = transfers.id;
CREATE TRIGGER transfers_immutable_update BEFORE UPDATE ON transfers
BEGIN SELECT RAISE(ABORT, 'ledger transfers are immutable'); END;
CREATE TRIGGER entries_immutable_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable'); END;
