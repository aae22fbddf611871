package bus

import (
	"strconv"
	"strings"

	"github.com/campaignmanager/campaignmanager/ingress/event"
)

// Every subject the product publishes to or consumes from is built and parsed here
// (DESIGN §5). Tokens are event.Token of a user id; campaign ids are slugs, so both are
// single subject tokens.

// The two ingest subjects of EVENTS. Storefronts and services publish to events.<token>;
// the engine's own events (admin adjustments, expiry sweeps: event.IsReserved types)
// travel on ops.<token>, which ingest identities cannot publish to. Both land in the same
// partition of the user (the transform hashes the token alone), so a user's events stay
// in one order.
const (
	KindEvents = "events"
	KindOps    = "ops"
)

// EventSubject is the subject a producer publishes an event of the user with token to:
// events.<token>.
func EventSubject(token string) string { return KindEvents + "." + token }

// OpsSubject is the subject of the engine's own events of the user with token:
// ops.<token>.
func OpsSubject(token string) string { return KindOps + "." + token }

// IngestSubject is the subject an event of type typ for the user with token is published
// to: OpsSubject for the engine's own types (event.IsReserved), else EventSubject.
func IngestSubject(typ, token string) string {
	if event.IsReserved(typ) {
		return OpsSubject(token)
	}
	return EventSubject(token)
}

// PartitionFilter is the stored subject filter of partition p: <p>.*.* (both kinds).
func PartitionFilter(p int) string { return strconv.Itoa(p) + ".*.*" }

// StoredSubject is an EVENTS subject as stored, after the partition transform:
// <partition>.<kind>.<token>.
type StoredSubject struct {
	Partition int
	// Kind is KindEvents or KindOps: the subject the event was published to.
	Kind string
	// Token is the user's subject token (event.ParseToken recovers the user id).
	Token string
}

// Published is the subject the stored event was published to: <kind>.<token>.
func (s StoredSubject) Published() string { return s.Kind + "." + s.Token }

// ParseStoredSubject splits a stored EVENTS subject; ok is false when s is not one (the
// partition is -1 when even that does not parse).
func ParseStoredSubject(s string) (sub StoredSubject, ok bool) {
	p, rest, found := strings.Cut(s, ".")
	if !found {
		return StoredSubject{Partition: -1}, false
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 {
		return StoredSubject{Partition: -1}, false
	}
	kind, token, found := strings.Cut(rest, ".")
	if !found || (kind != KindEvents && kind != KindOps) || token == "" || strings.ContainsAny(token, ".*> ") {
		return StoredSubject{Partition: n}, false
	}
	return StoredSubject{Partition: n, Kind: kind, Token: token}, true
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

// CouponRedeemedSubject is the LOYALTY subject of a coupon-redeemed notice:
// loyalty.coupon_redeemed.<token>.
func CouponRedeemedSubject(userToken string) string { return "loyalty.coupon_redeemed." + userToken }

// DLQSubject is the DLQ subject of an event parked from partition p: dlq.<p>.
func DLQSubject(p int) string { return "dlq." + strconv.Itoa(p) }
