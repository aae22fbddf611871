package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	signer "github.com/campaignmanager/campaignmanager/actors/webhook"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// lines collects a process's output lines; safe for concurrent use.
type lines struct {
	mu  sync.Mutex
	all []string
}

func (l *lines) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l.mu.Lock()
		l.all = append(l.all, sc.Text())
		l.mu.Unlock()
	}
}

// find returns the first line matching re, or "".
func (l *lines) find(re *regexp.Regexp) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.all {
		if re.MatchString(s) {
			return s
		}
	}
	return ""
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.all, "\n")
}

// TestReadmeDeliverRewardsWorksVerbatim follows README's "Deliver rewards" as written:
// its campaignctl commands, its receiver.go run with go run (on a free port instead of
// 8000), its coupon.yaml and its curl lines (the event, then validating and redeeming the
// code the receiver printed); the receiver must print the verified test ping, the reward
// with a code from the pool, and the code's redemption. The Python verify function of the same
// section must accept a delivery signed as campaignd signs it and refuse a changed body.
func TestReadmeDeliverRewardsWorksVerbatim(t *testing.T) {
	server := startCampaignd(t, "CAMPAIGN_WEBHOOK_ALLOW_PRIVATE=true")
	c := ctl{t: t, server: server, configDir: filepath.Join(t.TempDir(), "config")}
	c.must(exitOK, "login", "--username", "admin", "--password", adminPassword)
	shopKey := regexp.MustCompile(`(?m)^Key:\s+(\S+)$`).FindStringSubmatch(c.must(exitOK, "keys", "create", "--name", "shop").stdout)[1]
	port := freeAddr(t)
	dir := t.TempDir()
	var commands []string
	var python string
	for _, b := range readmeSection(t, "Deliver rewards") {
		text := strings.ReplaceAll(strings.Join(b.lines, "\n")+"\n", "127.0.0.1:8000", port)
		switch b.lang {
		case "go":
			writeReadmeFile(t, dir, "receiver.go", text)
		case "yaml":
			writeReadmeFile(t, dir, b.file, text)
		case "python":
			python = text
		case "sh":
			commands = append(commands, strings.Split(strings.TrimSpace(text), "\n")...)
		}
	}
	if len(commands) < 5 || python == "" {
		t.Fatalf("the section has %d commands and python %q", len(commands), python)
	}
	out := &lines{}
	var hookID, secret string
	rewardLine := regexp.MustCompile(`^rw_\S+ reward\.granted (\{.*\})$`)
	for _, line := range commands {
		words := shellWords(line)
		switch {
		case words[0] == "campaignctl":
			args := make([]string, 0, len(words)-1)
			for _, w := range words[1:] {
				w = strings.ReplaceAll(w, "<id>", hookID)
				if _, err := os.Stat(filepath.Join(dir, w)); err == nil {
					w = filepath.Join(dir, w)
				}
				args = append(args, w)
			}
			active := activeCampaigns(t, server)
			r := c.must(exitOK, args...)
			if words[1] == "campaigns" && words[2] == "apply" {
				liveAfter(t, server, active, r.stdout)
			}
			if words[1] == "webhooks" && words[2] == "create" {
				hookID = regexp.MustCompile(`(?m)^ID:\s+(\S+)$`).FindStringSubmatch(r.stdout)[1]
				secret = regexp.MustCompile(`(?m)^Secret:\s+(\S+)$`).FindStringSubmatch(r.stdout)[1]
			}
		case strings.HasPrefix(words[0], "WEBHOOK_SECRET=") && strings.Join(words[1:], " ") == "go run receiver.go":
			runReceiver(t, dir, port, secret, out)
		case words[0] == "curl":
			code := ""
			if strings.Contains(line, "$CODE") {
				code = codeOf(t, out, rewardLine)
			}
			curlAsWritten(t, server, shopKey, code, words)
		default:
			t.Fatalf("a command the test does not know: %s", line)
		}
	}
	waitUntil(t, "the receiver printed the ping", func() bool {
		return out.find(regexp.MustCompile(`^ping_[0-9a-f]+ webhook\.test \{`)) != ""
	})
	code := codeOf(t, out, rewardLine)
	if !strings.HasPrefix(code, "SHIP-") {
		t.Errorf("the reward's code %q is not from the pool", code)
	}
	waitUntil(t, "the receiver printed the redemption", func() bool {
		return out.find(regexp.MustCompile(`^coupon_redeemed_`+regexp.QuoteMeta(code)+` loyalty\.coupon_redeemed \{.*"order_id":"order-8"`)) != ""
	})
	// Records are written in batches, shortly after the delivery.
	waitUntil(t, "webhooks deliveries lists the ping, the reward and the redemption as succeeded", func() bool {
		return strings.Count(c.must(exitOK, "webhooks", "deliveries", hookID).stdout, "succeeded") == 3
	})
	checkReadmePython(t, python)
}

