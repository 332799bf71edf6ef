// Package demo generates realistic demo traffic for tally: resellers with
// dozens of organizations on several plans, users, custom models, billing,
// system notices and transcription jobs that follow each organization's
// office hours, plus scripted scenario organizations (a usage spike, a quiet
// paid customer, a quota crossing, a failed payment) and the faults a real
// platform produces (duplicate and late events).
//
// Event time is simulated time, and simulated time never runs ahead of the
// clock, so every event is valid and the event-time density of history and
// live traffic is the same (charts and alerts compare like with like). The
// generator emits history in three parts:
//
//   - setup: what happened before the history window (organizations created
//     months ago, their subscriptions, users, custom models), at once;
//   - backfill: [Start-Backfill, Start-CatchUp), as fast as the sink accepts;
//   - live: simulated time starts at Start-CatchUp and runs Speed times
//     faster than the clock until it reaches the clock, then follows it.
//
// The dashboards therefore show two weeks of history at once, fill the last
// hours while the operator watches (the scenarios play out there), and then
// keep receiving real-time traffic.
package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tallyhq/tally/schemas"
)

// Source is the CloudEvents source of every demo event.
const Source = "demo://tally"

// MaxBatch is the largest number of events passed to the sink in one call.
const MaxBatch = 1000

// Defaults applied by New for zero Config fields.
const (
	DefaultResellers       = 3
	DefaultOrgsPerReseller = 12
	DefaultSpeed           = 120
	DefaultBackfill        = 14 * 24 * time.Hour
	DefaultCatchUp         = 6 * time.Hour
	DefaultRate            = 200
)

// Limits checked by Config.Validate.
const (
	MinOrgsPerReseller = 5
	MaxOrgsPerReseller = 200
	MaxBackfill        = 90 * 24 * time.Hour
	MaxSpeed           = 1e6
)

// Config configures a Generator. Zero values mean the defaults above.
type Config struct {
	// Seed makes the generated world and traffic deterministic: the same
	// seed and the same clock produce the same events in the same order.
	// Zero is a seed like any other. Event ids also depend on the start
	// time, so a restart never reuses the ids of an earlier run.
	Seed int64
	// Resellers is the number of resellers, 1 to MaxResellers (default 3).
	Resellers int
	// OrgsPerReseller is the number of organizations per reseller,
	// MinOrgsPerReseller to MaxOrgsPerReseller (default 12).
	OrgsPerReseller int
	// Speed is how many simulated seconds pass per second of the clock while
	// live traffic catches up with the clock (default 120: the default
	// CatchUp of 6 h plays out in about 3 minutes). At least 1.
	Speed float64
	// Backfill is how much history before the start is generated (default
	// 14 days, at most 90 days). Must exceed CatchUp.
	Backfill time.Duration
	// CatchUp is the newest part of the history that is emitted at Speed
	// instead of as fast as possible (default 6 h). The scenarios that
	// operators should watch happen in it: the quota crossing, a spike, a
	// failed payment retry, a new organization signing up, a notice.
	CatchUp time.Duration
	// Rate caps live emission in events per second of the clock (default
	// 200). When the simulation produces more at Speed, emission lags.
	Rate float64
	// Clock is the time source (default time.Now). It is read once by New
	// for the start of the simulation and then on every live tick.
	Clock func() time.Time
}

