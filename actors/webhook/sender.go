package webhook

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/campaignmanager/campaignmanager/persistence"
)

// ErrPrivateAddress is wrapped by CheckURL, and by an attempt's error, when an endpoint's
// host is or resolves to a loopback, link-local, private or otherwise non-public address
// and private addresses are not allowed.
var ErrPrivateAddress = errors.New("the address is loopback, link-local, private or not routable; set CAMPAIGN_WEBHOOK_ALLOW_PRIVATE=true to allow it")

// ErrBadURL is wrapped by CheckURL for a URL that is not an absolute http(s) URL with a
// host and without credentials or fragment.
var ErrBadURL = errors.New("must be an absolute http or https URL with a host, without user info or fragment, at most 2048 bytes")

// SenderConfig configures a Sender.
type SenderConfig struct {
	// AllowPrivate lets endpoints be on loopback, link-local and private addresses
	// (CAMPAIGN_WEBHOOK_ALLOW_PRIVATE).
	AllowPrivate bool
	// Timeout bounds one attempt, connection to response body; 0 means 10 s.
	Timeout time.Duration
	// MaxIdlePerHost is the most idle connections kept per endpoint host; 0 means 64.
	MaxIdlePerHost int
	// ResolveTimeout bounds CheckURL's DNS look-up; 0 means 5 s.
	ResolveTimeout time.Duration
}

// maxResponseRead is how much of a response body an attempt reads.
const maxResponseRead = 4 << 10

// maxErrorBody is how much of a failed attempt's response body its record keeps.
const maxErrorBody = 256

// Sender signs and posts webhook deliveries. It never follows redirects, reads at most
// 4 KiB of a response, and checks every address it connects to (a DNS answer can
// change after CheckURL). It is safe for concurrent use.
type Sender struct {
	cfg    SenderConfig
	client *http.Client
	now    func() time.Time
}

// NewSender returns a Sender.
func NewSender(cfg SenderConfig) *Sender {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.MaxIdlePerHost <= 0 {
		cfg.MaxIdlePerHost = 64
	}
	if cfg.ResolveTimeout <= 0 {
		cfg.ResolveTimeout = 5 * time.Second
	}
	dialer := &net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}
	if !cfg.AllowPrivate {
		dialer.Control = func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			ip, err := netip.ParseAddr(host)
			if err != nil || blocked(ip) {
				return fmt.Errorf("connect to %s: %w", host, ErrPrivateAddress)
			}
			return nil
		}
	}
	transport := &http.Transport{
		Proxy:                 nil, // a proxy would connect for us, past the address check
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   cfg.MaxIdlePerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   cfg.Timeout,
		ExpectContinueTimeout: time.Second,
	}
	client := &http.Client{Transport: transport, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse // a 3xx is the answer, a failure
	}}
	return &Sender{cfg: cfg, client: client, now: time.Now}
}

// Timeout is the bound on one attempt.
func (s *Sender) Timeout() time.Duration { return s.cfg.Timeout }

// blocked reports whether ip is no public unicast address: loopback, private
// (10/8, 172.16/12, 192.168/16, fc00::/7), link-local, shared (100.64/10), unspecified,
// "this network" (0/8), multicast or broadcast.
func blocked(ip netip.Addr) bool {
	ip = ip.Unmap()
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() || !ip.IsValid() {
		return true
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
}

// CheckURL checks an endpoint URL when it is saved: an absolute http(s) URL with a host,
// without user info or fragment, whose host (unless private addresses are allowed) is
// or resolves only to public addresses. It returns an error wrapping ErrBadURL or
// ErrPrivateAddress, or the look-up's failure.
func (s *Sender) CheckURL(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || len(raw) > 2048 || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" ||
		u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return ErrBadURL
	}
	if s.cfg.AllowPrivate {
		return nil
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		if blocked(ip) {
			return fmt.Errorf("host %s: %w", host, ErrPrivateAddress)
		}
		return nil
	}
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return fmt.Errorf("host %s: %w", host, ErrPrivateAddress)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ResolveTimeout)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("host %s does not resolve: %w", host, err)
	}
	for _, a := range addrs {
		if blocked(a) {
			return fmt.Errorf("host %s resolves to %s: %w", host, a, ErrPrivateAddress)
		}
	}
	return nil
}

