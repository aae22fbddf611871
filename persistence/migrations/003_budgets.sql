-- campaign_budgets: what each campaign has granted, for limits.total_rewards and
-- limits.total_points. Moved in the same transaction as the rewards, once per batch.
CREATE TABLE campaign_budgets (
    campaign_id  text PRIMARY KEY,
    rewards_used bigint NOT NULL DEFAULT 0,
    points_used  bigint NOT NULL DEFAULT 0,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

---- create above / drop below ----

DROP TABLE campaign_budgets;
