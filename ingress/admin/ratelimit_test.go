package admin

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for limiters.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestLoginLimiter() (*loginLimiter, *fakeClock) {
	clock := &fakeClock{t: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := newLoginLimiter()
	l.now = clock.now
	return l, clock
}

func TestLoginLimiterBuckets(t *testing.T) {
	type attempt struct {
		user, addr string
		advance    time.Duration
		ok         bool
	}
	repeat := func(n int, a attempt) []attempt {
		out := make([]attempt, n)
		for i := range out {
			out[i] = a
		}
		return out
	}
	seq := func(parts ...[]attempt) []attempt {
		var out []attempt
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	manyUsers := func(n int, addr string, ok bool) []attempt {
		out := make([]attempt, n)
		for i := range out {
			out[i] = attempt{user: "user" + strconv.Itoa(i), addr: addr, ok: ok}
		}
		return out
	}
	tests := []struct {
		name     string
		attempts []attempt
	}{
		{"a username gets 10 attempts, then none", seq(
			repeat(loginsPerUser, attempt{"alice", "10.0.0.1", 0, true}),
			[]attempt{{"alice", "10.0.0.2", 0, false}})},
		{"usernames differing in case share a bucket", seq(
			repeat(loginsPerUser, attempt{"alice", "10.0.0.1", 0, true}),
			[]attempt{{"ALICE", "10.0.0.1", 0, false}})},
		{"another username is not limited by alice's attempts", seq(
			repeat(loginsPerUser, attempt{"alice", "10.0.0.1", 0, true}),
			[]attempt{{"bob", "10.0.0.1", 0, true}})},
		{"an address gets 30 attempts across usernames", seq(
			manyUsers(loginsPerAddress, "10.0.0.1", true),
			[]attempt{{"zoe", "10.0.0.1", 0, false}, {"zoe", "10.0.0.2", 0, true}})},
		{"IPv6 addresses of one /64 share a bucket", seq(
			manyUsers(loginsPerAddress, "2001:db8::1", true),
			[]attempt{{"zoe", "2001:db8::ffff", 0, false}, {"zoe", "2001:db8:0:1::1", 0, true}})},
		{"a refused attempt takes no token from the other bucket", seq(
			repeat(loginsPerUser, attempt{"alice", "10.0.0.1", 0, true}),
			repeat(50, attempt{"alice", "10.0.0.2", 0, false}),
			manyUsers(loginsPerAddress, "10.0.0.2", true))},
		{"tokens come back at the rate: one per 6 seconds per user", seq(
			repeat(loginsPerUser, attempt{"alice", "10.0.0.1", 0, true}),
			[]attempt{{"alice", "10.0.0.1", 5 * time.Second, false}, {"alice", "10.0.0.1", time.Second, true}, {"alice", "10.0.0.1", 0, false}})},
		{"after a minute the bucket is full again", seq(
			repeat(loginsPerUser, attempt{"alice", "10.0.0.1", 0, true}),
			[]attempt{{"alice", "10.0.0.1", time.Minute, true}},
			repeat(loginsPerUser-1, attempt{"alice", "10.0.0.1", 0, true}),
			[]attempt{{"alice", "10.0.0.1", 0, false}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, clock := newTestLoginLimiter()
			for i, a := range tt.attempts {
				clock.advance(a.advance)
				ok, wait := l.allow(a.user, a.addr)
				if ok != a.ok {
					t.Fatalf("attempt %d (%s from %s) allowed = %v, want %v", i, a.user, a.addr, ok, a.ok)
				}
				if !ok && (wait <= 0 || wait > time.Minute) {
					t.Fatalf("attempt %d: retry after %v, want within a minute", i, wait)
				}
			}
		})
	}
}

func TestLoginLimiterMemoryIsBounded(t *testing.T) {
	l, clock := newTestLoginLimiter()
	for i := range loginLimiterSlots + 500 {
		l.allow(fmt.Sprintf("user-%d", i), fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255))
	}
	if n := l.users.len(); n != loginLimiterSlots {
		t.Fatalf("user buckets = %d, want at most %d", n, loginLimiterSlots)
	}
	if n := l.addrs.len(); n != loginLimiterSlots {
		t.Fatalf("address buckets = %d, want at most %d", n, loginLimiterSlots)
	}
	clock.advance(time.Minute)
	l.allow("late", "10.255.255.255")
	if n, m := l.users.len(), l.addrs.len(); n != 1 || m != 1 {
		t.Fatalf("after a minute idle: %d user and %d address buckets, want 1 each (idle full buckets dropped)", n, m)
	}
	long := strings.Repeat("x", 10_000)
	l.allow(long, long)
	for e := l.users.lru.Front(); e != nil; e = e.Next() {
		if k := e.Value.(*keyedBucket).key; len(k) > maxLimiterKeyLen {
			t.Fatalf("kept a key of %d bytes", len(k))
		}
	}
}

func TestLoginLimiterIsSafeForConcurrentUse(t *testing.T) {
	l, _ := newTestLoginLimiter()
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for range 100 {
		wg.Go(func() {
			if ok, _ := l.allow("alice", "10.0.0.1"); ok {
				mu.Lock()
				allowed++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if allowed != loginsPerUser {
		t.Fatalf("%d of 100 parallel attempts allowed, want %d", allowed, loginsPerUser)
	}
}
