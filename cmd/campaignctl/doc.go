// Command campaignctl is the admin CLI of Campaign Manager, in the style of kubectl: it
// talks to campaignd's admin HTTP API (DESIGN.md §8) with a JWT it caches per server.
//
//	campaignctl login --username admin            # password from a prompt or --password-stdin
//	campaignctl campaigns diff -f campaign.yaml   # what apply would change; exit 1 when anything
//	campaignctl campaigns apply -f campaign.yaml  # create or update; "unchanged" when equal; --dry-run
//	campaignctl campaigns list -o wide            # or -o json, -o yaml
//	campaignctl completion bash                   # or zsh, fish; campaignctl version
//	campaignctl rules validate -f rule.yaml
//	campaignctl users get alice                   # users rewards alice, users coupons alice
//	campaignctl pools create --name June --pattern SHIP-####-#### --count 5000
//	campaignctl pools import june -f codes.txt    # one code per line, sent in chunks; list, show, generate
//
// The server comes from --server, else CAMPAIGN_SERVER, else http://127.0.0.1:8080. Tokens
// are cached in os.UserConfigDir()/campaignctl/config.json (mode 0600), keyed by the
// normalised server URL (cacheKey: localhost, 127.0.0.1 and ::1 are one host);
// CAMPAIGNCTL_CONFIG_DIR overrides the directory.
//
// Exit codes: 0 success, 1 a server or other error (or differences found by campaigns
// diff), 2 a usage error, 3 not logged in (or the server answered 401), 4 not found.
//
// The CLI owns no goroutines beyond the HTTP client's: each command is one or a few
// requests, run synchronously under the context main passes in (cancelled by SIGINT).
package main
