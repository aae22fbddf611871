package persistence

import (
	"context"
	"fmt"

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
	return st, nil
}
