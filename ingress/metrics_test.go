package ingress

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/campaignmanager/campaignmanager/persistence"
)

// syncBuffer collects log output written while requests are served.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newIngestServer is a server without the admin API (no database), logging to w at level.
func newIngestServer(t *testing.T, w io.Writer, level slog.Level) *Server {
	t.Helper()
	srv, err := New(Deps{Publisher: fakePublisher{}, Keys: &fakeKeys{byHash: map[string]persistence.APIKey{}},
		Logger: slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

func TestRejectedEventsAreExportedBeforeTheFirstRejection(t *testing.T) {
	t.Parallel()
	srv := newIngestServer(t, io.Discard, slog.LevelInfo)
	resp, err := srv.App().Test(httptest.NewRequest("GET", "/metrics", nil), 10_000)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, reason := range []string{"too_large", "invalid", "unavailable"} {
		if want := `campaign_events_rejected_total{reason="` + reason + `"} 0`; !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestEveryRequestHasADebugAccessLine(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	srv := newIngestServer(t, &logs, slog.LevelDebug)
	for _, path := range []string{"/healthz", "/nowhere"} {
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("X-Request-ID", "req-"+strings.TrimPrefix(path, "/"))
		resp, err := srv.App().Test(req, 10_000)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	lines := map[string]map[string]any{}
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] == "request" {
			lines[m["correlation_id"].(string)] = m
		}
	}
	tests := []struct {
		id, route string
		status    float64
	}{{"req-healthz", "/healthz", 200}, {"req-nowhere", "unmatched", 404}}
	for _, tt := range tests {
		m := lines[tt.id]
		if m == nil {
			t.Errorf("no access line for %s in\n%s", tt.id, logs.String())
			continue
		}
		if m["level"] != "DEBUG" || m["method"] != "GET" || m["route"] != tt.route || m["status"] != tt.status {
			t.Errorf("access line %v, want GET %s %v at DEBUG", m, tt.route, tt.status)
		}
		if d, ok := m["duration_ms"].(float64); !ok || d < 0 {
			t.Errorf("duration_ms = %v", m["duration_ms"])
		}
	}

	var quiet syncBuffer
	srv = newIngestServer(t, &quiet, slog.LevelInfo)
	resp, err := srv.App().Test(httptest.NewRequest("GET", "/healthz", nil), 10_000)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if strings.Contains(quiet.String(), `"msg":"request"`) {
		t.Errorf("an access line at info level: %s", quiet.String())
	}
}
