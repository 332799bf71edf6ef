package demo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // organizations live in IANA time zones; images may lack zoneinfo
)

// Scenario roles.
const (
	RoleSpike          = "spike"
	RoleQuiet          = "quiet"
	RoleQuota          = "quota"
	RolePaymentFailure = "payment_failure"
	RoleSignup         = "signup"
)

// Scenario tuning.
const (
	spikeEvery    = 100 * time.Hour // not a divisor of a week: a spike never lands in the same hour of the week as one a few weeks before, which would hide it in its own baseline
	spikeLength   = 3 * time.Hour
	spikeExtra    = 8.0  // added volume, in multiples of the org's mean office-hour volume
	quotaTarget   = 0.74 // expected share of quota used in history before live starts
	quotaHistCap  = 0.76 // history stops adding usage at this share
	quotaBurstEnd = 1.12 // the live archive import stops at this share
	quotaBurstGap = 45 * time.Second
	quietSince    = 9 * 24 * time.Hour
)

type reseller struct {
	idx          int
	id, name     string
	zones        []string
	sharedModels []*customModel
}

type customModel struct {
	id, name, base, lang string
	shared               bool
	orgID                string // empty for a reseller-wide model
	createdAt            time.Time
}

type user struct {
	id, role       string
	added, removed time.Time // removed zero: never
	weight         float64
}

func (u *user) activeAt(t time.Time) bool {
	return !t.Before(u.added) && (u.removed.IsZero() || t.Before(u.removed))
}

type stateKind int

const (
	stCreated stateKind = iota
	stConverted
	stTrialExpired
	stUpgraded
	stSuspended
	stPastDue
	stSubExpired
)

// orgState is an organization's plan and status from at on.
type orgState struct {
	at                         time.Time
	kind                       stateKind
	plan, orgStatus, subStatus string
}

type org struct {
	idx                  int
	res                  *reseller
	id, name, role, kind string
	sec                  *sector
	zone                 string
	loc                  *time.Location
	currency             string
	createdAt            time.Time
	states               []orgState
	anchor               time.Time // zero: calendar-month periods; else periods start at anchor ± whole months
	util                 float64
	enterprisePrice      int64
	langs                []choice[string]
	users                []*user
	models               []*customModel
	rng                  *rand.Rand

	quietFrom time.Time

	// quota scenario
	quotaPeriodStart time.Time // the period containing LiveStart
	quotaDaily       float64   // weekday jobs/day in that period before live
	quotaUsed        float64   // minutes completed in quotaUsedPeriod
	quotaUsedPeriod  time.Time
	burstDone        bool
}

type plannedItem struct {
	at time.Time
	do func(at time.Time)
}

type world struct {
	resellers []*reseller
	orgs      []*org
	planned   []plannedItem

	spikeOrg, quietOrg, quotaOrg, paymentOrg, signupOrg *org
	spikeAnchor                                         time.Time
	paymentRetryAt                                      time.Time
	paymentInvoice                                      string
	descriptions                                        map[*org]string
}

func (o *org) stateAt(t time.Time) *orgState {
	var st *orgState
	for i := range o.states {
		if o.states[i].at.After(t) {
			break
		}
		st = &o.states[i]
	}
	return st
}

func (o *org) addState(at time.Time, kind stateKind, plan, orgStatus, subStatus string) {
	o.states = append(o.states, orgState{at: at, kind: kind, plan: plan, orgStatus: orgStatus, subStatus: subStatus})
}

func (o *org) price(plan string) int64 {
	if plan == planEnterprise && o.enterprisePrice > 0 {
		return o.enterprisePrice
	}
	return listPrice(plan, o.currency)
}

// period returns the subscription period containing t for plan.
func (o *org) period(plan string, t time.Time) (time.Time, time.Time) {
	if plan == planTrial {
		return o.createdAt, o.createdAt.Add(trialLength)
	}
	if o.anchor.IsZero() {
		start := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 1, 0)
	}
	k := int(t.Sub(o.anchor)/(31*24*time.Hour)) - 1
	for o.anchor.AddDate(0, k+1, 0).After(t) {
		k--
	}
	for !o.anchor.AddDate(0, k+1, 0).After(t) {
		k++
	}
	return o.anchor.AddDate(0, k, 0), o.anchor.AddDate(0, k+1, 0)
}

