package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tallyhq/tally/chstore"
	"github.com/tallyhq/tally/schemas"
)

// DatasetConfig describes the read-model dataset of the query and alerts
// benchmarks: organizations spread over resellers (a few large resellers,
// many small ones), their subscriptions, users and invoices as events, and
// jobs over Months months up to End.
type DatasetConfig struct {
	Orgs      int
	Resellers int
	Jobs      int
	Months    int
	// End is where the data stops (aligned to 15 minutes): the benchmarks'
	// "now".
	End time.Time
}

// datasetVersion changes whenever the generator's output changes, so a
// cached dataset of an older generator is rebuilt.
const datasetVersion = 1

// DefaultDatasetConfig is the dataset of issues 3 and 4: 10,000
// organizations across 20 resellers, 20 million jobs over 13 months.
func DefaultDatasetConfig() DatasetConfig {
	return DatasetConfig{Orgs: 10_000, Resellers: 20, Jobs: 20_000_000, Months: 13,
		End: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)}
}

// Validate reports the first invalid setting.
func (c DatasetConfig) Validate() error {
	switch {
	case c.Resellers < 1 || c.Resellers > 99:
		return errors.New("dataset: resellers must be within 1..99")
	case c.Orgs < c.Resellers || c.Orgs > 999_999:
		return errors.New("dataset: organizations must be within resellers..999,999")
	case c.Jobs < 1:
		return errors.New("dataset: at least one job")
	case c.Months < 1 || c.Months > 60:
		return errors.New("dataset: months must be within 1..60")
	case c.End.IsZero() || !c.End.Equal(c.End.Truncate(15*time.Minute)):
		return errors.New("dataset: end must be set and aligned to 15 minutes")
	}
	return nil
}

// Start is where the jobs begin.
func (c DatasetConfig) Start() time.Time { return c.End.UTC().AddDate(0, -c.Months, 0) }

// key identifies the dataset a database holds: generator version and
// sizes. Tables that later migrations add are filled by derive.
func (c DatasetConfig) key() string {
	return fmt.Sprintf("v%d orgs=%d resellers=%d jobs=%d months=%d end=%s",
		datasetVersion, c.Orgs, c.Resellers, c.Jobs, c.Months, c.End.UTC().Format(time.RFC3339))
}

// existingShare of the organizations exist before the jobs start; the
// others are created evenly over the months, in index order. Lower indexes
// are older and, by the job distribution, larger.
const existingShare = 0.7

// datasetOrg is one generated organization.
type datasetOrg struct {
	idx                  int
	reseller, id, name   string
	plan, status         string
	createdAt            time.Time
	users                int
	modelPref, langPref  int
	churnAt              time.Time // no jobs from then on (zero: never)
	alt                  int       // the organization that gets its jobs after churnAt
	subStatus            string    // status of the latest subscription period
	paymentFailed        bool      // the latest invoice failed
	currency             string
	quota                int64
	price                int64
	suspended, trialling bool
}

var (
	datasetModels    = []string{"whisper-large", "nova-2", "nova-3", "scribe-v1"}
	datasetLanguages = []string{"en", "nl", "de", "fr", "es", "it", "pt", "ja"}
	nameFirst        = []string{"Acme", "Blue", "Northwind", "Contoso", "Fabrikam", "Globex", "Initech", "Umbrella", "Stark", "Wayne",
		"Tyrell", "Cyberdyne", "Soylent", "Hooli", "Vandelay", "Wonka", "Gringotts", "Oceanic", "Aperture", "Pied"}
	nameSecond = []string{"Harbor", "Summit", "River", "Pixel", "Echo", "Atlas", "Nova", "Orbit", "Delta", "Maple",
		"Cedar", "Falcon", "Lumen", "Quartz", "Sierra", "Willow", "Zephyr", "Ember", "Granite", "Aurora"}
	nameSuffix = []string{"Media", "Studios", "Labs", "Records", "Podcasts", "Legal", "Health", "News", "Films", "Learning"}
	planQuota  = map[string]int64{"starter": 1000, "pro": 5000, "business": 25000, "enterprise": 150000}
	planPrice  = map[string]int64{"starter": 1900, "pro": 4900, "business": 19900, "enterprise": 99000}
)

func dsHash(parts ...any) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		fmt.Fprint(h, p, "\x00")
	}
	return mix(h.Sum64())
}

