package console

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/campaignmanager/campaignmanager/ingress/api"
)

// CSP is the Content-Security-Policy of every console response: scripts, styles, images
// and API calls from campaignd itself only; no inline script or style, no framing, no
// base tag, forms posting nowhere else.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// Prefix is the path the console is served under.
const Prefix = "/console"

//go:embed assets
var embedded embed.FS

// asset is one embedded file, ready to send.
type asset struct {
	body  []byte
	ctype string
	etag  string
}

// contentTypes are the types of the files the console may embed; load refuses others, so
// a browser is never left to guess (nosniff).
var contentTypes = map[string]string{
	".html": fiber.MIMETextHTMLCharsetUTF8,
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
}

// site is every embedded file by its path under assets/ ("index.html", "js/app.js").
var site = mustLoad(embedded)

// load reads every file under assets/ with its content type and ETag (a hash of the
// bytes). A file of a type not in contentTypes is an error.
func load(fsys fs.FS) (map[string]asset, error) {
	root, err := fs.Sub(fsys, "assets")
	if err != nil {
		return nil, err
	}
	out := map[string]asset{}
	err = fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ctype, ok := contentTypes[path.Ext(p)]
		if !ok {
			return fmt.Errorf("console asset %s: no content type for %q", p, path.Ext(p))
		}
		body, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		out[p] = asset{body: body, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if _, ok := out["index.html"]; !ok {
		return nil, fmt.Errorf("console: assets/index.html is missing")
	}
	return out, nil
}

// mustLoad is load for the files compiled into the binary: a failure is a build mistake
// (an asset of an unknown type, no index), which the package's tests catch.
func mustLoad(fsys fs.FS) map[string]asset {
	m, err := load(fsys)
	if err != nil {
		panic(err)
	}
	return m
}

// Routes are the console's routes: GET /console (the page) and GET /console/* (its
// scripts, styles and images). Both are public: the assets hold no data, and every API
// call the page makes carries the admin's token and passes the API's own guard.
func Routes() api.Group {
	const tag = "console"
	return api.Group{
		Tags: []api.Tag{{Name: tag, Description: "The web console for campaign managers: a page and its embedded assets; it calls this API with the admin's token."}},
		Routes: []api.Route{
			{Method: "GET", Path: Prefix, Access: api.Public, Tag: tag, OperationID: "getConsole",
				Summary: "The web console (log in with an admin account)", Handler: serveIndex,
				ResponseType: fiber.MIMETextHTMLCharsetUTF8, Statuses: []int{200, 304}},
			{Method: "GET", Path: Prefix + "/*", Access: api.Public, Tag: tag, OperationID: "getConsoleAsset",
				Summary: "The web console's embedded scripts, styles and images", Handler: serveAsset,
				ResponseType: "application/octet-stream", Statuses: []int{200, 304, 404}},
		},
	}
}

func serveIndex(c *fiber.Ctx) error { return send(c, "index.html") }

func serveAsset(c *fiber.Ctx) error {
	p := c.Params("*")
	if p == "" {
		p = "index.html"
	}
	return send(c, p)
}

// send answers the embedded file p with the console's security headers; it revalidates
// with the ETag on every load (no-cache), so a new binary's assets are used at once.
func send(c *fiber.Ctx, p string) error {
	h := &c.Response().Header
	h.Set("Content-Security-Policy", CSP)
	h.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	h.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	h.Set(fiber.HeaderXFrameOptions, "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	f, ok := site[p]
	if !ok {
		return api.Problemf(fiber.StatusNotFound, "the console has no file "+strings.TrimPrefix(p, "/"))
	}
	h.Set(fiber.HeaderCacheControl, "no-cache")
	h.Set(fiber.HeaderETag, f.etag)
	if match := c.Get(fiber.HeaderIfNoneMatch); match != "" && strings.Contains(match, f.etag) {
		c.Status(fiber.StatusNotModified)
		return nil
	}
	h.Set(fiber.HeaderContentType, f.ctype)
	return c.Send(f.body)
}
