package main

// The console (ingress/console) driven in a real browser: Debian's chromium, headless,
// through chromedp, against an in-process campaignd whose engine really processes the
// events the test posts.

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// chromiumPath finds the browser: $CHROMIUM, else chromium on PATH, else
// /usr/bin/chromium. A missing browser fails the test: CI installs it (.ci/run).
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("CHROMIUM=%s: %v", p, err)
		}
		return p
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	t.Fatal("no Chromium for the console test: install Debian's chromium (apt-get install chromium; .ci/run does) " +
		"or set CHROMIUM to a Chromium or Chrome binary")
	return ""
}

// browser is one headless Chromium tab on a campaignd, for one test. It records what the
// page must never do: throw, log an error or a CSP violation, or fetch from anywhere
// but campaignd.
type browser struct {
	t     *testing.T
	ctx   context.Context
	base  string
	shots string

	mu       sync.Mutex
	problems []string
}

// newBrowser starts Chromium at a 1280×800 window on a fresh profile, with everything
// that would reach out to the network switched off (the machine may have none).
func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	shots := os.Getenv("CONSOLE_SCREENSHOTS")
	if shots == "" {
		shots = filepath.Join(t.TempDir(), "screenshots")
	}
	require.NoError(t, os.MkdirAll(shots, 0o755))
	t.Logf("console screenshots in %s", shots)

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter,AutofillServerCommunication"),
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("lang", "en-US"),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	b := &browser{t: t, base: base, shots: shots}
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithListener(b.watch))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	b.ctx = ctx
	// The first action starts the browser, which lives as long as the context it is given:
	// the test's, not a step's.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return b
}

// watch records the page's exceptions, console errors, CSP violations and requests
// that leave campaignd. It runs on chromedp's reader goroutine, so it only appends.
func (b *browser) watch(ev any) {
	var problem string
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		problem = "uncaught exception: " + d.Text
		if d.Exception != nil {
			problem += " " + d.Exception.Description
		}
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			var parts []string
			for _, a := range ev.Args {
				parts = append(parts, a.Description+string(a.Value))
			}
			problem = "console." + string(ev.Type) + ": " + strings.Join(parts, " ")
		}
	case *log.EventEntryAdded:
		// Failed API calls (a 400 for a rule with a typo, a 412) are logged by Chromium
		// with source "network"; they are part of the test. Anything else at error
		// level (a CSP violation is "security") is a fault.
		if ev.Entry.Level == log.EntryLevelError && ev.Entry.Source != log.EntrySourceNetwork {
			problem = fmt.Sprintf("browser log (%s): %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
		}
	case *network.EventRequestWillBeSent:
		u := ev.Request.URL
		if !strings.HasPrefix(u, b.base+"/") && !strings.HasPrefix(u, "data:") {
			problem = "request outside campaignd: " + u
		}
	}
	if problem != "" {
		b.mu.Lock()
		b.problems = append(b.problems, problem)
		b.mu.Unlock()
	}
}

// clean fails the test if the page did anything watch records.
func (b *browser) clean(step string) {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.problems) > 0 {
		b.t.Fatalf("%s: the page misbehaved:\n%s", step, strings.Join(b.problems, "\n"))
	}
}

const stepTimeout = 15 * time.Second

// fail saves a screenshot of the moment and fails the test naming the step.
func (b *browser) fail(step string, err error) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	if png, serr := chromedp.Run(ctx, chromedp.CaptureScreenshot()); serr == nil {
		name := filepath.Join(b.shots, "FAILED-"+strings.NewReplacer(" ", "-", "/", "-").Replace(step)+".png")
		if os.WriteFile(name, png, 0o644) == nil {
			b.t.Logf("screenshot of the failure: %s", name)
		}
	}
	if text, terr := chromedp.Run(ctx, chromedp.Evaluate[string](`location.hash + "\n" + document.querySelector('main').innerText.slice(0, 3000)`)); terr == nil {
		b.t.Logf("the page at the failure: %s", text)
	}
	b.mu.Lock()
	problems := strings.Join(b.problems, "\n")
	b.mu.Unlock()
	b.t.Fatalf("%s: %v\n%s", step, err, problems)
}

// do runs actions as one step, within stepTimeout.
func (b *browser) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail(step, err)
	}
	b.clean(step)
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](b *browser, step, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.fail(step, err)
	}
	return v
}

// waitJS waits until the expression is true in the page. (chromedp's Poll builds its
// predicate with new Function, which the console's CSP forbids.)
func (b *browser) waitJS(step, expr string) {
	b.t.Helper()
	deadline := time.Now().Add(stepTimeout)
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for !eval[bool](b, step, "Boolean("+expr+")") {
		if time.Now().After(deadline) {
			b.fail(step, fmt.Errorf("not true within %s: %s", stepTimeout, expr))
		}
		<-tick.C
	}
	b.clean(step)
}

// text is the text of the first element matching the CSS selector, once visible.
func (b *browser) text(step, css string) string {
	b.t.Helper()
	b.do(step, chromedp.WaitVisible(chromedp.CSS(css)))
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		b.fail(step, err)
	}
	return strings.TrimSpace(s)
}

