package stream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of Config.
const (
	// DefaultDedupWindow is how long JetStream remembers an event id
	// (Nats-Msg-Id) to drop a repeat of it.
	//
	// The trade-off: the server keeps every id of the window in memory
	// (roughly 150 bytes each, so 1,000 events/s for 5 minutes is ~45 MB per
	// replica), and a longer window drops more publisher retries for free.
	// Five minutes covers clients retrying with backoff across a NATS
	// restart. A repeat that comes later than the window is necessarily an
	// event whose time is older than the window; the projector checks those
	// against ClickHouse, so a longer window only saves it that lookup.
	DefaultDedupWindow = 5 * time.Minute

	// DefaultDLQMaxAge is how long dead letters are kept.
	DefaultDLQMaxAge = 30 * 24 * time.Hour
)

// Config is the configuration of tally's streams.
//
// Durability: JetStream's fsync policy is a server setting, not a stream
// setting. See SyncAlways.
type Config struct {
	// Replicas is the number of copies of each stream: 1 in development,
	// 3 in production (needs a NATS cluster of at least 3 servers).
	// 0 means 1.
	Replicas int
	// DedupWindow is the duplicate window on Nats-Msg-Id (= event id).
	// 0 means DefaultDedupWindow.
	DedupWindow time.Duration
	// MaxAge bounds how long events are kept. 0 keeps them forever: the
	// stream is the event log every read model can be rebuilt from.
	MaxAge time.Duration
	// MaxBytes bounds the events stream's size; 0 means unlimited. When
	// full, new events are refused (ingest answers 503) rather than old
	// ones silently dropped.
	MaxBytes int64
	// DLQMaxAge is how long dead letters are kept. 0 means DefaultDLQMaxAge.
	DLQMaxAge time.Duration
	// SyncAlways asks for an fsync after every write ("sync_interval:
	// always"). NATS only offers this per server: Ensure cannot set it on a
	// stream. StartEmbedded applies it (EmbeddedConfig.SyncAlways); for an
	// external server set it in the server config:
	//
	//	jetstream { sync_interval: always }
	//
	// Without it the server fsyncs every 2 minutes, and acknowledged events
	// can be lost if a machine (not just the process) crashes, as Jepsen's
	// 2025 analysis of NATS 2.12.1 showed. Ensure never sets the stream's
	// persist_mode to async, which would override the server setting.
	SyncAlways bool
}

// withDefaults returns c with zero values replaced by defaults.
func (c Config) withDefaults() Config {
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.DedupWindow == 0 {
		c.DedupWindow = DefaultDedupWindow
	}
	if c.DLQMaxAge == 0 {
		c.DLQMaxAge = DefaultDLQMaxAge
	}
	return c
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	d := c.withDefaults()
	switch {
	case d.Replicas < 1 || d.Replicas > 5:
		return fmt.Errorf("stream replicas: must be 1..5, got %d", c.Replicas)
	case c.DedupWindow < 0:
		return fmt.Errorf("stream dedup window: must be >= 0, got %s", c.DedupWindow)
	case c.MaxAge < 0:
		return fmt.Errorf("stream max age: must be >= 0, got %s", c.MaxAge)
	case c.MaxAge > 0 && d.DedupWindow > c.MaxAge:
		return fmt.Errorf("stream dedup window %s: must not exceed max age %s", d.DedupWindow, c.MaxAge)
	case c.MaxBytes < 0:
		return fmt.Errorf("stream max bytes: must be >= 0, got %d", c.MaxBytes)
	case c.DLQMaxAge < 0:
		return fmt.Errorf("dead-letter max age: must be >= 0, got %s", c.DLQMaxAge)
	case d.DedupWindow > d.DLQMaxAge:
		return fmt.Errorf("stream dedup window %s: must not exceed dead-letter max age %s", d.DedupWindow, d.DLQMaxAge)
	}
	return nil
}

// EventsConfig returns the JetStream configuration of EventsStream.
func (c Config) EventsConfig() jetstream.StreamConfig {
	c = c.withDefaults()
	maxBytes := c.MaxBytes
	if maxBytes == 0 {
		maxBytes = -1
	}
	return jetstream.StreamConfig{
		Name:         EventsStream,
		Description:  "tally events: the event log every read model is rebuilt from",
		Subjects:     []string{EventsSubjects},
		Retention:    jetstream.LimitsPolicy,
		MaxConsumers: -1,
		MaxMsgs:      -1,
		MaxBytes:     maxBytes,
		// With no byte limit nothing is discarded; with one, refusing new
		// events (publishers see an error and retry) beats dropping
		// accepted ones that may not be projected yet.
		Discard:           jetstream.DiscardNew,
		MaxAge:            c.MaxAge,
		MaxMsgsPerSubject: -1,
		MaxMsgSize:        -1,
		Storage:           jetstream.FileStorage,
		Replicas:          c.Replicas,
		Duplicates:        c.DedupWindow,
		// An event log: no message deletes or purges through the API.
		// The server refuses to lift these once set.
		DenyDelete:  true,
		DenyPurge:   true,
		AllowDirect: true,
	}
}

