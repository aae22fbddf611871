package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
)

// Stage is one long-running part of a process: a consumer, a watcher, a committer.
type Stage struct {
	// Name identifies the stage in logs and errors.
	Name string
	// Run does the stage's work until ctx ends, then finishes its in-flight work by the
	// end of Draining(ctx) and returns nil. An error return before ctx ends means the
	// stage failed.
	Run func(ctx context.Context) error
	// Restart runs the stage again, after the supervisor's Policy delay, when it fails;
	// without it a failure is logged and the stage stays stopped.
	Restart bool
}

// Supervisor runs stages, each on a goroutine of its own with a context of its own, and
// stops them in the reverse order they were started, each after the ones started later
// have returned. It owns every goroutine it starts. It is safe for concurrent use.
type Supervisor struct {
	log    *slog.Logger
	policy Policy

	mu      sync.Mutex
	stages  []*Handle
	stopped bool
}

// New returns a supervisor that restarts failed stages after policy's delays and logs to
// log.
func New(log *slog.Logger, policy Policy) *Supervisor {
	return &Supervisor{log: log, policy: policy}
}

// Handle is a started stage.
type Handle struct {
	stage  Stage
	cancel context.CancelFunc
	drain  *drainBox
	done   chan struct{}
	sup    *Supervisor
}

// drainBox holds the context a stopping stage drains by.
type drainBox struct {
	mu  sync.Mutex
	ctx context.Context
}

type drainKey struct{}

// Draining returns, inside a stage's Run once its ctx has ended, the context by whose end
// the stage must have finished its in-flight work: the one given to Stop. It is
// context.Background() outside a stage, or when the stage's ctx ended otherwise.
func Draining(ctx context.Context) context.Context {
	if b, ok := ctx.Value(drainKey{}).(*drainBox); ok {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.ctx != nil {
			return b.ctx
		}
	}
	return context.Background()
}

// ErrStopped is returned by Start after Stop.
var ErrStopped = errors.New("supervisor: stopped")

// Start runs stage on a goroutine of its own until it is stopped (its Handle's Stop, or
// the supervisor's) or fails for good. It returns ErrStopped after Stop.
func (s *Supervisor) Start(stage Stage) (*Handle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil, ErrStopped
	}
	box := &drainBox{}
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), drainKey{}, box))
	h := &Handle{stage: stage, cancel: cancel, drain: box, done: make(chan struct{}), sup: s}
	s.stages = append(s.stages, h)
	go h.run(ctx)
	return h, nil
}

func (h *Handle) run(ctx context.Context) {
	defer close(h.done)
	log := h.sup.log.With("stage", h.stage.Name)
	for attempt := 1; ; attempt++ {
		err := h.stage.Run(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			log.Warn("stage ended by itself")
			return
		}
		if !h.stage.Restart {
			log.Error("stage failed; not restarted", "err", err)
			return
		}
		d := h.sup.policy.Delay(attempt)
		log.Error("stage failed; restarting", "err", err, "attempt", attempt, "delay", d.String())
		if !Sleep(ctx, d) {
			return
		}
	}
}

// Done is closed once the stage has returned for good.
func (h *Handle) Done() <-chan struct{} { return h.done }

// Stop ends the stage: its Run's ctx ends and it drains by ctx (see Draining). Stop
// waits for it to return until ctx ends, then returns an error naming the stage.
// Calling it again waits again.
func (h *Handle) Stop(ctx context.Context) error {
	h.drain.mu.Lock()
	if h.drain.ctx == nil {
		h.drain.ctx = ctx
	}
	h.drain.mu.Unlock()
	h.cancel()
	select {
	case <-h.done:
		h.sup.forget(h)
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stage %s did not stop in time: %w", h.stage.Name, ctx.Err())
	}
}

func (s *Supervisor) forget(h *Handle) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, o := range s.stages {
		if o == h {
			s.stages = append(s.stages[:i], s.stages[i+1:]...)
			return
		}
	}
}

// Stop stops every running stage, the last started first, each drained by ctx, and
// refuses new ones. It returns the errors of stages that did not stop in time.
func (s *Supervisor) Stop(ctx context.Context) error {
	s.mu.Lock()
	s.stopped = true
	stages := append([]*Handle(nil), s.stages...)
	s.mu.Unlock()
	var errs []error
	for i := len(stages) - 1; i >= 0; i-- {
		errs = append(errs, stages[i].Stop(ctx))
	}
	return errors.Join(errs...)
}
