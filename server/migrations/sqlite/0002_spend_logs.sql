-- One row per proxied request. cost in nano-dollars, ts_ms in unix milliseconds.
CREATE TABLE spend_logs (
    id                INTEGER PRIMARY KEY,
    request_id        TEXT NOT NULL,
    ts_ms             INTEGER NOT NULL,
    key_id            TEXT NOT NULL,
    team_id           TEXT NOT NULL,
    user_id           TEXT,
    model             TEXT NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cost              INTEGER NOT NULL,
    latency_ms        INTEGER NOT NULL,
    status            INTEGER NOT NULL
);

CREATE INDEX spend_logs_team_ts ON spend_logs (team_id, ts_ms);
CREATE INDEX spend_logs_key_ts ON spend_logs (key_id, ts_ms);
CREATE INDEX spend_logs_ts ON spend_logs (ts_ms);
