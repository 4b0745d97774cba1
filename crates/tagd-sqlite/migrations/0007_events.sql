-- Change events (API.md §12): webhook endpoints, their recent delivery attempts, and the
-- position of each organization in other sinks (NATS).
--
-- An endpoint keeps its own position (`delivered_version`) and retry state, so a restart
-- resumes where delivery stopped; `lease_owner` / `lease_until` make one server at a time
-- deliver it; `version` is bumped by every client change so a worker holding an older copy
-- reloads it, and `replays` by every replay, so a worker never saves its position over one.
CREATE TABLE webhooks (
    id                    INTEGER PRIMARY KEY,
    org_id                INTEGER NOT NULL REFERENCES organizations (id),
    entity_id             TEXT NOT NULL,
    url                   TEXT NOT NULL,
    event_types           TEXT NOT NULL,
    description           TEXT NOT NULL,
    secret                TEXT NOT NULL,
    previous_secret       TEXT,
    previous_secret_until INTEGER,
    enabled               INTEGER NOT NULL DEFAULT 1,
    disabled_reason       TEXT,
    delivered_version     INTEGER NOT NULL,
    failures              INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms       INTEGER,
    lease_owner           TEXT,
    lease_until           INTEGER,
    version               INTEGER NOT NULL DEFAULT 0,
    replays               INTEGER NOT NULL DEFAULT 0,
    is_deleted            INTEGER NOT NULL DEFAULT 0,
    ctime                 INTEGER NOT NULL,
    mtime                 INTEGER NOT NULL,
    UNIQUE (org_id, entity_id)
);
CREATE INDEX webhooks_deliverable ON webhooks (org_id, id) WHERE enabled = 1 AND is_deleted = 0;

CREATE TABLE webhook_attempts (
    id          INTEGER PRIMARY KEY,
    org_id      INTEGER NOT NULL,
    webhook_ref INTEGER NOT NULL,
    event_id    TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    version     INTEGER NOT NULL,
    attempt     INTEGER NOT NULL,
    status      INTEGER,
    duration_ms INTEGER NOT NULL,
    error       TEXT,
    at          INTEGER NOT NULL
);
CREATE INDEX webhook_attempts_recent ON webhook_attempts (org_id, webhook_ref, id);

CREATE TABLE event_sinks (
    org_id            INTEGER NOT NULL,
    sink              TEXT NOT NULL,
    delivered_version INTEGER NOT NULL,
    lease_owner       TEXT,
    lease_until       INTEGER,
    PRIMARY KEY (org_id, sink)
);

-- The saved-segment memberships last announced (`segment.entered` / `segment.exited`): the
-- announcer compares a user's segments now with these, so it announces real moves only, and
-- each once across restarts.
CREATE TABLE segment_members (
    org_id      INTEGER NOT NULL,
    segment_ref INTEGER NOT NULL,
    user_ref    INTEGER NOT NULL,
    PRIMARY KEY (org_id, segment_ref, user_ref)
);
CREATE INDEX segment_members_by_user ON segment_members (org_id, user_ref);

-- The saved segments the announcer has started following (their first members recorded):
-- a segment saved after the page being announced is not tested before its own entry.
CREATE TABLE announced_segments (
    org_id      INTEGER NOT NULL,
    segment_ref INTEGER NOT NULL,
    PRIMARY KEY (org_id, segment_ref)
);