// DLQConfig returns the JetStream configuration of DLQStream.
func (c Config) DLQConfig() jetstream.StreamConfig {
	c = c.withDefaults()
	return jetstream.StreamConfig{
		Name:              DLQStream,
		Description:       "tally dead letters: events a consumer could not process, with the reason",
		Subjects:          []string{DLQSubjects},
		Retention:         jetstream.LimitsPolicy,
		MaxConsumers:      -1,
		MaxMsgs:           -1,
		MaxBytes:          -1,
		Discard:           jetstream.DiscardOld,
		MaxAge:            c.DLQMaxAge,
		MaxMsgsPerSubject: -1,
		MaxMsgSize:        -1,
		Storage:           jetstream.FileStorage,
		Replicas:          c.Replicas,
		Duplicates:        c.DedupWindow,
		AllowDirect:       true,
	}
}

// Ensure creates EventsStream and DLQStream, or updates them when their
// configuration differs from cfg. When both already match it changes nothing.
//
// Storage type cannot change on an existing stream, and once set, the
// events stream's deny-delete and deny-purge cannot be lifted; Ensure
// returns the server's error in those cases.
func Ensure(ctx context.Context, js jetstream.JetStream, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	for _, sc := range []jetstream.StreamConfig{cfg.EventsConfig(), cfg.DLQConfig()} {
		if _, err := ensure(ctx, js, sc); err != nil {
			return err
		}
	}
	return nil
}

// action is what ensure did.
type action string

const (
	created   action = "created"
	updated   action = "updated"
	unchanged action = "unchanged"
)

func ensure(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig) (action, error) {
	s, err := js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if _, err := js.CreateStream(ctx, want); err != nil {
			if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				return "", fmt.Errorf("create stream %s: %w", want.Name, err)
			}
			// Another process created it in between: fall through to compare.
			if s, err = js.Stream(ctx, want.Name); err != nil {
				return "", fmt.Errorf("stream %s info: %w", want.Name, err)
			}
		} else {
			return created, nil
		}
	} else if err != nil {
		return "", fmt.Errorf("stream %s info: %w", want.Name, err)
	}
	if sameConfig(s.CachedInfo().Config, want) {
		return unchanged, nil
	}
	if _, err := js.UpdateStream(ctx, merge(s.CachedInfo().Config, want)); err != nil {
		return "", fmt.Errorf("update stream %s: %w", want.Name, err)
	}
	return updated, nil
}

// merge returns have with the settings tally manages taken from want, so an
// update keeps what an operator set beyond them (placement, metadata, ...).
func merge(have, want jetstream.StreamConfig) jetstream.StreamConfig {
	have.Subjects = want.Subjects
	have.Description = want.Description
	have.Retention = want.Retention
	have.MaxConsumers = want.MaxConsumers
	have.MaxMsgs = want.MaxMsgs
	have.MaxBytes = want.MaxBytes
	have.Discard = want.Discard
	have.MaxAge = want.MaxAge
	have.MaxMsgsPerSubject = want.MaxMsgsPerSubject
	have.MaxMsgSize = want.MaxMsgSize
	have.Storage = want.Storage
	have.Replicas = want.Replicas
	have.Duplicates = want.Duplicates
	have.DenyDelete = want.DenyDelete
	have.DenyPurge = want.DenyPurge
	have.AllowDirect = want.AllowDirect
	have.PersistMode = want.PersistMode
	return have
}

// sameConfig compares the settings tally manages; anything else an operator
// set on the stream is left alone unless one of these differs.
func sameConfig(have, want jetstream.StreamConfig) bool {
	return slices.Equal(have.Subjects, want.Subjects) &&
		have.Description == want.Description &&
		have.Retention == want.Retention &&
		have.MaxConsumers == want.MaxConsumers &&
		have.MaxMsgs == want.MaxMsgs &&
		have.MaxBytes == want.MaxBytes &&
		have.Discard == want.Discard &&
		have.MaxAge == want.MaxAge &&
		have.MaxMsgsPerSubject == want.MaxMsgsPerSubject &&
		have.MaxMsgSize == want.MaxMsgSize &&
		have.Storage == want.Storage &&
		have.Replicas == want.Replicas &&
		have.Duplicates == want.Duplicates &&
		have.DenyDelete == want.DenyDelete &&
		have.DenyPurge == want.DenyPurge &&
		have.AllowDirect == want.AllowDirect &&
		have.PersistMode == want.PersistMode
}
