package main

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestHorizonsAreCheckedAtStart: a dedup horizon not longer than EVENTS' 7-day history,
// or a refund horizon shorter than it, is refused at start on a line naming its
// variable, and campaignd exits with status 2; the defaults are 8 and 90 days.
func TestHorizonsAreCheckedAtStart(t *testing.T) {
	cases := []struct {
		name string
		vars map[string]string
		want string
	}{
		{"dedup horizon as long as EVENTS' max age", map[string]string{"CAMPAIGN_DEDUP_HORIZON": "168h"},
			"CAMPAIGN_DEDUP_HORIZON: must be longer than EVENTS' max age 168h0m0s"},
		{"dedup horizon of a day", map[string]string{"CAMPAIGN_DEDUP_HORIZON": "24h"}, "CAMPAIGN_DEDUP_HORIZON: must be longer than EVENTS' max age"},
		{"dedup horizon not a duration", map[string]string{"CAMPAIGN_DEDUP_HORIZON": "8 days"}, "CAMPAIGN_DEDUP_HORIZON: must be a positive duration"},
		{"refund horizon shorter than the dedup one", map[string]string{"CAMPAIGN_DEDUP_HORIZON": "240h", "CAMPAIGN_REFUND_HORIZON": "200h"},
			"CAMPAIGN_REFUND_HORIZON: must be at least CAMPAIGN_DEDUP_HORIZON (240h0m0s), got 200h0m0s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := run(context.Background(), nil, func(k string) string { return tc.vars[k] }, io.Discard, &stderr)
			require.Equal(t, 2, code, stderr.String())
			require.Contains(t, stderr.String(), tc.want)
		})
	}
	cfg, err := loadConfig(nil, func(string) string { return "" }, io.Discard)
	require.NoError(t, err)
	require.Equal(t, 8*24*time.Hour, cfg.DedupHorizon)
	require.Equal(t, 90*24*time.Hour, cfg.RefundHorizon)
	cfg, err = loadConfig([]string{"-dedup-horizon", "169h", "-refund-horizon", "169h"}, func(string) string { return "" }, io.Discard)
	require.NoError(t, err, "a horizon just over EVENTS' max age, refunds as long")
	require.Equal(t, 169*time.Hour, cfg.RefundHorizon)
}
