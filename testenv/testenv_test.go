package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestNATSJetStream(t *testing.T) {
	url, srv := NATS(t)
	if !srv.JetStreamEnabled() {
		t.Fatal("JetStream is off")
	}
	_, js := JetStream(t, url)
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	ack, err := js.Publish(t.Context(), "t.x", []byte("hi"), jetstream.WithMsgID("m1"))
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	dup, err := js.Publish(t.Context(), "t.x", []byte("hi"), jetstream.WithMsgID("m1"))
	if err != nil {
		t.Fatalf("publish again: %v", err)
	}
	if ack.Sequence != 1 || !dup.Duplicate {
		t.Errorf("acks = %+v, %+v; want seq 1 and a duplicate", ack, dup)
	}
}

func TestClickHouseFreshDatabases(t *testing.T) {
	a, b := ClickHouse(t), ClickHouse(t)
	if a.Server != b.Server {
		t.Error("two calls started two servers")
	}
	if a.Config.Database == b.Config.Database {
		t.Fatalf("both calls got database %s", a.Config.Database)
	}
	b1, err := a.Conn.PrepareBatch(t.Context(), "INSERT INTO event_ids (id, time)")
	if err != nil {
		t.Fatal(err)
	}
	if err := b1.Append("only-in-a", time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	if err := b1.Send(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		ch   *CH
		want uint64
	}{{"a", a, 1}, {"b", b, 0}} {
		var n uint64
		if err := tt.ch.Conn.QueryRow(t.Context(), "SELECT count() FROM event_ids").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != tt.want {
			t.Errorf("database %s has %d rows, want %d", tt.name, n, tt.want)
		}
	}
}

// TestOwnClickHouseRestart shows what a fault test sees: queries fail while
// the server is down, and the same Conn works again after Restart (its pool
// drops broken connections; the first query after the restart may fail).
func TestOwnClickHouseRestart(t *testing.T) {
	ch := OwnClickHouse(t)
	if ch.Server == shared.srv {
		t.Fatal("OwnClickHouse returned the shared server")
	}
	if err := ch.Server.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := ch.Conn.Ping(ctx); err == nil {
		t.Fatal("Ping succeeded while the server is stopped")
	}
	if err := ch.Server.Restart(t.Context()); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n uint64
		err := ch.Conn.QueryRow(t.Context(), "SELECT count() FROM events").Scan(&n)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Conn does not recover after Restart: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
