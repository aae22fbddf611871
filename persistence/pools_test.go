package persistence_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
	"github.com/campaignmanager/campaignmanager/cel/campaign"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// newPool creates the pool id with n codes named <id>-<i>.
func newPool(t *testing.T, s *persistence.Store, id string, n int, expiresAt *time.Time) {
	t.Helper()
	if err := s.CreatePool(t.Context(), &persistence.Pool{ID: id, Name: id, ExpiresAt: expiresAt}, "tester"); err != nil {
		t.Fatal(err)
	}
	codes := make([]persistence.NewCode, n)
	for i := range codes {
		codes[i] = persistence.NewCode{Code: fmt.Sprintf("%s-%04d", id, i)}
	}
	if n > 0 {
		if _, err := s.AddCodes(t.Context(), id, codes, "tester", "pool.import", nil); err != nil {
			t.Fatal(err)
		}
	}
}

// couponDecision is the first event of user, granting one coupon of campaign "c" from
// pool (or, with refused, recording that the pool had none).
func couponDecision(user, pool string, refused bool) loyalty.Decision {
	at := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	ev := "ev-" + user
	d := loyalty.Decision{
		EventID: ev, EventType: "signup", StreamSeq: 1,
		User: loyalty.User{UserID: user, FirstSeen: at, EventCounts: map[string]int64{"signup": 1},
			RewardCounts: map[string]int64{}, LastSeq: 1, Version: 1},
	}
	if refused {
		d.Refused = []loyalty.Refusal{{CampaignID: "c", Pool: pool, Reason: loyalty.RefusedPoolExhausted}}
		return d
	}
	d.User.RewardCounts["c"] = 1
	d.Rewards = []loyalty.Reward{{ID: loyalty.RewardID(ev, "c"), UserID: user, CampaignID: "c", CampaignVersion: 1,
		EventID: ev, Type: "coupon", Pool: pool, Payload: map[string]any{"pool": pool}, OccurredAt: at}}
	return d
}

// issueRecord collects what concurrent commits of coupon decisions did: the code each
// user got, the refusals, and what went wrong. Safe for concurrent use.
type issueRecord struct {
	mu       sync.Mutex
	issued   map[string]string // code -> user
	refused  int
	failures []error
}

func (r *issueRecord) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures = append(r.failures, err)
}

// commitUntilSettled commits ds and records the outcomes; a decision told PoolChanged is
// decided again the way an actor does (a reward while the pool has codes, else a
// refusal) and committed again, until none is left.
func (r *issueRecord) commitUntilSettled(t *testing.T, s *persistence.Store, ds []loyalty.Decision) {
	for len(ds) > 0 {
		outs, err := s.CommitBatch(t.Context(), ds, nil)
		if err != nil {
			r.fail(err)
			return
		}
		var again []loyalty.Decision
		for i, o := range outs {
			d := ds[i]
			switch o {
			case persistence.Committed:
				r.committed(&d)
			case persistence.PoolChanged:
				levels, err := s.LoadPoolLevels(t.Context())
				if err != nil {
					r.fail(err)
					return
				}
				again = append(again, couponDecision(d.User.UserID, "spring", levels["spring"].Left == 0))
			default:
				r.fail(fmt.Errorf("%s: outcome %v", d.User.UserID, o))
			}
		}
		ds = again
	}
}

// committed records a committed decision: a refusal, or a reward whose code must be new.
func (r *issueRecord) committed(d *loyalty.Decision) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(d.Rewards) == 0 {
		r.refused++
		return
	}
	code, _ := d.Rewards[0].Payload["coupon_code"].(string)
	switch other, dup := r.issued[code]; {
	case code == "":
		r.failures = append(r.failures, fmt.Errorf("%s: committed without a code in the payload", d.User.UserID))
	case dup:
		r.failures = append(r.failures, fmt.Errorf("code %s issued to %s and %s", code, other, d.User.UserID))
	default:
		r.issued[code] = d.User.UserID
	}
}

