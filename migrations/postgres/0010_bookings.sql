-- Customer bookings (DESIGN section 7). A booking draws on a slot's allotment: hold moves seats
-- `available -> held`, confirm `held -> sold`, cancel and expiry move them back. A pool's
-- `shortfall` account records the seats its holds and sales exceed the partner's allotment by:
-- it is never positive, so `available + held + sold + shortfall` is always the allotment the
-- partner last reported and the books balance however far the allotment falls.
ALTER TABLE accounts
    DROP CONSTRAINT accounts_kind_check,
    DROP CONSTRAINT accounts_floor,
    ADD CONSTRAINT accounts_kind_check
        CHECK (kind IN ('partner', 'available', 'held', 'sold', 'shortfall')),
    ADD CONSTRAINT accounts_floor CHECK (
        kind = 'partner'
        OR (kind = 'shortfall' AND balance <= 0)
        OR (kind NOT IN ('partner', 'shortfall') AND balance >= 0));

-- Every booking move bumps its day's counter in the transaction that makes it, so a read
-- cache on any instance can tell with one key lookup whether the day's answer it holds is
-- still exact.
ALTER TABLE product_dates ADD COLUMN booking_changes BIGINT NOT NULL DEFAULT 0;

-- Booking ids are UUIDs in their text form, as on SQLite, so both backends run the same
-- booking statements.
CREATE TABLE bookings (
    id             TEXT PRIMARY KEY,
    experience_id  BIGINT NOT NULL REFERENCES experiences (id),
    slot_id        BIGINT NOT NULL REFERENCES slots (id),
    status         TEXT NOT NULL
        CHECK (status IN ('on_hold', 'confirmed', 'cancelled', 'expired')),
    created_at     TIMESTAMPTZ NOT NULL,
    -- The hold's deadline; kept after it ends, for the record.
    expires_at     TIMESTAMPTZ NOT NULL,
    confirmed_at   TIMESTAMPTZ,
    cancelled_at   TIMESTAMPTZ,
    ended_at       TIMESTAMPTZ
);
-- What the expiry sweeper reads: the holds that are due, soonest first.
CREATE INDEX bookings_on_hold_by_expiry ON bookings (expires_at) WHERE status = 'on_hold';

-- Each pax type a booking takes, with its price as captured at hold time.
CREATE TABLE booking_pax (
    booking_id           TEXT NOT NULL REFERENCES bookings (id),
    pax_type             TEXT NOT NULL,
    position             INTEGER NOT NULL,
    quantity             BIGINT NOT NULL CHECK (quantity > 0),
    currency             TEXT NOT NULL,
    price_scale          INTEGER NOT NULL CHECK (price_scale BETWEEN 0 AND 28),
    final_price_minor    BIGINT NOT NULL,
    original_price_minor BIGINT NOT NULL,
    PRIMARY KEY (booking_id, pax_type)
);

-- A booking's postings name it instead of a fetch.
ALTER TABLE journal_transactions
    ALTER COLUMN fetch_id DROP NOT NULL,
    ADD COLUMN booking_id TEXT REFERENCES bookings (id),
    ADD CONSTRAINT journal_names_fetch_or_booking
        CHECK ((fetch_id IS NULL) <> (booking_id IS NULL));
CREATE INDEX journal_by_booking ON journal_transactions (booking_id)
    WHERE booking_id IS NOT NULL;

-- Idempotency keys of `POST /bookings`: the hash of the request they first came with and the
-- booking it made. A key without a booking is in flight; one whose claim is older than a
-- minute was abandoned (its process died) and may be claimed again.
CREATE TABLE idempotency_keys (
    key           TEXT PRIMARY KEY,
    request_hash  TEXT NOT NULL,
    booking_id    TEXT REFERENCES bookings (id),
    claimed_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (claimed_at);
