package loyalty

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCompactStateRoundTripsEveryField(t *testing.T) {
	at := time.Date(2026, 11, 28, 10, 0, 0, 123, time.UTC)
	exp := at.Add(30 * 24 * time.Hour)
	u := User{
		UserID: "ann", Tier: "gold", Points: 120, LifetimePoints: 340, PurchaseCount: 7, TotalSpent: 812.5,
		FirstSeen: at.Add(-time.Hour), LastPurchaseAt: &at,
		EventCounts: map[string]int64{"purchase": 7, "view": 2}, RewardCounts: map[string]int64{"welcome": 1},
		RewardDays: map[string]DayCount{"daily": {Day: "2026-11-28", Count: 1}},
		History:    []DayStat{{Day: DayOf(at), Spent: 12.5, Counts: map[string]int64{"purchase": 1}}},
		Lots:       []Lot{{Points: 100, ExpiresAt: &exp}, {Points: 20}},
		NextExpiry: &exp, LastRejection: &Rejection{EventID: "e9", Type: "redeem", Reason: "short", At: at},
		TierReviewed: "2026-11", LastSeq: 98765, Version: 12, UpdatedAt: at,
	}
	b := EncodeCompact(&u)
	got, err := DecodeCompact("ann", b)
	require.NoError(t, err)
	require.Equal(t, u, got)
	require.Less(t, len(b), 256, "a state this full still fits in a few hundred bytes")

	// Every truncation and a few corruptions are refused, never a panic.
	for i := range b {
		_, err := DecodeCompact("ann", b[:i])
		require.Error(t, err, "prefix of %d bytes", i)
	}
	_, err = DecodeCompact("ann", append(append([]byte(nil), b...), 0))
	require.Error(t, err, "trailing byte")
	bad := append([]byte(nil), b...)
	bad[0] = 99
	_, err = DecodeCompact("ann", bad)
	require.Error(t, err, "unknown version")
}

func TestCompactStateOfANewUserIsSmall(t *testing.T) {
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	u := NewUser("user-123")
	u.FirstSeen, u.LastPurchaseAt, u.PurchaseCount, u.TotalSpent, u.Points, u.Version = at, &at, 1, 42, 4, 1
	u.EventCounts["purchase"] = 1
	u.RewardCounts["points"] = 1
	u.History = []DayStat{{Day: DayOf(at), Spent: 42, Counts: map[string]int64{"purchase": 1}}}
	u.Lots = []Lot{{Points: 4}}
	b := EncodeCompact(&u)
	got, err := DecodeCompact("user-123", b)
	require.NoError(t, err)
	require.Equal(t, u, got)
	require.Less(t, len(b), 96)
	require.Equal(t, len(b), cap(b), "no spare capacity is kept")
}