// TestPoolCodesAreIssuedExactlyOnceUnderConcurrentBatches has 200 users qualify for a
// 150-code pool, their decisions committed in batches from several goroutines at once
// (as several committers and engines do). A decision told PoolChanged is decided again
// the way an actor does (a reward while the pool has codes, else a refusal). Exactly 150
// codes are issued, each to one reward whose stored payload and in-memory decision hold
// it, and exactly 50 refusals are counted.
func TestPoolCodesAreIssuedExactlyOnceUnderConcurrentBatches(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx := t.Context()
	const users, codes, workers, batch = 200, 150, 6, 9
	newPool(t, s, "spring", codes, nil)

	jobs := make(chan []loyalty.Decision)
	r := &issueRecord{issued: map[string]string{}}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ds := range jobs {
				r.commitUntilSettled(t, s, ds)
			}
		})
	}
	var ds []loyalty.Decision
	for u := range users {
		ds = append(ds, couponDecision(fmt.Sprintf("u%03d", u), "spring", false))
		if len(ds) == batch || u == users-1 {
			jobs <- ds
			ds = nil
		}
	}
	close(jobs)
	wg.Wait()
	if len(r.failures) > 0 {
		t.Fatal(errors.Join(r.failures...))
	}
	issued := r.issued
	if len(issued) != codes || r.refused != users-codes {
		t.Fatalf("issued %d codes and refused %d rewards, want %d and %d", len(issued), r.refused, codes, users-codes)
	}
	p, err := s.GetPool(ctx, "spring")
	if err != nil {
		t.Fatal(err)
	}
	if p.Total != codes || p.Issued != codes || p.Left != 0 {
		t.Fatalf("pool counts %+v", p.PoolCounts)
	}
	byReason, err := s.CampaignRefusals(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	if byReason[loyalty.RefusedPoolExhausted] != users-codes {
		t.Fatalf("refusals %v, want %d pool_exhausted", byReason, users-codes)
	}
	// What is stored agrees: each rewarded user's reward row holds the code issued to
	// them, and the code row names that reward and user.
	for code, user := range issued {
		rs, err := s.ListRewards(ctx, user, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != 1 || rs[0].Payload["coupon_code"] != code || rs[0].Payload["pool"] != "spring" {
			t.Fatalf("%s: stored rewards %+v, want one with code %s", user, rs, code)
		}
		cp, err := s.GetCoupon(ctx, code)
		if err != nil {
			t.Fatal(err)
		}
		if cp.UserID != user || cp.RewardID != rs[0].ID || cp.CampaignID != "c" || cp.Type != "coupon" {
			t.Fatalf("coupon %s: %+v", code, cp)
		}
	}
}

// TestPoolCommitIsWrongAboutAPoolOnlyWhenItIs: a refusal commits only while the pool has
// no code; a duplicate event gets no second code; expired codes are never issued.
func TestPoolCommitIsWrongAboutAPoolOnlyWhenItIs(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx := t.Context()
	past := time.Now().Add(-time.Hour)
	newPool(t, s, "old", 3, &past)
	newPool(t, s, "one", 1, nil)

	// Expired codes are not free: the reward gets none, a refusal is right.
	outs := commit(t, s, couponDecision("ann", "old", false))
	if outs[0] != persistence.PoolChanged {
		t.Fatalf("reward from a pool of expired codes: %v, want PoolChanged", outs[0])
	}
	if outs := commit(t, s, couponDecision("ann", "old", true)); outs[0] != persistence.Committed {
		t.Fatalf("refusal for a pool of expired codes: %v, want Committed", outs[0])
	}
	// A refusal while the pool has a code is wrong; other decisions of the batch commit.
	outs = commit(t, s, couponDecision("bob", "one", true), decision("e-cid", "cid", 1, 5))
	if outs[0] != persistence.PoolChanged || outs[1] != persistence.Committed {
		t.Fatalf("refusal while codes are left: %v, want [PoolChanged Committed]", outs)
	}
	bob := couponDecision("bob", "one", false)
	if outs := commit(t, s, bob); outs[0] != persistence.Committed {
		t.Fatalf("bob's reward: %v", outs[0])
	}
	// The same event again is a duplicate and takes no second code (none is left anyway,
	// which must not make it PoolChanged).
	again := couponDecision("bob", "one", false)
	again.User.Version = 1
	if outs := commit(t, s, again); outs[0] != persistence.Duplicate && outs[0] != persistence.Fenced {
		t.Fatalf("bob's event again: %v, want Duplicate or Fenced", outs[0])
	}
	// A redelivered event republishes its rewards from what is stored: the code is there.
	stored, err := s.RewardsOfEvent(ctx, bob.EventID)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 1 || stored[0].Payload["coupon_code"] != "one-0000" {
		t.Fatalf("rewards of bob's event as stored: %+v", stored)
	}
	cs, err := s.ListUserCoupons(ctx, "bob", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].Code != "one-0000" || bob.Rewards[0].Payload["coupon_code"] != "one-0000" {
		t.Fatalf("bob's coupons %+v, payload %v", cs, bob.Rewards[0].Payload)
	}
	p, err := s.GetPool(ctx, "old")
	if err != nil {
		t.Fatal(err)
	}
	if p.Expired != 3 || p.Left != 0 || p.Issued != 0 {
		t.Fatalf("expired pool counts %+v", p.PoolCounts)
	}
}

// TestRedeemCouponOnceIdempotentOnTheOrder: of concurrent redeems of one code for
// different orders exactly one wins and the others learn it was redeemed; the winner's
// order redeems again idempotently; another user's code, an unknown code and an
// expired one say so.
func TestRedeemCouponOnceIdempotentOnTheOrder(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx := t.Context()
	newPool(t, s, "p", 2, nil)
	d := couponDecision("ann", "p", false)
	if outs := commit(t, s, d); outs[0] != persistence.Committed {
		t.Fatal(outs)
	}
	code := d.Rewards[0].Payload["coupon_code"].(string)

	const racers = 8
	fresh := make([]bool, racers)
	errs := make([]error, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() { _, fresh[i], errs[i] = s.RedeemCoupon(ctx, code, "ann", fmt.Sprintf("order-%d", i)) })
	}
	wg.Wait()
	winner := -1
	for i := range racers {
		switch {
		case fresh[i] && errs[i] == nil:
			if winner >= 0 {
				t.Fatalf("orders %d and %d both redeemed %s", winner, i, code)
			}
			winner = i
		case !errors.Is(errs[i], persistence.ErrCouponRedeemed):
			t.Fatalf("racer %d: fresh %v, err %v; want ErrCouponRedeemed", i, fresh[i], errs[i])
		}
	}
	if winner < 0 {
		t.Fatal("nobody redeemed the code")
	}
	c, again, err := s.RedeemCoupon(ctx, code, "ann", fmt.Sprintf("order-%d", winner))
	if err != nil || again || c.OrderID != fmt.Sprintf("order-%d", winner) || c.RedeemedAt == nil {
		t.Fatalf("same order again: %+v fresh %v err %v", c, again, err)
	}
	if _, _, err := s.RedeemCoupon(ctx, code, "bob", "order-x"); !errors.Is(err, persistence.ErrCouponOtherUser) {
		t.Fatalf("another user's code: %v", err)
	}
	if _, _, err := s.RedeemCoupon(ctx, "p-0001", "ann", "order-x"); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("a code never issued: %v", err)
	}
	if _, _, err := s.RedeemCoupon(ctx, "NOPE", "ann", "order-x"); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("an unknown code: %v", err)
	}
}

