package ingest

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/gofiber/fiber/v2"
)

// Request-level errors; the error handler maps them to status codes.
var (
	// ErrUnauthorized: no or unknown ingest key (401).
	ErrUnauthorized = errors.New(`missing or invalid ingest key: send "Authorization: Bearer <key>"`)
	// ErrNoEvents: the body holds no event (400).
	ErrNoEvents = errors.New("the request body holds no events")
	// ErrNotReady: NATS or the events stream is unreachable (503 on /readyz).
	ErrNotReady = errors.New("not ready")
)

// MediaTypeError is an unsupported Content-Type or Content-Encoding (415).
type MediaTypeError struct{ Got string }

// Error names the type received and the types accepted.
func (e *MediaTypeError) Error() string {
	return fmt.Sprintf("unsupported content type %q: use application/json, application/cloudevents+json, "+
		"application/cloudevents-batch+json or application/x-ndjson (UTF-8, no content encoding)", e.Got)
}

// ShapeError is a body of valid JSON in the wrong shape for its content type,
// e.g. an array sent as application/cloudevents+json (400).
type ShapeError struct{ Msg string }

// Error returns the message.
func (e *ShapeError) Error() string { return e.Msg }

// BatchTooLargeError is a request with more events than Config.MaxBatch (413).
type BatchTooLargeError struct{ Max int }

// Error states the limit.
func (e *BatchTooLargeError) Error() string {
	return "batch has more than " + strconv.Itoa(e.Max) + " events, the limit per request: split it"
}

// errorBody is the JSON body of every request-level error.
type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
}

// classify maps an error to its status code and body.
func (in *Ingest) classify(err error) (int, errorBody) {
	var (
		syn   *SyntaxError
		media *MediaTypeError
		shape *ShapeError
		batch *BatchTooLargeError
		ferr  *fiber.Error
	)
	switch {
	case errors.Is(err, ErrUnauthorized):
		return fiber.StatusUnauthorized, errorBody{Code: "unauthorized", Message: err.Error()}
	case errors.Is(err, ErrNoEvents):
		return fiber.StatusBadRequest, errorBody{Code: "no_events", Message: err.Error()}
	case errors.Is(err, ErrNotReady):
		return fiber.StatusServiceUnavailable, errorBody{Code: "not_ready", Message: err.Error()}
	case errors.As(err, &syn):
		return fiber.StatusBadRequest, errorBody{Code: "invalid_json", Message: err.Error(), Line: syn.Line, Column: syn.Column}
	case errors.As(err, &shape):
		return fiber.StatusBadRequest, errorBody{Code: "invalid_body", Message: err.Error()}
	case errors.As(err, &media):
		return fiber.StatusUnsupportedMediaType, errorBody{Code: "unsupported_media_type", Message: err.Error()}
	case errors.As(err, &batch):
		return fiber.StatusRequestEntityTooLarge, errorBody{Code: "batch_too_large", Message: err.Error()}
	case errors.As(err, &ferr) && ferr.Code == fiber.StatusRequestEntityTooLarge:
		return ferr.Code, errorBody{Code: "body_too_large", Message: "request body is larger than " +
			strconv.Itoa(in.cfg.MaxBodyBytes) + " bytes, the limit per request: split the batch (at most " +
			strconv.Itoa(in.cfg.MaxBatch) + " events per request)"}
	case errors.As(err, &ferr):
		return ferr.Code, errorBody{Code: codeFor(ferr.Code), Message: ferr.Message}
	default:
		return fiber.StatusInternalServerError, errorBody{Code: "internal", Message: "internal error"}
	}
}

func codeFor(status int) string {
	switch status {
	case fiber.StatusNotFound:
		return "not_found"
	case fiber.StatusMethodNotAllowed:
		return "method_not_allowed"
	case fiber.StatusRequestTimeout:
		return "timeout"
	case fiber.StatusRequestHeaderFieldsTooLarge:
		return "headers_too_large"
	case fiber.StatusBadRequest:
		return "bad_request"
	default:
		return "error"
	}
}

// writeError answers a request-level error.
func (in *Ingest) writeError(c *fiber.Ctx, err error) error {
	status, body := in.classify(err)
	if status == fiber.StatusInternalServerError {
		in.log.Error("ingest request failed", "method", c.Method(), "path", c.Path(), "err", err)
	}
	if status == fiber.StatusUnauthorized {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="tally ingest"`)
	}
	return c.Status(status).JSON(body)
}

// errorHandler is the Fiber ErrorHandler. Route errors pass through the
// instrument middleware, which writes them itself; errors raised by the
// HTTP server before routing (body over the limit, timeouts) arrive here.
func (in *Ingest) errorHandler(c *fiber.Ctx, err error) error {
	werr := in.writeError(c, err)
	in.metrics.request(c.Response().StatusCode(), 0)
	return werr
}
