package main

// Bus security (DESIGN §11): who may connect to campaignd's embedded NATS server and do
// what, the passwords campaignd generates and keeps, the credentials campaignd connects
// to an external NATS with, and how those settings are checked at start.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/ingress/bus/bustest"
	"github.com/campaignmanager/campaignmanager/ingress/event"
	"github.com/campaignmanager/campaignmanager/persistence/pgtest"
)

// capturedApp is campaignd in-process with what it printed (stdout) and logged (debug).
type capturedApp struct {
	*App
	out, logs *lockedBuffer
}

// startCaptured is startApp keeping campaignd's output and its logs at debug level; the
// app is closed in t.Cleanup unless the test closes it first.
func startCaptured(t *testing.T, vars map[string]string) *capturedApp {
	t.Helper()
	app, err := tryStartApp(t, vars)
	require.NoError(t, err)
	t.Cleanup(func() { _ = app.Close(context.Background()) })
	return app
}

// tryStartApp starts campaignd in-process with vars and returns Start's error (the app
// closed) instead of failing.
func tryStartApp(t *testing.T, vars map[string]string) (*capturedApp, error) {
	t.Helper()
	cfg, err := loadConfig(nil, func(k string) string { return vars[k] }, io.Discard)
	require.NoError(t, err)
	c := &capturedApp{out: &lockedBuffer{}, logs: &lockedBuffer{}}
	log := slog.New(slog.NewJSONHandler(io.MultiWriter(c.logs, testWriter{t}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	c.App = newApp(cfg, log, c.out)
	c.passwordCost = bcrypt.MinCost
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		_ = c.Close(context.Background())
		return nil, err
	}
	return c, nil
}

// embeddedVars are the settings of an all-in-one campaignd with the embedded NATS server
// on the database dbURL and the data dir dataDir, plus extra.
func embeddedVars(dbURL, dataDir string, extra map[string]string) map[string]string {
	vars := map[string]string{
		"CAMPAIGN_HTTP_ADDR": "127.0.0.1:0", "CAMPAIGN_NATS_LISTEN": "127.0.0.1:-1",
		"DATABASE_URL": dbURL, "CAMPAIGN_DATA_DIR": dataDir,
		"CAMPAIGN_JWT_SECRET": testSecret, "CAMPAIGN_ADMIN_PASSWORD": adminPassword, "CAMPAIGN_PARTITIONS": "8",
	}
	maps.Copy(vars, extra)
	return vars
}

// dataDirPassword is the password campaignd keeps in its data dir file name.
func dataDirPassword(t *testing.T, dataDir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, name))
	require.NoError(t, err)
	return strings.TrimSpace(string(b))
}

// connectAs connects to url with opts, closed in t.Cleanup.
func connectAs(t *testing.T, url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return nc, js
}

