-- The audit log: one row per target a successful change through the API touched, written in
-- the change's own transaction. Before and after are JSON with secrets and hashes redacted.
CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id   TEXT NOT NULL,
    at_ms        INTEGER NOT NULL,
    actor        TEXT NOT NULL,
    changed_by   TEXT,
    address      TEXT,
    method       TEXT NOT NULL,
    route        TEXT NOT NULL,
    target_type  TEXT NOT NULL,
    target_id    TEXT NOT NULL,
    before_value TEXT,
    after_value  TEXT
);
CREATE INDEX audit_log_at ON audit_log (at_ms);
CREATE INDEX audit_log_target ON audit_log (target_type, target_id, at_ms);
CREATE INDEX audit_log_actor ON audit_log (actor, at_ms);
