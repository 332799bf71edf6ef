package query

import (
	"cmp"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tallyhq/tally/alertspec"
)

// Notification kinds and the event types behind them.
var notificationKinds = map[string][]string{
	"system":   {"system.notice"},
	"customer": {"organization.created", "subscription.changed"},
	"billing":  {"invoice.payment_failed"},
}

// Alert rules (alerts table) shown in the feed, by kind. Failed payments
// and customer activity come from the events above, so their alert rules
// are left out rather than shown twice.
var alertKinds = map[string][]string{
	"usage":   {"quota", "low_usage", "no_jobs", "usage_spike", "usage_drop", "failure_rate"},
	"billing": {"subscription_expiring", "subscription_expired"},
}

var allKinds = []string{"system", "customer", "billing", "usage"}

// testAlertKinds: test alerts (state test, see alertspec.NewTestAlert) are
// in the feed whatever their rule, by kind.
var testAlertKinds = map[string][]string{
	"usage":    alertKinds["usage"],
	"billing":  append(slices.Clone(alertKinds["billing"]), alertspec.RulePaymentFailed),
	"customer": {alertspec.RuleCustomer},
}

var kindOfTestRule = map[string]string{}

var kindOfType = map[string]string{}

func init() {
	for _, m := range []map[string][]string{notificationKinds, alertKinds} {
		for kind, types := range m {
			for _, t := range types {
				kindOfType[t] = kind
			}
		}
	}
	for kind, rules := range testAlertKinds {
		for _, r := range rules {
			kindOfTestRule[r] = kind
		}
	}
}

// notificationsQuery reads the feed from the raw events, newest first,
// after a keyset cursor on (time_ms, id). Platform-wide system notices
// (empty reseller) reach every reseller.
type notificationsQuery struct {
	reseller string
	types    []string
	after    *noteCursor
	limit    int
}

type noteCursor struct {
	timeMS uint64
	id     string
}

func (n notificationsQuery) scope() *sqlBuilder {
	var b sqlBuilder
	b.where("(reseller_id = ? OR (reseller_id = '' AND type = 'system.notice'))", n.reseller)
	b.in("type", n.types)
	return &b
}

func (n notificationsQuery) build() (string, []any) {
	b := n.scope()
	if c := n.after; c != nil {
		b.where("(time_ms < ? OR (time_ms = ? AND id < ?))", c.timeMS, c.timeMS, c.id)
	}
	b.args = append(b.args, n.limit)
	return `SELECT id, type, time, time_ms, org_id, name, plan, status, ref_id, severity, amount_minor, currency, error_code,
    visitParamExtractString(data, 'body') AS body, visitParamExtractString(data, 'link') AS link
FROM events
WHERE ` + b.clause() + `
ORDER BY time_ms DESC, id DESC
LIMIT ?`, b.args
}

// alertNotificationsQuery reads raised alerts for the feed with the same
// keyset cursor: time_ms is first_fired_at in milliseconds, id the alert key.
type alertNotificationsQuery struct {
	reseller string
	rules    []string
	// testRules: test alerts of these rules are in the feed too.
	testRules []string
	after     *noteCursor
	limit     int
}

func (n alertNotificationsQuery) scope() *sqlBuilder {
	var b sqlBuilder
	b.where("reseller_id = ?", n.reseller)
	if len(n.testRules) == 0 {
		b.in("rule", n.rules)
	} else {
		rules := n.rules
		if len(rules) == 0 {
			rules = []string{""} // an empty array is Array(Nothing): IN fails on 18.16
		}
		// Test alerts never change state, so this WHERE on a non-key
		// column is safe under FINAL.
		b.where("(rule IN (SELECT arrayJoin(?)) OR (state = ? AND rule IN (SELECT arrayJoin(?))))", rules, alertspec.StateTest, n.testRules)
	}
	return &b
}

