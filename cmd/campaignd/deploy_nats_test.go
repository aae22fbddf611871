package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/ingress/bus/bustest"
)

// The NATS side of deploy/: deploy/nats/nats-server.conf (compose runs it), the accounts
// in deploy/k8s/nats-values.yaml, and how campaignd connects to them.

// natsConfFile is the sample nats-server configuration.
var natsConfFile = filepath.Join(deployDir, "nats", "nats-server.conf")

// natsPasswordVars are the variables the NATS configurations read the users' passwords
// from, by user.
var natsPasswordVars = map[string]string{
	bus.CampaigndUser:  "CAMPAIGN_NATS_PASSWORD",
	bus.IngestUser:     "CAMPAIGN_NATS_INGEST_PASSWORD",
	bus.DownstreamUser: "CAMPAIGN_NATS_DOWNSTREAM_PASSWORD",
}

// setNATSPasswords puts a password for each user in the environment, for nats-server's
// configuration to read, and returns them by user.
func setNATSPasswords(t *testing.T) map[string]string {
	t.Helper()
	pw := map[string]string{}
	for user, env := range natsPasswordVars {
		pw[user] = user + "0123456789abcdef0123456789abcdef"
		t.Setenv(env, pw[user])
	}
	return pw
}

// requireNATSIdentities requires the accounts and users of o (a NATS configuration of
// deploy/) to be those of campaignd's embedded server: campaignd (everything) and
// downstream (bus.DownstreamPermissions) in bus.AppAccount, ingest (bus.IngestPermissions)
// in bus.IngestAccount, each with the password from its variable, and nobody else, no
// anonymous user, no NKEY users.
func requireNATSIdentities(t *testing.T, where string, o *server.Options) {
	t.Helper()
	require.Empty(t, o.NoAuthUser, "%s: no_auth_user would let anonymous clients in", where)
	require.Empty(t, o.Nkeys, "%s: NKEY users", where)
	require.Empty(t, o.Username, "%s: a global user", where)
	require.Empty(t, o.Authorization, "%s: a token", where)
	var accounts []string
	for _, a := range o.Accounts {
		accounts = append(accounts, a.Name)
	}
	require.ElementsMatch(t, []string{bus.AppAccount, bus.IngestAccount}, accounts, "%s: accounts", where)
	want := map[string]struct {
		account string
		perms   *server.Permissions
	}{
		bus.CampaigndUser:  {bus.AppAccount, nil},
		bus.IngestUser:     {bus.IngestAccount, bus.IngestPermissions()},
		bus.DownstreamUser: {bus.AppAccount, bus.DownstreamPermissions()},
	}
	var users []string
	for _, u := range o.Users {
		users = append(users, u.Username)
		w, ok := want[u.Username]
		if !ok {
			continue
		}
		require.NotNil(t, u.Account, "%s: user %s has no account", where, u.Username)
		require.Equal(t, w.account, u.Account.Name, "%s: account of user %s", where, u.Username)
		require.Equal(t, os.Getenv(natsPasswordVars[u.Username]), u.Password, "%s: user %s's password must come from $%s", where, u.Username, natsPasswordVars[u.Username])
		requireSamePermissions(t, where+": user "+u.Username, w.perms, u.Permissions)
	}
	require.ElementsMatch(t, []string{bus.CampaigndUser, bus.IngestUser, bus.DownstreamUser}, users, "%s: users", where)
}

// requireSamePermissions compares permissions as sets of subjects.
func requireSamePermissions(t *testing.T, where string, want, got *server.Permissions) {
	t.Helper()
	if want == nil {
		require.Nil(t, got, "%s: permissions (none: everything in its account)", where)
		return
	}
	require.NotNil(t, got, "%s: no permissions: it may do everything", where)
	require.Nil(t, got.Response, "%s: response permissions", where)
	for _, p := range []struct {
		what      string
		want, got *server.SubjectPermission
	}{{"publish", want.Publish, got.Publish}, {"subscribe", want.Subscribe, got.Subscribe}} {
		require.NotNil(t, p.got, "%s: no %s permissions", where, p.what)
		require.ElementsMatch(t, p.want.Allow, p.got.Allow, "%s: %s allow", where, p.what)
		require.ElementsMatch(t, p.want.Deny, p.got.Deny, "%s: %s deny", where, p.what)
	}
}

