package persistence_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
	"github.com/campaignmanager/campaignmanager/persistence"
	"github.com/campaignmanager/campaignmanager/persistence/pgtest"
)

// TestAStaleOwnerCannotCommitAfterAClaim: once another engine claimed a partition, a
// commit carrying the earlier epoch changes nothing (Stale), while the other
// partitions' decisions of the same batch commit; the new owner commits.
func TestAStaleOwnerCannotCommitAfterAClaim(t *testing.T) {
	ctx := context.Background()
	s, err := persistence.Open(ctx, pgtest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	old, err := s.ClaimPartitions(ctx, []int{0, 1}, "engine-a")
	if err != nil {
		t.Fatal(err)
	}
	if old[0] != 1 || old[1] != 1 {
		t.Fatalf("first claim epochs %v, want 1", old)
	}
	claimed, err := s.ClaimPartitions(ctx, []int{0}, "engine-b")
	if err != nil || claimed[0] != 2 {
		t.Fatalf("second claim %v %v, want epoch 2", claimed, err)
	}
	outs, err := s.CommitBatch(ctx, []loyalty.Decision{decision("s1", "on-p0", 1, 5), decision("s2", "on-p1", 1, 5)},
		[]persistence.Owner{{Partition: 0, Epoch: old[0]}, {Partition: 1, Epoch: old[1]}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []persistence.Outcome{persistence.Stale, persistence.Committed}; !reflect.DeepEqual(outs, want) {
		t.Fatalf("outcomes %v, want %v", outs, want)
	}
	if _, err := s.GetUser(ctx, "on-p0"); err == nil {
		t.Fatal("the stale owner's decision was stored")
	}
	outs, err = s.CommitBatch(ctx, []loyalty.Decision{decision("s1", "on-p0", 1, 5)}, []persistence.Owner{{Partition: 0, Epoch: claimed[0]}})
	if err != nil || outs[0] != persistence.Committed {
		t.Fatalf("the new owner's commit: %v %v", outs, err)
	}
	owners, err := s.PartitionOwners(ctx)
	if err != nil || owners[0].Owner != "engine-b" || owners[1].Owner != "engine-a" {
		t.Fatalf("owners %v %v", owners, err)
	}
}
