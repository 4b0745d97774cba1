-- Idempotency keys (API.md §5a). A row is claimed (status NULL) before the request runs, and
-- gets its response in the same transaction as the request's effect.
CREATE TABLE idempotency_keys (
    org_id       BIGINT NOT NULL,
    key          TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    status       BIGINT,
    content_type TEXT,
    body         TEXT,
    locked_until BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (org_id, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
