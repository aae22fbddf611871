package ingress

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/campaignmanager/campaignmanager/cel"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// issueItem is one entry of a validation problem's errors array. Line and Column are
// 1-based and set for problems inside a CEL expression.
type issueItem struct {
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
}

// invalidCampaign turns a *cel.CampaignError into a 400 problem listing every issue; the
// first field is the problem's field. Other errors pass through.
func invalidCampaign(err error) error {
	var ce *cel.CampaignError
	if !errors.As(err, &ce) {
		return err
	}
	p := problemf(fiber.StatusBadRequest, ce.Error())
	for _, f := range ce.Fields {
		p.Errors = append(p.Errors, issueItem{Field: f.Field, Message: f.Message, Line: f.Line, Column: f.Column})
	}
	if len(ce.Fields) > 0 {
		p.Field = ce.Fields[0].Field
	}
	return p
}

// etag is the ETag of a campaign version: the version number, quoted.
func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// ifMatch reads If-Match: a version, quoted or bare, or "*". 0 means absent or any.
func ifMatch(c *fiber.Ctx) (int64, error) {
	h := strings.TrimSpace(c.Get(fiber.HeaderIfMatch))
	if h == "" || h == "*" {
		return 0, nil
	}
	v, err := strconv.ParseInt(strings.Trim(h, `"`), 10, 64)
	if err != nil || v < 1 {
		p := problemf(fiber.StatusBadRequest, `If-Match must be a campaign version, e.g. If-Match: "3" or If-Match: 3`)
		p.Field = "If-Match"
		return 0, p
	}
	return v, nil
}

// slugID makes a campaign id from a name: lower-case letters and digits joined by dashes,
// plus a short random suffix.
func slugID(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case b.Len() > 0 && !dash:
			b.WriteByte('-')
			dash = true
		}
	}
	s := strings.Trim(b.String(), "-")
	if len(s) > 48 {
		s = strings.TrimRight(s[:48], "-")
	}
	if s == "" {
		s = "campaign"
	}
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	return s + "-" + hex.EncodeToString(suffix)
}

// publishCampaign puts camp in the campaigns bucket after its Postgres commit. A failure
// is 503: the change is saved and reaches the engines at their next start at the latest.
func (s *Server) publishCampaign(c *fiber.Ctx, camp *cel.Campaign) error {
	if s.deps.Campaigns == nil {
		return nil
	}
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	if err := s.deps.Campaigns.PutCampaign(ctx, camp); err != nil {
		s.log.Error("publish campaign", "campaign_id", camp.ID, "version", camp.Version, "correlation_id", correlationID(c), "err", err)
		p := problemf(fiber.StatusServiceUnavailable, fmt.Sprintf(
			"campaign %s version %d is saved but could not be published to the engines; they load it at their next start", camp.ID, camp.Version))
		p.RetryAfter = 1
		return p
	}
	return nil
}

func (s *Server) sendCampaign(c *fiber.Ctx, status int, camp *cel.Campaign) error {
	c.Set(fiber.HeaderETag, etag(camp.Version))
	return c.Status(status).JSON(camp)
}

func (s *Server) createCampaign(c *fiber.Ctx) error {
	var camp cel.Campaign
	if err := decodeAdminJSON(c, &camp); err != nil {
		return err
	}
	generated := camp.ID == ""
	if generated {
		camp.ID = slugID(camp.Name)
	}
	if camp.Status == "" {
		camp.Status = cel.StatusDraft
	}
	if err := cel.ValidateCampaign(&camp); err != nil {
		return invalidCampaign(err)
	}
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	err := s.deps.Store.CreateCampaign(ctx, &camp, adminOf(c).Username)
	if generated && errors.Is(err, persistence.ErrConflict) {
		camp.ID = slugID(camp.Name)
		err = s.deps.Store.CreateCampaign(ctx, &camp, adminOf(c).Username)
	}
	if err != nil {
		return storeProblem(err, "campaign "+camp.ID)
	}
	if err := s.publishCampaign(c, &camp); err != nil {
		return err
	}
	c.Location("/v1/campaigns/" + camp.ID)
	return s.sendCampaign(c, fiber.StatusCreated, &camp)
}

