package ingress

import (
	"context"
	"errors"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/campaignmanager/campaignmanager/persistence"
)

func (s *Server) getUser(c *fiber.Ctx) error {
	id, err := pathParamValue(c, "id")
	if err != nil {
		return err
	}
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	u, err := s.deps.Store.GetUser(ctx, id)
	if err != nil {
		return storeProblem(err, "user "+strconv.Quote(id))
	}
	return c.JSON(u)
}

// listUserRewards pages a user's rewards oldest first; next_cursor is set when the page
// is full. A user never seen is 404.
func (s *Server) listUserRewards(c *fiber.Ctx) error {
	return userPage(s, c, "rewards", s.deps.Store.ListRewards, func(r persistence.Reward) int64 { return r.Seq })
}

// userPage answers one page of a per-user listing, oldest first: the items under key and
// next_cursor when the page is full. A user never seen is 404.
func userPage[T any](s *Server, c *fiber.Ctx, key string,
	list func(ctx context.Context, userID string, after int64, limit int) ([]T, error), cursor func(T) int64) error {
	id, err := pathParamValue(c, "id")
	if err != nil {
		return err
	}
	limit, after, err := pageParams(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	items, err := list(ctx, id, after, limit)
	if err != nil {
		return err
	}
	if len(items) == 0 && after == 0 {
		if _, err := s.deps.Store.GetUser(ctx, id); errors.Is(err, persistence.ErrNotFound) {
			return storeProblem(err, "user "+strconv.Quote(id))
		} else if err != nil {
			return err
		}
	}
	if items == nil {
		items = []T{}
	}
	out := fiber.Map{key: items}
	if len(items) == limit {
		out["next_cursor"] = strconv.FormatInt(cursor(items[len(items)-1]), 10)
	}
	return c.JSON(out)
}

type auditList struct {
	Entries    []persistence.AuditEntry `json:"entries"`
	NextCursor string                   `json:"next_cursor,omitempty"`
}

// listAudit pages the audit log oldest first, filtered by actor, target_type and
// target_id.
func (s *Server) listAudit(c *fiber.Ctx) error {
	limit, after, err := pageParams(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	es, err := s.deps.Store.ListAudit(ctx, persistence.AuditFilter{
		Actor: c.Query("actor"), TargetType: c.Query("target_type"), TargetID: c.Query("target_id"),
		AfterID: after, Limit: limit,
	})
	if err != nil {
		return err
	}
	out := auditList{Entries: es}
	if out.Entries == nil {
		out.Entries = []persistence.AuditEntry{}
	}
	if len(es) == limit {
		out.NextCursor = strconv.FormatInt(es[len(es)-1].ID, 10)
	}
	return c.JSON(out)
}
