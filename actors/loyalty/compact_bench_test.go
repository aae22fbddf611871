package loyalty

import (
	"fmt"
	"testing"
	"time"

	"github.com/campaignmanager/campaignmanager/ingress/event"
)

// activeUser is the state after days days with a purchase each (rewarded by campaign
// "p"), the last one at day0.
func activeUser(b *testing.B, days int) User {
	u := NewUser("u")
	eval := pointsEach("p", 10, "")
	for i := range days {
		ev := event.Event{ID: fmt.Sprint("e", i), UserID: "u", Type: event.TypePurchase, Amount: 10,
			OccurredAt: day0.Add(time.Duration(i-days+1) * 24 * time.Hour)}
		d, err := Step(&u, Input{Event: &ev, Seq: uint64(i + 1)}, eval)
		if err != nil {
			b.Fatal(err)
		}
		u = d.User
	}
	return u
}

// BenchmarkCompact measures what a running actor pays per event to hold its state in
// compact form between events (decode before, encode after), next to the Step it wraps,
// for a user with one day of activity and one with the full history. Run:
//
//	go test ./actors/loyalty -run '^$' -bench Compact -benchmem
func BenchmarkCompact(b *testing.B) {
	for _, days := range []int{1, 30, HistoryDays} {
		u := activeUser(b, days)
		c := EncodeCompact(&u)
		ev := event.Event{ID: "next", UserID: "u", Type: event.TypePurchase, Amount: 10, OccurredAt: day0.Add(time.Hour)}
		eval := pointsEach("p", 10, "")
		b.Run(fmt.Sprintf("step/days=%d", days), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Step(&u, Input{Event: &ev, Seq: uint64(days + 1)}, eval); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("roundtrip/days=%d", days), func(b *testing.B) {
			b.ReportAllocs()
			b.ReportMetric(float64(len(c)), "bytes")
			for b.Loop() {
				v, err := DecodeCompact("u", c)
				if err != nil {
					b.Fatal(err)
				}
				_ = EncodeCompact(&v)
			}
		})
	}
}
