-- Which instance may poll the partner: one row, a holder, a fencing token that grows with
-- every change of holder, and when the lease runs out unless renewed.
CREATE TABLE sync_lease (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    holder      TEXT,
    token       INTEGER NOT NULL CHECK (token >= 0),
    expires_at  TEXT NOT NULL
);
INSERT INTO sync_lease (id, holder, token, expires_at)
VALUES (1, NULL, 0, '1970-01-01T00:00:00+00:00');

-- Manual sync requests, taken by whichever instance holds the lease.
CREATE TABLE sync_triggers (
    id             INTEGER PRIMARY KEY,
    experience_id  INTEGER REFERENCES experiences (id),
    from_date      TEXT NOT NULL,
    to_date        TEXT NOT NULL,
    requested_at   TEXT NOT NULL
);
