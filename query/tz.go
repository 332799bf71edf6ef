package query

import (
	"errors"
	"time"
	// The query service must know every IANA zone whatever the host has.
	_ "time/tzdata"
)

// loadZone loads an IANA time zone; "Local" and "" are refused, a server's
// own zone is no answer to a dashboard user.
func loadZone(name string) (*time.Location, error) {
	if name == "" || name == "Local" {
		return nil, errors.New("want an IANA time zone name such as Europe/Amsterdam")
	}
	return time.LoadLocation(name)
}

// startOfMonth is local midnight of the first day of t's month in loc.
func startOfMonth(t time.Time, loc *time.Location) time.Time {
	t = t.In(loc)
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, loc)
}

// startOfDay is local midnight of t's day in loc (the first instant of
// the day where a DST change skips midnight).
func startOfDay(t time.Time, loc *time.Location) time.Time {
	t = t.In(loc)
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
}
