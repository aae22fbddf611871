package persistence_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/campaignmanager/campaignmanager/persistence"
)

func TestCreateWebhookGeneratesASecretTheAuditNeverHolds(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx := t.Context()
	w, err := s.CreateWebhook(ctx, persistence.Webhook{URL: "https://shop.example/hooks", Enabled: true,
		Filter: persistence.WebhookFilter{Notices: []string{"reward"}, RewardTypes: []string{"coupon"}}}, "root")
	if err != nil {
		t.Fatal(err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(w.Secret, "whsec_"))
	if !strings.HasPrefix(w.Secret, "whsec_") || err != nil || len(key) != 32 {
		t.Fatalf("secret %q: not whsec_ and 32 base64 bytes (%v)", w.Secret, err)
	}
	if !strings.HasPrefix(w.ID, "wh_") || w.Version != 1 || w.CreatedBy != "root" || !w.Enabled {
		t.Fatalf("webhook = %+v", w)
	}
	got, err := s.GetWebhook(ctx, w.ID)
	if err != nil || got.Secret != w.Secret || got.Filter.RewardTypes[0] != "coupon" {
		t.Fatalf("GetWebhook = %+v, %v", got, err)
	}
	audit, err := s.ListAudit(ctx, persistence.AuditFilter{TargetType: "webhook", TargetID: w.ID})
	if err != nil || len(audit) != 1 || strings.Contains(string(audit[0].After), w.Secret) {
		t.Fatalf("audit = %+v, %v", audit, err)
	}
}

func TestRotateWebhookSecretKeepsTheOldOneSigningForTheOverlap(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx := t.Context()
	w, err := s.CreateWebhook(ctx, persistence.Webhook{URL: "https://shop.example/hooks", Enabled: true}, "root")
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.RotateWebhookSecret(ctx, w.ID, time.Hour, "root")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if got := r.SigningSecrets(now); len(got) != 2 || got[0] == w.Secret || got[1] != w.Secret {
		t.Fatalf("signing secrets after rotation = %v (old %s)", got, w.Secret)
	}
	if got := r.SigningSecrets(now.Add(2 * time.Hour)); len(got) != 1 || got[0] != r.Secret {
		t.Fatalf("signing secrets after the overlap = %v", got)
	}
	r2, err := s.RotateWebhookSecret(ctx, w.ID, 0, "root")
	if err != nil || len(r2.SigningSecrets(now)) != 1 || r2.Version != 3 {
		t.Fatalf("rotation without overlap = %+v, %v", r2, err)
	}
}

func TestRecordDeliveriesNeverGoesBack(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx := t.Context()
	w, err := s.CreateWebhook(ctx, persistence.Webhook{URL: "https://shop.example/hooks", Enabled: true}, "root")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC()
	rec := func(status string, attempts, code int) persistence.Delivery {
		return persistence.Delivery{WebhookID: w.ID, ID: "rwd_1", Type: "reward.granted", Subject: "rewards.c.u", Stream: "REWARDS",
			StreamSeq: 7, Status: status, Attempts: attempts, LastStatus: code, LastLatency: 3 * time.Millisecond, LastAttemptAt: &at}
	}
	// The success of attempt 3 is written before the (older) failure of attempt 2, and a
	// batch holds attempts 1 and 2 of the same delivery.
	if err := s.RecordDeliveries(ctx, []persistence.Delivery{rec("pending", 1, 500), rec("pending", 2, 500)}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordDeliveries(ctx, []persistence.Delivery{rec("succeeded", 3, 200)}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordDeliveries(ctx, []persistence.Delivery{rec("pending", 2, 500),
		{WebhookID: "wh_gone", ID: "x", Type: "t", Status: "pending", Attempts: 1}}); err != nil {
		t.Fatal(err)
	}
	d, err := s.GetDelivery(ctx, w.ID, "rwd_1")
	if err != nil || d.Status != "succeeded" || d.Attempts != 3 || d.LastStatus != 200 || d.StreamSeq != 7 || d.LastLatency != 3*time.Millisecond {
		t.Fatalf("delivery = %+v, %v", d, err)
	}
	if _, err := s.RetryDelivery(ctx, w.ID, "rwd_1", "root"); !errors.Is(err, persistence.ErrNotRetryable) {
		t.Fatalf("retry of a success: %v", err)
	}
	if err := s.RecordDeliveries(ctx, []persistence.Delivery{{WebhookID: w.ID, ID: "rwd_2", Type: "reward.granted", Status: "failed", Attempts: 8}}); err != nil {
		t.Fatal(err)
	}
	r, err := s.RetryDelivery(ctx, w.ID, "rwd_2", "root")
	if err != nil || r.Status != "pending" || r.NextAttemptAt == nil {
		t.Fatalf("retry of a failure = %+v, %v", r, err)
	}
	failed, err := s.ListDeliveries(ctx, w.ID, "pending", 0, 10)
	if err != nil || len(failed) != 1 || failed[0].ID != "rwd_2" {
		t.Fatalf("pending deliveries = %+v, %v", failed, err)
	}
	if _, err := s.DeleteWebhook(ctx, w.ID, "root"); err != nil {
		t.Fatal(err)
	}
	if all, err := s.ListDeliveries(ctx, w.ID, "", 0, 10); err != nil || len(all) != 0 {
		t.Fatalf("deliveries of a deleted endpoint = %+v, %v", all, err)
	}
}

// TestWebhookStartSeqsAreKeptAndChangedWithTheEndpoint: where new consumers start is
// stored with the endpoint, replaced by a change that sets it, kept by one that does not
// (a rotation), and absent for an endpoint saved without it.
func TestWebhookStartSeqsAreKeptAndChangedWithTheEndpoint(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx := t.Context()
	w, err := s.CreateWebhook(ctx, persistence.Webhook{URL: "https://shop.example/hooks", Enabled: true,
		StartSeqs: map[string]uint64{"REWARDS": 41, "LOYALTY": 7, "WEBHOOKS": 0}}, "root")
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.GetWebhook(ctx, w.ID)
	if err != nil || got.StartSeqs["REWARDS"] != 41 || got.StartSeqs["LOYALTY"] != 7 || len(got.StartSeqs) != 3 {
		t.Fatalf("stored start_seqs %v, %v", got.StartSeqs, err)
	}
	if _, _, err := s.ModifyWebhook(ctx, w.ID, "root", "webhook.update", func(w *persistence.Webhook) error {
		w.StartSeqs = map[string]uint64{"REWARDS": 99, "LOYALTY": 8, "WEBHOOKS": 1}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RotateWebhookSecret(ctx, w.ID, 0, "root"); err != nil {
		t.Fatal(err)
	}
	if got, err = s.GetWebhook(ctx, w.ID); err != nil || got.StartSeqs["REWARDS"] != 99 || got.StartSeqs["WEBHOOKS"] != 1 {
		t.Fatalf("start_seqs after an update and a rotation %v, %v", got.StartSeqs, err)
	}
	plain, err := s.CreateWebhook(ctx, persistence.Webhook{URL: "https://shop.example/other"}, "root")
	if err != nil || plain.StartSeqs != nil {
		t.Fatalf("an endpoint saved without start_seqs: %v, %v", plain.StartSeqs, err)
	}
}