// TestEmbeddedNATSLetsEachIdentityDoOnlyItsJob runs campaignd with its embedded server
// (ingest's password from its variable, downstream's generated) and checks through it:
// a service publishes a purchase as ingest and the engine rewards it; downstream reads
// and acks the reward from a durable consumer; downstream, listening on _INBOX.>, sees
// none of campaignd's own traffic (the event, the API keys); and the identity suite.
func TestEmbeddedNATSLetsEachIdentityDoOnlyItsJob(t *testing.T) {
	const ingestPassword = "ingest-password-from-env"
	dataDir := t.TempDir()
	app := startCaptured(t, embeddedVars(pgtest.New(t), dataDir, map[string]string{"CAMPAIGN_NATS_INGEST_PASSWORD": ingestPassword}))
	downstreamPassword := dataDirPassword(t, dataDir, downstreamPasswordFile)
	out := app.out.take()
	require.Contains(t, out, fmt.Sprintf("NATS user %q created: password %q", bus.DownstreamUser, downstreamPassword))
	require.NotContains(t, out, `NATS user "ingest" created`, "ingest's password is the configured one")
	require.NoFileExists(t, filepath.Join(dataDir, ingestPasswordFile))

	e := &env{client: *newClient(t, "http://"+app.http.Addr(), app.NATSURL, app.natsAuth...), dataDir: dataDir, app: app.App}
	e.token = e.login("admin", adminPassword)
	e.createCampaign(tenPercent)

	// downstream listens to every inbox it may.
	snooper, snooperJS := connectAs(t, app.NATSURL, nats.UserInfo(bus.DownstreamUser, downstreamPassword))
	inboxes, err := snooper.SubscribeSync("_INBOX.>")
	require.NoError(t, err)
	require.NoError(t, snooper.Flush())
	marker := "marker-" + randomToken(8)

	// An API key named marker travels to ingress through KV.
	var key struct{ Key string }
	e.do("POST", "/v1/api-keys", e.token, map[string]any{"name": marker}, http.StatusCreated, &key)
	poll(t, patience, "the API key reached ingress", func() bool { _, ok := app.keys.CheckAPIKey(key.Key); return ok })

	// A backend service publishes a purchase as ingest.
	_, ingestJS := connectAs(t, app.NATSURL, nats.UserInfo(bus.IngestUser, ingestPassword))
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	ack, err := publishEvent(ctx, ingestJS, map[string]any{"id": "nats-auth-1", "user_id": "alice", "type": "purchase", "amount": 100,
		"attributes": map[string]any{"marker": marker}})
	require.NoError(t, err)
	require.Equal(t, bus.EventsStream, ack.Stream)
	require.Equal(t, int64(10), e.waitUser("alice", 1).Points)

	// A downstream service reads the reward from its durable consumer and acks it.
	_, downstreamJS := connectAs(t, app.NATSURL, nats.UserInfo(bus.DownstreamUser, downstreamPassword))
	rewards, err := downstreamJS.Stream(ctx, bus.RewardsStream)
	require.NoError(t, err)
	cons, err := rewards.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "mailer", AckPolicy: jetstream.AckExplicitPolicy,
		FilterSubject: bus.RewardSubject("ten-percent", event.Token("alice"))})
	require.NoError(t, err)
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(patience))
	require.NoError(t, err)
	var got []string
	for m := range batch.Messages() {
		var r struct {
			EventID string `json:"event_id"`
		}
		require.NoError(t, json.Unmarshal(m.Data(), &r), string(m.Data()))
		got = append(got, r.EventID)
		require.NoError(t, m.DoubleAck(ctx))
	}
	require.NoError(t, batch.Error())
	require.Equal(t, []string{"nats-auth-1"}, got)
	info, err := cons.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(1), info.AckFloor.Consumer, "the reward is acked")

	// Everything sent to the snooper before its own answer: none of it is campaignd's.
	_, err = snooperJS.AccountInfo(ctx)
	require.NoError(t, err)
	for {
		m, err := inboxes.NextMsgWithContext(ctx)
		require.NoError(t, err, "the snooper's own answer")
		require.NotContains(t, string(m.Data), marker, "downstream received campaignd's traffic on %s", m.Subject)
		if strings.Contains(string(m.Data), "io.nats.jetstream.api.v1.account_info_response") {
			break
		}
	}

	bustest.CheckIdentities(t, app.NATSURL, bustest.Identities{
		Campaignd:  app.natsAuth,
		Ingest:     bustest.UserPassword(bus.IngestUser, ingestPassword),
		Downstream: bustest.UserPassword(bus.DownstreamUser, downstreamPassword),
	})
}

// TestEmbeddedNATSLimitsDownstreamToTheNamedConsumers: CAMPAIGN_NATS_DOWNSTREAM_CONSUMERS
// reaches the embedded server: downstream uses the consumer named there and no other, not
// the engines' webhook consumers.
func TestEmbeddedNATSLimitsDownstreamToTheNamedConsumers(t *testing.T) {
	dataDir := t.TempDir()
	app := startCaptured(t, embeddedVars(pgtest.New(t), dataDir, map[string]string{"CAMPAIGN_NATS_DOWNSTREAM_CONSUMERS": " mailer , crm,mailer"}))
	bustest.CheckDownstreamLimitedTo(t, app.NATSURL, bustest.Identities{
		Campaignd:  app.natsAuth,
		Downstream: bustest.UserPassword(bus.DownstreamUser, dataDirPassword(t, dataDir, downstreamPasswordFile)),
	}, "mailer")
}

