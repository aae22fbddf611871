package admin

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

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

// postToken exchanges username and password for an access token. The username is
// matched as persistence.GetAdmin does (trimmed, case-folded). Unknown users, wrong
// passwords and disabled admins get the same 401 after the same bcrypt work. Attempts
// are rate limited per username and per client address (429 with Retry-After), before
// any password work.
func (a *API) postToken(c *fiber.Ctx) error {
	var req tokenRequest
	if err := api.DecodeJSON(c, &req); err != nil {
		return err
	}
	if err := a.allowPasswordCheck(c, req.Username, "login"); err != nil {
		return err
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	read := a.tokens.now()
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
	tok, _, err := a.tokens.issue(adm.Username, adm.Role, read, adm.PasswordChangedAt)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(tokenResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int64(a.tokens.ttl / time.Second)})
}

// allowPasswordCheck takes a token from the login limiter's buckets of username and of
// the client's address before a password check (what says which: "login" or
// "password change"), or answers 429 with Retry-After when either is empty.
func (a *API) allowPasswordCheck(c *fiber.Ctx, username, what string) error {
	ok, wait := a.tokens.logins.allow(username, c.IP())
	if ok {
		return nil
	}
	a.log.Warn("admin password check rate limited", "what", what, "username", username, "addr", c.IP(), "correlation_id", api.CorrelationID(c))
	p := api.Problemf(fiber.StatusTooManyRequests, "too many password attempts for this username or from this address; retry later")
	p.RetryAfter = int((wait + time.Second - 1) / time.Second)
	return p
}

// checkUsername returns the key (persistence.UsernameKey) of a new admin's username, or
// a field error: 1 to 100 bytes once trimmed, no control characters.
func checkUsername(username string) (string, error) {
	key := persistence.UsernameKey(username)
	if key == "" || len(key) > 100 || strings.IndexFunc(key, unicode.IsControl) >= 0 {
		return "", fieldError("username", "must hold 1 to 100 bytes without control characters (surrounding spaces are removed, letters lower-cased)")
	}
	return key, nil
}

