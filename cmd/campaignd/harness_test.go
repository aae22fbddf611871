package main

// The one test harness of this package: polling, the HTTP client every test speaks
// campaignd's API with, publishing to NATS, campaignd in-process (env), the purchase load
// and the exactly-once check shared by the crash, outage and guarantee tests. Child
// campaignd processes are in daemon_test.go, the ingest paths in guarantee_test.go.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/ingress/event"
	"github.com/campaignmanager/campaignmanager/persistence/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	testSecret    = "test-secret-test-secret-test-secret-0123"
	adminPassword = "admin-password-1"
	// patience is how long a test waits for something campaignd does asynchronously
	// (an event processed, a campaign live, a DLQ entry) before it fails.
	patience = 20 * time.Second
	// pollInterval is how often poll looks again.
	pollInterval = 20 * time.Millisecond
)

// poll calls cond every pollInterval until it returns true, and fails the test naming
// what when timeout passes first. cond runs on the test's goroutine, so it may use
// require.
func poll(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		<-tick.C
	}
}

// together runs f(0), …, f(n-1) concurrently and returns the first error once all are
// done. f must not call t.FailNow (it is not on the test's goroutine).
func together(n int, f func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// testWriter sends a logger's lines to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// Campaigns used by several tests.
var (
	tenPercent = map[string]any{
		"id": "ten-percent", "name": "10% back in points", "status": "active",
		"rule":   `event.type == "purchase" && event.amount > 50`,
		"reward": map[string]any{"type": "points", "points": "int(event.amount * 0.1)"},
	}
	// pointPerPurchase and oneOffBonus are the campaigns of purchaseLoad: one point per
	// purchase, and a one-off bonus whose per-user limit must hold across crashes.
	pointPerPurchase = map[string]any{
		"id": "point-per-purchase", "name": "1 point per purchase", "status": "active",
		"rule": `event.type == "purchase"`, "reward": map[string]any{"type": "points", "points": 1},
	}
	oneOffBonus = map[string]any{
		"id": "one-off-bonus", "name": "1000 points once", "status": "active", "priority": 10,
		"rule": `event.type == "purchase"`, "limits": map[string]any{"per_user": 1},
		"reward": map[string]any{"type": "points", "points": bonusPoints},
	}
)

const bonusPoints = 1000

// ---- HTTP -------------------------------------------------------------------------

// client speaks to one campaignd for a test: its HTTP API (admin calls with a JWT, ingest
// with an API key) and its NATS server (as a service publishing events would).
type client struct {
	t      *testing.T
	base   string // http://host:port
	token  string // admin JWT, once logged in
	apiKey string // a storefront key
	http   *http.Client
	nats   *natsLink // shared by the copies that with makes
}

// natsLink is a client's connection to NATS, made on first use and closed when the test
// that made the client ends.
type natsLink struct {
	owner *testing.T
	mu    sync.Mutex
	url   string
	// auth are the options the connection authenticates with (campaignd's own).
	auth []nats.Option
	nc   *nats.Conn
	js   jetstream.JetStream
}

// newClient returns a client of the campaignd at base (http://host:port) whose NATS
// server is at natsURL ("" when the test does not publish), connecting with auth.
func newClient(t *testing.T, base, natsURL string, auth ...nats.Option) *client {
	return &client{t: t, base: base, http: &http.Client{Timeout: 30 * time.Second}, nats: &natsLink{owner: t, url: natsURL, auth: auth}}
}

// with returns a copy of the client that reports to t (a subtest's): a test may only
// fail from its own goroutine.
func (c *client) with(t *testing.T) *client {
	cp := *c
	cp.t = t
	return &cp
}

// response is an HTTP answer, read in full.
type response struct {
	status int
	header http.Header
	body   []byte
}

// problem is an RFC 9457 problem details answer.
type problem struct {
	Status int    `json:"status"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
	Field  string `json:"field"`
}

// try sends one request. auth is "" (none), "key:<key>" (Authorization: ApiKey),
// "x-api-key:<key>" (X-API-Key) or a JWT (Bearer). body is nil, []byte, a string, or
// a value sent as JSON; header holds more header names and values, in pairs
// (Content-Type defaults to application/json when there is a body). try does not touch
// the test, so any goroutine may call it.
func (c *client) try(ctx context.Context, method, path, auth string, body any, header ...string) (response, error) {
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	case string:
		r = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return response{}, err
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return response{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	switch {
	case strings.HasPrefix(auth, "key:"):
		req.Header.Set("Authorization", "ApiKey "+strings.TrimPrefix(auth, "key:"))
	case strings.HasPrefix(auth, "x-api-key:"):
		req.Header.Set("X-API-Key", strings.TrimPrefix(auth, "x-api-key:"))
	case auth != "":
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// request is try that fails the test on a transport error.
func (c *client) request(method, path, auth string, body any, header ...string) response {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := c.try(ctx, method, path, auth, body, header...)
	require.NoError(c.t, err, "%s %s", method, path)
	return res
}

// raw sends a request and returns the status and body.
func (c *client) raw(method, path, auth string, body any) (int, []byte) {
	c.t.Helper()
	res := c.request(method, path, auth, body)
	return res.status, res.body
}

// do sends a request, requires status want and decodes the answer into out (unless nil).
func (c *client) do(method, path, auth string, body any, want int, out any) []byte {
	c.t.Helper()
	status, data := c.raw(method, path, auth, body)
	require.Equalf(c.t, want, status, "%s %s: %s", method, path, data)
	if out != nil {
		require.NoError(c.t, json.Unmarshal(data, out), string(data))
	}
	return data
}

// login returns an admin token for user.
func (c *client) login(user, pw string) string {
	c.t.Helper()
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	c.do("POST", "/v1/auth/token", "", map[string]any{"username": user, "password": pw}, http.StatusOK, &tok)
	require.Equal(c.t, "Bearer", tok.TokenType)
	return tok.AccessToken
}

// newAPIKey creates a storefront key named name and makes it the client's.
func (c *client) newAPIKey(name string) {
	c.t.Helper()
	var key struct{ Key string }
	c.do("POST", "/v1/api-keys", c.token, map[string]any{"name": name}, http.StatusCreated, &key)
	require.NotEmpty(c.t, key.Key)
	c.apiKey = key.Key
}

// postEvent posts ev to /v1/events with the client's key, requires status want and
// returns the answer.
func (c *client) postEvent(ev map[string]any, want int) map[string]any {
	c.t.Helper()
	var out map[string]any
	c.do("POST", "/v1/events", "key:"+c.apiKey, ev, want, &out)
	return out
}

// userView is GET /v1/users/{id}.
type userView struct {
	UserID         string           `json:"user_id"`
	Points         int64            `json:"points"`
	LifetimePoints int64            `json:"lifetime_points"`
	Tier           string           `json:"tier"`
	PurchaseCount  int64            `json:"purchase_count"`
	TotalSpent     float64          `json:"total_spent"`
	EventCounts    map[string]int64 `json:"event_counts"`
	RewardCounts   map[string]int64 `json:"reward_counts"`
	LastRejection  *struct {
		EventID string `json:"event_id"`
		Reason  string `json:"reason"`
	} `json:"last_rejection"`
}

func (u userView) events() int64 {
	var n int64
	for _, c := range u.EventCounts {
		n += c
	}
	return n
}

// user returns the user's loyalty state; ok is false for a user never seen (404).
func (c *client) user(id string) (u userView, ok bool) {
	c.t.Helper()
	status, data := c.raw("GET", "/v1/users/"+url.PathEscape(id), c.token, nil)
	if status == http.StatusNotFound {
		return userView{}, false
	}
	require.Equal(c.t, http.StatusOK, status, string(data))
	require.NoError(c.t, json.Unmarshal(data, &u))
	return u, true
}

// state is the user's state, the zero userView for a user never seen.
func (c *client) state(id string) userView {
	c.t.Helper()
	u, _ := c.user(id)
	return u
}

// waitUser polls until the user has seen n events and returns the state.
func (c *client) waitUser(id string, n int64) userView {
	c.t.Helper()
	var u userView
	poll(c.t, patience, fmt.Sprintf("user %q has seen %d events", id, n), func() bool {
		var ok bool
		u, ok = c.user(id)
		return ok && u.events() >= n
	})
	return u
}

// waitRejection polls until the user's last rejection is eventID's and returns its reason.
func (c *client) waitRejection(id, eventID string) string {
	c.t.Helper()
	var reason string
	poll(c.t, patience, fmt.Sprintf("user %q: event %q rejected", id, eventID), func() bool {
		u, _ := c.user(id)
		if u.LastRejection != nil && u.LastRejection.EventID == eventID {
			reason = u.LastRejection.Reason
			return true
		}
		return false
	})
	return reason
}

// rewardView is one entry of GET /v1/users/{id}/rewards.
type rewardView struct {
	ID              string `json:"id"`
	CampaignID      string `json:"campaign_id"`
	CampaignVersion int64  `json:"campaign_version"`
	EventID         string `json:"event_id"`
	Type            string `json:"type"`
	Points          int64  `json:"points"`
	// CreatedAt is when the reward was committed.
	CreatedAt time.Time `json:"created_at"`
}

// rewards returns the user's rewards, oldest first (at most 1000).
func (c *client) rewards(id string) []rewardView {
	c.t.Helper()
	var out struct{ Rewards []rewardView }
	c.do("GET", "/v1/users/"+url.PathEscape(id)+"/rewards?limit=1000", c.token, nil, http.StatusOK, &out)
	return out.Rewards
}

// ledgerEntry is one entry of GET /v1/users/{id}/ledger.
type ledgerEntry struct {
	Kind         string `json:"kind"`
	Points       int64  `json:"points"`
	BalanceAfter int64  `json:"balance_after"`
	EventID      string `json:"event_id"`
	RewardID     string `json:"reward_id"`
}

// ledger returns the user's ledger, oldest first (at most 1000 entries), and requires
// the balance invariant: the user's points are the sum of the ledger.
func (c *client) ledger(id string) []ledgerEntry {
	c.t.Helper()
	var out struct {
		Entries []ledgerEntry `json:"entries"`
	}
	c.do("GET", "/v1/users/"+url.PathEscape(id)+"/ledger?limit=1000", c.token, nil, http.StatusOK, &out)
	var sum int64
	for _, en := range out.Entries {
		sum += en.Points
	}
	u, _ := c.user(id)
	require.Equal(c.t, u.Points, sum, "user %q: the balance must equal the ledger sum", id)
	return out.Entries
}

// dlqEntry is one entry of GET /v1/dlq.
type dlqEntry struct {
	ID         string          `json:"id"`
	Reason     string          `json:"reason"`
	Partition  int             `json:"partition"`
	Deliveries uint64          `json:"deliveries"`
	StreamSeq  uint64          `json:"stream_seq"`
	Subject    string          `json:"subject"`
	EventID    string          `json:"event_id"`
	Event      json.RawMessage `json:"event"`
	ParkedAt   string          `json:"parked_at"`
}

type dlqPage struct {
	Entries    []dlqEntry `json:"entries"`
	NextCursor string     `json:"next_cursor"`
}

// dlq returns a page of GET /v1/dlq; query is "" or "?limit=…&cursor=…".
func (c *client) dlq(query string) dlqPage {
	c.t.Helper()
	var p dlqPage
	c.do("GET", "/v1/dlq"+query, c.token, nil, http.StatusOK, &p)
	return p
}

// parked returns the DLQ entry of the event eventID (the first one), if any.
func (c *client) parked(eventID string) (dlqEntry, bool) {
	c.t.Helper()
	for _, en := range c.dlq("?limit=1000").Entries {
		if en.EventID == eventID {
			return en, true
		}
	}
	return dlqEntry{}, false
}

// waitParked polls until the event eventID is in the DLQ and returns its entry.
func (c *client) waitParked(eventID string) dlqEntry {
	c.t.Helper()
	var en dlqEntry
	poll(c.t, patience, fmt.Sprintf("event %q parked in the DLQ", eventID), func() bool {
		var ok bool
		en, ok = c.parked(eventID)
		return ok
	})
	return en
}

// waitDLQReasons polls until the DLQ holds at least n entries and returns their reasons.
func (c *client) waitDLQReasons(n int) []string {
	c.t.Helper()
	var reasons []string
	poll(c.t, patience, fmt.Sprintf("%d entries in the DLQ", n), func() bool {
		reasons = reasons[:0]
		for _, en := range c.dlq("?limit=1000").Entries {
			reasons = append(reasons, en.Reason)
		}
		return len(reasons) >= n
	})
	return reasons
}

// ---- NATS -------------------------------------------------------------------------

// jetStream returns the client's JetStream connection to campaignd's NATS server, made
// on first use; it reconnects by itself while a child campaignd restarts. It is safe for
// concurrent use.
func (c *client) jetStream() jetstream.JetStream {
	l := c.nats
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.js == nil {
		nc, err := nats.Connect(l.url, append(slices.Clone(l.auth), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))...)
		require.NoError(c.t, err)
		l.owner.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		require.NoError(c.t, err)
		l.nc, l.js = nc, js
	}
	return l.js
}

// setNATS points the client at another NATS server (an in-process campaignd restarted on
// a new port), connecting with auth, and closes the connection to the old one.
func (c *client) setNATS(natsURL string, auth ...nats.Option) {
	l := c.nats
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.nc != nil {
		l.nc.Close()
	}
	l.url, l.auth, l.nc, l.js = natsURL, auth, nil, nil
}

// publishEvent publishes ev to NATS as a service does (DESIGN §4): its JSON on
// events.<token of user_id>, with Nats-Msg-Id = its id. It returns JetStream's ack, and
// does not touch the test, so any goroutine may call it. An ev without a string id or
// user_id is an error wrapping errUnexpected.
func publishEvent(ctx context.Context, js jetstream.JetStream, ev map[string]any) (*jetstream.PubAck, error) {
	user, ok := ev["user_id"].(string)
	if !ok {
		return nil, fmt.Errorf("%w: event %v: no user_id string to make a subject from", errUnexpected, ev["id"])
	}
	id, ok := ev["id"].(string)
	if !ok {
		return nil, fmt.Errorf("%w: event %v: no id string for Nats-Msg-Id", errUnexpected, ev["id"])
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("%w: event %v: %v", errUnexpected, id, err)
	}
	msg := &nats.Msg{Subject: bus.EventSubject(event.Token(user)), Data: data, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, id)
	return js.PublishMsg(ctx, msg)
}

// publishRaw publishes data on subject with Nats-Msg-Id msgID (none when ""), for
// messages no well-behaved service sends (undecodable, on another user's subject, a
// known event under another id), and returns JetStream's ack.
func publishRaw(t testing.TB, js jetstream.JetStream, subject, msgID string, data []byte) *jetstream.PubAck {
	t.Helper()
	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	if msgID != "" {
		msg.Header.Set(jetstream.MsgIDHeader, msgID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, err := js.PublishMsg(ctx, msg)
	require.NoError(t, err, "publish to %s", subject)
	return ack
}

// engineIdle reports whether every partition of EVENTS has a lane consumer and every
// consumer has nothing pending and nothing unacknowledged: all stored events are
// processed.
func engineIdle(ctx context.Context, js jetstream.JetStream) (bool, error) {
	s, err := js.Stream(ctx, bus.EventsStream)
	if err != nil {
		return false, err
	}
	partitions, err := bus.PartitionsOf(s.CachedInfo().Config)
	if err != nil {
		return false, err
	}
	// A lane's consumer exists once an engine has taken it: until every partition has
	// one, events of the others are waiting, not processed.
	filtered := map[string]bool{}
	lister := s.ListConsumers(ctx)
	for info := range lister.Info() {
		if info.NumPending != 0 || info.NumAckPending != 0 {
			return false, nil
		}
		for _, f := range info.Config.FilterSubjects {
			filtered[f] = true
		}
		filtered[info.Config.FilterSubject] = true
	}
	if err := lister.Err(); err != nil && !errors.Is(err, jetstream.ErrEndOfData) {
		return false, err
	}
	for p := range partitions {
		if !filtered[bus.PartitionFilter(p)] {
			return false, nil
		}
	}
	return true, nil
}

// waitEngineIdle polls until every stored event is processed (see engineIdle).
func (c *client) waitEngineIdle(timeout time.Duration) {
	c.t.Helper()
	js := c.jetStream()
	poll(c.t, timeout, "every partition consumer drained", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		idle, err := engineIdle(ctx, js)
		return err == nil && idle
	})
}

// waitActiveCampaigns polls /metrics until the engine's compiled rule set holds n active
// campaigns: a campaign saved over the API reaches the engine through KV a moment later,
// so an event sent straight after the save may be evaluated without it.
func (c *client) waitActiveCampaigns(n int) {
	c.t.Helper()
	want := "campaign_active_campaigns " + strconv.Itoa(n)
	poll(c.t, patience, fmt.Sprintf("%d active campaigns in the engine", n), func() bool {
		for line := range strings.SplitSeq(string(c.request("GET", "/metrics", "", nil).body), "\n") {
			if line == want {
				return true
			}
		}
		return false
	})
}

// streamMsgs is the message count of a stream, of the subjects matching filter when
// it is not empty.
func streamMsgs(ctx context.Context, js jetstream.JetStream, name, filter string) (uint64, error) {
	s, err := js.Stream(ctx, name)
	if err != nil {
		return 0, err
	}
	var opts []jetstream.StreamInfoOpt
	if filter != "" {
		opts = append(opts, jetstream.WithSubjectFilter(filter))
	}
	info, err := s.Info(ctx, opts...)
	if err != nil {
		return 0, err
	}
	if filter == "" {
		return info.State.Msgs, nil
	}
	var n uint64 // State.Msgs counts the whole stream; the filter fills State.Subjects
	for _, c := range info.State.Subjects {
		n += c
	}
	return n, nil
}

// waitStreamMsgs polls until stream (its subjects matching filter, when not empty)
// holds want messages, failing at once if it holds more.
func (c *client) waitStreamMsgs(stream, filter string, want uint64) {
	c.t.Helper()
	js := c.jetStream()
	poll(c.t, patience, fmt.Sprintf("%d messages in %s %s", want, stream, filter), func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n, err := streamMsgs(ctx, js, stream, filter)
		require.NoError(c.t, err)
		require.LessOrEqual(c.t, n, want, "%s %s: more messages than expected", stream, filter)
		return n == want
	})
}

// ---- campaignd in-process ---------------------------------------------------------

// env is one test's campaignd running in-process (newApp, Start) on free ports, with a
// database and a data dir that survive its restarts within the test, an admin token and
// a storefront key.
type env struct {
	client
	dbURL   string
	dataDir string
	app     *App
	// vars override the environment of the next start; out, when set, gets what
	// campaignd prints (the bootstrap admin's lines).
	vars map[string]string
	out  io.Writer
}

// newEnv starts campaignd on a throwaway database, logs in as the bootstrap admin and
// creates a storefront key that ingress knows.
func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvOn(t, pgtest.New(t))
}

// newEnvOn is newEnv on the database at dbURL.
func newEnvOn(t *testing.T, dbURL string) *env {
	t.Helper()
	e := &env{client: *newClient(t, "", ""), dbURL: dbURL, dataDir: t.TempDir()}
	e.start()
	t.Cleanup(e.stop)
	e.token = e.login("admin", adminPassword)
	e.newAPIKey("storefront")
	e.waitKey()
	return e
}

// start runs campaignd in-process on free ports.
func (e *env) start() {
	e.t.Helper()
	vars := map[string]string{
		"CAMPAIGN_HTTP_ADDR":      "127.0.0.1:0",
		"CAMPAIGN_NATS_LISTEN":    "127.0.0.1:-1",
		"DATABASE_URL":            e.dbURL,
		"CAMPAIGN_DATA_DIR":       e.dataDir,
		"CAMPAIGN_JWT_SECRET":     testSecret,
		"CAMPAIGN_ADMIN_PASSWORD": adminPassword,
		"CAMPAIGN_PARTITIONS":     "8",
		"CAMPAIGN_EXPIRY_SWEEP":   "200ms",
	}
	for k, v := range e.vars {
		vars[k] = v
	}
	out := e.out
	if out == nil {
		out = io.Discard
	}
	e.app = startAppOut(e.t, vars, out)
	e.base = "http://" + e.app.http.Addr()
	e.setNATS(e.app.NATSURL, e.app.natsAuth...) // as campaignd: its own credentials
}

// startApp runs campaignd in-process with the environment vars; the caller closes it.
func startApp(t *testing.T, vars map[string]string) *App {
	t.Helper()
	return startAppOut(t, vars, io.Discard)
}

// startAppOut is startApp printing to out.
func startAppOut(t *testing.T, vars map[string]string, out io.Writer) *App {
	t.Helper()
	cfg, err := loadConfig(nil, func(k string) string { return vars[k] }, io.Discard)
	require.NoError(t, err)
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	app := newApp(cfg, log, out)
	app.passwordCost = bcrypt.MinCost // production cost under -race takes seconds per hash
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		_ = app.Close(context.Background())
		t.Fatalf("start campaignd: %v", err)
	}
	return app
}

func (e *env) stop() {
	if e.app == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(e.t, e.app.Close(ctx))
	e.app = nil
}

// restart stops campaignd gracefully and starts it again on the same database and data
// dir (on new ports).
func (e *env) restart() {
	e.t.Helper()
	e.stop()
	e.start()
	e.waitKey()
}

// waitKey waits until the API key is known to ingress (it travels through KV).
func (e *env) waitKey() {
	e.t.Helper()
	if e.apiKey == "" {
		return
	}
	poll(e.t, patience, "the API key reached ingress", func() bool {
		_, ok := e.app.keys.CheckAPIKey(e.apiKey)
		return ok
	})
}

// createCampaign creates c and, when it is active, waits until the engine evaluates it.
func (e *env) createCampaign(c map[string]any) {
	e.t.Helper()
	e.do("POST", "/v1/campaigns", e.token, c, http.StatusCreated, nil)
	id := c["id"].(string)
	if c["status"] == "active" {
		poll(e.t, patience, fmt.Sprintf("campaign %q live in the engine", id), func() bool {
			for _, k := range e.app.engine.Rules().Campaigns() {
				if k.ID == id {
					return true
				}
			}
			return false
		})
	}
}

// ledgerKinds returns the kinds of the user's ledger entries, requiring the balance to
// equal the ledger's sum both in the API and in Postgres.
func (e *env) ledgerKinds(id string) []string {
	e.t.Helper()
	var kinds []string
	for _, en := range e.ledger(id) {
		kinds = append(kinds, en.Kind)
	}
	u, _ := e.user(id)
	dbSum, err := e.app.store.LedgerSum(context.Background(), id)
	require.NoError(e.t, err)
	require.Equal(e.t, u.Points, dbSum, "user %q: the balance must equal the ledger sum in Postgres", id)
	return kinds
}

// ---- load and the exactly-once check ----------------------------------------------

// purchaseLoad is users × perUser purchases under pointPerPurchase and oneOffBonus, so
// every user must end with exactly perUser+bonusPoints points: one per purchase and one
// bonus. Event ids are <name>-<user>-<i>, user ids <name>-user-<user>.
type purchaseLoad struct {
	name           string
	users, perUser int
}

func (l purchaseLoad) user(u int) string { return fmt.Sprintf("%s-user-%d", l.name, u) }

func (l purchaseLoad) eventID(u, i int) string { return fmt.Sprintf("%s-%d-%d", l.name, u, i) }

func (l purchaseLoad) event(u, i int) map[string]any {
	return map[string]any{"id": l.eventID(u, i), "user_id": l.user(u), "type": "purchase", "amount": 1}
}

// send stores events [from, to) of every user with store: one goroutine per user, its
// events in order, each stored before the next is sent. progress, unless nil, counts the
// stored events. It returns when every goroutine is done, with the first errors.
func (l purchaseLoad) send(ctx context.Context, from, to int, store func(context.Context, map[string]any) error, progress *atomic.Int64) error {
	return together(l.users, func(u int) error {
		for i := from; i < to; i++ {
			if err := store(ctx, l.event(u, i)); err != nil {
				return err
			}
			if progress != nil {
				progress.Add(1)
			}
		}
		return nil
	})
}

// requireExactlyOnce waits (up to drain) until the engine has processed every stored
// event and requires each purchase of the load applied exactly once: every user's
// totals exact, each reward granted once (one per purchase, one bonus), the ledger
// holding each reward once and summing to the balance, and the REWARDS stream holding
// each reward once.
func (l purchaseLoad) requireExactlyOnce(t *testing.T, c *client, drain time.Duration) {
	t.Helper()
	require.Less(t, l.perUser, 1000, "rewards and ledger are read as one page")
	c.waitEngineIdle(drain)
	want := int64(l.perUser + bonusPoints)
	for u := range l.users {
		id := l.user(u)
		v, ok := c.user(id)
		require.True(t, ok, "%s never seen", id)
		require.Equal(t, want, v.Points, "%s: points", id)
		require.Equal(t, want, v.LifetimePoints, "%s: lifetime points", id)
		require.Equal(t, int64(l.perUser), v.PurchaseCount, "%s: purchases", id)
		require.InDelta(t, float64(l.perUser), v.TotalSpent, 1e-9, "%s: spend", id)
		require.Equal(t, map[string]int64{"purchase": int64(l.perUser)}, v.EventCounts, "%s: events", id)
		require.Equal(t, map[string]int64{"point-per-purchase": int64(l.perUser), "one-off-bonus": 1}, v.RewardCounts, "%s: reward counts", id)

		rs := c.rewards(id)
		require.Len(t, rs, l.perUser+1, "%s: rewards", id)
		rewardIDs := map[string]bool{}
		perEvent := map[string]int{}
		bonus := 0
		for _, r := range rs {
			require.False(t, rewardIDs[r.ID], "%s: reward id %s twice", id, r.ID)
			rewardIDs[r.ID] = true
			switch r.CampaignID {
			case "point-per-purchase":
				require.Equal(t, int64(1), r.Points, "%s: reward %s", id, r.ID)
				perEvent[r.EventID]++
			case "one-off-bonus":
				require.Equal(t, int64(bonusPoints), r.Points, "%s: reward %s", id, r.ID)
				bonus++
			default:
				t.Fatalf("%s: reward from unexpected campaign %q", id, r.CampaignID)
			}
		}
		require.Equal(t, 1, bonus, "%s: bonus rewards", id)
		for i := range l.perUser {
			require.Equal(t, 1, perEvent[l.eventID(u, i)], "%s: rewards for event %s", id, l.eventID(u, i))
		}

		entries := c.ledger(id) // requires ledger sum == balance
		require.Len(t, entries, l.perUser+1, "%s: ledger entries", id)
		inLedger := map[string]bool{}
		for _, en := range entries {
			require.Equal(t, "earn", en.Kind, "%s: ledger entry of %s", id, en.EventID)
			require.True(t, rewardIDs[en.RewardID], "%s: ledger entry for unknown reward %q", id, en.RewardID)
			require.False(t, inLedger[en.RewardID], "%s: reward %s in the ledger twice", id, en.RewardID)
			inLedger[en.RewardID] = true
		}
		require.Equal(t, want, entries[len(entries)-1].BalanceAfter, "%s: balance after the last entry", id)
	}
	// Downstream sees each reward once too (REWARDS dedups by reward id, so a reward
	// granted twice would show as an extra message).
	for u := range l.users {
		tok := event.Token(l.user(u))
		c.waitStreamMsgs(bus.RewardsStream, bus.RewardSubject("point-per-purchase", tok), uint64(l.perUser))
		c.waitStreamMsgs(bus.RewardsStream, bus.RewardSubject("one-off-bonus", tok), 1)
	}
}
