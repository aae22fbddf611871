package actors

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/campaignmanager/campaignmanager/persistence"
)

// partitionMetrics count what the partition maintenance did.
type partitionMetrics struct {
	created, dropped *prometheus.CounterVec
	errors           prometheus.Counter
	lastPass         prometheus.Gauge
}

func newPartitionMetrics(reg prometheus.Registerer) (*partitionMetrics, error) {
	m := &partitionMetrics{
		created: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "campaign_partitions_created_total", Help: "Partitions of processed_events and event_effects this engine created ahead, by table."}, []string{"table"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "campaign_partitions_dropped_total", Help: "Partitions this engine dropped past their table's horizon (dedup or refund), by table."}, []string{"table"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "campaign_partition_maintenance_errors_total", Help: "Partition maintenance passes that failed (tried again at the next)."}),
		lastPass: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "campaign_partition_maintenance_last_success_timestamp_seconds", Help: "When the partition maintenance last completed a pass (Unix time)."}),
	}
	for _, table := range []string{persistence.ProcessedEvents, persistence.EventEffects} {
		m.created.WithLabelValues(table)
		m.dropped.WithLabelValues(table)
	}
	for _, c := range []prometheus.Collector{m.created, m.dropped, m.errors, m.lastPass} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register partition maintenance metrics: %w", err)
		}
	}
	return m, nil
}

// keepPartitions maintains the day-partitioned tables (see
// persistence.MaintainPartitions): a pass at once when the engine starts, then every
// PartitionEvery, each creating the partitions of today and the days ahead and dropping
// those past their table's horizon. Commits never wait for it: the migration created
// today's partitions and a DEFAULT one takes the rows of a day without its own, so a
// failed pass only counts an error and is tried again at the next. Every replica runs
// it; an advisory lock in Postgres makes them take turns, each step checking the catalog
// first. It returns when ctx ends.
func (e *Engine) keepPartitions(ctx context.Context) error {
	if e.cfg.PartitionEvery < 0 {
		return nil
	}
	t := time.NewTicker(e.cfg.PartitionEvery)
	defer t.Stop()
	for {
		e.maintainPartitions(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// maintainPartitions runs one pass, counting and logging what it changed.
func (e *Engine) maintainPartitions(ctx context.Context) {
	ch, err := e.deps.Store.MaintainPartitions(ctx, e.cfg.Retention)
	for _, name := range ch.Created {
		e.partitionMetrics.created.WithLabelValues(tableOf(name)).Inc()
		e.log.Info("partition created", "partition", name)
	}
	for _, name := range ch.Dropped {
		e.partitionMetrics.dropped.WithLabelValues(tableOf(name)).Inc()
		e.log.Info("partition dropped past its horizon", "partition", name)
	}
	if ch.Moved > 0 {
		e.log.Warn("rows moved out of a DEFAULT partition (the maintenance had not run for days)", "rows", ch.Moved)
	}
	if err != nil {
		if ctx.Err() == nil {
			e.partitionMetrics.errors.Inc()
			e.log.Warn("partition maintenance", "err", err)
		}
		return
	}
	e.partitionMetrics.lastPass.SetToCurrentTime()
}

// tableOf is the table a partition belongs to, by its name.
func tableOf(partition string) string {
	for _, t := range []string{persistence.ProcessedEvents, persistence.EventEffects} {
		if strings.HasPrefix(partition, t+"_") {
			return t
		}
	}
	return partition
}
