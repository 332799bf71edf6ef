package demo

import (
	"container/heap"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/tallyhq/tally/schemas"
)

// stepLen is the simulation step. Steps are aligned to UTC quarter hours,
// so a step lies inside one local hour in every IANA zone (offsets are
// multiples of 15 minutes) and job rates are constant within it.
const stepLen = 15 * time.Minute

// Fault injection.
const (
	lateShare = 0.01 // of job events, emitted 1 h to 3 days after their time
	dupShare  = 0.01 // of events, emitted again with the same id
)

type pending struct {
	at  int64 // emission time, unix ns
	seq uint64
	ev  *schemas.Event
}

type queue []pending

func (q queue) Len() int { return len(q) }
func (q queue) Less(i, j int) bool {
	return q[i].at < q[j].at || q[i].at == q[j].at && q[i].seq < q[j].seq
}
func (q queue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *queue) Push(x any)   { *q = append(*q, x.(pending)) }
func (q *queue) Pop() any {
	old := *q
	p := old[len(old)-1]
	*q = old[:len(old)-1]
	return p
}

// sim is the generator's running state. Invariant: after step() has
// generated [a, b), every event due for emission before b is queued,
// because all later steps only produce events at or after their own start.
type sim struct {
	queue       queue
	seq         uint64
	horizon     time.Time // everything before it has been generated
	nextPlanned int
	idRng       *rand.Rand
	noise       *rand.Rand
	noticeRng   *rand.Rand
	setupMode   bool
	setupEvents []*schemas.Event
	emitted     int
}

func (g *Generator) initSim() {
	g.idRng = rand.New(rand.NewPCG(uint64(g.cfg.Seed), uint64(g.start.UnixMilli())))
	g.noise = rand.New(rand.NewPCG(uint64(g.cfg.Seed), 0x6e6f697365))
	g.noticeRng = rand.New(rand.NewPCG(uint64(g.cfg.Seed), 0x6e6f74696365))
	g.horizon = g.historyStart
}

// setup queues everything before the history window: planned events and
// the renewal of the period that contains HistoryStart, in time order, all
// due at HistoryStart.
func (g *Generator) setup() {
	g.setupMode = true
	for g.nextPlanned < len(g.planned) && g.planned[g.nextPlanned].at.Before(g.historyStart) {
		p := g.planned[g.nextPlanned]
		p.do(p.at)
		g.nextPlanned++
	}
	for _, o := range g.orgs {
		st := o.stateAt(g.historyStart)
		if st == nil || st.plan == planTrial || st.subStatus != "active" {
			continue
		}
		if ps, _ := o.period(st.plan, g.historyStart); ps.After(st.at) {
			g.emitRenewal(o, ps, st)
		}
	}
	g.setupMode = false
	slices.SortStableFunc(g.setupEvents, func(a, b *schemas.Event) int { return a.Time.Compare(b.Time) })
	for _, ev := range g.setupEvents {
		g.push(maxTime(g.historyStart, ev.Time), ev)
	}
	g.setupEvents = nil
}

// step generates the next simulation step.
func (g *Generator) step() {
	a := g.horizon
	b := a.Truncate(stepLen).Add(stepLen)
	for g.nextPlanned < len(g.planned) && g.planned[g.nextPlanned].at.Before(b) {
		p := g.planned[g.nextPlanned]
		p.do(p.at)
		g.nextPlanned++
	}
	for _, o := range g.orgs {
		g.renewals(o, a, b)
		g.jobs(o, a, b)
	}
	g.notices(a, b)
	g.horizon = b
}

func (g *Generator) push(at time.Time, ev *schemas.Event) {
	g.seq++
	heap.Push(&g.queue, pending{at: at.UnixNano(), seq: g.seq, ev: ev})
}

// popDue removes up to n queued events due before limit (or at it).
func (g *Generator) popDue(limit time.Time, inclusive bool, n int) []*schemas.Event {
	lim := limit.UnixNano()
	var out []*schemas.Event
	for len(out) < n && len(g.queue) > 0 {
		top := g.queue[0]
		if top.at > lim || top.at == lim && !inclusive {
			break
		}
		heap.Pop(&g.queue)
		out = append(out, top.ev)
	}
	return out
}

