package persistence_test

import (
	"errors"
	"testing"

	"github.com/campaignmanager/campaignmanager/persistence"
)

func TestEnsureAdminCreatesOnlyTheFirstAdmin(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx := t.Context()
	created, err := s.EnsureAdmin(ctx, "root", "hash1", persistence.RoleAdmin)
	if err != nil || !created {
		t.Fatalf("first EnsureAdmin = %v, %v; want created", created, err)
	}
	created, err = s.EnsureAdmin(ctx, "other", "hash2", persistence.RoleAdmin)
	if err != nil || created {
		t.Fatalf("second EnsureAdmin = %v, %v; want not created", created, err)
	}
	if n, err := s.CountAdmins(ctx); err != nil || n != 1 {
		t.Fatalf("CountAdmins = %d, %v; want 1", n, err)
	}
	a, hash, err := s.GetAdmin(ctx, "root")
	if err != nil || hash != "hash1" || a.Role != persistence.RoleAdmin || a.Disabled {
		t.Fatalf("GetAdmin = %+v, %q, %v", a, hash, err)
	}
}

func TestAdminLifecycle(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx := t.Context()
	if err := s.CreateAdmin(ctx, "ed", "h", persistence.RoleEditor); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"duplicate username is ErrConflict", s.CreateAdmin(ctx, "ed", "h", persistence.RoleViewer), persistence.ErrConflict},
		{"role of unknown admin is ErrNotFound", s.SetAdminRole(ctx, "nobody", persistence.RoleViewer), persistence.ErrNotFound},
		{"disable unknown admin is ErrNotFound", s.SetAdminDisabled(ctx, "nobody", true), persistence.ErrNotFound},
		{"password of unknown admin is ErrNotFound", s.SetAdminPassword(ctx, "nobody", "x"), persistence.ErrNotFound},
		{"get unknown admin is ErrNotFound", func() error { _, _, err := s.GetAdmin(ctx, "nobody"); return err }(), persistence.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !errors.Is(tt.err, tt.want) {
				t.Fatalf("err = %v, want %v", tt.err, tt.want)
			}
		})
	}
	if err := s.SetAdminRole(ctx, "ed", persistence.RoleViewer); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAdminDisabled(ctx, "ed", true); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAdminPassword(ctx, "ed", "h2"); err != nil {
		t.Fatal(err)
	}
	a, hash, err := s.GetAdmin(ctx, "ed")
	if err != nil || a.Role != persistence.RoleViewer || !a.Disabled || hash != "h2" {
		t.Fatalf("after changes GetAdmin = %+v, %q, %v", a, hash, err)
	}
	list, err := s.ListAdmins(ctx)
	if err != nil || len(list) != 1 || list[0].Username != "ed" {
		t.Fatalf("ListAdmins = %+v, %v", list, err)
	}
}
