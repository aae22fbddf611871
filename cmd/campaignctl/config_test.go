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

// TestConfigStoreFindsALoginUnderAnySpellingOfTheServer covers README's walkthrough: a
// login to http://localhost:8080 serves the default http://127.0.0.1:8080, and a file
// written before keys were normalised is read under the normalised key.
func TestConfigStoreFindsALoginUnderAnySpellingOfTheServer(t *testing.T) {
	dir := t.TempDir()
	s := &configStore{dir: dir}
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	if err := s.put("http://localhost:8080", session{Username: "admin", Token: "t1", ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for _, server := range []string{"http://127.0.0.1:8080", "http://LOCALHOST:8080/", "http://[::1]:8080"} {
		if tok, err := s.token(server, now); err != nil || tok != "t1" {
			t.Errorf("token(%s) = %q, %v", server, tok, err)
		}
	}
	old := `{"servers":{"http://localhost:9090":{"username":"a","token":"old","expires_at":"2025-01-01T12:10:00Z"},` +
		`"http://127.0.0.1:9090":{"username":"a","token":"newer","expires_at":"2025-01-01T12:30:00Z"}}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	if tok, err := s.token("http://localhost:9090", now); err != nil || tok != "newer" {
		t.Errorf("an old file's two spellings: token = %q, %v; want the longer-lived one", tok, err)
	}
	if had, err := s.remove("http://[::1]:9090"); err != nil || !had {
		t.Errorf("remove = %t, %v", had, err)
	}
}
