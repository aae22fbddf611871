package main

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/campaignmanager/campaignmanager/ingress/bus"
)

// keepEvery is how often the stream keeper looks for missing streams and buckets.
const keepEvery = 2 * time.Second

// streamKeeper creates again the streams and buckets that disappeared while campaignd
// runs (deleted by hand, or with a lost NATS volume): EVENTS above every sequence the
// engine applied, so the users' last_seq stay true, and the buckets refilled from
// Postgres. It acts on what was missing on two looks in a row (another process may be
// creating it), so within two keepEvery; meanwhile /readyz names what is missing.
type streamKeeper struct {
	a          *App
	partitions int
}

// Run looks every keepEvery until ctx ends.
func (k *streamKeeper) Run(ctx context.Context) error {
	t := time.NewTicker(keepEvery)
	defer t.Stop()
	var before []string
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		missing, err := bus.Missing(ctx, k.a.js)
		if err != nil {
			continue // NATS is away: nothing to tell yet
		}
		var again []string
		for _, m := range missing {
			if slices.Contains(before, m) {
				again = append(again, m)
			}
		}
		before = missing
		if len(again) == 0 {
			continue
		}
		if err := k.recreate(ctx, again); err != nil {
			k.a.log.Error("create missing streams or buckets again", "missing", again, "err", err)
			continue
		}
		k.a.log.Error("streams or buckets were missing; created again", "missing", again)
		before = nil
	}
}

func (k *streamKeeper) recreate(ctx context.Context, missing []string) error {
	cfg := bus.StreamsConfig{Partitions: k.partitions, Replicas: k.a.cfg.StreamReplicas}
	if slices.Contains(missing, "stream "+bus.EventsStream) {
		if k.a.store == nil {
			return errors.New("stream EVENTS is missing and this process has no Postgres to tell where it must start; a process with Postgres creates it")
		}
		seq, err := k.a.store.MaxAppliedSeq(ctx)
		if err != nil {
			return err
		}
		cfg.EventsFirstSeq = seq + 1
	}
	if _, err := bus.EnsureStreams(ctx, k.a.js, cfg); err != nil {
		return err
	}
	refill := slices.ContainsFunc(missing, func(m string) bool { return strings.HasPrefix(m, "bucket ") })
	if refill && k.a.store != nil {
		return k.a.reconcile(ctx)
	}
	return nil
}