func resellerID(r int) string { return fmt.Sprintf("rs-%02d", r+1) }

// orgCreatedAt: older organizations first (see existingShare).
func (c DatasetConfig) orgCreatedAt(i int) time.Time {
	n0 := int(float64(c.Orgs) * existingShare)
	start, span := c.Start(), c.End.Sub(c.Start())
	if i < n0 {
		before := 2 * 365 * 24 * time.Hour
		return start.Add(-before + time.Duration((float64(i)+0.5)/float64(n0)*float64(before))).Truncate(time.Second)
	}
	return start.Add(time.Duration((float64(i-n0) + 0.5) / float64(c.Orgs-n0) * float64(span))).Truncate(time.Second)
}

// orgs generates the organizations. Resellers are Zipf-sized (the largest
// holds about a quarter of the organizations).
func (c DatasetConfig) orgs() []datasetOrg {
	var wsum float64
	for r := range c.Resellers {
		wsum += 1 / float64(r+1)
	}
	out := make([]datasetOrg, c.Orgs)
	for i := range out {
		h := dsHash("org", i)
		u := float64(h%1_000_000) / 1_000_000 * wsum
		r := 0
		for acc := 0.0; r < c.Resellers-1; r++ {
			acc += 1 / float64(r+1)
			if u < acc {
				break
			}
		}
		rank := float64(i) / float64(c.Orgs)
		plan := "starter"
		switch {
		case rank < 0.01:
			plan = "enterprise"
		case rank < 0.10:
			plan = "business"
		case rank < 0.5:
			plan = "pro"
		}
		o := datasetOrg{
			idx: i, reseller: resellerID(r), id: fmt.Sprintf("org-%06d", i+1),
			name: fmt.Sprintf("%s %s %s", nameFirst[h>>8%20], nameSecond[h>>16%20], nameSuffix[h>>24%10]),
			plan: plan, status: schemas.OrgStatusActive, createdAt: c.orgCreatedAt(i),
			users:     2 + int(30*(1-rank)*(1-rank)*(1-rank)) + int(h>>32%4),
			modelPref: int(h >> 40 % uint64(len(datasetModels))), langPref: int(h >> 44 % uint64(len(datasetLanguages))),
			subStatus: "active", currency: "EUR", quota: planQuota[plan], price: planPrice[plan],
		}
		if r%3 == 1 {
			o.currency = "USD"
		}
		switch {
		case c.End.Sub(o.createdAt) < 30*24*time.Hour && h>>50%3 == 0:
			o.status, o.subStatus, o.price, o.quota, o.trialling = schemas.OrgStatusTrial, "trialing", 0, 300, true
		case h>>50%25 == 1:
			o.status, o.suspended = schemas.OrgStatusSuspended, true
		}
		switch h >> 56 % 40 {
		case 3: // churned: paid, no jobs for the last 12 days
			o.churnAt = c.End.Add(-12 * 24 * time.Hour)
		case 5:
			o.subStatus = "canceled"
		case 7:
			o.subStatus = "past_due"
		case 9:
			o.paymentFailed = true
		}
		out[i] = o
	}
	for i := range out {
		if out[i].churnAt.IsZero() {
			continue
		}
		j := i - 1
		for j >= 0 && !out[j].churnAt.IsZero() {
			j--
		}
		if j < 0 {
			out[i].churnAt = time.Time{}
			continue
		}
		out[i].alt = j
	}
	return out
}

