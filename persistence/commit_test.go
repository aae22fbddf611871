package persistence_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
	"github.com/campaignmanager/campaignmanager/persistence"
	"github.com/campaignmanager/campaignmanager/persistence/pgtest"
)

// decision is a purchase by user that moves it to version and grants one reward of
// points.
func decision(eventID, user string, version, points int64) loyalty.Decision {
	at := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	return loyalty.Decision{
		EventID: eventID, EventType: "purchase", StreamSeq: version,
		User: loyalty.User{
			UserID: user, Points: points * version, LifetimePoints: points * version, PurchaseCount: version,
			FirstSeen: at, EventCounts: map[string]int64{"purchase": version}, LastSeq: version, Version: version,
		},
		Rewards: []loyalty.Reward{{ID: "r-" + eventID, UserID: user, CampaignID: "c", CampaignVersion: 1,
			EventID: eventID, Type: "points", Points: points, OccurredAt: at}},
		Ledger: []loyalty.LedgerEntry{{Kind: loyalty.LedgerEarn, Points: points, BalanceAfter: points * version,
			RewardID: "r-" + eventID, CampaignID: "c", CampaignVersion: 1, OccurredAt: at}},
		Effect: &loyalty.EventEffect{EventID: eventID, EventType: "purchase", Amount: 10, Points: points, OccurredAt: at},
	}
}

func commit(t *testing.T, s *persistence.Store, ds ...loyalty.Decision) []persistence.Outcome {
	t.Helper()
	outs, err := s.CommitBatch(t.Context(), ds, nil)
	if err != nil {
		t.Fatal(err)
	}
	return outs
}

