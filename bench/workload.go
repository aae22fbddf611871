package bench

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Zipf draws integers in [0, n) with a Zipfian distribution of exponent theta in (0, 1):
// rank 0 is the most frequent, P(k) is proportional to 1/(k+1)^theta. It is the
// constant-time method of Gray et al. ("Quickly generating billion-record synthetic
// databases", SIGMOD 1994), as used by YCSB, so theta below 1 (e.g. 0.99) works, which
// math/rand's Zipf (s > 1) does not allow. NewZipf costs O(n) once. A Zipf is safe for
// concurrent use; the randomness comes from the caller.
type Zipf struct {
	n     uint64
	theta float64
	alpha float64
	zetan float64
	eta   float64
	half  float64 // 1 + 0.5^theta
}

// zeta returns the sum of 1/i^theta for i in 1..n.
func zeta(n uint64, theta float64) float64 {
	s := 0.0
	for i := uint64(1); i <= n; i++ {
		s += 1 / math.Pow(float64(i), theta)
	}
	return s
}

// NewZipf returns a Zipf over [0, n). It returns an error when n is 0 or theta is not
// in (0, 1).
func NewZipf(n uint64, theta float64) (*Zipf, error) {
	if n == 0 {
		return nil, fmt.Errorf("zipf: n must be at least 1")
	}
	if !(theta > 0 && theta < 1) {
		return nil, fmt.Errorf("zipf: theta must be in (0, 1), got %g", theta)
	}
	z := &Zipf{n: n, theta: theta, alpha: 1 / (1 - theta), zetan: zeta(n, theta)}
	zeta2 := zeta(2, theta)
	z.eta = (1 - math.Pow(2/float64(n), 1-theta)) / (1 - zeta2/z.zetan)
	z.half = 1 + math.Pow(0.5, theta)
	return z, nil
}

// Next maps a uniform u in [0, 1) to a rank in [0, n).
func (z *Zipf) Next(u float64) uint64 {
	uz := u * z.zetan
	if uz < 1 {
		return 0
	}
	if uz < z.half && z.n > 1 {
		return 1
	}
	k := uint64(float64(z.n) * math.Pow(z.eta*u-z.eta+1, z.alpha))
	if k >= z.n {
		k = z.n - 1
	}
	return k
}

// Prob returns the exact probability of rank k, for tests and reports.
func (z *Zipf) Prob(k uint64) float64 {
	return 1 / math.Pow(float64(k+1), z.theta) / z.zetan
}

// Users picks user ids: "u<n>" with n uniform or Zipfian over [0, Count).
type Users struct {
	Count      uint64
	zipf       *Zipf // nil means uniform or sequential
	sequential bool
	next       atomic.Uint64
}

// NewUsers returns a picker over count users. skew is "uniform", "zipf" (theta is the
// Zipf exponent, 0.99 when 0) or "sequential" (every user in turn, then again: after
// count events every user has sent one, which is how memory per user is measured).
func NewUsers(count uint64, skew string, theta float64) (*Users, error) {
	if count == 0 {
		return nil, fmt.Errorf("users must be at least 1")
	}
	u := &Users{Count: count}
	switch skew {
	case "", "uniform":
	case "sequential":
		u.sequential = true
	case "zipf":
		if theta == 0 {
			theta = 0.99
		}
		z, err := NewZipf(count, theta)
		if err != nil {
			return nil, err
		}
		u.zipf = z
	default:
		return nil, fmt.Errorf("skew must be uniform, zipf or sequential, got %q", skew)
	}
	return u, nil
}

// Pick returns a user number.
func (u *Users) Pick(r *rand.Rand) uint64 {
	if u.sequential {
		return (u.next.Add(1) - 1) % u.Count
	}
	if u.zipf != nil {
		return u.zipf.Next(r.Float64())
	}
	return r.Uint64N(u.Count)
}

// UserID is the id of user number n. Ids need no escaping in a subject token.
func UserID(n uint64) string { return "u" + strconv.FormatUint(n, 10) }

// Mix is a weighted choice of event types.
type Mix struct {
	Types   []string
	cumul   []float64
	Weights []float64
}

// ParseMix reads "purchase:80,view:15,signup:5" (weights need not sum to 100).
func ParseMix(s string) (Mix, error) {
	var m Mix
	total := 0.0
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, w, ok := strings.Cut(part, ":")
		weight := 1.0
		if ok {
			f, err := strconv.ParseFloat(w, 64)
			if err != nil || f < 0 {
				return Mix{}, fmt.Errorf("mix %q: bad weight %q", s, w)
			}
			weight = f
		}
		total += weight
		m.Types = append(m.Types, name)
		m.Weights = append(m.Weights, weight)
		m.cumul = append(m.cumul, total)
	}
	if len(m.Types) == 0 || total == 0 {
		return Mix{}, fmt.Errorf("mix %q: no event types", s)
	}
	for i := range m.cumul {
		m.cumul[i] /= total
	}
	return m, nil
}

// Pick returns an event type.
func (m *Mix) Pick(r *rand.Rand) string {
	u := r.Float64()
	for i, c := range m.cumul {
		if u < c {
			return m.Types[i]
		}
	}
	return m.Types[len(m.Types)-1]
}

// Generator builds event JSON bodies. Every event matches the base campaign (see
// Campaigns); attribute "segment" in [0, Segments) selects at most one further campaign.
type Generator struct {
	Users       *Users
	Mix         Mix
	PayloadSize int // approximate bytes of the event JSON; padding goes in attributes.pad
}

// Segments is the range of the "segment" attribute; campaign i > 0 matches segment i.
const Segments = 1000

// Event is one generated event: its sequence number, user and JSON body.
type Event struct {
	Seq    uint64
	UserID string
	Type   string
	Amount float64
	Seg    int
	JSON   []byte
}

// Append generates event seq with id prefix+seq and appends its JSON to buf.
func (g *Generator) Append(buf []byte, r *rand.Rand, prefix string, seq uint64, now time.Time) ([]byte, Event) {
	ev := Event{Seq: seq, UserID: UserID(g.Users.Pick(r)), Type: g.Mix.Pick(r), Seg: r.IntN(Segments)}
	if ev.Type == "purchase" {
		ev.Amount = float64(11+r.IntN(490)) + float64(r.IntN(100))/100
	}
	start := len(buf)
	buf = append(buf, `{"id":"`...)
	buf = append(buf, prefix...)
	buf = strconv.AppendUint(buf, seq, 10)
	buf = append(buf, `","user_id":"`...)
	buf = append(buf, ev.UserID...)
	buf = append(buf, `","type":"`...)
	buf = append(buf, ev.Type...)
	buf = append(buf, '"')
	if ev.Amount > 0 {
		buf = append(buf, `,"amount":`...)
		buf = strconv.AppendFloat(buf, ev.Amount, 'f', 2, 64)
		buf = append(buf, `,"currency":"EUR"`...)
	}
	buf = append(buf, `,"occurred_at":"`...)
	buf = now.UTC().AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, `","attributes":{"segment":`...)
	buf = strconv.AppendInt(buf, int64(ev.Seg), 10)
	if pad := g.PayloadSize - (len(buf) - start) - 12; pad > 0 {
		buf = append(buf, `,"pad":"`...)
		for range pad {
			buf = append(buf, 'x')
		}
		buf = append(buf, '"')
	}
	buf = append(buf, "}}"...)
	ev.JSON = buf[start:]
	return buf, ev
}