func (n alertNotificationsQuery) build() (string, []any) {
	b := n.scope()
	if c := n.after; c != nil {
		b.where("(toUInt64(first_fired_at) * 1000 < ? OR (toUInt64(first_fired_at) * 1000 = ? AND alert_key < ?))", c.timeMS, c.timeMS, c.id)
	}
	b.args = append(b.args, n.limit)
	return `SELECT alert_key, rule, first_fired_at, toUInt64(first_fired_at) * 1000 AS time_ms, org_id, state, severity, title
FROM alerts FINAL
WHERE ` + b.clause() + `
ORDER BY first_fired_at DESC, alert_key DESC
LIMIT ?`, b.args
}

type notification struct {
	ID       string    `json:"id"`
	Kind     string    `json:"kind"`
	Type     string    `json:"type"`
	Time     time.Time `json:"time"`
	Severity string    `json:"severity"`
	Title    string    `json:"title"`
	Body     string    `json:"body,omitempty"`
	Link     string    `json:"link,omitempty"`
	OrgID    string    `json:"org_id,omitempty"`
	OrgName  string    `json:"org_name,omitempty"`
	// State is the alert's state (firing, resolved, test) for usage and
	// billing alerts raised by the alerts stage and test alerts.
	State string `json:"state,omitempty"`
	// Read: the reseller marked it read (POST /v1/notifications/read).
	Read   bool `json:"read"`
	timeMS uint64
}

type notificationsResponse struct {
	Notifications []notification `json:"notifications"`
	NextCursor    string         `json:"next_cursor,omitempty"`
	// Unread counts the unread items of the kinds asked for, all pages.
	Unread uint64 `json:"unread"`
}

// notifications is the feed: system notices, customer activity (new
// organizations, subscription changes) and billing alerts (failed
// payments, expiring subscriptions) and usage warnings (alerts raised by
// the alerts stage).
func (q *Query) notifications(c *fiber.Ctx) error {
	s := scopeOf(c)
	limit, err := intParam(c, "limit", 50, 1, 500)
	if err != nil {
		return err
	}
	nq := notificationsQuery{reseller: s.reseller, limit: limit + 1}
	aq := alertNotificationsQuery{reseller: s.reseller, limit: limit + 1}
	kinds := listParam(c, "kind")
	if len(kinds) == 0 {
		kinds = allKinds
	}
	for _, k := range kinds {
		types, ok := notificationKinds[k]
		rules, isAlert := alertKinds[k]
		if !ok && !isAlert {
			return badParam("kind", "unknown kind %q: want system, customer, billing or usage", k)
		}
		nq.types = append(nq.types, types...)
		aq.rules = append(aq.rules, rules...)
		aq.testRules = append(aq.testRules, testAlertKinds[k]...)
	}
	if raw := c.Query("cursor"); raw != "" {
		if nq.after, err = decodeNoteCursor(raw); err != nil {
			return badParam("cursor", "invalid cursor: pass next_cursor from the previous page")
		}
		aq.after = nq.after
	}
	var feed []notification
	if len(nq.types) > 0 {
		if feed, err = q.eventNotifications(c, s.loc, nq); err != nil {
			return err
		}
	}
	if len(aq.rules)+len(aq.testRules) > 0 {
		alerts, err := q.alertNotifications(c, s.loc, aq)
		if err != nil {
			return err
		}
		feed = append(feed, alerts...)
	}
	// Both sources are newest first under the same cursor order; merge them.
	slices.SortFunc(feed, func(a, b notification) int {
		if a.timeMS != b.timeMS {
			return cmp.Compare(b.timeMS, a.timeMS)
		}
		return cmp.Compare(b.ID, a.ID)
	})
	resp := notificationsResponse{Notifications: []notification{}}
	if len(feed) > limit {
		feed = feed[:limit]
		resp.NextCursor = noteCursor{timeMS: feed[limit-1].timeMS, id: feed[limit-1].ID}.encode()
	}
	resp.Notifications = append(resp.Notifications, feed...)
	var orgIDs []string
	for _, n := range feed {
		if n.OrgID != "" {
			orgIDs = append(orgIDs, n.OrgID)
		}
	}
	names, err := q.orgNames(c.UserContext(), s.reseller, orgIDs)
	if err != nil {
		return err
	}
	for i := range resp.Notifications {
		resp.Notifications[i].OrgName = names[resp.Notifications[i].OrgID]
	}
	ids := make([]string, len(feed))
	for i, n := range feed {
		ids[i] = n.ID
	}
	rs, err := q.readState(c, s.reseller, ids)
	if err != nil {
		return err
	}
	for i := range resp.Notifications {
		resp.Notifications[i].Read = rs.read(resp.Notifications[i])
	}
	if resp.Unread, err = q.unread(c, rs.beforeMS, nq, aq); err != nil {
		return err
	}
	return c.JSON(resp)
}

