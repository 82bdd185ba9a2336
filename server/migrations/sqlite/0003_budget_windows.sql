-- Spend belongs to a budget window: resets count windows on, and a request's cost is added to
-- its key's and team's spend only in the window it was admitted in.
ALTER TABLE teams ADD COLUMN budget_window INTEGER NOT NULL DEFAULT 0;
ALTER TABLE api_keys ADD COLUMN budget_window INTEGER NOT NULL DEFAULT 0;
ALTER TABLE spend_logs ADD COLUMN key_window INTEGER NOT NULL DEFAULT 0;
ALTER TABLE spend_logs ADD COLUMN team_window INTEGER NOT NULL DEFAULT 0;
-- A log row written twice (a retried commit) counts once.
CREATE UNIQUE INDEX spend_logs_request_id ON spend_logs (request_id);
