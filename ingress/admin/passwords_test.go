package admin

import (
	"strings"
	"testing"
)

func TestCheckPasswordRefusesShortRepeatedCommonAndUsernamePasswords(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, pw, username, reason string // reason "" means accepted
	}{
		{"a long phrase is accepted", "a long passphrase", "vera", ""},
		{"twelve characters are enough", "tq8-vx2-m4pz", "vera", ""},
		{"twelve multi-byte characters are enough", "ééééééééééé1", "vera", ""},
		{"72 bytes are accepted", strings.Repeat("ab", 36), "vera", ""},
		{"the audit's 12345678 is refused", "12345678", "vera", "at least 12 characters"},
		{"the audit's password is refused", "password", "vera", "at least 12 characters"},
		{"eleven characters are refused", "tq8-vx2-m4p", "vera", "at least 12 characters"},
		{"73 bytes are refused", strings.Repeat("ab", 36) + "c", "vera", "at most 72 bytes"},
		{"one character repeated is refused", "zzzzzzzzzzzzzz", "vera", "repeated"},
		{"a common long password is refused", "123456789012", "vera", "common"},
		{"a common password in capitals is refused", "PASSWORDPASSWORD", "vera", "common"},
		{"a common word with digits and symbols is refused", "Password2024!", "vera", "common"},
		{"a keyboard walk is refused", "1qaz2wsx3edc", "vera", "common"},
		{"the username is refused", "Administrator", "administrator", "username"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckPassword(tt.pw, tt.username)
			switch {
			case tt.reason == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.reason != "" && (err == nil || !strings.Contains(err.Error(), tt.reason)):
				t.Fatalf("err = %v, want one saying %q", err, tt.reason)
			}
		})
	}
	if len(commonPasswords) < 200 {
		t.Fatalf("the common password list has %d entries", len(commonPasswords))
	}
}