// out queues a generated event, injecting late delivery (job events only)
// and duplicates.
func (g *Generator) out(ev *schemas.Event, job bool) {
	if g.setupMode {
		g.setupEvents = append(g.setupEvents, ev)
		return
	}
	at := ev.Time
	if job && g.noise.Float64() < lateShare {
		at = at.Add(logUniform(g.noise, time.Hour, 72*time.Hour))
	}
	g.push(at, ev)
	if g.noise.Float64() < dupShare {
		d := logUniform(g.noise, time.Second, 2*time.Minute)
		if g.noise.Float64() < 0.5 {
			d = logUniform(g.noise, 2*time.Minute, 2*time.Hour)
		}
		dup := *ev
		dup.Data = slices.Clone(ev.Data)
		g.push(at.Add(d), &dup)
	}
}

func (g *Generator) newEvent(typ string, at time.Time, resellerID, orgID, subject string, data any) *schemas.Event {
	raw, err := json.Marshal(data)
	if err != nil {
		// Only the schemas data structs with in-range times get here.
		panic(fmt.Sprintf("demo: marshal %s data: %v", typ, err))
	}
	return &schemas.Event{
		SpecVersion:     schemas.SpecVersion,
		ID:              g.newUUID(),
		Type:            typ,
		Source:          Source,
		Time:            utc(at),
		ResellerID:      resellerID,
		OrgID:           orgID,
		Subject:         subject,
		DataContentType: "application/json",
		Data:            raw,
	}
}

// ---- organizations, subscriptions, billing ----

func (g *Generator) orgData(o *org, st *orgState) schemas.OrganizationData {
	return schemas.OrganizationData{Name: o.name, Plan: st.plan, Status: st.orgStatus, CreatedAt: utc(o.createdAt)}
}

func (g *Generator) emitSubscription(o *org, at time.Time, plan, status string, ps, pe time.Time) {
	g.out(g.newEvent(schemas.TypeSubscriptionChanged, at, o.res.id, o.id, o.id, schemas.SubscriptionData{
		Plan: plan, Status: status, QuotaMinutes: planQuota(plan), PriceMinor: o.price(plan),
		Currency: o.currency, PeriodStart: utc(ps), PeriodEnd: utc(pe),
	}), false)
}

func (g *Generator) emitInvoice(o *org, at time.Time, id string, amount int64, failure string) {
	typ := schemas.TypeInvoicePaid
	if failure != "" {
		typ = schemas.TypeInvoicePaymentFailed
	}
	g.out(g.newEvent(typ, at, o.res.id, o.id, id, schemas.InvoiceData{
		InvoiceID: id, AmountMinor: amount, Currency: o.currency, FailureReason: failure,
	}), false)
}

// emitState turns o.states[i] into its events.
func (g *Generator) emitState(o *org, i int) {
	st := &o.states[i]
	at := st.at
	ps, pe := o.period(st.plan, at)
	orgType := schemas.TypeOrganizationUpdated
	switch st.kind {
	case stCreated:
		orgType = schemas.TypeOrganizationCreated
		fallthrough
	case stConverted, stUpgraded:
		g.out(g.newEvent(orgType, at, o.res.id, o.id, o.id, g.orgData(o, st)), false)
		g.emitSubscription(o, at.Add(time.Second), st.plan, st.subStatus, ps, pe)
		amount := o.price(st.plan)
		if st.kind == stUpgraded && i > 0 {
			// prorated difference for the rest of the period
			left := float64(pe.Sub(at)) / float64(pe.Sub(ps))
			amount = int64(math.Round(float64(amount-o.price(o.states[i-1].plan)) * left))
		}
		if amount > 0 {
			g.emitInvoice(o, at.Add(time.Duration(60+o.rng.IntN(600))*time.Second), g.newInvoiceID(), amount, "")
		}
	case stTrialExpired, stSuspended:
		g.out(g.newEvent(orgType, at, o.res.id, o.id, o.id, g.orgData(o, st)), false)
		g.emitSubscription(o, at.Add(time.Second), st.plan, st.subStatus, ps, pe)
	case stPastDue:
		g.emitInvoice(o, at, g.paymentInvoice, o.price(st.plan), paymentFailureReasons[0])
		g.emitSubscription(o, at.Add(time.Minute), st.plan, st.subStatus, ps, pe)
	case stSubExpired:
		ps, pe = o.period(st.plan, at.Add(-time.Millisecond))
		g.emitSubscription(o, at, st.plan, st.subStatus, ps, pe)
		g.out(g.newEvent(orgType, at.Add(time.Second), o.res.id, o.id, o.id, g.orgData(o, st)), false)
	}
}

