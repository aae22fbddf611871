-- Tiers: one versioned configuration, and every user's tier changes.
CREATE TABLE tier_config (
    id         int PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    version    bigint NOT NULL,
    body       jsonb NOT NULL,
    updated_by text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tier_changes (
    id          bigserial PRIMARY KEY,
    user_id     text NOT NULL,
    from_tier   text NOT NULL,
    to_tier     text NOT NULL,
    reason      text NOT NULL,
    event_id    text NOT NULL,
    occurred_at timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tier_changes_user ON tier_changes (user_id, id);

-- tier_reviewed: the month (YYYY-MM) the user's tier was last set or reviewed.
ALTER TABLE users ADD COLUMN tier_reviewed text NOT NULL DEFAULT '';

---- create above / drop below ----

ALTER TABLE users DROP COLUMN tier_reviewed;
DROP TABLE tier_changes, tier_config;
