-- LiteLLM's users: a role, and a budget, limits and models over all of a user's keys. Every
-- user_id already on a key becomes a user (internal_user, no limits), so a key's user_id always
-- names one. A request's cost counts toward its user's spend in the window it was admitted in.
CREATE TABLE users (
    user_id               TEXT PRIMARY KEY NOT NULL,
    user_alias            TEXT,
    user_email            TEXT,
    user_role             TEXT NOT NULL,
    models                TEXT NOT NULL DEFAULT '[]',
    max_budget            INTEGER,
    spend                 INTEGER NOT NULL DEFAULT 0,
    tpm_limit             INTEGER,
    rpm_limit             INTEGER,
    max_parallel_requests INTEGER,
    budget_duration       TEXT,
    budget_reset_at       INTEGER,
    budget_window         INTEGER NOT NULL DEFAULT 0,
    metadata              TEXT NOT NULL DEFAULT '{}',
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
);
INSERT INTO users (user_id, user_role, created_at, updated_at)
    SELECT user_id, 'internal_user', MIN(created_at), MIN(created_at)
    FROM api_keys WHERE user_id IS NOT NULL GROUP BY user_id;
ALTER TABLE spend_logs ADD COLUMN user_window INTEGER NOT NULL DEFAULT 0;
