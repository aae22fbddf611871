package persistence

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
)

// LoadBudgets returns what every campaign has granted.
func (s *Store) LoadBudgets(ctx context.Context) (map[string]loyalty.BudgetUsed, error) {
	rows, err := s.pool.Query(ctx, `SELECT campaign_id, rewards_used, points_used FROM campaign_budgets`)
	if err != nil {
		return nil, fmt.Errorf("load budgets: %w", err)
	}
	defer rows.Close()
	out := map[string]loyalty.BudgetUsed{}
	for rows.Next() {
		var id string
		var b loyalty.BudgetUsed
		if err := rows.Scan(&id, &b.Rewards, &b.Points); err != nil {
			return nil, fmt.Errorf("load budgets: %w", err)
		}
		out[id] = b
	}
	return out, rows.Err()
}

// CampaignStats are a campaign's totals.
type CampaignStats struct {
	Rewards       int64              `json:"rewards"`
	Users         int64              `json:"users"`
	PointsGranted int64              `json:"points_granted"`
	Budget        loyalty.BudgetUsed `json:"budget"`
	// RuleErrors counts the events on which the rule or points expression failed at run
	// time (no match).
	RuleErrors int64 `json:"rule_errors"`
}

// GetCampaignStats returns a campaign's totals (zero for a campaign that granted nothing).
func (s *Store) GetCampaignStats(ctx context.Context, id string) (CampaignStats, error) {
	var st CampaignStats
	err := s.pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT user_id), coalesce(sum(points), 0)
		FROM rewards WHERE campaign_id = $1`, id).Scan(&st.Rewards, &st.Users, &st.PointsGranted)
	if err != nil {
		return st, fmt.Errorf("campaign stats: %w", err)
	}
	err = s.pool.QueryRow(ctx, `SELECT rewards_used, points_used FROM campaign_budgets WHERE campaign_id = $1`, id).
		Scan(&st.Budget.Rewards, &st.Budget.Points)
	if err != nil && err != pgx.ErrNoRows {
		return st, fmt.Errorf("campaign stats: %w", err)
	}
	err = s.pool.QueryRow(ctx, `SELECT coalesce(sum(errors), 0) FROM campaign_rule_errors WHERE campaign_id = $1`, id).Scan(&st.RuleErrors)
	if err != nil {
		return st, fmt.Errorf("campaign stats: %w", err)
	}
	return st, nil
}

// DayTotal is what a campaign granted on one UTC day (by the events' time).
type DayTotal struct {
	Day        string `json:"day"` // YYYY-MM-DD
	Rewards    int64  `json:"rewards"`
	Points     int64  `json:"points"`
	RuleErrors int64  `json:"rule_errors"`
}

// GetCampaignDaily returns the rewards and points a campaign granted, and its rule
// errors, on each of the days UTC days ending with the one holding until, oldest first,
// one entry per day (zeros on days without any). A reward counts on the day of its event's occurred_at, as rules
// and limits see time. A campaign that granted nothing (or does not exist) has only
// zeros.
func (s *Store) GetCampaignDaily(ctx context.Context, id string, until time.Time, days int) ([]DayTotal, error) {
	if days < 1 {
		return nil, nil
	}
	end := until.UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
	start := end.Add(-time.Duration(days) * 24 * time.Hour)
	rows, err := s.pool.Query(ctx, `SELECT to_char(day, 'YYYY-MM-DD'), sum(rewards)::bigint, sum(points)::bigint, sum(errors)::bigint FROM (
			SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, count(*) AS rewards, coalesce(sum(points), 0) AS points, 0 AS errors
			FROM rewards WHERE campaign_id = $1 AND occurred_at >= $2 AND occurred_at < $3 GROUP BY 1
			UNION ALL
			SELECT day, 0, 0, errors FROM campaign_rule_errors
			WHERE campaign_id = $1 AND day >= ($2 AT TIME ZONE 'UTC')::date AND day < ($3 AT TIME ZONE 'UTC')::date
		) t GROUP BY day`, id, start, end)
	if err != nil {
		return nil, fmt.Errorf("campaign daily stats: %w", err)
	}
	defer rows.Close()
	byDay := map[string]DayTotal{}
	for rows.Next() {
		var d DayTotal
		if err := rows.Scan(&d.Day, &d.Rewards, &d.Points, &d.RuleErrors); err != nil {
			return nil, fmt.Errorf("campaign daily stats: %w", err)
		}
		byDay[d.Day] = d
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("campaign daily stats: %w", err)
	}
	out := make([]DayTotal, days)
	for i := range out {
		day := start.Add(time.Duration(i) * 24 * time.Hour).Format(time.DateOnly)
		out[i] = byDay[day]
		out[i].Day = day
	}
	return out, nil
}