// renewals emits the start of a new billing period that falls in [a, b).
func (g *Generator) renewals(o *org, a, b time.Time) {
	st := o.stateAt(a)
	if st == nil || st.plan == planTrial {
		return
	}
	ps, pe := o.period(st.plan, a)
	boundary := ps
	if boundary.Before(a) {
		boundary = pe
	}
	if !boundary.Before(b) {
		return
	}
	st = o.stateAt(boundary)
	if st.plan == planTrial || st.subStatus != "active" || st.at.Equal(boundary) {
		return
	}
	g.emitRenewal(o, boundary, st)
}

func (g *Generator) emitRenewal(o *org, boundary time.Time, st *orgState) {
	ps, pe := o.period(st.plan, boundary)
	at := boundary.Add(time.Duration(o.rng.IntN(1200)) * time.Second)
	g.emitSubscription(o, at, st.plan, "active", ps, pe)
	g.emitInvoice(o, at.Add(time.Duration(60+o.rng.IntN(5400))*time.Second), g.newInvoiceID(), o.price(st.plan), "")
}

// ---- users, custom models, notices ----

func (g *Generator) emitUser(o *org, at time.Time, u *user, added bool) {
	typ := schemas.TypeUserAdded
	if !added {
		typ = schemas.TypeUserRemoved
	}
	g.out(g.newEvent(typ, at, o.res.id, o.id, u.id, schemas.UserData{UserID: u.id, Role: u.role}), false)
}

func (g *Generator) emitModel(r *reseller, orgID string, at time.Time, m *customModel, updated bool) {
	typ := schemas.TypeCustomModelCreated
	name := m.name
	if updated {
		typ = schemas.TypeCustomModelUpdated
		name += " v2"
	}
	g.out(g.newEvent(typ, at, r.id, orgID, m.id, schemas.CustomModelData{
		ModelID: m.id, Name: name, BaseModel: m.base, Language: m.lang, Shared: m.shared,
	}), false)
}

func (g *Generator) emitNotice(at time.Time, resellerID string, t noticeTemplate) {
	id := "ntc_" + randBase36(g.idRng, 12)
	g.out(g.newEvent(schemas.TypeSystemNotice, at, resellerID, "", id, schemas.SystemNoticeData{
		NoticeID: id, Title: t.title, Body: t.body, Severity: t.severity, Link: t.link,
	}), false)
}

// notices publishes a random announcement about every three days.
func (g *Generator) notices(a, b time.Time) {
	generic := []int{0, 4, 5, 6, 7}
	t := a
	for {
		t = t.Add(time.Duration(g.noticeRng.ExpFloat64() * float64(72*time.Hour)))
		if !t.Before(b) {
			return
		}
		tpl := noticeTemplates[generic[g.noticeRng.IntN(len(generic))]]
		resellerID := ""
		if g.noticeRng.Float64() < 0.3 {
			resellerID = g.resellers[g.noticeRng.IntN(len(g.resellers))].id
		}
		g.emitNotice(t, resellerID, tpl)
	}
}

// ---- jobs ----

// inSpike reports whether t is inside one of the spike org's windows.
func (g *Generator) inSpike(t time.Time) bool {
	m := t.Sub(g.spikeAnchor) % spikeEvery
	if m < 0 {
		m += spikeEvery
	}
	return m < spikeLength
}

