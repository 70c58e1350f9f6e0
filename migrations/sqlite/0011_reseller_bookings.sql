-- What a reseller keeps with a booking it made through the OCTO API: its own uuid for it, its
-- reference, and the rest it sent (contact, notes, unit items) as a JSON document the OCTO
-- layer owns. The booking itself (seats, state, postings) is an ordinary booking; its OCTO
-- uuid is also its idempotency key.
CREATE TABLE reseller_bookings (
    booking_id          TEXT PRIMARY KEY REFERENCES bookings (id),
    uuid                TEXT NOT NULL UNIQUE,
    reseller_reference  TEXT,
    document            TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);
CREATE INDEX reseller_bookings_by_reference ON reseller_bookings (reseller_reference)
    WHERE reseller_reference IS NOT NULL;
