-- processed_events and event_effects grow with every event (430M rows a day at 5,000
-- events/s): both become declaratively partitioned by RANGE on day, the UTC date of the
-- commit that wrote the row (processed_at's date; event_effects gets the column too), one
-- partition per day, so old rows leave by dropping whole partitions (see
-- persistence/partitions.go, run by the engine's partition maintenance).
--
-- A partitioned table's unique key must hold the partition key, so the primary keys are
-- (event_id, day): they catch a duplicate of the same day in the commit's fast path as
-- before, and the commit looks up the batch's ids in the days before (see
-- persistence/commit.go, queueOlder). day defaults to the transaction's date, so the
-- insert and that lookup agree on "today" across midnight.
--
-- Existing rows are attached, not copied: the old table becomes the partition
-- <table>_legacy for (MINVALUE) .. today included, with day set to today for all its rows
-- (the rest of today's rows go there too). That
-- costs one constant column (no rewrite, PG 11+), one index build on (event_id, day) in
-- place of the old key's and one validating scan, where a copy would rewrite every row and every index inside the
-- start-up transaction. The legacy partition ends with today, so the maintenance drops it
-- whole once the horizon has passed over today, and its rows are found by dedup (and by
-- refunds) until then: however old, each counts as processed on the day of the upgrade. An empty old table (a fresh install) is dropped instead.
--
-- A DEFAULT partition takes any row whose day has no partition (the maintenance stopped
-- for longer than its days ahead), so a commit never fails for a missing partition; the
-- maintenance moves such rows into the day's partition when it creates it.
DO $$
DECLARE
    today date := (now() AT TIME ZONE 'UTC')::date;
    t text;
    n bigint;
    first int;
BEGIN
    ALTER TABLE processed_events RENAME TO processed_events_legacy;
    ALTER INDEX processed_events_pkey RENAME TO processed_events_legacy_event_id;
    EXECUTE format('ALTER TABLE processed_events_legacy ADD COLUMN day date NOT NULL DEFAULT %L', today);
    CREATE TABLE processed_events (
        event_id     text NOT NULL,
        user_id      text NOT NULL,
        stream_seq   bigint NOT NULL,
        event_type   text NOT NULL,
        outcome      text NOT NULL DEFAULT 'applied',
        processed_at timestamptz NOT NULL DEFAULT now(),
        reason       text,
        day          date NOT NULL DEFAULT ((now() AT TIME ZONE 'UTC')::date),
        PRIMARY KEY (event_id, day)
    ) PARTITION BY RANGE (day);

    ALTER TABLE event_effects RENAME TO event_effects_legacy;
    ALTER INDEX event_effects_pkey RENAME TO event_effects_legacy_event_id;
    EXECUTE format('ALTER TABLE event_effects_legacy ADD COLUMN day date NOT NULL DEFAULT %L', today);
    CREATE TABLE event_effects (
        event_id        text NOT NULL,
        user_id         text NOT NULL,
        event_type      text NOT NULL,
        amount          double precision NOT NULL DEFAULT 0,
        points          bigint NOT NULL DEFAULT 0,
        campaign_points jsonb NOT NULL DEFAULT '{}',
        refunded_amount double precision NOT NULL DEFAULT 0,
        refunded_points bigint NOT NULL DEFAULT 0,
        occurred_at     timestamptz NOT NULL,
        day             date NOT NULL DEFAULT ((now() AT TIME ZONE 'UTC')::date),
        PRIMARY KEY (event_id, day)
    ) PARTITION BY RANGE (day);

    FOREACH t IN ARRAY ARRAY['processed_events', 'event_effects'] LOOP
        EXECUTE format('SELECT count(*) FROM (SELECT 1 FROM %I LIMIT 1) x', t || '_legacy') INTO n;
        first := 0;
        IF n = 0 THEN
            EXECUTE format('DROP TABLE %I', t || '_legacy');
        ELSE
            -- The key becomes (event_id, day): ATTACH builds its index.
            EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', t || '_legacy', t || '_legacy_event_id');
            EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (MINVALUE) TO (%L)', t, t || '_legacy', today + 1);
            first := 1;
        END IF;
        FOR i IN first..2 LOOP
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                t || '_p' || to_char(today + i, 'YYYYMMDD'), t, today + i, today + i + 1);
        END LOOP;
        EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', t || '_default', t);
    END LOOP;
END $$;

---- create above / drop below ----

-- Back to plain tables keyed by event_id alone, copying the rows (the latest day's row of
-- an id that was applied again after the horizon).
CREATE TABLE processed_events_plain (
    event_id     text PRIMARY KEY,
    user_id      text NOT NULL,
    stream_seq   bigint NOT NULL,
    event_type   text NOT NULL,
    outcome      text NOT NULL DEFAULT 'applied',
    processed_at timestamptz NOT NULL DEFAULT now(),
    reason       text
);
INSERT INTO processed_events_plain
    SELECT DISTINCT ON (event_id) event_id, user_id, stream_seq, event_type, outcome, processed_at, reason
    FROM processed_events ORDER BY event_id, day DESC;
DROP TABLE processed_events;
ALTER TABLE processed_events_plain RENAME TO processed_events;
ALTER INDEX processed_events_plain_pkey RENAME TO processed_events_pkey;

CREATE TABLE event_effects_plain (
    event_id        text PRIMARY KEY,
    user_id         text NOT NULL,
    event_type      text NOT NULL,
    amount          double precision NOT NULL DEFAULT 0,
    points          bigint NOT NULL DEFAULT 0,
    campaign_points jsonb NOT NULL DEFAULT '{}',
    refunded_amount double precision NOT NULL DEFAULT 0,
    refunded_points bigint NOT NULL DEFAULT 0,
    occurred_at     timestamptz NOT NULL
);
INSERT INTO event_effects_plain
    SELECT DISTINCT ON (event_id) event_id, user_id, event_type, amount, points, campaign_points,
        refunded_amount, refunded_points, occurred_at
    FROM event_effects ORDER BY event_id, day DESC;
DROP TABLE event_effects;
ALTER TABLE event_effects_plain RENAME TO event_effects;
ALTER INDEX event_effects_plain_pkey RENAME TO event_effects_pkey;
