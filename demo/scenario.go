package demo

import (
	"fmt"
	"strings"
	"time"
)

// Scenario describes the generated world: its timeline, resellers and
// organizations (as they stand at Start) and the scenario organizations.
type Scenario struct {
	Seed int64
	// Start is the clock reading when the Generator was created. History
	// ends here; event times never pass the clock.
	Start time.Time
	// HistoryStart is where the backfill begins (Start - Backfill, on a
	// quarter hour). Organizations created earlier are emitted first.
	HistoryStart time.Time
	// LiveStart is the simulated time where paced emission begins
	// (Start - CatchUp, on a quarter hour).
	LiveStart time.Time
	// CatchUpTakes is how long (by the clock, after the backfill) live
	// traffic takes to reach the clock at Speed; 0 if Speed is 1.
	CatchUpTakes time.Duration
	Resellers    []Reseller
	// The scenario organizations.
	Spike, Quiet, Quota, PaymentFailure, Signup ScenarioOrg
	// SpikeWindows are the Spike org's spikes from HistoryStart to a week
	// after Start.
	SpikeWindows []Window
}

// Reseller is one demo reseller and its organizations.
type Reseller struct {
	ID, Name string
	Orgs     []Org
}

// Org is an organization as it stands at Scenario.Start.
type Org struct {
	ResellerID, ID, Name string
	Sector, TimeZone     string
	Currency             string
	Plan                 string
	Status               string // active, trial, suspended
	SubscriptionStatus   string
	QuotaMinutes         int64
	PriceMinor           int64
	PeriodStart          time.Time
	PeriodEnd            time.Time
	Users                int // active users
	CreatedAt            time.Time
	Role                 string // a Role* constant for scenario orgs, else empty
}

// ScenarioOrg names a scenario organization and what happens to it.
type ScenarioOrg struct {
	Role, ResellerID, OrgID, Name, Description string
}

// Window is a time range [Start, End).
type Window struct {
	Start, End time.Time
}

// Orgs returns the scenario organizations in a fixed order.
func (s Scenario) Orgs() []ScenarioOrg {
	return []ScenarioOrg{s.Spike, s.Quota, s.Quiet, s.PaymentFailure, s.Signup}
}

// Org finds an organization by reseller and org id.
func (s Scenario) Org(resellerID, orgID string) (Org, bool) {
	for _, r := range s.Resellers {
		if r.ID != resellerID {
			continue
		}
		for _, o := range r.Orgs {
			if o.ID == orgID {
				return o, true
			}
		}
	}
	return Org{}, false
}

// String is a human summary for logs and `tally dev`.
func (s Scenario) String() string {
	var b strings.Builder
	orgs := 0
	for _, r := range s.Resellers {
		orgs += len(r.Orgs)
	}
	fmt.Fprintf(&b, "demo world (seed %d): %d resellers, %d organizations; history from %s, live from %s, catches up with the clock in about %s\n",
		s.Seed, len(s.Resellers), orgs, s.HistoryStart.Format(time.RFC3339), s.LiveStart.Format(time.RFC3339), s.CatchUpTakes.Round(time.Second))
	for _, r := range s.Resellers {
		fmt.Fprintf(&b, "  reseller %s (%s): %d organizations\n", r.ID, r.Name, len(r.Orgs))
	}
	for _, so := range s.Orgs() {
		fmt.Fprintf(&b, "  %-15s %s/%s %q: %s\n", so.Role, so.ResellerID, so.OrgID, so.Name, so.Description)
	}
	return b.String()
}

// Scenario describes the world New planned. It is empty for an invalid
// configuration.
func (g *Generator) Scenario() Scenario {
	if g.err != nil {
		return Scenario{Seed: g.cfg.Seed}
	}
	s := Scenario{
		Seed:         g.cfg.Seed,
		Start:        g.start,
		HistoryStart: g.historyStart,
		LiveStart:    g.liveStart,
	}
	if g.cfg.Speed > 1 {
		s.CatchUpTakes = time.Duration(float64(g.start.Sub(g.liveStart)) / (g.cfg.Speed - 1))
	}
	for _, r := range g.resellers {
		sr := Reseller{ID: r.id, Name: r.name}
		for _, o := range g.orgs {
			if o.res != r {
				continue
			}
			so := Org{
				ResellerID: r.id, ID: o.id, Name: o.name, Sector: o.sec.name, TimeZone: o.zone,
				Currency: o.currency, CreatedAt: o.createdAt, Role: o.role,
			}
			if st := o.stateAt(g.start); st != nil {
				so.Plan, so.Status, so.SubscriptionStatus = st.plan, st.orgStatus, st.subStatus
				so.QuotaMinutes, so.PriceMinor = planQuota(st.plan), o.price(st.plan)
				so.PeriodStart, so.PeriodEnd = o.period(st.plan, g.start)
			}
			for _, u := range o.users {
				if u.activeAt(g.start) {
					so.Users++
				}
			}
			sr.Orgs = append(sr.Orgs, so)
		}
		s.Resellers = append(s.Resellers, sr)
	}
	ref := func(o *org) ScenarioOrg {
		if o == nil {
			return ScenarioOrg{}
		}
		return ScenarioOrg{Role: o.role, ResellerID: o.res.id, OrgID: o.id, Name: o.name, Description: g.descriptions[o]}
	}
	s.Spike, s.Quiet, s.Quota = ref(g.spikeOrg), ref(g.quietOrg), ref(g.quotaOrg)
	s.PaymentFailure, s.Signup = ref(g.paymentOrg), ref(g.signupOrg)
	first := g.spikeAnchor.Add(-time.Duration((g.spikeAnchor.Sub(g.historyStart)/spikeEvery)+1) * spikeEvery)
	for w := first; w.Before(g.start.Add(7 * 24 * time.Hour)); w = w.Add(spikeEvery) {
		if w.Add(spikeLength).After(g.historyStart) {
			s.SpikeWindows = append(s.SpikeWindows, Window{Start: w, End: w.Add(spikeLength)})
		}
	}
	return s
}