// meanMediaMinutes is the mean of the org's log-normal media length.
func (o *org) meanMediaMinutes() float64 {
	return o.sec.medianMin * math.Exp(o.sec.sigma*o.sec.sigma/2)
}

// weekdayDaysPerMonth: a month's volume in weekday-equivalents.
func (o *org) weekdayDaysPerMonth() float64 {
	return 30.0 / 7 * (5 + 2*o.sec.weekend)
}

// dailyJobs is the org's expected jobs on a weekday on plan.
func (o *org) dailyJobs(plan string) float64 {
	if plan == planTrial {
		// a trial uses about 70% of its minutes over its 14 days
		return 0.7 * float64(planQuota(planTrial)) / o.meanMediaMinutes() / (2 * o.weekdayDaysPerMonth() * 7 / 30)
	}
	return o.util * float64(planQuota(plan)) / o.meanMediaMinutes() / o.weekdayDaysPerMonth()
}

// hourShare is the share of a weekday's volume in the local hour of t,
// scaled down on weekends.
func (o *org) hourShare(t time.Time) float64 {
	local := t.In(o.loc)
	share := hourWeight[local.Hour()] / hourWeightSum
	if wd := local.Weekday(); wd == time.Saturday || wd == time.Sunday {
		share *= o.sec.weekend
	}
	return share
}

func mustLoc(zone string) *time.Location {
	loc, err := time.LoadLocation(zone)
	if err != nil {
		panic(fmt.Sprintf("demo: time zone %q: %v", zone, err)) // embedded tzdata has every zone in the catalog
	}
	return loc
}

func slug(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
	}
	s := strings.TrimSuffix(b.String(), "-")
	if len(s) > 48 {
		s = strings.TrimSuffix(s[:48], "-")
	}
	return s
}

