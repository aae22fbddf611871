-- webhooks.start_seqs: the last sequence of each stream an endpoint's consumers live on
-- (REWARDS, LOYALTY, WEBHOOKS), read just before the endpoint, or its latest change, was
-- saved. A consumer created for it starts right after, by sequence, so the start does
-- not depend on Postgres' clock and NATS' agreeing. Empty for endpoints saved before:
-- theirs start at updated_at, as before.
ALTER TABLE webhooks ADD COLUMN start_seqs jsonb NOT NULL DEFAULT '{}';

---- create above / drop below ----

ALTER TABLE webhooks DROP COLUMN start_seqs;
