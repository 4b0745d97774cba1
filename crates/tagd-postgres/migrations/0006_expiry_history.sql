-- Expiry and history (API.md §11).
--
-- An assignment may expire (`expires_at`, Unix seconds); it stops counting at that instant,
-- which every read checks, and the sweep later marks it deleted and logs `tag.expired`. The
-- partial index holds only live assignments that expire, so the sweep finds what is due
-- without reading the others, in (expiry, id) order a sweep can resume from. A group may give its assignments a default expiry.
ALTER TABLE tag_assignments ADD COLUMN expires_at BIGINT;
CREATE INDEX tag_assignments_expiring ON tag_assignments (expires_at, id)
    WHERE expires_at IS NOT NULL AND NOT is_deleted;

ALTER TABLE tag_groups
    ADD COLUMN expiry_policy TEXT NOT NULL DEFAULT 'none',
    ADD COLUMN expiry_date BIGINT,
    ADD COLUMN expiry_days BIGINT;

-- The expiry a tag change set, so followers and history know it without the row.
ALTER TABLE change_log ADD COLUMN expires_at BIGINT;

-- History per user and per tag group, newest first.
CREATE INDEX change_log_by_user ON change_log (org_id, user_ref, version);
CREATE INDEX change_log_by_group ON change_log (org_id, group_ref, version);

-- SQLite's name for "now in Unix seconds", so that the statements both backends share can
-- ask the database's clock the same way (the time of the statement, not of its transaction).
CREATE FUNCTION unixepoch() RETURNS BIGINT LANGUAGE sql STABLE
    AS 'SELECT floor(extract(epoch FROM statement_timestamp()))::bigint';
