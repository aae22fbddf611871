package cel

import (
	"errors"
	"strings"

	"github.com/campaignmanager/campaignmanager/cel/campaign"
	"github.com/campaignmanager/campaignmanager/ingress/event"
)

// ValidateCampaign checks c's fields (campaign.Campaign.Validate) and compiles its rule
// and points expression (see Compile and CompilePoints). It returns nil, or every
// problem as a *event.FieldError, joined (event.Fields lists them): compile issues carry
// the field ("rule" or "reward.points") with their line and column. It does not modify c.
func ValidateCampaign(c *campaign.Campaign) error {
	_, err := compileCampaign(c)
	return err
}

// compileCampaign validates c and returns it compiled.
func compileCampaign(c *campaign.Campaign) (*Compiled, error) {
	if c == nil {
		return nil, &event.FieldError{Field: "campaign", Reason: "is missing"}
	}
	var errs []error
	if err := c.Validate(); err != nil {
		errs = append(errs, err)
	}
	out := &Compiled{Campaign: *c}
	var err error
	if out.rule, err = Compile(c.Rule); err != nil {
		errs = append(errs, compileFields(err)...)
	}
	if c.Reward.Type == campaign.RewardPoints && strings.TrimSpace(string(c.Reward.Points)) != "" {
		if out.points, err = CompilePoints(string(c.Reward.Points)); err != nil {
			errs = append(errs, compileFields(err)...)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
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

// compileFields turns a *CompileError into one field error per issue.
func compileFields(err error) []error {
	var ce *CompileError
	if !errors.As(err, &ce) {
		return []error{&event.FieldError{Field: fieldRule, Reason: err.Error()}}
	}
	out := make([]error, 0, len(ce.Issues))
	for _, is := range ce.Issues {
		out = append(out, &event.FieldError{Field: ce.Field, Reason: is.Message, Line: is.Line, Column: is.Column})
	}
	return out
}