// passwordError is the field error of a password CheckPassword refuses, nil otherwise.
func passwordError(field, pw, username string) error {
	if err := CheckPassword(pw, username); err != nil {
		return fieldError(field, err.Error())
	}
	return nil
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
	username, err := checkUsername(req.Username)
	if err != nil {
		return err
	}
	if err := passwordError("password", req.Password, username); err != nil {
		return err
	}
	if !validRole(req.Role) {
		return fieldError("role", "must be admin, editor or viewer")
	}
	hash, err := a.passwords.Hash(req.Password)
	if err != nil {
		return err
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	if err := a.deps.Store.CreateAdmin(ctx, username, hash, req.Role); err != nil {
		return api.About(err, "admin "+username)
	}
	adm, _, err := a.deps.Store.GetAdmin(ctx, username)
	if err != nil {
		return err
	}
	a.audit(c, "admin.create", "admin", adm.Username, nil, adm)
	return c.Status(fiber.StatusCreated).JSON(adm)
}

// patchAdmin changes an admin's role, disabled flag and password in one transaction.
// Disabling or demoting the last enabled admin with the admin role is 409; a new
// password ends the tokens issued before it.
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
	ch := persistence.AdminChange{Role: req.Role, Disabled: req.Disabled, At: a.cfg.Now()}
	if req.Password != nil {
		if err := passwordError("password", *req.Password, name); err != nil {
			return err
		}
		hash, err := a.passwords.Hash(*req.Password)
		if err != nil {
			return err
		}
		ch.PasswordHash = &hash
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	before, after, err := a.deps.Store.UpdateAdmin(ctx, name, ch)
	if err != nil {
		return api.About(err, "admin "+name)
	}
	action := "admin.update"
	if req.Password != nil {
		action = "admin.update_password"
	}
	a.audit(c, action, "admin", after.Username, before, after)
	return c.JSON(after)
}

type passwordChange struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// putOwnPassword lets any admin change their own password, proving the current one.
// The check of the current password is rate limited like logins (and shares their
// buckets). Every token issued before the change, the caller's included, stops working.
func (a *API) putOwnPassword(c *fiber.Ctx) error {
	var req passwordChange
	if err := api.DecodeJSON(c, &req); err != nil {
		return err
	}
	me := adminOf(c).Username
	if err := passwordError("new_password", req.NewPassword, me); err != nil {
		return err
	}
	if err := a.allowPasswordCheck(c, me, "password change"); err != nil {
		return err
	}
	ctx, cancel := api.Ctx(c)
	defer cancel()
	_, hash, err := a.deps.Store.GetAdmin(ctx, me)
	if err != nil {
		return api.About(err, "admin")
	}
	if !a.passwords.Check(hash, req.CurrentPassword) {
		a.log.Info("admin password change refused: wrong current password", "username", me, "correlation_id", api.CorrelationID(c))
		p := api.Problemf(fiber.StatusForbidden, "current_password is wrong")
		p.Field = "current_password"
		return p
	}
	newHash, err := a.passwords.Hash(req.NewPassword)
	if err != nil {
		return err
	}
	if _, _, err := a.deps.Store.UpdateAdmin(ctx, me, persistence.AdminChange{PasswordHash: &newHash, At: a.cfg.Now()}); err != nil {
		return api.About(err, "admin")
	}
	a.audit(c, "admin.change_own_password", "admin", me, nil, nil)
	return c.SendStatus(fiber.StatusNoContent)
}

// authRoutes are token exchange, admin accounts and one's own password.
func (a *API) authRoutes() api.Group {
	role := fiber.Map{"type": "string", "enum": []string{"admin", "editor", "viewer"}}
	password := fiber.Map{"type": "string", "minLength": MinPasswordChars, "maxLength": MaxPasswordBytes, "format": "password",
		"description": fmt.Sprintf("At least %d characters and at most %d bytes; not one character repeated, not the username, "+
			"not a common password (also with digits and symbols around it: Password2024! is refused)", MinPasswordChars, MaxPasswordBytes)}
	username := fiber.Map{"type": "string", "minLength": 1, "maxLength": 100,
		"description": "Stored trimmed and lower-cased; unique in that form (Root, \" root \" and root are one name). Logins match it the same way."}
	return api.Group{
		Tags: []api.Tag{
			{Name: "Auth", Description: "Admin access tokens: a JWT valid 15 minutes, sent as `Authorization: Bearer <token>`. Logins and the current password of a password change are rate limited together (10 a minute per username, 30 per address). A password change or reset ends every token issued before it."},
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
				Statuses: []int{204, 400, 403, 415, 429},
				StatusNotes: map[int]string{
					204: "Changed; every token issued before, this one included, stops working: log in again",
					400: "new_password breaks the password rules (the problem says which)",
					403: "current_password is wrong",
					429: "Too many password attempts for this admin or from this address (counted with logins); Retry-After says when to try again",
				}},
			{Method: "GET", Path: "/v1/admins", Access: api.Admin, Tag: "Admins", OperationID: "listAdmins",
				Summary: "List admins", Handler: a.listAdmins, Response: "AdminList",
				Statuses: []int{200}},
			{Method: "POST", Path: "/v1/admins", Access: api.Admin, Tag: "Admins", OperationID: "createAdmin",
				Summary: "Create an admin", Handler: a.createAdmin, Request: "AdminCreate", Response: "Admin",
				Statuses:    []int{201, 400, 409, 415},
				StatusNotes: map[int]string{409: "An admin with this username exists (compared trimmed and lower-cased)"}},
			{Method: "PATCH", Path: "/v1/admins/:username", Access: api.Admin, Tag: "Admins", OperationID: "updateAdmin",
				Summary: "Change an admin's role, password or disabled flag", Handler: a.patchAdmin, Request: "AdminPatch", Response: "Admin",
				Description: "The changes apply together or not at all. A new password ends every token issued before it. " +
					"There is always an enabled admin with the admin role: disabling or demoting the last one is refused.",
				Statuses:    []int{200, 400, 404, 409, 415},
				StatusNotes: map[int]string{409: "This is the last enabled admin with the admin role: enable or create another admin first"}},
		},
		Schemas: map[string]any{
			"TokenRequest": obj([]string{"username", "password"}, fiber.Map{"username": str(), "password": fiber.Map{"type": "string", "format": "password"}}),
			"Token": obj([]string{"access_token", "token_type", "expires_in"}, fiber.Map{
				"access_token": fiber.Map{"type": "string", "description": "A JWT; send it as Authorization: Bearer <access_token>"},
				"token_type":   fiber.Map{"type": "string", "enum": []string{"Bearer"}},
				"expires_in":   fiber.Map{"type": "integer", "description": "Seconds the token is valid"}}),
			"Admin": obj(nil, fiber.Map{"username": str(), "role": role, "disabled": boolean, "created_at": dateTime, "updated_at": dateTime,
				"password_changed_at": fiber.Map{"type": "string", "format": "date-time", "description": "When the password was last changed or reset; tokens issued before are refused. Absent when never"}}),
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
