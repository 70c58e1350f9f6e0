-- Which instance may poll the partner: one row, a holder, a fencing token that grows with
-- every change of holder, and when the lease runs out unless renewed.
CREATE TABLE sync_lease (
    id          SMALLINT PRIMARY KEY CHECK (id = 1),
    holder      TEXT,
    token       BIGINT NOT NULL CHECK (token >= 0),
    expires_at  TIMESTAMPTZ NOT NULL
);
INSERT INTO sync_lease (id, holder, token, expires_at) VALUES (1, NULL, 0, 'epoch');

-- Manual sync requests, taken by whichever instance holds the lease.
CREATE TABLE sync_triggers (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    experience_id  BIGINT REFERENCES experiences (id),
    from_date      DATE NOT NULL,
    to_date        DATE NOT NULL,
    requested_at   TIMESTAMPTZ NOT NULL
);
