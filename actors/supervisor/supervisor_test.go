package supervisor

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"
)

func TestPolicyBacksOffExponentiallyUpToItsCap(t *testing.T) {
	p := Policy{Initial: 10 * time.Millisecond, Max: 80 * time.Millisecond, Jitter: -1}
	want := []time.Duration{10, 20, 40, 80, 80, 80}
	for i, w := range want {
		if got := p.Delay(i + 1); got != w*time.Millisecond {
			t.Fatalf("Delay(%d) = %v, want %v", i+1, got, w*time.Millisecond)
		}
	}
	j := Policy{Initial: 100 * time.Millisecond}
	for range 100 {
		if d := j.Delay(1); d < 80*time.Millisecond || d > 120*time.Millisecond {
			t.Fatalf("jittered delay %v outside ±20%%", d)
		}
	}
}

func TestDoRetriesUntilSuccessPermanentErrorAttemptsOrContext(t *testing.T) {
	fast := Policy{Initial: time.Millisecond, Max: time.Millisecond}
	boom := errors.New("boom")
	cases := []struct {
		name     string
		policy   Policy
		fail     int // attempts that fail before success (-1: always)
		perm     bool
		ctx      func() context.Context
		calls    int
		wantErr  error
		wantNone bool
	}{
		{"succeeds after failures", fast, 3, false, context.Background, 4, nil, true},
		{"a permanent error stops at once", fast, -1, true, context.Background, 1, boom, false},
		{"attempts are bounded", Policy{Initial: time.Millisecond, MaxAttempts: 3}, -1, false, context.Background, 3, boom, false},
		{"an ended context stops", fast, -1, false, func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}, 1, context.Canceled, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			err := tc.policy.Do(tc.ctx(), func(context.Context) error {
				calls++
				if tc.fail >= 0 && calls > tc.fail {
					return nil
				}
				if tc.perm {
					return Permanent(boom)
				}
				return boom
			})
			if calls != tc.calls {
				t.Fatalf("calls = %d, want %d", calls, tc.calls)
			}
			if tc.wantNone != (err == nil) || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestStagesStopInReverseOrderAndDrainByTheStopDeadline(t *testing.T) {
	s := New(slog.New(slog.DiscardHandler), Policy{Initial: time.Millisecond})
	var mu sync.Mutex
	var order []string
	drained := map[string]bool{}
	for _, name := range []string{"publisher", "committer", "lane"} {
		_, err := s.Start(Stage{Name: name, Run: func(ctx context.Context) error {
			<-ctx.Done()
			_, hasDeadline := Draining(ctx).Deadline()
			mu.Lock()
			order = append(order, name)
			drained[name] = hasDeadline
			mu.Unlock()
			return nil
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if want := []string{"lane", "committer", "publisher"}; !equal(order, want) {
		t.Fatalf("stopped %v, want %v", order, want)
	}
	for name, ok := range drained {
		if !ok {
			t.Errorf("%s drained without the stop's deadline", name)
		}
	}
	if _, err := s.Start(Stage{Name: "late", Run: func(context.Context) error { return nil }}); !errors.Is(err, ErrStopped) {
		t.Fatalf("Start after Stop: %v", err)
	}
}

func TestAFailedStageIsRestartedOnlyWhenRestartable(t *testing.T) {
	s := New(slog.New(slog.DiscardHandler), Policy{Initial: time.Millisecond, Max: time.Millisecond})
	var mu sync.Mutex
	runs := map[string]int{}
	stage := func(name string, restart bool) Stage {
		return Stage{Name: name, Restart: restart, Run: func(ctx context.Context) error {
			mu.Lock()
			runs[name]++
			n := runs[name]
			mu.Unlock()
			if n < 3 {
				return errors.New("failed")
			}
			<-ctx.Done()
			return nil
		}}
	}
	restarted, _ := s.Start(stage("watcher", true))
	once, _ := s.Start(stage("one-shot", false))
	<-once.Done()
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := runs["watcher"]
		mu.Unlock()
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("watcher ran %d times, want 3", n)
		}
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := restarted.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if runs["one-shot"] != 1 {
		t.Fatalf("one-shot ran %d times", runs["one-shot"])
	}
}

func TestStopReportsAStageThatOverrunsItsDeadline(t *testing.T) {
	s := New(slog.New(slog.DiscardHandler), Policy{})
	release := make(chan struct{})
	defer close(release)
	if _, err := s.Start(Stage{Name: "stuck", Run: func(ctx context.Context) error { <-release; return nil }}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := s.Stop(ctx); err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop = %v, want a deadline error naming the stage", err)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
