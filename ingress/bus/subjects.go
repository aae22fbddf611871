package bus

import (
	"strconv"
	"strings"
)

// Every subject the product publishes to or consumes from is built and parsed here
// (DESIGN §5). Tokens are event.Token of a user id; campaign ids are slugs, so both are
// single subject tokens.

// EventSubject is the subject a producer publishes an event of the user with token to:
// events.<token>.
func EventSubject(token string) string { return "events." + token }

// PartitionFilter is the stored subject filter of partition p: <p>.events.*.
func PartitionFilter(p int) string { return strconv.Itoa(p) + ".events.*" }

// StoredSubject is an EVENTS subject as stored, after the partition transform:
// <partition>.events.<token>.
type StoredSubject struct {
	Partition int
	// Token is the user's subject token (event.ParseToken recovers the user id).
	Token string
}

// ParseStoredSubject splits a stored EVENTS subject; ok is false when s is not one.
func ParseStoredSubject(s string) (sub StoredSubject, ok bool) {
	p, rest, found := strings.Cut(s, ".")
	if !found {
		return StoredSubject{Partition: -1}, false
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 {
		return StoredSubject{Partition: -1}, false
	}
	token, found := strings.CutPrefix(rest, "events.")
	if !found || token == "" || strings.ContainsAny(token, ".*> ") {
		return StoredSubject{Partition: n}, false
	}
	return StoredSubject{Partition: n, Token: token}, true
}

// RewardSubject is the REWARDS subject of a reward: rewards.<campaign>.<token>.
func RewardSubject(campaignID, userToken string) string {
	return "rewards." + campaignID + "." + userToken
}

// PointsExpiredSubject is the LOYALTY subject of a points-expired notice:
// loyalty.points_expired.<token>.
func PointsExpiredSubject(userToken string) string { return "loyalty.points_expired." + userToken }

// TierChangedSubject is the LOYALTY subject of a tier-changed notice:
// loyalty.tier_changed.<token>.
func TierChangedSubject(userToken string) string { return "loyalty.tier_changed." + userToken }

// DLQSubject is the DLQ subject of an event parked from partition p: dlq.<p>.
func DLQSubject(p int) string { return "dlq." + strconv.Itoa(p) }
