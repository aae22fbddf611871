package campaign

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/campaignmanager/campaignmanager/ingress/event"
)

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)

// PoolIDPattern is the form of a coupon code pool's id: a slug like a campaign id.
var PoolIDPattern = idPattern

// Size limits of a campaign's fields, in characters (code points) unless said otherwise.
const (
	MaxNameChars        = 200
	MaxDescriptionChars = 4096
	// MaxExprChars bounds rule and reward.points, as the CEL compiler does.
	MaxExprChars = 8192
	// MaxDataBytes bounds reward.data, JSON-encoded.
	MaxDataBytes     = 16 << 10
	MaxTimeZoneChars = 64
)

// tooLong reports whether s holds more than n characters.
func tooLong(s string, n int) bool { return len(s) > n && utf8.RuneCountInString(s) > n }

// Validate checks c's fields without compiling its expressions (package cel compiles
// them): id must be a slug ([a-z0-9][a-z0-9-]{0,63}), name non-empty, sizes within
// their limits (name MaxNameChars, description MaxDescriptionChars, rule and
// reward.points MaxExprChars, reward.data MaxDataBytes encoded, time_zone
// MaxTimeZoneChars), status and
// reward.type known values, reward.points set for points rewards (and only for them),
// reward.expires_in a duration of at least 1h for points rewards only, reward.pool a pool
// id (the same form as a campaign id) for coupon and free_shipping rewards only, time_zone an IANA
// zone, starts_at before ends_at, limits not negative. It returns nil or every problem as
// a *event.FieldError, joined. It does not modify c.
func (c *Campaign) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, &event.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	if !idPattern.MatchString(c.ID) {
		add("id", "must match [a-z0-9][a-z0-9-]{0,63}, got %q", c.ID)
	}
	if strings.TrimSpace(c.Name) == "" {
		add("name", "is required")
	}
	for _, f := range []struct {
		field, v string
		max      int
	}{
		{"name", c.Name, MaxNameChars},
		{"description", c.Description, MaxDescriptionChars},
		{"rule", c.Rule, MaxExprChars},
		{"time_zone", c.TimeZone, MaxTimeZoneChars},
	} {
		if tooLong(f.v, f.max) {
			add(f.field, "must hold at most %d characters, got %d", f.max, utf8.RuneCountInString(f.v))
		}
	}
	switch c.Status {
	case StatusDraft, StatusActive, StatusPaused, StatusArchived:
	default:
		add("status", "must be one of %s, %s, %s, %s; got %q", StatusDraft, StatusActive, StatusPaused, StatusArchived, c.Status)
	}
	if err := c.Reward.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.TimeZone != "" && !tooLong(c.TimeZone, MaxTimeZoneChars) {
		if _, err := time.LoadLocation(c.TimeZone); err != nil || c.TimeZone == "Local" {
			add("time_zone", "must be an IANA time zone such as Europe/Paris; got %q", c.TimeZone)
		}
	}
	if c.StartsAt != nil && c.EndsAt != nil && !c.StartsAt.Before(*c.EndsAt) {
		add("ends_at", "must be after starts_at")
	}
	for _, l := range []struct {
		field string
		v     int64
	}{
		{"limits.per_user", c.Limits.PerUser},
		{"limits.per_user_per_day", c.Limits.PerUserPerDay},
		{"limits.total_rewards", c.Limits.TotalRewards},
		{"limits.total_points", c.Limits.TotalPoints},
	} {
		if l.v < 0 {
			add(l.field, "must not be negative")
		}
	}
	return errors.Join(errs...)
}

// Validate checks a reward's fields (see Campaign.Validate), naming them "reward.*":
// reward.points at most MaxExprChars characters, reward.data at most MaxDataBytes as JSON.
func (r *Reward) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, &event.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	switch r.Type {
	case RewardPoints:
		if strings.TrimSpace(string(r.Points)) == "" {
			add("reward.points", "is required for %s rewards", RewardPoints)
		}
	case RewardCoupon, RewardFreeShipping, RewardNotification:
		if r.Points != "" {
			add("reward.points", "is only allowed for %s rewards", RewardPoints)
		}
	default:
		add("reward.type", "must be one of %s, %s, %s, %s; got %q", RewardPoints, RewardCoupon, RewardFreeShipping, RewardNotification, r.Type)
	}
	if r.Pool != "" {
		switch {
		case r.Type != RewardCoupon && r.Type != RewardFreeShipping:
			add("reward.pool", "is only allowed for %s and %s rewards", RewardCoupon, RewardFreeShipping)
		case !PoolIDPattern.MatchString(r.Pool):
			add("reward.pool", "must be a pool id matching [a-z0-9][a-z0-9-]{0,63}, got %q", r.Pool)
		}
	}
	if tooLong(string(r.Points), MaxExprChars) {
		add("reward.points", "must hold at most %d characters, got %d", MaxExprChars, utf8.RuneCountInString(string(r.Points)))
	}
	if r.Data != nil {
		switch b, err := json.Marshal(r.Data); {
		case err != nil:
			add("reward.data", "must be JSON: %v", err)
		case len(b) > MaxDataBytes:
			add("reward.data", "must be at most %d bytes as JSON, got %d", MaxDataBytes, len(b))
		}
	}
	if r.ExpiresIn != "" {
		d, err := time.ParseDuration(r.ExpiresIn)
		switch {
		case r.Type != RewardPoints:
			add("reward.expires_in", "is only allowed for %s rewards", RewardPoints)
		case err != nil || d < time.Hour:
			add("reward.expires_in", "must be a duration of at least 1h such as 8760h; got %q", r.ExpiresIn)
		}
	}
	return errors.Join(errs...)
}
