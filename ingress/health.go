package ingress

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/campaignmanager/campaignmanager/ingress/api"
)

func (s *Server) healthz(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok"})
}

func (s *Server) readyz(c *fiber.Ctx) error {
	out := fiber.Map{"status": "ready"}
	if s.deps.Ready != nil {
		ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
		defer cancel()
		details, err := s.deps.Ready(ctx)
		if err != nil {
			return api.Unavailable(err.Error())
		}
		for k, v := range details {
			out[k] = v
		}
	}
	return c.JSON(out)
}
