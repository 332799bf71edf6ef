package query

import (
	"fmt"
	"slices"
	"time"

	"github.com/gofiber/fiber/v2"
)

// Read state of the feed (notification_reads): a row per item marked read,
// and a watermark row (empty notification_id) when everything up to a time
// was marked read. An item is read if marked, or if its time is at or
// before the watermark; a late event older than the watermark counts as
// read.
const (
	// readStateSQL: args reseller, ids (with "" for the watermark).
	readStateSQL = `SELECT notification_id, max(read_before_ms) AS before_ms
FROM notification_reads
WHERE reseller_id = ? AND notification_id IN (SELECT arrayJoin(?))
GROUP BY notification_id`
	insertReadSQL = `INSERT INTO notification_reads (reseller_id, notification_id, read_at, read_before_ms, version)`
	// readIDsCond excludes the items marked read; arg reseller.
	readIDsCond = "NOT IN (SELECT notification_id FROM notification_reads WHERE reseller_id = ?)"
)

// maxReadIDs bounds one POST /v1/notifications/read.
const maxReadIDs = 1000

type readState struct {
	ids      map[string]bool
	beforeMS uint64
}

func (r readState) read(n notification) bool { return r.ids[n.ID] || n.timeMS <= r.beforeMS }

// readState reads which of ids are marked read, and the watermark.
func (q *Query) readState(c *fiber.Ctx, reseller string, ids []string) (readState, error) {
	rs := readState{ids: map[string]bool{}}
	rows, err := q.conn.Query(c.UserContext(), readStateSQL, reseller, append([]string{""}, ids...))
	if err != nil {
		return rs, fmt.Errorf("read state: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var before uint64
		if err := rows.Scan(&id, &before); err != nil {
			return rs, fmt.Errorf("read state: %w", err)
		}
		if id == "" {
			rs.beforeMS = before
		} else {
			rs.ids[id] = true
		}
	}
	return rs, rows.Err()
}

// unreadEventsSQL and unreadAlertsSQL count the unread items of the feed
// after the watermark.
func unreadEventsSQL(nq notificationsQuery, beforeMS uint64) (string, []any) {
	b := nq.scope()
	b.where("time_ms > ?", beforeMS)
	b.where("id "+readIDsCond, nq.reseller)
	return "SELECT count() FROM events\nWHERE " + b.clause(), b.args
}

func unreadAlertsSQL(aq alertNotificationsQuery, beforeMS uint64) (string, []any) {
	b := aq.scope()
	b.where("toUInt64(first_fired_at) * 1000 > ?", beforeMS)
	b.where("alert_key "+readIDsCond, aq.reseller)
	return "SELECT count() FROM alerts FINAL\nWHERE " + b.clause(), b.args
}

// unread counts the feed's unread items (nq.types and aq's rules).
func (q *Query) unread(c *fiber.Ctx, beforeMS uint64, nq notificationsQuery, aq alertNotificationsQuery) (uint64, error) {
	var total uint64
	var queries [][]any
	if len(nq.types) > 0 {
		sql, args := unreadEventsSQL(nq, beforeMS)
		queries = append(queries, append([]any{sql}, args...))
	}
	if len(aq.rules)+len(aq.testRules) > 0 {
		sql, args := unreadAlertsSQL(aq, beforeMS)
		queries = append(queries, append([]any{sql}, args...))
	}
	for _, qa := range queries {
		var n uint64
		if err := q.conn.QueryRow(c.UserContext(), qa[0].(string), qa[1:]...).Scan(&n); err != nil {
			return 0, fmt.Errorf("unread notifications: %w", err)
		}
		total += n
	}
	return total, nil
}

// allFeed is the whole feed of a reseller: every kind.
func allFeed(reseller string) (notificationsQuery, alertNotificationsQuery) {
	nq := notificationsQuery{reseller: reseller}
	aq := alertNotificationsQuery{reseller: reseller}
	for _, k := range allKinds {
		nq.types = append(nq.types, notificationKinds[k]...)
		aq.rules = append(aq.rules, alertKinds[k]...)
		aq.testRules = append(aq.testRules, testAlertKinds[k]...)
	}
	return nq, aq
}

type readRequest struct {
	IDs []string `json:"ids"`
	All bool     `json:"all"`
}

type unreadResponse struct {
	Unread uint64 `json:"unread"`
}

// markNotificationsRead marks feed items read ({"ids":[...]}) or the whole
// feed up to now ({"all":true}); it answers the unread count of the feed.
func (q *Query) markNotificationsRead(c *fiber.Ctx) error {
	s := scopeOf(c)
	var req readRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	switch {
	case req.All && len(req.IDs) > 0:
		return badBody("ids", "send either ids or all, not both")
	case !req.All && len(req.IDs) == 0:
		return badBody("ids", `send {"ids": [...]} or {"all": true}`)
	case len(req.IDs) > maxReadIDs:
		return badBody("ids", "at most %d ids at once", maxReadIDs)
	}
	for _, id := range req.IDs {
		if id == "" || len(id) > 1024 {
			return badBody("ids", "ids: each 1 to 1024 characters")
		}
	}
	now := q.now()
	b, err := q.conn.PrepareBatch(c.UserContext(), insertReadSQL)
	if err != nil {
		return fmt.Errorf("mark read: %w", err)
	}
	version := uint64(time.Now().UnixNano())
	if req.All {
		err = b.Append(s.reseller, "", now.UTC(), uint64(now.UnixMilli()), version)
	}
	for _, id := range slices.Compact(slices.Sorted(slices.Values(req.IDs))) {
		if err = b.Append(s.reseller, id, now.UTC(), uint64(0), version); err != nil {
			break
		}
	}
	if err != nil {
		_ = b.Abort()
		return fmt.Errorf("mark read: %w", err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("mark read: %w", err)
	}
	rs, err := q.readState(c, s.reseller, nil)
	if err != nil {
		return err
	}
	nq, aq := allFeed(s.reseller)
	n, err := q.unread(c, rs.beforeMS, nq, aq)
	if err != nil {
		return err
	}
	return c.JSON(unreadResponse{Unread: n})
}
