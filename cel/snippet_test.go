package cel

import (
	"errors"
	"strings"
	"testing"
)

func TestCaretSnippetLinesUpWithTheColumn(t *testing.T) {
	tests := []struct {
		name         string
		src          string
		line, column int
		want         string
	}{
		{"first column", "abc", 1, 1, "abc\n^"},
		{"later line", "a &&\nbc", 2, 2, "bc\n ^"},
		{"tabs are kept", "\tx > ", 1, 3, "\tx > \n\t ^"},
		{"columns count code points", "\"é\" + x", 1, 7, "\"é\" + x\n      ^"},
		{"a column past the end points after it", "abc", 1, 4, "abc\n   ^"},
		{"CRLF line ends are dropped", "a\r\nb", 1, 1, "a\n^"},
		{"a line outside the source gives nothing", "abc", 3, 1, ""},
		{"line zero gives nothing", "abc", 0, 1, ""},
		{"column zero gives nothing", "abc", 1, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Snippet(tt.src, tt.line, tt.column); got != tt.want {
				t.Fatalf("Snippet = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestSnippetPointsAtTheIssue proves that Compile's positions and Snippet count alike:
// the caret sits under the offending name, after tabs and non-ASCII text too.
func TestSnippetPointsAtTheIssue(t *testing.T) {
	tests := []struct {
		name, src, at string
	}{
		{"an undeclared name", `event.type == "purchase" && usr.tier == "gold"`, "usr"},
		{"after non-ASCII text", `event.type == "café ☕" && usr.tier == "gold"`, "usr"},
		{"on a later line after a tab", "event.type == \"é\" &&\n\tusr.tier == \"gold\"", "usr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(tt.src)
			var ce *CompileError
			if !errors.As(err, &ce) || len(ce.Issues) == 0 {
				t.Fatalf("Compile(%q) = %v, want a *CompileError", tt.src, err)
			}
			is := ce.Issues[0]
			s := Snippet(tt.src, is.Line, is.Column)
			text, caret, _ := strings.Cut(s, "\n")
			col := len([]rune(caret)) - 1
			if !strings.HasSuffix(caret, "^") || !strings.HasPrefix(string([]rune(text)[col:]), tt.at) {
				t.Fatalf("Snippet for %+v =\n%s\nwant the caret under %q", is, s, tt.at)
			}
		})
	}
}