func writeReadmeFile(t *testing.T, dir, name, text string) {
	t.Helper()
	if name == "" {
		t.Fatalf("a README block names no file:\n%s", text)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// runReceiver does what go run receiver.go does in dir, with WEBHOOK_SECRET, its output
// in out, until the test ends (built first and run directly, so that the end of the test
// stops the receiver itself, not only the go command), and waits until it listens on
// addr.
func runReceiver(t *testing.T, dir, addr, secret string, out *lines) {
	t.Helper()
	build := exec.Command("go", "build", "-o", "receiver", "receiver.go")
	build.Dir = dir
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build receiver.go: %v\n%s", err, b)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "receiver"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "WEBHOOK_SECRET="+secret)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		out.read(stdout)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = cmd.Wait() // killed by the cancel
		if t.Failed() {
			t.Logf("receiver output:\n%s\n%s", out, stderr.String())
		}
	})
	waitUntil(t, "receiver.go listens on "+addr, func() bool {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		_ = conn.Close() // only the connection's success mattered
		return true
	})
}

// codeOf waits for the reward the receiver printed (a line matching reward, its body
// the group) and returns its coupon_code.
func codeOf(t *testing.T, out *lines, reward *regexp.Regexp) string {
	t.Helper()
	var line string
	waitUntil(t, "the receiver printed the reward", func() bool {
		line = out.find(reward)
		return line != ""
	})
	var r struct {
		Payload struct {
			CouponCode string `json:"coupon_code"`
		} `json:"payload"`
	}
	if err := json.Unmarshal([]byte(reward.FindStringSubmatch(line)[1]), &r); err != nil || r.Payload.CouponCode == "" {
		t.Fatalf("the reward the receiver printed holds no coupon_code: %s (%v)", line, err)
	}
	return r.Payload.CouponCode
}

// curlAsWritten sends the request of one of the README's curl lines (its -d body as JSON
// to the path of its URL, $CODE replaced by code) with the shop's key, as curl would,
// and requires a 2xx.
func curlAsWritten(t *testing.T, server, key, code string, words []string) {
	t.Helper()
	var body, path string
	for i, w := range words {
		switch {
		case w == "-d" && i+1 < len(words):
			body = words[i+1]
		case strings.HasPrefix(w, "http://127.0.0.1:8080/"):
			path = strings.ReplaceAll(strings.TrimPrefix(w, "http://127.0.0.1:8080"), "$CODE", code)
		}
	}
	if path == "" || !json.Valid([]byte(body)) || !strings.Contains(strings.Join(words, " "), "X-API-Key: $SHOP_KEY") {
		t.Fatalf("the curl line does not post JSON with the shop's key: %q", words)
	}
	if path == "/v1/events" {
		postEvent(t, server, key, body)
		return
	}
	req, err := http.NewRequest("POST", server+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close() // read in full
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %d %s", path, resp.StatusCode, answer)
	}
}

// checkReadmePython runs the README's Python verify on a delivery signed as campaignd
// signs it (two secrets, as during a rotation): accepted with either secret, refused with
// a changed body or a stale timestamp.
func checkReadmePython(t *testing.T, fn string) {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 not found (README's verification example runs with it): install python3")
	}
	oldSecret, newSecret := persistence.NewWebhookSecret(), persistence.NewWebhookSecret()
	body := []byte(`{"type":"reward.granted","timestamp":"2026-05-04T10:00:00Z","data":{"id":"rw_1","user_id":"ü"}}`)
	now := time.Now()
	sign := func(at time.Time) string {
		sig, err := signer.Sign([]string{newSecret, oldSecret}, "rw_1", at, body)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	cases := []struct {
		name, secret, sig, body string
		at                      time.Time
		want                    string
	}{
		{"the new secret", newSecret, sign(now), string(body), now, "True"},
		{"the old secret", oldSecret, sign(now), string(body), now, "True"},
		{"another secret", persistence.NewWebhookSecret(), sign(now), string(body), now, "False"},
		{"a changed body", newSecret, sign(now), strings.Replace(string(body), "rw_1", "rw_2", 1), now, "False"},
		{"a stale timestamp", newSecret, sign(now.Add(-time.Hour)), string(body), now.Add(-time.Hour), "False"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			script := fn + `
import json, sys
a = json.load(sys.stdin)
print(verify(a["secret"], a["headers"], a["body"].encode()))
`
			in, _ := json.Marshal(map[string]any{"secret": tc.secret, "body": tc.body, "headers": map[string]string{
				"webhook-id": "rw_1", "webhook-timestamp": strconv.FormatInt(tc.at.Unix(), 10), "webhook-signature": tc.sig}})
			cmd := exec.Command(py, "-c", script)
			cmd.Stdin = bytes.NewReader(in)
			got, err := cmd.CombinedOutput()
			if err != nil || strings.TrimSpace(string(got)) != tc.want {
				t.Fatalf("python verify = %q (%v), want %s", got, err, tc.want)
			}
		})
	}
}
