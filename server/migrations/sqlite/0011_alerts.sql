-- Budget alerts: a soft budget on every level (an alert, never a refusal), a webhook per team
-- (set by admins, to hosts the operator allows), and the outbox of alert events: one row per
-- event and destination, made once per (scope, id, budget window, threshold) whatever the
-- number of instances or restarts, and kept until delivered.
ALTER TABLE teams ADD COLUMN soft_budget INTEGER;
ALTER TABLE api_keys ADD COLUMN soft_budget INTEGER;
ALTER TABLE users ADD COLUMN soft_budget INTEGER;
ALTER TABLE team_members ADD COLUMN soft_budget INTEGER;
ALTER TABLE organizations ADD COLUMN soft_budget INTEGER;
ALTER TABLE teams ADD COLUMN alert_webhook_url TEXT;
CREATE TABLE alert_events (
    event_id        TEXT NOT NULL,
    -- The webhook it goes to; '' when none was configured when it happened.
    destination     TEXT NOT NULL,
    dedup_key       TEXT NOT NULL,
    event           TEXT NOT NULL,
    scope           TEXT NOT NULL,
    target_id       TEXT NOT NULL,
    -- The body, exactly as sent (and signed).
    payload         TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    delivered_at    INTEGER,
    last_error      TEXT,
    PRIMARY KEY (event_id, destination),
    UNIQUE (dedup_key, destination)
);
CREATE INDEX alert_events_due ON alert_events (delivered_at, next_attempt_at);
CREATE INDEX alert_events_created ON alert_events (created_at);