// page waits until the console has rendered the page at path (#path).
func (b *browser) page(path string) {
	b.t.Helper()
	b.waitJS("page "+path, fmt.Sprintf(`document.querySelector('main .view[data-ready="true"]')?.dataset.page === %q`, path))
}

// open goes to the console page at path (#path) and waits for it.
func (b *browser) open(path string) {
	b.t.Helper()
	b.do("open "+path, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`location.hash = %q`, "#"+path)))
	b.page(path)
}

// shot saves a screenshot of the viewport as name.png.
func (b *browser) shot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	// Notifications from earlier steps would cover the picture.
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById('toast').replaceChildren()`)); err != nil {
		b.fail("screenshot "+name, err)
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.fail("screenshot "+name, err)
	}
	require.NoError(b.t, os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644))
}

// scrollTo brings the element matching css to the middle of the window, for a screenshot.
func (b *browser) scrollTo(css string) {
	b.t.Helper()
	b.do("scroll to "+css, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).scrollIntoView({block: 'center'})`, css)))
}

// typeInto replaces the value of the field matching css by typing text, key by key,
// as a person would (every key fires the input event the console listens to).
func (b *browser) typeInto(step, css, text string) {
	b.t.Helper()
	b.do(step,
		chromedp.WaitVisible(chromedp.CSS(css)),
		chromedp.Focus(chromedp.CSS(css)),
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).select()`, css)),
		chromedp.KeyEvent(text))
}

// login logs in from the login form with the keyboard only (type, Tab, type, Enter) and
// waits for the page at path.
func (b *browser) login(user, password, path string) {
	b.t.Helper()
	b.do("login form", chromedp.WaitVisible(chromedp.CSS(`#login input[name=username]`)))
	b.waitJS("the username field has the focus", `document.activeElement?.name === 'username'`)
	b.do("log in as "+user, chromedp.KeyEvent(user+"\t"+password+"\r"))
	b.page(path)
}

// logout logs out with the header's button.
func (b *browser) logout() {
	b.t.Helper()
	b.do("log out", chromedp.Click(chromedp.CSS(`#who button`)), chromedp.WaitVisible(chromedp.CSS(`#login`)))
}