// plan builds the world: resellers, organizations with their plan history,
// users and custom models, the scenario organizations and every scripted
// (non-random-arrival) event as a planned item.
func (g *Generator) plan() {
	wr := rand.New(rand.NewPCG(uint64(g.cfg.Seed), 0x776f726c64))
	g.descriptions = map[*org]string{}
	S := g.start
	days := func(lo, hi float64) time.Duration {
		return time.Duration((lo + wr.Float64()*(hi-lo)) * float64(24*time.Hour))
	}

	names := slices.Clone(orgNamePool)
	wr.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	nextName := 0
	takeName := func() orgName {
		n := names[nextName%len(names)]
		if round := nextName / len(names); round > 0 {
			n.name = fmt.Sprintf("%s %d", n.name, round+1)
		}
		nextName++
		return n
	}
	usedIDs := map[string]bool{}

	R := g.cfg.Resellers
	for ri := range R {
		spec := resellerCatalog[ri]
		r := &reseller{idx: ri, id: spec.id, name: spec.name, zones: spec.zones}
		g.resellers = append(g.resellers, r)

		var kinds []string
		if ri == 0 {
			kinds = append(kinds, RoleSpike, RoleQuota)
		}
		if ri == 1%R {
			kinds = append(kinds, RolePaymentFailure)
		}
		if ri == 2%R {
			kinds = append(kinds, RoleQuiet)
		}
		if ri == 0 {
			kinds = append(kinds, RoleSignup)
		}
		kinds = append(kinds, "trial", "suspended", "upgrade", "converted")
		for len(kinds) < g.cfg.OrgsPerReseller {
			kinds = append(kinds, "regular")
		}
		kinds = kinds[:g.cfg.OrgsPerReseller]

		for _, kind := range kinds {
			var name orgName
			switch kind {
			case RoleSpike:
				name = spikeOrgName
			case RoleQuota:
				name = quotaOrgName
			case RolePaymentFailure:
				name = paymentOrgName
			case RoleQuiet:
				name = quietOrgName
			case RoleSignup:
				name = signupOrgName
			default:
				name = takeName()
				for name == spikeOrgName || name == quotaOrgName || name == paymentOrgName || name == quietOrgName || name == signupOrgName {
					name = takeName()
				}
			}
			o := &org{
				idx: len(g.orgs), res: r, name: name.name, sec: name.sec, kind: kind,
				zone: spec.zones[wr.IntN(len(spec.zones))],
				rng:  rand.New(rand.NewPCG(uint64(g.cfg.Seed)^0x9e3779b97f4a7c15, uint64(len(g.orgs))+1)),
				util: 0.3 + 0.55*wr.Float64(),
			}
			switch kind {
			case RoleSpike, RoleQuota, RolePaymentFailure, RoleQuiet, RoleSignup:
				o.role = kind
			}
			id := slug(o.name)
			for n := 2; usedIDs[id]; n++ {
				id = fmt.Sprintf("%s-%d", slug(o.name), n)
			}
			usedIDs[id] = true
			o.id = id
			o.loc = mustLoc(o.zone)
			o.currency = zoneCurrency(o.zone)
			o.langs = zoneLanguages(o.zone)
			g.orgs = append(g.orgs, o)
			g.planOrg(o, wr, days)
		}
	}

	// A payment that failed and was paid a day later, on a paid org of the
	// second reseller.
	for _, o := range g.orgs {
		if o.res.idx != 1%R || (o.kind != "regular" && o.kind != "upgrade") {
			continue
		}
		at := g.businessTime(o, S.Add(-days(3, 9)), wr)
		st := o.stateAt(at)
		if st == nil || st.plan == planTrial {
			continue
		}
		inv := g.newInvoiceID()
		amount := o.price(st.plan)
		reason := paymentFailureReasons[2]
		g.planAt(at, func(at time.Time) { g.emitInvoice(o, at, inv, amount, reason) })
		g.planAt(at.Add(26*time.Hour), func(at time.Time) { g.emitInvoice(o, at, inv, amount, "") })
		break
	}

	for _, o := range g.orgs {
		g.planUsers(o, wr, days)
	}
	for _, r := range g.resellers {
		g.planSharedModels(r, wr, days)
	}
	for _, o := range g.orgs {
		g.planPrivateModels(o, wr)
	}
	g.planNotices(wr, days)

	// Every org state becomes events at its time.
	for _, o := range g.orgs {
		for i := range o.states {
			g.planAt(o.states[i].at, func(at time.Time) { g.emitState(o, i) })
		}
	}
	slices.SortStableFunc(g.planned, func(a, b plannedItem) int { return a.at.Compare(b.at) })
}

func (g *Generator) planAt(at time.Time, do func(at time.Time)) {
	g.planned = append(g.planned, plannedItem{at: at.UTC().Truncate(time.Millisecond), do: do})
}

// businessTime moves t to a random moment of the same local day between
// 09:00 and 17:00 in the org's time zone.
func (g *Generator) businessTime(o *org, t time.Time, wr *rand.Rand) time.Time {
	l := t.In(o.loc)
	d := time.Date(l.Year(), l.Month(), l.Day(), 9, 0, 0, 0, o.loc)
	return d.Add(time.Duration(wr.Float64() * float64(8*time.Hour))).UTC().Truncate(time.Second)
}

