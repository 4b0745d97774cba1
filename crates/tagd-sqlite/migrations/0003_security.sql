-- Security round (issues 10 and 20): organizations can be disabled and capped; tag group names
-- get a case-folded key so label search is a prefix range on an index; customers can be walked
-- in v2 order (numeric ids: shorter first, then by text) from an index; expired tokens purge
-- by an index.

ALTER TABLE organizations ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
-- NULL: the server's --max-tag-groups-per-org.
ALTER TABLE organizations ADD COLUMN max_tag_groups INTEGER;

-- Case-folded (Unicode lower case of the NFC name), filled by the store for rows written
-- before this migration; compared byte-wise.
ALTER TABLE tag_groups ADD COLUMN name_key TEXT;
CREATE INDEX tag_groups_by_name_key ON tag_groups (org_id, name_key);

CREATE INDEX users_in_customer_order ON users (org_id, length(user_id), user_id);

CREATE INDEX tokens_by_expiry ON tokens (expires_at);
