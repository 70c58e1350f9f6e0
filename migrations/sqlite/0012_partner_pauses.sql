-- Several partners sync side by side: each one's sync is paused and resumed on its own. A
-- partner without a row runs. The one partner of a single-partner configuration is named
-- 'default', so its pause carries over.
CREATE TABLE sync_pauses (
    partner     TEXT PRIMARY KEY,
    paused      INTEGER NOT NULL CHECK (paused IN (0, 1)),
    reason      TEXT,
    changed_at  TEXT NOT NULL
);
INSERT INTO sync_pauses (partner, paused, reason, changed_at)
SELECT 'default', paused, reason, changed_at FROM sync_control;
DROP TABLE sync_control;

-- A manual sync request is for one partner's sync; NULL (a request stored without one) is
-- taken by whichever partner's sync takes requests first.
ALTER TABLE sync_triggers ADD COLUMN partner TEXT;