func (g *Generator) planOrg(o *org, wr *rand.Rand, days func(lo, hi float64) time.Duration) {
	S := g.start
	created := func(lo, hi float64) time.Time { return g.businessTime(o, S.Add(-days(lo, hi)), wr) }
	randomPlan := func() string {
		switch x := wr.Float64(); {
		case x < 0.2:
			return planEnterprise
		case x < 0.65:
			return planPro
		default:
			return planStarter
		}
	}
	switch o.kind {
	case RoleSpike:
		o.createdAt = created(200, 500)
		o.util = 0.35
		o.addState(o.createdAt, stCreated, planEnterprise, "active", "active")
		g.spikeOrg = o
		g.spikeAnchor = S.Add(-min(2*time.Hour, g.cfg.CatchUp)).Truncate(stepLen)
		g.descriptions[o] = fmt.Sprintf("usage spikes to about %.0fx its normal hourly volume for %s every %s; one spike runs from %s (live time) to %s",
			spikeExtra+1, spikeLength, spikeEvery, g.spikeAnchor.Format(time.RFC3339), g.spikeAnchor.Add(spikeLength).Format(time.RFC3339))
	case RoleQuota:
		o.createdAt = created(150, 400)
		o.util = 0.6
		o.anchor = g.liveStart.Truncate(24 * time.Hour).Add(-23 * 24 * time.Hour)
		o.addState(o.createdAt, stCreated, planPro, "active", "active")
		g.quotaOrg = o
		ps, pe := o.period(planPro, g.liveStart)
		o.quotaPeriodStart = ps
		g.planQuota(o, ps)
		g.descriptions[o] = fmt.Sprintf("pro plan (%d min), period %s to %s; about %.0f%% used when live starts, then an archive import crosses 80%%, 90%% and 100%% of quota within 1-3 simulated hours",
			planQuota(planPro), ps.Format(time.DateOnly), pe.Format(time.DateOnly), quotaTarget*100)
	case RolePaymentFailure:
		o.createdAt = created(300, 700)
		o.util = 0.5
		periodEnd := S.Truncate(24 * time.Hour).Add(4 * 24 * time.Hour)
		o.anchor = periodEnd.AddDate(0, -1, 0)
		o.addState(o.createdAt, stCreated, planEnterprise, "active", "active")
		failAt := g.businessTime(o, S.Add(-2*24*time.Hour), wr)
		o.addState(failAt, stPastDue, planEnterprise, "active", "past_due")
		o.addState(periodEnd, stSubExpired, planEnterprise, "suspended", "expired")
		g.paymentOrg = o
		g.paymentInvoice = g.newInvoiceID()
		g.paymentRetryAt = g.liveStart.Add(min(40*time.Minute, g.cfg.CatchUp/2))
		g.planAt(g.paymentRetryAt, func(at time.Time) {
			g.emitInvoice(o, at, g.paymentInvoice, o.price(planEnterprise), paymentFailureReasons[1])
		})
		g.descriptions[o] = fmt.Sprintf("renewal payment failed at %s and the retry fails at %s (live time); subscription past_due, period ends %s and then expires",
			failAt.Format(time.RFC3339), g.paymentRetryAt.Format(time.RFC3339), periodEnd.Format(time.RFC3339))
	case RoleQuiet:
		o.createdAt = created(100, 300)
		o.util = 0.9
		o.quietFrom = S.Add(-quietSince).Truncate(stepLen)
		o.addState(o.createdAt, stCreated, planPro, "active", "active")
		g.quietOrg = o
		one := g.businessTime(o, S.Add(-4*24*time.Hour), wr)
		g.planAt(one, func(at time.Time) { g.job(o, at, false) })
		g.descriptions[o] = fmt.Sprintf("pro plan, paid, but almost no jobs since %s (low usage)", o.quietFrom.Format(time.RFC3339))
	case RoleSignup:
		o.createdAt = g.liveStart.Add(g.cfg.CatchUp / 4).Truncate(time.Second)
		o.addState(o.createdAt, stCreated, planTrial, "trial", "trialing")
		g.planTrialEnd(o, wr)
		g.signupOrg = o
		g.descriptions[o] = fmt.Sprintf("new trial organization that signs up at %s (live time)", o.createdAt.Format(time.RFC3339))
	case "trial":
		o.createdAt = created(1, 12)
		o.addState(o.createdAt, stCreated, planTrial, "trial", "trialing")
		g.planTrialEnd(o, wr)
	case "converted":
		o.createdAt = created(16, 24)
		o.addState(o.createdAt, stCreated, planTrial, "trial", "trialing")
		plan := planStarter
		if wr.Float64() < 0.3 {
			plan = planPro
		}
		o.addState(o.createdAt.Add(trialLength), stConverted, plan, "active", "active")
	case "suspended":
		o.createdAt = created(60, 400)
		o.addState(o.createdAt, stCreated, planStarter, "active", "active")
		at := g.businessTime(o, S.Add(-days(2, 9)), wr)
		inv := g.newInvoiceID()
		amount := o.price(planStarter)
		reason := paymentFailureReasons[0]
		g.planAt(at.Add(-3*24*time.Hour), func(at time.Time) { g.emitInvoice(o, at, inv, amount, reason) })
		o.addState(at, stSuspended, planStarter, "suspended", "canceled")
	case "upgrade":
		o.createdAt = created(40, 400)
		o.addState(o.createdAt, stCreated, planStarter, "active", "active")
		o.addState(g.businessTime(o, S.Add(-days(1, 9)), wr), stUpgraded, planPro, "active", "active")
	default:
		o.createdAt = created(30, 700)
		plan := randomPlan()
		if plan == planEnterprise {
			o.util = 0.35 + 0.4*wr.Float64()
		}
		o.addState(o.createdAt, stCreated, plan, "active", "active")
	}
	base := listPrice(planEnterprise, o.currency)
	o.enterprisePrice = int64(math.Round(float64(base)*(0.85+0.3*wr.Float64())/1000)) * 1000
}