// events generates the organizations' tenant events: organization.created
// (and .updated for suspended ones), users, a subscription.changed per
// monthly period, an invoice per paid period, and a few system notices.
func (c DatasetConfig) events(orgs []datasetOrg) []*schemas.Event {
	var out []*schemas.Event
	seq := 0
	add := func(typ, reseller, org string, at time.Time, data any) {
		raw, err := json.Marshal(data)
		if err != nil {
			panic(err)
		}
		seq++
		out = append(out, &schemas.Event{SpecVersion: schemas.SpecVersion, ID: "ds-" + strconv.Itoa(seq), Type: typ,
			Source: "tally-bench", Time: at.UTC(), ResellerID: reseller, OrgID: org, Data: raw})
	}
	windowStart := c.Start().AddDate(0, -1, 0)
	for _, o := range orgs {
		status := o.status
		if o.suspended {
			status = schemas.OrgStatusActive
		}
		add(schemas.TypeOrganizationCreated, o.reseller, o.id, o.createdAt,
			schemas.OrganizationData{Name: o.name, Plan: o.plan, Status: status, CreatedAt: o.createdAt})
		if o.suspended {
			at := c.End.Add(-time.Duration(dsHash("susp", o.idx)%(60*24)) * time.Hour)
			if at.Before(o.createdAt) {
				at = o.createdAt.Add(time.Hour)
			}
			add(schemas.TypeOrganizationUpdated, o.reseller, o.id, at,
				schemas.OrganizationData{Name: o.name, Plan: o.plan, Status: schemas.OrgStatusSuspended, CreatedAt: o.createdAt})
		}
		for u := range o.users {
			add(schemas.TypeUserAdded, o.reseller, o.id, o.createdAt.Add(time.Duration(u)*time.Hour),
				schemas.UserData{UserID: fmt.Sprintf("%s-u%d", o.id, u), Role: "member"})
		}
		if o.users > 3 && dsHash("rm", o.idx)%5 == 0 {
			// A user who left (and is no longer among those running jobs... mostly).
			add(schemas.TypeUserRemoved, o.reseller, o.id, c.End.Add(-time.Duration(dsHash("rmt", o.idx)%(200*24))*time.Hour),
				schemas.UserData{UserID: fmt.Sprintf("%s-u%d", o.id, o.users+1)})
			add(schemas.TypeUserAdded, o.reseller, o.id, o.createdAt.Add(30*time.Minute),
				schemas.UserData{UserID: fmt.Sprintf("%s-u%d", o.id, o.users+1), Role: "admin"})
		}
		for k := 0; ; k++ {
			ps := o.createdAt.AddDate(0, k, 0)
			if ps.After(c.End) {
				break
			}
			if ps.AddDate(0, 1, 0).Before(windowStart) {
				continue
			}
			pe := ps.AddDate(0, 1, 0)
			last := pe.After(c.End)
			st, price, quota := "active", o.price, o.quota
			if o.trialling {
				st = "trialing"
			}
			if last && (o.subStatus == "canceled" || o.subStatus == "past_due") {
				st = o.subStatus
			}
			add(schemas.TypeSubscriptionChanged, o.reseller, o.id, ps, schemas.SubscriptionData{Plan: o.plan, Status: st,
				QuotaMinutes: quota, PriceMinor: price, Currency: o.currency, PeriodStart: ps, PeriodEnd: pe})
			if price > 0 {
				inv := schemas.InvoiceData{InvoiceID: fmt.Sprintf("inv-%s-%d", o.id, k), AmountMinor: price, Currency: o.currency}
				at := ps.Add(time.Hour)
				if at.After(c.End) {
					continue
				}
				if last && o.paymentFailed {
					inv.FailureReason = "card_declined"
					add(schemas.TypeInvoicePaymentFailed, o.reseller, o.id, at, inv)
					continue
				}
				add(schemas.TypeInvoicePaid, o.reseller, o.id, at, inv)
			}
		}
	}
	for k := range 5 {
		at := c.End.Add(-time.Duration(k*7*24+3) * time.Hour)
		add(schemas.TypeSystemNotice, "", "", at, schemas.SystemNoticeData{NoticeID: fmt.Sprintf("notice-%d", k),
			Title: fmt.Sprintf("Maintenance window %d", k), Body: "Scheduled maintenance.", Severity: "info"})
	}
	return out
}

const insertDatasetEventsSQL = `INSERT INTO events (id, type, source, time, time_ms, reseller_id, org_id, data, stream_seq, projected_at,
    name, plan, status, created_at, user_id, role, quota_minutes, amount_minor, currency, period_start, period_end, ref_id, error_code, severity)`

