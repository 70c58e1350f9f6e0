-- Customer bookings (DESIGN section 7). A booking draws on a slot's allotment: hold moves seats
-- `available -> held`, confirm `held -> sold`, cancel and expiry move them back. A pool's
-- `shortfall` account records the seats its holds and sales exceed the partner's allotment by:
-- it is never positive, so `available + held + sold + shortfall` is always the allotment the
-- partner last reported and the books balance however far the allotment falls.
--
-- SQLite cannot change a CHECK or a NOT NULL, so `accounts` and `journal_transactions` are
-- rebuilt with the same rows, ids, indexes and triggers (dropping a table fires none of its
-- triggers). Nothing references either by a foreign key (migration 0004).
CREATE TABLE accounts_rebuilt (
    id             INTEGER PRIMARY KEY,
    experience_id  INTEGER NOT NULL REFERENCES experiences (id),
    kind           TEXT NOT NULL
        CHECK (kind IN ('partner', 'available', 'held', 'sold', 'shortfall')),
    slot_id        INTEGER REFERENCES slots (id),
    pax_type       TEXT,
    balance        INTEGER NOT NULL DEFAULT 0,
    version        INTEGER NOT NULL DEFAULT 0 CHECK (version >= 0),
    CHECK (kind = 'partner'
           OR (kind = 'shortfall' AND balance <= 0)
           OR (kind NOT IN ('partner', 'shortfall') AND balance >= 0)),
    CHECK ((kind = 'partner') = (slot_id IS NULL)),
    CHECK (pax_type IS NULL OR slot_id IS NOT NULL)
);
INSERT INTO accounts_rebuilt (id, experience_id, kind, slot_id, pax_type, balance, version)
SELECT id, experience_id, kind, slot_id, pax_type, balance, version FROM accounts;
DROP TABLE accounts;
ALTER TABLE accounts_rebuilt RENAME TO accounts;
CREATE UNIQUE INDEX accounts_partner ON accounts (experience_id) WHERE kind = 'partner';
CREATE UNIQUE INDEX accounts_slot_pool ON accounts (slot_id, kind)
    WHERE slot_id IS NOT NULL AND pax_type IS NULL;
CREATE UNIQUE INDEX accounts_pax_pool ON accounts (slot_id, pax_type, kind)
    WHERE pax_type IS NOT NULL;
CREATE INDEX accounts_by_slot ON accounts (slot_id);
CREATE TRIGGER accounts_kept BEFORE DELETE ON accounts
BEGIN SELECT RAISE(ABORT, 'ledger accounts are never deleted'); END;

-- Every booking move bumps its day's counter in the transaction that makes it, so a read
-- cache can tell with one key lookup whether the day's answer it holds is still exact.
ALTER TABLE product_dates ADD COLUMN booking_changes INTEGER NOT NULL DEFAULT 0;

CREATE TABLE bookings (
    id             TEXT PRIMARY KEY,
    experience_id  INTEGER NOT NULL REFERENCES experiences (id),
    slot_id        INTEGER NOT NULL REFERENCES slots (id),
    status         TEXT NOT NULL
        CHECK (status IN ('on_hold', 'confirmed', 'cancelled', 'expired')),
    created_at     TEXT NOT NULL,
    -- The hold's deadline; kept after it ends, for the record.
    expires_at     TEXT NOT NULL,
    confirmed_at   TEXT,
    cancelled_at   TEXT,
    ended_at       TEXT
);
-- What the expiry sweeper reads: the holds that are due, soonest first.
CREATE INDEX bookings_on_hold_by_expiry ON bookings (expires_at) WHERE status = 'on_hold';

-- Each pax type a booking takes, with its price as captured at hold time.
CREATE TABLE booking_pax (
    booking_id           TEXT NOT NULL REFERENCES bookings (id),
    pax_type             TEXT NOT NULL,
    position             INTEGER NOT NULL,
    quantity             INTEGER NOT NULL CHECK (quantity > 0),
    currency             TEXT NOT NULL,
    price_scale          INTEGER NOT NULL CHECK (price_scale BETWEEN 0 AND 28),
    final_price_minor    INTEGER NOT NULL,
    original_price_minor INTEGER NOT NULL,
    PRIMARY KEY (booking_id, pax_type)
);

-- A booking's postings name it instead of a fetch.
CREATE TABLE journal_rebuilt (
    id             INTEGER PRIMARY KEY,
    experience_id  INTEGER NOT NULL REFERENCES experiences (id),
    fetch_id       TEXT REFERENCES fetches (id),
    booking_id     TEXT REFERENCES bookings (id),
    reason         TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    CHECK ((fetch_id IS NULL) <> (booking_id IS NULL))
);
INSERT INTO journal_rebuilt (id, experience_id, fetch_id, reason, created_at)
SELECT id, experience_id, fetch_id, reason, created_at FROM journal_transactions;
DROP TABLE journal_transactions;
ALTER TABLE journal_rebuilt RENAME TO journal_transactions;
CREATE INDEX journal_by_booking ON journal_transactions (booking_id)
    WHERE booking_id IS NOT NULL;
CREATE TRIGGER journal_immutable_update BEFORE UPDATE ON journal_transactions
BEGIN SELECT RAISE(ABORT, 'journal transactions are immutable'); END;
CREATE TRIGGER journal_immutable_delete BEFORE DELETE ON journal_transactions
BEGIN SELECT RAISE(ABORT, 'journal transactions are immutable'); END;

-- Idempotency keys of `POST /bookings`: the hash of the request they first came with and the
-- booking it made. A key without a booking is in flight; one whose claim is older than a
-- minute was abandoned (its process died) and may be claimed again.
CREATE TABLE idempotency_keys (
    key           TEXT PRIMARY KEY,
    request_hash  TEXT NOT NULL,
    booking_id    TEXT REFERENCES bookings (id),
    claimed_at    TEXT NOT NULL
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (claimed_at);
