package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// readmeBlock is one fenced code block of the README: its language, its lines, and the
// last file name (`name.yaml`) the text before it mentions.
type readmeBlock struct {
	lang  string
	lines []string
	file  string
}

var mentionedFile = regexp.MustCompile("`([a-z0-9_-]+\\.yaml)`")

// readmeSection returns the fenced blocks of the README section titled title.
func readmeSection(t *testing.T, title string) []readmeBlock {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	start := strings.Index(text, "\n## "+title+"\n")
	if start < 0 {
		t.Fatalf("README has no section %q", title)
	}
	text = text[start+1:]
	if end := strings.Index(text[3:], "\n## "); end >= 0 {
		text = text[:end+3]
	}
	var blocks []readmeBlock
	var cur *readmeBlock
	var indent, prose string
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case cur == nil && strings.HasPrefix(trimmed, "```"):
			indent = line[:len(line)-len(strings.TrimLeft(line, " "))]
			file := ""
			if m := mentionedFile.FindAllStringSubmatch(prose, -1); len(m) > 0 {
				file = m[len(m)-1][1]
			}
			cur = &readmeBlock{lang: strings.TrimPrefix(trimmed, "```"), file: file}
			prose = ""
		case cur != nil && trimmed == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.lines = append(cur.lines, strings.TrimPrefix(line, indent))
		default:
			prose += line + "\n"
		}
	}
	return blocks
}

// shellWords splits a command line as sh would for the simple lines of the README: words
// separated by spaces, single or double quotes around a word, comments after " #".
func shellWords(line string) []string {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, r := range line {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == '#' && !inWord:
			return words
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// TestReadmeFirstCampaignWorksVerbatim runs the README's "Your first campaign" as written:
// the login goes to http://localhost:PORT and every later command to the default server,
// which the test sets to http://127.0.0.1:PORT (CAMPAIGN_SERVER standing in for the
// default http://127.0.0.1:8080, a port the test cannot take). The files are the README's
// YAML blocks; step 5's switch to active and the shop's first purchase are done as the
// text says.
func TestReadmeFirstCampaignWorksVerbatim(t *testing.T) {
	server := startCampaignd(t)
	port := server[strings.LastIndexByte(server, ':')+1:]
	c := ctl{t: t, server: server, configDir: filepath.Join(t.TempDir(), "config")}
	dir := t.TempDir()
	var commands [][]string
	for _, b := range readmeSection(t, "Your first campaign") {
		switch b.lang {
		case "yaml":
			if b.file == "" {
				t.Fatalf("a YAML block names no file:\n%s", strings.Join(b.lines, "\n"))
			}
			if err := os.WriteFile(filepath.Join(dir, b.file), []byte(strings.Join(b.lines, "\n")+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		case "sh":
			for _, l := range b.lines {
				if w := shellWords(l); len(w) > 0 {
					commands = append(commands, w)
				}
			}
		}
	}
	if len(commands) < 5 {
		t.Fatalf("found %d commands in the walkthrough: %v", len(commands), commands)
	}
	var shopKey string
	runStep := func(words []string) result {
		t.Helper()
		if words[0] != "campaignctl" {
			t.Fatalf("not a campaignctl command: %v", words)
		}
		args := make([]string, 0, len(words)-1)
		for _, w := range words[1:] {
			w = strings.ReplaceAll(w, "http://localhost:8080", "http://localhost:"+port)
			w = strings.ReplaceAll(w, "<printed>", adminPassword)
			if _, err := os.Stat(filepath.Join(dir, w)); err == nil && strings.HasSuffix(w, ".yaml") {
				w = filepath.Join(dir, w)
			}
			args = append(args, w)
		}
		r := c.run("", args...)
		if r.code != exitOK {
			t.Fatalf("campaignctl %s: exit %d\n%s%s", strings.Join(words[1:], " "), r.code, r.stdout, r.stderr)
		}
		return r
	}
	for _, words := range commands {
		r := runStep(words)
		switch strings.Join(words[1:min(3, len(words))], " ") {
		case "keys create":
			m := regexp.MustCompile(`(?m)^Key:\s+(\S+)$`).FindStringSubmatch(r.stdout)
			if m == nil {
				t.Fatalf("keys create shows no key:\n%s", r.stdout)
			}
			shopKey = m[1]
		case "rules test":
			if !regexp.MustCompile(`(?m)^matched:\s+true$`).MatchString(r.stdout) || !regexp.MustCompile(`(?m)^points:\s+50$`).MatchString(r.stdout) {
				t.Errorf("the README's rule test does not match with 50 points:\n%s", r.stdout)
			}
		case "campaigns apply":
			if !strings.Contains(r.stdout, "campaign/first-purchase created (version 1)") {
				t.Errorf("first apply: %s", r.stdout)
			}
			// Step 5: "then change it to status: active and apply again".
			first := filepath.Join(dir, "first.yaml")
			data, err := os.ReadFile(first)
			if err != nil || !strings.Contains(string(data), "status: draft") {
				t.Fatalf("first.yaml: %v\n%s", err, data)
			}
			if err := os.WriteFile(first, []byte(strings.Replace(string(data), "status: draft", "status: active", 1)), 0o600); err != nil {
				t.Fatal(err)
			}
			active := activeCampaigns(t, server)
			r := runStep(words)
			if !strings.Contains(r.stdout, "campaign/first-purchase updated (version 2); changed: status") {
				t.Errorf("second apply: %s", r.stdout)
			}
			liveAfter(t, server, active, r.stdout)
			// Step 6: "once the shop sends alice's first purchase".
			postEvent(t, server, shopKey, `{"id":"order-1","user_id":"alice","type":"purchase","amount":30,"currency":"EUR"}`)
			deadline := time.Now().Add(30 * time.Second)
			tick := time.NewTicker(100 * time.Millisecond)
			for c.run("", "users", "get", "alice").code != exitOK && time.Now().Before(deadline) {
				<-tick.C
			}
			tick.Stop()
		case "users get":
			if !regexp.MustCompile(`(?m)^Points:\s+50$`).MatchString(r.stdout) {
				t.Errorf("users get alice does not show her 50 points:\n%s", r.stdout)
			}
		}
	}
	if r := c.must(exitOK, "users", "rewards", "alice"); !strings.Contains(r.stdout, "first-purchase") {
		t.Errorf("users rewards alice:\n%s", r.stdout)
	}
}

func TestShellWordsSplitsTheReadmesCommands(t *testing.T) {
	got := shellWords(`campaignctl --server http://localhost:8080 login --password '<printed>' "a b"  # note`)
	want := []string{"campaignctl", "--server", "http://localhost:8080", "login", "--password", "<printed>", "a b"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("shellWords = %q, want %q", got, want)
	}
}
