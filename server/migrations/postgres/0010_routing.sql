-- Routing: the deployment that answered a request (its model_info.id, or the id Gatehouse
-- derives), and the tries it took besides its own: retries within a model, fallbacks to others.
ALTER TABLE spend_logs ADD COLUMN model_id TEXT;
ALTER TABLE spend_logs ADD COLUMN retries BIGINT NOT NULL DEFAULT 0;
ALTER TABLE spend_logs ADD COLUMN fallbacks BIGINT NOT NULL DEFAULT 0;
