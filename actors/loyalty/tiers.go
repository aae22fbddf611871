package loyalty

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/campaignmanager/campaignmanager/ingress/event"
)

// Tier bases.
const (
	TierBasisLifetimePoints = "lifetime_points"
	TierBasisSpend          = "spend"
)

// TierConfig defines the tiers: a user qualifies for the highest tier whose threshold
// the basis reaches (lifetime points, or spend within Window before the event).
// Upgrades apply at once; a user who no longer qualifies drops one tier at the first
// event of a later month than the last change or review.
type TierConfig struct {
	Version   int64     `json:"version"`
	Basis     string    `json:"basis"`
	Window    string    `json:"window,omitempty"`
	Tiers     []Tier    `json:"tiers"`
	UpdatedBy string    `json:"updated_by,omitempty"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// Tier is one level; Threshold is in the basis' unit (points or money).
type Tier struct {
	Name      string  `json:"name"`
	Threshold float64 `json:"threshold"`
}

var tierName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// WindowDuration is the spend window; zero for the lifetime basis.
func (c *TierConfig) WindowDuration() time.Duration {
	d, _ := time.ParseDuration(c.Window)
	return d
}

// MaxTiers is the most tiers a configuration may hold.
const MaxTiers = 32

// Validate reports every problem of c as a *event.FieldError naming its field, joined;
// nil when c is valid.
func (c *TierConfig) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, &event.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	switch c.Basis {
	case TierBasisLifetimePoints:
		if c.Window != "" {
			add("window", "only for the spend basis")
		}
	case TierBasisSpend:
		if d, err := time.ParseDuration(c.Window); err != nil || d < 24*time.Hour {
			add("window", "must be a duration of at least 24h such as 8760h, got %q", c.Window)
		}
	default:
		add("basis", "must be %s or %s, got %q", TierBasisLifetimePoints, TierBasisSpend, c.Basis)
	}
	if len(c.Tiers) > MaxTiers {
		add("tiers", "at most %d tiers, got %d", MaxTiers, len(c.Tiers))
		return errors.Join(errs...)
	}
	seen := map[string]bool{}
	for i, t := range c.Tiers {
		if !tierName.MatchString(t.Name) {
			add(fmt.Sprintf("tiers[%d].name", i), "must match %s, got %q", tierName, t.Name)
		}
		if seen[t.Name] {
			add(fmt.Sprintf("tiers[%d].name", i), "%q appears twice", t.Name)
		}
		seen[t.Name] = true
		if t.Threshold <= 0 || (i > 0 && t.Threshold <= c.Tiers[i-1].Threshold) {
			add(fmt.Sprintf("tiers[%d].threshold", i), "must be above 0 and above the tier before")
		}
	}
	return errors.Join(errs...)
}
