package ingress

import (
	"github.com/gofiber/fiber/v2"
)

type passwordChange struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// putOwnPassword lets any admin change their own password, proving the current one.
func (s *Server) putOwnPassword(c *fiber.Ctx) error {
	var req passwordChange
	if err := decodeAdminJSON(c, &req); err != nil {
		return err
	}
	if len(req.NewPassword) < 8 || len(req.NewPassword) > 72 {
		p := problemf(fiber.StatusBadRequest, "new_password must be 8 to 72 bytes")
		p.Field = "new_password"
		return p
	}
	me := adminOf(c).Username
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	_, hash, err := s.deps.Store.GetAdmin(ctx, me)
	if err != nil {
		return storeProblem(err, "admin")
	}
	if !CheckPassword(hash, req.CurrentPassword) {
		p := problemf(fiber.StatusForbidden, "current_password is wrong")
		p.Field = "current_password"
		return p
	}
	newHash, err := HashPassword(req.NewPassword)
	if err != nil {
		return err
	}
	if err := s.deps.Store.SetAdminPassword(ctx, me, newHash); err != nil {
		return storeProblem(err, "admin")
	}
	s.audit(c, "admin.change_own_password", "admin", me, nil, nil)
	return c.SendStatus(fiber.StatusNoContent)
}
