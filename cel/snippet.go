package cel

import "strings"

// Snippet returns the line of src numbered line (1-based) and below it a caret under
// column (1-based, counting Unicode code points, as Issue's Line and Column do), e.g.
// "event.amount >\n              ^". Tabs before the column are kept so that the caret
// lines up; a column past the end of the line points just after it; a CR ending the line
// is dropped. It returns "" when line is not in src or column is below 1. It is safe
// for concurrent use.
func Snippet(src string, line, column int) string {
	lines := strings.Split(src, "\n")
	if line < 1 || line > len(lines) || column < 1 {
		return ""
	}
	text := strings.TrimRight(lines[line-1], "\r")
	var pad strings.Builder
	n := 0
	for _, r := range text {
		if n == column-1 {
			break
		}
		if r == '\t' {
			pad.WriteByte('\t')
		} else {
			pad.WriteByte(' ')
		}
		n++
	}
	for ; n < column-1; n++ {
		pad.WriteByte(' ')
	}
	return text + "\n" + pad.String() + "^"
}