func TestConsoleTakesACampaignFromTypoToRewardInARealBrowser(t *testing.T) {
	e := newEnv(t)
	e.do("POST", "/v1/admins", e.token, map[string]any{"username": "vera", "password": "viewer-password", "role": "viewer"}, http.StatusCreated, nil)
	e.do("POST", "/v1/admins", e.token, map[string]any{"username": "eddie", "password": "editor-password", "role": "editor"}, http.StatusCreated, nil)
	b := newBrowser(t, e.base)

	// The page comes with the strict CSP and nosniff.
	res := e.request("GET", "/console", "", nil)
	require.Equal(t, http.StatusOK, res.status)
	require.Contains(t, res.header.Get("Content-Security-Policy"), "script-src 'self';")
	require.Equal(t, "nosniff", res.header.Get("X-Content-Type-Options"))

	// Log in (keyboard only) and see the empty list.
	b.do("open the console", chromedp.Navigate(e.base+"/console"))
	b.do("login form", chromedp.WaitVisible(chromedp.CSS(`#login`)))
	b.shot("01-login")
	b.do("wrong password", chromedp.SendKeys(chromedp.CSS(`#login input[name=username]`), "admin"),
		chromedp.SendKeys(chromedp.CSS(`#login input[name=password]`), "not-the-password\r"))
	require.Contains(t, b.text("refused", `#login .alert-error`), "Wrong username or password")
	b.do("clear the form", chromedp.Evaluate[chromedp.Void](`document.querySelector('#login').reset(); document.querySelector('#login input[name=username]').focus()`))
	b.login("admin", adminPassword, "/campaigns")
	require.Contains(t, b.text("empty campaigns", `main .empty`), "No campaigns yet")
	b.shot("02-campaigns-empty")

	// A new campaign with a typo in the rule: the check as you type points at it.
	b.do("new campaign", chromedp.Click(chromedp.CSS(`main a[data-edit]`)))
	b.page("/campaigns/new")
	b.typeInto("name", `input[name=name]`, "Ten percent back")
	b.typeInto("id", `input[name=id]`, "console-ten")
	typo := `event.type == "purchase" && event.amout > 50`
	b.typeInto("rule with a typo", `textarea[name=rule]`, typo)
	b.typeInto("points", `input[name=points]`, "int(event.amount * 0.1)")
	b.typeInto("total points", `input[name=total_points]`, "1000")
	b.waitJS("the typo is reported", `document.querySelector('[data-check=rule]')?.dataset.state === 'invalid'`)
	where := b.text("where", `[data-check=rule] .issue .where`)
	message := b.text("message", `[data-check=rule] .issue .message`)
	require.Contains(t, message, "amout", "the message names the unknown field")
	var line, column int
	_, err := fmt.Sscanf(where, "Line %d, column %d", &line, &column)
	require.NoError(t, err, "where = %q", where)
	require.Equal(t, 1, line)
	snippet := eval[string](b, "snippet", `document.querySelector('[data-check=rule] .snippet').textContent`)
	code, caret, ok := strings.Cut(snippet, "\n")
	require.True(t, ok, "snippet %q has a caret line", snippet)
	require.Equal(t, typo, code, "the snippet shows the rule's line")
	require.Equal(t, strings.Repeat(" ", column-1)+"^", caret, "the caret is under column %d", column)
	at := strings.Index(typo, ".amout")
	require.True(t, column-1 >= at && column-1 <= at+len(".amout"), "column %d points at .amout (index %d)", column, at)
	require.True(t, eval[bool](b, "caret visible", `(() => { const c = document.querySelector('[data-check=rule] .snippet .caret'); const r = c.getBoundingClientRect(); return r.width > 0 && r.height > 0 && c.checkVisibility({opacityProperty: true, visibilityProperty: true}); })()`),
		"the caret is visible")
	require.Equal(t, "true", eval[string](b, "aria-invalid", `document.querySelector('textarea[name=rule]').getAttribute('aria-invalid')`))
	b.scrollTo(`[data-check=rule]`)
	b.shot("03-editor-caret-error")

	// Fix it: the check turns valid and shows the cost against the limit.
	b.typeInto("fixed rule", `textarea[name=rule]`, `event.type == "purchase" && event.amount > 50`)
	b.waitJS("the fixed rule is valid", `document.querySelector('[data-check=rule]')?.dataset.state === 'valid'`)
	require.Regexp(t, `Valid · cost \d+ of 10,000`, b.text("cost", `[data-check=rule] .ok`))
	b.waitJS("the points are valid", `document.querySelector('[data-check=points]')?.dataset.state === 'valid'`)
	b.scrollTo(`[data-check=rule]`)
	b.shot("04-editor-valid")

	// Save as draft.
	b.do("save as draft", chromedp.Click(chromedp.CSS(`button[data-action=save]`)))
	b.page("/campaigns/console-ten")
	require.Equal(t, "draft", b.text("status", `main h1 .badge`))
	b.shot("05-campaign-draft")

	// Try it on a sample event.
	b.do("try it tab", chromedp.Click(chromedp.CSS(`main .tabs a[href$="/test"]`)))
	b.page("/campaigns/console-ten/test")
	b.typeInto("test user", `input[name=test-user]`, "console-alice")
	b.do("run the test", chromedp.Click(chromedp.CSS(`form.tester button[type=submit]`)))
	b.waitJS("the test answered", `document.querySelector('.test-result')`)
	require.Equal(t, "true", eval[string](b, "matched", `document.querySelector('.test-result').dataset.matched`))
	require.Contains(t, b.text("verdict", `.test-result .verdict`), "12 points")
	clauses := eval[[]string](b, "clauses", `[...document.querySelectorAll('.test-result .explain tbody tr')].map(r => r.innerText.replace(/\s+/g, ' ').trim())`)
	require.Equal(t, []string{`event.type == "purchase" true`, `event.amount > 50 true`}, clauses)
	b.shot("06-try-it")

	// Activate; the engine picks it up.
	b.do("activate", chromedp.Click(chromedp.CSS(`button[data-action=activate]`)))
	b.waitJS("shown active", `document.querySelector('main .view[data-ready] h1 .badge')?.textContent === 'active'`)
	poll(t, patience, "console-ten live in the engine", func() bool {
		for _, c := range e.app.engine.Rules().Campaigns() {
			if c.ID == "console-ten" {
				return true
			}
		}
		return false
	})
	b.shot("07-campaign-active")

	// An event through the API, and some older ones for the chart.
	e.postEvent(map[string]any{"id": "console-order-1", "user_id": "console-alice", "type": "purchase", "amount": 120, "currency": "EUR"}, http.StatusAccepted)
	day := time.Now().UTC().Truncate(24 * time.Hour)
	var older []map[string]any
	for i := 1; i <= 13; i++ {
		for u := 0; u < 1+i%4; u++ {
			older = append(older, map[string]any{"id": fmt.Sprintf("console-old-%d-%d", i, u), "user_id": fmt.Sprintf("shopper-%d", u),
				"type": "purchase", "amount": 60 + 15*((i+u)%5), "occurred_at": day.Add(-time.Duration(i)*24*time.Hour + 10*time.Hour).Format(time.RFC3339)})
		}
	}
	e.do("POST", "/v1/events/batch", "key:"+e.apiKey, map[string]any{"events": older}, http.StatusOK, nil)
	e.waitUser("console-alice", 1)
	e.waitEngineIdle(patience)

	// The reward on the user's page.
	b.do("users", chromedp.Click(chromedp.CSS(`#nav a[data-nav=users]`)))
	b.page("/users")
	b.typeInto("user id", `main form.search input[name=user]`, "console-alice\r")
	b.page("/users/console-alice")
	require.Equal(t, "12", b.text("points", `[data-stat=points] .stat-value`))
	require.Equal(t, "12", b.text("reward", `tr[data-campaign=console-ten] td.points`))
	require.Equal(t, "earn", eval[string](b, "ledger", `document.querySelector('tr[data-kind]')?.dataset.kind`))
	b.shot("08-user")

	// And in the stats: today, the budget and the chart.
	b.open("/campaigns/console-ten/results")
	require.Equal(t, "1", b.text("rewards today", `[data-stat=today-rewards] .stat-value`))
	require.Equal(t, "12", b.text("points today", `[data-stat=today-points] .stat-value`))
	require.Contains(t, b.text("budget", `[data-budget=points]`), "of 1,000 points used")
	today := day.Format(time.DateOnly)
	require.Equal(t, "1", eval[string](b, "rewards bar", fmt.Sprintf(`document.querySelector('rect.bar-rewards[data-day=%q]').dataset.value`, today)))
	require.Equal(t, "12", eval[string](b, "points bar", fmt.Sprintf(`document.querySelector('rect.bar-points[data-day=%q]').dataset.value`, today)))
	require.Equal(t, 30, eval[int](b, "bars", `document.querySelectorAll('rect.bar-rewards').length`))
	b.shot("09-results")

	// The list shows today's numbers.
	b.do("campaigns", chromedp.Click(chromedp.CSS(`#nav a[data-nav=campaigns]`)))
	b.page("/campaigns")
	b.waitJS("today's numbers", `document.querySelector('tr[data-campaign=console-ten] .today')?.dataset.points === '12'`)
	b.shot("10-campaigns")

	// History: draft then active, side by side.
	b.open("/campaigns/console-ten/history")
	changed := eval[[]string](b, "diff", `[...document.querySelectorAll('.diff-table tr.row-changed')].map(r => r.innerText.replace(/\s+/g, ' ').trim())`)
	require.Len(t, changed, 1, "one line differs: %v", changed)
	require.Contains(t, changed[0], `"status": "draft"`)
	require.Contains(t, changed[0], `"status": "active"`)
	b.shot("11-history")

	// Someone else saves while the form is open: the save is refused and says who.
	b.open("/campaigns/console-ten/edit")
	var camp map[string]any
	e.do("GET", "/v1/campaigns/console-ten", e.token, nil, http.StatusOK, &camp)
	camp["name"] = "Ten percent back (eddie)"
	for _, k := range []string{"version", "created_at", "updated_at"} {
		delete(camp, k)
	}
	e.do("PUT", "/v1/campaigns/console-ten", e.login("eddie", "editor-password"), camp, http.StatusOK, nil)
	b.typeInto("description", `textarea[name=description]`, "my change")
	b.do("save", chromedp.Click(chromedp.CSS(`button[data-action=save]`)))
	require.Contains(t, b.text("conflict", `[data-conflict]`), "Changed by eddie")
	b.shot("12-conflict")
	b.do("reload", chromedp.Click(chromedp.CSS(`[data-conflict] button`)))
	b.waitJS("reloaded", `document.querySelector('main .view[data-ready] input[name=name]')?.value === 'Ten percent back (eddie)'`)

	// Operations: a refused event parked in the DLQ, discarded from the console.
	e.postEvent(map[string]any{"id": "console-redeem-1", "user_id": "console-alice", "type": "redeem", "amount": 5000}, http.StatusAccepted)
	e.waitParked("console-redeem-1")
	b.do("dead letters", chromedp.Click(chromedp.CSS(`#nav a[data-nav=dlq]`)))
	b.page("/dlq")
	require.NotEmpty(t, b.text("reason", `tr[data-dlq] td.reason`))
	b.shot("13-dlq")
	b.do("delete", chromedp.Click(chromedp.CSS(`tr[data-dlq] button.danger`)))
	b.do("confirm", chromedp.WaitVisible(chromedp.CSS(`dialog[open]`)))
	b.shot("13b-dlq-confirm")
	b.do("confirm", chromedp.Click(chromedp.CSS(`dialog[open] button.danger`)))
	require.Contains(t, b.text("emptied", `main .empty`), "empty")
	require.Empty(t, e.dlq("").Entries)

	for _, p := range []struct{ nav, path, shot string }{
		{"audit", "/audit", "14-audit"}, {"admins", "/admins", "15-admins"}, {"keys", "/keys", "16-keys"},
	} {
		b.do(p.nav, chromedp.Click(chromedp.CSS(`#nav a[data-nav=`+p.nav+`]`)))
		b.page(p.path)
		b.shot(p.shot)
	}
	require.Positive(t, eval[int](b, "keys", `document.querySelectorAll('tr[data-key]').length`))

	// A tablet: the same page fits without scrolling sideways.
	b.do("tablet", chromedp.EmulateViewport(820, 1180))
	b.open("/campaigns/console-ten/results")
	require.True(t, eval[bool](b, "no sideways scroll", `document.documentElement.scrollWidth <= window.innerWidth`))
	b.shot("17-tablet-results")
	b.do("desktop", chromedp.EmulateViewport(1280, 800))

	// A viewer sees no edit controls and no operations.
	b.logout()
	b.login("vera", "viewer-password", "/campaigns")
	require.Equal(t, 0, eval[int](b, "new campaign", `document.querySelectorAll('main [data-edit]').length`))
	require.Equal(t, []string{"campaigns", "pools", "tiers", "users"}, eval[[]string](b, "nav", `[...document.querySelectorAll('#nav a')].map(a => a.dataset.nav)`))
	b.open("/pools")
	require.False(t, eval[bool](b, "no new pool for a viewer", `Boolean(document.querySelector('#new-pool'))`))
	b.open("/tiers")
	require.False(t, eval[bool](b, "no tier editor for a viewer", `Boolean(document.querySelector('#edit-tiers'))`))
	b.open("/campaigns/console-ten")
	require.Equal(t, 0, eval[int](b, "actions", `document.querySelectorAll('main [data-action]').length`))
	b.shot("18-viewer-campaign")
	b.open("/campaigns/console-ten/edit")
	require.Contains(t, b.text("refused", `main .empty`), "may not open this page")

	// Disabled meanwhile: the next call ends the session, and logging in again (here as
	// admin) goes on at the same page.
	e.do("PATCH", "/v1/admins/vera", e.token, map[string]any{"disabled": true}, http.StatusOK, nil)
	b.do("history", chromedp.Evaluate[chromedp.Void](`location.hash = '#/campaigns/console-ten/history'`))
	require.Contains(t, b.text("session ended", `#login .alert-warn`), "Your session ended")
	b.login("admin", adminPassword, "/campaigns/console-ten/history")
	b.clean("end")
}

