package cel

import (
	"fmt"
	"strings"

	"github.com/google/cel-go/common/types"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
)

// Eval reports whether the rule matches in. now is in.Event.OccurredAt. A runtime error
// such as a missing attribute key (event.attributes.rating when the event has no
// rating) is returned as an error, meaning no match; guard with has(...) or the ?.
// optional syntax to avoid it. An error from a panic inside the evaluator wraps
// ErrPanic. Eval never panics and is safe for concurrent use.
func (r *Rule) Eval(in *Input) (bool, error) {
	act, err := newActivation(in)
	if err != nil {
		return false, err
	}
	return r.eval(act)
}

func (r *Rule) eval(act *activation) (matched bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			matched, err = false, fmt.Errorf("evaluate rule: %w: %v", ErrPanic, p)
		}
	}()
	out, _, err := r.prg.Eval(act)
	if err != nil {
		return false, evalError("evaluate rule", err)
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("evaluate rule: result is %s, not bool", out.Type().TypeName())
	}
	return bool(b), nil
}

// Eval computes the points granted for in. The result is between 0 and
// loyalty.MaxPoints: a negative or larger value is an error (an int64 overflow inside the
// expression already is one). Errors are as for Rule.Eval; an error from a panic wraps ErrPanic.
// Eval never panics and is safe for concurrent use.
func (p *Points) Eval(in *Input) (int64, error) {
	act, err := newActivation(in)
	if err != nil {
		return 0, err
	}
	return p.eval(act)
}

func (p *Points) eval(act *activation) (n int64, err error) {
	defer func() {
		if r := recover(); r != nil {
			n, err = 0, fmt.Errorf("evaluate points: %w: %v", ErrPanic, r)
		}
	}()
	out, _, err := p.prg.Eval(act)
	if err != nil {
		return 0, evalError("evaluate points", err)
	}
	i, ok := out.(types.Int)
	if !ok {
		return 0, fmt.Errorf("evaluate points: result is %s, not int", out.Type().TypeName())
	}
	if i < 0 {
		return 0, fmt.Errorf("evaluate points: result %d is negative", int64(i))
	}
	if i > loyalty.MaxPoints {
		return 0, fmt.Errorf("evaluate points: result %d is over the maximum of %d points per reward", int64(i), int64(loyalty.MaxPoints))
	}
	return int64(i), nil
}

// evalError wraps an error from cel-go's Program.Eval. cel-go recovers panics itself and
// reports them as "internal error: ..."; those become ErrPanic.
func evalError(what string, err error) error {
	if strings.HasPrefix(err.Error(), "internal error: ") {
		return fmt.Errorf("%s: %w: %w", what, ErrPanic, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// EvalError is a runtime error of one campaign's rule or points expression, such as a
// missing attribute key. The campaign does not match; the event is otherwise processed.
type EvalError struct {
	CampaignID string
	Err        error
}

// Error returns "campaign <id>: <error>".
func (e EvalError) Error() string { return fmt.Sprintf("campaign %s: %v", e.CampaignID, e.Err) }

// Unwrap returns Err.
func (e EvalError) Unwrap() error { return e.Err }