// TestEmbeddedNATSPasswordsAreGeneratedKeptAndShownOnce starts campaignd three times on
// one data dir: the first start generates the three passwords into files of mode 0600
// and prints ingest's and downstream's (never campaignd's); the banner says how to
// connect; the second start reuses them silently; the third takes ingest's from its
// variable, and the generated one stops working. No password is ever logged.
func TestEmbeddedNATSPasswordsAreGeneratedKeptAndShownOnce(t *testing.T) {
	dbURL, dataDir := pgtest.New(t), t.TempDir()
	files := []string{campaigndPasswordFile, ingestPasswordFile, downstreamPasswordFile}

	first := startCaptured(t, embeddedVars(dbURL, dataDir, nil))
	passwords := map[string]string{}
	for _, f := range files {
		fi, err := os.Stat(filepath.Join(dataDir, f))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "%s: mode", f)
		passwords[f] = dataDirPassword(t, dataDir, f)
		require.Len(t, passwords[f], 32, "%s: 16 random bytes, hex", f)
	}
	out := first.out.take()
	for user, f := range map[string]string{bus.IngestUser: ingestPasswordFile, bus.DownstreamUser: downstreamPasswordFile} {
		require.Contains(t, out, fmt.Sprintf("NATS user %q created: password %q (shown once; kept in %s", user, passwords[f], filepath.Join(dataDir, f)))
	}
	require.NotContains(t, out, passwords[campaigndPasswordFile], "campaignd's own password is not printed")
	var banner bytes.Buffer
	printBanner(&banner, first.App)
	ingestFile := filepath.Join(dataDir, ingestPasswordFile)
	require.Contains(t, banner.String(), "no anonymous access")
	require.Contains(t, banner.String(), "password in "+ingestFile)
	require.Contains(t, banner.String(), "password in "+filepath.Join(dataDir, downstreamPasswordFile))
	require.Contains(t, banner.String(), fmt.Sprintf(`nats --server %s --user ingest --password "$(cat %s)" pub events.alice`, first.NATSURL, ingestFile))
	for _, pw := range passwords {
		require.NotContains(t, banner.String(), pw, "the banner shows where a password is, not the password")
	}
	connectAs(t, first.NATSURL, nats.UserInfo(bus.IngestUser, passwords[ingestPasswordFile]))
	connectAs(t, first.NATSURL, nats.UserInfo(bus.DownstreamUser, passwords[downstreamPasswordFile]))
	logs := first.logs.take()
	require.NoError(t, first.Close(context.Background()))

	second := startCaptured(t, embeddedVars(dbURL, dataDir, nil))
	require.NotContains(t, second.out.take(), "NATS user", "the kept passwords are not printed again")
	for _, f := range files {
		require.Equal(t, passwords[f], dataDirPassword(t, dataDir, f), "%s: kept", f)
	}
	connectAs(t, second.NATSURL, nats.UserInfo(bus.CampaigndUser, passwords[campaigndPasswordFile]))
	connectAs(t, second.NATSURL, nats.UserInfo(bus.IngestUser, passwords[ingestPasswordFile]))
	logs += second.logs.take()
	require.NoError(t, second.Close(context.Background()))

	const chosen = "chosen-ingest-password"
	third := startCaptured(t, embeddedVars(dbURL, dataDir, map[string]string{"CAMPAIGN_NATS_INGEST_PASSWORD": chosen}))
	connectAs(t, third.NATSURL, nats.UserInfo(bus.IngestUser, chosen))
	_, err := nats.Connect(third.NATSURL, nats.UserInfo(bus.IngestUser, passwords[ingestPasswordFile]))
	require.ErrorIs(t, err, nats.ErrAuthorization, "the generated password gives way to the configured one")
	banner.Reset()
	printBanner(&banner, third.App)
	require.Contains(t, banner.String(), `--user ingest --password "$CAMPAIGN_NATS_INGEST_PASSWORD" pub events.alice`)
	logs += third.logs.take()

	require.NotEmpty(t, logs)
	for _, pw := range append(slices.Collect(maps.Values(passwords)), chosen) {
		require.NotContains(t, logs, pw, "a NATS password in the logs")
	}
}

