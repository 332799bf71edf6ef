package stream

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyhq/tally/schemas"
	"github.com/tallyhq/tally/testenv"
)

func TestSubject(t *testing.T) {
	tests := []struct {
		name string
		e    schemas.Event
		want string
	}{
		{"tenant", schemas.Event{ResellerID: "r1", OrgID: "o7", Type: schemas.TypeJobCompleted}, "tally.events.r1.o7.job.completed"},
		{"no org", schemas.Event{ResellerID: "r1", Type: schemas.TypeCustomModelCreated}, "tally.events.r1._.custom_model.created"},
		{"broadcast notice", schemas.Event{Type: schemas.TypeSystemNotice}, "tally.events._._.system.notice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Subject(&tt.e); got != tt.want {
				t.Errorf("Subject = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{"zero is defaults", Config{}, false},
		{"production", Config{Replicas: 3, DedupWindow: 10 * time.Minute, SyncAlways: true}, false},
		{"too many replicas", Config{Replicas: 7}, true},
		{"negative replicas", Config{Replicas: -1}, true},
		{"negative window", Config{DedupWindow: -time.Second}, true},
		{"window over max age", Config{MaxAge: time.Minute}, true},
		{"negative max bytes", Config{MaxBytes: -1}, true},
		{"max age above window", Config{MaxAge: 24 * time.Hour}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); (err != nil) != tt.wantErr {
				t.Errorf("Validate() = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

func TestEnsure(t *testing.T) {
	url, _ := testenv.NATS(t)
	_, js := testenv.JetStream(t, url)
	ctx := t.Context()

	steps := []struct {
		name       string
		cfg        Config
		wantEvents action
		wantDLQ    action
	}{
		{"create", Config{}, created, created},
		{"again is a no-op", Config{}, unchanged, unchanged},
		{"defaults spelled out are the same", Config{Replicas: 1, DedupWindow: DefaultDedupWindow, DLQMaxAge: DefaultDLQMaxAge}, unchanged, unchanged},
		{"longer window updates both", Config{DedupWindow: 10 * time.Minute}, updated, updated},
		{"max age and bytes update events only", Config{DedupWindow: 10 * time.Minute, MaxAge: 90 * 24 * time.Hour, MaxBytes: 1 << 30}, updated, unchanged},
		{"and again no-op", Config{DedupWindow: 10 * time.Minute, MaxAge: 90 * 24 * time.Hour, MaxBytes: 1 << 30}, unchanged, unchanged},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			got, err := ensure(ctx, js, st.cfg.EventsConfig())
			if err != nil {
				t.Fatal(err)
			}
			if got != st.wantEvents {
				t.Errorf("events: %s, want %s", got, st.wantEvents)
			}
			got, err = ensure(ctx, js, st.cfg.DLQConfig())
			if err != nil {
				t.Fatal(err)
			}
			if got != st.wantDLQ {
				t.Errorf("dlq: %s, want %s", got, st.wantDLQ)
			}
			if err := Ensure(ctx, js, st.cfg); err != nil {
				t.Fatalf("Ensure: %v", err)
			}
		})
	}

	s, err := js.Stream(ctx, EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	c := s.CachedInfo().Config
	if c.Storage != jetstream.FileStorage || c.Duplicates != 10*time.Minute || c.MaxAge != 90*24*time.Hour ||
		c.MaxBytes != 1<<30 || !c.DenyDelete || !c.DenyPurge || c.Subjects[0] != EventsSubjects {
		t.Errorf("events stream config = %+v", c)
	}
	d, err := js.Stream(ctx, DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	if dc := d.CachedInfo().Config; dc.MaxAge != DefaultDLQMaxAge || dc.Storage != jetstream.FileStorage || dc.Subjects[0] != DLQSubjects {
		t.Errorf("dlq stream config = %+v", dc)
	}
}

func TestEnsureKeepsOperatorSettings(t *testing.T) {
	url, _ := testenv.NATS(t)
	_, js := testenv.JetStream(t, url)
	ctx := t.Context()
	sc := Config{}.EventsConfig()
	sc.Metadata = map[string]string{"owner": "ops"}
	if _, err := js.CreateStream(ctx, sc); err != nil {
		t.Fatal(err)
	}
	if err := Ensure(ctx, js, Config{DedupWindow: time.Hour}); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	if c := s.CachedInfo().Config; c.Duplicates != time.Hour || c.Metadata["owner"] != "ops" {
		t.Errorf("config after update: duplicates %s, metadata %v", c.Duplicates, c.Metadata)
	}
}

func TestEnsureInvalidConfig(t *testing.T) {
	url, _ := testenv.NATS(t)
	_, js := testenv.JetStream(t, url)
	if err := Ensure(t.Context(), js, Config{Replicas: 9}); err == nil {
		t.Fatal("Ensure with 9 replicas: no error")
	}
	if _, err := js.Stream(t.Context(), EventsStream); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("stream after invalid Ensure: %v, want not found", err)
	}
}

func TestStartEmbedded(t *testing.T) {
	tests := []struct {
		name string
		cfg  EmbeddedConfig
	}{
		{"default", EmbeddedConfig{Port: -1}},
		{"sync always", EmbeddedConfig{Port: -1, SyncAlways: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.StoreDir = t.TempDir()
			s, err := StartEmbedded(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
			if got := s.JetStreamConfig().SyncAlways; got != tt.cfg.SyncAlways {
				t.Errorf("server SyncAlways = %v, want %v", got, tt.cfg.SyncAlways)
			}
			nc, err := nats.Connect(s.ClientURL())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(nc.Close)
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			if err := Ensure(t.Context(), js, Config{SyncAlways: tt.cfg.SyncAlways}); err != nil {
				t.Fatal(err)
			}
			ack, err := js.Publish(t.Context(), "tally.events.r1.o1.job.created", []byte(`{}`), jetstream.WithMsgID("a"))
			if err != nil || ack.Stream != EventsStream {
				t.Fatalf("publish: %v %+v", err, ack)
			}
		})
	}
	if _, err := StartEmbedded(EmbeddedConfig{Port: -1}); err == nil {
		t.Error("StartEmbedded without StoreDir: no error")
	}
}

func TestDeadLetter(t *testing.T) {
	url, _ := testenv.NATS(t)
	_, js := testenv.JetStream(t, url)
	ctx := t.Context()
	if err := Ensure(ctx, js, Config{}); err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"id":"bad-1"}`)
	if _, err := js.Publish(ctx, "tally.events.r1.o1.job.completed", body, jetstream.WithMsgID("bad-1")); err != nil {
		t.Fatal(err)
	}
	cons, err := js.OrderedConsumer(ctx, EventsStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second is deduplicated
		if err := DeadLetter(ctx, js, msg, ReasonInvalid, "data.media_duration_seconds: required"); err != nil {
			t.Fatal(err)
		}
	}
	if err := DeadLetter(ctx, js, msg, "not a token", "x"); err == nil {
		t.Error("DeadLetter with invalid code: no error")
	}

	dlq, err := js.Stream(ctx, DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	if n := dlq.CachedInfo().State.Msgs; n != 1 {
		t.Errorf("dead letters stored = %d, want 1", n)
	}
	raw, err := dlq.GetLastMsgForSubject(ctx, DLQPrefix+ReasonInvalid)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		HeaderReason:          "data.media_duration_seconds: required",
		HeaderOriginalSubject: "tally.events.r1.o1.job.completed",
		HeaderStreamSeq:       "1",
	}
	for k, v := range want {
		if got := raw.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if string(raw.Data) != string(body) {
		t.Errorf("body = %s, want %s", raw.Data, body)
	}
}
