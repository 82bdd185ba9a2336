-- People sign in: a password (argon2id, PHC string) on a user, sessions that name the user who
-- opened them (NULL: the admin key), one-time invitations (only the hash of the link's id), and
-- the secret a rotated key had, valid until the end of its grace period.
ALTER TABLE users ADD COLUMN password_hash TEXT;
ALTER TABLE admin_sessions ADD COLUMN user_id TEXT REFERENCES users (user_id) ON DELETE CASCADE;
CREATE TABLE invitations (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY,
    id_hash     TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    accepted_at BIGINT,
    -- Made by a proxy admin: may reset a password that is set, for anyone.
    may_reset   BOOLEAN NOT NULL DEFAULT FALSE
);
ALTER TABLE api_keys ADD COLUMN previous_key_hash TEXT;
ALTER TABLE api_keys ADD COLUMN previous_key_expires_at BIGINT;
CREATE UNIQUE INDEX api_keys_previous_key_hash ON api_keys (previous_key_hash);
