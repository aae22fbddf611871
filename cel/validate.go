package cel

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)

// FieldError is one problem with a campaign field. Line and Column (1-based) are set for
// problems inside a CEL expression (Field "rule" or "reward.points") and zero otherwise.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
}

// CampaignError is returned by ValidateCampaign. Fields lists every problem, compile
// issues included (with their field, line and column), so an HTTP handler can answer 400
// with Fields as its errors array. Issues repeats the compile issues alone.
type CampaignError struct {
	Fields []FieldError
	Issues []Issue
}

// Error joins the problems as "field: message" or "field:line:column: message".
func (e *CampaignError) Error() string {
	var b strings.Builder
	b.WriteString("invalid campaign: ")
	for i, f := range e.Fields {
		if i > 0 {
			b.WriteString("; ")
		}
		if f.Line > 0 {
			fmt.Fprintf(&b, "%s:%d:%d: %s", f.Field, f.Line, f.Column, f.Message)
		} else {
			fmt.Fprintf(&b, "%s: %s", f.Field, f.Message)
		}
	}
	return b.String()
}

// ValidateCampaign checks c's fields and compiles its rule and points expression. It
// returns nil or a *CampaignError listing every problem: id must be a slug
// ([a-z0-9][a-z0-9-]{0,63}), name non-empty, status and reward.type known values,
// reward.points set for points rewards (and only for them), starts_at before ends_at,
// limits not negative, and rule and reward.points valid CEL (see Compile and
// CompilePoints). It does not modify c.
func ValidateCampaign(c *Campaign) error {
	_, err := compileCampaign(c)
	return err
}

// compileCampaign validates c and returns it compiled.
func compileCampaign(c *Campaign) (*Compiled, error) {
	var ce CampaignError
	add := func(field, format string, args ...any) {
		ce.Fields = append(ce.Fields, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if c == nil {
		add("campaign", "is missing")
		return nil, &ce
	}
	if !idPattern.MatchString(c.ID) {
		add("id", "must match [a-z0-9][a-z0-9-]{0,63}, got %q", c.ID)
	}
	if strings.TrimSpace(c.Name) == "" {
		add("name", "is required")
	}
	switch c.Status {
	case StatusDraft, StatusActive, StatusPaused, StatusArchived:
	default:
		add("status", "must be one of %s, %s, %s, %s; got %q", StatusDraft, StatusActive, StatusPaused, StatusArchived, c.Status)
	}
	switch c.Reward.Type {
	case RewardPoints:
		if strings.TrimSpace(string(c.Reward.Points)) == "" {
			add("reward.points", "is required for %s rewards", RewardPoints)
		}
	case RewardCoupon, RewardFreeShipping, RewardNotification:
		if c.Reward.Points != "" {
			add("reward.points", "is only allowed for %s rewards", RewardPoints)
		}
	default:
		add("reward.type", "must be one of %s, %s, %s, %s; got %q", RewardPoints, RewardCoupon, RewardFreeShipping, RewardNotification, c.Reward.Type)
	}
	if c.TimeZone != "" {
		if _, err := time.LoadLocation(c.TimeZone); err != nil || c.TimeZone == "Local" {
			add("time_zone", "must be an IANA time zone such as Europe/Paris; got %q", c.TimeZone)
		}
	}
	if c.Reward.ExpiresIn != "" {
		d, err := time.ParseDuration(c.Reward.ExpiresIn)
		switch {
		case c.Reward.Type != RewardPoints:
			add("reward.expires_in", "is only allowed for %s rewards", RewardPoints)
		case err != nil || d < time.Hour:
			add("reward.expires_in", "must be a duration of at least 1h such as 8760h; got %q", c.Reward.ExpiresIn)
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

	out := &Compiled{Campaign: *c}
	addCompile := func(err error) {
		cerr, ok := err.(*CompileError)
		if !ok {
			add("rule", "%v", err)
			return
		}
		for _, is := range cerr.Issues {
			ce.Fields = append(ce.Fields, FieldError{Field: cerr.Field, Message: is.Message, Line: is.Line, Column: is.Column})
			ce.Issues = append(ce.Issues, is)
		}
	}
	var err error
	if out.rule, err = Compile(c.Rule); err != nil {
		addCompile(err)
	}
	if c.Reward.Type == RewardPoints && strings.TrimSpace(string(c.Reward.Points)) != "" {
		if out.points, err = CompilePoints(string(c.Reward.Points)); err != nil {
			addCompile(err)
		}
	}
	if len(ce.Fields) > 0 {
		return nil, &ce
	}
	// Own the schedule so later changes to the caller's times do not leak in.
	if c.StartsAt != nil {
		t := *c.StartsAt
		out.Campaign.StartsAt = &t
	}
	if c.EndsAt != nil {
		t := *c.EndsAt
		out.Campaign.EndsAt = &t
	}
	return out, nil
}
