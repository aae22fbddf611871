package actors

import (
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"

	"github.com/anthdm/hollywood/actor"
)

// echo counts the messages it receives on a shared WaitGroup.
type echo struct{ wg *sync.WaitGroup }

func (e *echo) Receive(c *actor.Context) {
	if _, ok := c.Message().(int); ok {
		e.wg.Done()
	}
}

// BenchmarkActorDispatch measures handing a message to a user actor the way a lane does
// (hollywood Send into an inbox of 4, through the lane's recover middleware, to an actor
// with a short engine-wide id, see lane.spawn) and its receipt:
// to one of 10,000 running actors, and to a freshly spawned actor per message (a user's
// first event, or one whose idle actor was stopped). Run:
//
//	go test ./actors -run '^$' -bench ActorDispatch
func BenchmarkActorDispatch(b *testing.B) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mw := recoverMiddleware(log)
	spawn := func(e *actor.Engine, wg *sync.WaitGroup, n int) *actor.PID {
		return e.Spawn(func() actor.Receiver { return &echo{wg: wg} }, "user",
			actor.WithID(strconv.FormatUint(uint64(n), 36)), actor.WithInboxSize(4), actor.WithMiddleware(mw))
	}
	b.Run("running", func(b *testing.B) {
		e, err := actor.NewEngine(actor.NewEngineConfig())
		if err != nil {
			b.Fatal(err)
		}
		var wg sync.WaitGroup
		pids := make([]*actor.PID, 10_000)
		for i := range pids {
			pids[i] = spawn(e, &wg, i)
		}
		b.ReportAllocs()
		b.ResetTimer()
		wg.Add(b.N)
		for i := 0; i < b.N; i++ {
			e.Send(pids[i%len(pids)], i)
		}
		wg.Wait()
	})
	b.Run("spawn", func(b *testing.B) {
		e, err := actor.NewEngine(actor.NewEngineConfig())
		if err != nil {
			b.Fatal(err)
		}
		var wg sync.WaitGroup
		b.ReportAllocs()
		b.ResetTimer()
		wg.Add(b.N)
		for i := 0; i < b.N; i++ {
			e.Send(spawn(e, &wg, i), i)
		}
		wg.Wait()
	})
}
