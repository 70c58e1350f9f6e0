-- A slot is a provider slot id on one date: a partner that reuses an id on another date gets a
-- second slot, instead of moving the first (and its ledger history) to the new date.
-- SQLite cannot drop a table's UNIQUE constraint, so the table is rebuilt with the same rows
-- and ids. Foreign keys are checked at commit: the pax and accounts that reference a slot lose
-- it while the table is rebuilt and find it again, with the same id, before the commit.
PRAGMA defer_foreign_keys = ON;
CREATE TEMP TABLE slots_before_keyed_by_date AS SELECT * FROM slots;
DROP TABLE slots;
CREATE TABLE slots (
    id                  INTEGER PRIMARY KEY,
    experience_id       INTEGER NOT NULL REFERENCES experiences (id),
    provider_slot_id    TEXT NOT NULL,
    service_date        TEXT NOT NULL,
    start_time          TEXT NOT NULL,
    end_time            TEXT NOT NULL,
    currency            TEXT NOT NULL,
    variant_id          INTEGER NOT NULL,
    -- What the partner said last; the served number is the ledger's available balance, and
    -- `verify` checks that the two agree.
    observed_remaining  INTEGER NOT NULL CHECK (observed_remaining >= 0),
    is_open             INTEGER NOT NULL CHECK (is_open IN (0, 1)),
    last_fetch_id       TEXT NOT NULL REFERENCES fetches (id),
    UNIQUE (experience_id, service_date, provider_slot_id)
);
INSERT INTO slots (id, experience_id, provider_slot_id, service_date, start_time, end_time,
                   currency, variant_id, observed_remaining, is_open, last_fetch_id)
SELECT id, experience_id, provider_slot_id, service_date, start_time, end_time, currency,
       variant_id, observed_remaining, is_open, last_fetch_id
FROM temp.slots_before_keyed_by_date;
DROP TABLE temp.slots_before_keyed_by_date;
CREATE INDEX slots_by_day ON slots (experience_id, service_date, start_time);