// jobs generates the org's job arrivals in [a, b).
func (g *Generator) jobs(o *org, a, b time.Time) {
	st := o.stateAt(a)
	if st == nil || st.orgStatus == "suspended" {
		return
	}
	perHour := o.dailyJobs(st.plan) * o.hourShare(a)
	switch o.role {
	case RoleQuiet:
		if !a.Before(o.quietFrom) {
			return
		}
	case RoleSpike:
		if g.inSpike(a) {
			perHour += spikeExtra * o.dailyJobs(st.plan) * businessHourWeight / hourWeightSum
		}
	case RoleQuota:
		g.quotaJobs(o, st, a, b, perHour)
		return
	}
	g.arrivals(o, a, b, perHour, func(t time.Time) bool {
		g.job(o, t, false)
		return true
	})
}

// quotaJobs drives the quota org: its current period's history is sized
// to end near quotaTarget, then an archive import at live start pushes it
// past its quota.
func (g *Generator) quotaJobs(o *org, st *orgState, a, b time.Time, perHour float64) {
	ps, _ := o.period(st.plan, a)
	if !ps.Equal(o.quotaUsedPeriod) {
		o.quotaUsedPeriod, o.quotaUsed = ps, 0
	}
	quota := float64(planQuota(st.plan))
	switch {
	case a.Before(g.liveStart) && !a.Before(o.quotaPeriodStart) && o.quotaDaily > 0:
		g.arrivals(o, a, b, o.quotaDaily*o.hourShare(a), func(t time.Time) bool {
			if o.quotaUsed >= quotaHistCap*quota {
				return false
			}
			o.quotaUsed += g.job(o, t, false)
			return true
		})
	case !a.Before(g.liveStart) && !o.burstDone:
		g.arrivals(o, a, b, float64(time.Hour/quotaBurstGap), func(t time.Time) bool {
			o.quotaUsed += g.job(o, t, true)
			if o.quotaUsed >= quotaBurstEnd*quota {
				o.burstDone = true
				return false
			}
			return true
		})
	default:
		g.arrivals(o, a, b, perHour, func(t time.Time) bool {
			o.quotaUsed += g.job(o, t, false)
			return true
		})
	}
}

// arrivals draws Poisson arrivals at perHour in [a, b) and calls fn for
// each until fn returns false.
func (g *Generator) arrivals(o *org, a, b time.Time, perHour float64, fn func(time.Time) bool) {
	if perHour <= 0 {
		return
	}
	t := a
	for {
		t = t.Add(time.Duration(o.rng.ExpFloat64() / perHour * float64(time.Hour)))
		if !t.Before(b) || !fn(utc(t)) {
			return
		}
	}
}

func (o *org) pickUser(t time.Time) *user {
	var total float64
	for _, u := range o.users {
		if u.activeAt(t) {
			total += u.weight
		}
	}
	if total == 0 {
		return nil
	}
	x := o.rng.Float64() * total
	var last *user
	for _, u := range o.users {
		if !u.activeAt(t) {
			continue
		}
		last = u
		if x -= u.weight; x < 0 {
			return u
		}
	}
	return last
}

// pickModel chooses the model (and, for custom models, the language).
func (o *org) pickModel(t time.Time, lang string) (string, float64, string) {
	x := o.rng.Float64()
	var private []*customModel
	for _, m := range o.models {
		if !m.createdAt.After(t) {
			private = append(private, m)
		}
	}
	if len(private) > 0 && x < 0.3 {
		m := private[o.rng.IntN(len(private))]
		return m.id, customModelRTF, m.lang
	}
	var shared []*customModel
	for _, m := range o.res.sharedModels {
		if !m.createdAt.After(t) && m.lang == lang {
			shared = append(shared, m)
		}
	}
	if len(shared) > 0 && x >= 0.3 && x < 0.4 {
		m := shared[o.rng.IntN(len(shared))]
		return m.id, customModelRTF, m.lang
	}
	y := o.rng.Float64()
	for _, m := range baseModels {
		if y -= m.weight; y < 0 {
			return m.id, m.rtf, lang
		}
	}
	m := baseModels[len(baseModels)-1]
	return m.id, m.rtf, lang
}