func (g *Generator) planTrialEnd(o *org, wr *rand.Rand) {
	end := o.createdAt.Add(trialLength)
	if wr.Float64() < 0.5 {
		o.addState(end, stConverted, planStarter, "active", "active")
	} else {
		o.addState(end, stTrialExpired, planTrial, "suspended", "expired")
	}
}

// planQuota sizes the quota org's history so that about quotaTarget of its
// quota is used in the current period when live traffic starts.
func (g *Generator) planQuota(o *org, periodStart time.Time) {
	from := periodStart
	if from.Before(g.historyStart) {
		from = g.historyStart
	}
	var weekdays float64 // expected jobs at one job per weekday
	for t := from; t.Before(g.liveStart); t = t.Add(stepLen) {
		weekdays += o.hourShare(t) * stepLen.Hours()
	}
	if weekdays <= 0 {
		return
	}
	o.quotaDaily = quotaTarget * float64(planQuota(planPro)) / o.meanMediaMinutes() / weekdays
}

func (g *Generator) planUsers(o *org, wr *rand.Rand, days func(lo, hi float64) time.Duration) {
	S := g.start
	plan := planTrial
	if st := o.stateAt(S); st != nil {
		plan = st.plan
	}
	lo, hi := 2, 4
	switch plan {
	case planStarter:
		lo, hi = 2, 8
	case planPro:
		lo, hi = 5, 20
	case planEnterprise:
		lo, hi = 15, 40
	}
	n := lo + wr.IntN(hi-lo+1)
	end := S
	if o.createdAt.After(S.Add(-time.Hour)) {
		end = o.createdAt.Add(2 * 24 * time.Hour)
	}
	span := end.Sub(o.createdAt)
	for i := range n {
		u := &user{id: "usr_" + randBase36(wr, 10), role: "member", weight: math.Exp(wr.NormFloat64())}
		switch {
		case i == 0:
			u.role = "admin"
			u.added = o.createdAt.Add(time.Duration(1+wr.IntN(9)) * time.Minute)
		case i == 1:
			// a second user on day one, so every org has at least two
			u.added = o.createdAt.Add(10*time.Minute + time.Duration(wr.Float64()*float64(min(24*time.Hour, span-10*time.Minute))))
		case wr.Float64() < 0.6:
			u.added = o.createdAt.Add(time.Duration(wr.Float64() * float64(min(7*24*time.Hour, span))))
		default:
			u.added = o.createdAt.Add(time.Duration(wr.Float64() * float64(span)))
		}
		if i > 0 {
			switch x := wr.Float64(); {
			case x < 0.05:
				u.role = "admin"
			case x < 0.3:
				u.role = "editor"
			case x < 0.4:
				u.role = "viewer"
			}
			if i > 1 && wr.Float64() < 0.06 {
				from := maxTime(u.added.Add(time.Hour), S.Add(-30*24*time.Hour))
				if from.Before(S) {
					u.removed = from.Add(time.Duration(wr.Float64() * float64(S.Sub(from))))
				}
			}
		}
		o.users = append(o.users, u)
	}
	// a few more join after the start while the demo runs
	for range wr.IntN(3) {
		if len(o.users) >= 40 {
			break
		}
		o.users = append(o.users, &user{id: "usr_" + randBase36(wr, 10), role: "member",
			added: S.Add(days(0.05, 30)), weight: math.Exp(wr.NormFloat64())})
	}
	for _, u := range o.users {
		u.added = u.added.UTC().Truncate(time.Second)
		u.removed = u.removed.UTC().Truncate(time.Second)
		g.planAt(u.added, func(at time.Time) { g.emitUser(o, at, u, true) })
		if !u.removed.IsZero() {
			g.planAt(u.removed, func(at time.Time) { g.emitUser(o, at, u, false) })
		}
	}
}