// TestDeployNATSConfigGrantsWhatTheEmbeddedServerGrants reads deploy/nats/nats-server.conf
// as nats-server does and checks its identities, then runs a 3-node cluster from it and
// the identity suite, and campaignd (as user campaignd, with its password) against it.
func TestDeployNATSConfigGrantsWhatTheEmbeddedServerGrants(t *testing.T) {
	pw := setNATSPasswords(t)
	o, err := server.ProcessConfigFile(natsConfFile)
	require.NoError(t, err)
	requireNATSIdentities(t, natsConfFile, o)
	require.True(t, o.JetStream, "%s: JetStream", natsConfFile)

	c := bustest.StartClusterFromConfig(t, 3, natsConfFile)
	app := startApp(t, map[string]string{
		"CAMPAIGN_MODE": "ingress", "NATS_URL": c.URLs(), "CAMPAIGN_STREAM_REPLICAS": "3",
		"CAMPAIGN_NATS_USER": bus.CampaigndUser, "CAMPAIGN_NATS_PASSWORD": pw[bus.CampaigndUser],
		"CAMPAIGN_HTTP_ADDR": "127.0.0.1:0", "CAMPAIGN_DATA_DIR": t.TempDir(),
	})
	t.Cleanup(func() { closeApp(t, app) })
	requireReady(t, app)
	bustest.CheckIdentities(t, c.URLs(), bustest.Identities{
		Campaignd:  app.natsAuth,
		Ingest:     bustest.UserPassword(bus.IngestUser, pw[bus.IngestUser]),
		Downstream: bustest.UserPassword(bus.DownstreamUser, pw[bus.DownstreamUser]),
	})
}

// chartLiteral is how the NATS chart writes a string value unquoted: "<< $VAR >>".
var chartLiteral = regexp.MustCompile(`"<< (.*?) >>"`)

// TestDeployNATSValuesGrantWhatTheEmbeddedServerGrants renders config.merge of the Helm
// values as the chart does (JSON, "<< >>" unquoted) and checks its identities, runs a
// server with it and the identity suite, and checks where the passwords come from: the
// Secret nats-users, the same key for the NATS servers and campaignd.
func TestDeployNATSValuesGrantWhatTheEmbeddedServerGrants(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(k8sDir, natsValuesFile))
	require.NoError(t, err)
	var values struct {
		Config struct {
			Merge map[string]any `yaml:"merge"`
		} `yaml:"config"`
		Container struct {
			Env map[string]yaml.Node `yaml:"env"` // a value, or a map with valueFrom
		} `yaml:"container"`
	}
	require.NoError(t, yaml.Unmarshal(src, &values))
	var merged bytes.Buffer
	enc := json.NewEncoder(&merged)
	enc.SetEscapeHTML(false) // the chart writes raw JSON: "events.>", not "events.\u003e"
	require.NoError(t, enc.Encode(values.Config.Merge))
	conf := chartLiteral.ReplaceAllString(merged.String(), "$1")

	pw := setNATSPasswords(t)
	o := &server.Options{}
	require.NoError(t, o.ProcessConfigString(conf), "nats values: config.merge as nats.conf:\n%s", conf)
	requireNATSIdentities(t, "nats values: config.merge", o)

	// The passwords: each variable from the Secret nats-users, key named like it.
	var secret string
	for user, env := range natsPasswordVars {
		node, ok := values.Container.Env[env]
		require.True(t, ok, "nats values: container.env must set %s (user %s's password)", env, user)
		var e struct {
			ValueFrom struct {
				SecretKeyRef struct{ Name, Key string } `yaml:"secretKeyRef"`
			} `yaml:"valueFrom"`
		}
		require.NoError(t, node.Decode(&e), "nats values: container.env %s: valueFrom.secretKeyRef", env)
		ref := e.ValueFrom.SecretKeyRef
		require.Equal(t, env, ref.Key, "nats values: container.env %s: Secret key", env)
		require.NotEmpty(t, ref.Name, "nats values: container.env %s: a Secret", env)
		require.True(t, secret == "" || secret == ref.Name, "nats values: the passwords come from one Secret")
		secret = ref.Name
	}
	objs := loadK8s(t)
	for _, d := range objs.deployments {
		cfg := campaigndConfig(t, "Deployment "+d.Name, containerEnv(t, objs, d, envNames{}))
		require.Equal(t, bus.CampaigndUser, cfg.NATSUser, "Deployment %s: CAMPAIGN_NATS_USER", d.Name)
		var ref string
		for _, e := range campaigndContainer(t, d).Env {
			if e.Name == "CAMPAIGN_NATS_PASSWORD" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				ref = e.ValueFrom.SecretKeyRef.Name
			}
		}
		require.Equal(t, secret, ref, "Deployment %s: CAMPAIGN_NATS_PASSWORD must come from the Secret the NATS servers read", d.Name)
	}

	// The same accounts on a running server.
	o.ServerName, o.Host, o.Port = "nats-values", "127.0.0.1", -1
	o.JetStream, o.StoreDir, o.NoSigs = true, t.TempDir(), true
	ns, err := server.NewServer(o)
	require.NoError(t, err)
	go ns.Start()
	require.True(t, ns.ReadyForConnections(10*time.Second))
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	campaignd := append(bustest.UserPassword(bus.CampaigndUser, pw[bus.CampaigndUser]), nats.CustomInboxPrefix(bus.AppInboxPrefix))
	nc, err := nats.Connect(ns.ClientURL(), campaignd...)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = bus.EnsureStreams(ctx, js, bus.StreamsConfig{Partitions: 4})
	require.NoError(t, err)
	bustest.CheckIdentities(t, ns.ClientURL(), bustest.Identities{
		Campaignd:  campaignd,
		Ingest:     bustest.UserPassword(bus.IngestUser, pw[bus.IngestUser]),
		Downstream: bustest.UserPassword(bus.DownstreamUser, pw[bus.DownstreamUser]),
	})
}

