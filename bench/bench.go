// Package bench measures tally on the machine it runs on and reports each
// stage against a ceiling measured the same way with the raw engines:
//
//  1. ingest: NDJSON batches POSTed to the HTTP ingest stage by concurrent
//     clients, against raw JetStream async publishing (with Nats-Msg-Id) of
//     the same bodies to the same stream configuration;
//  2. end to end: events published with the publish package while the
//     projector runs, until all are visible in the usage aggregates, against
//     (a) raw publish + pull-consume running at once (measured right
//     before and right after the end-to-end run, averaged) and (b) raw
//     clickhouse-go batch INSERTs of the same rows into `events` (with its
//     materialized views; without them into a plain copy for reference); a
//     third reference, (c), runs the three raw engines at once as the
//     pipeline does (publish, pull-consume, INSERT);
//  3. freshness: publish-to-visible latency in the `jobs` read model at a
//     steady rate, against the same measured through a raw pipeline (a pull
//     consumer inserting whatever it fetched at once);
//  4. projector memory: peak RSS of `tally project`, a separate process,
//     while it catches up a backlog, against a budget.
//
// Everything runs locally: an embedded NATS server in the bench process, a
// clickhouse-server child process (or one given by address) and the
// projector as a `tally project` child process, in a temporary folder
// removed at the end. Each measurement gets a fresh stream and a fresh
// database, retired afterwards (see env.retireDB), so none pays for
// another's leftovers (background merges, dedup state, freed files). The
// raw publisher's window (publishes in flight) is calibrated first and the
// fastest is used by every ceiling.
//
// Events are generated deterministically (see generator): realistic, valid
// job lifecycles with some tenant events, about 345 bytes each.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/tallyhq/tally/projector"
)

// Config configures a bench run.
type Config struct {
	// Events is the number of events of the end-to-end run and of the
	// projector's backlog (and of their ceilings).
	Events int
	// IngestEvents is the number of events POSTed to the ingest stage (and
	// raw-published for its ceiling).
	IngestEvents int
	// IngestClients is the number of concurrent HTTP clients.
	IngestClients int
	// IngestBatch is the number of events per NDJSON request.
	IngestBatch int
	// InsertBatch is the rows per INSERT of the raw ClickHouse ceiling:
	// the projector's default batch size, so the ceiling inserts the rows
	// as the pipeline does (ClickHouse's cost is mostly per INSERT).
	InsertBatch int
	// FreshnessRate is the steady publish rate of the freshness run, events/s.
	FreshnessRate int
	// FreshnessDuration is how long the freshness run publishes.
	FreshnessDuration time.Duration
	// FloorDuration is how long the raw freshness floor publishes.
	// 0 means a third of FreshnessDuration (at least 3 s).
	FloorDuration time.Duration

	// Targets.
	MinIngestRatio float64       // ingest / raw publish
	MinE2ERatio    float64       // end to end / the lower end-to-end ceiling
	MaxFreshness   time.Duration // p99
	MaxRSSBytes    uint64        // projector peak RSS

	// ProjectorCommand starts the projector stage as a separate process:
	// the executable and its subcommand, e.g. {"/usr/bin/tally", "project"}.
	// The bench appends the flags naming its NATS, ClickHouse and database.
	ProjectorCommand []string
	// ProjectorEnv is added to the projector process's environment.
	ProjectorEnv []string

	// ClickHouseAddr is a running ClickHouse (native protocol host:port) to
	// use; empty starts clickhouse-server in Dir. The bench creates and drops
	// databases named DatabasePrefix_<n>_<measurement> on it.
	ClickHouseAddr   string
	ClickHouseUser   string
	ClickHousePass   string
	ClickHouseBinary string // for the one the bench starts; default from PATH
	DatabasePrefix   string

	// Dir is where the temporary folder is made; "" means os.TempDir().
	Dir string
	// Keep leaves the temporary folder (NATS store, ClickHouse data, logs)
	// and the databases in place and prints where they are.
	Keep bool
	// Only restricts the run to these measurement groups (see Groups);
	// empty runs all of them.
	Only []string
}

// DefaultConfig returns the configuration of a full run: about 6 minutes on
// an idle 2-core machine.
func DefaultConfig() Config {
	return Config{
		Events:            2_000_000,
		IngestEvents:      500_000,
		IngestClients:     4,
		IngestBatch:       1000,
		InsertBatch:       projector.DefaultBatchSize,
		FreshnessRate:     5000,
		FreshnessDuration: 30 * time.Second,
		MinIngestRatio:    0.70,
		MinE2ERatio:       0.70,
		MaxFreshness:      time.Second,
		MaxRSSBytes:       256 << 20,
		DatabasePrefix:    "tally_bench",
	}
}