// insertEvents writes tenant events the way the projector maps them.
func insertEvents(ctx context.Context, conn driver.Conn, evs []*schemas.Event) error {
	const batch = 50_000
	for len(evs) > 0 {
		n := min(batch, len(evs))
		b, err := conn.PrepareBatch(ctx, insertDatasetEventsSQL)
		if err != nil {
			return fmt.Errorf("insert events: %w", err)
		}
		for i, e := range evs[:n] {
			var (
				name, plan, status, user, role, currency, ref, code, severity string
				created, ps, pe                                               time.Time
				quota                                                         uint64
				amount                                                        int64
			)
			epoch := time.Unix(0, 0).UTC()
			created, ps, pe = epoch, epoch, epoch
			switch {
			case strings.HasPrefix(e.Type, "organization."):
				var d schemas.OrganizationData
				_ = json.Unmarshal(e.Data, &d)
				name, plan, status, created = d.Name, d.Plan, d.Status, d.CreatedAt
			case e.Type == schemas.TypeSubscriptionChanged:
				var d schemas.SubscriptionData
				_ = json.Unmarshal(e.Data, &d)
				plan, status, quota, amount, currency, ps, pe = d.Plan, d.Status, uint64(d.QuotaMinutes), d.PriceMinor, d.Currency, d.PeriodStart, d.PeriodEnd
			case strings.HasPrefix(e.Type, "invoice."):
				var d schemas.InvoiceData
				_ = json.Unmarshal(e.Data, &d)
				ref, amount, currency, code = d.InvoiceID, d.AmountMinor, d.Currency, d.FailureReason
			case strings.HasPrefix(e.Type, "user."):
				var d schemas.UserData
				_ = json.Unmarshal(e.Data, &d)
				user, role = d.UserID, d.Role
			case e.Type == schemas.TypeSystemNotice:
				var d schemas.SystemNoticeData
				_ = json.Unmarshal(e.Data, &d)
				ref, name, severity = d.NoticeID, d.Title, d.Severity
			}
			if err := b.Append(e.ID, e.Type, e.Source, e.Time, uint64(e.Time.UnixMilli()), e.ResellerID, e.OrgID, string(e.Data),
				uint64(i+1), e.Time, name, plan, status, created, user, role, quota, amount, currency, ps, pe, ref, code, severity); err != nil {
				return fmt.Errorf("insert events: %w", err)
			}
		}
		if err := b.Send(); err != nil {
			return fmt.Errorf("insert events: %w", err)
		}
		evs = evs[n:]
	}
	return nil
}

const createDatasetOrgsSQL = `CREATE TABLE IF NOT EXISTS bench_dataset_orgs (
    idx UInt32, reseller_id String, org_id String, users UInt32, model_pref UInt8, lang_pref UInt8,
    churn_at UInt32, alt UInt32
) ENGINE = MergeTree ORDER BY idx`

const createDatasetMetaSQL = `CREATE TABLE IF NOT EXISTS bench_dataset (key String, finished_at DateTime) ENGINE = MergeTree ORDER BY key`

// jobsInsertSQL generates jobs [offset, offset+count) of jobs in total on
// the server. Job n is created at an even share of the time span (jittered),
// by an organization that exists then, the older (lower index) ones being
// larger: index = floor(existing × u²). A churned organization's jobs after
// its churn time go to its alt. Args: start, spanSeconds, total, existing
// before start (n0), orgs created during the span, offset, count, end.
const jobsInsertSQL = `INSERT INTO jobs (reseller_id, org_id, job_id, user_id, model, language, status, created_at, updated_at,
    media_ms, processing_ms, error_code, version)
SELECT reseller_id, org_id, job_id, user_id, model, language, status, created_at, updated_at,
    media_ms, if(status IN ('completed', 'failed'), proc, toUInt64(0)) AS processing_ms, error_code,
    multiIf(status = 'created', 1, status = 'processing', 2, 3) * 10000000000000 + toUInt64(toUInt32(updated_at)) * 1000 AS version
FROM (
    SELECT reseller_id, org_id, concat('job-', toString(n)) AS job_id,
        concat(org_id, '-u', toString(intHash64(n * 16 + 2) % users)) AS user_id,
        ['whisper-large', 'nova-2', 'nova-3', 'scribe-v1'][(model_pref + if(intHash64(n * 16 + 3) % 10 < 8, 0, intHash64(n * 16 + 4) % 4)) % 4 + 1] AS model,
        ['en', 'nl', 'de', 'fr', 'es', 'it', 'pt', 'ja'][(lang_pref + if(intHash64(n * 16 + 5) % 10 < 8, 0, intHash64(n * 16 + 6) % 8)) % 8 + 1] AS language,
        toDateTime(created) AS created_at,
        toUInt64(10000 + (intHash64(n * 16 + 7) % 600000) * if(intHash64(n * 16 + 8) % 100 < 10, 6, 1)) AS media_ms,
        toUInt64(media_ms * (50 + intHash64(n * 16 + 9) % 250) / 1000) AS proc,
        created + 1 + intHash64(n * 16 + 10) % 30 AS started,
        started + intDiv(proc + 999, 1000) AS finished,
        multiIf(finished <= end, if(intHash64(n * 16 + 11) % 12 = 0, 'failed', 'completed'), started <= end, 'processing', 'created') AS status,
        toDateTime(multiIf(status IN ('completed', 'failed'), finished, status = 'processing', started, created)) AS updated_at,
        if(status = 'failed', ['unsupported_codec', 'media_too_long', 'timeout'][intHash64(n * 16 + 12) % 3 + 1], '') AS error_code
    FROM (
        SELECT n, created, end, if(churn_at > 0 AND created >= churn_at, alt, o) AS idx
        FROM (
            SELECT n, created, end,
                toUInt32(floor(least(toUInt32(? + floor((created - ?) / ? * ? + 0.5)), ?) * pow((intHash64(n * 16 + 1) % 1000000) / 1000000, 2))) AS o
            FROM (
                SELECT number + ? AS n, toUInt32(? + floor((n + (intHash64(n * 16) % 1000) / 1000) * ? / ?)) AS created, toUInt32(?) AS end
                FROM numbers(?)
            )
        ) AS j
        ANY LEFT JOIN (SELECT idx AS o, churn_at, alt FROM bench_dataset_orgs) AS c USING o
    ) AS j2
    ANY LEFT JOIN (SELECT idx, reseller_id, org_id, users, model_pref, lang_pref FROM bench_dataset_orgs) AS d USING idx
)`

