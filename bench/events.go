package bench

import (
	"fmt"
	"strconv"
	"time"

	"github.com/tallyhq/tally/schemas"
)

// The generated population: resellers × orgs × users, models and languages.
const (
	genResellers   = 3
	genOrgs        = 40 // per reseller
	genUsers       = 8  // per org
	genBlock       = 64 // events per block: 21 jobs × 3 lifecycle events + 1 tenant event
	genJobsInBlock = 21
)

var (
	genModels    = []string{"whisper-large-v3", "nova-2-general", "enhanced-meeting", "base-phonecall"}
	genLanguages = []string{"en", "en", "en", "es", "de", "fr", "hi", "ja", "pt"}
	genPlans     = []string{"starter", "growth", "business", "enterprise"}
	genRoles     = []string{"member", "admin", "viewer"}
)

// generator builds realistic, valid events deterministically from their
// index n, so a body and its `events` row can both be rebuilt from n alone
// (the raw consumers recover n from the Nats-Msg-Id).
//
// Each block of 64 events holds 21 jobs, each with its job.created,
// job.started and job.completed (1 in 12: job.failed) events in order, and
// one tenant event (user.added, subscription.changed, organization.updated or
// invoice.paid) at the end. Bodies are 300–370 bytes of compact JSON.
type generator struct {
	phase string    // distinguishes the ids of one measurement from another's
	base  time.Time // event times are base minus 0–59 s
}

func newGenerator(phase string, base time.Time) *generator {
	return &generator{phase: phase, base: base.UTC().Truncate(time.Millisecond)}
}

// genEvent is the decoded content of event n: everything both the body and
// the `events` row are built from.
type genEvent struct {
	n          int
	id         string
	typ        string
	reseller   string
	org        string
	time       time.Time
	jobID      string
	userID     string
	model      string
	language   string
	createdAt  time.Time
	mediaMS    uint64 // media_duration_seconds × 1000, a whole number of ms
	procMS     uint64
	errorCode  string
	plan       string
	status     string
	quota      uint64
	amount     int64
	currency   string
	ref        string
	role       string
	name       string
	periodFrom time.Time
	periodTo   time.Time
}

// usageCounted reports whether event n is counted by usage_15m
// (job.created, job.completed, job.failed).
func usageCounted(n int) bool {
	pos := n % genBlock
	if pos == genBlock-1 {
		return false
	}
	return pos%3 != 1 // 0 created, 1 started, 2 completed/failed
}

// usageCount returns how many of events [0, n) usage_15m counts.
func usageCount(n int) uint64 {
	var c uint64
	full := n / genBlock
	c = uint64(full) * genJobsInBlock * 2
	for i := full * genBlock; i < n; i++ {
		if usageCounted(i) {
			c++
		}
	}
	return c
}