// Quick shrinks c to a smoke-test size (tens of seconds): 20,000 events,
// 3 s of freshness.
func (c Config) Quick() Config {
	c.Events = 20_000
	c.IngestEvents = 20_000
	c.FreshnessDuration = 3 * time.Second
	c.FloorDuration = 2 * time.Second
	return c
}

// Validate reports every invalid setting.
func (c Config) Validate() error {
	var p []string
	if c.Events < 1000 {
		p = append(p, fmt.Sprintf("events must be >= 1000, got %d", c.Events))
	}
	if c.IngestEvents < 1000 {
		p = append(p, fmt.Sprintf("ingest events must be >= 1000, got %d", c.IngestEvents))
	}
	if c.IngestClients < 1 {
		p = append(p, "ingest clients must be >= 1")
	}
	if c.IngestBatch < 1 || c.InsertBatch < 1 {
		p = append(p, "batch sizes must be >= 1")
	}
	if c.FreshnessRate < 100 {
		p = append(p, fmt.Sprintf("freshness rate must be >= 100 events/s, got %d", c.FreshnessRate))
	}
	if c.FreshnessDuration < time.Second {
		p = append(p, fmt.Sprintf("freshness duration must be >= 1s, got %s", c.FreshnessDuration))
	}
	if c.FloorDuration < 0 {
		p = append(p, "floor duration must not be negative")
	}
	if len(c.ProjectorCommand) == 0 {
		p = append(p, "projector command is required (e.g. tally project)")
	}
	if c.DatabasePrefix == "" || !validIdent(c.DatabasePrefix) {
		p = append(p, fmt.Sprintf("database prefix %q must match ^[a-zA-Z_][a-zA-Z0-9_]*$", c.DatabasePrefix))
	}
	for _, g := range c.Only {
		if !slices.Contains(Groups, g) {
			p = append(p, fmt.Sprintf("unknown measurement group %q (want %s)", g, strings.Join(Groups, ", ")))
		}
	}
	if c.MaxRSSBytes == 0 || c.MaxFreshness <= 0 || c.MinIngestRatio <= 0 || c.MinE2ERatio <= 0 {
		p = append(p, "targets must be positive")
	}
	if len(p) > 0 {
		return fmt.Errorf("bench config: %s", strings.Join(p, "; "))
	}
	return nil
}

// referenceEvents is the size of the references that are not ceilings of a
// target ((b′) and (c)): half of Events, to keep the run short.
func (c Config) referenceEvents() int { return max(c.Events/2, min(c.Events, 1000)) }

// calibrationEvents is the size of each raw publish calibration run.
func (c Config) calibrationEvents() int { return min(50_000, max(c.IngestEvents/4, 5000)) }

func (c Config) floorDuration() time.Duration {
	if c.FloorDuration > 0 {
		return c.FloorDuration
	}
	return max(3*time.Second, (c.FreshnessDuration / 3).Round(100*time.Millisecond))
}

func validIdent(s string) bool {
	for i, r := range s {
		ok := r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9'
		if !ok {
			return false
		}
	}
	return s != ""
}

// Run sets up NATS and ClickHouse, runs every measurement, tears everything
// down and returns the report. Progress lines go to progress.
func Run(ctx context.Context, cfg Config, progress io.Writer) (Report, error) {
	if err := cfg.Validate(); err != nil {
		return Report{}, err
	}
	began := time.Now()
	e, err := setup(ctx, cfg, progress)
	if err != nil {
		return Report{}, err
	}
	rep, runErr := e.run(ctx)
	closeErr := e.close()
	rep.Elapsed = time.Since(began)
	if runErr != nil {
		return rep, runErr
	}
	return rep, closeErr
}

// Measurement groups, for Config.Only.
const (
	GroupIngest    = "ingest"    // row 1 and its ceiling
	GroupEndToEnd  = "e2e"       // row 2, ceilings (a), (b), references (b′), (c)
	GroupFreshness = "freshness" // freshness p50/p99 and the floor
	GroupMemory    = "memory"    // projector RSS and catch-up rate
)

// Groups lists every measurement group in report order.
var Groups = []string{GroupIngest, GroupEndToEnd, GroupFreshness, GroupMemory}

func (c Config) runs(group string) bool {
	return len(c.Only) == 0 || slices.Contains(c.Only, group)
}

