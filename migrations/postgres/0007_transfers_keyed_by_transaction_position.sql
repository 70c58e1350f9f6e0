-- A transfer is identified by its journal transaction and its place in it (1, 2, ...), and an
-- entry names its transfer by that place within the entry's own transaction. The posting
-- statement then writes the transfers and their entries straight from its arrays. A global
-- transfer id had to be drawn from a sequence for each transfer before the insert and joined
-- back to the entries; that took about a fifth of the ledger's cost per changed day
-- (`cargo bench --bench ingest`, README "Changed in session 9").
ALTER TABLE transfers ADD COLUMN position INTEGER;
ALTER TABLE entries RENAME COLUMN transfer_id TO transfer_position;

-- Existing rows are renumbered once, in the order their ids were drawn. The journal is
-- append-only, so its triggers are lifted only for this rewrite, inside this migration's
-- transaction.
ALTER TABLE transfers DISABLE TRIGGER transfers_immutable;
ALTER TABLE entries DISABLE TRIGGER entries_immutable;
UPDATE transfers t SET position = numbered.position
FROM (SELECT id, row_number() OVER (PARTITION BY transaction_id ORDER BY id) AS position
      FROM transfers) numbered
WHERE numbered.id = t.id;
UPDATE entries e SET transfer_position = t.position
FROM transfers t
WHERE t.id = e.transfer_position;
ALTER TABLE entries ENABLE TRIGGER entries_immutable;
ALTER TABLE transfers ENABLE TRIGGER transfers_immutable;

ALTER TABLE transfers
    DROP COLUMN id,
    ALTER COLUMN position SET NOT NULL,
    ADD CONSTRAINT transfers_position_positive CHECK (position > 0),
    ADD PRIMARY KEY (transaction_id, position);
