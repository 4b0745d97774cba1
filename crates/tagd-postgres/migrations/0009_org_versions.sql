-- A version counter per organization (issue 17), for a PostgreSQL whose transaction ids are not
-- one sequence: on Citus each node numbers its own transactions, so versions made from them
-- would not be ordered. With `tagd log-versions counter` (docs/SCALING.md) each write takes
-- its organization's next versions from this row, as on SQLite, and holds the row until it
-- commits. Empty, and unread, under the default (transaction ids).
CREATE TABLE org_versions (
    org_id  BIGINT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (org_id)
);