func (s *Server) listCampaigns(c *fiber.Ctx) error {
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	cs, err := s.deps.Store.ListCampaigns(ctx)
	if err != nil {
		return err
	}
	if cs == nil {
		cs = []cel.Campaign{}
	}
	return c.JSON(fiber.Map{"campaigns": cs})
}

func (s *Server) getCampaign(c *fiber.Ctx) error {
	id, err := pathParamValue(c, "id")
	if err != nil {
		return err
	}
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	camp, err := s.deps.Store.GetCampaign(ctx, id)
	if err != nil {
		return storeProblem(err, "campaign "+id)
	}
	return s.sendCampaign(c, fiber.StatusOK, &camp)
}

func (s *Server) putCampaign(c *fiber.Ctx) error {
	id, err := pathParamValue(c, "id")
	if err != nil {
		return err
	}
	var camp cel.Campaign
	if err := decodeAdminJSON(c, &camp); err != nil {
		return err
	}
	if camp.ID != "" && camp.ID != id {
		return fieldProblem("id", fmt.Sprintf("the body's id %q differs from the path's %q", camp.ID, id))
	}
	camp.ID = id
	expected, err := ifMatch(c)
	if err != nil {
		return err
	}
	keepStatus := camp.Status == ""
	check := camp
	if keepStatus {
		check.Status = cel.StatusDraft // any valid status; the stored one is kept
	}
	if err := cel.ValidateCampaign(&check); err != nil {
		return invalidCampaign(err)
	}
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	_, after, err := s.deps.Store.ModifyCampaign(ctx, id, adminOf(c).Username, func(cur *cel.Campaign) error {
		if expected > 0 && cur.Version != expected {
			return persistence.ErrVersionMismatch
		}
		next := camp
		if keepStatus {
			next.Status = cur.Status
		}
		*cur = next
		return nil
	})
	if err != nil {
		return storeProblem(err, "campaign "+id)
	}
	if err := s.publishCampaign(c, &after); err != nil {
		return err
	}
	return s.sendCampaign(c, fiber.StatusOK, &after)
}

// errUnchanged aborts a status change that would change nothing.
var errUnchanged = errors.New("unchanged")

// setStatus moves a campaign to status as a new version. Setting the current status
// again changes nothing and answers 200; an archived campaign can only be brought back
// with PUT (409 here).
func (s *Server) setStatus(c *fiber.Ctx, status string) error {
	id, err := pathParamValue(c, "id")
	if err != nil {
		return err
	}
	expected, err := ifMatch(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	_, after, err := s.deps.Store.ModifyCampaign(ctx, id, adminOf(c).Username, func(cur *cel.Campaign) error {
		switch {
		case expected > 0 && cur.Version != expected:
			return persistence.ErrVersionMismatch
		case cur.Status == status:
			return errUnchanged
		case cur.Status == cel.StatusArchived:
			return problemf(fiber.StatusConflict, fmt.Sprintf(
				"campaign %s is archived; replace it with PUT and a status to bring it back", id))
		}
		cur.Status = status
		return nil
	})
	if errors.Is(err, errUnchanged) {
		after, err = s.deps.Store.GetCampaign(ctx, id)
	}
	if err != nil {
		return storeProblem(err, "campaign "+id)
	}
	// Publish even when unchanged: it repairs a bucket an earlier failed put left stale.
	if err := s.publishCampaign(c, &after); err != nil {
		return err
	}
	return s.sendCampaign(c, fiber.StatusOK, &after)
}

func (s *Server) archiveCampaign(c *fiber.Ctx) error  { return s.setStatus(c, cel.StatusArchived) }
func (s *Server) activateCampaign(c *fiber.Ctx) error { return s.setStatus(c, cel.StatusActive) }
func (s *Server) pauseCampaign(c *fiber.Ctx) error    { return s.setStatus(c, cel.StatusPaused) }

func (s *Server) listCampaignVersions(c *fiber.Ctx) error {
	id, err := pathParamValue(c, "id")
	if err != nil {
		return err
	}
	ctx, cancel := s.dbCtx(c)
	defer cancel()
	vs, err := s.deps.Store.ListCampaignVersions(ctx, id)
	if err != nil {
		return storeProblem(err, "campaign "+id)
	}
	return c.JSON(fiber.Map{"versions": vs})
}
