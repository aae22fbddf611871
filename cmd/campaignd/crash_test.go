package main

import (
	"testing"
	"time"

	"github.com/campaignmanager/campaignmanager/ingress/bus"
)

// TestKillNineUnderLoadLosesNoEventAndGrantsNoRewardTwice runs campaignd as a child
// process, sends purchases from many users concurrently over HTTP (each retried until
// ingress answers 2xx) and SIGKILLs the process at random points of the stream several
// times, restarting it on the same data dir, database and ports. At the end every user
// holds exactly one point per purchase plus one bonus: nothing accepted was lost,
// nothing was applied twice, and the per-user limit survived the crashes. (The guarantee
// suite runs a shorter version over every ingest path.)
func TestKillNineUnderLoadLosesNoEventAndGrantsNoRewardTwice(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: builds and kills a campaignd process")
	}
	const rounds = 5
	l := purchaseLoad{name: "crash", users: 24, perUser: 80}
	d, c := startCrashDaemon(t, httpIngest)
	var st ingestStats
	killedAt := killUnderLoad(t, d, c, httpIngest, l, rounds, &st)
	t.Logf("crash test: %d SIGKILL rounds at %v events stored; %d events of %d users; %s",
		rounds, killedAt, l.users*l.perUser, l.users, &st)
	l.requireExactlyOnce(t, c, 30*time.Second)
	// Nothing else reached downstream: the load's rewards and the probe's two.
	c.waitStreamMsgs(bus.RewardsStream, "", uint64(l.users*(l.perUser+1)+2))
}
