-- Money is in nano-dollars (INTEGER), times in unix seconds (INTEGER).
CREATE TABLE teams (
    team_id         TEXT PRIMARY KEY NOT NULL,
    team_alias      TEXT,
    models          TEXT NOT NULL DEFAULT '[]',
    max_budget      INTEGER,
    spend           INTEGER NOT NULL DEFAULT 0,
    tpm_limit       INTEGER,
    rpm_limit       INTEGER,
    budget_duration TEXT,
    budget_reset_at INTEGER,
    metadata        TEXT NOT NULL DEFAULT '{}',
    blocked         INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

CREATE TABLE api_keys (
    key_id          TEXT PRIMARY KEY NOT NULL,
    key_hash        TEXT NOT NULL UNIQUE,
    key_hint        TEXT NOT NULL,
    team_id         TEXT NOT NULL REFERENCES teams (team_id) ON DELETE CASCADE,
    user_id         TEXT,
    key_alias       TEXT,
    models          TEXT NOT NULL DEFAULT '[]',
    max_budget      INTEGER,
    spend           INTEGER NOT NULL DEFAULT 0,
    tpm_limit       INTEGER,
    rpm_limit       INTEGER,
    budget_duration TEXT,
    budget_reset_at INTEGER,
    metadata        TEXT NOT NULL DEFAULT '{}',
    blocked         INTEGER NOT NULL DEFAULT 0,
    expires_at      INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

CREATE INDEX api_keys_team_id ON api_keys (team_id);
CREATE INDEX api_keys_user_id ON api_keys (user_id);

-- Console sign-in sessions: only the hash of the cookie's token is stored.
CREATE TABLE admin_sessions (
    token_hash TEXT PRIMARY KEY NOT NULL,
    expires_at INTEGER NOT NULL
);