// usageFromJobsSQL derives usage_15m from jobs exactly as usage_15m_mv
// does from the job events: job.created counts in the bucket of created_at,
// job.completed / job.failed in the bucket of updated_at (their event
// time). job.started events are not counted by the view. Args: from, to
// (created_at range).
const usageFromJobsSQL = `INSERT INTO usage_15m (reseller_id, org_id, bucket, model, language, jobs_created, jobs_completed, jobs_failed,
    media_ms, processing_ms, users)
SELECT reseller_id, org_id, toStartOfFifteenMinutes(if(k = 0, created_at, updated_at)) AS bucket, model, language,
    sumState(toUInt64(k = 0)) AS jobs_created,
    sumState(toUInt64(k = 1 AND status = 'completed')) AS jobs_completed,
    sumState(toUInt64(k = 1 AND status = 'failed')) AS jobs_failed,
    sumState(if(k = 1 AND status = 'completed', media_ms, toUInt64(0))) AS media_ms,
    sumState(if(k = 1, processing_ms, toUInt64(0))) AS processing_ms,
    uniqExactState(user_id) AS users
FROM jobs
ARRAY JOIN if(status IN ('completed', 'failed'), [0, 1], [0]) AS k
WHERE created_at >= ? AND created_at < ?
GROUP BY reseller_id, org_id, bucket, model, language`

// Dataset is a database holding the generated dataset.
type Dataset struct {
	Config   DatasetConfig
	CH       chstore.Config
	Conn     driver.Conn
	Reused   bool
	Orgs     []datasetOrg
	Took     time.Duration
	JobRows  uint64
	UsageRow uint64
}

// PrepareDataset migrates ch.Database and fills it with the dataset,
// unless it holds this dataset already (a finished earlier run): then it is
// reused as is. A database holding anything else is dropped first.
func PrepareDataset(ctx context.Context, ch chstore.Config, cfg DatasetConfig, log *slog.Logger, progress func(string)) (*Dataset, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	began := time.Now()
	if _, err := chstore.Migrate(ctx, ch, log); err != nil {
		return nil, err
	}
	conn, err := chstore.Open(ctx, ch)
	if err != nil {
		return nil, err
	}
	ds := &Dataset{Config: cfg, CH: ch, Conn: conn, Orgs: cfg.orgs()}
	ok, err := ds.finished(ctx)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	ds.Reused = ok
	if !ok {
		if err := ds.rebuild(ctx, log, progress); err != nil {
			_ = ds.Conn.Close()
			return nil, err
		}
	}
	if err := ds.derive(ctx, progress); err != nil {
		_ = ds.Conn.Close()
		return nil, err
	}
	ds.Took = time.Since(began)
	return ds, ds.count(ctx)
}