// TestAddCodesLeavesOutCodesThatExistInAnyPool: a code already in this or another pool
// is counted as a duplicate and not added; the pool's expiry applies to codes without
// their own.
func TestAddCodesLeavesOutCodesThatExistInAnyPool(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx := t.Context()
	exp := time.Date(2030, 1, 2, 3, 4, 5, 600, time.UTC)
	newPool(t, s, "a", 2, nil) // a-0000, a-0001
	if err := s.CreatePool(ctx, &persistence.Pool{ID: "b", Name: "b", ExpiresAt: &exp}, "tester"); err != nil {
		t.Fatal(err)
	}
	own := exp.Add(24 * time.Hour)
	got, err := s.AddCodes(ctx, "b", []persistence.NewCode{{Code: "a-0001"}, {Code: "B1"}, {Code: "B2", ExpiresAt: &own}}, "tester", "pool.import", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Added != 2 || got.Duplicates != 1 || len(got.Examples) != 1 || got.Examples[0] != "a-0001" {
		t.Fatalf("AddCodes = %+v", got)
	}
	if _, err := s.AddCodes(ctx, "nope", []persistence.NewCode{{Code: "X"}}, "tester", "pool.import", nil); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("unknown pool: %v", err)
	}
	p, err := s.GetPool(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	if p.Total != 2 || p.Left != 2 || !p.ExpiresAt.Equal(exp.Truncate(time.Second)) {
		t.Fatalf("pool b: %+v", p)
	}
}

// TestPoolIssuesTheNextUnexpiredCodeWithItsExpiry: codes are issued in the order they
// were added, skipping those past their own expiry; a code's expiry (its own, else the
// pool's) goes into the reward's payload as coupon_expires_at and onto the coupon, which
// reads expired once that time has passed.
func TestPoolIssuesTheNextUnexpiredCodeWithItsExpiry(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx := t.Context()
	poolExp := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	if err := s.CreatePool(ctx, &persistence.Pool{ID: "x", Name: "x", ExpiresAt: &poolExp}, "tester"); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Minute)
	own := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	if _, err := s.AddCodes(ctx, "x", []persistence.NewCode{{Code: "GONE", ExpiresAt: &past}, {Code: "OWN", ExpiresAt: &own}, {Code: "POOLS"}},
		"tester", "pool.import", nil); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		code string
		exp  time.Time
	}{{"OWN", own}, {"POOLS", poolExp}}
	for i, user := range []string{"ann", "bob"} {
		d := couponDecision(user, "x", false)
		if outs := commit(t, s, d); outs[0] != persistence.Committed {
			t.Fatalf("%s: %v", user, outs[0])
		}
		payload := d.Rewards[0].Payload
		if payload["coupon_code"] != want[i].code || payload["coupon_expires_at"] != want[i].exp.Format(time.RFC3339) {
			t.Fatalf("%s's payload %v, want code %s expiring %s", user, payload, want[i].code, want[i].exp)
		}
		stored, err := s.RewardsOfEvent(ctx, d.EventID)
		if err != nil || len(stored) != 1 || stored[0].Payload["coupon_expires_at"] != payload["coupon_expires_at"] {
			t.Fatalf("%s's stored reward %+v (%v), want the payload %v", user, stored, err, payload)
		}
		cp, err := s.GetCoupon(ctx, want[i].code)
		if err != nil || cp.ExpiresAt == nil || !cp.ExpiresAt.Equal(want[i].exp) {
			t.Fatalf("coupon %s: %+v %v", want[i].code, cp, err)
		}
		if cp.Status(want[i].exp.Add(-time.Second)) != "issued" || cp.Status(want[i].exp) != "expired" {
			t.Fatalf("coupon %s: status just before and at its expiry %q %q", cp.Code, cp.Status(want[i].exp.Add(-time.Second)), cp.Status(want[i].exp))
		}
	}
	// Only the expired code is left, and it is not free.
	if outs := commit(t, s, couponDecision("cid", "x", false)); outs[0] != persistence.PoolChanged {
		t.Fatalf("a reward from a pool with only an expired code: %v, want PoolChanged", outs[0])
	}
	if _, err := s.GetCoupon(ctx, "GONE"); !errors.Is(err, persistence.ErrCouponUnknown) {
		t.Fatalf("the expired code was issued: %v", err)
	}
	p, err := s.GetPool(ctx, "x")
	if err != nil || p.Issued != 2 || p.Expired != 1 || p.Left != 0 {
		t.Fatalf("pool x: %+v %v", p.PoolCounts, err)
	}
}

