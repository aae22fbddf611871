package persistence_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/campaignmanager/campaignmanager/persistence"
	"github.com/campaignmanager/campaignmanager/persistence/pgtest"
)

// TestMain shares one throwaway Postgres cluster between the package's tests.
func TestMain(m *testing.M) { pgtest.Main(m) }

// openStore opens a Store on a fresh database.
func openStore(t testing.TB) *persistence.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := persistence.Open(ctx, pgtest.New(t))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestListAuditFiltersAndPagesOldestFirst(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx := t.Context()
	entries := []persistence.AuditEntry{
		{Actor: "ann", Action: "campaign.create", TargetType: "campaign", TargetID: "a", After: json.RawMessage(`{"x":1}`)},
		{Actor: "bob", Action: "campaign.update", TargetType: "campaign", TargetID: "a", Before: json.RawMessage(`{"x":1}`), After: json.RawMessage(`{"x":2}`)},
		{Actor: "ann", Action: "api_key.create", TargetType: "api_key", TargetID: "key_1"},
	}
	for _, e := range entries {
		if err := s.Audit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		filter persistence.AuditFilter
		want   []string // actions
	}{
		{"no filter returns all oldest first", persistence.AuditFilter{}, []string{"campaign.create", "campaign.update", "api_key.create"}},
		{"actor filter", persistence.AuditFilter{Actor: "ann"}, []string{"campaign.create", "api_key.create"}},
		{"target filter", persistence.AuditFilter{TargetType: "campaign", TargetID: "a"}, []string{"campaign.create", "campaign.update"}},
		{"limit caps the page", persistence.AuditFilter{Limit: 1}, []string{"campaign.create"}},
		{"unknown target matches nothing", persistence.AuditFilter{TargetID: "zzz"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListAudit(ctx, tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			var actions []string
			for _, e := range got {
				actions = append(actions, e.Action)
			}
			if !equalStrings(actions, tt.want) {
				t.Fatalf("actions = %v, want %v", actions, tt.want)
			}
		})
	}

	first, err := s.ListAudit(ctx, persistence.AuditFilter{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	rest, err := s.ListAudit(ctx, persistence.AuditFilter{AfterID: first[len(first)-1].ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != 1 || rest[0].Action != "api_key.create" {
		t.Fatalf("page after cursor = %+v", rest)
	}
	if string(first[1].Before) != `{"x": 1}` && string(first[1].Before) != `{"x":1}` {
		t.Fatalf("before = %s", first[1].Before)
	}
	if first[0].Before != nil {
		t.Fatalf("absent before should stay nil, got %s", first[0].Before)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