// derivedTables are read models that materialized views fill from job
// events, filled here from jobs as the views would (after merges). They
// are filled when empty, so a cached dataset gains the tables of newer
// migrations without being generated again.
var derivedTables = []struct {
	table, sql string
	monthly    bool // args: from, to; run once per month of the dataset
}{
	{"jobs_by_org", `INSERT INTO jobs_by_org (reseller_id, org_id, job_id, user_id, model, language, status, created_at, updated_at,
    media_ms, processing_ms, error_code, version)
SELECT reseller_id, org_id, job_id, user_id, model, language, status, created_at, updated_at,
    media_ms, processing_ms, error_code, version
FROM jobs`, false},
	{"jobs_open", `INSERT INTO jobs_open (reseller_id, created_at, org_id, job_id, model, open)
SELECT reseller_id, created_at, org_id, job_id, model, toInt64(1)
FROM jobs
WHERE status IN ('created', 'processing')`, false},
	{"usage_1d", `INSERT INTO usage_1d (reseller_id, org_id, day, model, language, jobs_created, jobs_completed, jobs_failed,
    media_ms, processing_ms, users)
SELECT reseller_id, org_id, toStartOfDay(bucket, 'UTC') AS day, model, language,
    sumMergeState(jobs_created), sumMergeState(jobs_completed), sumMergeState(jobs_failed),
    sumMergeState(media_ms), sumMergeState(processing_ms), uniqExactMergeState(users)
FROM usage_15m
WHERE bucket >= ? AND bucket < ?
GROUP BY reseller_id, org_id, day, model, language`, true},
	{"usage_1mo", `INSERT INTO usage_1mo (reseller_id, org_id, month, model, language, jobs_created, jobs_completed, jobs_failed,
    media_ms, processing_ms, users)
SELECT reseller_id, org_id, toStartOfDay(day, 'UTC') - (toDayOfMonth(day, 'UTC') - 1) * 86400 AS month, model, language,
    sumMergeState(jobs_created), sumMergeState(jobs_completed), sumMergeState(jobs_failed),
    sumMergeState(media_ms), sumMergeState(processing_ms), uniqExactMergeState(users)
FROM usage_1d
WHERE day >= ? AND day < ?
GROUP BY reseller_id, org_id, month, model, language`, true},
	{"usage_15m_by_time", `INSERT INTO usage_15m_by_time (reseller_id, org_id, bucket, model, language, jobs_created, jobs_completed,
    jobs_failed, media_ms, processing_ms, users)
SELECT reseller_id, org_id, bucket, model, language, jobs_created, jobs_completed, jobs_failed, media_ms, processing_ms, users
FROM usage_15m
WHERE bucket >= ? AND bucket < ?`, true},
	{"usage_reseller_15m", `INSERT INTO usage_reseller_15m (reseller_id, bucket, jobs_created, jobs_completed, jobs_failed,
    media_ms, processing_ms, users)
SELECT reseller_id, bucket,
    sumMergeState(jobs_created), sumMergeState(jobs_completed), sumMergeState(jobs_failed),
    sumMergeState(media_ms), sumMergeState(processing_ms), uniqExactMergeState(users)
FROM usage_15m_by_time
WHERE bucket >= ? AND bucket < ?
GROUP BY reseller_id, bucket`, true},
	{"usage_org_1d", `INSERT INTO usage_org_1d (reseller_id, org_id, day, jobs_created, jobs_completed, jobs_failed,
    media_ms, processing_ms, users)
SELECT reseller_id, org_id, day,
    sumMergeState(jobs_created), sumMergeState(jobs_completed), sumMergeState(jobs_failed),
    sumMergeState(media_ms), sumMergeState(processing_ms), uniqExactMergeState(users)
FROM usage_1d
WHERE day >= ? AND day < ?
GROUP BY reseller_id, org_id, day`, true},
	{"usage_org_1mo", `INSERT INTO usage_org_1mo (reseller_id, org_id, month, jobs_created, jobs_completed, jobs_failed,
    media_ms, processing_ms, users)
SELECT reseller_id, org_id, month,
    sumMergeState(jobs_created), sumMergeState(jobs_completed), sumMergeState(jobs_failed),
    sumMergeState(media_ms), sumMergeState(processing_ms), uniqExactMergeState(users)
FROM usage_1mo
WHERE month >= ? AND month < ?
GROUP BY reseller_id, org_id, month`, true},
	{"org_user_months", `INSERT INTO org_user_months (reseller_id, month, org_id, user_id, first_at, last_at)
SELECT reseller_id, toStartOfDay(t, 'UTC') - (toDayOfMonth(t, 'UTC') - 1) * 86400 AS month, org_id, user_id,
    minState(t), maxState(t)
FROM jobs
ARRAY JOIN if(status IN ('completed', 'failed'), [created_at, updated_at], [created_at]) AS t
WHERE created_at >= ? AND created_at < ?
GROUP BY reseller_id, month, org_id, user_id`, true},
	{"user_month_slots", `INSERT INTO user_month_slots (reseller_id, month, org_id, user_id, model, language, slots)
SELECT reseller_id, toStartOfDay(t, 'UTC') - (toDayOfMonth(t, 'UTC') - 1) * 86400 AS month, org_id, user_id, model, language,
    groupArrayState(toUInt32(intDiv(toUInt32(t), 900)))
FROM jobs
ARRAY JOIN if(status IN ('completed', 'failed'), [created_at, updated_at], [created_at]) AS t
WHERE created_at >= ? AND created_at < ?
GROUP BY reseller_id, month, org_id, user_id, model, language`, true},
	{"org_user_days", `INSERT INTO org_user_days (reseller_id, day, org_id, user_id, model, language, first_at, last_at)
SELECT reseller_id, toStartOfDay(t, 'UTC') AS day, org_id, user_id, model, language, minState(t), maxState(t)
FROM jobs
ARRAY JOIN if(status IN ('completed', 'failed'), [created_at, updated_at], [created_at]) AS t
WHERE created_at >= ? AND created_at < ?
GROUP BY reseller_id, day, org_id, user_id, model, language`, true},
}

