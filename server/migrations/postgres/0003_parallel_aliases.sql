-- LiteLLM's max_parallel_requests on every level, and the model aliases of keys (`aliases`)
-- and teams (`model_aliases`): a JSON object from a requested name to a served model.
ALTER TABLE teams ADD COLUMN max_parallel_requests BIGINT;
ALTER TABLE api_keys ADD COLUMN max_parallel_requests BIGINT;
ALTER TABLE teams ADD COLUMN aliases JSONB NOT NULL DEFAULT '{}';
ALTER TABLE api_keys ADD COLUMN aliases JSONB NOT NULL DEFAULT '{}';