// mix is a small deterministic hash so populations look random.
func mix(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

func (g *generator) id(n int) string {
	return "bench-" + g.phase + "-" + pad(n, 10)
}

func pad(n, width int) string {
	s := strconv.Itoa(n)
	for len(s) < width {
		s = "0" + s
	}
	return s
}

// indexFromID recovers n from an id made by id(n); -1 if it is not one.
func indexFromID(id string) int {
	if len(id) < 10 {
		return -1
	}
	n, err := strconv.Atoi(id[len(id)-10:])
	if err != nil {
		return -1
	}
	return n
}

func (g *generator) event(n int) genEvent {
	block, pos := n/genBlock, n%genBlock
	h := mix(uint64(n)*0x9e3779b97f4a7c15 + 1)
	jobN := block*genJobsInBlock + pos/3
	jh := mix(uint64(jobN) + 0x51ed27)
	r := int(jh % genResellers)
	o := int((jh >> 8) % genOrgs)
	e := genEvent{
		n:        n,
		id:       g.id(n),
		reseller: "rs-" + strconv.Itoa(r+1),
		org:      "org-" + strconv.Itoa(r+1) + "-" + pad(o+1, 3),
		time:     g.base.Add(-time.Duration(h%59000) * time.Millisecond),
	}
	if pos == genBlock-1 {
		g.tenantEvent(&e, h)
		return e
	}
	e.jobID = "job-" + g.phase + "-" + pad(jobN, 9)
	e.userID = "user-" + strconv.Itoa(int((jh>>16)%genUsers)+1)
	e.model = genModels[(jh>>24)%uint64(len(genModels))]
	e.language = genLanguages[(jh>>32)%uint64(len(genLanguages))]
	e.createdAt = g.base.Add(-time.Duration(60+jh%600) * time.Second).Truncate(time.Second)
	e.mediaMS = (30+(jh>>40)%3600)*1000 + (jh>>52)%1000
	switch pos % 3 {
	case 0:
		e.typ = schemas.TypeJobCreated
	case 1:
		e.typ = schemas.TypeJobStarted
	default:
		e.procMS = e.mediaMS/12 + (jh>>20)%5000
		if jh%12 == 0 {
			e.typ = schemas.TypeJobFailed
			e.errorCode = "media_decode_error"
		} else {
			e.typ = schemas.TypeJobCompleted
		}
	}
	return e
}

func (g *generator) tenantEvent(e *genEvent, h uint64) {
	plan := genPlans[(h>>8)%uint64(len(genPlans))]
	switch (e.n / genBlock) % 4 {
	case 0:
		e.typ = schemas.TypeUserAdded
		e.userID = "user-" + strconv.Itoa(int((h>>16)%genUsers)+1)
		e.role = genRoles[(h>>24)%uint64(len(genRoles))]
	case 1:
		e.typ = schemas.TypeSubscriptionChanged
		e.plan = plan
		e.status = schemas.SubStatusActive
		e.quota = 1000 * (1 + (h>>16)%50)
		e.amount = int64(e.quota) * 2
		e.currency = "USD"
		e.periodFrom = time.Date(e.time.Year(), e.time.Month(), 1, 0, 0, 0, 0, time.UTC)
		e.periodTo = e.periodFrom.AddDate(0, 1, 0)
	case 2:
		e.typ = schemas.TypeOrganizationUpdated
		e.plan = plan
		e.name = "Acme Transcription " + e.org
		e.status = schemas.OrgStatusActive
		e.createdAt = time.Date(2024, 3, 1+int(h%28), 9, 30, 0, 0, time.UTC)
	default:
		e.typ = schemas.TypeInvoicePaid
		e.ref = "inv-" + g.phase + "-" + pad(e.n, 10)
		e.amount = int64(2000 + (h>>16)%200000)
		e.currency = "EUR"
	}
}

// appendBody appends the compact JSON body of e to b.
func appendBody(b []byte, e *genEvent) []byte {
	b = append(b, `{"specversion":"1.0","id":"`...)
	b = append(b, e.id...)
	b = append(b, `","type":"`...)
	b = append(b, e.typ...)
	b = append(b, `","source":"/platform/`...)
	if e.jobID != "" {
		b = append(b, "jobs"...)
	} else {
		b = append(b, "accounts"...)
	}
	b = append(b, `","time":"`...)
	b = e.time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","resellerid":"`...)
	b = append(b, e.reseller...)
	b = append(b, `","orgid":"`...)
	b = append(b, e.org...)
	b = append(b, `","data":{`...)
	switch e.typ {
	case schemas.TypeJobCreated, schemas.TypeJobStarted, schemas.TypeJobCompleted, schemas.TypeJobFailed:
		b = appendStr(b, "job_id", e.jobID, false)
		b = appendStr(b, "user_id", e.userID, true)
		b = appendStr(b, "model", e.model, true)
		b = appendStr(b, "language", e.language, true)
		b = appendTime(b, "created_at", e.createdAt)
		b = append(b, `,"media_duration_seconds":`...)
		b = strconv.AppendFloat(b, float64(e.mediaMS)/1000, 'f', -1, 64)
		if e.typ == schemas.TypeJobCompleted || e.typ == schemas.TypeJobFailed {
			b = append(b, `,"processing_ms":`...)
			b = strconv.AppendUint(b, e.procMS, 10)
		}
		if e.errorCode != "" {
			b = appendStr(b, "error_code", e.errorCode, true)
			b = appendStr(b, "error_message", "audio decode failed", true)
		}
	case schemas.TypeUserAdded:
		b = appendStr(b, "user_id", e.userID, false)
		b = appendStr(b, "role", e.role, true)
	case schemas.TypeSubscriptionChanged:
		b = appendStr(b, "plan", e.plan, false)
		b = appendStr(b, "status", e.status, true)
		b = append(b, `,"quota_minutes":`...)
		b = strconv.AppendUint(b, e.quota, 10)
		b = append(b, `,"price_minor":`...)
		b = strconv.AppendInt(b, e.amount, 10)
		b = appendStr(b, "currency", e.currency, true)
		b = appendTime(b, "period_start", e.periodFrom)
		b = appendTime(b, "period_end", e.periodTo)
	case schemas.TypeOrganizationUpdated:
		b = appendStr(b, "name", e.name, false)
		b = appendStr(b, "plan", e.plan, true)
		b = appendStr(b, "status", e.status, true)
		b = appendTime(b, "created_at", e.createdAt)
	case schemas.TypeInvoicePaid:
		b = appendStr(b, "invoice_id", e.ref, false)
		b = append(b, `,"amount_minor":`...)
		b = strconv.AppendInt(b, e.amount, 10)
		b = appendStr(b, "currency", e.currency, true)
	}
	return append(b, "}}"...)
}

func appendStr(b []byte, key, val string, comma bool) []byte {
	if comma {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, key...)
	b = append(b, `":"`...)
	b = append(b, val...)
	return append(b, '"')
}

func appendTime(b []byte, key string, t time.Time) []byte {
	b = append(b, `,"`...)
	b = append(b, key...)
	b = append(b, `":"`...)
	b = t.AppendFormat(b, time.RFC3339)
	return append(b, '"')
}

// subject is the NATS subject of e, as stream.Subject builds it.
func (e *genEvent) subject() string {
	return "tally.events." + e.reseller + "." + e.org + "." + e.typ
}

// envelope returns the envelope fields of e (no data), enough for
// publish.PublishRaw and stream.Subject.
func (e *genEvent) envelope() *schemas.Event {
	return &schemas.Event{
		SpecVersion: schemas.SpecVersion, ID: e.id, Type: e.typ, Time: e.time,
		ResellerID: e.reseller, OrgID: e.org,
	}
}

// corpus is n pre-built events: bodies in one arena, subjects interned.
// Building it is not part of any measurement.
type corpus struct {
	gen      *generator
	arena    []byte
	offs     []int // body i is arena[offs[i]:offs[i+1]]
	subjects []string
	subjIdx  []uint16
	ids      []string
}

func (g *generator) corpus(n int) *corpus {
	c := &corpus{
		gen:     g,
		arena:   make([]byte, 0, n*360),
		offs:    make([]int, 1, n+1),
		subjIdx: make([]uint16, n),
		ids:     make([]string, n),
	}
	seen := make(map[string]uint16)
	for i := 0; i < n; i++ {
		e := g.event(i)
		c.arena = appendBody(c.arena, &e)
		c.offs = append(c.offs, len(c.arena))
		s := e.subject()
		k, ok := seen[s]
		if !ok {
			k = uint16(len(c.subjects))
			seen[s] = k
			c.subjects = append(c.subjects, s)
		}
		c.subjIdx[i] = k
		c.ids[i] = e.id
	}
	return c
}

func (c *corpus) len() int              { return len(c.ids) }
func (c *corpus) body(i int) []byte     { return c.arena[c.offs[i]:c.offs[i+1]:c.offs[i+1]] }
func (c *corpus) subject(i int) string  { return c.subjects[c.subjIdx[i]] }
func (c *corpus) avgBodyBytes() float64 { return float64(len(c.arena)) / float64(max(1, c.len())) }

// ndjson returns the bodies [from, to) as one NDJSON request body.
func (c *corpus) ndjson(from, to int) []byte {
	size := c.offs[to] - c.offs[from] + (to - from)
	b := make([]byte, 0, size)
	for i := from; i < to; i++ {
		b = append(b, c.body(i)...)
		b = append(b, '\n')
	}
	return b
}

// checkCorpus validates the first events of c (every type the generator
// makes) with schemas.Decode, so the bench never measures rejected events.
func checkCorpus(c *corpus) error {
	for i := 0; i < c.len(); i++ {
		if _, err := schemas.Decode(c.body(i)); err != nil {
			return fmt.Errorf("event %d: %w\n%s", i, err, c.body(i))
		}
	}
	return nil
}
