package ingress

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/campaignmanager/campaignmanager/persistence"
)

type tokenRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
}

// postToken exchanges username and password for an access token. Unknown users, wrong
// passwords and disabled admins get the same 401 after the same bcrypt work. Attempts
// are rate limited per username and per client address (429 with Retry-After), before
// any password work.
func (s *Server) postToken(c *fiber.Ctx) error {
	var req tokenRequest
	if err := decodeAdminJSON(c, &req); err != nil {
		return err
	}
	if ok, wait := s.tokens.logins.allow(req.Username, c.IP()); !ok {
		s.log.Warn("admin login rate limited", "username", req.Username, "addr", c.IP(), "correlation_id", correlationID(c))
		p := problemf(fiber.StatusTooManyRequests, "too many login attempts for this username or from this address; retry later")
		p.RetryAfter = int((wait + time.Second - 1) / time.Second)
		return p
	}
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	adm, hash, err := s.deps.Store.GetAdmin(ctx, req.Username)
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		burnPassword(req.Password)
	case err != nil:
		return err
	}
	if err != nil || !CheckPassword(hash, req.Password) || adm.Disabled {
		s.log.Info("admin login refused", "username", req.Username, "correlation_id", correlationID(c))
		return unauthorized(c, `Bearer realm="campaignd"`, "wrong username or password")
	}
	tok, _, err := s.tokens.issue(adm.Username, adm.Role)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(tokenResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int64(s.tokens.ttl / time.Second)})
}

type adminCreate struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Role     string `json:"role"`
}

type adminPatch struct {
	Role     *string `json:"role"`
	Password *string `json:"password"`
	Disabled *bool   `json:"disabled"`
}

func validRole(r string) bool { return roleRank(r) > 0 }

func fieldProblem(field, detail string) *Problem {
	p := problemf(fiber.StatusBadRequest, detail)
	p.Field = field
	return p
}

func (s *Server) listAdmins(c *fiber.Ctx) error {
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	as, err := s.deps.Store.ListAdmins(ctx)
	if err != nil {
		return err
	}
	if as == nil {
		as = []persistence.Admin{}
	}
	return c.JSON(fiber.Map{"admins": as})
}

func (s *Server) createAdmin(c *fiber.Ctx) error {
	var req adminCreate
	if err := decodeAdminJSON(c, &req); err != nil {
		return err
	}
	switch {
	case req.Username == "" || len(req.Username) > 100:
		return fieldProblem("username", "username must hold 1 to 100 bytes")
	case len(req.Password) < 8 || len(req.Password) > 72:
		return fieldProblem("password", "password must hold 8 to 72 bytes")
	case !validRole(req.Role):
		return fieldProblem("role", "role must be admin, editor or viewer")
	}
	hash, err := HashPassword(req.Password)
	if err != nil {
		return err
	}
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	if err := s.deps.Store.CreateAdmin(ctx, req.Username, hash, req.Role); err != nil {
		return storeProblem(err, "admin "+req.Username)
	}
	adm, _, err := s.deps.Store.GetAdmin(ctx, req.Username)
	if err != nil {
		return err
	}
	s.audit(c, "admin.create", "admin", adm.Username, nil, adm)
	return c.Status(fiber.StatusCreated).JSON(adm)
}

func (s *Server) patchAdmin(c *fiber.Ctx) error {
	name, err := pathParamValue(c, "username")
	if err != nil {
		return err
	}
	var req adminPatch
	if err := decodeAdminJSON(c, &req); err != nil {
		return err
	}
	if req.Role != nil && !validRole(*req.Role) {
		return fieldProblem("role", "role must be admin, editor or viewer")
	}
	if req.Password != nil && (len(*req.Password) < 8 || len(*req.Password) > 72) {
		return fieldProblem("password", "password must hold 8 to 72 bytes")
	}
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	before, _, err := s.deps.Store.GetAdmin(ctx, name)
	if err != nil {
		return storeProblem(err, "admin "+name)
	}
	if req.Role != nil {
		if err := s.deps.Store.SetAdminRole(ctx, name, *req.Role); err != nil {
			return storeProblem(err, "admin "+name)
		}
	}
	if req.Disabled != nil {
		if err := s.deps.Store.SetAdminDisabled(ctx, name, *req.Disabled); err != nil {
			return storeProblem(err, "admin "+name)
		}
	}
	if req.Password != nil {
		hash, err := HashPassword(*req.Password)
		if err != nil {
			return err
		}
		if err := s.deps.Store.SetAdminPassword(ctx, name, hash); err != nil {
			return storeProblem(err, "admin "+name)
		}
	}
	after, _, err := s.deps.Store.GetAdmin(ctx, name)
	if err != nil {
		return err
	}
	action := "admin.update"
	if req.Password != nil {
		action = "admin.update_password"
	}
	s.audit(c, action, "admin", name, before, after)
	return c.JSON(after)
}

// audit writes an audit entry for a change the store did not audit itself. A failure is
// logged, not returned: the change has been made.
func (s *Server) audit(c *fiber.Ctx, action, targetType, targetID string, before, after any) {
	enc := func(v any) json.RawMessage {
		if v == nil {
			return nil
		}
		b, _ := json.Marshal(v)
		return b
	}
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	err := s.deps.Store.Audit(ctx, persistence.AuditEntry{Actor: adminOf(c).Username, Action: action,
		TargetType: targetType, TargetID: targetID, Before: enc(before), After: enc(after)})
	if err != nil {
		s.log.Error("audit entry lost", "action", action, "target_id", targetID, "correlation_id", correlationID(c), "err", err)
	}
}
