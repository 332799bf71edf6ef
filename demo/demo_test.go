package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/tallyhq/tally/schemas"
)

// base is a Wednesday afternoon, well in the past of the real clock.
var base = time.Date(2026, 3, 11, 14, 20, 7, 0, time.UTC)

// run is one generator run with a test clock: New sees start; every later
// reading advances the clock by tick, and the run stops once the clock
// reaches stopAt.
type run struct {
	g        *Generator
	sc       Scenario
	events   []*schemas.Event
	clockAt  []time.Time // clock reading when each event reached the sink
	batches  []int
	stopAt   time.Time
	duration time.Duration
}

func collect(t *testing.T, cfg Config, start time.Time, past time.Duration, failFirst int) *run {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var mu sync.Mutex
	now := start
	first := true
	r := &run{stopAt: start.Add(past)}
	cfg.Clock = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		if !first {
			now = now.Add(time.Minute)
		}
		first = false
		if !now.Before(r.stopAt) {
			cancel()
		}
		return now
	}
	if cfg.Speed == 0 {
		cfg.Speed = 100
	}
	if cfg.Rate == 0 {
		cfg.Rate = 1e9
	}
	r.g = New(cfg, nil)
	r.g.tick = time.Millisecond
	r.g.backoffMin = time.Millisecond
	r.sc = r.g.Scenario()
	calls := 0
	began := time.Now()
	err := r.g.Run(ctx, func(ctx context.Context, evs []*schemas.Event) error {
		calls++
		if calls <= failFirst {
			return errors.New("sink unavailable")
		}
		mu.Lock()
		at := now
		mu.Unlock()
		r.batches = append(r.batches, len(evs))
		for _, ev := range evs {
			r.events = append(r.events, ev)
			r.clockAt = append(r.clockAt, at)
		}
		return nil
	})
	r.duration = time.Since(began)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return r
}

var (
	fixtureOnce sync.Once
	fixture     *run
)

// defaultRun is the default world (3 resellers x 12 orgs, 14 days of
// history, 6 h catch-up) run until 90 simulated minutes past Start.
func defaultRun(t *testing.T) *run {
	fixtureOnce.Do(func() { fixture = collect(t, Config{Seed: 42}, base, 90*time.Minute, 0) })
	if fixture == nil {
		t.Fatal("fixture run failed")
	}
	return fixture
}

// unique returns the first occurrence of every event id, in emission order.
func unique(evs []*schemas.Event) []*schemas.Event {
	seen := map[string]bool{}
	var out []*schemas.Event
	for _, ev := range evs {
		if !seen[ev.ID] {
			seen[ev.ID] = true
			out = append(out, ev)
		}
	}
	return out
}

func jobData(t *testing.T, ev *schemas.Event) schemas.JobData {
	t.Helper()
	var d schemas.JobData
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		t.Fatalf("job data of %s: %v", ev.ID, err)
	}
	return d
}

func isJob(typ string) bool {
	switch typ {
	case schemas.TypeJobCreated, schemas.TypeJobStarted, schemas.TypeJobCompleted, schemas.TypeJobFailed:
		return true
	}
	return false
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{"zero means defaults", Config{}, false},
		{"explicit", Config{Seed: 7, Resellers: 8, OrgsPerReseller: 5, Speed: 1, Backfill: time.Hour, CatchUp: time.Minute, Rate: 10}, false},
		{"too many resellers", Config{Resellers: MaxResellers + 1}, true},
		{"negative resellers", Config{Resellers: -1}, true},
		{"too few orgs", Config{OrgsPerReseller: MinOrgsPerReseller - 1}, true},
		{"too many orgs", Config{OrgsPerReseller: MaxOrgsPerReseller + 1}, true},
		{"speed below 1", Config{Speed: 0.5}, true},
		{"negative backfill", Config{Backfill: -time.Hour}, true},
		{"backfill too long", Config{Backfill: MaxBackfill + time.Hour}, true},
		{"negative catch-up", Config{CatchUp: -time.Minute}, true},
		{"catch-up not shorter than backfill", Config{Backfill: 6 * time.Hour, CatchUp: 6 * time.Hour}, true},
		{"default catch-up exceeds short backfill", Config{Backfill: 2 * time.Hour}, true},
		{"negative rate", Config{Rate: -1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Validate() = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				if runErr := New(tt.cfg, nil).Run(t.Context(), func(context.Context, []*schemas.Event) error { return nil }); runErr == nil {
					t.Fatal("Run accepted an invalid config")
				}
			}
		})
	}
}

