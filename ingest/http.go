package ingest

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tallyhq/tally/httpjson"
	"github.com/tallyhq/tally/publish"
	"github.com/tallyhq/tally/schemas"
	"github.com/tallyhq/tally/stream"
)

// retryAfterSeconds is the Retry-After of 503 answers.
const retryAfterSeconds = "5"

func (in *Ingest) newApp() *fiber.App {
	app := fiber.New(fiber.Config{
		AppName:               "tally-ingest",
		BodyLimit:             in.cfg.MaxBodyBytes,
		ReadTimeout:           in.cfg.ReadTimeout,
		WriteTimeout:          in.cfg.WriteTimeout,
		IdleTimeout:           in.cfg.IdleTimeout,
		DisableStartupMessage: true,
		ErrorHandler:          in.errorHandler,
		JSONEncoder:           httpjson.Marshal,
	})
	app.Use(in.instrument)
	app.Get("/healthz", in.healthz)
	app.Get("/readyz", in.readyz)
	app.Post("/v1/events", in.authenticate, in.postEvents)
	return app
}

// instrument writes route errors through the error handler and records the
// request metrics.
func (in *Ingest) instrument(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	if err != nil {
		if werr := in.writeError(c, err); werr != nil {
			return werr
		}
	}
	in.metrics.request(c.Response().StatusCode(), time.Since(start))
	return nil
}

func (in *Ingest) authenticate(c *fiber.Ctx) error {
	auth := c.Get(fiber.HeaderAuthorization)
	const prefix = "Bearer "
	if len(auth) <= len(prefix) || !strings.EqualFold(auth[:len(prefix)], prefix) {
		return ErrUnauthorized
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(auth[len(prefix):])))
	ok := 0
	for i := range in.keys {
		ok |= subtle.ConstantTimeCompare(sum[:], in.keys[i][:])
	}
	if ok != 1 {
		return ErrUnauthorized
	}
	return c.Next()
}

func (in *Ingest) healthz(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok"})
}

func (in *Ingest) readyz(c *fiber.Ctx) error {
	if nc := in.js.Conn(); nc == nil || !nc.IsConnected() {
		return errors.Join(ErrNotReady, errors.New("NATS not connected"))
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
	defer cancel()
	if _, err := in.js.Stream(ctx, stream.EventsStream); err != nil {
		return errors.Join(ErrNotReady, err)
	}
	return c.JSON(fiber.Map{"status": "ready"})
}

// response is the body of POST /v1/events.
type response struct {
	Accepted    int `json:"accepted"`
	Duplicates  int `json:"duplicates"`
	Rejected    int `json:"rejected"`
	Unavailable int `json:"unavailable,omitempty"`
	// Code and Message are set on 503.
	Code    string   `json:"code,omitempty"`
	Message string   `json:"message,omitempty"`
	Results []result `json:"results"`
}

// result is one event's outcome.
type result struct {
	Index  int            `json:"index"`
	Line   int            `json:"line,omitempty"`
	ID     string         `json:"id,omitempty"`
	Status publish.Status `json:"status"`
	Error  *problem       `json:"error,omitempty"`
	Errors []problem      `json:"errors,omitempty"`
}

type problem struct {
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
}

func (in *Ingest) postEvents(c *fiber.Ctx) error {
	f, err := mediaFormat(c.Get(fiber.HeaderContentType))
	if err != nil {
		return err
	}
	if enc := c.Get(fiber.HeaderContentEncoding); enc != "" && !strings.EqualFold(enc, "identity") {
		return &MediaTypeError{Got: c.Get(fiber.HeaderContentType) + "; Content-Encoding: " + enc}
	}
	raws, err := split(f, c.Body(), in.cfg.MaxBatch)
	if err != nil {
		return err
	}

	// Each valid event is published as soon as it is decoded, so decoding
	// overlaps JetStream storing the previous ones.
	resp := &response{Results: make([]result, len(raws))}
	batch := in.pub.NewBatch(c.UserContext(), len(raws))
	pos := make([]int, 0, len(raws)) // the k-th published event is raws[pos[k]]
	for i, r := range raws {
		res := &resp.Results[i]
		res.Index, res.Line = i, r.line
		if r.err != nil {
			reject(res, []schemas.FieldError{{Reason: r.err.Error()}})
			continue
		}
		ev, err := schemas.Decode(r.raw)
		if err != nil {
			var ve *schemas.ValidationError
			if !errors.As(err, &ve) {
				ve = &schemas.ValidationError{Problems: []schemas.FieldError{{Reason: err.Error()}}}
			}
			res.ID = ve.EventID
			reject(res, ve.Problems)
			continue
		}
		res.ID = ev.ID
		batch.Add(publish.RawEvent{Event: ev, Body: r.raw})
		pos = append(pos, i)
	}
	prs, perr := batch.Wait()
	for k, pr := range prs {
		res := &resp.Results[pos[k]]
		res.Status = pr.Status
		switch pr.Status {
		case publish.StatusRejected:
			var ve *schemas.ValidationError
			if errors.As(pr.Err, &ve) {
				reject(res, ve.Problems)
			} else {
				reject(res, []schemas.FieldError{{Reason: pr.Err.Error()}})
			}
		case publish.StatusUnavailable:
			res.Error = &problem{Reason: "not confirmed by NATS JetStream; retry (safe: events are deduplicated by id)"}
		}
	}
	if perr != nil {
		in.log.Warn("ingest: events not confirmed by JetStream", "events", len(pos), "err", perr)
	}

	for i := range resp.Results {
		switch resp.Results[i].Status {
		case publish.StatusAccepted:
			resp.Accepted++
		case publish.StatusDuplicate:
			resp.Duplicates++
		case publish.StatusRejected:
			resp.Rejected++
		case publish.StatusUnavailable:
			resp.Unavailable++
		}
	}
	in.metrics.count(resp)

	status := fiber.StatusOK
	switch {
	case resp.Unavailable > 0:
		status = fiber.StatusServiceUnavailable
		resp.Code = "unavailable"
		resp.Message = "NATS JetStream is unavailable; retry the whole request later (safe: events are deduplicated by id)"
		c.Set(fiber.HeaderRetryAfter, retryAfterSeconds)
	case resp.Rejected == len(resp.Results):
		status = fiber.StatusBadRequest
	case resp.Rejected > 0:
		status = fiber.StatusMultiStatus
	}
	return c.Status(status).JSON(resp)
}

// reject marks res rejected with the event's problems.
func reject(res *result, ps []schemas.FieldError) {
	res.Status = publish.StatusRejected
	if len(ps) == 0 {
		ps = []schemas.FieldError{{Reason: "invalid event"}}
	}
	res.Errors = make([]problem, len(ps))
	for i, p := range ps {
		res.Errors[i] = problem{Field: p.Field, Reason: p.Reason}
	}
	res.Error = &res.Errors[0]
}
