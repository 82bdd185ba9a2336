-- Money is in nano-dollars (BIGINT), times in unix seconds (BIGINT), spend log times in unix
-- milliseconds. `seq` keeps insertion order.
CREATE TABLE teams (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY,
    team_id         TEXT PRIMARY KEY,
    team_alias      TEXT,
    models          JSONB NOT NULL DEFAULT '[]',
    max_budget      BIGINT,
    spend           BIGINT NOT NULL DEFAULT 0,
    tpm_limit       BIGINT,
    rpm_limit       BIGINT,
    budget_duration TEXT,
    budget_reset_at BIGINT,
    budget_window   BIGINT NOT NULL DEFAULT 0,
    metadata        JSONB NOT NULL DEFAULT '{}',
    blocked         BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

CREATE TABLE api_keys (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY,
    key_id          TEXT PRIMARY KEY,
    key_hash        TEXT NOT NULL UNIQUE,
    key_hint        TEXT NOT NULL,
    team_id         TEXT NOT NULL REFERENCES teams (team_id) ON DELETE CASCADE,
    user_id         TEXT,
    key_alias       TEXT,
    models          JSONB NOT NULL DEFAULT '[]',
    max_budget      BIGINT,
    spend           BIGINT NOT NULL DEFAULT 0,
    tpm_limit       BIGINT,
    rpm_limit       BIGINT,
    budget_duration TEXT,
    budget_reset_at BIGINT,
    budget_window   BIGINT NOT NULL DEFAULT 0,
    metadata        JSONB NOT NULL DEFAULT '{}',
    blocked         BOOLEAN NOT NULL DEFAULT FALSE,
    expires_at      BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

CREATE INDEX api_keys_team_id ON api_keys (team_id);
CREATE INDEX api_keys_user_id ON api_keys (user_id);

-- Console sign-in sessions: only the hash of the cookie's token is stored.
CREATE TABLE admin_sessions (
    token_hash TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

-- One row per proxied request; a row written twice (a retried commit) counts once.
CREATE TABLE spend_logs (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id        TEXT NOT NULL UNIQUE,
    ts_ms             BIGINT NOT NULL,
    key_id            TEXT NOT NULL,
    team_id           TEXT NOT NULL,
    user_id           TEXT,
    model             TEXT NOT NULL,
    prompt_tokens     BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    cost              BIGINT NOT NULL,
    latency_ms        BIGINT NOT NULL,
    status            BIGINT NOT NULL,
    key_window        BIGINT NOT NULL DEFAULT 0,
    team_window       BIGINT NOT NULL DEFAULT 0
);

CREATE INDEX spend_logs_team_ts ON spend_logs (team_id, ts_ms);
CREATE INDEX spend_logs_key_ts ON spend_logs (key_id, ts_ms);
CREATE INDEX spend_logs_ts ON spend_logs (ts_ms);
