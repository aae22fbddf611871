-- Coupon code pools: codes generated from a pattern or imported. A coupon or
-- free_shipping reward that names a pool takes one free code in the reward's own commit
-- (a crash never issues a code twice or loses one); a storefront redeems a code once.

-- coupon_pools: one row per pool. A commit that assigns codes of a pool, or records that
-- a reward was refused for lack of them, holds its row FOR NO KEY UPDATE until it ends, so
-- such commits of one pool take turns and each sees what the one before it took.
-- expires_at is the expiry of codes that come without one; low_water is the count of
-- codes left at or below which the pool is reported low; seq is creation order (the
-- cursor of GET /v1/pools).
CREATE TABLE coupon_pools (
    id          text PRIMARY KEY,
    seq         bigserial UNIQUE,
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    pattern     text NOT NULL DEFAULT '',
    expires_at  timestamptz,
    low_water   bigint NOT NULL DEFAULT 0,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- coupon_codes: every code of every pool, unique across pools (a storefront names a
-- code alone). A code is free while reward_id is NULL; free codes are issued in seq
-- order. Issued: reward_id, user_id, campaign_id, issued_seq (the order codes were
-- issued in), issued_at. Redeemed: redeemed_at and the order_id it was redeemed for.
CREATE TABLE coupon_codes (
    code        text PRIMARY KEY,
    pool_id     text NOT NULL REFERENCES coupon_pools (id),
    seq         bigserial NOT NULL,
    expires_at  timestamptz,
    reward_id   text UNIQUE,
    user_id     text,
    campaign_id text,
    issued_seq  bigint UNIQUE,
    issued_at   timestamptz,
    redeemed_at timestamptz,
    order_id    text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((reward_id IS NULL) = (issued_at IS NULL)),
    CHECK (redeemed_at IS NULL OR reward_id IS NOT NULL),
    CHECK ((redeemed_at IS NULL) = (order_id IS NULL))
);
CREATE SEQUENCE coupon_codes_issued;
CREATE INDEX coupon_codes_free ON coupon_codes (pool_id, seq) WHERE reward_id IS NULL;
CREATE INDEX coupon_codes_pool ON coupon_codes (pool_id);
CREATE INDEX coupon_codes_user ON coupon_codes (user_id, issued_seq) WHERE user_id IS NOT NULL;

-- campaign_refusals: rewards a campaign matched but did not grant, by reason
-- (pool_exhausted), committed with their events: they show in the campaign's stats.
CREATE TABLE campaign_refusals (
    campaign_id text   NOT NULL,
    reason      text   NOT NULL,
    refused     bigint NOT NULL,
    PRIMARY KEY (campaign_id, reason)
);

---- create above / drop below ----

DROP TABLE campaign_refusals, coupon_codes, coupon_pools;
DROP SEQUENCE coupon_codes_issued;
