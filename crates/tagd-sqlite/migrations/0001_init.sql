-- tagd schema for SQLite. Every table carries org_id, every unique key and index starts with it,
-- and child rows reference their parents by (org_id, id), so a row can only ever point at a row
-- of its own organization. Times are Unix seconds (UTC).

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE organizations (
    id      INTEGER PRIMARY KEY,
    corp_id TEXT NOT NULL UNIQUE,
    name    TEXT NOT NULL,
    ctime   INTEGER NOT NULL
);

CREATE TABLE users (
    id      INTEGER PRIMARY KEY,
    org_id  INTEGER NOT NULL REFERENCES organizations (id),
    user_id TEXT NOT NULL,
    ctime   INTEGER NOT NULL,
    UNIQUE (org_id, user_id),
    UNIQUE (org_id, id)
);

CREATE TABLE apps (
    id          INTEGER PRIMARY KEY,
    org_id      INTEGER NOT NULL REFERENCES organizations (id),
    app_id      TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    ctime       INTEGER NOT NULL,
    UNIQUE (org_id, id)
);

CREATE TABLE basic_credentials (
    id            INTEGER PRIMARY KEY,
    org_id        INTEGER NOT NULL REFERENCES organizations (id),
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    ctime         INTEGER NOT NULL,
    UNIQUE (org_id, id)
);

CREATE TABLE tokens (
    id         INTEGER PRIMARY KEY,
    org_id     INTEGER NOT NULL,
    app_ref    INTEGER NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    expires_at INTEGER NOT NULL,
    revoked    INTEGER NOT NULL DEFAULT 0,
    ctime      INTEGER NOT NULL,
    FOREIGN KEY (org_id, app_ref) REFERENCES apps (org_id, id)
);

CREATE TABLE tag_groups (
    id                INTEGER PRIMARY KEY,
    org_id            INTEGER NOT NULL REFERENCES organizations (id),
    entity_id         TEXT NOT NULL,
    name              TEXT NOT NULL,
    variable_name     TEXT NOT NULL,
    description       TEXT NOT NULL,
    attribute         TEXT NOT NULL CHECK (attribute IN ('define', 'number', 'string')),
    category          TEXT NOT NULL,
    type              TEXT NOT NULL DEFAULT 'custom',
    is_active         INTEGER NOT NULL DEFAULT 1,
    is_auto           INTEGER NOT NULL DEFAULT 0,
    is_locked         INTEGER NOT NULL DEFAULT 0,
    is_deleted        INTEGER NOT NULL DEFAULT 0,
    calculation_rules TEXT NOT NULL DEFAULT '{}',
    -- Who last created, edited, (de)activated or (un)locked the group (v2 lastUpdatedBy).
    updated_by_kind   TEXT NOT NULL DEFAULT 'operator',
    updated_by_ref    INTEGER NOT NULL DEFAULT 0,
    updated_by_name   TEXT NOT NULL DEFAULT 'operator',
    version           INTEGER NOT NULL DEFAULT 0,
    ctime             INTEGER NOT NULL,
    mtime             INTEGER NOT NULL,
    UNIQUE (org_id, entity_id),
    UNIQUE (org_id, variable_name),
    UNIQUE (org_id, id)
);
CREATE UNIQUE INDEX tag_groups_live_name ON tag_groups (org_id, name) WHERE is_deleted = 0;
CREATE INDEX tag_groups_by_category ON tag_groups (org_id, category, ctime, entity_id);

CREATE TABLE tag_assignments (
    id            INTEGER PRIMARY KEY,
    org_id        INTEGER NOT NULL,
    entity_id     TEXT NOT NULL,
    user_ref      INTEGER NOT NULL,
    group_ref     INTEGER NOT NULL,
    define_value  INTEGER,
    number_value  REAL,
    string_value  TEXT,
    executor_kind TEXT NOT NULL,
    executor_ref  INTEGER NOT NULL,
    executor_name TEXT NOT NULL,
    source        TEXT NOT NULL,
    version       INTEGER NOT NULL DEFAULT 0,
    ctime         INTEGER NOT NULL,
    mtime         INTEGER NOT NULL,
    is_deleted    INTEGER NOT NULL DEFAULT 0,
    UNIQUE (org_id, user_ref, group_ref),
    UNIQUE (org_id, entity_id),
    UNIQUE (org_id, id),
    FOREIGN KEY (org_id, user_ref) REFERENCES users (org_id, id),
    FOREIGN KEY (org_id, group_ref) REFERENCES tag_groups (org_id, id)
);
CREATE INDEX tag_assignments_by_group ON tag_assignments (org_id, group_ref, is_deleted);

-- Append-only: written in the same transaction as the change it records, never updated.
CREATE TABLE assignment_history (
    id             INTEGER PRIMARY KEY,
    org_id         INTEGER NOT NULL,
    assignment_ref INTEGER NOT NULL,
    version        INTEGER NOT NULL,
    executor_kind  TEXT NOT NULL,
    executor_ref   INTEGER NOT NULL,
    executor_name  TEXT NOT NULL,
    source         TEXT NOT NULL,
    old_value      TEXT,
    new_value      TEXT,
    at             INTEGER NOT NULL,
    FOREIGN KEY (org_id, assignment_ref) REFERENCES tag_assignments (org_id, id)
);
CREATE INDEX assignment_history_by_assignment ON assignment_history (org_id, assignment_ref, id);