// TestDeployComposeCampaigndConnectsAsItsNATSUser checks that each compose campaignd
// connects as user campaignd with the password the NATS services give that user.
func TestDeployComposeCampaigndConnectsAsItsNATSUser(t *testing.T) {
	c := loadCompose(t)
	var natsPassword string
	for name, s := range c.Services {
		if strings.HasPrefix(s.Image, "nats:") {
			for _, env := range natsPasswordVars {
				require.Contains(t, s.Environment, env, "compose service %s: nats-server.conf reads %s", name, env)
			}
			natsPassword = s.Environment["CAMPAIGN_NATS_PASSWORD"]
		}
	}
	require.NotEmpty(t, natsPassword)
	for name, s := range c.campaignd(t) {
		cfg := campaigndConfig(t, "compose service "+name, s.env(t))
		require.Equal(t, bus.CampaigndUser, cfg.NATSUser, "compose service %s: CAMPAIGN_NATS_USER", name)
		require.Equal(t, natsPassword, s.Environment["CAMPAIGN_NATS_PASSWORD"], "compose service %s: CAMPAIGN_NATS_PASSWORD must be the NATS services' one", name)
	}
}

// composeNATSOptions are the options nats-server builds from a compose service's command
// line, with its configuration file read from deploy/ (where the service mounts it from)
// and the passwords from setNATSPasswords.
func composeNATSOptions(t *testing.T, name string, s composeService) *server.Options {
	t.Helper()
	setNATSPasswords(t)
	args := slices.Clone(s.Command)
	mounts := s.mounts()
	for i := range args {
		if slices.Contains([]string{"-c", "-config", "--config"}, args[i]) && i+1 < len(args) {
			src, ok := mounts[args[i+1]]
			require.True(t, ok, "compose service %s: configuration file %s is not mounted from deploy/", name, args[i+1])
			args[i+1] = filepath.Join(deployDir, src)
		}
	}
	fs := flag.NewFlagSet("nats-server", flag.ContinueOnError)
	noop := func() {}
	o, err := server.ConfigureOptions(fs, args, noop, noop, noop)
	require.NoError(t, err, "compose service %s: nats-server %v", name, args)
	return o
}

// volumeTargets are where a service mounts volumes and files.
func (s composeService) volumeTargets() []string {
	var out []string
	for _, v := range s.Volumes {
		if parts := strings.Split(v, ":"); len(parts) >= 2 {
			out = append(out, parts[1])
		}
	}
	return out
}
