-- Requests refused before reaching a provider, counted per minute (unix seconds of the
-- minute's start), by the level that refused and why. Never the request itself.
CREATE TABLE refusals (
    minute BIGINT NOT NULL,
    level  TEXT NOT NULL,
    reason TEXT NOT NULL,
    count  BIGINT NOT NULL,
    PRIMARY KEY (minute, level, reason)
);