// run performs the measurements in order; each leaves no load behind. The
// projector's memory is measured before freshness (so the latency runs see
// a machine without the backlog's merges) but reported last.
func (e *env) run(ctx context.Context) (Report, error) {
	cfg := e.cfg
	rep := Report{
		Machine: fmt.Sprintf("%d CPUs, %s %s/%s, ClickHouse %s", runtime.NumCPU(), runtime.Version(),
			runtime.GOOS, runtime.GOARCH, e.chVersion),
		Sizes: fmt.Sprintf("%s events end to end and in the backlog, %s through ingest, bodies %.0f bytes on average (%s), "+
			"freshness %s events/s for %s",
			num(float64(cfg.Events)), num(float64(cfg.IngestEvents)), e.avgBody, e.mix, num(float64(cfg.FreshnessRate)), cfg.FreshnessDuration),
	}
	if e.loadBefore >= 0 {
		rep.Machine += fmt.Sprintf("; machine %.0f%% busy just before the bench (other processes)", 100*e.loadBefore)
	}
	steps := []struct {
		group string
		run   func(context.Context) ([]Row, error)
	}{
		{GroupIngest, e.runIngest},
		{GroupEndToEnd, e.runEndToEnd},
		{GroupMemory, e.runMemory},
		{GroupFreshness, e.runFreshness},
	}
	rows := map[string][]Row{}
	for _, st := range steps {
		if !cfg.runs(st.group) {
			continue
		}
		r, err := st.run(ctx)
		if err != nil {
			return rep, err
		}
		rows[st.group] = r
	}
	for _, g := range Groups {
		rep.Rows = append(rep.Rows, rows[g]...)
	}
	return rep, nil
}

func (e *env) runIngest(ctx context.Context) ([]Row, error) {
	cfg := e.cfg
	rawPub, err := e.measureRawPublish(ctx)
	if err != nil {
		return nil, fmt.Errorf("raw publish ceiling: %w", err)
	}
	ing, err := e.measureIngest(ctx)
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	return []Row{{Key: "ingest", Name: fmt.Sprintf("Ingest HTTP: NDJSON batches of %d, %d clients", cfg.IngestBatch, cfg.IngestClients),
		Kind: Throughput, Unit: "events/s", Value: ing.rate, Ceiling: rawPub.rate,
		CeilName: "raw JetStream async publish with Nats-Msg-Id", MinRatio: cfg.MinIngestRatio,
		Note: fmt.Sprintf("%s events; ingest took %s (%s; request latency p50 %s, p99 %s); %s "+
			"Ceiling: %s events in %s, %s; %s",
			num(float64(cfg.IngestEvents)), ing.elapsed.Round(time.Millisecond), ing.detail,
			ing.p50.Round(time.Millisecond), ing.p99.Round(time.Millisecond), ing.cpu,
			num(float64(cfg.IngestEvents)), rawPub.elapsed.Round(time.Millisecond), rawPub.detail, rawPub.cpu)}}, nil
}

func (e *env) runEndToEnd(ctx context.Context) ([]Row, error) {
	cfg := e.cfg
	if e.window == 0 {
		if _, err := e.calibrate(ctx); err != nil {
			return nil, fmt.Errorf("calibrate: %w", err)
		}
	}
	ins, err := e.measureInsert(ctx)
	if err != nil {
		return nil, fmt.Errorf("raw insert ceiling: %w", err)
	}
	rawPipe, err := e.measureRawPipeline(ctx)
	if err != nil {
		return nil, fmt.Errorf("raw pipeline reference: %w", err)
	}
	// Ceiling (a) brackets the end-to-end run and is the mean of the two:
	// the speed of a shared machine drifts by 10–20% over minutes, and the
	// ratio should compare runs made under the same conditions.
	before, err := e.measurePubSub(ctx)
	if err != nil {
		return nil, fmt.Errorf("raw publish+consume ceiling: %w", err)
	}
	e2e, err := e.measureEndToEnd(ctx)
	if err != nil {
		return nil, fmt.Errorf("end to end: %w", err)
	}
	after, err := e.measurePubSub(ctx)
	if err != nil {
		return nil, fmt.Errorf("raw publish+consume ceiling, after end to end: %w", err)
	}
	pubsub := throughput{rate: (before.rate + after.rate) / 2,
		detail: fmt.Sprintf("Measured right before (%s events/s) and right after (%s events/s) the end-to-end run; the ceiling is their mean. %s",
			num(before.rate), num(after.rate), before.detail),
		cpu: "Before: " + before.cpu + " After: " + after.cpu}
	lower, lowerName := pubsub.rate, "(a) raw publish + pull-consume"
	if ins.withMVs < lower {
		lower, lowerName = ins.withMVs, "(b) raw ClickHouse INSERT with MVs"
	}
	return []Row{
		{Key: "e2e", Name: "End to end: publish → projector → visible in usage_15m",
			Kind: Throughput, Unit: "events/s", Value: e2e.rate, Ceiling: lower, CeilName: "lower ceiling: " + lowerName,
			MinRatio: cfg.MinE2ERatio,
			Note: fmt.Sprintf("%s events published with publish.PublishRaw (%s) while `tally project` ran as a child process; "+
				"all visible after %s; publishing alone took %s (%s events/s). %s",
				num(float64(cfg.Events)), e2e.detail, e2e.elapsed.Round(time.Millisecond),
				e2e.pubElapsed.Round(time.Millisecond), num(e2e.pubRate), e2e.cpu+" "+e2e.projector)},
		{Key: "ceiling_pubsub", Name: "(a) ceiling: raw async publish + pull consumer (fetch+ack) at once",
			Kind: Info, Unit: "events/s", Value: pubsub.rate, Note: pubsub.detail + " " + pubsub.cpu},
		{Key: "ceiling_insert", Name: fmt.Sprintf("(b) ceiling: raw clickhouse-go INSERT into events with MVs, batches of %s", num(float64(cfg.InsertBatch))),
			Kind: Info, Unit: "events/s", Value: ins.withMVs, Note: ins.detail},
		{Key: "ceiling_insert_plain", Name: fmt.Sprintf("(b′) reference: same INSERT into a plain copy of events, no MVs (%s rows)", num(float64(cfg.referenceEvents()))),
			Kind: Info, Unit: "events/s", Value: ins.plain},
		{Key: "raw_pipeline", Name: fmt.Sprintf("(c) reference: raw publish + pull-consume + INSERT with MVs, all at once (%s events)", num(float64(cfg.referenceEvents()))),
			Kind: Info, Unit: "events/s", Value: rawPipe.rate,
			Note: fmt.Sprintf("The three raw engines sharing the machine as the pipeline's stages do: one async publisher, one pull consumer "+
				"fetching like the projector (up to %s messages, waiting at most %s) and INSERTing each batch, rows rebuilt from the ids "+
				"(no JSON parsing, validation or dedup lookups). End to end reaches %.0f%% of it. %s",
				num(pipelineBatch), pipelineWait, 100*e2e.rate/rawPipe.rate, rawPipe.cpu)},
	}, nil
}