func (g *Generator) planSharedModels(r *reseller, wr *rand.Rand, days func(lo, hi float64) time.Duration) {
	S := g.start
	lang := zoneLanguages(r.zones[0])[0].v
	kinds := []string{"Newsroom", "Meetings", "Medical Dictation", "Court Hearings"}
	n := 1 + r.idx%2
	for i := range n {
		kind := kinds[(r.idx+i)%len(kinds)]
		m := &customModel{
			id:        fmt.Sprintf("cm-%s-%s-%s", r.id, slug(kind), lang),
			name:      fmt.Sprintf("%s %s (%s)", r.name, kind, lang),
			base:      baseModels[i%2].id,
			lang:      lang,
			shared:    true,
			createdAt: S.Add(-days(30, 200)).Truncate(time.Second),
		}
		r.sharedModels = append(r.sharedModels, m)
		g.planAt(m.createdAt, func(at time.Time) { g.emitModel(r, "", at, m, false) })
		var upd time.Time
		switch {
		case r.idx == 0 && i == 0:
			upd = S.Add(-days(1, 5))
		case wr.Float64() < 0.4:
			upd = m.createdAt.Add(time.Duration(wr.Float64() * float64(S.Sub(m.createdAt))))
		}
		if !upd.IsZero() {
			g.planAt(upd, func(at time.Time) { g.emitModel(r, "", at, m, true) })
		}
	}
}

func (g *Generator) planPrivateModels(o *org, wr *rand.Rand) {
	S := g.start
	st := o.stateAt(S)
	if st == nil || (st.plan != planPro && st.plan != planEnterprise) {
		return
	}
	if o.role != RoleSpike && o.role != RolePaymentFailure && wr.Float64() >= 0.4 {
		return
	}
	lang := o.langs[0].v
	from := o.createdAt.Add(7 * 24 * time.Hour)
	if from.After(S.Add(-24 * time.Hour)) {
		from = S.Add(-48 * time.Hour)
	}
	m := &customModel{
		id:        fmt.Sprintf("cm-%s-%s", o.id, lang),
		name:      fmt.Sprintf("%s %s (%s)", o.name, o.sec.name, lang),
		base:      baseModels[wr.IntN(2)].id,
		lang:      lang,
		shared:    wr.Float64() < 0.3,
		orgID:     o.id,
		createdAt: from.Add(time.Duration(wr.Float64() * float64(S.Add(-24*time.Hour).Sub(from)))).Truncate(time.Second),
	}
	o.models = append(o.models, m)
	g.planAt(m.createdAt, func(at time.Time) { g.emitModel(o.res, o.id, at, m, false) })
	if wr.Float64() < 0.35 {
		upd := m.createdAt.Add(time.Duration(wr.Float64() * float64(S.Sub(m.createdAt))))
		g.planAt(upd, func(at time.Time) { g.emitModel(o.res, o.id, at, m, true) })
	}
}

func (g *Generator) planNotices(wr *rand.Rand, days func(lo, hi float64) time.Duration) {
	S := g.start
	// an incident and its resolution in history
	incident := S.Add(-days(2, 6)).Truncate(time.Hour).Add(9 * time.Hour)
	for incident.After(S.Add(-time.Hour)) {
		incident = incident.Add(-24 * time.Hour)
	}
	g.planAt(incident, func(at time.Time) { g.emitNotice(at, "", noticeTemplates[2]) })
	g.planAt(incident.Add(2*time.Hour+17*time.Minute), func(at time.Time) { g.emitNotice(at, "", noticeTemplates[3]) })
	// an announcement while live traffic catches up
	g.planAt(g.liveStart.Add(min(15*time.Minute, g.cfg.CatchUp/3)), func(at time.Time) { g.emitNotice(at, "", noticeTemplates[1]) })
}