// TestCommitBatchReportsEachDecisionsOutcome covers both commit paths: a batch of fresh
// decisions commits with plain inserts, and a batch holding a duplicate event, a stale
// version and a user another engine created meanwhile falls back to the careful path,
// which commits the good decision and reports the others without changing anything for
// them.
func TestCommitBatchReportsEachDecisionsOutcome(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx := t.Context()

	outs := commit(t, s, decision("e1", "ann", 1, 5), decision("e2", "bob", 1, 5), decision("e3", "cid", 1, 5), decision("e0", "dan", 1, 5))
	for i, o := range outs {
		if o != persistence.Committed {
			t.Fatalf("fresh batch: outcome %d = %v, want Committed", i, o)
		}
	}
	outs = commit(t, s, decision("e4", "ann", 2, 7))
	if outs[0] != persistence.Committed {
		t.Fatalf("next event of ann: %v", outs[0])
	}

	// A stale version alone is found by the fast path's fenced update.
	outs = commit(t, s, decision("e8", "cid", 2, 1), decision("e9", "ann", 2, 4))
	if outs[0] != persistence.Committed || outs[1] != persistence.Fenced {
		t.Fatalf("stale version: outcomes %v, want [Committed Fenced]", outs)
	}

	outs = commit(t, s,
		decision("e5", "bob", 2, 3),  // good
		decision("e1", "fay", 1, 9),  // an id processed before
		decision("e6", "ann", 2, 4),  // built on version 1, but ann is at 2
		decision("e7", "dan", 1, 11), // "new" user, but dan exists
		decision("e10", "eve", 1, 2), // a new user
	)
	want := []persistence.Outcome{persistence.Committed, persistence.Duplicate, persistence.Fenced, persistence.Fenced, persistence.Committed}
	for i := range want {
		if outs[i] != want[i] {
			t.Fatalf("mixed batch: outcomes %v, want %v", outs, want)
		}
	}

	for _, tc := range []struct {
		user           string
		points, events int64
		rewards        int
	}{{"ann", 14, 2, 2}, {"bob", 6, 2, 2}, {"cid", 2, 2, 2}, {"dan", 5, 1, 1}, {"eve", 2, 1, 1}} {
		u, err := s.GetUser(ctx, tc.user)
		if err != nil {
			t.Fatal(err)
		}
		if u.Points != tc.points || u.Version != tc.events {
			t.Errorf("%s: points %d version %d, want %d and %d", tc.user, u.Points, u.Version, tc.points, tc.events)
		}
		rs, err := s.ListRewards(ctx, tc.user, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != tc.rewards {
			t.Errorf("%s: %d rewards, want %d", tc.user, len(rs), tc.rewards)
		}
	}
	if _, err := s.GetUser(ctx, "fay"); err == nil {
		t.Error("the duplicate event created its user")
	}
	for _, id := range []string{"e6", "e7"} {
		if rs, err := s.RewardsOfEvent(ctx, id); err != nil || len(rs) != 0 {
			t.Errorf("fenced event %s: rewards %v, err %v", id, rs, err)
		}
	}
}

// BenchmarkCommitBatch measures CommitBatch per decision (a purchase with one reward, a
// ledger entry and an effect) by batch size: first events of new users (inserts) and
// next events of known users (fenced updates). Run:
//
//	go test ./persistence -run '^$' -bench CommitBatch
func BenchmarkCommitBatch(b *testing.B) {
	for _, size := range []int{1, 10, 100, 500} {
		for _, kind := range []string{"new", "known"} {
			b.Run(fmt.Sprintf("%s-users/batch-%d", kind, size), func(b *testing.B) {
				s := openStore(b)
				ctx := context.Background()
				users := make([]loyalty.User, size)
				batch := make([]loyalty.Decision, size)
				round := int64(0)
				next := func() {
					round++
					for i := range batch {
						user, version := fmt.Sprintf("u%d", i), round
						if kind == "new" {
							user, version = fmt.Sprintf("u%d-%d", round, i), 1
						}
						d := decision(fmt.Sprintf("e%d-%d", round, i), user, version, 5)
						if kind == "known" && round > 1 {
							d.User.FirstSeen = users[i].FirstSeen
						}
						users[i] = d.User
						batch[i] = d
					}
				}
				if kind == "known" {
					next()
					if _, err := s.CommitBatch(ctx, batch, nil); err != nil {
						b.Fatal(err)
					}
				}
				b.ResetTimer()
				for n := 0; n < b.N; n += size {
					b.StopTimer()
					next()
					b.StartTimer()
					outs, err := s.CommitBatch(ctx, batch, nil)
					if err != nil {
						b.Fatal(err)
					}
					if outs[0] != persistence.Committed {
						b.Fatalf("outcome %v", outs[0])
					}
				}
			})
		}
	}
}

// TestCommitBatchCommitsAUsersChainWholeOrNotAtAll: a user's consecutive decisions in one
// batch write the user row once (the last state) and every event's records; one
// decision that cannot commit keeps the whole chain out.
func TestCommitBatchCommitsAUsersChainWholeOrNotAtAll(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx := t.Context()

	outs := commit(t, s, decision("c1", "cy", 1, 2), decision("c2", "cy", 2, 3), decision("c3", "cy", 3, 4), decision("c4", "dee", 1, 1))
	for i, o := range outs {
		if o != persistence.Committed {
			t.Fatalf("new chain: outcome %d = %v", i, o)
		}
	}
	u, err := s.GetUser(ctx, "cy")
	if err != nil {
		t.Fatal(err)
	}
	if u.Version != 3 || u.Points != 12 {
		t.Fatalf("cy after its chain: version %d points %d, want 3 and 12 (the last state)", u.Version, u.Points)
	}
	if rs, _ := s.ListRewards(ctx, "cy", 0, 10); len(rs) != 3 {
		t.Fatalf("cy: %d rewards, want 3", len(rs))
	}

	// A duplicate inside a chain: nothing of the chain commits; other users do.
	outs = commit(t, s, decision("c5", "cy", 4, 1), decision("c2", "cy", 5, 1), decision("c6", "dee", 2, 1))
	want := []persistence.Outcome{persistence.ChainBroken, persistence.Duplicate, persistence.Committed}
	if fmt.Sprint(outs) != fmt.Sprint(want) {
		t.Fatalf("chain with a duplicate: outcomes %v, want %v", outs, want)
	}
	if u, _ := s.GetUser(ctx, "cy"); u.Version != 3 {
		t.Fatalf("cy moved to version %d by a broken chain", u.Version)
	}
	if rs, _ := s.RewardsOfEvent(ctx, "c5"); len(rs) != 0 {
		t.Fatal("a broken chain's reward was stored")
	}

	// A chain built on a version that is not the stored one is fenced whole.
	outs = commit(t, s, decision("c7", "cy", 5, 1), decision("c8", "cy", 6, 1))
	if outs[0] != persistence.Fenced || outs[1] != persistence.Fenced {
		t.Fatalf("stale chain: outcomes %v", outs)
	}

	// Decisions of a user that do not form a chain are refused.
	if _, err := s.CommitBatch(ctx, []loyalty.Decision{decision("c9", "cy", 4, 1), decision("c10", "cy", 6, 1)}, nil); err == nil {
		t.Fatal("a gap in a chain was accepted")
	}
	if _, err := s.CommitBatch(ctx, []loyalty.Decision{decision("c9", "cy", 4, 1), decision("c11", "dee", 3, 1), decision("c10", "cy", 5, 1)}, nil); err == nil {
		t.Fatal("a chain split by another user was accepted")
	}
}

// TestCommitBatchWritesEveryTableOfADecision: a committed decision stores its tier
// change, its ledger entries (optional columns NULL when empty, a campaign version only
// with a campaign), its effect, a refund against an earlier effect, its budget deltas
// summed per campaign, and a rejection's reason.
func TestCommitBatchWritesEveryTableOfADecision(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := pgtest.New(t)
	s, err := persistence.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	at := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	expires := at.AddDate(1, 0, 0)

	d1 := decision("w1", "gil", 1, 5)
	d1.TierChange = &loyalty.TierChange{From: "", To: "silver", Reason: "points", OccurredAt: at}
	d1.Ledger[0].ExpiresAt = &expires
	d1.Ledger = append(d1.Ledger, loyalty.LedgerEntry{Kind: loyalty.LedgerAdjust, Points: 1, BalanceAfter: 6,
		CampaignVersion: 7, Actor: "admin", Reason: "goodwill", OccurredAt: at})
	d1.Budget = map[string]loyalty.BudgetDelta{"c": {Rewards: 1, Points: 5, MaxRewards: 10}}
	d1.OccurredAt, d1.RuleErrors = at, []string{"c", "broken"}
	d2 := decision("w2", "gil", 2, 0)
	d2.Rewards, d2.Ledger, d2.Effect = nil, nil, nil
	d2.Refund = &loyalty.RefundApplied{EventID: "w1", Amount: 4, Points: 2}
	d2.Budget = map[string]loyalty.BudgetDelta{"c": {Points: -2, MaxRewards: 10}, "k": {Rewards: 1, Points: 1}}
	d3 := decision("w3", "gil", 3, 0)
	d3.Rewards, d3.Ledger, d3.Effect = nil, nil, nil
	d3.Rejected = "over-redeem"
	d3.OccurredAt, d3.RuleErrors = at.Add(time.Hour), []string{"broken"}
	outs := commit(t, s, d1, d2, d3)
	if fmt.Sprint(outs) != fmt.Sprint([]persistence.Outcome{persistence.Committed, persistence.Committed, persistence.Committed}) {
		t.Fatalf("outcomes %v", outs)
	}

	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	var from, to, reason, event string
	var occurred time.Time
	if err := conn.QueryRow(ctx, `SELECT from_tier, to_tier, reason, event_id, occurred_at FROM tier_changes WHERE user_id = 'gil'`).
		Scan(&from, &to, &reason, &event, &occurred); err != nil {
		t.Fatalf("tier change: %v", err)
	}
	if from != "" || to != "silver" || reason != "points" || event != "w1" || !occurred.Equal(at) {
		t.Errorf("tier change: %q → %q (%q) by %q at %v", from, to, reason, event, occurred)
	}
	rs, err := s.ListRewards(ctx, "gil", 0, 10)
	if err != nil || len(rs) != 1 {
		t.Fatalf("rewards: %v, %v", rs, err)
	}
	if rs[0].CreatedAt.IsZero() || !rs[0].CreatedAt.Equal(d1.Rewards[0].CreatedAt) {
		t.Errorf("reward created_at stored %v, in the committed decision %v: want the same, not zero", rs[0].CreatedAt, d1.Rewards[0].CreatedAt)
	}
	var errs string
	if err := conn.QueryRow(ctx, `SELECT string_agg(campaign_id || ' ' || day || ' ' || errors, ', ' ORDER BY campaign_id)
		FROM campaign_rule_errors`).Scan(&errs); err != nil || errs != "broken 2026-11-28 2, c 2026-11-28 1" {
		t.Errorf("rule errors = %q, %v", errs, err)
	}
	var nulls int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM points_ledger WHERE user_id = 'gil' AND kind = 'adjust'
		AND reward_id IS NULL AND campaign_id IS NULL AND campaign_version IS NULL AND expires_at IS NULL`).Scan(&nulls); err != nil || nulls != 1 {
		t.Errorf("adjust entry with NULL optional columns: %d rows, err %v", nulls, err)
	}

	ledger, err := s.ListLedger(ctx, "gil", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(ledger) != 2 {
		t.Fatalf("ledger: %d entries, want 2", len(ledger))
	}
	earn, adjust := ledger[0], ledger[1]
	if earn.EventID != "w1" || earn.RewardID != "r-w1" || earn.CampaignID != "c" || earn.CampaignVersion != 1 ||
		earn.ExpiresAt == nil || !earn.ExpiresAt.Equal(expires) || earn.BalanceAfter != 5 {
		t.Errorf("earn entry: %+v", earn)
	}
	if adjust.Kind != loyalty.LedgerAdjust || adjust.EventID != "w1" || adjust.Actor != "admin" || adjust.Reason != "goodwill" ||
		adjust.CampaignVersion != 0 || adjust.ExpiresAt != nil || adjust.Points != 1 {
		t.Errorf("adjust entry: %+v", adjust)
	}
	e, err := s.GetEventEffect(ctx, "w1")
	if err != nil {
		t.Fatal(err)
	}
	if e.UserID != "gil" || e.Amount != 10 || e.Points != 5 || e.RefundedAmount != 4 || e.RefundedPoints != 2 {
		t.Errorf("effect of w1 after its refund: %+v", e)
	}
	budgets, err := s.LoadBudgets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if budgets["c"] != (loyalty.BudgetUsed{Rewards: 1, Points: 3}) || budgets["k"] != (loyalty.BudgetUsed{Rewards: 1, Points: 1}) {
		t.Errorf("budgets %v, want c {1 3} and k {1 1}", budgets)
	}
	if outcome, reason, err := s.ProcessedOutcome(ctx, "w3"); err != nil || outcome != "rejected" || reason != "over-redeem" {
		t.Errorf("w3: outcome %q reason %q err %v, want rejected over-redeem", outcome, reason, err)
	}
	if outcome, reason, err := s.ProcessedOutcome(ctx, "w2"); err != nil || outcome != "applied" || reason != "" {
		t.Errorf("w2: outcome %q reason %q err %v, want applied", outcome, reason, err)
	}
	if u, err := s.GetUser(ctx, "gil"); err != nil || u.Version != 3 {
		t.Errorf("gil: version %d err %v, want 3", u.Version, err)
	}
}

// TestCommitBatchRefusesToGrantPastABudget: a decision that would take a campaign past a
// limit is OverBudget and breaks its chain; the budget and the other users' decisions
// are unaffected, and a decision giving budget back is never OverBudget.
func TestCommitBatchRefusesToGrantPastABudget(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx := t.Context()
	grant := func(eventID, user string, version int64, rewards int64) loyalty.Decision {
		d := decision(eventID, user, version, 5)
		d.Budget = map[string]loyalty.BudgetDelta{"c": {Rewards: rewards, Points: 5 * rewards, MaxRewards: 2}}
		return d
	}

	if outs := commit(t, s, grant("b1", "hal", 1, 1), grant("b2", "ivy", 1, 1)); outs[0] != persistence.Committed || outs[1] != persistence.Committed {
		t.Fatalf("within the budget: %v", outs)
	}
	for _, tc := range []struct {
		name string
		ds   []loyalty.Decision
		want []persistence.Outcome
	}{
		{"a grant past the limit", []loyalty.Decision{grant("b3", "hal", 2, 1), decision("b4", "joe", 1, 5)},
			[]persistence.Outcome{persistence.OverBudget, persistence.Committed}},
		{"its chain", []loyalty.Decision{grant("b5", "ivy", 2, 1), decision("b6", "ivy", 3, 5)},
			[]persistence.Outcome{persistence.OverBudget, persistence.ChainBroken}},
		{"giving back", []loyalty.Decision{grant("b7", "hal", 2, -1)},
			[]persistence.Outcome{persistence.Committed}},
	} {
		if outs := commit(t, s, tc.ds...); fmt.Sprint(outs) != fmt.Sprint(tc.want) {
			t.Errorf("%s: outcomes %v, want %v", tc.name, outs, tc.want)
		}
	}
	budgets, err := s.LoadBudgets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if budgets["c"] != (loyalty.BudgetUsed{Rewards: 1, Points: 5}) {
		t.Errorf("budget of c: %+v, want {1 5} (two grants, one given back)", budgets["c"])
	}
	if u, err := s.GetUser(ctx, "ivy"); err != nil || u.Version != 1 {
		t.Errorf("ivy: version %d err %v, want 1 (the broken chain changed nothing)", u.Version, err)
	}
}
