package persistence_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"

	"github.com/campaignmanager/campaignmanager/cel/campaign"
	"github.com/campaignmanager/campaignmanager/persistence"
	"github.com/campaignmanager/campaignmanager/persistence/pgtest"
)

// openStoreDB opens a Store on a fresh database and a connection to the same database
// for what the Store does not do (legacy rows, direct changes).
func openStoreDB(t testing.TB) (*persistence.Store, *pgx.Conn) {
	t.Helper()
	url := pgtest.New(t)
	s, err := persistence.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	db, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close(context.Background()) })
	return s, db
}

func TestEnsureAdminCreatesTheFirstAdminAndRestoresOneWhenNoneIsActive(t *testing.T) {
	t.Parallel()
	s, db := openStoreDB(t)
	ctx := t.Context()
	outcome, err := s.EnsureAdmin(ctx, " Root ", "hash1")
	if err != nil || outcome != persistence.BootstrapCreated {
		t.Fatalf("first EnsureAdmin = %v, %v; want created", outcome, err)
	}
	outcome, err = s.EnsureAdmin(ctx, "other", "hash2")
	if err != nil || outcome != persistence.BootstrapNothing {
		t.Fatalf("second EnsureAdmin = %v, %v; want nothing", outcome, err)
	}
	if n, err := s.CountAdmins(ctx); err != nil || n != 1 {
		t.Fatalf("CountAdmins = %d, %v; want 1", n, err)
	}
	a, hash, err := s.GetAdmin(ctx, "root")
	if err != nil || a.Username != "root" || hash != "hash1" || a.Role != persistence.RoleAdmin || a.Disabled || a.PasswordChangedAt != nil {
		t.Fatalf("GetAdmin = %+v, %q, %v", a, hash, err)
	}

	// With no enabled admin of the admin role (a viewer is not one), the bootstrap admin
	// comes back: enabled, admin, with the new password.
	if err := s.CreateAdmin(ctx, "vera", "h", persistence.RoleViewer); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `UPDATE admins SET disabled = true, role = 'editor' WHERE username = 'root'`); err != nil {
		t.Fatal(err)
	}
	before := time.Now().Add(-time.Second)
	outcome, err = s.EnsureAdmin(ctx, "ROOT", "hash3")
	if err != nil || outcome != persistence.BootstrapRestored {
		t.Fatalf("EnsureAdmin with no active admin = %v, %v; want restored", outcome, err)
	}
	a, hash, err = s.GetAdmin(ctx, "root")
	if err != nil || hash != "hash3" || a.Role != persistence.RoleAdmin || a.Disabled || a.PasswordChangedAt == nil || a.PasswordChangedAt.Before(before) {
		t.Fatalf("restored admin = %+v, %q, %v", a, hash, err)
	}

	// Deleted outright: created again.
	if _, err := db.Exec(ctx, `DELETE FROM admins WHERE username = 'root'`); err != nil {
		t.Fatal(err)
	}
	if outcome, err := s.EnsureAdmin(ctx, "root", "hash4"); err != nil || outcome != persistence.BootstrapCreated {
		t.Fatalf("EnsureAdmin after the admin was deleted = %v, %v; want created", outcome, err)
	}
	entries, err := s.ListAudit(ctx, persistence.AuditFilter{TargetType: "admin", Limit: 10})
	if err != nil || len(entries) != 3 || entries[1].Action != "admin.bootstrap_restore" || entries[1].Actor != "system" {
		t.Fatalf("audit = %+v, %v", entries, err)
	}
}

func TestAdminLifecycle(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx := t.Context()
	for _, name := range []string{"ed", "boss"} {
		role := persistence.RoleEditor
		if name == "boss" {
			role = persistence.RoleAdmin
		}
		if err := s.CreateAdmin(ctx, name, "h", role); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"duplicate username is ErrConflict", s.CreateAdmin(ctx, "ed", "h", persistence.RoleViewer), persistence.ErrConflict},
		{"a username in another case is ErrConflict", s.CreateAdmin(ctx, "Ed", "h", persistence.RoleViewer), persistence.ErrConflict},
		{"a username with spaces around is ErrConflict", s.CreateAdmin(ctx, " ed ", "h", persistence.RoleViewer), persistence.ErrConflict},
		{"role of unknown admin is ErrNotFound", s.SetAdminRole(ctx, "nobody", persistence.RoleViewer), persistence.ErrNotFound},
		{"disable unknown admin is ErrNotFound", s.SetAdminDisabled(ctx, "nobody", true), persistence.ErrNotFound},
		{"password of unknown admin is ErrNotFound", s.SetAdminPassword(ctx, "nobody", "x"), persistence.ErrNotFound},
		{"get unknown admin is ErrNotFound", func() error { _, _, err := s.GetAdmin(ctx, "nobody"); return err }(), persistence.ErrNotFound},
		{"disabling the last admin is ErrLastAdmin", s.SetAdminDisabled(ctx, "boss", true), persistence.ErrLastAdmin},
		{"demoting the last admin is ErrLastAdmin", s.SetAdminRole(ctx, "BOSS", persistence.RoleEditor), persistence.ErrLastAdmin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !errors.Is(tt.err, tt.want) {
				t.Fatalf("err = %v, want %v", tt.err, tt.want)
			}
		})
	}
	if a, _, err := s.GetAdmin(ctx, "boss"); err != nil || a.Disabled || a.Role != persistence.RoleAdmin {
		t.Fatalf("the refused changes changed the last admin: %+v, %v", a, err)
	}
	if err := s.SetAdminRole(ctx, "ed", persistence.RoleViewer); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAdminDisabled(ctx, "ed", true); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2030, 1, 2, 3, 4, 5, 600, time.UTC)
	hash := "h2"
	before, after, err := s.UpdateAdmin(ctx, " ED", persistence.AdminChange{PasswordHash: &hash, At: at})
	if err != nil || before.PasswordChangedAt != nil || after.PasswordChangedAt == nil || !after.PasswordChangedAt.Equal(at.Truncate(time.Microsecond)) {
		t.Fatalf("UpdateAdmin password = %+v, %+v, %v", before, after, err)
	}
	a, got, err := s.GetAdmin(ctx, "ed")
	if err != nil || a.Role != persistence.RoleViewer || !a.Disabled || got != "h2" || !a.PasswordChangedAt.Equal(*after.PasswordChangedAt) {
		t.Fatalf("after changes GetAdmin = %+v, %q, %v", a, got, err)
	}
	list, err := s.ListAdmins(ctx)
	if err != nil || len(list) != 2 || list[1].Username != "ed" {
		t.Fatalf("ListAdmins = %+v, %v", list, err)
	}
	// With a second enabled admin, the first may go.
	if err := s.CreateAdmin(ctx, "Second ", "h", persistence.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAdminDisabled(ctx, "boss", true); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAdminRole(ctx, "second", persistence.RoleViewer); !errors.Is(err, persistence.ErrLastAdmin) {
		t.Fatalf("demoting the new last admin = %v, want ErrLastAdmin", err)
	}
}

