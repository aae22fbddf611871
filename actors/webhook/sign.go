package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/campaignmanager/campaignmanager/persistence"
)

// Standard Webhooks header names.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// secretKey decodes a whsec_ secret into its HMAC key: the standard base64 after the
// prefix.
func secretKey(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, persistence.WebhookSecretPrefix))
	if err != nil || len(key) == 0 {
		return nil, fmt.Errorf("signing secret is not %sbase64", persistence.WebhookSecretPrefix)
	}
	return key, nil
}

// Sign is the webhook-signature header of a delivery: one "v1,<base64 HMAC-SHA256 of
// id.timestamp.body>" entry per secret, separated by spaces.
func Sign(secrets []string, id string, ts time.Time, body []byte) (string, error) {
	unix := strconv.FormatInt(ts.Unix(), 10)
	entries := make([]string, 0, len(secrets))
	for _, s := range secrets {
		key, err := secretKey(s)
		if err != nil {
			return "", err
		}
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(id))
		mac.Write([]byte{'.'})
		mac.Write([]byte(unix))
		mac.Write([]byte{'.'})
		mac.Write(body)
		entries = append(entries, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	return strings.Join(entries, " "), nil
}