// TestACommitThatFailsIssuesNoCode: the code is assigned inside the reward's own
// transaction, so a commit that fails after the assignment (here a later row Postgres
// refuses, as a crash would end it) leaves the code free, and the next commit of the
// same reward takes it.
func TestACommitThatFailsIssuesNoCode(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx := t.Context()
	newPool(t, s, "one", 1, nil)
	ann := couponDecision("ann", "one", false)
	bad := decision("e-bad", "bad", 1, 5)
	bad.Rewards[0].Type = "points\x00" // text with NUL: Postgres refuses the reward rows, queued after the codes
	var perm *persistence.PermanentError
	if _, err := s.CommitBatch(ctx, []loyalty.Decision{ann, bad}, nil); !errors.As(err, &perm) {
		t.Fatalf("a batch Postgres refuses: %v, want a PermanentError", err)
	}
	p, err := s.GetPool(ctx, "one")
	if err != nil || p.Issued != 0 || p.Left != 1 {
		t.Fatalf("after the failed commit: %+v %v, want the code free", p.PoolCounts, err)
	}
	if _, err := s.GetCoupon(ctx, "one-0000"); !errors.Is(err, persistence.ErrCouponUnknown) {
		t.Fatalf("the code of the failed commit is issued: %v", err)
	}
	ann = couponDecision("ann", "one", false)
	if outs := commit(t, s, ann); outs[0] != persistence.Committed || ann.Rewards[0].Payload["coupon_code"] != "one-0000" {
		t.Fatalf("ann again: %v %v", outs, ann.Rewards[0].Payload)
	}
}

