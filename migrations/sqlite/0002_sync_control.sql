-- Operator controls that must survive restarts: whether the sync is paused, why, and since
-- when. One row.
CREATE TABLE sync_control (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    paused      INTEGER NOT NULL CHECK (paused IN (0, 1)),
    reason      TEXT,
    changed_at  TEXT NOT NULL
);
INSERT INTO sync_control (id, paused, reason, changed_at)
VALUES (1, 0, NULL, '1970-01-01T00:00:00+00:00');

CREATE INDEX product_dates_by_date ON product_dates (service_date);