func TestEvents(t *testing.T) {
	r := defaultRun(t)
	t.Logf("%d events in %d batches in %s", len(r.events), len(r.batches), r.duration)

	t.Run("every event is valid at the clock that emitted it", func(t *testing.T) {
		for i, ev := range r.events {
			if err := ev.ValidateAt(r.clockAt[i]); err != nil {
				t.Fatalf("event %d: %v", i, err)
			}
			if ev.Time.After(r.clockAt[i]) {
				t.Fatalf("event %s at %s emitted early, clock %s", ev.ID, ev.Time, r.clockAt[i])
			}
			if ev.Source != Source || ev.SpecVersion != schemas.SpecVersion {
				t.Fatalf("event %s: source %q specversion %q", ev.ID, ev.Source, ev.SpecVersion)
			}
			raw, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := schemas.DecodeAt(raw, r.clockAt[i]); err != nil {
				t.Fatalf("decode event %d: %v", i, err)
			}
		}
	})

	t.Run("batches hold at most MaxBatch events", func(t *testing.T) {
		for _, n := range r.batches {
			if n < 1 || n > MaxBatch {
				t.Fatalf("batch of %d events", n)
			}
		}
	})

	t.Run("event mix contains every type", func(t *testing.T) {
		count := map[string]int{}
		for _, ev := range r.events {
			count[ev.Type]++
		}
		for _, typ := range schemas.Types {
			if count[typ] == 0 {
				t.Errorf("no %s events", typ)
			}
		}
		t.Logf("mix: %v", count)
	})

	t.Run("duplicates share ids and are a small fraction", func(t *testing.T) {
		byID := map[string][]byte{}
		dups := 0
		for _, ev := range r.events {
			raw, _ := json.Marshal(ev)
			if prev, ok := byID[ev.ID]; ok {
				dups++
				if !bytes.Equal(prev, raw) {
					t.Fatalf("event %s repeated with different content", ev.ID)
				}
				continue
			}
			byID[ev.ID] = raw
		}
		share := float64(dups) / float64(len(r.events))
		if share < 0.004 || share > 0.02 {
			t.Fatalf("%d duplicates = %.2f%% of events, want about 1%%", dups, share*100)
		}
	})

	t.Run("late job events exist", func(t *testing.T) {
		var maxSeen time.Time
		late, jobs := 0, 0
		for _, ev := range unique(r.events) {
			if isJob(ev.Type) {
				jobs++
				if ev.Time.Before(maxSeen.Add(-time.Hour)) {
					late++
				}
			}
			if ev.Time.After(maxSeen) {
				maxSeen = ev.Time
			}
		}
		share := float64(late) / float64(jobs)
		if share < 0.003 || share > 0.02 {
			t.Fatalf("%d of %d job events late (%.2f%%), want about 1%%", late, jobs, share*100)
		}
	})

	t.Run("jobs follow their lifecycle", func(t *testing.T) {
		type job struct {
			created, started, ended time.Time
			failed                  bool
		}
		jobs := map[string]*job{}
		var failed, finished int
		for _, ev := range unique(r.events) {
			if !isJob(ev.Type) {
				continue
			}
			d := jobData(t, ev)
			j := jobs[d.JobID]
			if j == nil {
				j = &job{}
				jobs[d.JobID] = j
			}
			switch ev.Type {
			case schemas.TypeJobCreated:
				j.created = ev.Time
				if !ev.Time.Equal(d.CreatedAt) {
					t.Fatalf("job %s created event at %s, created_at %s", d.JobID, ev.Time, d.CreatedAt)
				}
			case schemas.TypeJobStarted:
				j.started = ev.Time
			default:
				j.ended = ev.Time
				j.failed = ev.Type == schemas.TypeJobFailed
				finished++
				if j.failed {
					failed++
				}
			}
		}
		for id, j := range jobs {
			if !j.created.IsZero() && !j.started.IsZero() && j.started.Before(j.created) {
				t.Fatalf("job %s started before it was created", id)
			}
			if !j.started.IsZero() && !j.ended.IsZero() && j.ended.Before(j.started) {
				t.Fatalf("job %s ended before it started", id)
			}
		}
		share := float64(failed) / float64(finished)
		if share < 0.02 || share > 0.06 {
			t.Fatalf("%d of %d jobs failed (%.1f%%), want 3-5%%", failed, finished, share*100)
		}
	})

	t.Run("jobs only come from users who were added", func(t *testing.T) {
		added := map[string]time.Time{}
		for _, ev := range r.events {
			if ev.Type == schemas.TypeUserAdded {
				var d schemas.UserData
				_ = json.Unmarshal(ev.Data, &d)
				added[ev.OrgID+"/"+d.UserID] = ev.Time
			}
		}
		for _, ev := range r.events {
			if ev.Type != schemas.TypeJobCreated {
				continue
			}
			d := jobData(t, ev)
			at, ok := added[ev.OrgID+"/"+d.UserID]
			if !ok || at.After(ev.Time) {
				t.Fatalf("job %s by %s before the user was added", d.JobID, d.UserID)
			}
		}
	})
}

