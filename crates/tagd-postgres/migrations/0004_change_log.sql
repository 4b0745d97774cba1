-- The change log (issue 12): every change of an organization's data, in the change's own
-- transaction, with the organization's version. It replaces assignment_history, whose rows are
-- copied in first (nothing stored is lost).
--
-- Versions on PostgreSQL are (transaction id << 20) + the entry's place in its transaction:
-- ordered without a lock, and readers stop below the oldest transaction still running
-- (docs/DECISIONS.md). The copied history takes versions 1..N per organization, below every
-- transaction id to come.

CREATE TABLE change_log (
    org_id          BIGINT NOT NULL,
    version         BIGINT NOT NULL,
    kind            TEXT NOT NULL,
    user_ref        BIGINT,
    group_ref       BIGINT,
    assignment_ref  BIGINT,
    -- The assignment's own version after a tag change.
    subject_version BIGINT NOT NULL DEFAULT 0,
    executor_kind   TEXT NOT NULL,
    executor_ref    BIGINT NOT NULL,
    executor_name   TEXT NOT NULL,
    source          TEXT NOT NULL,
    old_value       TEXT,
    new_value       TEXT,
    at              BIGINT NOT NULL,
    PRIMARY KEY (org_id, version)
);
CREATE INDEX change_log_by_assignment ON change_log (org_id, assignment_ref, version);
-- Versions are comparable across organizations here: followers ask which moved since a version.
CREATE INDEX change_log_by_version ON change_log (version);

INSERT INTO change_log (org_id, version, kind, user_ref, group_ref, assignment_ref,
    subject_version, executor_kind, executor_ref, executor_name, source, old_value, new_value, at)
SELECT h.org_id, ROW_NUMBER() OVER (PARTITION BY h.org_id ORDER BY h.id),
    CASE WHEN h.new_value IS NULL THEN 'tag.removed' ELSE 'tag.assigned' END,
    a.user_ref, a.group_ref, h.assignment_ref, h.version, h.executor_kind, h.executor_ref,
    h.executor_name, h.source, h.old_value, h.new_value, h.at
FROM assignment_history h
JOIN tag_assignments a ON a.org_id = h.org_id AND a.id = h.assignment_ref;

DROP TABLE assignment_history;
