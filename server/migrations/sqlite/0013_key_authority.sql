-- A key's authority: never more than the role of whoever issued it (or rotated it, or gave it
-- to its user) had then. Keys made before this knew no issuer: they keep at most the role their
-- user has now.
ALTER TABLE api_keys ADD COLUMN max_role TEXT;
UPDATE api_keys SET max_role = (SELECT users.user_role FROM users WHERE users.user_id = api_keys.user_id)
    WHERE user_id IS NOT NULL;
