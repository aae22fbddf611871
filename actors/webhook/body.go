package webhook

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/campaignmanager/campaignmanager/persistence"
)

// Body types (the "type" of every webhook body).
const (
	TypeRewardGranted = "reward.granted"
	TypeTest          = "webhook.test"
	// loyaltyTypePrefix starts the type of a LOYALTY notice: loyalty.<kind>, e.g.
	// loyalty.tier_changed.
	loyaltyTypePrefix = "loyalty."
)

// notice is what a subject says of a notice: its body type, its kind (a
// persistence.Notice* constant) and, for a reward, its campaign.
type notice struct {
	typ, kind, campaign string
}

// classify reads a REWARDS (rewards.<campaign>.<token>) or LOYALTY
// (loyalty.<kind>.<token>) subject; ok is false for any other.
func classify(subject string) (n notice, ok bool) {
	parts := strings.Split(subject, ".")
	if len(parts) != 3 {
		return notice{}, false
	}
	switch parts[0] {
	case "rewards":
		return notice{typ: TypeRewardGranted, kind: persistence.NoticeReward, campaign: parts[1]}, true
	case "loyalty":
		return notice{typ: loyaltyTypePrefix + parts[1], kind: parts[1]}, true
	}
	return notice{}, false
}

// wanted reports whether f selects the notice n with body data (a reward's JSON holds
// its "type").
func wanted(f persistence.WebhookFilter, n notice, data []byte) bool {
	if n.kind != persistence.NoticeReward {
		return f.Wants(n.kind)
	}
	if len(f.RewardTypes) == 0 {
		return f.WantsReward("", n.campaign) // any type passes
	}
	var r struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(data, &r)
	return f.WantsReward(r.Type, n.campaign)
}

// envelope is the body sent: {"type", "timestamp" (when the notice was stored, RFC
// 3339), "data" (the notice's JSON as published)}. The same notice always gives the
// same bytes, so every retry carries the same signed body.
func envelope(typ string, at time.Time, data []byte) []byte {
	if !json.Valid(data) {
		data, _ = json.Marshal(string(data))
	}
	typJSON, _ := json.Marshal(typ)
	out := make([]byte, 0, len(data)+96)
	out = append(out, `{"type":`...)
	out = append(out, typJSON...)
	out = append(out, `,"timestamp":"`...)
	out = at.UTC().AppendFormat(out, time.RFC3339Nano)
	out = append(out, `","data":`...)
	out = append(out, data...)
	return append(out, '}')
}