// job emits one transcription job created at created and returns the
// minutes it adds to usage (0 if it fails).
func (g *Generator) job(o *org, created time.Time, archive bool) float64 {
	u := o.pickUser(created)
	if u == nil {
		return 0
	}
	r := o.rng
	model, rtf, lang := o.pickModel(created, pick(r, o.langs))

	median, sigma := o.sec.medianMin, o.sec.sigma
	if archive {
		median, sigma = 25, 0.5
	}
	dur := median * 60 * math.Exp(sigma*r.NormFloat64())
	dur = math.Round(math.Min(math.Max(dur, 5), 6*3600)*1000) / 1000

	queued := time.Duration(4 * math.Exp(0.9*r.NormFloat64()) * float64(time.Second))
	queued = min(max(queued, 300*time.Millisecond), 15*time.Minute)
	started := created.Add(queued)

	failure := ""
	if model == "nova-2" && lang == "ne" && r.Float64() < 0.5 {
		failure = "unsupported_language"
	} else if r.Float64() < 0.03 {
		failure = pick(r, failureCodes)
	}
	expected := time.Duration((2 + dur*rtf*math.Exp(0.3*r.NormFloat64())) * float64(time.Second))
	proc := expected
	switch failure {
	case "media_decode_error":
		proc = time.Duration(1+r.IntN(9)) * time.Second
	case "unsupported_language":
		proc = time.Duration(2+r.IntN(4)) * time.Second
	case "timeout":
		proc = max(20*time.Minute, expected*3/2)
	case "internal_error":
		proc = time.Duration((0.1+0.8*r.Float64())*float64(expected)) + 2*time.Second
	}
	proc = proc.Truncate(time.Millisecond)
	ended := started.Add(proc)

	data := schemas.JobData{
		JobID: "job_" + randBase36(g.idRng, 16), UserID: u.id, Model: model, Language: lang,
		CreatedAt: utc(created), MediaDurationSeconds: dur,
	}
	if failure == "media_decode_error" {
		data.MediaDurationSeconds = 0
	}
	g.out(g.newEvent(schemas.TypeJobCreated, created, o.res.id, o.id, data.JobID, data), true)
	g.out(g.newEvent(schemas.TypeJobStarted, started, o.res.id, o.id, data.JobID, data), true)
	data.ProcessingMS = proc.Milliseconds()
	if failure != "" {
		data.ErrorCode, data.ErrorMessage = failure, failureMessages[failure]
		g.out(g.newEvent(schemas.TypeJobFailed, ended, o.res.id, o.id, data.JobID, data), true)
		return 0
	}
	g.out(g.newEvent(schemas.TypeJobCompleted, ended, o.res.id, o.id, data.JobID, data), true)
	return dur / 60
}

// ---- small helpers ----

type choice[T any] struct {
	v T
	w float64
}

func pick[T any](r *rand.Rand, cs []choice[T]) T {
	var total float64
	for _, c := range cs {
		total += c.w
	}
	x := r.Float64() * total
	for _, c := range cs {
		if x -= c.w; x < 0 {
			return c.v
		}
	}
	return cs[len(cs)-1].v
}

func logUniform(r *rand.Rand, lo, hi time.Duration) time.Duration {
	l, h := math.Log(float64(lo)), math.Log(float64(hi))
	return time.Duration(math.Exp(l + r.Float64()*(h-l)))
}

const base36 = "0123456789abcdefghijklmnopqrstuvwxyz"

func randBase36(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = base36[r.IntN(len(base36))]
	}
	return string(b)
}

func (g *Generator) newUUID() string {
	hi, lo := g.idRng.Uint64(), g.idRng.Uint64()
	hi = hi&^0xf000 | 0x4000     // version 4
	lo = lo&^(0xc<<60) | 0x8<<60 // RFC 4122 variant
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", hi>>32, hi>>16&0xffff, hi&0xffff, lo>>48, lo&0xffffffffffff)
}

func (g *Generator) newInvoiceID() string {
	return "in_" + randBase36(g.idRng, 14)
}

func utc(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
