-- Whose authority bounds what someone other than its user gave out: a key issued, rotated or
-- handed over by someone who is neither a proxy admin nor its user (`issued_by`), and a password
-- set through a link someone other than a proxy admin made (`password_bound_by`, and each
-- session that password opens). Made before this: unbounded (keys keep their max_role).
ALTER TABLE api_keys ADD COLUMN issued_by TEXT;
ALTER TABLE users ADD COLUMN password_bound_by TEXT;
ALTER TABLE admin_sessions ADD COLUMN bound_by TEXT;
-- A person is found by their e-mail address, compared without case.
CREATE INDEX users_email_lower ON users (LOWER(user_email));
