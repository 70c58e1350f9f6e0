-- Entries are read by account (slot history, through the UNIQUE (account_id, version) index)
-- and by transaction and transfer only in `verify`, which joins and aggregates whole tables.
-- Every posting wrote both of these indexes for each of its entries.
DROP INDEX entries_by_transaction;
DROP INDEX entries_by_transfer;