// Attempt is the outcome of one delivery attempt.
type Attempt struct {
	// Status is the HTTP status, 0 when no answer came.
	Status int
	// Latency is from the request's start to the end of reading the response.
	Latency time.Duration
	// At is when the attempt started.
	At time.Time
	// Err is why it failed: no answer (connection, timeout, address refused), or a
	// status other than 2xx with the start of the body.
	Err error
	// RetryAfter is how long the answer's Retry-After asks to wait (429, 503), given in
	// seconds or as an HTTP date, else 0.
	RetryAfter time.Duration
}

// OK reports whether the endpoint took the delivery (2xx).
func (a Attempt) OK() bool { return a.Status >= 200 && a.Status < 300 }

// Gone reports whether the endpoint answered 410 Gone: it wants no more deliveries.
func (a Attempt) Gone() bool { return a.Status == http.StatusGone }

// Send posts body to the endpoint w as the delivery id, signed with w's secrets in force
// (both during a rotation's overlap), and reports the attempt. It blocks for at most the
// Timeout.
func (s *Sender) Send(ctx context.Context, w *persistence.Webhook, id string, body []byte) Attempt {
	at := s.now()
	a := Attempt{At: at}
	sig, err := Sign(w.SigningSecrets(at), id, at, body)
	if err != nil {
		a.Err = err
		return a
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		a.Err = err
		return a
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "CampaignManager-Webhooks/1")
	req.Header.Set(HeaderID, id)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(at.Unix(), 10))
	req.Header.Set(HeaderSignature, sig)
	resp, err := s.client.Do(req)
	if err != nil {
		a.Latency = time.Since(at)
		a.Err = err
		return a
	}
	head, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseRead))
	_ = resp.Body.Close()
	a.Latency = time.Since(at)
	a.Status = resp.StatusCode
	if !a.OK() {
		a.Err = fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.ToValidUTF8(string(head[:min(len(head), maxErrorBody)]), "?"))
		a.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return a
}

// retryAfter is the wait a Retry-After value asks for at now (RFC 9110 §10.2.3: a number
// of seconds or an HTTP date), or 0 when it is absent, malformed or not in the future.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, int64(365*24*time.Hour/time.Second))) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil && at.After(now) {
		return at.Sub(now)
	}
	return 0
}

// Ping sends endpoint w a webhook.test delivery now, with a new ping_ id, and returns
// its record: succeeded, or failed (a ping is not retried).
func (s *Sender) Ping(ctx context.Context, w *persistence.Webhook) persistence.Delivery {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	id := "ping_" + hex.EncodeToString(b)
	data := fmt.Appendf(nil, `{"webhook_id":%q,"message":"a test delivery from Campaign Manager"}`, w.ID)
	a := s.Send(ctx, w, id, envelope(TypeTest, s.now(), data))
	d := a.Record(w.ID, id, TypeTest, 1)
	if !a.OK() {
		d.Status = persistence.DeliveryFailed
	}
	return d
}

// Record is the delivery record of attempt a of notice id, its attempt-th.
func (a Attempt) Record(webhookID, id, typ string, attempts int) persistence.Delivery {
	at := a.At.UTC()
	d := persistence.Delivery{WebhookID: webhookID, ID: id, Type: typ, Attempts: attempts, LastStatus: a.Status,
		LastLatency: a.Latency, LastAttemptAt: &at, Status: persistence.DeliveryPending}
	if a.OK() {
		d.Status = persistence.DeliverySucceeded
	} else if a.Err != nil {
		d.LastError = a.Err.Error()
	}
	return d
}
