package ingress

import (
	"fmt"
	"net/url"
	"testing"

	"github.com/jackc/pgx/v5"
)

// seedUser writes a user and n rewards straight into the database.
func seedUser(t *testing.T, env *testEnv, id string, n int) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), env.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	if _, err := conn.Exec(t.Context(), `INSERT INTO users (user_id, tier, points, first_seen) VALUES ($1, 'gold', 42, now())`, id); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := conn.Exec(t.Context(), `INSERT INTO rewards (id, user_id, campaign_id, campaign_version, event_id, type, points, occurred_at)
			VALUES ($1, $2, 'c', 1, $3, 'points', 10, now())`, fmt.Sprintf("r%d-%s", i, id), id, fmt.Sprintf("e%d", i)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestUserIDsRoundTripThroughURLEscaping(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	viewer := env.tokens["viewer"]
	ids := []string{"plain", "a/b", "with space", "100%", "Zoë 🎁", "?q=1#frag", "..", "a+b"}
	for _, id := range ids {
		seedUser(t, env, id, 0)
	}
	for _, id := range ids {
		t.Run(id, func(t *testing.T) {
			out := env.expect(t, 200, "GET", "/v1/users/"+url.PathEscape(id), viewer, nil)
			if out["user_id"] != id || out["tier"] != "gold" || out["points"] != float64(42) {
				t.Fatalf("user = %v", out)
			}
		})
	}
	env.expect(t, 404, "GET", "/v1/users/"+url.PathEscape("never seen/ü"), viewer, nil)
	env.expect(t, 404, "GET", "/v1/users/ghost/rewards", viewer, nil)
	env.expect(t, 401, "GET", "/v1/users/plain", "", nil)
}

func TestUserRewardsPageOldestFirst(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	viewer := env.tokens["viewer"]
	seedUser(t, env, "shopper/1", 3)
	base := "/v1/users/" + url.PathEscape("shopper/1") + "/rewards"

	first := env.expect(t, 200, "GET", base+"?limit=2", viewer, nil)
	rs := first["rewards"].([]any)
	if len(rs) != 2 || rs[0].(map[string]any)["id"] != "r0-shopper/1" || first["next_cursor"] == nil {
		t.Fatalf("first page = %v", first)
	}
	second := env.expect(t, 200, "GET", base+"?limit=2&cursor="+first["next_cursor"].(string), viewer, nil)
	rs = second["rewards"].([]any)
	if len(rs) != 1 || rs[0].(map[string]any)["id"] != "r2-shopper/1" || second["next_cursor"] != nil {
		t.Fatalf("second page = %v", second)
	}
	all := env.expect(t, 200, "GET", base, viewer, nil)
	if len(all["rewards"].([]any)) != 3 {
		t.Fatalf("default page = %v", all)
	}
	for _, q := range []string{"?limit=0", "?limit=1001", "?limit=x", "?cursor=-1", "?cursor=abc"} {
		env.expect(t, 400, "GET", base+q, viewer, nil)
	}
}
