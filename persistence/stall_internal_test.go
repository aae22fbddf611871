package persistence

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/campaignmanager/campaignmanager/persistence/pgtest"
)

// TestAClaimIsNotHeldUpByAnOwnerFrozenMidCommit: the old owner's commit froze holding
// its partitions' epoch rows FOR SHARE (its process stopped between statements); Postgres
// ends that session after the idle-in-transaction timeout, so the new owner's claim goes
// through and the frozen transaction can no longer commit.
func TestAClaimIsNotHeldUpByAnOwnerFrozenMidCommit(t *testing.T) {
	ctx := context.Background()
	u, err := url.Parse(pgtest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set(idleInTxParam, "1s") // the test's own, short; the default is IdleInTransactionTimeout
	u.RawQuery = q.Encode()
	s, err := Open(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if _, err := s.ClaimPartitions(ctx, []int{0, 1}, "engine-a"); err != nil {
		t.Fatal(err)
	}
	frozen, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = frozen.Rollback(ctx) }) // before s.Close, which waits for it
	if _, err := frozen.Exec(ctx, `SELECT epoch FROM partition_epochs WHERE partition = ANY($1) FOR SHARE`, []int{0, 1}); err != nil {
		t.Fatal(err)
	}
	claimCtx, cancel := context.WithTimeout(ctx, 30*time.Second) // a deadline to fail on, far past the 1 s
	defer cancel()
	claimed, err := s.ClaimPartitions(claimCtx, []int{0}, "engine-b")
	if err != nil {
		t.Fatalf("claim behind a frozen commit: %v", err)
	}
	if claimed[0] != 2 {
		t.Fatalf("claimed epoch %d, want 2", claimed[0])
	}
	if err := frozen.Commit(ctx); err == nil {
		t.Fatal("the frozen transaction committed after its session was ended")
	}
}

func TestStoreSessionsEndATransactionLeftIdleByDefault(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, pgtest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	var v string
	if err := s.pool.QueryRow(ctx, "SHOW "+idleInTxParam).Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != IdleInTransactionTimeout {
		t.Fatalf("%s = %q, want %q", idleInTxParam, v, IdleInTransactionTimeout)
	}
}
