package projector

import (
	"github.com/nats-io/nats.go/jetstream"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tallyhq/tally/stream"
	"github.com/tallyhq/tally/testenv"
)

// TestFreshEventsPayNoLookup: events stored within the dedup window of
// their time, delivered once, into an empty database are inserted without
// a single duplicate lookup.
func TestFreshEventsPayNoLookup(t *testing.T) {
	ctx := t.Context()
	_, _, js := newStreams(t, 2*time.Minute)
	ch := testenv.ClickHouse(t)
	events := generate(genConfig{Seed: 2, Resellers: 2, Orgs: 3, Jobs: 500, Now: time.Now(), Spread: 20 * time.Second})
	publishEvents(t, ctx, js, events)
	pr := startProjector(t, Config{BatchSize: 300, BatchWait: 20 * time.Millisecond}, js, ch.Conn)
	waitDrained(t, ctx, js, DefaultConsumer, 30*time.Second)
	if err := pr.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := metric(t, pr.reg, "tally_projector_dedup_lookups_total"); n != 0 {
		t.Errorf("%v ids looked up, want 0", n)
	}
	if n := metric(t, pr.reg, "tally_projector_events_total", resultInserted); n != float64(len(events)) {
		t.Errorf("%v inserted, want %d", n, len(events))
	}
	checkReadModels(t, ctx, ch.Conn, events)
}

// TestClickHouseOutage stops ClickHouse mid-run for longer than the ack
// wait: events wait in JetStream, the projector retries (logging the outage
// once), keeps its batches alive and, after the restart, lands every event
// exactly once.
func TestClickHouseOutage(t *testing.T) {
	ctx := t.Context()
	_, _, js := newStreams(t, 0)
	ch := testenv.OwnClickHouse(t)
	events := generate(genConfig{Seed: 3, Resellers: 2, Orgs: 4, Jobs: 2500, Now: time.Now(), LateEvery: 20})
	before, during := events[:len(events)/3], events[len(events)/3:]

	// The first INSERT after the restart (into events and every view, on
	// a machine busy with other packages' tests) has taken over a second:
	// it landed after its attempt timed out, was retried and counted as
	// duplicates, and the outage was logged twice. Two seconds per attempt
	// (at most half the ack wait) leave room for it.
	cfg := Config{BatchSize: 1000, BatchWait: 50 * time.Millisecond, AckWait: 4 * time.Second,
		InsertTimeout: 2 * time.Second, RetryMax: 500 * time.Millisecond, LagInterval: 100 * time.Millisecond}
	pr := startProjector(t, cfg, js, ch.Conn)
	publishEvents(t, ctx, js, before)
	waitDrained(t, ctx, js, DefaultConsumer, 30*time.Second)

	if err := ch.Server.Stop(); err != nil {
		t.Fatalf("stop clickhouse: %v", err)
	}
	publishEvents(t, ctx, js, during)
	time.Sleep(2*cfg.AckWait + time.Second) // longer than the ack wait: keep-alives must hold the batches
	if n, _ := consumerBacklog(ctx, js, stream.EventsStream, DefaultConsumer); n != uint64(len(during)) {
		t.Errorf("during the outage the consumer backlog is %d, want %d (nothing acked)", n, len(during))
	}
	// At most two batches in hand, the rest not delivered yet.
	lag := metric(t, pr.reg, "tally_projector_consumer_lag")
	if c, err := js.Consumer(ctx, stream.EventsStream, DefaultConsumer); err != nil {
		t.Errorf("consumer: %v", err)
	} else if info, err := c.Info(ctx); err != nil || lag != float64(info.NumPending) || lag < float64(len(during)-2*cfg.BatchSize) {
		t.Errorf("tally_projector_consumer_lag = %v during the outage; consumer info %+v (%v)", lag, info, err)
	}
	if err := ch.Server.Restart(ctx); err != nil {
		t.Fatalf("restart clickhouse: %v", err)
	}
	waitDrained(t, ctx, js, DefaultConsumer, 60*time.Second)
	if err := pr.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkReadModels(t, ctx, ch.Conn, events)

	if n := metric(t, pr.reg, "tally_projector_insert_errors_total"); n < 2 {
		t.Errorf("%v insert errors, want several", n)
	}
	if n := metric(t, pr.reg, "tally_projector_redeliveries_total"); n != 0 {
		t.Errorf("%v redeliveries: held batches were not kept alive", n)
	}
	if n := metric(t, pr.reg, "tally_projector_events_total", resultInserted); n != float64(len(events)) {
		t.Errorf("%v inserted, want %d", n, len(events))
	}
	if a, b := pr.logs.count("ClickHouse insert failed; retrying with backoff, events wait in JetStream"), pr.logs.count("ClickHouse insert recovered"); a != 1 || b != 1 {
		t.Errorf("outage logged %d times, recovery %d times; want once each", a, b)
	}
}

