-- LiteLLM's team members: a user in a team, with a role there (`admin` or `user`) and a budget
-- limits and models over that user's keys in that team (`max_budget_in_team`, `allowed_models`). A key's team and user
-- always make a member: every pair already on a key becomes one (role `user`, no limits).
-- `member_id` is `team_id/user_id` (a team id never holds '/'), the level's id everywhere.
CREATE TABLE team_members (
    seq                   BIGINT GENERATED ALWAYS AS IDENTITY,
    member_id             TEXT PRIMARY KEY,
    team_id               TEXT NOT NULL REFERENCES teams (team_id) ON DELETE CASCADE,
    user_id               TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    role                  TEXT NOT NULL,
    models                JSONB NOT NULL DEFAULT '[]',
    max_budget            BIGINT,
    spend                 BIGINT NOT NULL DEFAULT 0,
    tpm_limit             BIGINT,
    rpm_limit             BIGINT,
    max_parallel_requests BIGINT,
    budget_duration       TEXT,
    budget_reset_at       BIGINT,
    budget_window         BIGINT NOT NULL DEFAULT 0,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);
CREATE INDEX team_members_team_id ON team_members (team_id);
CREATE INDEX team_members_user_id ON team_members (user_id);
INSERT INTO team_members (member_id, team_id, user_id, role, created_at, updated_at)
    SELECT team_id || '/' || user_id, team_id, user_id, 'user', MIN(created_at), MIN(created_at)
    FROM api_keys WHERE user_id IS NOT NULL GROUP BY team_id, user_id;
ALTER TABLE spend_logs ADD COLUMN member_window BIGINT NOT NULL DEFAULT 0;
