-- LiteLLM's organizations: a budget, limits and models over every team in them (enforced on
-- every request, unlike LiteLLM), and members with a role there. A request's cost counts
-- toward its team's organization in the window it was admitted in.
CREATE TABLE organizations (
    seq                   BIGINT GENERATED ALWAYS AS IDENTITY,
    organization_id       TEXT PRIMARY KEY,
    organization_alias    TEXT,
    models                JSONB NOT NULL DEFAULT '[]',
    max_budget            BIGINT,
    spend                 BIGINT NOT NULL DEFAULT 0,
    tpm_limit             BIGINT,
    rpm_limit             BIGINT,
    max_parallel_requests BIGINT,
    budget_duration       TEXT,
    budget_reset_at       BIGINT,
    budget_window         BIGINT NOT NULL DEFAULT 0,
    metadata              JSONB NOT NULL DEFAULT '{}',
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);
-- `member_id` is `organization_id/user_id`.
CREATE TABLE organization_members (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY,
    member_id       TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (organization_id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    user_role       TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX organization_members_organization_id ON organization_members (organization_id);
CREATE INDEX organization_members_user_id ON organization_members (user_id);
ALTER TABLE teams ADD COLUMN organization_id TEXT REFERENCES organizations (organization_id);
CREATE INDEX teams_organization_id ON teams (organization_id);
ALTER TABLE spend_logs ADD COLUMN organization_id TEXT;
ALTER TABLE spend_logs ADD COLUMN organization_window BIGINT NOT NULL DEFAULT 0;
