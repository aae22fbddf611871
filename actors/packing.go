package actors

import "github.com/campaignmanager/campaignmanager/actors/loyalty"

// heldState is a user's committed state as its resident holds it while the actor runs:
// decoded (user), or in compact form (packed) while the actor has nothing to do. One of
// the two is set. Immutable: a change stores a new one.
type heldState struct {
	user   *loyalty.User
	packed []byte
}

// packMaxDays is the longest daily history of a state an idle actor packs. A round trip
// (decode for the next event, encode after it) costs ~2.3 µs for one day of history and
// ~0.75 µs per further day, a map each (loyalty.BenchmarkCompact; the event's own Step:
// ~4.5 µs), so at 8 days about 1.5 Steps, ~3 % of an event's CPU in the engine; past it
// the state stays decoded until its actor stops (CAMPAIGN_ACTOR_IDLE) and is packed then.
const packMaxDays = 8

// pack puts the committed state in compact form when the actor has nothing to do: a
// running actor then holds about a hundred bytes of state instead of its maps (most of
// a user's memory), and its next event decodes them (unpack). A user whose events queue
// up keeps its decoded state, as does one with a long history (packMaxDays). The state
// is packed only while the resident still publishes it: once the lane took it to stop
// the actor (lane.stopActor), or anything else replaced it, it is left as it is.
func (a *userActor) pack() {
	u := a.state
	if u == nil || a.stale || a.loading || a.waiting || a.fetching || a.inflight != nil || len(a.queue) > 0 ||
		len(u.History) > packMaxDays {
		return
	}
	h := a.res.state.Load()
	if h == nil || h.user != u {
		return
	}
	if a.res.state.CompareAndSwap(h, &heldState{packed: loyalty.EncodeCompact(u)}) {
		a.state = nil
	}
}

// unpack makes a.state the committed state the resident holds, decoding it when it is
// packed. It reports false when there is none (it was dropped, or does not decode): the
// actor then loads the user from Postgres.
func (a *userActor) unpack() bool {
	h := a.res.state.Load()
	switch {
	case h == nil:
		return false
	case h.user != nil:
		a.state = h.user
		return true
	}
	u, err := loyalty.DecodeCompact(a.id, h.packed)
	if err != nil {
		a.deps.log.Error("undecodable compact user state; reloading from Postgres", "user_id", a.id, "err", err)
		a.res.state.Store(nil)
		return false
	}
	a.state = &u
	a.res.state.Store(&heldState{user: a.state})
	return true
}
