-- Saved segments (API.md §10): a named filter per organization, soft-deleted so the change
-- log can still name what a `segment.deleted` entry deleted.
CREATE TABLE segments (
    id          INTEGER PRIMARY KEY,
    org_id      INTEGER NOT NULL REFERENCES organizations (id),
    entity_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    filter      TEXT NOT NULL,
    version     INTEGER NOT NULL DEFAULT 0,
    is_deleted  INTEGER NOT NULL DEFAULT 0,
    ctime       INTEGER NOT NULL,
    mtime       INTEGER NOT NULL,
    UNIQUE (org_id, entity_id)
);
CREATE UNIQUE INDEX segments_live_name ON segments (org_id, name) WHERE is_deleted = 0;
CREATE INDEX segments_by_creation ON segments (org_id, id);

ALTER TABLE change_log ADD COLUMN segment_ref INTEGER;
