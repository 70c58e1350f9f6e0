-- An account's entry is what one journal transaction does to it: the net of the transaction's
-- transfers on that account, with the balance the transaction leaves. Before, each transfer
-- wrote an entry on both of its accounts, so the partner account took one entry per changed
-- pool (20 a day), each with a balance no one could read outside the transaction. The
-- transfers still say who moved what to whom; `verify` (`entries_match_transfers`) checks that
-- an account's entries in a transaction sum to what its transfers move, which the entries
-- written before this migration satisfy as well. An entry no longer names a transfer.
ALTER TABLE entries DROP COLUMN transfer_position;
