package e2e

import (
	"math"
	"sort"
	"time"

	"github.com/tallyhq/tally/schemas"
)

// truth is what every read model must hold, computed from the unique events
// in the test without ClickHouse.
type truth struct {
	byType map[string]uint64
	jobs   map[string]jobState // reseller/org/job
	usage  map[usageKey]*usageRow
	// userMonths: reseller/org/UTC month (2006-01)/user -> the first and
	// last job event time (seconds) of that user in the month.
	userMonths map[string][2]time.Time
	// userDays: the same per UTC day (2006-01-02), model and language
	// (reseller/org/day/user/model/language).
	userDays map[string][2]time.Time
	orgs     map[string]orgState // reseller/org
	subs     map[string]subState
	users    map[string]uint64 // reseller/org -> active users
	// ties are latest-state keys with two different states at the same
	// millisecond: ClickHouse may keep either, so only presence is checked.
	ties map[string]bool
}

type jobState struct {
	status  string
	rank    int
	timeMS  int64
	mediaMS uint64
}

type usageKey struct {
	reseller, org string
	bucket        time.Time
	model, lang   string
}

type usageRow struct {
	created, completed, failed, mediaMS, processingMS uint64
	users                                             map[string]bool
}

type orgState struct {
	name, plan, status string
	timeMS             int64
}

type subState struct {
	plan, status string
	quota        int64
	price        int64
	timeMS       int64
}

type userState struct {
	active bool
	timeMS int64
}

func jobRank(typ string) (int, string) {
	switch typ {
	case schemas.TypeJobCreated:
		return 1, "created"
	case schemas.TypeJobStarted:
		return 2, "processing"
	case schemas.TypeJobCompleted:
		return 3, "completed"
	default:
		return 3, "failed"
	}
}

// computeTruth folds unique events (first occurrence of each id wins) into
// the expected read models.
func computeTruth(events []*schemas.Event) truth {
	tr := truth{
		byType: map[string]uint64{}, jobs: map[string]jobState{}, usage: map[usageKey]*usageRow{}, userMonths: map[string][2]time.Time{},
		userDays: map[string][2]time.Time{},
		orgs:     map[string]orgState{}, subs: map[string]subState{}, users: map[string]uint64{},
		ties: map[string]bool{},
	}
	users := map[string]userState{}
	for _, e := range events {
		tr.byType[e.Type]++
		ms := e.Time.UnixMilli()
		tenant := e.ResellerID + "/" + e.OrgID
		switch e.Type {
		case schemas.TypeJobCreated, schemas.TypeJobStarted, schemas.TypeJobCompleted, schemas.TypeJobFailed:
			d, err := e.JobData()
			if err != nil {
				panic(err)
			}
			rank, status := jobRank(e.Type)
			media := uint64(math.Round(d.MediaDurationSeconds * 1000))
			key := tenant + "/" + d.JobID
			if cur, ok := tr.jobs[key]; !ok || rank > cur.rank || rank == cur.rank && ms > cur.timeMS {
				tr.jobs[key] = jobState{status: status, rank: rank, timeMS: ms, mediaMS: media}
			}
			if e.Type == schemas.TypeJobStarted {
				continue
			}
			uk := usageKey{e.ResellerID, e.OrgID, e.Time.UTC().Truncate(15 * time.Minute), d.Model, d.Language}
			u := tr.usage[uk]
			if u == nil {
				u = &usageRow{users: map[string]bool{}}
				tr.usage[uk] = u
			}
			u.users[d.UserID] = true
			at := e.Time.UTC().Truncate(time.Second)
			for _, p := range []struct {
				m      map[string][2]time.Time
				layout string
				suffix string
			}{{tr.userMonths, "2006-01", ""}, {tr.userDays, "2006-01-02", "/" + d.Model + "/" + d.Language}} {
				m, k := p.m, tenant+"/"+at.Format(p.layout)+"/"+d.UserID+p.suffix
				if r, ok := m[k]; !ok {
					m[k] = [2]time.Time{at, at}
				} else {
					m[k] = [2]time.Time{minTime(r[0], at), maxTime(r[1], at)}
				}
			}
			switch e.Type {
			case schemas.TypeJobCreated:
				u.created++
			case schemas.TypeJobCompleted:
				u.completed++
				u.mediaMS += media
				u.processingMS += uint64(d.ProcessingMS)
			case schemas.TypeJobFailed:
				u.failed++
				u.processingMS += uint64(d.ProcessingMS)
			}
		case schemas.TypeOrganizationCreated, schemas.TypeOrganizationUpdated:
			d, err := e.OrganizationData()
			if err != nil {
				panic(err)
			}
			st := orgState{d.Name, d.Plan, d.Status, ms}
			if cur, ok := tr.orgs[tenant]; ok && ms == cur.timeMS && cur != st {
				tr.ties["org:"+tenant] = true
			}
			if cur, ok := tr.orgs[tenant]; !ok || ms >= cur.timeMS {
				tr.orgs[tenant] = st
			}
		case schemas.TypeSubscriptionChanged:
			d, err := e.SubscriptionData()
			if err != nil {
				panic(err)
			}
			st := subState{d.Plan, d.Status, d.QuotaMinutes, d.PriceMinor, ms}
			if cur, ok := tr.subs[tenant]; ok && ms == cur.timeMS && cur != st {
				tr.ties["sub:"+tenant] = true
			}
			if cur, ok := tr.subs[tenant]; !ok || ms >= cur.timeMS {
				tr.subs[tenant] = st
			}
		case schemas.TypeUserAdded, schemas.TypeUserRemoved:
			d, err := e.UserData()
			if err != nil {
				panic(err)
			}
			key := tenant + "/" + d.UserID
			if cur, ok := users[key]; ok && ms == cur.timeMS && cur.active != (e.Type == schemas.TypeUserAdded) {
				tr.ties["users:"+tenant] = true
			}
			if cur, ok := users[key]; !ok || ms >= cur.timeMS {
				users[key] = userState{e.Type == schemas.TypeUserAdded, ms}
			}
		}
	}
	for key, u := range users {
		tenant := key[:lastSlash(key)]
		if _, ok := tr.users[tenant]; !ok {
			tr.users[tenant] = 0
		}
		if u.active {
			tr.users[tenant]++
		}
	}
	return tr
}

func lastSlash(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '/' {
			return i
		}
	}
	return len(s)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