// externalNATS is a NATS server that authenticates campaignd in one of the ways nats.go
// offers, with the settings that make campaignd connect that way.
type externalNATS struct {
	name  string
	start func(t *testing.T) (url string, settings map[string]string)
}

var externalNATSServers = []externalNATS{
	{"user and password (the embedded server's users)", func(t *testing.T) (string, map[string]string) {
		ns := bustest.StartSecure(t)
		return ns.ClientURL(), map[string]string{"CAMPAIGN_NATS_USER": bus.CampaigndUser, "CAMPAIGN_NATS_PASSWORD": ns.Passwords.Campaignd}
	}},
	{"an NKEY seed file", func(t *testing.T) (string, map[string]string) {
		kp, err := nkeys.CreateUser()
		require.NoError(t, err)
		pub, err := kp.PublicKey()
		require.NoError(t, err)
		seed, err := kp.Seed()
		require.NoError(t, err)
		file := writeFile(t, "campaignd.nk", seed)
		ns := runServer(t, &server.Options{Nkeys: []*server.NkeyUser{{Nkey: pub}}})
		return ns.ClientURL(), map[string]string{"CAMPAIGN_NATS_NKEY": file}
	}},
	{"a credentials file (operator, account and user JWTs)", func(t *testing.T) (string, map[string]string) {
		operator, err := nkeys.CreateOperator()
		require.NoError(t, err)
		opub, err := operator.PublicKey()
		require.NoError(t, err)
		oc := jwt.NewOperatorClaims(opub)
		resolver := &server.MemAccResolver{}
		newAccount := func(limits bool) (nkeys.KeyPair, string) {
			kp, err := nkeys.CreateAccount()
			require.NoError(t, err)
			pub, err := kp.PublicKey()
			require.NoError(t, err)
			ac := jwt.NewAccountClaims(pub)
			if limits {
				ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
			}
			token, err := ac.Encode(operator)
			require.NoError(t, err)
			require.NoError(t, resolver.Store(pub, token))
			return kp, pub
		}
		_, sysPub := newAccount(false)
		account, _ := newAccount(true)
		user, err := nkeys.CreateUser()
		require.NoError(t, err)
		upub, err := user.PublicKey()
		require.NoError(t, err)
		userJWT, err := jwt.NewUserClaims(upub).Encode(account)
		require.NoError(t, err)
		seed, err := user.Seed()
		require.NoError(t, err)
		creds, err := jwt.FormatUserConfig(userJWT, seed)
		require.NoError(t, err)
		ns := runServer(t, &server.Options{TrustedOperators: []*jwt.OperatorClaims{oc}, AccountResolver: resolver, SystemAccount: sysPub})
		return ns.ClientURL(), map[string]string{"CAMPAIGN_NATS_CREDS": writeFile(t, "campaignd.creds", creds)}
	}},
	{"TLS with a client certificate", func(t *testing.T) (string, map[string]string) {
		pki := newTestPKI(t)
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: pki.serverCert, KeyFile: pki.serverKey, CaFile: pki.ca, Verify: true})
		require.NoError(t, err)
		ns := runServer(t, &server.Options{TLS: true, TLSVerify: true, TLSConfig: tc, TLSTimeout: 5})
		return ns.ClientURL(), map[string]string{"CAMPAIGN_NATS_TLS_CA": pki.ca, "CAMPAIGN_NATS_TLS_CERT": pki.clientCert, "CAMPAIGN_NATS_TLS_KEY": pki.clientKey}
	}},
}