// alertNotifications reads the alerts of the feed.
func (q *Query) alertNotifications(c *fiber.Ctx, loc *time.Location, aq alertNotificationsQuery) ([]notification, error) {
	sql, args := aq.build()
	rows, err := q.conn.Query(c.UserContext(), sql, args...)
	if err != nil {
		return nil, fmt.Errorf("alert notifications: %w", err)
	}
	defer rows.Close()
	var out []notification
	for rows.Next() {
		var n notification
		if err := rows.Scan(&n.ID, &n.Type, &n.Time, &n.timeMS, &n.OrgID, &n.State, &n.Severity, &n.Title); err != nil {
			return nil, fmt.Errorf("alert notifications: %w", err)
		}
		n.Kind = kindOfType[n.Type]
		if n.State == alertspec.StateTest {
			n.Kind = cmp.Or(n.Kind, kindOfTestRule[n.Type])
		}
		n.Time = n.Time.In(loc)
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("alert notifications: %w", err)
	}
	return out, nil
}

// eventNotifications reads the notices, customer activity and failed
// payments of the feed from the raw events.
func (q *Query) eventNotifications(c *fiber.Ctx, loc *time.Location, nq notificationsQuery) ([]notification, error) {
	sql, args := nq.build()
	rows, err := q.conn.Query(c.UserContext(), sql, args...)
	if err != nil {
		return nil, fmt.Errorf("notifications: %w", err)
	}
	defer rows.Close()
	var out []notification
	for rows.Next() {
		var (
			n                                                    notification
			name, plan, status, ref, severity, currency, errCode string
			amount                                               int64
		)
		if err := rows.Scan(&n.ID, &n.Type, &n.Time, &n.timeMS, &n.OrgID, &name, &plan, &status, &ref, &severity, &amount, &currency, &errCode, &n.Body, &n.Link); err != nil {
			return nil, fmt.Errorf("notifications: %w", err)
		}
		n.Kind = kindOfType[n.Type]
		n.Time = n.Time.In(loc)
		n.Severity = "info"
		switch n.Type {
		case "system.notice":
			n.Title, n.Severity = name, severity
		case "organization.created":
			n.Title = fmt.Sprintf("New organization %s on plan %s (%s)", name, plan, status)
		case "subscription.changed":
			n.Title = fmt.Sprintf("Subscription changed: plan %s, %s", plan, strings.ReplaceAll(status, "_", " "))
			if status == "past_due" || status == "canceled" || status == "expired" {
				n.Severity = "warning"
			}
		case "invoice.payment_failed":
			n.Title = fmt.Sprintf("Payment failed: %s %s", minorUnits(amount), currency)
			if errCode != "" {
				n.Title += " (" + errCode + ")"
			}
			n.Severity = "warning"
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("notifications: %w", err)
	}
	return out, nil
}

func minorUnits(v int64) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	return fmt.Sprintf("%s%d.%02d", sign, v/100, v%100)
}

func (c noteCursor) encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatUint(c.timeMS, 10) + "\x00" + c.id))
}

func decodeNoteCursor(s string) (*noteCursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	ms, id, ok := strings.Cut(string(raw), "\x00")
	if !ok {
		return nil, errors.New("malformed cursor")
	}
	n, err := strconv.ParseUint(ms, 10, 64)
	if err != nil {
		return nil, err
	}
	return &noteCursor{timeMS: n, id: id}, nil
}