func (e *env) runMemory(ctx context.Context) ([]Row, error) {
	cfg := e.cfg
	bl, err := e.measureBacklog(ctx)
	if err != nil {
		return nil, fmt.Errorf("projector backlog: %w", err)
	}
	return []Row{
		{Key: "projector_rss", Name: fmt.Sprintf("Projector peak RSS catching up a %s-event backlog", num(float64(cfg.Events))),
			Kind: Memory, Unit: "MiB", Value: float64(bl.peakRSS) / (1 << 20), Ceiling: float64(cfg.MaxRSSBytes) / (1 << 20),
			CeilName: "budget", Max: float64(cfg.MaxRSSBytes) / (1 << 20),
			Note: fmt.Sprintf("VmHWM of the `tally project` process, %d samples every %s; it caught up in %s.",
				bl.samples, rssEvery, bl.elapsed.Round(time.Millisecond))},
		{Key: "projector_catchup", Name: "Projector catch-up rate from that backlog (start → all visible)",
			Kind: Info, Unit: "events/s", Value: bl.rate, Note: bl.cpu + " " + bl.projector},
	}, nil
}

func (e *env) runFreshness(ctx context.Context) ([]Row, error) {
	cfg := e.cfg
	floor, err := e.measureFreshnessFloor(ctx)
	if err != nil {
		return nil, fmt.Errorf("freshness floor: %w", err)
	}
	fr, err := e.measureFreshness(ctx)
	if err != nil {
		return nil, fmt.Errorf("freshness: %w", err)
	}
	const floorName = "raw floor: pull consumer inserting at once"
	return []Row{
		{Key: "freshness_p50", Name: fmt.Sprintf("Freshness p50 at %s events/s: publish → visible in jobs", num(float64(cfg.FreshnessRate))),
			Kind: Info, Unit: "ms", Value: ms(fr.p50), Ceiling: ms(floor.p50), CeilName: floorName},
		{Key: "freshness_p99", Name: fmt.Sprintf("Freshness p99 at %s events/s: publish → visible in jobs", num(float64(cfg.FreshnessRate))),
			Kind: Latency, Unit: "ms", Value: ms(fr.p99), Ceiling: ms(floor.p99), CeilName: floorName,
			Max: ms(cfg.MaxFreshness),
			Note: fmt.Sprintf("%d samples over %s (achieved %s events/s, max %s ms); floor: %d samples over %s (%s events/s), p50 %s ms. "+
				"Visibility is polled every %s with `%s`. Projector run: %s Floor run: %s",
				fr.samples, cfg.FreshnessDuration, num(fr.rate), num(ms(fr.max)), floor.samples, cfg.floorDuration(), num(floor.rate),
				num(ms(floor.p50)), pollEvery, strings.Join(strings.Fields(visibleJobsQuery), " "), fr.cpu+" "+fr.projector, floor.cpu)},
	}, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// errStalled is returned when a wait sees no progress for too long.
var errStalled = errors.New("no progress")
