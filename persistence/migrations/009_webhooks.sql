-- webhooks: outbound endpoints that REWARDS and LOYALTY notices are delivered to,
-- signed per Standard Webhooks. secret signs every delivery; previous_secret, until
-- previous_secret_until, signs too after a rotation (both signatures are sent). seq is
-- the creation order, the cursor of GET /v1/webhooks.
CREATE TABLE webhooks (
    id                    text PRIMARY KEY,
    seq                   bigserial NOT NULL UNIQUE,
    url                   text NOT NULL,
    description           text NOT NULL DEFAULT '',
    filter                jsonb NOT NULL DEFAULT '{}',
    enabled               boolean NOT NULL DEFAULT true,
    disabled_reason       text NOT NULL DEFAULT '',
    secret                text NOT NULL,
    previous_secret       text NOT NULL DEFAULT '',
    previous_secret_until timestamptz,
    version               bigint NOT NULL DEFAULT 1,
    created_by            text NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);

-- webhook_deliveries: one row per notice and endpoint, written in batches by the
-- delivery stages (status pending while retries are due, succeeded, or failed once the
-- retries are spent), at the latest state: attempts only grow. stream and stream_seq
-- locate the notice in REWARDS or LOYALTY for a manual retry. seq orders the list.
CREATE TABLE webhook_deliveries (
    webhook_id      text NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    id              text NOT NULL,
    seq             bigserial NOT NULL,
    type            text NOT NULL,
    subject         text NOT NULL DEFAULT '',
    stream          text NOT NULL DEFAULT '',
    stream_seq      bigint NOT NULL DEFAULT 0,
    status          text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts        integer NOT NULL,
    last_status     integer,
    last_error      text NOT NULL DEFAULT '',
    last_latency_ms double precision,
    last_attempt_at timestamptz,
    next_attempt_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (webhook_id, id)
);
CREATE INDEX webhook_deliveries_by_seq ON webhook_deliveries (webhook_id, seq);
CREATE INDEX webhook_deliveries_by_status ON webhook_deliveries (webhook_id, status, seq) WHERE status <> 'succeeded';

---- create above / drop below ----

DROP TABLE webhook_deliveries;
DROP TABLE webhooks;