func (ds *Dataset) derive(ctx context.Context, progress func(string)) error {
	for _, d := range derivedTables {
		var n uint64
		if err := ds.Conn.QueryRow(ctx, "SELECT count() FROM "+d.table).Scan(&n); err != nil {
			return fmt.Errorf("derive %s: %w", d.table, err)
		}
		if n > 0 {
			continue
		}
		t := time.Now()
		if !d.monthly {
			if err := ds.Conn.Exec(ctx, d.sql); err != nil {
				return fmt.Errorf("derive %s: %w", d.table, err)
			}
		}
		for m := ds.Config.Start().AddDate(0, 0, -ds.Config.Start().Day()+1).Truncate(24 * time.Hour); d.monthly && m.Before(ds.Config.End.AddDate(0, 0, 1)); m = m.AddDate(0, 1, 0) {
			if err := ds.Conn.Exec(ctx, d.sql, m, m.AddDate(0, 1, 0)); err != nil {
				return fmt.Errorf("derive %s: %w", d.table, err)
			}
		}
		if err := ds.Conn.Exec(ctx, "OPTIMIZE TABLE "+d.table+" FINAL"); err != nil {
			return fmt.Errorf("optimize %s: %w", d.table, err)
		}
		progress(fmt.Sprintf("  %s derived from jobs in %s", d.table, time.Since(t).Round(time.Second)))
	}
	return nil
}

func (ds *Dataset) finished(ctx context.Context) (bool, error) {
	if err := ds.Conn.Exec(ctx, createDatasetMetaSQL); err != nil {
		return false, fmt.Errorf("dataset meta: %w", err)
	}
	var n uint64
	if err := ds.Conn.QueryRow(ctx, `SELECT count() FROM bench_dataset WHERE key = ?`, ds.Config.key()).Scan(&n); err != nil {
		return false, fmt.Errorf("dataset meta: %w", err)
	}
	return n > 0, nil
}

func (ds *Dataset) count(ctx context.Context) error {
	if err := ds.Conn.QueryRow(ctx, `SELECT count() FROM jobs`).Scan(&ds.JobRows); err != nil {
		return fmt.Errorf("count jobs: %w", err)
	}
	if err := ds.Conn.QueryRow(ctx, `SELECT count() FROM usage_15m`).Scan(&ds.UsageRow); err != nil {
		return fmt.Errorf("count usage: %w", err)
	}
	return nil
}

