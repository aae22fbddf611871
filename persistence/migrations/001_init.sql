-- Campaign Manager schema, version 1.
-- Postgres is the authority: rewards, loyalty state and the record that an event was
-- processed commit in one transaction.

-- users holds each customer's loyalty state. version fences a stale owner: every commit
-- moves it by one and checks the value it read.
CREATE TABLE users (
    user_id          text PRIMARY KEY,
    tier             text NOT NULL DEFAULT '',
    points           bigint NOT NULL DEFAULT 0,
    lifetime_points  bigint NOT NULL DEFAULT 0,
    purchase_count   bigint NOT NULL DEFAULT 0,
    total_spent      double precision NOT NULL DEFAULT 0,
    first_seen       timestamptz NOT NULL,
    last_purchase_at timestamptz,
    event_counts     jsonb NOT NULL DEFAULT '{}',
    reward_counts    jsonb NOT NULL DEFAULT '{}',
    reward_days      jsonb NOT NULL DEFAULT '{}',
    last_seq         bigint NOT NULL DEFAULT 0,
    version          bigint NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- processed_events records every event the engine has applied (or parked in the DLQ), so a
-- redelivery or a duplicate id outside JetStream's window changes nothing.
CREATE TABLE processed_events (
    event_id     text PRIMARY KEY,
    user_id      text NOT NULL,
    stream_seq   bigint NOT NULL,
    event_type   text NOT NULL,
    outcome      text NOT NULL DEFAULT 'applied',
    processed_at timestamptz NOT NULL DEFAULT now()
);

-- rewards: one row per granted reward; id is derived from event and campaign.
CREATE TABLE rewards (
    seq              bigserial UNIQUE,
    id               text PRIMARY KEY,
    user_id          text NOT NULL,
    campaign_id      text NOT NULL,
    campaign_version bigint NOT NULL,
    event_id         text NOT NULL,
    type             text NOT NULL,
    points           bigint NOT NULL DEFAULT 0,
    payload          jsonb NOT NULL DEFAULT '{}',
    occurred_at      timestamptz NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rewards_user_seq ON rewards (user_id, seq);
CREATE INDEX rewards_campaign ON rewards (campaign_id);
CREATE INDEX rewards_event ON rewards (event_id);

-- campaigns: the current version of each campaign; body is the campaign JSON.
CREATE TABLE campaigns (
    id         text PRIMARY KEY,
    version    bigint NOT NULL,
    status     text NOT NULL,
    body       jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- campaign_versions: every version ever saved, immutable.
CREATE TABLE campaign_versions (
    campaign_id text NOT NULL,
    version     bigint NOT NULL,
    body        jsonb NOT NULL,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, version)
);

-- admins: people using the admin API.
CREATE TABLE admins (
    username      text PRIMARY KEY,
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- api_keys: storefront ingest keys, stored as SHA-256 of the secret.
CREATE TABLE api_keys (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    prefix     text NOT NULL,
    key_hash   text NOT NULL UNIQUE,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

-- audit_log: every admin change, who, what, when, before and after.
CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    actor       text NOT NULL,
    action      text NOT NULL,
    target_type text NOT NULL,
    target_id   text NOT NULL,
    before      jsonb,
    after       jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_target ON audit_log (target_type, target_id);

---- create above / drop below ----

DROP TABLE audit_log, api_keys, admins, campaign_versions, campaigns, rewards, processed_events, users;
