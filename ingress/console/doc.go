// Package console is campaignd's web console for campaign managers (DESIGN §13), served
// at /console from files embedded in the binary: log in with an admin account, list,
// write, check, try, activate, pause and archive campaigns, compare their versions, see
// their results per day, look users up (state, tier, rewards, coupons, ledger), and, for
// the admin role, the dead-letter queue, the audit log, admins and API keys.
//
// The console is a client of the REST API and nothing else: the page calls the same
// /v1 routes as campaignctl, with the admin's JWT, which the page keeps in memory only
// (never in localStorage or a cookie; a reload asks to log in again). What a role may not
// do is not offered, and the server still checks every call. The two routes here serve
// static files only, so they are public; package ingress mounts them from the route
// table (Routes). Every answer carries a strict Content-Security-Policy (CSP: no inline
// script or style, nothing from another origin) and X-Content-Type-Options: nosniff.
//
// # Why plain ES modules
//
// The page is a handful of JavaScript modules (assets/js), one stylesheet and one HTML
// file, loaded by the browser as they are: no framework, no bundler, no npm, no build
// step, and nothing vendored. So `make run` and `make test` need no JavaScript toolchain,
// the binary carries everything (it works on a machine with no internet, and nothing is
// fetched from a CDN), and a diff of the console is a diff of what the browser runs.
// The alternatives were weighed: server-side templates with htmx would put a second
// rendering of every API answer in Go and need inline attributes or a vendored library
// for the interactive parts (the rule checked as you type, the rule test, the diff, the
// chart); a framework with a committed bundle would need a toolchain to change a line
// and a lockfile to keep up to date. What the console needs from a framework is small
// and is here in a few dozen lines each: dom.js builds elements (text always goes in as
// text, never as HTML, so API data cannot inject markup), api.js wraps fetch with the
// token and problem details, app.js routes #/… addresses to pages, chart.js draws SVG
// bars, diff.js is a line diff.
//
// The console is tested in a real browser by cmd/campaignd's TestConsole… (headless
// Chromium through chromedp, against an in-process campaignd).
//
// The package owns no goroutines; its handlers are safe for concurrent use.
package console
