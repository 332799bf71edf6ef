// Package stream defines tally's JetStream streams and subjects, creates or
// updates the streams (Ensure), starts an embedded NATS server for dev mode
// and tests (StartEmbedded) and publishes dead letters (DeadLetter).
//
// Every accepted event is one message on the TALLY_EVENTS stream:
//
//	subject  tally.events.<resellerid|_>.<orgid|_>.<type>   e.g. tally.events.r1.o7.job.completed
//	header   Nats-Msg-Id: <event id>                         (JetStream drops repeats inside the dedup window)
//	body     the event JSON as the publisher sent it, compacted
//
// Consumers and operators filter on the subject: `tally.events.r1.>` is one
// reseller, `tally.events.*.*.job.>` every job event.
package stream

import (
	"strings"

	"github.com/tallyhq/tally/schemas"
)

// Stream names and subjects.
const (
	// EventsStream is the stream holding every accepted event.
	EventsStream = "TALLY_EVENTS"
	// EventsPrefix starts every event subject.
	EventsPrefix = "tally.events."
	// EventsSubjects is the subject filter of EventsStream.
	EventsSubjects = EventsPrefix + ">"

	// DLQStream holds dead letters: messages of EventsStream that a
	// consumer could not process, with the reason.
	DLQStream = "TALLY_DLQ"
	// DLQPrefix starts every dead-letter subject; the token after it is the
	// reason code.
	DLQPrefix = "tally.dlq."
	// DLQSubjects is the subject filter of DLQStream.
	DLQSubjects = DLQPrefix + ">"

	// EmptyToken stands for an empty reseller or organization id in a subject.
	EmptyToken = "_"
)

// Subject returns the subject event e is published on:
// tally.events.<resellerid|_>.<orgid|_>.<type>. The dots of the type become
// subject tokens (job.completed -> ...job.completed).
//
// e must be valid (schemas.Event.Validate): the ids are then subject-safe
// tokens (schemas.ValidToken).
func Subject(e *schemas.Event) string {
	r, o := e.ResellerID, e.OrgID
	if r == "" {
		r = EmptyToken
	}
	if o == "" {
		o = EmptyToken
	}
	var b strings.Builder
	b.Grow(len(EventsPrefix) + len(r) + len(o) + len(e.Type) + 2)
	b.WriteString(EventsPrefix)
	b.WriteString(r)
	b.WriteByte('.')
	b.WriteString(o)
	b.WriteByte('.')
	b.WriteString(e.Type)
	return b.String()
}

// ResellerSubjects returns the subject filter for every event of one
// reseller: tally.events.<resellerid>.>.
func ResellerSubjects(resellerID string) string {
	return EventsPrefix + resellerID + ".>"
}