func (ds *Dataset) rebuild(ctx context.Context, log *slog.Logger, progress func(string)) error {
	cfg, db := ds.Config, ds.CH.Database
	if !validIdent(db) {
		return fmt.Errorf("database name %q", db)
	}
	progress(fmt.Sprintf("generating dataset in database %s: %s", db, cfg.key()))
	_ = ds.Conn.Close()
	admin := ds.CH
	admin.Database = "system"
	aconn, err := chstore.Open(ctx, admin)
	if err != nil {
		return err
	}
	err = aconn.Exec(ctx, "DROP DATABASE IF EXISTS "+db)
	_ = aconn.Close()
	if err != nil {
		return fmt.Errorf("drop %s: %w", db, err)
	}
	if _, err := chstore.Migrate(ctx, ds.CH, log); err != nil {
		return err
	}
	if ds.Conn, err = chstore.Open(ctx, ds.CH); err != nil {
		return err
	}
	conn := ds.Conn
	for _, stmt := range []string{createDatasetMetaSQL, createDatasetOrgsSQL} {
		if err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("dataset tables: %w", err)
		}
	}
	b, err := conn.PrepareBatch(ctx, `INSERT INTO bench_dataset_orgs (idx, reseller_id, org_id, users, model_pref, lang_pref, churn_at, alt)`)
	if err != nil {
		return fmt.Errorf("dataset orgs: %w", err)
	}
	for _, o := range ds.Orgs {
		var churn uint32
		if !o.churnAt.IsZero() {
			churn = uint32(o.churnAt.Unix())
		}
		if err := b.Append(uint32(o.idx), o.reseller, o.id, uint32(o.users), uint8(o.modelPref), uint8(o.langPref), churn, uint32(o.alt)); err != nil {
			return fmt.Errorf("dataset orgs: %w", err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("dataset orgs: %w", err)
	}
	t := time.Now()
	evs := cfg.events(ds.Orgs)
	if err := insertEvents(ctx, conn, evs); err != nil {
		return err
	}
	progress(fmt.Sprintf("  %d tenant events (organizations, users, subscriptions, invoices) in %s", len(evs), time.Since(t).Round(time.Millisecond)))

	start, end := cfg.Start(), cfg.End
	span := end.Sub(start).Seconds()
	n0 := int(float64(cfg.Orgs) * existingShare)
	const chunk = 1_000_000
	t = time.Now()
	for off := 0; off < cfg.Jobs; off += chunk {
		cnt := min(chunk, cfg.Jobs-off)
		if err := conn.Exec(ctx, jobsInsertSQL,
			n0, start.Unix(), span, cfg.Orgs-n0, cfg.Orgs,
			off, start.Unix(), span, cfg.Jobs, end.Unix(), cnt); err != nil {
			return fmt.Errorf("generate jobs %d..%d: %w", off, off+cnt, err)
		}
		progress(fmt.Sprintf("  jobs %d/%d (%s)", off+cnt, cfg.Jobs, time.Since(t).Round(time.Second)))
	}
	t = time.Now()
	for from := start; from.Before(end); from = from.AddDate(0, 0, 10) {
		to := from.AddDate(0, 0, 10)
		if err := conn.Exec(ctx, usageFromJobsSQL, from, to); err != nil {
			return fmt.Errorf("usage from jobs %s: %w", from.Format(time.DateOnly), err)
		}
	}
	progress(fmt.Sprintf("  usage_15m derived from jobs in %s", time.Since(t).Round(time.Second)))
	t = time.Now()
	for _, table := range []string{"jobs", "usage_15m", "organizations", "subscriptions", "org_users", "events"} {
		if err := conn.Exec(ctx, "OPTIMIZE TABLE "+table+" FINAL"); err != nil {
			return fmt.Errorf("optimize %s: %w", table, err)
		}
	}
	progress(fmt.Sprintf("  merged (OPTIMIZE FINAL) in %s", time.Since(t).Round(time.Second)))
	mb, err := conn.PrepareBatch(ctx, `INSERT INTO bench_dataset (key, finished_at)`)
	if err != nil {
		return fmt.Errorf("dataset meta: %w", err)
	}
	if err := mb.Append(cfg.key(), time.Now().UTC().Truncate(time.Second)); err != nil {
		return fmt.Errorf("dataset meta: %w", err)
	}
	if err := mb.Send(); err != nil {
		return fmt.Errorf("dataset meta: %w", err)
	}
	return nil
}
