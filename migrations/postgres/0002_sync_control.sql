-- Operator controls that must survive restarts: whether the sync is paused, why, and since
-- when. One row.
CREATE TABLE sync_control (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    paused      BOOLEAN NOT NULL,
    reason      TEXT,
    changed_at  TIMESTAMPTZ NOT NULL
);
INSERT INTO sync_control (id, paused, reason, changed_at)
VALUES (1, FALSE, NULL, '1970-01-01T00:00:00+00:00');

CREATE INDEX product_dates_by_date ON product_dates (service_date);