// TestConcurrentDemotionsLeaveAnAdmin: two admins demoting each other at once cannot
// both succeed.
func TestConcurrentDemotionsLeaveAnAdmin(t *testing.T) {
	t.Parallel()
	s, db := openStoreDB(t)
	ctx := t.Context()
	for range 5 {
		if _, err := db.Exec(ctx, `DELETE FROM admins`); err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{"a", "b"} {
			if err := s.CreateAdmin(ctx, n, "h", persistence.RoleAdmin); err != nil {
				t.Fatal(err)
			}
		}
		errs := make(chan error, 2)
		for _, n := range []string{"a", "b"} {
			go func() { errs <- s.SetAdminDisabled(ctx, n, true) }()
		}
		e1, e2 := <-errs, <-errs
		if (e1 == nil) == (e2 == nil) || !errors.Is(errors.Join(e1, e2), persistence.ErrLastAdmin) {
			t.Fatalf("concurrent disables = %v, %v; want one ErrLastAdmin", e1, e2)
		}
	}
}

// TestUsernamesStoredBeforeKeysStayUsable: rows from before migration 006 keep their
// spelling, even when two share a key; a name that is theirs alone is found by its key.
func TestUsernamesStoredBeforeKeysStayUsable(t *testing.T) {
	t.Parallel()
	s, db := openStoreDB(t)
	ctx := t.Context()
	for _, n := range []string{"Root", "root", "Alice"} {
		if _, err := db.Exec(ctx, `INSERT INTO admins (username, password_hash, role) VALUES ($1, $1, 'admin')`, n); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct{ ask, want string }{
		{"Root", "Root"}, {"root", "root"}, {" ROOT ", "root"}, {"alice", "Alice"}, {" ALICE", "Alice"}, {"Alice", "Alice"},
	}
	for _, tt := range tests {
		a, hash, err := s.GetAdmin(ctx, tt.ask)
		if err != nil || a.Username != tt.want || hash != tt.want {
			t.Errorf("GetAdmin(%q) = %q, %v; want %q", tt.ask, a.Username, err, tt.want)
		}
	}
	if err := s.CreateAdmin(ctx, "ALICE", "h", persistence.RoleViewer); !errors.Is(err, persistence.ErrConflict) {
		t.Fatalf("a new admin colliding with an old one = %v, want ErrConflict", err)
	}
}

// TestMigrationNumbersExistingCampaignsByCreation: campaigns stored before migration
// 006 are paged oldest first, and new ones come after them.
func TestMigrationNumbersExistingCampaignsByCreation(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := pgtest.New(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	m, err := migrate.NewMigrator(ctx, conn, "schema_version")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.LoadMigrations(os.DirFS("migrations")); err != nil {
		t.Fatal(err)
	}
	if err := m.MigrateTo(ctx, 5); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, id := range []string{"zeta", "alpha", "mid"} {
		body := `{"id":"` + id + `","name":"x","rule":"true","reward":{"type":"coupon"}}`
		if _, err := conn.Exec(ctx, `INSERT INTO campaigns (id, version, status, body, created_at) VALUES ($1, 1, 'draft', $2, $3)`,
			id, body, base.Add(time.Duration(i)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	s, err := persistence.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := campaign.Campaign{ID: "new", Name: "x", Rule: "true", Reward: campaign.Reward{Type: campaign.RewardCoupon}, Status: campaign.StatusDraft}
	if err := s.CreateCampaign(ctx, &c, "t"); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for after := int64(0); ; {
		page, next, err := s.ListCampaignsPage(ctx, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page {
			ids = append(ids, c.ID)
		}
		if len(page) < 2 {
			break
		}
		after = next
	}
	if got := fmt.Sprint(ids); got != "[zeta alpha mid new]" {
		t.Fatalf("pages = %s, want oldest first", got)
	}
}