// TestCampaigndConnectsToAnExternalNATSWithItsCredentials starts campaignd (ingress
// mode: no Postgres needed) against external servers that want each kind of credential:
// without the settings it cannot connect; with them it is ready.
func TestCampaigndConnectsToAnExternalNATSWithItsCredentials(t *testing.T) {
	for _, srv := range externalNATSServers {
		t.Run(srv.name, func(t *testing.T) {
			url, settings := srv.start(t)
			vars := map[string]string{"CAMPAIGN_MODE": "ingress", "NATS_URL": url, "CAMPAIGN_HTTP_ADDR": "127.0.0.1:0", "CAMPAIGN_DATA_DIR": t.TempDir()}
			_, err := tryStartApp(t, vars)
			require.ErrorContains(t, err, "NATS_URL: connect to", "without the settings")

			maps.Copy(vars, settings)
			app := startCaptured(t, vars)
			requireReady(t, app.App)
		})
	}
}

// TestNATSSettingsAreCheckedAtStart checks each bad NATS credential setting is refused
// at start with a line naming its variable, and campaignd exits with status 2.
func TestNATSSettingsAreCheckedAtStart(t *testing.T) {
	dir := t.TempDir()
	junk := writeFile(t, "junk", []byte("not a key\n"))
	pki := newTestPKI(t)
	const url = "nats://127.0.0.1:4222"
	cases := []struct {
		name string
		vars map[string]string
		want string
	}{
		{"a credentials file that does not exist", map[string]string{"NATS_URL": url, "CAMPAIGN_NATS_CREDS": filepath.Join(dir, "none.creds")}, "CAMPAIGN_NATS_CREDS: cannot read the file"},
		{"a directory for a file", map[string]string{"NATS_URL": url, "CAMPAIGN_NATS_NKEY": dir}, "CAMPAIGN_NATS_NKEY: " + dir + " is not a regular file"},
		{"a credentials file without a JWT", map[string]string{"NATS_URL": url, "CAMPAIGN_NATS_CREDS": junk}, "CAMPAIGN_NATS_CREDS: " + junk + " holds no user JWT"},
		{"an NKEY file without a seed", map[string]string{"NATS_URL": url, "CAMPAIGN_NATS_NKEY": junk}, "CAMPAIGN_NATS_NKEY: " + junk},
		{"a CA file without certificates", map[string]string{"NATS_URL": url, "CAMPAIGN_NATS_TLS_CA": junk}, "CAMPAIGN_NATS_TLS_CA: "},
		{"a client certificate with the wrong key", map[string]string{"NATS_URL": url, "CAMPAIGN_NATS_TLS_CERT": pki.clientCert, "CAMPAIGN_NATS_TLS_KEY": pki.serverKey}, "CAMPAIGN_NATS_TLS_CERT, CAMPAIGN_NATS_TLS_KEY: "},
		{"a client certificate without its key", map[string]string{"NATS_URL": url, "CAMPAIGN_NATS_TLS_CERT": pki.clientCert}, "CAMPAIGN_NATS_TLS_CERT: needs CAMPAIGN_NATS_TLS_KEY"},
		{"a key without its certificate", map[string]string{"NATS_URL": url, "CAMPAIGN_NATS_TLS_KEY": pki.clientKey}, "CAMPAIGN_NATS_TLS_KEY: needs CAMPAIGN_NATS_TLS_CERT"},
		{"a user without a password", map[string]string{"NATS_URL": url, "CAMPAIGN_NATS_USER": "campaignd"}, "CAMPAIGN_NATS_USER: needs CAMPAIGN_NATS_PASSWORD"},
		{"a password without a user", map[string]string{"NATS_URL": url, "CAMPAIGN_NATS_PASSWORD": "secret"}, "CAMPAIGN_NATS_PASSWORD: needs CAMPAIGN_NATS_USER"},
		{"two ways to authenticate", map[string]string{"NATS_URL": url, "CAMPAIGN_NATS_NKEY": junk, "CAMPAIGN_NATS_USER": "u", "CAMPAIGN_NATS_PASSWORD": "p"},
			"CAMPAIGN_NATS_USER: use one way to authenticate, not CAMPAIGN_NATS_NKEY and CAMPAIGN_NATS_USER"},
		{"external credentials for the embedded server", map[string]string{"CAMPAIGN_NATS_USER": "u", "CAMPAIGN_NATS_PASSWORD": "p"},
			"CAMPAIGN_NATS_USER: only for an external NATS (NATS_URL)"},
		{"TLS for the embedded server", map[string]string{"CAMPAIGN_NATS_TLS_CA": pki.ca}, "CAMPAIGN_NATS_TLS_CA: only for an external NATS (NATS_URL)"},
		{"the embedded server's passwords with an external NATS", map[string]string{"NATS_URL": url, "CAMPAIGN_NATS_DOWNSTREAM_PASSWORD": "downstream-password"},
			"CAMPAIGN_NATS_DOWNSTREAM_PASSWORD: only for the embedded NATS server"},
		{"a short ingest password", map[string]string{"CAMPAIGN_NATS_INGEST_PASSWORD": "short"}, "CAMPAIGN_NATS_INGEST_PASSWORD: must be at least 12 characters"},
		{"a downstream consumer that is not one token", map[string]string{"CAMPAIGN_NATS_DOWNSTREAM_CONSUMERS": "mailer,crm.eu"},
			`CAMPAIGN_NATS_DOWNSTREAM_CONSUMERS: consumer names are 1 to 64 letters, digits, '-' or '_', got "crm.eu"`},
		{"a webhook consumer for downstream", map[string]string{"CAMPAIGN_NATS_DOWNSTREAM_CONSUMERS": "webhook-wh_1"},
			`CAMPAIGN_NATS_DOWNSTREAM_CONSUMERS: "webhook-wh_1": names starting with "webhook-" are the engines' webhook consumers`},
		{"downstream's consumers with an external NATS", map[string]string{"NATS_URL": url, "CAMPAIGN_NATS_DOWNSTREAM_CONSUMERS": "mailer"},
			"CAMPAIGN_NATS_DOWNSTREAM_CONSUMERS: only for the embedded NATS server"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := run(context.Background(), nil, func(k string) string { return tc.vars[k] }, io.Discard, &stderr)
			require.Equal(t, 2, code, stderr.String())
			require.Contains(t, stderr.String(), tc.want)
		})
	}
}

