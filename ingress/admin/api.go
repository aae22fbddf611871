package admin

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
	"github.com/campaignmanager/campaignmanager/cel/campaign"
	"github.com/campaignmanager/campaignmanager/ingress/api"
	"github.com/campaignmanager/campaignmanager/ingress/event"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// CampaignSink broadcasts campaign changes to every engine (the campaigns KV bucket).
type CampaignSink interface {
	PutCampaign(ctx context.Context, c *campaign.Campaign) error
}

// TierSink broadcasts the tier configuration to every engine (the settings bucket).
type TierSink interface {
	PutTiers(ctx context.Context, c *loyalty.TierConfig) error
}

// KeySink broadcasts API key changes to every ingress (the api_keys KV bucket).
type KeySink interface {
	PutAPIKey(ctx context.Context, k persistence.APIKey) error
}

// Config configures the admin API.
type Config struct {
	// JWTSecret signs admin tokens (HS256); at least 32 bytes.
	JWTSecret []byte
	// TokenTTL is the life of an access token; 0 means 15 minutes.
	TokenTTL time.Duration
	// PasswordCost is the bcrypt work factor of new password hashes; 0 means 12. Tests
	// lower it to bcrypt.MinCost (a hash at 12 takes about a second under -race).
	PasswordCost int
	// Now is the clock of tokens and login rate limits; nil means time.Now.
	Now func() time.Time
	// PoolLowWater is the low-water mark of a coupon code pool created without one (0:
	// none).
	PoolLowWater int64
}

func (c *Config) setDefaults() {
	if c.TokenTTL == 0 {
		c.TokenTTL = 15 * time.Minute
	}
	if c.PasswordCost == 0 {
		c.PasswordCost = DefaultPasswordCost
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Deps are the admin API's collaborators. Store and Publisher are required; the sinks
// and DLQ are optional (a nil sink broadcasts nothing; a nil DLQ leaves the DLQ routes
// out, nil Webhooks or WebhookSender the webhook routes).
type Deps struct {
	Store *persistence.Store
	// Publisher stores admin adjustments as events of the user.
	Publisher api.EventPublisher
	Campaigns CampaignSink
	Tiers     TierSink
	Keys      KeySink
	DLQ       DLQ
	// Notices publishes the coupon_redeemed notices of redemptions (nil: none).
	Notices NoticeSink
	// Webhooks and WebhookSender, both set, add the webhook routes.
	Webhooks      WebhookSink
	WebhookSender WebhookSender
	Logger        *slog.Logger
	Registerer    prometheus.Registerer
}

// API is the admin API: its routes (Routes) and the admin guard they need (Guard). It is
// safe for concurrent use.
type API struct {
	cfg       Config
	deps      Deps
	log       *slog.Logger
	tokens    *tokenIssuer
	passwords Passwords
}

// New builds the admin API. It returns an error for a missing Store or Publisher, or a
// JWT secret shorter than 32 bytes.
func New(deps Deps, cfg Config) (*API, error) {
	cfg.setDefaults()
	if deps.Store == nil || deps.Publisher == nil {
		return nil, errors.New("admin: Store and Publisher are required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.Registerer == nil {
		deps.Registerer = prometheus.NewRegistry()
	}
	tokens, err := newTokenIssuer(cfg.JWTSecret, cfg.TokenTTL)
	if err != nil {
		return nil, err
	}
	tokens.now, tokens.logins.now = cfg.Now, cfg.Now
	a := &API{cfg: cfg, deps: deps, log: deps.Logger.With("component", "admin"), tokens: tokens,
		passwords: Passwords{Cost: cfg.PasswordCost}}
	if deps.DLQ != nil {
		a.registerDLQGauge()
	}
	return a, nil
}

// Routes is every admin route with the schemas of its bodies: token exchange, admins,
// API keys, campaigns, rules, users and loyalty, tiers, audit, coupon pools, the
// storefront's coupon checks (API key), (with a DLQ) the dead-letter stream and (with
// Webhooks and WebhookSender) outbound webhooks.
func (a *API) Routes() api.Group {
	g := a.authRoutes().Merge(a.keyRoutes(), a.campaignRoutes(), a.ruleRoutes(), a.userRoutes(), a.tierRoutes(), a.auditRoutes(),
		a.poolRoutes(), a.couponRoutes())
	if a.deps.DLQ != nil {
		g = g.Merge(a.dlqRoutes())
	}
	if a.deps.Webhooks != nil && a.deps.WebhookSender != nil {
		g = g.Merge(a.webhookRoutes())
	}
	return g
}

// audit writes an audit entry for a change the store did not audit itself. A failure is
// logged: the change itself is done.
func (a *API) audit(c *fiber.Ctx, action, targetType, targetID string, before, after any) {
	enc := func(v any) []byte {
		if v == nil {
			return nil
		}
		b, _ := json.Marshal(v)
		return b
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	err := a.deps.Store.Audit(ctx, persistence.AuditEntry{Actor: adminOf(c).Username, Action: action,
		TargetType: targetType, TargetID: targetID, Before: enc(before), After: enc(after)})
	if err != nil {
		a.log.Error("audit entry lost", "action", action, "target_id", targetID, "correlation_id", api.CorrelationID(c), "err", err)
	}
}

// schema helpers for the groups' OpenAPI bodies.
func str() fiber.Map { return fiber.Map{"type": "string"} }

var (
	integer  = fiber.Map{"type": "integer"}
	boolean  = fiber.Map{"type": "boolean"}
	number   = fiber.Map{"type": "number"}
	dateTime = fiber.Map{"type": "string", "format": "date-time"}
)

func ref(name string) fiber.Map { return fiber.Map{"$ref": "#/components/schemas/" + name} }

func obj(required []string, props fiber.Map) fiber.Map {
	m := fiber.Map{"type": "object", "properties": props}
	if required != nil {
		m["required"] = required
	}
	return m
}

// listOf is a page of a list: the items under field and, when the page is full, the
// cursor of the next one.
func listOf(field, item string) fiber.Map {
	return obj([]string{field}, fiber.Map{field: fiber.Map{"type": "array", "items": ref(item)},
		"next_cursor": fiber.Map{"type": "string", "description": "Set when the page is full: pass it as cursor for the next page"}})
}

// nullable is schema or JSON null. OpenAPI 3.1 has no nullable keyword, and a type array
// (["array", "null"]) is what client generators choke on, so it is a oneOf.
func nullable(schema fiber.Map) fiber.Map {
	return fiber.Map{"oneOf": []fiber.Map{schema, {"type": "null"}}}
}

// fieldError is a *event.FieldError: the problem names field and says reason.
func fieldError(field, reason string) error { return &event.FieldError{Field: field, Reason: reason} }
