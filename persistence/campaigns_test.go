package persistence_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/campaignmanager/campaignmanager/cel/campaign"
	"github.com/campaignmanager/campaignmanager/persistence"
)

func sampleCampaign(id string) *campaign.Campaign {
	return &campaign.Campaign{
		ID: id, Name: "Big spender", Rule: `event.amount > 50.0`, Status: campaign.StatusDraft,
		Reward: campaign.Reward{Type: campaign.RewardPoints, Points: "100"},
		Limits: campaign.Limits{PerUser: 1},
	}
}

func TestCreateCampaignStartsAtVersionOne(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx := t.Context()
	c := sampleCampaign("big-spender")
	if err := s.CreateCampaign(ctx, c, "ann"); err != nil {
		t.Fatal(err)
	}
	if c.Version != 1 || c.CreatedAt.IsZero() || !c.UpdatedAt.Equal(c.CreatedAt) {
		t.Fatalf("created = %+v", c)
	}
	got, err := s.GetCampaign(ctx, "big-spender")
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 1 || got.Rule != c.Rule || got.Reward.Points != "100" || got.Limits.PerUser != 1 || !got.CreatedAt.Equal(c.CreatedAt) {
		t.Fatalf("GetCampaign = %+v, want %+v", got, c)
	}
	if err := s.CreateCampaign(ctx, sampleCampaign("big-spender"), "ann"); !errors.Is(err, persistence.ErrConflict) {
		t.Fatalf("duplicate create: %v, want ErrConflict", err)
	}
	if _, err := s.GetCampaign(ctx, "missing"); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("get missing: %v, want ErrNotFound", err)
	}
	audit, err := s.ListAudit(ctx, persistence.AuditFilter{TargetType: "campaign", TargetID: "big-spender"})
	if err != nil || len(audit) != 1 || audit[0].Action != "campaign.create" || audit[0].Actor != "ann" || audit[0].After == nil {
		t.Fatalf("audit = %+v, %v", audit, err)
	}
}

func TestUpdateCampaignVersionsAndAudits(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx := t.Context()
	c := sampleCampaign("promo")
	if err := s.CreateCampaign(ctx, c, "ann"); err != nil {
		t.Fatal(err)
	}
	created := c.CreatedAt

	upd := sampleCampaign("promo")
	upd.Name = "Renamed"
	before, err := s.UpdateCampaign(ctx, upd, 1, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if before.Name != "Big spender" || before.Version != 1 {
		t.Fatalf("before = %+v", before)
	}
	if upd.Version != 2 || !upd.CreatedAt.Equal(created) || !upd.UpdatedAt.After(created) && !upd.UpdatedAt.Equal(created) {
		t.Fatalf("updated = %+v", upd)
	}

	tests := []struct {
		name     string
		c        *campaign.Campaign
		expected int64
		want     error
	}{
		{"stale expected version is ErrVersionMismatch", sampleCampaign("promo"), 1, persistence.ErrVersionMismatch},
		{"unknown id is ErrNotFound", sampleCampaign("nope"), 0, persistence.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.UpdateCampaign(ctx, tt.c, tt.expected, "bob"); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}

	_, after, err := s.ModifyCampaign(ctx, "promo", "bob", func(c *campaign.Campaign) error {
		c.Status = campaign.StatusArchived
		return nil
	})
	if err != nil || after.Version != 3 || after.Status != campaign.StatusArchived {
		t.Fatalf("archive = %+v, %v", after, err)
	}
	refuse := errors.New("refused")
	if _, _, err := s.ModifyCampaign(ctx, "promo", "bob", func(*campaign.Campaign) error { return refuse }); !errors.Is(err, refuse) {
		t.Fatalf("modify error not passed through: %v", err)
	}

	versions, err := s.ListCampaignVersions(ctx, "promo")
	if err != nil {
		t.Fatal(err)
	}
	if len(versions) != 3 || versions[0].CreatedBy != "ann" || versions[1].Campaign.Name != "Renamed" || versions[2].Campaign.Status != campaign.StatusArchived {
		t.Fatalf("versions = %+v", versions)
	}
	if _, err := s.ListCampaignVersions(ctx, "nope"); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("versions of unknown: %v, want ErrNotFound", err)
	}

	audit, err := s.ListAudit(ctx, persistence.AuditFilter{TargetID: "promo"})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range audit {
		actions = append(actions, e.Action)
	}
	if !equalStrings(actions, []string{"campaign.create", "campaign.update", "campaign.archive"}) {
		t.Fatalf("audit actions = %v", actions)
	}
	var b, a campaign.Campaign
	if err := json.Unmarshal(audit[1].Before, &b); err != nil || b.Name != "Big spender" {
		t.Fatalf("audit before = %s", audit[1].Before)
	}
	if err := json.Unmarshal(audit[1].After, &a); err != nil || a.Name != "Renamed" || audit[1].Actor != "bob" {
		t.Fatalf("audit after = %s", audit[1].After)
	}

	list, err := s.ListCampaigns(ctx)
	if err != nil || len(list) != 1 || list[0].Status != campaign.StatusArchived {
		t.Fatalf("ListCampaigns = %+v, %v", list, err)
	}
}

func TestListCampaignsOrdersByID(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx := t.Context()
	for _, id := range []string{"c", "a", "b"} {
		if err := s.CreateCampaign(ctx, sampleCampaign(id), "ann"); err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.ListCampaigns(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range list {
		ids = append(ids, c.ID)
	}
	if !equalStrings(ids, []string{"a", "b", "c"}) {
		t.Fatalf("ids = %v", ids)
	}
}