// TestDeletePoolRefusesAPoolInUse: a pool with an issued code, or named by a campaign
// that is not archived, is not deleted (the error says why); an unused one goes with its
// free codes, audited; a campaign can then no longer name it.
func TestDeletePoolRefusesAPoolInUse(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx := t.Context()
	newPool(t, s, "used", 2, nil)
	if outs, err := s.CommitBatch(ctx, []loyalty.Decision{couponDecision("alice", "used", false)}, nil); err != nil || outs[0] != 0 {
		t.Fatalf("issue a code: %v %v", outs, err)
	}
	var inUse *persistence.PoolInUseError
	if _, err := s.DeletePool(ctx, "used", "tester"); !errors.As(err, &inUse) || inUse.Issued != 1 {
		t.Fatalf("delete a pool with an issued code: %v", err)
	}

	newPool(t, s, "named", 3, nil)
	c := &campaign.Campaign{ID: "ship", Name: "x", Rule: "true", Status: campaign.StatusPaused,
		Reward: campaign.Reward{Type: campaign.RewardFreeShipping, Pool: "named"}}
	if err := s.CreateCampaign(ctx, c, "tester"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeletePool(ctx, "named", "tester"); !errors.As(err, &inUse) || len(inUse.Campaigns) != 1 || inUse.Campaigns[0] != "ship" {
		t.Fatalf("delete a pool a paused campaign names: %v", err)
	}
	if _, _, err := s.ModifyCampaign(ctx, "ship", "tester", func(c *campaign.Campaign) error {
		c.Status = campaign.StatusArchived
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	p, err := s.DeletePool(ctx, "named", "tester")
	if err != nil || p.Total != 3 {
		t.Fatalf("delete the pool once its campaign is archived: %+v %v", p, err)
	}
	if _, err := s.GetPool(ctx, "named"); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("deleted pool: %v", err)
	}
	if _, err := s.DeletePool(ctx, "named", "tester"); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("delete it again: %v", err)
	}
	var unknown *persistence.UnknownPoolError
	_, _, err = s.ModifyCampaign(ctx, "ship", "tester", func(c *campaign.Campaign) error {
		c.Status = campaign.StatusActive
		return nil
	})
	if !errors.As(err, &unknown) || unknown.Pool != "named" {
		t.Fatalf("bring back a campaign whose pool is gone: %v", err)
	}
	// Its codes went too: a new pool may take their names.
	newPool(t, s, "named", 3, nil)
}

// TestCampaignSavesAndPoolDeletesDoNotCross: a campaign naming a pool saved while the
// pool is deleted either is saved and the delete refused, or is refused and the pool
// gone, never both saved and gone (saves lock the pool they name).
func TestCampaignSavesAndPoolDeletesDoNotCross(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx := t.Context()
	saved, deleted := 0, 0
	for i := range 40 {
		id := fmt.Sprintf("p%d", i)
		newPool(t, s, id, 1, nil)
		var saveErr, deleteErr error
		var wg sync.WaitGroup
		wg.Go(func() {
			saveErr = s.CreateCampaign(ctx, &campaign.Campaign{ID: "c-" + id, Name: "x", Rule: "true", Status: campaign.StatusActive,
				Reward: campaign.Reward{Type: campaign.RewardCoupon, Pool: id}}, "tester")
		})
		wg.Go(func() { _, deleteErr = s.DeletePool(ctx, id, "tester") })
		wg.Wait()
		var unknown *persistence.UnknownPoolError
		var inUse *persistence.PoolInUseError
		switch {
		case saveErr == nil && errors.As(deleteErr, &inUse):
			saved++
		case deleteErr == nil && errors.As(saveErr, &unknown):
			deleted++
		default:
			t.Fatalf("pool %s: campaign save %v, pool delete %v", id, saveErr, deleteErr)
		}
	}
	t.Logf("campaign saved first %d times, pool deleted first %d times", saved, deleted)
}

// TestModifyPoolChangesWhatItIsGivenAndAudits: an update changes the fields fn sets,
// keeps the counts and the codes' own expiries, and writes a pool.update audit row.
func TestModifyPoolChangesWhatItIsGivenAndAudits(t *testing.T) {
	t.Parallel()
	s, db := openStoreDB(t)
	ctx := t.Context()
	first := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	newPool(t, s, "june", 4, &first)
	later := first.Add(24*time.Hour + 500*time.Millisecond)
	before, after, err := s.ModifyPool(ctx, "june", "editor-1", func(p *persistence.Pool) error {
		p.LowWater, p.Name, p.ExpiresAt = 3, "June codes", &later
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if before.LowWater != 0 || after.LowWater != 3 || after.Name != "June codes" || after.Total != 4 || after.Left != 4 ||
		!after.ExpiresAt.Equal(later.Truncate(time.Second)) || after.CreatedBy != "tester" {
		t.Fatalf("before %+v after %+v", before, after)
	}
	got, err := s.GetPool(ctx, "june")
	if err != nil || got.LowWater != 3 || got.Name != "June codes" || !got.ExpiresAt.Equal(*after.ExpiresAt) || !got.UpdatedAt.Equal(after.UpdatedAt) {
		t.Fatalf("stored %+v %v (after %+v)", got, err, after)
	}
	if levels, err := s.LoadPoolLevels(ctx); err != nil || levels["june"].LowWater != 3 {
		t.Fatalf("levels %v %v", levels, err)
	}
	var exp *time.Time
	if err := db.QueryRow(ctx, `SELECT max(expires_at) FROM coupon_codes WHERE pool_id = 'june'`).Scan(&exp); err != nil || !exp.Equal(first) {
		t.Fatalf("codes' expiry after the update: %v %v (want %v)", exp, err, first)
	}
	entries, err := s.ListAudit(ctx, persistence.AuditFilter{TargetType: "pool", TargetID: "june"})
	if err != nil || len(entries) == 0 || entries[len(entries)-1].Action != "pool.update" || entries[len(entries)-1].Actor != "editor-1" {
		t.Fatalf("audit %+v %v", entries, err)
	}
	if _, _, err := s.ModifyPool(ctx, "nope", "x", func(*persistence.Pool) error { return nil }); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("modify an unknown pool: %v", err)
	}
	boom := errors.New("boom")
	if _, _, err := s.ModifyPool(ctx, "june", "x", func(*persistence.Pool) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("an aborted modify: %v", err)
	}
}
