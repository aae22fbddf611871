package loyalty

import (
	"encoding/binary"
	"errors"
	"math"
	"sort"
	"time"
)

// A user whose actor was passivated for being idle keeps its committed state in memory
// as one compact byte slice (about a hundred bytes for a typical user) instead of an
// actor and a decoded state (some kilobytes). A slice holds no pointers, so it costs the
// garbage collector's marking nothing either. The next event of the user decodes it
// instead of loading the user from Postgres.
//
// The encoding is private to the process (never stored): a version byte, then the
// fields of User but the user id (the lane's map key) in a fixed order,
// integers as varints, strings and collections prefixed by their length, times as
// seconds and nanoseconds, optional values behind a presence byte.

const compactVersion = 1

type compactWriter struct{ b []byte }

func (w *compactWriter) int(v int64)   { w.b = binary.AppendVarint(w.b, v) }
func (w *compactWriter) uint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }
func (w *compactWriter) float(v float64) {
	w.b = binary.LittleEndian.AppendUint64(w.b, math.Float64bits(v))
}
func (w *compactWriter) str(s string) { w.uint(uint64(len(s))); w.b = append(w.b, s...) }
func (w *compactWriter) flag(v bool) {
	if v {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
}

func (w *compactWriter) time(t time.Time) {
	w.flag(!t.IsZero())
	if !t.IsZero() {
		w.int(t.Unix())
		w.uint(uint64(t.Nanosecond()))
	}
}

func (w *compactWriter) timePtr(t *time.Time) {
	w.flag(t != nil)
	if t != nil {
		w.time(*t)
	}
}

// counts writes m in key order, so equal states encode equally.
func (w *compactWriter) counts(m map[string]int64) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	w.uint(uint64(len(keys)))
	for _, k := range keys {
		w.str(k)
		w.int(m[k])
	}
}

// EncodeCompact is the compact form of u (without its user id).
func EncodeCompact(u *User) []byte {
	w := &compactWriter{b: make([]byte, 0, 128)}
	w.b = append(w.b, compactVersion)
	w.str(u.Tier)
	w.int(u.Points)
	w.int(u.LifetimePoints)
	w.int(u.PurchaseCount)
	w.float(u.TotalSpent)
	w.time(u.FirstSeen)
	w.timePtr(u.LastPurchaseAt)
	w.counts(u.EventCounts)
	w.counts(u.RewardCounts)
	keys := make([]string, 0, len(u.RewardDays))
	for k := range u.RewardDays {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	w.uint(uint64(len(keys)))
	for _, k := range keys {
		w.str(k)
		w.str(u.RewardDays[k].Day)
		w.int(u.RewardDays[k].Count)
	}
	w.uint(uint64(len(u.History)))
	for _, d := range u.History {
		w.int(int64(d.Day))
		w.float(d.Spent)
		w.counts(d.Counts)
	}
	w.uint(uint64(len(u.Lots)))
	for _, l := range u.Lots {
		w.int(l.Points)
		w.timePtr(l.ExpiresAt)
	}
	w.timePtr(u.NextExpiry)
	w.flag(u.LastRejection != nil)
	if r := u.LastRejection; r != nil {
		w.str(r.EventID)
		w.str(r.Type)
		w.str(r.Reason)
		w.time(r.At)
	}
	w.str(u.TierReviewed)
	w.int(u.LastSeq)
	w.int(u.Version)
	w.time(u.UpdatedAt)
	out := make([]byte, len(w.b)) // exactly sized: it stays in memory
	copy(out, w.b)
	return out
}

var errCompact = errors.New("corrupt compact user state")

type compactReader struct {
	b   []byte
	err error
}

func (r *compactReader) int() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errCompact
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *compactReader) uint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errCompact
		return 0
	}
	r.b = r.b[n:]
	return v
}

// length reads a collection or string length, refusing one longer than what is left.
func (r *compactReader) length() int {
	n := r.uint()
	if n > uint64(len(r.b)) {
		r.err = errCompact
		return 0
	}
	return int(n)
}

func (r *compactReader) float() float64 {
	if len(r.b) < 8 {
		r.err = errCompact
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(r.b))
	r.b = r.b[8:]
	return v
}

func (r *compactReader) str() string {
	n := r.length()
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *compactReader) flag() bool {
	if len(r.b) < 1 || r.b[0] > 1 {
		r.err = errCompact
		return false
	}
	v := r.b[0] == 1
	r.b = r.b[1:]
	return v
}

func (r *compactReader) time() time.Time {
	if !r.flag() {
		return time.Time{}
	}
	s := r.int()
	ns := r.uint()
	return time.Unix(s, int64(ns)).UTC()
}

func (r *compactReader) timePtr() *time.Time {
	if !r.flag() {
		return nil
	}
	t := r.time()
	return &t
}

// counts reads a map written by compactWriter.counts; an empty one is nil unless keep.
func (r *compactReader) counts(keep bool) map[string]int64 {
	n := r.length()
	if n == 0 && !keep {
		return nil
	}
	m := make(map[string]int64, n)
	for range n {
		k := r.str()
		m[k] = r.int()
	}
	return m
}

// DecodeCompact is the inverse of EncodeCompact. Event and reward counts are never nil (as
// for a new user); the other collections are nil when empty (as loaded from Postgres).
func DecodeCompact(userID string, b []byte) (User, error) {
	if len(b) == 0 || b[0] != compactVersion {
		return User{}, errCompact
	}
	r := &compactReader{b: b[1:]}
	u := User{UserID: userID}
	u.Tier = r.str()
	u.Points = r.int()
	u.LifetimePoints = r.int()
	u.PurchaseCount = r.int()
	u.TotalSpent = r.float()
	u.FirstSeen = r.time()
	u.LastPurchaseAt = r.timePtr()
	u.EventCounts = r.counts(true)
	u.RewardCounts = r.counts(true)
	if n := r.length(); n > 0 {
		u.RewardDays = make(map[string]DayCount, n)
		for range n {
			k := r.str()
			u.RewardDays[k] = DayCount{Day: r.str(), Count: r.int()}
		}
	}
	if n := r.length(); n > 0 {
		u.History = make([]DayStat, n)
		for i := range u.History {
			u.History[i] = DayStat{Day: int32(r.int()), Spent: r.float(), Counts: r.counts(false)}
		}
	}
	if n := r.length(); n > 0 {
		u.Lots = make([]Lot, n)
		for i := range u.Lots {
			u.Lots[i] = Lot{Points: r.int(), ExpiresAt: r.timePtr()}
		}
	}
	u.NextExpiry = r.timePtr()
	if r.flag() {
		u.LastRejection = &Rejection{EventID: r.str(), Type: r.str(), Reason: r.str(), At: r.time()}
	}
	u.TierReviewed = r.str()
	u.LastSeq = r.int()
	u.Version = r.int()
	u.UpdatedAt = r.time()
	if r.err == nil && len(r.b) != 0 {
		r.err = errCompact
	}
	if r.err != nil {
		return User{}, r.err
	}
	return u, nil
}
