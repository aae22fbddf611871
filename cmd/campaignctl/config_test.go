package main

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestConfigStoreKeepsOneSessionPerServer(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "campaignctl")
	s, err := newConfigStore(func(k string) string {
		if k == "CAMPAIGNCTL_CONFIG_DIR" {
			return dir
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	if err := s.put("http://a", session{Username: "u", Token: "ta", ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.put("http://b", session{Username: "u", Token: "tb", ExpiresAt: now.Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if tok, err := s.token("http://a", now); err != nil || tok != "ta" {
		t.Errorf("token a = %q, %v", tok, err)
	}
	var nl *notLoggedInError
	if _, err := s.token("http://b", now); !errors.As(err, &nl) {
		t.Errorf("expired token: %v, want notLoggedInError", err)
	}
	if _, err := s.token("http://c", now); !errors.As(err, &nl) {
		t.Errorf("unknown server: %v, want notLoggedInError", err)
	}
	if had, err := s.remove("http://a"); err != nil || !had {
		t.Errorf("remove a = %t, %v", had, err)
	}
	if _, err := s.token("http://a", now); !errors.As(err, &nl) {
		t.Errorf("after remove: %v", err)
	}
}
