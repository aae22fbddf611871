package actors

import (
	"log/slog"
	"sync"
	"time"

	"github.com/campaignmanager/campaignmanager/cel"
)

// ruleErrorLog counts and logs the runtime errors of campaign rules and points
// expressions (a missing attribute key, a negative or too large points result, the
// runtime cost limit): each is a no-match of that campaign, never silent. A rule that
// fails on every event would flood the log, so it logs one line per campaign per
// interval, saying how many were left out since. Safe for concurrent use.
type ruleErrorLog struct {
	log     *slog.Logger
	metrics *metrics
	every   time.Duration

	mu   sync.Mutex
	seen map[string]*ruleErrorsSeen
}

type ruleErrorsSeen struct {
	logged  time.Time
	skipped int
}

func newRuleErrorLog(log *slog.Logger, m *metrics, every time.Duration) *ruleErrorLog {
	return &ruleErrorLog{log: log, metrics: m, every: every, seen: map[string]*ruleErrorsSeen{}}
}

// record counts errs, met while evaluating event eventID, and logs those due.
func (l *ruleErrorLog) record(eventID string, errs []cel.EvalError) {
	for _, re := range errs {
		l.metrics.ruleErrors.WithLabelValues(re.CampaignID).Inc()
		if skipped, ok := l.due(re.CampaignID, time.Now()); ok {
			l.log.Warn("campaign rule failed", "campaign", re.CampaignID, "event_id", eventID,
				"err", re.Err, "not_logged_since", skipped)
		}
	}
}

// due reports whether an error of campaign may be logged at now, and how many were not
// logged since the last one.
func (l *ruleErrorLog) due(campaign string, now time.Time) (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.seen[campaign]
	if s == nil {
		s = &ruleErrorsSeen{}
		l.seen[campaign] = s
	}
	if !s.logged.IsZero() && now.Sub(s.logged) < l.every {
		s.skipped++
		return 0, false
	}
	skipped := s.skipped
	s.logged, s.skipped = now, 0
	return skipped, true
}
