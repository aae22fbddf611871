-- admins.password_changed_at: when the admin's password was last set after creation
-- (changed, reset by an admin, or restored by the bootstrap). Tokens issued before it,
-- to the second, are refused; NULL: never changed.
ALTER TABLE admins ADD COLUMN password_changed_at timestamptz;

-- campaigns.seq: creation order, the cursor of GET /v1/campaigns (oldest first). Existing
-- campaigns are numbered by created_at, ties by id.
ALTER TABLE campaigns ADD COLUMN seq bigint;
UPDATE campaigns c SET seq = o.n
    FROM (SELECT id, row_number() OVER (ORDER BY created_at, id) AS n FROM campaigns) o
    WHERE c.id = o.id;
CREATE SEQUENCE campaigns_seq_seq OWNED BY campaigns.seq;
SELECT setval('campaigns_seq_seq', (SELECT count(*) FROM campaigns) + 1, false);
ALTER TABLE campaigns ALTER COLUMN seq SET DEFAULT nextval('campaigns_seq_seq'),
    ALTER COLUMN seq SET NOT NULL;
CREATE UNIQUE INDEX campaigns_by_seq ON campaigns (seq);

---- create above / drop below ----

DROP INDEX campaigns_by_seq;
ALTER TABLE campaigns DROP COLUMN seq;
ALTER TABLE admins DROP COLUMN password_changed_at;
