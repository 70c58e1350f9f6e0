-- Inventory mirror and capacity ledger (SQLite). Timestamps are RFC 3339 UTC text; dates are
-- YYYY-MM-DD text; capacity and money are INTEGERs (money in minor units with an explicit
-- scale) so nothing is ever summed as text or float.

CREATE TABLE experiences (
    id          INTEGER PRIMARY KEY CHECK (id > 0),
    created_at  TEXT NOT NULL
);

-- One row per partner response that was applied. Immutable.
CREATE TABLE fetches (
    id              TEXT PRIMARY KEY,
    experience_id   INTEGER NOT NULL REFERENCES experiences (id),
    service_date    TEXT NOT NULL,
    fetched_at      TEXT NOT NULL,
    applied_at      TEXT NOT NULL,
    slot_count      INTEGER NOT NULL CHECK (slot_count >= 0)
);
CREATE INDEX fetches_by_day ON fetches (experience_id, service_date, fetched_at);

-- Checkpoint: the newest applied fetch of each (experience, date). A restart resumes from it.
CREATE TABLE product_dates (
    experience_id    INTEGER NOT NULL REFERENCES experiences (id),
    service_date     TEXT NOT NULL,
    last_fetch_id    TEXT NOT NULL REFERENCES fetches (id),
    last_fetched_at  TEXT NOT NULL,
    slot_count       INTEGER NOT NULL,
    PRIMARY KEY (experience_id, service_date)
);

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
    UNIQUE (experience_id, provider_slot_id)
);
CREATE INDEX slots_by_day ON slots (experience_id, service_date, start_time);

CREATE TABLE slot_pax (
    slot_id              INTEGER NOT NULL REFERENCES slots (id),
    pax_type             TEXT NOT NULL,
    position             INTEGER NOT NULL,
    name                 TEXT NOT NULL,
    description          TEXT NOT NULL,
    min_pax              INTEGER NOT NULL,
    max_pax              INTEGER NOT NULL,
    is_primary           INTEGER NOT NULL CHECK (is_primary IN (0, 1)),
    currency             TEXT NOT NULL,
    price_scale          INTEGER NOT NULL CHECK (price_scale BETWEEN 0 AND 28),
    final_price_minor    INTEGER NOT NULL,
    original_price_minor INTEGER NOT NULL,
    observed_remaining   INTEGER NOT NULL CHECK (observed_remaining >= 0),
    is_present           INTEGER NOT NULL CHECK (is_present IN (0, 1)),
    last_fetch_id        TEXT NOT NULL REFERENCES fetches (id),
    PRIMARY KEY (slot_id, pax_type)
);

-- Ledger accounts. `partner` is an experience's source of capacity and may go negative; every
-- other kind is a floor account of one inventory pool (a slot, or a slot's pax type).
-- `held` and `sold` are reserved for customer holds and bookings.
CREATE TABLE accounts (
    id             INTEGER PRIMARY KEY,
    experience_id  INTEGER NOT NULL REFERENCES experiences (id),
    kind           TEXT NOT NULL CHECK (kind IN ('partner', 'available', 'held', 'sold')),
    slot_id        INTEGER REFERENCES slots (id),
    pax_type       TEXT,
    balance        INTEGER NOT NULL DEFAULT 0,
    version        INTEGER NOT NULL DEFAULT 0 CHECK (version >= 0),
    CHECK (kind = 'partner' OR balance >= 0),
    CHECK ((kind = 'partner') = (slot_id IS NULL)),
    CHECK (pax_type IS NULL OR slot_id IS NOT NULL)
);
CREATE UNIQUE INDEX accounts_partner ON accounts (experience_id) WHERE kind = 'partner';
CREATE UNIQUE INDEX accounts_slot_pool ON accounts (slot_id, kind)
    WHERE slot_id IS NOT NULL AND pax_type IS NULL;
CREATE UNIQUE INDEX accounts_pax_pool ON accounts (slot_id, pax_type, kind)
    WHERE pax_type IS NOT NULL;
CREATE INDEX accounts_by_slot ON accounts (slot_id);

CREATE TABLE journal_transactions (
    id             INTEGER PRIMARY KEY,
    experience_id  INTEGER NOT NULL REFERENCES experiences (id),
    fetch_id       TEXT NOT NULL REFERENCES fetches (id),
    reason         TEXT NOT NULL,
    created_at     TEXT NOT NULL
);

CREATE TABLE transfers (
    id                 INTEGER PRIMARY KEY,
    transaction_id     INTEGER NOT NULL REFERENCES journal_transactions (id),
    debit_account_id   INTEGER NOT NULL REFERENCES accounts (id),
    credit_account_id  INTEGER NOT NULL REFERENCES accounts (id),
    amount             INTEGER NOT NULL CHECK (amount > 0),
    CHECK (debit_account_id <> credit_account_id)
);

-- One entry per account touched by a transfer: -amount on the debit side, +amount on the
-- credit side, with the account's balance after it and a contiguous per-account version.
CREATE TABLE entries (
    id              INTEGER PRIMARY KEY,
    transaction_id  INTEGER NOT NULL REFERENCES journal_transactions (id),
    transfer_id     INTEGER NOT NULL REFERENCES transfers (id),
    account_id      INTEGER NOT NULL REFERENCES accounts (id),
    amount          INTEGER NOT NULL CHECK (amount <> 0),
    balance_after   INTEGER NOT NULL,
    version         INTEGER NOT NULL CHECK (version > 0),
    created_at      TEXT NOT NULL,
    UNIQUE (account_id, version)
);
CREATE INDEX entries_by_transaction ON entries (transaction_id);
CREATE INDEX entries_by_transfer ON entries (transfer_id);

-- The journal is append-only: history is never overwritten.
CREATE TRIGGER entries_immutable_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable'); END;
CREATE TRIGGER entries_immutable_delete BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable'); END;
CREATE TRIGGER transfers_immutable_update BEFORE UPDATE ON transfers
BEGIN SELECT RAISE(ABORT, 'ledger transfers are immutable'); END;
CREATE TRIGGER transfers_immutable_delete BEFORE DELETE ON transfers
BEGIN SELECT RAISE(ABORT, 'ledger transfers are immutable'); END;
CREATE TRIGGER journal_immutable_update BEFORE UPDATE ON journal_transactions
BEGIN SELECT RAISE(ABORT, 'journal transactions are immutable'); END;
CREATE TRIGGER journal_immutable_delete BEFORE DELETE ON journal_transactions
BEGIN SELECT RAISE(ABORT, 'journal transactions are immutable'); END;
CREATE TRIGGER fetches_immutable_update BEFORE UPDATE ON fetches
BEGIN SELECT RAISE(ABORT, 'fetch records are immutable'); END;
CREATE TRIGGER fetches_immutable_delete BEFORE DELETE ON fetches
BEGIN SELECT RAISE(ABORT, 'fetch records are immutable'); END;
