package query

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
)

// Notification kinds and the event types behind them.
var notificationKinds = map[string][]string{
	"system":   {"system.notice"},
	"customer": {"organization.created", "subscription.changed"},
	"billing":  {"invoice.payment_failed"},
}

var kindOfType = map[string]string{}

func init() {
	for kind, types := range notificationKinds {
		for _, t := range types {
			kindOfType[t] = kind
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

func (n notificationsQuery) build() (string, []any) {
	var b sqlBuilder
	b.where("(reseller_id = ? OR (reseller_id = '' AND type = 'system.notice'))", n.reseller)
	b.in("type", n.types)
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
}

type notificationsResponse struct {
	Notifications []notification `json:"notifications"`
	NextCursor    string         `json:"next_cursor,omitempty"`
}

// notifications is the feed: system notices, customer activity (new
// organizations, subscription changes) and billing alerts (failed
// payments). Usage warnings join it when the alerts stage exists.
func (q *Query) notifications(c *fiber.Ctx) error {
	s := scopeOf(c)
	limit, err := intParam(c, "limit", 50, 1, 500)
	if err != nil {
		return err
	}
	nq := notificationsQuery{reseller: s.reseller, limit: limit + 1}
	kinds := listParam(c, "kind")
	if len(kinds) == 0 {
		kinds = []string{"system", "customer", "billing"}
	}
	for _, k := range kinds {
		types, ok := notificationKinds[k]
		if !ok {
			return badParam("kind", "unknown kind %q: want system, customer or billing", k)
		}
		nq.types = append(nq.types, types...)
	}
	if raw := c.Query("cursor"); raw != "" {
		if nq.after, err = decodeNoteCursor(raw); err != nil {
			return badParam("cursor", "invalid cursor: pass next_cursor from the previous page")
		}
	}
	sql, args := nq.build()
	rows, err := q.conn.Query(c.UserContext(), sql, args...)
	if err != nil {
		return fmt.Errorf("notifications: %w", err)
	}
	defer rows.Close()
	resp := notificationsResponse{Notifications: []notification{}}
	var lastMS uint64
	var orgIDs []string
	for rows.Next() {
		var (
			n                                                    notification
			timeMS                                               uint64
			name, plan, status, ref, severity, currency, errCode string
			amount                                               int64
		)
		if err := rows.Scan(&n.ID, &n.Type, &n.Time, &timeMS, &n.OrgID, &name, &plan, &status, &ref, &severity, &amount, &currency, &errCode, &n.Body, &n.Link); err != nil {
			return fmt.Errorf("notifications: %w", err)
		}
		if len(resp.Notifications) == limit {
			resp.NextCursor = noteCursor{timeMS: lastMS, id: resp.Notifications[limit-1].ID}.encode()
			break
		}
		lastMS = timeMS
		n.Kind = kindOfType[n.Type]
		n.Time = n.Time.In(s.loc)
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
		resp.Notifications = append(resp.Notifications, n)
		if n.OrgID != "" {
			orgIDs = append(orgIDs, n.OrgID)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("notifications: %w", err)
	}
	names, err := q.orgNames(c, s.reseller, orgIDs)
	if err != nil {
		return err
	}
	for i := range resp.Notifications {
		resp.Notifications[i].OrgName = names[resp.Notifications[i].OrgID]
	}
	return c.JSON(resp)
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
