-- partition_epochs: the owner epoch of every partition of EVENTS. An engine that takes a
-- partition over raises its epoch; every commit of an event checks, in its own
-- transaction, that the epoch it was given is still the partition's, so an engine that
-- lost the partition (paused past its lease, cut off) cannot commit any more.
CREATE TABLE partition_epochs (
    partition  integer PRIMARY KEY,
    epoch      bigint NOT NULL DEFAULT 0,
    owner      text NOT NULL DEFAULT '',
    claimed_at timestamptz NOT NULL DEFAULT now()
);

---- create above / drop below ----

DROP TABLE partition_epochs;