// Validate reports every invalid field. Zero values are valid (defaults).
func (c Config) Validate() error {
	var problems []string
	if c.Resellers < 0 || c.Resellers > MaxResellers {
		problems = append(problems, fmt.Sprintf("resellers: %d not in 1..%d", c.Resellers, MaxResellers))
	}
	if c.OrgsPerReseller != 0 && (c.OrgsPerReseller < MinOrgsPerReseller || c.OrgsPerReseller > MaxOrgsPerReseller) {
		problems = append(problems, fmt.Sprintf("orgs per reseller: %d not in %d..%d", c.OrgsPerReseller, MinOrgsPerReseller, MaxOrgsPerReseller))
	}
	if math.IsNaN(c.Speed) || c.Speed != 0 && (c.Speed < 1 || c.Speed > MaxSpeed) {
		problems = append(problems, fmt.Sprintf("speed: %g not in 1..%g", c.Speed, float64(MaxSpeed)))
	}
	if c.Backfill < 0 || c.Backfill > MaxBackfill {
		problems = append(problems, fmt.Sprintf("backfill: %s not in 0..%s", c.Backfill, MaxBackfill))
	}
	if c.CatchUp < 0 {
		problems = append(problems, fmt.Sprintf("catch-up: %s is negative", c.CatchUp))
	}
	if math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) || c.Rate < 0 {
		problems = append(problems, fmt.Sprintf("rate: %g is not a non-negative number", c.Rate))
	}
	d := c.withDefaults()
	if c.Backfill >= 0 && c.CatchUp >= 0 && d.CatchUp >= d.Backfill {
		problems = append(problems, fmt.Sprintf("catch-up: %s must be shorter than backfill %s", d.CatchUp, d.Backfill))
	}
	if len(problems) > 0 {
		return fmt.Errorf("demo config: %s", strings.Join(problems, "; "))
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Resellers == 0 {
		c.Resellers = DefaultResellers
	}
	if c.OrgsPerReseller == 0 {
		c.OrgsPerReseller = DefaultOrgsPerReseller
	}
	if c.Speed == 0 {
		c.Speed = DefaultSpeed
	}
	if c.Backfill == 0 {
		c.Backfill = DefaultBackfill
	}
	if c.CatchUp == 0 {
		c.CatchUp = DefaultCatchUp
	}
	if c.Rate == 0 {
		c.Rate = DefaultRate
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	return c
}

// Generator produces the demo traffic. Create it with New; Run it once.
type Generator struct {
	cfg Config
	log *slog.Logger
	err error // invalid configuration, returned by Run

	// Timeline (see the package doc).
	start, historyStart, liveStart time.Time

	world
	sim

	started atomic.Bool

	// Knobs the tests shorten.
	tick       time.Duration
	backoffMin time.Duration
	backoffMax time.Duration
}

// New plans the demo world for cfg (missing fields take the defaults). The
// clock is read once here: the world's history ends at that instant. An
// invalid configuration is reported by Run.
func New(cfg Config, log *slog.Logger) *Generator {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &Generator{
		log:        log,
		tick:       250 * time.Millisecond,
		backoffMin: 200 * time.Millisecond,
		backoffMax: 10 * time.Second,
	}
	if err := cfg.Validate(); err != nil {
		g.err = err
		g.cfg = cfg
		return g
	}
	g.cfg = cfg.withDefaults()
	g.start = g.cfg.Clock().UTC().Truncate(time.Millisecond)
	g.historyStart = g.start.Add(-g.cfg.Backfill).Truncate(stepLen)
	g.liveStart = g.start.Add(-g.cfg.CatchUp).Truncate(stepLen)
	g.initSim()
	g.plan()
	return g
}

// Run emits the setup events and the backfill as fast as sink accepts them,
// then live traffic paced by the clock, in batches of at most MaxBatch
// events in emission order. A failing sink is retried with backoff (the
// same batch again, so events keep their ids) and logged at warn. Run
// blocks until ctx ends and then returns nil; it returns an error only for
// an invalid configuration or a second call.
func (g *Generator) Run(ctx context.Context, sink func(ctx context.Context, events []*schemas.Event) error) error {
	if g.err != nil {
		return g.err
	}
	if sink == nil {
		return errors.New("demo: nil sink")
	}
	if !g.started.CompareAndSwap(false, true) {
		return errors.New("demo: Run called more than once")
	}
	g.logScenario()

	began := time.Now()
	g.setup()
	var buf []*schemas.Event
	for g.horizon.Before(g.liveStart) {
		g.step()
		due := g.liveStart
		if g.horizon.Before(due) {
			due = g.horizon
		}
		buf = append(buf, g.popDue(due, false, math.MaxInt)...)
		for len(buf) >= MaxBatch || len(buf) > 0 && !g.horizon.Before(g.liveStart) {
			n := min(len(buf), MaxBatch)
			if !g.deliver(ctx, sink, slices.Clone(buf[:n])) {
				return nil
			}
			g.emitted += n
			buf = buf[n:]
		}
		if ctx.Err() != nil {
			return nil
		}
	}
	g.log.Info("demo backfill emitted",
		"events", g.emitted, "from", g.historyStart, "to", g.liveStart,
		"took", time.Since(began).Round(time.Millisecond))

	ticker := time.NewTicker(g.tick)
	defer ticker.Stop()
	liveBegin := g.cfg.Clock()
	last := liveBegin
	tokens := 0.0
	caughtUp := false
	for {
		now := g.cfg.Clock()
		simNow := g.simTime(now, liveBegin)
		if !caughtUp && !simNow.Before(now) {
			caughtUp = true
			g.log.Info("demo caught up with the clock; continuing in real time", "events", g.emitted)
		}
		for !g.horizon.After(simNow) {
			g.step()
		}
		if dt := now.Sub(last).Seconds(); dt > 0 {
			tokens = math.Min(tokens+g.cfg.Rate*dt, math.Max(g.cfg.Rate, 1))
		}
		last = now
		sent, ok := g.flush(ctx, sink, simNow, true, int(tokens))
		if !ok {
			return nil
		}
		tokens -= float64(sent)
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// simTime is the live simulated time at clock reading now: LiveStart plus
// Speed times the clock time since live began, never past now.
func (g *Generator) simTime(now, liveBegin time.Time) time.Time {
	elapsed := now.Sub(liveBegin).Seconds() * g.cfg.Speed
	if elapsed >= now.Sub(g.liveStart).Seconds() {
		return now
	}
	return g.liveStart.Add(time.Duration(elapsed * float64(time.Second)))
}

// flush hands queued events due before limit (or at limit, when inclusive)
// to the sink, at most max of them, in batches of at most MaxBatch. It
// reports how many it sent and false when ctx ended.
func (g *Generator) flush(ctx context.Context, sink func(context.Context, []*schemas.Event) error, limit time.Time, inclusive bool, max int) (int, bool) {
	sent := 0
	for sent < max {
		n := min(MaxBatch, max-sent)
		batch := g.popDue(limit, inclusive, n)
		if len(batch) == 0 {
			break
		}
		if !g.deliver(ctx, sink, batch) {
			return sent, false
		}
		sent += len(batch)
		g.emitted += len(batch)
	}
	return sent, ctx.Err() == nil
}

// deliver calls sink until it accepts batch or ctx ends.
func (g *Generator) deliver(ctx context.Context, sink func(context.Context, []*schemas.Event) error, batch []*schemas.Event) bool {
	backoff := g.backoffMin
	for attempt := 1; ; attempt++ {
		err := sink(ctx, batch)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		g.log.Warn("demo sink failed; retrying", "attempt", attempt, "events", len(batch), "retry_in", backoff, "err", err)
		timer := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			timer.Stop()
			return false
		case <-timer.C:
		}
		backoff = min(backoff*2, g.backoffMax)
	}
}

func (g *Generator) logScenario() {
	s := g.Scenario()
	orgs := 0
	for _, r := range s.Resellers {
		orgs += len(r.Orgs)
	}
	g.log.Info("demo world",
		"seed", s.Seed, "resellers", len(s.Resellers), "organizations", orgs,
		"history_from", s.HistoryStart, "live_from", s.LiveStart, "start", s.Start,
		"speed", g.cfg.Speed, "catch_up_takes", s.CatchUpTakes.Round(time.Second))
	for _, so := range s.Orgs() {
		g.log.Info("demo scenario org", "role", so.Role, "reseller", so.ResellerID, "org", so.OrgID, "name", so.Name, "what", so.Description)
	}
}
