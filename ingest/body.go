package ingest

import (
	"bytes"
	"mime"
	"strings"
)

// format is how a request body carries events.
type format int

const (
	formatJSON            format = iota // one object or an array
	formatCloudEvent                    // one object
	formatCloudEventBatch               // an array
	formatNDJSON                        // one object per line
)

// mediaFormat parses a Content-Type header.
func mediaFormat(contentType string) (format, error) {
	switch contentType { // the common spellings, without parsing
	case "application/json":
		return formatJSON, nil
	case "application/x-ndjson":
		return formatNDJSON, nil
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return 0, &MediaTypeError{Got: contentType}
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return 0, &MediaTypeError{Got: contentType}
	}
	switch mt {
	case "application/json":
		return formatJSON, nil
	case "application/cloudevents+json":
		return formatCloudEvent, nil
	case "application/cloudevents-batch+json":
		return formatCloudEventBatch, nil
	case "application/x-ndjson", "application/ndjson":
		return formatNDJSON, nil
	}
	return 0, &MediaTypeError{Got: contentType}
}

// rawEvent is one event of a request, compacted, before decoding.
type rawEvent struct {
	raw  []byte
	line int          // NDJSON line number, 0 for JSON bodies
	err  *SyntaxError // NDJSON: this line is not JSON
}

// split checks the body's JSON syntax and returns its events, compacted,
// in order. A JSON body with a syntax error fails as a whole; an NDJSON line
// with one becomes a rawEvent with err set, the other lines are kept.
func split(f format, body []byte, maxBatch int) ([]rawEvent, error) {
	if f == formatNDJSON {
		return splitNDJSON(body, maxBatch)
	}
	c := compactor{in: body, out: make([]byte, 0, len(body))}
	c.skipWS()
	if c.i >= len(body) {
		return nil, ErrNoEvents
	}
	switch first := body[c.i]; {
	case first == '{' && f != formatCloudEventBatch:
		if !c.value(0) {
			return nil, syntaxAt(body, c.i, 1, c.err)
		}
		if err := c.end(); err != nil {
			return nil, err
		}
		return []rawEvent{{raw: c.out}}, nil
	case first == '[' && f != formatCloudEvent:
		return c.events(maxBatch)
	case first == '[':
		return nil, &ShapeError{Msg: "application/cloudevents+json carries one event (a JSON object); send arrays as application/cloudevents-batch+json"}
	case first == '{':
		return nil, &ShapeError{Msg: "application/cloudevents-batch+json carries a JSON array of events"}
	default:
		c.value(0)
		if c.err == "" {
			return nil, &ShapeError{Msg: "the body must be an event (a JSON object) or an array of events"}
		}
		return nil, syntaxAt(body, c.i, 1, c.err)
	}
}

// end checks that only whitespace follows the value just read.
func (c *compactor) end() error {
	c.skipWS()
	if c.i < len(c.in) {
		return syntaxAt(c.in, c.i, 1, "unexpected "+quoteByte(c.in[c.i])+" after the end of the JSON value")
	}
	return nil
}

// events reads a top-level array of events.
func (c *compactor) events(maxBatch int) ([]rawEvent, error) {
	c.i++ // '['
	var evs []rawEvent
	c.skipWS()
	if c.i < len(c.in) && c.in[c.i] == ']' {
		c.i++
		if err := c.end(); err != nil {
			return nil, err
		}
		return nil, ErrNoEvents
	}
	for {
		if len(evs) == maxBatch {
			return nil, &BatchTooLargeError{Max: maxBatch}
		}
		start := len(c.out)
		if !c.value(1) {
			return nil, syntaxAt(c.in, c.i, 1, c.err)
		}
		evs = append(evs, rawEvent{raw: c.out[start:len(c.out):len(c.out)]})
		c.skipWS()
		if c.i >= len(c.in) {
			return nil, syntaxAt(c.in, c.i, 1, "unexpected end of input in array, expecting ',' or ']'")
		}
		switch c.in[c.i] {
		case ',':
			c.i++
		case ']':
			c.i++
			if err := c.end(); err != nil {
				return nil, err
			}
			return evs, nil
		default:
			return nil, syntaxAt(c.in, c.i, 1, "unexpected "+quoteByte(c.in[c.i])+" in array, expecting ',' or ']'")
		}
	}
}

// splitNDJSON reads one event per line; blank lines are skipped.
func splitNDJSON(body []byte, maxBatch int) ([]rawEvent, error) {
	out := make([]byte, 0, len(body))
	evs := make([]rawEvent, 0, min(maxBatch, bytes.Count(body, []byte{'\n'})+1))
	line := 0
	for rest := body; len(rest) > 0; {
		line++
		var ln []byte
		if nl := bytes.IndexByte(rest, '\n'); nl >= 0 {
			ln, rest = rest[:nl], rest[nl+1:]
		} else {
			ln, rest = rest, nil
		}
		c := compactor{in: ln, out: out}
		c.skipWS()
		if c.i == len(ln) {
			continue
		}
		if len(evs) == maxBatch {
			return nil, &BatchTooLargeError{Max: maxBatch}
		}
		start := len(out)
		ok := c.value(0)
		if ok {
			c.skipWS()
			if c.i < len(ln) {
				ok = c.fail("unexpected " + quoteByte(ln[c.i]) + " after the event (one event per line)")
			}
		}
		if !ok {
			evs = append(evs, rawEvent{line: line, err: syntaxAt(ln, c.i, line, c.err)})
			continue
		}
		out = c.out
		evs = append(evs, rawEvent{raw: out[start:len(out):len(out)], line: line})
	}
	if len(evs) == 0 {
		return nil, ErrNoEvents
	}
	return evs, nil
}