// TestCrashRecovery crashes real projector processes, with the
// crash-after-insert failpoint and with SIGKILL at random times, until the
// stream is consumed; then every read model must match the ground truth:
// each event exactly once.
func TestCrashRecovery(t *testing.T) {
	ctx := t.Context()
	url, _, js := newStreams(t, 0)
	ch := testenv.ClickHouse(t)
	events := generate(genConfig{Seed: 4, Resellers: 3, Orgs: 6, Jobs: 7000, Now: time.Now(), Spread: time.Minute})
	publishEvents(t, ctx, js, events)
	t.Logf("%d events published", len(events))

	dir := t.TempDir()
	env := []string{childNATS + "=" + url, childCHAddr + "=" + ch.Config.Addr, childCHDB + "=" + ch.Config.Database,
		childBatch + "=1000", childAckWait + "=2s"}
	rng := rand.New(rand.NewPCG(4, 4))
	var (
		children               []*child
		failpointCrashes, kill int
	)
	for round := 0; ; round++ {
		if n, ok := consumerBacklog(ctx, js, stream.EventsStream, DefaultConsumer); ok && n == 0 {
			break
		}
		// Every round makes progress only if one of its INSERTs is
		// acked; on a loaded 2-core CI machine that can take many rounds.
		if round == 150 {
			t.Fatalf("still not consumed after %d crashing runs", round)
		}
		c := startChild(t, dir, append(env, FailpointEnv+"=crash-after-insert:0.3")...)
		children = append(children, c)
		select {
		case <-c.exited:
			failpointCrashes++
		case <-time.After(time.Duration(300+rng.IntN(2000)) * time.Millisecond):
			c.kill()
			kill++
		}
	}
	final := startChild(t, dir, env...)
	children = append(children, final)
	final.waitLog(t, "projector started", 30*time.Second)
	waitDrained(t, ctx, js, DefaultConsumer, 60*time.Second)
	final.stop(t)
	t.Logf("%d runs: %d ended by the failpoint, %d killed at random", len(children)-1, failpointCrashes, kill)

	checkReadModels(t, ctx, ch.Conn, events)

	var fired, duplicates, redelivered int
	for _, c := range children {
		for _, rec := range c.logLines(t) {
			switch rec["msg"] {
			case "failpoint crash-after-insert: killing the process before acks":
				fired++
			case "batch projected":
				duplicates += int(rec["duplicates"].(float64))
				redelivered += int(rec["redelivered"].(float64))
			}
		}
	}
	t.Logf("failpoint fired %d times; %d redeliveries and %d duplicates found in ClickHouse by the surviving batches", fired, redelivered, duplicates)
	if fired == 0 || duplicates == 0 || redelivered == 0 {
		t.Errorf("crash path not exercised: failpoint fired %d, duplicates %d, redelivered %d", fired, duplicates, redelivered)
	}
}

// TestGracefulShutdown cancels a projector in the middle of a backlog: Run
// returns after inserting and acking what it had in hand, leaving nothing
// unacked, and ClickHouse holds exactly the acked events. A second run
// finishes the job exactly.
func TestGracefulShutdown(t *testing.T) {
	ctx := t.Context()
	_, _, js := newStreams(t, 0)
	ch := testenv.ClickHouse(t)
	events := generate(genConfig{Seed: 7, Resellers: 2, Orgs: 4, Jobs: 8000, Now: time.Now(), Spread: time.Minute})
	publishEvents(t, ctx, js, events)

	cfg := Config{BatchSize: 2000, BatchWait: 50 * time.Millisecond}
	pr := startProjector(t, cfg, js, ch.Conn)
	deadline := time.Now().Add(30 * time.Second)
	for countEvents(t, ch) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := pr.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	c, err := js.Consumer(ctx, stream.EventsStream, DefaultConsumer)
	if err != nil {
		t.Fatal(err)
	}
	// The server applies acks asynchronously after the connection's flush:
	// give it a moment before reading the consumer's state.
	var info *jetstream.ConsumerInfo
	for settle := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if info, err = c.Info(ctx); err != nil {
			t.Fatal(err)
		}
		if info.NumAckPending == 0 || time.Now().After(settle) {
			break
		}
	}
	n := countEvents(t, ch)
	t.Logf("stopped after %d of %d events; %d not delivered", n, len(events), info.NumPending)
	if info.NumAckPending != 0 {
		t.Errorf("%d messages left unacked after Run returned", info.NumAckPending)
	}
	if n == len(events) || n != int(info.AckFloor.Stream) || uint64(n)+info.NumPending != uint64(len(events)) {
		t.Errorf("ClickHouse has %d events; acked up to %d, %d pending, of %d", n, info.AckFloor.Stream, info.NumPending, len(events))
	}

	pr = startProjector(t, cfg, js, ch.Conn)
	waitDrained(t, ctx, js, DefaultConsumer, 30*time.Second)
	if err := pr.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkReadModels(t, ctx, ch.Conn, events)
}

// TestReplicasShareConsumer runs three projectors on the same durable
// consumer: they split the stream and every event lands once.
func TestReplicasShareConsumer(t *testing.T) {
	ctx := t.Context()
	_, _, js := newStreams(t, 0)
	ch := testenv.ClickHouse(t)
	events := generate(genConfig{Seed: 8, Resellers: 3, Orgs: 4, Jobs: 6000, Now: time.Now(), LateEvery: 10})
	cfg := Config{BatchSize: 500, BatchWait: 20 * time.Millisecond}
	var replicas []*running
	for range 3 {
		replicas = append(replicas, startProjector(t, cfg, js, ch.Conn))
	}
	publishEvents(t, ctx, js, events)
	waitDrained(t, ctx, js, DefaultConsumer, 60*time.Second)
	total := 0.0
	for i, r := range replicas {
		if err := r.stop(); err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		n := metric(t, r.reg, "tally_projector_events_total", resultInserted)
		t.Logf("replica %d inserted %v events", i, n)
		if n == 0 {
			t.Errorf("replica %d inserted nothing", i)
		}
		total += n
	}
	if total != float64(len(events)) {
		t.Errorf("replicas inserted %v events, want %d", total, len(events))
	}
	checkReadModels(t, ctx, ch.Conn, events)
}

func countEvents(t testing.TB, ch *testenv.CH) int {
	t.Helper()
	var n uint64
	if err := ch.Conn.QueryRow(t.Context(), "SELECT count() FROM events").Scan(&n); err != nil {
		t.Fatalf("count events: %v", err)
	}
	return int(n)
}
