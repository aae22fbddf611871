package supervisor

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// Policy is the one retry policy of the project: exponential back-off with jitter, for
// every loop that tries something again (a commit while Postgres is away, a DLQ publish,
// a watcher that ended, a stage that failed). The zero value retries until the context
// ends, starting at 50ms and doubling up to 5s, each delay spread by ±20%. Policy is a
// value: copy it and change a field for a loop of its own.
type Policy struct {
	// Initial is the first delay; 0 means 50ms.
	Initial time.Duration
	// Max caps every delay; 0 means 5s.
	Max time.Duration
	// Multiplier grows the delay per attempt; 0 means 2.
	Multiplier float64
	// Jitter spreads each delay by ±Jitter of itself; 0 means 0.2, negative means none.
	Jitter float64
	// MaxAttempts bounds the attempts of Do (the first included); 0 means no bound.
	MaxAttempts int
	// OnRetry, when set, is told of each failed attempt before its delay.
	OnRetry func(attempt int, err error, delay time.Duration)
}

// Delay is the wait after the attempt-th failure (1-based), jitter included.
func (p Policy) Delay(attempt int) time.Duration {
	initial, limit, mult, jitter := p.Initial, p.Max, p.Multiplier, p.Jitter
	if initial <= 0 {
		initial = 50 * time.Millisecond
	}
	if limit <= 0 {
		limit = 5 * time.Second
	}
	if mult <= 1 {
		mult = 2
	}
	if jitter == 0 {
		jitter = 0.2
	}
	d := float64(initial)
	for i := 1; i < attempt && d < float64(limit); i++ {
		d *= mult
	}
	d = min(d, float64(limit))
	if jitter > 0 {
		d += d * jitter * (2*rand.Float64() - 1)
	}
	return time.Duration(d)
}

// permanent marks an error that retrying cannot mend.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent wraps err so that Do returns it at once instead of trying again.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// Do calls fn until it returns nil, returns an error wrapped by Permanent (that error is
// returned, unwrapped), MaxAttempts attempts have failed (the last error is returned),
// or ctx ends (ctx's error joined with the last error). It blocks between attempts.
func (p Policy) Do(ctx context.Context, fn func(ctx context.Context) error) error {
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		var perm permanent
		if errors.As(err, &perm) {
			return perm.err
		}
		if p.MaxAttempts > 0 && attempt >= p.MaxAttempts {
			return err
		}
		if ctx.Err() != nil {
			return errors.Join(ctx.Err(), err)
		}
		d := p.Delay(attempt)
		if p.OnRetry != nil {
			p.OnRetry(attempt, err, d)
		}
		if !Sleep(ctx, d) {
			return errors.Join(ctx.Err(), err)
		}
	}
}

// Sleep waits d, or less when ctx ends first; it reports whether the whole d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
