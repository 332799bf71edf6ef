package stream

import (
	"context"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyhq/tally/schemas"
)

// Dead-letter headers.
const (
	// HeaderReason is the human-readable reason a message was dead-lettered.
	HeaderReason = "Tally-Reason"
	// HeaderOriginalSubject is the subject the message had on EventsStream.
	HeaderOriginalSubject = "Tally-Original-Subject"
	// HeaderStreamSeq is the message's sequence in EventsStream.
	HeaderStreamSeq = "Tally-Stream-Seq"
)

// Common dead-letter reason codes (the subject token after DLQPrefix).
const (
	// ReasonInvalid: the body is not a valid event (schemas.Decode failed).
	ReasonInvalid = "invalid_event"
	// ReasonUnprojectable: a valid event the projector cannot store.
	ReasonUnprojectable = "unprojectable"
)

// DeadLetter publishes msg, a message consumed from EventsStream, to
// tally.dlq.<code> with the reason text and waits for the ack. See
// DeadLetterRaw.
func DeadLetter(ctx context.Context, js jetstream.JetStream, msg jetstream.Msg, code, reason string) error {
	var seq uint64
	if md, err := msg.Metadata(); err == nil {
		seq = md.Sequence.Stream
	}
	return DeadLetterRaw(ctx, js, msg.Subject(), msg.Data(), seq, code, reason)
}

// DeadLetterRaw publishes body, the message with the given subject and
// sequence (0 if unknown) in EventsStream, to tally.dlq.<code> with headers
// Tally-Reason (reason), Tally-Original-Subject and Tally-Stream-Seq, and
// waits for the ack. code must be a subject token (schemas.ValidToken form,
// e.g. ReasonInvalid).
//
// When seq is known the dead letter carries Nats-Msg-Id "dlq-<seq>", so
// dead-lettering the same message again (a consumer crashed before acking
// it) inside the dedup window stores it once.
func DeadLetterRaw(ctx context.Context, js jetstream.JetStream, subject string, body []byte, seq uint64, code, reason string) error {
	if !schemas.ValidToken(code) {
		return fmt.Errorf("dead letter: invalid reason code %q", code)
	}
	m := &nats.Msg{
		Subject: DLQPrefix + code,
		Data:    body,
		Header:  nats.Header{},
	}
	m.Header.Set(HeaderReason, reason)
	m.Header.Set(HeaderOriginalSubject, subject)
	if seq > 0 {
		s := strconv.FormatUint(seq, 10)
		m.Header.Set(HeaderStreamSeq, s)
		m.Header.Set(jetstream.MsgIDHeader, "dlq-"+s)
	}
	if _, err := js.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("dead letter %s (seq %d): %w", subject, seq, err)
	}
	return nil
}
