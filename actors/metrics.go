package actors

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	received       prometheus.Counter
	rejected       prometheus.Counter
	processed      *prometheus.CounterVec
	rewards        *prometheus.CounterVec
	ruleErrors     *prometheus.CounterVec
	evalDuration   prometheus.Histogram
	commitDuration prometheus.Histogram
	batchSize      prometheus.Histogram
	commitErrors   prometheus.Counter
	loadErrors     prometheus.Counter
	fenced         prometheus.Counter
	dlq            prometheus.Counter
	actors         prometheus.Gauge
	users          prometheus.Gauge
	compact        prometheus.Gauge
	passivations   prometheus.Counter
	loads          prometheus.Counter
	pending        *prometheus.GaugeVec
	recreated      prometheus.Counter
	rulesLoaded    prometheus.Gauge
	owned          prometheus.Gauge
	ownership      *prometheus.CounterVec
	epochFenced    prometheus.Counter
	refused        *prometheus.CounterVec
	codesIssued    *prometheus.CounterVec
	poolLeft       *prometheus.GaugeVec
	poolLowWater   *prometheus.GaugeVec
	poolCampaigns  *prometheus.GaugeVec
	stages         *stageMetrics
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		stages: newStageMetrics(),
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "campaign_engine_events_received_total", Help: "Messages the engine received from EVENTS, redeliveries included."}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "campaign_engine_events_invalid_total", Help: "Messages parked in the DLQ before reaching an actor (invalid, token mismatch, too many deliveries)."}),
		processed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "campaign_events_processed_total", Help: "Events finished by the engine, by outcome (applied, duplicate, redelivered, parked)."}, []string{"outcome"}),
		rewards: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "campaign_rewards_total", Help: "Rewards granted, by campaign and reward type."}, []string{"campaign", "type"}),
		ruleErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "campaign_rule_errors_total", Help: "Rule or points evaluations that failed at run time (counted as no match), by campaign."}, []string{"campaign"}),
		evalDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "campaign_rule_eval_duration_seconds", Help: "Time to evaluate all active campaigns for one event.",
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 10)}),
		commitDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "campaign_commit_duration_seconds", Help: "Postgres batch commit latency.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "campaign_commit_batch_size", Help: "Decisions per committed Postgres batch.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11)}),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "campaign_commit_errors_total", Help: "Failed Postgres batch commits (retried)."}),
		loadErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "campaign_user_load_errors_total", Help: "Failed user state loads (retried)."}),
		recreated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "campaign_consumers_recreated_total", Help: "Lane consumers found missing under their owner and created again."}),
		fenced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "campaign_commit_fenced_total", Help: "Decisions refused because the stored user version moved (state reloaded)."}),
		dlq: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "campaign_dlq_parked_total", Help: "Events parked in the DLQ stream."}),
		actors: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "campaign_actors", Help: "Running user actors."}),
		users: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "campaign_resident_users", Help: "Users held in memory: by a running actor or as compact state."}),
		compact: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "campaign_compact_users", Help: "Users held in memory only as compact state (their idle actor was stopped)."}),
		passivations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "campaign_actor_passivations_total", Help: "User actors stopped because idle or over the resident cap."}),
		loads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "campaign_user_loads_total", Help: "User states loaded from Postgres into a new actor."}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "campaign_consumer_pending_messages", Help: "Messages not yet delivered to the engine, by durable consumer (consumer lag)."}, []string{"consumer"}),
		rulesLoaded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "campaign_active_campaigns", Help: "Active campaigns in the compiled rule set."}),
		owned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "campaign_partitions_owned", Help: "Partitions of EVENTS this engine owns (consumes)."}),
		ownership: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "campaign_ownership_changes_total", Help: "Lanes (ranges of partitions) this engine took (acquired), handed over (released) or lost (lease lost or commit fenced)."}, []string{"change"}),
		epochFenced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "campaign_epoch_fenced_total", Help: "Commits refused because another engine claimed the partition (a stale owner epoch)."}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "campaign_rewards_refused_total", Help: "Rewards a campaign matched but did not grant, by campaign and reason (pool_exhausted: its coupon code pool had no code left)."},
			[]string{"campaign", "reason"}),
		codesIssued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "campaign_pool_codes_issued_total", Help: "Coupon codes this engine issued to rewards, by pool."}, []string{"pool"}),
		poolLeft: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "campaign_pool_codes_left", Help: "Coupon codes a pool has left (free and unexpired), as the engine last loaded them."}, []string{"pool"}),
		poolLowWater: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "campaign_pool_low_water", Help: "A pool's low-water mark: at or below it codes left, the pool is low (alert CouponPoolLow)."}, []string{"pool"}),
		poolCampaigns: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "campaign_pool_active_campaigns", Help: "Active campaigns taking codes from a pool, as the engine last loaded them (the pool alerts need one)."}, []string{"pool"}),
	}
	for _, change := range []string{"acquired", "released", "lost"} {
		m.ownership.WithLabelValues(change)
	}
	for _, outcome := range []string{"applied", "rejected", "duplicate", "redelivered", "parked"} {
		m.processed.WithLabelValues(outcome)
	}
	for _, c := range []prometheus.Collector{m.received, m.rejected, m.processed, m.rewards, m.ruleErrors,
		m.evalDuration, m.commitDuration, m.batchSize, m.commitErrors, m.loadErrors, m.fenced, m.recreated, m.dlq,
		m.actors, m.users, m.compact, m.passivations, m.loads, m.pending, m.rulesLoaded, m.owned, m.ownership, m.epochFenced,
		m.refused, m.codesIssued, m.poolLeft, m.poolLowWater, m.poolCampaigns, m.stages.vec} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register engine metrics: %w", err)
		}
	}
	return m, nil
}
