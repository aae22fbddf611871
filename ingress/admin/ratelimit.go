package admin

import (
	"container/list"
	"net"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/campaignmanager/campaignmanager/persistence"
)

// Login rate limits: token buckets per username and per client address. Every attempt
// takes a token from both, whatever its outcome, so guesses sent in parallel cannot slip
// in before earlier failures are counted; a success refunds nothing and resets no bucket.
const (
	loginsPerUser     = 10 // attempts per minute for one username (also the burst)
	loginsPerAddress  = 30 // attempts per minute from one client address (also the burst)
	loginLimiterSlots = 10_000
	// maxLimiterKeyLen caps the bytes of a username kept as a key, so long names cannot
	// inflate memory; longer names share the bucket of their prefix.
	maxLimiterKeyLen = 128
)

// loginLimiter limits password checks per username and per client address: POST
// /v1/auth/token and the current password of PUT /v1/auth/password share its buckets,
// so guesses through either count together. Memory is
// bounded: each side keeps at most loginLimiterSlots buckets. It is safe for concurrent
// use.
type loginLimiter struct {
	mu    sync.Mutex
	users *keyedLimiter
	addrs *keyedLimiter
	now   func() time.Time
}

func newLoginLimiter() *loginLimiter {
	return &loginLimiter{
		users: newKeyedLimiter(loginsPerUser, time.Minute, loginLimiterSlots),
		addrs: newKeyedLimiter(loginsPerAddress, time.Minute, loginLimiterSlots),
		now:   time.Now,
	}
}

// allow takes one token from the bucket of username and from that of addr. When either
// is empty it takes none and reports how long to wait until both have a token.
func (l *loginLimiter) allow(username, addr string) (ok bool, retryAfter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	ru := l.users.limiter(userLimiterKey(username), now).ReserveN(now, 1)
	ra := l.addrs.limiter(addrLimiterKey(addr), now).ReserveN(now, 1)
	wait := max(ru.DelayFrom(now), ra.DelayFrom(now))
	if wait > 0 {
		// Nothing was spent: canceling at the reservation's own time restores it whole.
		ru.CancelAt(now)
		ra.CancelAt(now)
		return false, wait
	}
	return true, 0
}

// userLimiterKey is the username's key (persistence.UsernameKey: trimmed, lower-cased),
// so " Alice" and alice share a bucket, capped in length.
func userLimiterKey(username string) string {
	k := persistence.UsernameKey(username)
	if len(k) > maxLimiterKeyLen {
		k = k[:maxLimiterKeyLen]
	}
	return k
}

// addrLimiterKey is the client's IP address; an IPv6 address counts as its /64, the
// block one subscriber usually holds.
func addrLimiterKey(addr string) string {
	ip := net.ParseIP(addr)
	switch {
	case ip == nil:
		if len(addr) > maxLimiterKeyLen {
			addr = addr[:maxLimiterKeyLen]
		}
		return addr
	case ip.To4() != nil:
		return ip.To4().String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// keyedLimiter keeps one token bucket per key, at most max keys. A bucket idle long
// enough to be full again is dropped, since a new one is the same; when more than max
// keys are busy, the least recently used bucket is dropped. It is not safe for
// concurrent use; loginLimiter serializes it.
type keyedLimiter struct {
	limit rate.Limit
	burst int
	full  time.Duration // how long an empty bucket takes to fill up
	max   int
	lru   *list.List // of *keyedBucket, most recently used first
	byKey map[string]*list.Element
}

type keyedBucket struct {
	key  string
	lim  *rate.Limiter
	used time.Time
}

// newKeyedLimiter allows n events per period per key, in bursts of up to n.
func newKeyedLimiter(n int, period time.Duration, maxKeys int) *keyedLimiter {
	return &keyedLimiter{
		limit: rate.Limit(float64(n) / period.Seconds()),
		burst: n,
		full:  period,
		max:   maxKeys,
		lru:   list.New(),
		byKey: map[string]*list.Element{},
	}
}

// limiter returns key's bucket, creating it when needed, and drops expired buckets.
func (k *keyedLimiter) limiter(key string, now time.Time) *rate.Limiter {
	for e := k.lru.Back(); e != nil; e = k.lru.Back() {
		b := e.Value.(*keyedBucket)
		if now.Sub(b.used) < k.full {
			break
		}
		k.remove(e)
	}
	if e, ok := k.byKey[key]; ok {
		b := e.Value.(*keyedBucket)
		b.used = now
		k.lru.MoveToFront(e)
		return b.lim
	}
	for k.lru.Len() >= k.max {
		k.remove(k.lru.Back())
	}
	b := &keyedBucket{key: key, lim: rate.NewLimiter(k.limit, k.burst), used: now}
	k.byKey[key] = k.lru.PushFront(b)
	return b.lim
}

func (k *keyedLimiter) remove(e *list.Element) {
	delete(k.byKey, e.Value.(*keyedBucket).key)
	k.lru.Remove(e)
}

// len returns how many buckets are kept.
func (k *keyedLimiter) len() int { return k.lru.Len() }
