-- An entry is identified by its account and its place in that account's chain, which is how
-- it is read (slot history) and checked (`verify`). The surrogate id was a second index and an
-- identity value drawn for every entry of every posting, and nothing read it.
ALTER TABLE entries DROP COLUMN id;
ALTER TABLE entries
    DROP CONSTRAINT entries_account_id_version_key,
    ADD CONSTRAINT entries_pkey PRIMARY KEY (account_id, version);
