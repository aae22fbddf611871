package admin

import (
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/campaignmanager/campaignmanager/ingress/api"
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
func (a *API) postToken(c *fiber.Ctx) error {
	var req tokenRequest
	if err := api.DecodeJSON(c, &req); err != nil {
		return err
	}
	if ok, wait := a.tokens.logins.allow(req.Username, c.IP()); !ok {
		a.log.Warn("admin login rate limited", "username", req.Username, "addr", c.IP(), "correlation_id", api.CorrelationID(c))
		p := api.Problemf(fiber.StatusTooManyRequests, "too many login attempts for this username or from this address; retry later")
		p.RetryAfter = int((wait + time.Second - 1) / time.Second)
		return p
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	adm, hash, err := a.deps.Store.GetAdmin(ctx, req.Username)
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		a.passwords.burn(req.Password)
	case err != nil:
		return err
	}
	if err != nil || !a.passwords.Check(hash, req.Password) || adm.Disabled {
		a.log.Info("admin login refused", "username", req.Username, "correlation_id", api.CorrelationID(c))
		return Unauthorized(c, `Bearer realm="campaignd"`, "wrong username or password")
	}
	tok, _, err := a.tokens.issue(adm.Username, adm.Role)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(tokenResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int64(a.tokens.ttl / time.Second)})
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

func (a *API) listAdmins(c *fiber.Ctx) error {
	ctx, cancel := api.Ctx(c)
	defer cancel()
	as, err := a.deps.Store.ListAdmins(ctx)
	if err != nil {
		return err
	}
	if as == nil {
		as = []persistence.Admin{}
	}
	return c.JSON(fiber.Map{"admins": as})
}

func (a *API) createAdmin(c *fiber.Ctx) error {
	var req adminCreate
	if err := api.DecodeJSON(c, &req); err != nil {
		return err
	}
	switch {
	case req.Username == "" || len(req.Username) > 100:
		return fieldError("username", "must hold 1 to 100 bytes")
	case len(req.Password) < 8 || len(req.Password) > 72:
		return fieldError("password", "must hold 8 to 72 bytes")
	case !validRole(req.Role):
		return fieldError("role", "must be admin, editor or viewer")
	}
	hash, err := a.passwords.Hash(req.Password)
	if err != nil {
		return err
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	if err := a.deps.Store.CreateAdmin(ctx, req.Username, hash, req.Role); err != nil {
		return api.About(err, "admin "+req.Username)
	}
	adm, _, err := a.deps.Store.GetAdmin(ctx, req.Username)
	if err != nil {
		return err
	}
	a.audit(c, "admin.create", "admin", adm.Username, nil, adm)
	return c.Status(fiber.StatusCreated).JSON(adm)
}

func (a *API) patchAdmin(c *fiber.Ctx) error {
	name, err := api.PathParam(c, "username")
	if err != nil {
		return err
	}
	var req adminPatch
	if err := api.DecodeJSON(c, &req); err != nil {
		return err
	}
	if req.Role != nil && !validRole(*req.Role) {
		return fieldError("role", "must be admin, editor or viewer")
	}
	if req.Password != nil && (len(*req.Password) < 8 || len(*req.Password) > 72) {
		return fieldError("password", "must hold 8 to 72 bytes")
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	before, _, err := a.deps.Store.GetAdmin(ctx, name)
	if err != nil {
		return api.About(err, "admin "+name)
	}
	if req.Role != nil {
		if err := a.deps.Store.SetAdminRole(ctx, name, *req.Role); err != nil {
			return api.About(err, "admin "+name)
		}
	}
	if req.Disabled != nil {
		if err := a.deps.Store.SetAdminDisabled(ctx, name, *req.Disabled); err != nil {
			return api.About(err, "admin "+name)
		}
	}
	if req.Password != nil {
		hash, err := a.passwords.Hash(*req.Password)
		if err != nil {
			return err
		}
		if err := a.deps.Store.SetAdminPassword(ctx, name, hash); err != nil {
			return api.About(err, "admin "+name)
		}
	}
	after, _, err := a.deps.Store.GetAdmin(ctx, name)
	if err != nil {
		return err
	}
	action := "admin.update"
	if req.Password != nil {
		action = "admin.update_password"
	}
	a.audit(c, action, "admin", name, before, after)
	return c.JSON(after)
}

type passwordChange struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// putOwnPassword lets any admin change their own password, proving the current one.
func (a *API) putOwnPassword(c *fiber.Ctx) error {
	var req passwordChange
	if err := api.DecodeJSON(c, &req); err != nil {
		return err
	}
	if len(req.NewPassword) < 8 || len(req.NewPassword) > 72 {
		return fieldError("new_password", "must hold 8 to 72 bytes")
	}
	me := adminOf(c).Username
	ctx, cancel := api.Ctx(c)
	defer cancel()
	_, hash, err := a.deps.Store.GetAdmin(ctx, me)
	if err != nil {
		return api.About(err, "admin")
	}
	if !a.passwords.Check(hash, req.CurrentPassword) {
		p := api.Problemf(fiber.StatusForbidden, "current_password is wrong")
		p.Field = "current_password"
		return p
	}
	newHash, err := a.passwords.Hash(req.NewPassword)
	if err != nil {
		return err
	}
	if err := a.deps.Store.SetAdminPassword(ctx, me, newHash); err != nil {
		return api.About(err, "admin")
	}
	a.audit(c, "admin.change_own_password", "admin", me, nil, nil)
	return c.SendStatus(fiber.StatusNoContent)
}

// authRoutes are token exchange, admin accounts and one's own password.
func (a *API) authRoutes() api.Group {
	role := fiber.Map{"type": "string", "enum": []string{"admin", "editor", "viewer"}}
	password := fiber.Map{"type": "string", "minLength": 8, "maxLength": 72}
	username := fiber.Map{"type": "string", "minLength": 1, "maxLength": 100}
	return api.Group{
		Tags: []api.Tag{
			{Name: "Auth", Description: "Admin access tokens: a JWT valid 15 minutes, sent as `Authorization: Bearer <token>`. Logins are rate limited (10 a minute per username, 30 per address)."},
			{Name: "Admins", Description: "Admin accounts and their roles: admin (everything), editor (campaigns), viewer (reads; rule validate and test). Changes take effect at once and are audited."},
		},
		Routes: []api.Route{
			{Method: "POST", Path: "/v1/auth/token", Access: api.Public, Tag: "Auth", OperationID: "createToken",
				Summary: "Exchange username and password for an admin access token", Handler: a.postToken, Request: "TokenRequest", Response: "Token",
				Statuses: []int{200, 400, 401, 415, 429},
				StatusNotes: map[int]string{
					401: "Wrong username or password, or a disabled admin (the same answer for each)",
					429: "Too many login attempts for this username or from this address; Retry-After says when to try again",
				}},
			{Method: "PUT", Path: "/v1/auth/password", Access: api.Viewer, Tag: "Auth", OperationID: "changeOwnPassword",
				Summary: "Change your own password (current_password, new_password)", Handler: a.putOwnPassword, Request: "PasswordChange",
				Statuses:    []int{204, 400, 403, 415},
				StatusNotes: map[int]string{204: "Changed; tokens already issued stay valid until they expire", 403: "current_password is wrong"}},
			{Method: "GET", Path: "/v1/admins", Access: api.Admin, Tag: "Admins", OperationID: "listAdmins",
				Summary: "List admins", Handler: a.listAdmins, Response: "AdminList",
				Statuses: []int{200}},
			{Method: "POST", Path: "/v1/admins", Access: api.Admin, Tag: "Admins", OperationID: "createAdmin",
				Summary: "Create an admin", Handler: a.createAdmin, Request: "AdminCreate", Response: "Admin",
				Statuses:    []int{201, 400, 409, 415},
				StatusNotes: map[int]string{409: "An admin with this username exists"}},
			{Method: "PATCH", Path: "/v1/admins/:username", Access: api.Admin, Tag: "Admins", OperationID: "updateAdmin",
				Summary: "Change an admin's role, password or disabled flag", Handler: a.patchAdmin, Request: "AdminPatch", Response: "Admin",
				Statuses: []int{200, 400, 404, 415}},
		},
		Schemas: map[string]any{
			"TokenRequest": obj([]string{"username", "password"}, fiber.Map{"username": str(), "password": fiber.Map{"type": "string", "format": "password"}}),
			"Token": obj([]string{"access_token", "token_type", "expires_in"}, fiber.Map{
				"access_token": fiber.Map{"type": "string", "description": "A JWT; send it as Authorization: Bearer <access_token>"},
				"token_type":   fiber.Map{"type": "string", "enum": []string{"Bearer"}},
				"expires_in":   fiber.Map{"type": "integer", "description": "Seconds the token is valid"}}),
			"Admin":          obj(nil, fiber.Map{"username": str(), "role": role, "disabled": boolean, "created_at": dateTime, "updated_at": dateTime}),
			"AdminList":      obj([]string{"admins"}, fiber.Map{"admins": fiber.Map{"type": "array", "items": ref("Admin")}}),
			"AdminCreate":    obj([]string{"username", "password", "role"}, fiber.Map{"username": username, "password": password, "role": role}),
			"AdminPatch":     obj(nil, fiber.Map{"role": role, "password": password, "disabled": boolean}),
			"PasswordChange": obj([]string{"current_password", "new_password"}, fiber.Map{"current_password": str(), "new_password": password}),
		},
		Examples: authExamples(),
	}
}

// authExamples are example bodies for the document.
//
//nolint:gosec // example passwords and a made-up token, not credentials
func authExamples() map[string]any {
	return map[string]any{
		"TokenRequest": fiber.Map{"username": "admin", "password": "correct horse battery"},
		"Token":        fiber.Map{"access_token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2ln", "token_type": "Bearer", "expires_in": 900},
		"AdminCreate":  fiber.Map{"username": "vera", "password": "a long passphrase", "role": "viewer"},
	}
}
