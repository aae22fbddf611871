package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// configFile is the token cache: one session per server, keyed by cacheKey.
type configFile struct {
	Servers map[string]session `json:"servers"`
}

// session is a cached login.
type session struct {
	Username  string    `json:"username"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// configStore reads and writes config.json in one directory.
type configStore struct {
	dir string
}

// newConfigStore returns the store in CAMPAIGNCTL_CONFIG_DIR, else
// os.UserConfigDir()/campaignctl.
func newConfigStore(getenv func(string) string) (*configStore, error) {
	if d := getenv("CAMPAIGNCTL_CONFIG_DIR"); d != "" {
		return &configStore{dir: d}, nil
	}
	base, err := os.UserConfigDir()
	if err != nil {
		return nil, fmt.Errorf("find the config dir (set CAMPAIGNCTL_CONFIG_DIR): %w", err)
	}
	return &configStore{dir: filepath.Join(base, "campaignctl")}, nil
}

func (s *configStore) path() string { return filepath.Join(s.dir, "config.json") }

// load reads the cache; a missing file is an empty cache.
func (s *configStore) load() (configFile, error) {
	cfg := configFile{Servers: map[string]session{}}
	data, err := os.ReadFile(s.path())
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return cfg, fmt.Errorf("read %s: %w", s.path(), err)
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return cfg, fmt.Errorf("read %s: %w (delete it and log in again)", s.path(), err)
	}
	// Files written before keys were normalised may hold one server under several
	// spellings: keep the session that lasts longest.
	servers := make(map[string]session, len(cfg.Servers))
	for k, sess := range cfg.Servers {
		key := cacheKey(k)
		if prev, ok := servers[key]; !ok || prev.ExpiresAt.Before(sess.ExpiresAt) {
			servers[key] = sess
		}
	}
	cfg.Servers = servers
	return cfg, nil
}

// save writes the cache atomically with mode 0600 in a 0700 directory.
func (s *configStore) save(cfg configFile) error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("create config dir: %w", err)
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	tmp, err := os.CreateTemp(s.dir, ".config-*.json")
	if err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	// Best effort, and a no-op after the rename (the error is then ErrNotExist).
	defer func() { _ = os.Remove(tmp.Name()) }()
	if err := tmp.Chmod(0o600); err != nil {
		_ = tmp.Close() // the first error is the one to report
		return fmt.Errorf("write config: %w", err)
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		_ = tmp.Close() // the first error is the one to report
		return fmt.Errorf("write config: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path()); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

// put stores the session for server (under its cacheKey).
func (s *configStore) put(server string, sess session) error {
	cfg, err := s.load()
	if err != nil {
		return err
	}
	cfg.Servers[cacheKey(server)] = sess
	return s.save(cfg)
}

// remove forgets the session for server; it reports whether there was one.
func (s *configStore) remove(server string) (bool, error) {
	cfg, err := s.load()
	if err != nil {
		return false, err
	}
	key := cacheKey(server)
	if _, ok := cfg.Servers[key]; !ok {
		return false, nil
	}
	delete(cfg.Servers, key)
	return true, s.save(cfg)
}

// token returns the cached token for server, or a *notLoggedInError when there is none
// or it has expired.
func (s *configStore) token(server string, now time.Time) (string, error) {
	cfg, err := s.load()
	if err != nil {
		return "", err
	}
	sess, ok := cfg.Servers[cacheKey(server)]
	switch {
	case !ok || sess.Token == "":
		return "", &notLoggedInError{server: server, reason: "not logged in to " + server}
	case !sess.ExpiresAt.IsZero() && !now.Before(sess.ExpiresAt):
		return "", &notLoggedInError{server: server, reason: "the session of " + sess.Username + " on " + server + " has expired"}
	}
	return sess.Token, nil
}
