package main

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/campaignmanager/campaignmanager/ingress/bus"
)

// purchaseEach posts one purchase of 100 (10 points with tenPercent) for each of n users.
func (e *env) purchaseEach(n int, round string) {
	e.t.Helper()
	for u := range n {
		e.postEvent(map[string]any{"id": fmt.Sprintf("%s-%d", round, u), "user_id": fmt.Sprintf("k-%d", u),
			"type": "purchase", "amount": 100}, http.StatusAccepted)
	}
}

// requireNotReady requires /readyz to answer 503 naming what.
func (e *env) requireNotReady(what string) {
	e.t.Helper()
	res := e.request("GET", "/readyz", "", nil)
	require.Equal(e.t, http.StatusServiceUnavailable, res.status, string(res.body))
	require.Contains(e.t, string(res.body), what)
}

// waitReady polls /readyz until it answers 200.
func (e *env) waitReady() {
	e.t.Helper()
	poll(e.t, patience, "/readyz answers 200", func() bool {
		return e.request("GET", "/readyz", "", nil).status == http.StatusOK
	})
}

// TestADeletedLaneConsumerIsCreatedAgainAndLosesNothing deletes an engine consumer
// under load: /readyz says so at once, the engine creates it again from the last ack
// floor it saw, and every user's later events are applied (the audit saw 4 of 8 users
// never processed while /readyz stayed 200).
func TestADeletedLaneConsumerIsCreatedAgainAndLosesNothing(t *testing.T) {
	e := newEnv(t)
	e.createCampaign(tenPercent)
	const users = 8
	e.purchaseEach(users, "before")
	for u := range users {
		e.waitUser(fmt.Sprintf("k-%d", u), 1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stream, err := e.jetStream().Stream(ctx, bus.EventsStream)
	require.NoError(t, err)
	names := stream.ConsumerNames(ctx)
	var lane string
	for n := range names.Name() {
		if lane == "" {
			lane = n
		}
	}
	require.NotEmpty(t, lane)
	require.NoError(t, stream.DeleteConsumer(ctx, lane))
	e.requireNotReady(lane)

	e.purchaseEach(users, "after")
	for u := range users {
		require.Equal(t, int64(20), e.waitUser(fmt.Sprintf("k-%d", u), 2).Points, "user k-%d", u)
	}
	e.waitReady()
	_, err = stream.Consumer(ctx, lane)
	require.NoError(t, err, "the consumer exists again")
	require.Contains(t, string(e.request("GET", "/metrics", "", nil).body), "campaign_consumers_recreated_total 1")
}

// TestDeletedStreamsAndBucketsAreCreatedAgain deletes EVENTS and the campaigns bucket:
// /readyz names them at once, campaignd creates them again (EVENTS above every sequence
// applied, so new events are not taken for applied ones; the bucket refilled from
// Postgres) and events are applied by the stored campaign again.
func TestDeletedStreamsAndBucketsAreCreatedAgain(t *testing.T) {
	e := newEnv(t)
	e.createCampaign(tenPercent)
	const users = 8
	for round := range 3 { // a few sequences to stay above
		e.purchaseEach(users, fmt.Sprint("r", round))
	}
	for u := range users {
		e.waitUser(fmt.Sprintf("k-%d", u), 3)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	js := e.jetStream()
	require.NoError(t, js.DeleteStream(ctx, bus.EventsStream))
	require.NoError(t, js.DeleteKeyValue(ctx, bus.CampaignsKV))
	e.requireNotReady("stream EVENTS")
	e.requireNotReady("bucket campaigns")

	e.waitReady()
	s, err := js.Stream(ctx, bus.EventsStream)
	require.NoError(t, err)
	require.Greater(t, s.CachedInfo().State.FirstSeq, uint64(3*users-1), "EVENTS starts above the sequences applied")
	kv, err := js.KeyValue(ctx, bus.CampaignsKV)
	require.NoError(t, err)
	_, err = kv.Get(ctx, "ten-percent")
	require.NoError(t, err, "the bucket is refilled from Postgres")

	e.purchaseEach(users, "after")
	for u := range users {
		require.Equal(t, int64(40), e.waitUser(fmt.Sprintf("k-%d", u), 4).Points, "user k-%d", u)
	}
}