func TestScenario(t *testing.T) {
	r := defaultRun(t)
	sc := r.sc
	evs := unique(r.events)

	t.Run("world", func(t *testing.T) {
		want := []string{"acme-media", "northwind-voice", "globex-transcribe"}
		var got []string
		created := map[string]bool{}
		subscribed := map[string]bool{}
		for _, ev := range evs {
			switch ev.Type {
			case schemas.TypeOrganizationCreated:
				created[ev.ResellerID+"/"+ev.OrgID] = true
			case schemas.TypeSubscriptionChanged:
				subscribed[ev.ResellerID+"/"+ev.OrgID] = true
			}
		}
		plans := map[string]int{}
		statuses := map[string]int{}
		for _, res := range sc.Resellers {
			got = append(got, res.ID)
			if len(res.Orgs) != DefaultOrgsPerReseller {
				t.Errorf("reseller %s has %d orgs", res.ID, len(res.Orgs))
			}
			for _, o := range res.Orgs {
				key := res.ID + "/" + o.ID
				if !schemas.ValidToken(o.ID) {
					t.Errorf("org id %q is not a token", o.ID)
				}
				if !created[key] || !subscribed[key] {
					t.Errorf("org %s: created %v subscribed %v", key, created[key], subscribed[key])
				}
				if o.Users < 2 || o.Users > 40 {
					t.Errorf("org %s has %d users", key, o.Users)
				}
				plans[o.Plan]++
				statuses[o.Status]++
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("resellers %v, want %v", got, want)
		}
		for _, p := range []string{planTrial, planStarter, planPro, planEnterprise} {
			if plans[p] == 0 {
				t.Errorf("no org on plan %s (%v)", p, plans)
			}
		}
		for _, s := range []string{"active", "trial", "suspended"} {
			if statuses[s] == 0 {
				t.Errorf("no org with status %s (%v)", s, statuses)
			}
		}
		for _, so := range sc.Orgs() {
			if _, ok := sc.Org(so.ResellerID, so.OrgID); !ok || so.Description == "" {
				t.Errorf("scenario org %+v not in the world", so)
			}
		}
		t.Logf("\n%s", sc)
	})

	t.Run("calendar-month periods", func(t *testing.T) {
		for _, ev := range evs {
			if ev.Type != schemas.TypeSubscriptionChanged || ev.OrgID == sc.Quota.OrgID || ev.OrgID == sc.PaymentFailure.OrgID {
				continue
			}
			var d schemas.SubscriptionData
			_ = json.Unmarshal(ev.Data, &d)
			if d.Plan == planTrial {
				continue
			}
			ps := d.PeriodStart
			if ps.Day() != 1 || ps.Hour() != 0 || !d.PeriodEnd.Equal(ps.AddDate(0, 1, 0)) {
				t.Fatalf("org %s period %s - %s is not a calendar month", ev.OrgID, d.PeriodStart, d.PeriodEnd)
			}
		}
	})

	t.Run("spike org reaches at least 5x its baseline", func(t *testing.T) {
		o, _ := sc.Org(sc.Spike.ResellerID, sc.Spike.OrgID)
		loc, _ := time.LoadLocation(o.TimeZone)
		var created []time.Time
		for _, ev := range evs {
			if ev.Type == schemas.TypeJobCreated && ev.OrgID == o.ID {
				created = append(created, ev.Time)
			}
		}
		inSpike := func(t time.Time) bool {
			for _, w := range sc.SpikeWindows {
				if !t.Before(w.Start) && t.Before(w.End) {
					return true
				}
			}
			return false
		}
		// baseline: weekday office hours (09-17 local) outside spikes
		hours, jobs := 0, 0
		for h := sc.HistoryStart; h.Before(sc.LiveStart); h = h.Add(time.Hour) {
			l := h.In(loc)
			if l.Weekday() == time.Saturday || l.Weekday() == time.Sunday || l.Hour() < 9 || l.Hour() >= 17 || inSpike(h) || inSpike(h.Add(59*time.Minute)) {
				continue
			}
			hours++
			for _, c := range created {
				if !c.Before(h) && c.Before(h.Add(time.Hour)) {
					jobs++
				}
			}
		}
		baseline := float64(jobs) / float64(hours)
		checked := 0
		for _, w := range sc.SpikeWindows {
			if w.Start.Before(sc.HistoryStart) || w.End.After(r.stopAt) {
				continue
			}
			n := 0
			for _, c := range created {
				if !c.Before(w.Start) && c.Before(w.End) {
					n++
				}
			}
			perHour := float64(n) / w.End.Sub(w.Start).Hours()
			t.Logf("spike %s: %.1f jobs/h vs baseline %.1f (%.1fx)", w.Start.Format(time.RFC3339), perHour, baseline, perHour/baseline)
			if perHour < 5*baseline {
				t.Errorf("spike at %s: %.1f jobs/h, baseline %.1f", w.Start, perHour, baseline)
			}
			checked++
		}
		if checked < 3 || baseline <= 0 {
			t.Fatalf("checked %d spikes, baseline %.2f", checked, baseline)
		}
	})

	t.Run("quiet org has almost no jobs", func(t *testing.T) {
		o, _ := sc.Org(sc.Quiet.ResellerID, sc.Quiet.OrgID)
		if o.Plan == planTrial || o.PriceMinor == 0 || o.Status != "active" {
			t.Fatalf("quiet org is not a paying customer: %+v", o)
		}
		recent, before := 0, 0
		for _, ev := range evs {
			if ev.Type != schemas.TypeJobCreated || ev.OrgID != o.ID {
				continue
			}
			switch {
			case !ev.Time.Before(sc.Start.Add(-7 * 24 * time.Hour)):
				recent++
			case ev.Time.Before(sc.Start.Add(-quietSince)):
				before++
			}
		}
		if recent > 2 || before < 8 {
			t.Fatalf("quiet org: %d jobs in the last 7 days, %d before it went quiet", recent, before)
		}
	})

	t.Run("quota org crosses its quota early in live time", func(t *testing.T) {
		o, _ := sc.Org(sc.Quota.ResellerID, sc.Quota.OrgID)
		type use struct {
			at  time.Time
			min float64
		}
		var uses []use
		for _, ev := range evs {
			if ev.Type != schemas.TypeJobCompleted || ev.OrgID != o.ID || ev.Time.Before(o.PeriodStart) || !ev.Time.Before(o.PeriodEnd) {
				continue
			}
			uses = append(uses, use{ev.Time, jobData(t, ev).MediaDurationSeconds / 60})
		}
		sort.Slice(uses, func(i, j int) bool { return uses[i].at.Before(uses[j].at) })
		quota := float64(o.QuotaMinutes)
		var sum, atLive float64
		crossed := map[int]time.Time{}
		for _, u := range uses {
			if u.at.Before(sc.LiveStart) {
				atLive += u.min
			}
			sum += u.min
			for _, pct := range []int{80, 90, 100} {
				if _, ok := crossed[pct]; !ok && sum >= quota*float64(pct)/100 {
					crossed[pct] = u.at
				}
			}
		}
		if atLive >= 0.8*quota || atLive < 0.5*quota {
			t.Fatalf("%.0f of %.0f minutes used when live starts, want 50-80%%", atLive, quota)
		}
		const within = 240 * time.Minute
		for _, pct := range []int{80, 90, 100} {
			at, ok := crossed[pct]
			if !ok || at.Before(sc.LiveStart) || at.After(sc.LiveStart.Add(within)) {
				t.Fatalf("%d%% of quota crossed at %v (ok %v), want within %s after live start %s", pct, at, ok, within, sc.LiveStart)
			}
			t.Logf("%d%% crossed %s after live start", pct, at.Sub(sc.LiveStart).Round(time.Minute))
		}
	})

	t.Run("payment failure org is past due and expiring", func(t *testing.T) {
		o, _ := sc.Org(sc.PaymentFailure.ResellerID, sc.PaymentFailure.OrgID)
		failures, live := 0, false
		for _, ev := range evs {
			if ev.Type == schemas.TypeInvoicePaymentFailed && ev.OrgID == o.ID {
				failures++
				live = live || !ev.Time.Before(sc.LiveStart)
			}
		}
		if failures < 2 || !live {
			t.Fatalf("payment org: %d failed payments, one in live time: %v", failures, live)
		}
		if o.SubscriptionStatus != "past_due" {
			t.Fatalf("subscription status %q", o.SubscriptionStatus)
		}
		if left := o.PeriodEnd.Sub(sc.Start); left < 2*24*time.Hour || left > 5*24*time.Hour {
			t.Fatalf("period ends %s after start, want a few days", left)
		}
	})

	t.Run("signup org appears in live time", func(t *testing.T) {
		for _, ev := range evs {
			if ev.Type == schemas.TypeOrganizationCreated && ev.OrgID == sc.Signup.OrgID {
				if ev.Time.Before(sc.LiveStart) || ev.Time.After(sc.Start) {
					t.Fatalf("signup at %s, live %s..%s", ev.Time, sc.LiveStart, sc.Start)
				}
				return
			}
		}
		t.Fatal("signup org never created")
	})

	t.Run("night volume is well below day volume", func(t *testing.T) {
		zones := map[string]*time.Location{}
		for _, res := range sc.Resellers {
			for _, o := range res.Orgs {
				if o.Role == "" {
					zones[o.ID], _ = time.LoadLocation(o.TimeZone)
				}
			}
		}
		var night, day int
		for _, ev := range evs {
			loc := zones[ev.OrgID]
			if ev.Type != schemas.TypeJobCreated || loc == nil || ev.Time.After(sc.LiveStart) {
				continue
			}
			l := ev.Time.In(loc)
			if l.Weekday() == time.Saturday || l.Weekday() == time.Sunday {
				continue
			}
			switch h := l.Hour(); {
			case h < 6:
				night++
			case h >= 9 && h < 17:
				day++
			}
		}
		perNight, perDay := float64(night)/6, float64(day)/8
		t.Logf("weekday jobs per local hour: night %.0f, office hours %.0f", perNight, perDay)
		if perNight > 0.1*perDay {
			t.Fatalf("night %.0f/h vs day %.0f/h", perNight, perDay)
		}
	})
}

func TestDeterministic(t *testing.T) {
	cfg := Config{Seed: 7, OrgsPerReseller: 6, Backfill: 3 * 24 * time.Hour, CatchUp: 2 * time.Hour}
	a := collect(t, cfg, base, 30*time.Minute, 0)
	b := collect(t, cfg, base, 30*time.Minute, 0)
	if len(a.events) == 0 || len(a.events) != len(b.events) {
		t.Fatalf("runs emitted %d and %d events", len(a.events), len(b.events))
	}
	for i := range a.events {
		ja, _ := json.Marshal(a.events[i])
		jb, _ := json.Marshal(b.events[i])
		if !bytes.Equal(ja, jb) {
			t.Fatalf("event %d differs:\n%s\n%s", i, ja, jb)
		}
	}
	cfg.Seed = 8
	c := collect(t, cfg, base, 30*time.Minute, 0)
	if len(c.events) > 0 && c.events[len(c.events)-1].ID == a.events[len(a.events)-1].ID {
		t.Fatal("different seeds produced the same events")
	}
}

func TestSinkRetry(t *testing.T) {
	cfg := Config{Seed: 3, OrgsPerReseller: 5, Resellers: 1, Backfill: 24 * time.Hour, CatchUp: time.Hour}
	clean := collect(t, cfg, base, 10*time.Minute, 0)
	flaky := collect(t, cfg, base, 10*time.Minute, 4)
	if len(clean.events) == 0 || len(flaky.events) != len(clean.events) {
		t.Fatalf("flaky sink got %d events, clean %d", len(flaky.events), len(clean.events))
	}
	for i := range clean.events {
		if clean.events[i].ID != flaky.events[i].ID {
			t.Fatalf("event %d: %s after retries, %s without", i, flaky.events[i].ID, clean.events[i].ID)
		}
	}
}

// TestStartTimes runs short worlds starting at awkward instants: every event
// must be valid and the scenarios must still be in place.
func TestStartTimes(t *testing.T) {
	tests := []struct {
		name  string
		start time.Time
	}{
		{"new year's eve midnight", time.Date(2025, 12, 31, 23, 59, 59, 0, time.UTC)},
		{"first hour of a month", time.Date(2026, 2, 1, 0, 30, 0, 0, time.UTC)},
		{"31st of a month", time.Date(2026, 1, 31, 12, 0, 0, 0, time.UTC)},
		{"european DST change", time.Date(2026, 3, 29, 1, 10, 0, 0, time.UTC)},
		{"sunday night", time.Date(2026, 3, 8, 23, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := collect(t, Config{Seed: 11, OrgsPerReseller: 6, Backfill: 3 * 24 * time.Hour}, tt.start, 30*time.Minute, 0)
			types := map[string]bool{}
			for i, ev := range r.events {
				if err := ev.ValidateAt(r.clockAt[i]); err != nil {
					t.Fatalf("event %d: %v", i, err)
				}
				types[ev.Type] = true
			}
			for _, typ := range []string{schemas.TypeOrganizationCreated, schemas.TypeSubscriptionChanged, schemas.TypeJobCompleted, schemas.TypeInvoicePaymentFailed} {
				if !types[typ] {
					t.Errorf("no %s", typ)
				}
			}
			o, _ := r.sc.Org(r.sc.Quota.ResellerID, r.sc.Quota.OrgID)
			if !o.PeriodEnd.After(r.sc.Start) || o.PeriodStart.After(r.sc.LiveStart) {
				t.Errorf("quota org period %s - %s does not cover live time", o.PeriodStart, o.PeriodEnd)
			}
		})
	}
}
