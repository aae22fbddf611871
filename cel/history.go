package cel

import (
	"sort"
	"time"

	celgo "github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
)

// windowStart is the first day number inside a window of length d ending at now: a
// day-granular window that includes today and reaches back d (rounded down to whole
// days, at least today).
func windowStart(now time.Time, d time.Duration) int32 {
	days := int32(d / (24 * time.Hour))
	if days < 1 {
		days = 1
	}
	return loyalty.DayOf(now) - days + 1
}

// daysWithin returns the stats of the days in [windowStart, today].
func daysWithin(uv *userVal, d time.Duration) []loyalty.DayStat {
	h := uv.u.History
	if len(h) == 0 || d <= 0 {
		return nil
	}
	from, to := windowStart(uv.now, d), loyalty.DayOf(uv.now)
	i := sort.Search(len(h), func(i int) bool { return h[i].Day >= from })
	j := sort.Search(len(h), func(j int) bool { return h[j].Day > to })
	if i >= j {
		return nil
	}
	return h[i:j]
}

func durationArg(v ref.Val) (time.Duration, bool) {
	d, ok := v.(types.Duration)
	return d.Duration, ok
}

func userArg(v ref.Val) (*userVal, bool) {
	o, ok := v.(objectVal)
	if !ok {
		return nil, false
	}
	u, ok := o.v.(*userVal)
	return u, ok
}

// historyFunctions are the member functions of user over its daily history. Windows are
// judged at the event's time (now), by whole UTC days, today included.
func historyFunctions() []celgo.EnvOption {
	return []celgo.EnvOption{
		celgo.Function("spent_within",
			celgo.MemberOverload("user_spent_within_duration", []*celgo.Type{userType, celgo.DurationType}, celgo.DoubleType,
				celgo.BinaryBinding(func(lhs, rhs ref.Val) ref.Val {
					u, ok1 := userArg(lhs)
					d, ok2 := durationArg(rhs)
					if !ok1 || !ok2 {
						return types.NewErr("spent_within: bad arguments")
					}
					var sum float64
					for _, s := range daysWithin(u, d) {
						sum += s.Spent
					}
					return types.Double(sum)
				}))),
		celgo.Function("count_within",
			celgo.MemberOverload("user_count_within_string_duration", []*celgo.Type{userType, celgo.StringType, celgo.DurationType}, celgo.IntType,
				celgo.FunctionBinding(func(args ...ref.Val) ref.Val {
					u, ok1 := userArg(args[0])
					typ, ok2 := args[1].(types.String)
					d, ok3 := durationArg(args[2])
					if !ok1 || !ok2 || !ok3 {
						return types.NewErr("count_within: bad arguments")
					}
					var n int64
					for _, s := range daysWithin(u, d) {
						n += s.Counts[string(typ)]
					}
					return types.Int(n)
				}))),
		celgo.Function("days_active_within",
			celgo.MemberOverload("user_days_active_within_duration", []*celgo.Type{userType, celgo.DurationType}, celgo.IntType,
				celgo.BinaryBinding(func(lhs, rhs ref.Val) ref.Val {
					u, ok1 := userArg(lhs)
					d, ok2 := durationArg(rhs)
					if !ok1 || !ok2 {
						return types.NewErr("days_active_within: bad arguments")
					}
					return types.Int(len(daysWithin(u, d)))
				}))),
	}
}