// choose picks value in the select matching css and fires its change event.
func (b *browser) choose(step, css, value string) {
	b.t.Helper()
	b.do(step, chromedp.WaitVisible(chromedp.CSS(css)),
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => { const s = document.querySelector(%q); s.value = %q; s.dispatchEvent(new Event('change', {bubbles: true})); })()`, css, value)))
	require.Equal(b.t, value, eval[string](b, step, fmt.Sprintf(`document.querySelector(%q).value`, css)), "%s: no option %q", step, value)
}

// waitStat waits until the pool page's number for key (left, total, …) reads want.
func (b *browser) waitStat(key, want string) {
	b.t.Helper()
	b.waitJS("pool "+key+" "+want, fmt.Sprintf(`document.querySelector('[data-stat=%s] .stat-value')?.textContent === %q`, key, want))
}

// TestConsoleManagesCouponPoolsAndACampaignTakesCodesFromOne: an editor creates a pool
// with generated codes in the console, generates and pastes more, lowers its level below
// the low-water mark, makes a free-shipping campaign take codes from it (kept when the
// campaign is edited again), cannot delete the pool while the campaign names it, deletes
// an unused one; the campaign's reward then takes a code, which the pool's counts show.
func TestConsoleManagesCouponPoolsAndACampaignTakesCodesFromOne(t *testing.T) {
	e := newEnv(t)
	e.do("POST", "/v1/admins", e.token, map[string]any{"username": "eddie", "password": "editor-password", "role": "editor"}, http.StatusCreated, nil)
	b := newBrowser(t, e.base)
	b.do("open the console", chromedp.Navigate(e.base+"/console"))
	b.login("eddie", "editor-password", "/campaigns")

	b.do("pools", chromedp.Click(chromedp.CSS(`#nav a[data-nav=pools]`)))
	b.page("/pools")
	require.Contains(t, b.text("empty", `main .empty`), "No pools yet")
	b.typeInto("name", `#new-pool input[name=name]`, "June shipping")
	b.typeInto("id", `#new-pool input[name=id]`, "june")
	b.typeInto("pattern", `#new-pool input[name=pattern]`, "ship-####-####")
	b.typeInto("count", `#new-pool input[name=count]`, "5")
	b.typeInto("low water", `#new-pool input[name=low-water]`, "2")
	b.do("create", chromedp.Click(chromedp.CSS(`button[data-action=create-pool]`)))
	b.page("/pools/june")
	b.waitStat("left", "5")
	require.Equal(t, "ok", eval[string](b, "level", `document.querySelector('main h1 [data-level]').dataset.level`))
	b.shot("20-pool-created")

	b.typeInto("generate count", `input[name=generate-count]`, "3")
	b.do("generate", chromedp.Click(chromedp.CSS(`button[data-action=generate]`)))
	b.waitStat("left", "8")
	b.typeInto("paste codes", `textarea[name=import-codes]`, "partner-1\n# from the partner\npartner-2\npartner-1\n")
	b.do("import", chromedp.Click(chromedp.CSS(`button[data-action=import]`)))
	b.waitStat("total", "10")
	b.typeInto("low water", `input[name=pool-low-water]`, "20")
	b.do("save settings", chromedp.Click(chromedp.CSS(`button[data-action=save-pool]`)))
	b.waitStat("low_water", "20")
	require.Equal(t, "low", eval[string](b, "level", `document.querySelector('main h1 [data-level]').dataset.level`))
	var pool struct {
		Total    int64 `json:"total"`
		Left     int64 `json:"left"`
		LowWater int64 `json:"low_water"`
	}
	e.do("GET", "/v1/pools/june", e.token, nil, http.StatusOK, &pool)
	require.Equal(t, int64(10), pool.Total)
	require.Equal(t, int64(20), pool.LowWater)

	// A free-shipping campaign takes its codes from the pool.
	b.open("/campaigns/new")
	b.typeInto("name", `input[name=name]`, "June free shipping")
	b.typeInto("id", `input[name=id]`, "june-ship")
	b.typeInto("rule", `textarea[name=rule]`, `event.type == "signup"`)
	require.False(t, eval[bool](b, "pool hidden for points", `document.querySelector('.pool-only').checkVisibility()`))
	b.choose("reward type", `select[name=reward-type]`, "free_shipping")
	b.choose("pool", `select[name=reward-pool]`, "june")
	b.waitJS("the rule is valid", `document.querySelector('[data-check=rule]')?.dataset.state === 'valid'`)
	b.do("save", chromedp.Click(chromedp.CSS(`button[data-action=save]`)))
	b.page("/campaigns/june-ship")
	var camp struct {
		Version int64 `json:"version"`
		Reward  struct {
			Type string `json:"type"`
			Pool string `json:"pool"`
		} `json:"reward"`
	}
	e.do("GET", "/v1/campaigns/june-ship", e.token, nil, http.StatusOK, &camp)
	require.Equal(t, "free_shipping", camp.Reward.Type)
	require.Equal(t, "june", camp.Reward.Pool)
	// Editing it again keeps the pool.
	b.open("/campaigns/june-ship/edit")
	require.Equal(t, "june", eval[string](b, "the pool is selected", `document.querySelector('select[name=reward-pool]').value`))
	b.typeInto("description", `textarea[name=description]`, "Codes from the June pool")
	b.do("save the edit", chromedp.Click(chromedp.CSS(`button[data-action=save]`)))
	b.page("/campaigns/june-ship")
	camp.Reward.Pool = ""
	e.do("GET", "/v1/campaigns/june-ship", e.token, nil, http.StatusOK, &camp)
	require.Equal(t, int64(2), camp.Version)
	require.Equal(t, "june", camp.Reward.Pool, "an edit in the console keeps the reward's pool")

	// The pool names its campaign and cannot be deleted while the campaign names it.
	b.open("/pools/june")
	b.waitJS("the campaign is listed", `document.querySelector('#pool-campaigns li[data-campaign="june-ship"]')`)
	b.do("delete", chromedp.Click(chromedp.CSS(`button[data-action=delete-pool]`)))
	b.do("confirm", chromedp.WaitVisible(chromedp.CSS(`dialog[open]`)), chromedp.Click(chromedp.CSS(`dialog[open] button.danger`)))
	refusal := b.text("refusal", `main .alert-error`)
	require.Contains(t, refusal, "in use")
	require.Contains(t, refusal, "june-ship")

	// An unused pool goes.
	b.open("/pools")
	b.typeInto("name", `#new-pool input[name=name]`, "Spare")
	b.typeInto("id", `#new-pool input[name=id]`, "spare")
	b.do("create the spare", chromedp.Click(chromedp.CSS(`button[data-action=create-pool]`)))
	b.page("/pools/spare")
	b.do("delete the spare", chromedp.Click(chromedp.CSS(`button[data-action=delete-pool]`)))
	b.do("confirm", chromedp.WaitVisible(chromedp.CSS(`dialog[open]`)), chromedp.Click(chromedp.CSS(`dialog[open] button.danger`)))
	b.page("/pools")
	require.False(t, eval[bool](b, "spare gone", `Boolean(document.querySelector('tr[data-pool="spare"]'))`))
	e.do("GET", "/v1/pools/spare", e.token, nil, http.StatusNotFound, nil)

	// Active, the campaign gives a signup one of the pool's codes.
	e.do("POST", "/v1/campaigns/june-ship/activate", e.token, nil, http.StatusOK, nil)
	e.waitActiveCampaigns(1)
	e.postEvent(map[string]any{"id": "console-signup-1", "user_id": "console-june", "type": "signup"}, http.StatusAccepted)
	poll(t, patience, "a code issued", func() bool {
		e.do("GET", "/v1/pools/june", e.token, nil, http.StatusOK, &pool)
		return pool.Left == 9
	})
	b.open("/campaigns")
	b.open("/pools")
	require.Equal(t, "9", eval[string](b, "left in the list", `document.querySelector('tr[data-pool="june"] [data-left]').dataset.left`))
	b.shot("21-pools")
	b.open("/campaigns/june-ship/results")
	require.Equal(t, "9", eval[string](b, "left in the campaign's results", `document.querySelector('#campaign-pool').dataset.left`))
	require.Contains(t, b.text("the pool is low", `#campaign-pool .alert-warn`), "low")
}

