-- Runtime errors of campaign rules and points expressions (a missing attribute, a
-- negative or too large points result, the runtime cost limit), per campaign and UTC
-- day of the event, committed with the event: they show in the campaign's stats.
CREATE TABLE campaign_rule_errors (
    campaign_id text   NOT NULL,
    day         date   NOT NULL,
    errors      bigint NOT NULL,
    PRIMARY KEY (campaign_id, day)
);
