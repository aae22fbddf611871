package cel

import "github.com/campaignmanager/campaignmanager/cel/campaign"

// EvaluateAll is evaluateAll for the external benchmarks: Evaluate without the type index.
func (rs *RuleSet) EvaluateAll(in *Input) ([]campaign.Match, []EvalError, error) {
	return rs.evaluateAll(in)
}
