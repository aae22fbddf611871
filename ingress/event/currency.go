package event

import (
	_ "embed"
	"strings"
)

//go:embed iso4217.txt
var iso4217 string

// currencies maps each active ISO 4217 code to itself, so that a lookup with
// string(bytes) both validates a code and yields a string without allocating.
var currencies = parseCurrencies(iso4217)

func parseCurrencies(list string) map[string]string {
	m := make(map[string]string, 200)
	for line := range strings.Lines(list) {
		code := strings.TrimSpace(line)
		if code == "" || code[0] == '#' {
			continue
		}
		m[code] = code
	}
	return m
}

// IsCurrency reports whether code is an active ISO 4217 alphabetic code (three upper-case
// letters, e.g. "EUR"). It is safe for concurrent use.
func IsCurrency(code string) bool {
	_, ok := currencies[code]
	return ok
}
