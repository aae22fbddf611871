-- Loyalty model: daily history, points lots and ledger, refunds' view of what an event
-- earned.

-- history: sparse daily buckets (cel.DayStat), only days with activity, at most 400 days.
-- lots: unspent earned points with their expiry, soonest-expiring first.
-- last_rejection: the last event refused for this user (e.g. an over-redeem), so the
-- storefront can learn why.
ALTER TABLE users
    ADD COLUMN history jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN lots jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN next_expiry timestamptz,
    ADD COLUMN last_rejection jsonb;
CREATE INDEX users_next_expiry ON users (next_expiry) WHERE next_expiry IS NOT NULL;

-- points_ledger: every change of a user's points, append-only. users.points always equals
-- the sum of the user's entries.
CREATE TABLE points_ledger (
    id               bigserial PRIMARY KEY,
    user_id          text NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('earn', 'redeem', 'expire', 'reverse', 'adjust')),
    points           bigint NOT NULL,
    balance_after    bigint NOT NULL,
    event_id         text NOT NULL,
    reward_id        text,
    campaign_id      text,
    campaign_version bigint,
    actor            text,
    reason           text,
    expires_at       timestamptz,
    occurred_at      timestamptz NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX points_ledger_user ON points_ledger (user_id, id);

-- event_effects: what an event with an amount or points did, so a refund can reverse it
-- proportionally and only once.
CREATE TABLE event_effects (
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

ALTER TABLE processed_events ADD COLUMN reason text;

---- create above / drop below ----

ALTER TABLE processed_events DROP COLUMN reason;
DROP TABLE event_effects, points_ledger;
ALTER TABLE users DROP COLUMN history, DROP COLUMN lots, DROP COLUMN next_expiry, DROP COLUMN last_rejection;
