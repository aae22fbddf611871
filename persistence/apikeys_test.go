package persistence_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/campaignmanager/campaignmanager/persistence"
)

func TestCreateAPIKeyStoresOnlyTheHash(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx := t.Context()
	k, secret, err := s.CreateAPIKey(ctx, "shop", "root")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, "cmk_") || len(secret) < 40 {
		t.Fatalf("secret %q lacks the cmk_ prefix or entropy", secret)
	}
	if k.Prefix != secret[:8] || !strings.HasPrefix(k.ID, "key_") || k.CreatedBy != "root" || k.CreatedAt.IsZero() {
		t.Fatalf("key = %+v", k)
	}
	if k.Hash != persistence.HashAPIKeySecret(secret) || strings.Contains(k.Hash, secret) {
		t.Fatalf("hash %q is not sha256 of the secret", k.Hash)
	}
	got, err := s.GetAPIKeyByHash(ctx, k.Hash)
	if err != nil || got.ID != k.ID || got.RevokedAt != nil {
		t.Fatalf("GetAPIKeyByHash = %+v, %v", got, err)
	}
	_, other, err := s.CreateAPIKey(ctx, "shop2", "root")
	if err != nil || other == secret {
		t.Fatalf("second key: %q, %v", other, err)
	}
	audit, err := s.ListAudit(ctx, persistence.AuditFilter{TargetType: "api_key", TargetID: k.ID})
	if err != nil || len(audit) != 1 || audit[0].Actor != "root" || strings.Contains(string(audit[0].After), k.Hash) {
		t.Fatalf("audit = %+v, %v", audit, err)
	}
}

func TestRevokeAPIKeyKeepsTheKeyListed(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx := t.Context()
	k, _, err := s.CreateAPIKey(ctx, "shop", "root")
	if err != nil {
		t.Fatal(err)
	}
	revoked, err := s.RevokeAPIKey(ctx, k.ID, "root")
	if err != nil || revoked.RevokedAt == nil || revoked.Hash != k.Hash {
		t.Fatalf("RevokeAPIKey = %+v, %v", revoked, err)
	}
	again, err := s.RevokeAPIKey(ctx, k.ID, "root")
	if err != nil || !again.RevokedAt.Equal(*revoked.RevokedAt) {
		t.Fatalf("second revoke changed the time: %+v, %v", again, err)
	}
	list, err := s.ListAPIKeys(ctx)
	if err != nil || len(list) != 1 || list[0].RevokedAt == nil {
		t.Fatalf("ListAPIKeys = %+v, %v", list, err)
	}
	if _, err := s.RevokeAPIKey(ctx, "key_missing", "root"); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("revoke unknown key: %v, want ErrNotFound", err)
	}
	if _, err := s.GetAPIKeyByHash(ctx, "nope"); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("get unknown hash: %v, want ErrNotFound", err)
	}
}