// TestConsoleManagesAWebhookEndpointAndItsDeliveries: an admin creates an endpoint in
// the console (its secret shown once), sends it a test, sees a delivery the receiver
// refused listed as failed and sends it again, disables and enables it, rotates its
// secret and deletes it.
func TestConsoleManagesAWebhookEndpointAndItsDeliveries(t *testing.T) {
	var failing atomic.Bool
	rcv := newReceiver(t, func(string, int) int {
		if failing.Load() {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	e := newEnvWith(t, webhookVars(map[string]string{"CAMPAIGN_WEBHOOK_MAX_ATTEMPTS": "2"}))
	b := newBrowser(t, e.base)
	b.do("open the console", chromedp.Navigate(e.base+"/console"))
	b.login("admin", adminPassword, "/campaigns")

	b.do("webhooks", chromedp.Click(chromedp.CSS(`#nav a[data-nav=webhooks]`)))
	b.page("/webhooks")
	require.Contains(t, b.text("empty", `main .empty`), "No endpoints yet")
	b.typeInto("url", `#new-webhook input[name=url]`, rcv.URL+"/hooks")
	b.typeInto("description", `#new-webhook input[name=description]`, "Shop mailer")
	b.do("create", chromedp.Click(chromedp.CSS(`button[data-action=create-webhook]`)))
	b.waitJS("the secret is shown", `document.querySelector('[data-secret] input')`)
	secret := eval[string](b, "the secret", `document.querySelector('[data-secret] input').value`)
	require.True(t, strings.HasPrefix(secret, "whsec_"), "secret %q", secret)
	var hooks struct {
		Webhooks []struct {
			ID string `json:"id"`
		} `json:"webhooks"`
	}
	e.do("GET", "/v1/webhooks", e.token, nil, http.StatusOK, &hooks)
	require.Len(t, hooks.Webhooks, 1)
	id := hooks.Webhooks[0].ID
	b.do("done", chromedp.Click(chromedp.CSS(`[data-secret] button`)))
	b.page("/webhooks/" + id)

	b.do("send a test", chromedp.Click(chromedp.CSS(`button[data-action=test]`)))
	b.waitJS("the test succeeded", `document.querySelector('[data-test]')?.dataset.test === 'succeeded'`)
	require.Equal(t, 1, rcv.count())

	// A reward the receiver refuses twice is failed; sent again, it arrives.
	failing.Store(true)
	e.createCampaign(tenPercent)
	e.postEvent(map[string]any{"id": "console-hook-1", "user_id": "console-hook", "type": "purchase", "amount": 100}, http.StatusAccepted)
	var failed struct {
		Deliveries []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"deliveries"`
	}
	poll(t, patience, "the delivery failed", func() bool {
		e.do("GET", "/v1/webhooks/"+id+"/deliveries?status=failed", e.token, nil, http.StatusOK, &failed)
		return len(failed.Deliveries) == 1
	})
	failing.Store(false)
	b.choose("failed only", `select[name=delivery-status]`, "failed")
	b.waitJS("the failed delivery is listed", fmt.Sprintf(`document.querySelector('#deliveries[data-ready="true"] tr[data-delivery=%q][data-status=failed]')`, failed.Deliveries[0].ID))
	b.shot("22-webhook-failed")
	b.do("send again", chromedp.Click(chromedp.CSS(`tr[data-status=failed] button[data-action=retry]`)))
	poll(t, patience, "the retried delivery arrived", func() bool {
		var d struct {
			Status string `json:"status"`
		}
		e.do("GET", "/v1/webhooks/"+id+"/deliveries/"+failed.Deliveries[0].ID, e.token, nil, http.StatusOK, &d)
		return d.Status == "succeeded"
	})
	b.choose("succeeded only", `select[name=delivery-status]`, "succeeded")
	b.waitJS("the delivery is listed as succeeded", fmt.Sprintf(`document.querySelector('#deliveries[data-ready="true"] tr[data-delivery=%q][data-status=succeeded]')`, failed.Deliveries[0].ID))

	// Off and on again.
	b.do("disable", chromedp.Click(chromedp.CSS(`button[data-action=disable]`)))
	b.waitJS("disabled", `document.querySelector('main h1 .badge')?.textContent === 'disabled'`)
	var w struct {
		Enabled bool `json:"enabled"`
	}
	e.do("GET", "/v1/webhooks/"+id, e.token, nil, http.StatusOK, &w)
	require.False(t, w.Enabled)
	b.do("enable", chromedp.Click(chromedp.CSS(`button[data-action=enable]`)))
	b.waitJS("enabled", `document.querySelector('main h1 .badge')?.textContent === 'enabled'`)

	// A new secret, shown once.
	b.do("rotate", chromedp.Click(chromedp.CSS(`button[data-action=rotate]`)))
	b.do("confirm", chromedp.WaitVisible(chromedp.CSS(`dialog[open]`)), chromedp.Click(chromedp.CSS(`dialog[open] button.primary`)))
	b.waitJS("the new secret is shown", `document.querySelector('[data-secret] input')`)
	rotated := eval[string](b, "the new secret", `document.querySelector('[data-secret] input').value`)
	require.True(t, strings.HasPrefix(rotated, "whsec_") && rotated != secret, "new secret %q", rotated)

	b.do("delete", chromedp.Click(chromedp.CSS(`button[data-action=delete-webhook]`)))
	b.do("confirm", chromedp.WaitVisible(chromedp.CSS(`dialog[open]`)), chromedp.Click(chromedp.CSS(`dialog[open] button.danger`)))
	b.page("/webhooks")
	e.do("GET", "/v1/webhooks/"+id, e.token, nil, http.StatusNotFound, nil)
}

// TestConsoleSetsUpTiersAndAUserReachesOne: an admin sets up tiers in the console (add,
// remove, the spend window only for the spend basis), a stale save is refused, and a user
// whose points reach a tier shows it.
func TestConsoleSetsUpTiersAndAUserReachesOne(t *testing.T) {
	e := newEnv(t)
	b := newBrowser(t, e.base)
	b.do("open the console", chromedp.Navigate(e.base+"/console"))
	b.login("admin", adminPassword, "/campaigns")

	b.do("tiers", chromedp.Click(chromedp.CSS(`#nav a[data-nav=tiers]`)))
	b.page("/tiers")
	require.Contains(t, b.text("default", `main [data-version="0"]`), "No tiers configured yet")
	require.False(t, eval[bool](b, "no window for lifetime points", `document.querySelector('input[name=window]').checkVisibility()`))
	b.choose("spend basis", `select[name=basis]`, "spend")
	require.True(t, eval[bool](b, "a window for spend", `document.querySelector('input[name=window]').checkVisibility()`))
	b.choose("lifetime points", `select[name=basis]`, "lifetime_points")
	for i, tier := range []struct{ name, threshold string }{{"silver", "100"}, {"bronze", "50"}, {"gold", "500"}} {
		b.do("add a tier", chromedp.Click(chromedp.CSS(`button[data-action=add-tier]`)))
		row := fmt.Sprintf(`#edit-tiers tbody tr:nth-child(%d) `, i+1)
		b.typeInto("tier name", row+`input[name=tier-name]`, tier.name)
		b.typeInto("tier threshold", row+`input[name=tier-threshold]`, tier.threshold)
	}
	// Out of order: refused, naming the field.
	b.do("save out of order", chromedp.Click(chromedp.CSS(`button[data-action=save-tiers]`)))
	require.Contains(t, b.text("refused", `#edit-tiers .alert-error`), "tiers[1].threshold")
	b.do("remove bronze", chromedp.Click(chromedp.CSS(`#edit-tiers tbody tr:nth-child(2) button[data-action=remove-tier]`)))
	b.do("save", chromedp.Click(chromedp.CSS(`button[data-action=save-tiers]`)))
	b.waitJS("saved", `document.querySelector('main [data-version="1"]')`)
	var cfg struct {
		Version int64 `json:"version"`
		Basis   string
		Tiers   []struct {
			Name      string  `json:"name"`
			Threshold float64 `json:"threshold"`
		} `json:"tiers"`
	}
	e.do("GET", "/v1/tiers", e.token, nil, http.StatusOK, &cfg)
	require.Equal(t, int64(1), cfg.Version)
	require.Equal(t, "lifetime_points", cfg.Basis)
	require.Len(t, cfg.Tiers, 2)
	require.Equal(t, "silver", cfg.Tiers[0].Name)
	require.Equal(t, "gold", cfg.Tiers[1].Name)
	require.Equal(t, 500.0, cfg.Tiers[1].Threshold)
	b.shot("23-tiers")

	// Someone else saves meanwhile: this page's save is refused.
	e.do("PUT", "/v1/tiers", e.token, map[string]any{"basis": "lifetime_points", "tiers": []map[string]any{{"name": "silver", "threshold": 100}, {"name": "gold", "threshold": 400}}},
		http.StatusOK, nil)
	b.typeInto("gold threshold", `#edit-tiers tbody tr:nth-child(2) input[name=tier-threshold]`, "450")
	b.do("stale save", chromedp.Click(chromedp.CSS(`button[data-action=save-tiers]`)))
	require.Contains(t, b.text("conflict", `#edit-tiers .alert-error`), "changed the tiers")
	e.do("GET", "/v1/tiers", e.token, nil, http.StatusOK, &cfg)
	require.Equal(t, 400.0, cfg.Tiers[1].Threshold, "the stale save changed nothing")

	// A user whose lifetime points pass 400 is gold.
	e.createCampaign(tenPercent)
	e.postEvent(map[string]any{"id": "tier-buy-1", "user_id": "tier-alice", "type": "purchase", "amount": 4500}, http.StatusAccepted)
	e.waitUser("tier-alice", 1)
	b.open("/users/tier-alice")
	b.waitJS("gold", `document.querySelector('[data-stat=tier] .stat-value')?.textContent === 'gold'`)
}