// runServer starts a JetStream server with opts (an external NATS for campaignd) on a
// free loopback port, stopped in t.Cleanup.
func runServer(t *testing.T, opts *server.Options) *server.Server {
	t.Helper()
	opts.Host, opts.Port, opts.NoSigs = "127.0.0.1", -1, true
	opts.JetStream, opts.StoreDir = true, t.TempDir()
	ns, err := server.NewServer(opts)
	require.NoError(t, err)
	go ns.Start()
	require.True(t, ns.ReadyForConnections(10*time.Second), "nats server ready")
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns
}

// writeFile writes data to a new file name in a temporary directory (0600).
func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, data, 0o600))
	return path
}

// testPKI is a CA and the server (127.0.0.1) and client certificates it signed, as PEM
// files.
type testPKI struct {
	ca, serverCert, serverKey, clientCert, clientKey string
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "campaign test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	issue := func(serial int64, name string, usage x509.ExtKeyUsage) (certFile, keyFile string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		require.NoError(t, err)
		keyDER, err := x509.MarshalECPrivateKey(key)
		require.NoError(t, err)
		return writeFile(t, name+".pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
			writeFile(t, name+"-key.pem", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	}
	p := testPKI{ca: writeFile(t, "ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))}
	p.serverCert, p.serverKey = issue(2, "server", x509.ExtKeyUsageServerAuth)
	p.clientCert, p.clientKey = issue(3, "campaignd", x509.ExtKeyUsageClientAuth)
	return p
}

// requireReady polls the app's /readyz until it answers 200.
func requireReady(t *testing.T, app *App) {
	t.Helper()
	c := newClient(t, "http://"+app.http.Addr(), "")
	poll(t, patience, "/readyz answers 200", func() bool {
		status, _ := c.raw("GET", "/readyz", "", nil)
		return status == http.StatusOK
	})
}

// closeApp closes an app startApp started.
func closeApp(t *testing.T, app *App) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, app.Close(ctx))
}
