package bus

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"github.com/nats-io/nats-server/v2/server"
)

// Who may do what on the bus (DESIGN §11). The embedded server and the sample
// configuration for an external cluster (deploy/nats/nats-server.conf) both have these
// accounts and users, with these permissions; there is no anonymous access, and the
// system account has no user.
//
// AppAccount holds every stream and bucket and two users: campaignd (everything in the
// account) and downstream (DownstreamPermissions). IngestAccount holds only the user
// ingest (IngestPermissions), whose publishes to events.> reach the app account through a
// service import. Why an account of its own: NATS checks a publish's subject against the
// permissions but not its reply subject, and JetStream sends its ack to the reply
// subject. In the app account, a publish to events.x with the reply subject
// $KV.campaigns.<id> would store JetStream's ack over that campaign. Through the import the
// reply is rewritten, and the ack goes back to the ingest account, where nothing listens
// but the publisher.
const (
	// AppAccount is the account of campaignd, its streams and buckets, and downstream.
	AppAccount = "CAMPAIGN"
	// IngestAccount is the account of the ingest identity.
	IngestAccount = "INGEST"

	// CampaigndUser is campaignd's own identity: everything in AppAccount.
	CampaigndUser = "campaignd"
	// IngestUser is the identity of backend services that publish events: publish to
	// events.> and receive the acks, nothing else.
	IngestUser = "ingest"
	// DownstreamUser is the identity of services that consume REWARDS and LOYALTY, and
	// nothing else.
	DownstreamUser = "downstream"

	// AppInboxPrefix is the inbox prefix of campaignd's own connections. Downstream, in
	// the same account, receives its replies on _INBOX.>; campaignd's replies (its KV
	// reads, the EVENTS messages it fetches, API answers) use this prefix instead, which
	// downstream may not subscribe to.
	AppInboxPrefix = "_INBOX_campaignd"
)

// IngestPermissions are the ingest identity's: publish to events.> (never ops.>, the
// JetStream API or KV), and subscribe to _INBOX.> for JetStream's acks. It returns a new
// value on each call.
func IngestPermissions() *server.Permissions {
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: []string{KindEvents + ".>"}},
		Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
	}
}

// DownstreamPermissions are the downstream identity's: what a durable pull consumer of
// REWARDS and LOYALTY needs from nats.go's jetstream package, and nothing else. Publish to
// the JetStream API for the account info, those two streams' info, creating (or
// updating) and looking up their consumers, pulling messages, and acking them; subscribe
// to _INBOX.> for the answers and messages. Not EVENTS, DLQ, the KV buckets, the core
// subjects of any stream, nor any delete, purge or stream-changing API. It returns a new
// value on each call.
//
// With consumers named, those consumer subjects name them: downstream may create, look
// up, pull from and ack only the durable consumers of these names, not the engines'
// webhook consumers (webhook-<id>) on the same streams nor any other. Without, it may use
// any consumer of the two streams (consumer names are not subject prefixes NATS can
// match), the webhook consumers included: a notice it acks there never reaches that
// endpoint.
//
// A limit NATS cannot express: a consumer's configuration is in the request body, so
// downstream could also create a push consumer on REWARDS or LOYALTY whose deliver
// subject is another subject of the account. Give the identity to trusted downstream
// services only.
func DownstreamPermissions(consumers ...string) *server.Permissions {
	allow := []string{"$JS.API.INFO"}
	for _, s := range []string{RewardsStream, LoyaltyStream} {
		allow = append(allow, "$JS.API.STREAM.INFO."+s)
		if len(consumers) == 0 {
			allow = append(allow,
				"$JS.API.CONSUMER.CREATE."+s+".>",
				"$JS.API.CONSUMER.INFO."+s+".*",
				"$JS.API.CONSUMER.MSG.NEXT."+s+".*",
				"$JS.ACK."+s+".>",
			)
			continue
		}
		for _, c := range consumers {
			allow = append(allow,
				"$JS.API.CONSUMER.CREATE."+s+"."+c,
				"$JS.API.CONSUMER.CREATE."+s+"."+c+".>", // with its filter subject
				"$JS.API.CONSUMER.INFO."+s+"."+c,
				"$JS.API.CONSUMER.MSG.NEXT."+s+"."+c,
				"$JS.ACK."+s+"."+c+".>",
			)
		}
	}
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: allow},
		Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
	}
}

// DownstreamConsumerName matches a consumer name downstream may be limited to
// (DownstreamPermissions): letters, digits, '-' and '_', one subject token.
var DownstreamConsumerName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Passwords are the passwords of the embedded server's users; none may be empty.
type Passwords struct {
	Campaignd, Ingest, Downstream string
}

// accountsConfig declares the accounts in nats-server's configuration language, the one
// way to enable JetStream for a named account; users and their passwords are added in
// code and never written out. deploy/nats/nats-server.conf declares the same.
const accountsConfig = `
accounts {
  ` + AppAccount + `: {
    jetstream: enabled
    exports: [ {service: "` + KindEvents + `.>", accounts: [` + IngestAccount + `]} ]
  }
  ` + IngestAccount + `: {
    imports: [ {service: {account: ` + AppAccount + `, subject: "` + KindEvents + `.>"}} ]
  }
}
`

// configureAuth gives opts the accounts and the three users with pw's passwords,
// downstream limited to the consumers named (none: any; see DownstreamPermissions).
func configureAuth(opts *server.Options, pw Passwords, downstreamConsumers []string) error {
	var missing []error
	for user, p := range map[string]string{CampaigndUser: pw.Campaignd, IngestUser: pw.Ingest, DownstreamUser: pw.Downstream} {
		if p == "" {
			missing = append(missing, fmt.Errorf("user %s has no password (the server has no anonymous access)", user))
		}
	}
	if len(missing) > 0 {
		return errors.Join(missing...)
	}
	if err := opts.ProcessConfigString(accountsConfig); err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	accounts := map[string]*server.Account{}
	for _, a := range opts.Accounts {
		accounts[a.Name] = a
	}
	opts.Users = []*server.User{
		{Username: CampaigndUser, Password: pw.Campaignd, Account: accounts[AppAccount]},
		{Username: IngestUser, Password: pw.Ingest, Account: accounts[IngestAccount], Permissions: IngestPermissions()},
		{Username: DownstreamUser, Password: pw.Downstream, Account: accounts[AppAccount], Permissions: DownstreamPermissions(downstreamConsumers...)},
	}
	return nil
}

// adoptGlobalStore moves the JetStream store of a server that ran without accounts (its
// streams are in the global account, $G) to AppAccount, once, so that a data dir from
// before authentication keeps its events, DLQ and consumers.
func adoptGlobalStore(storeDir string) error {
	old := filepath.Join(storeDir, server.JetStreamStoreDir, server.DEFAULT_GLOBAL_ACCOUNT)
	adopted := filepath.Join(storeDir, server.JetStreamStoreDir, AppAccount)
	if _, err := os.Stat(old); err != nil {
		return nil //nolint:nilerr // no store of an open server: nothing to adopt
	}
	if _, err := os.Stat(adopted); err == nil {
		return nil // adopted already (or both exist: keep the account's own)
	}
	if err := os.Rename(old, adopted); err != nil {
		return fmt.Errorf("move the streams of account %s to %s: %w", server.DEFAULT_GLOBAL_ACCOUNT, AppAccount, err)
	}
	return nil
}
