package query

import (
	"context"
	"errors"
	"fmt"

	"github.com/gofiber/fiber/v2"
)

// APIError is an error with its HTTP status and JSON body
// {"code","message","param"}; the error handler writes it.
type APIError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Param   string `json:"param,omitempty"`
}

// Error returns the message.
func (e *APIError) Error() string { return e.Message }

// badParam is a 400 for query parameter param.
func badParam(param, format string, args ...any) *APIError {
	return &APIError{Status: fiber.StatusBadRequest, Code: "invalid_param", Message: fmt.Sprintf(format, args...), Param: param}
}

// badBody is a 400 for field param of the JSON request body.
func badBody(param, format string, args ...any) *APIError {
	return &APIError{Status: fiber.StatusBadRequest, Code: "invalid_body", Message: fmt.Sprintf(format, args...), Param: param}
}

// notFound is a 404 that reads the same for another reseller's object as
// for one that does not exist.
func notFound(what string) *APIError {
	return &APIError{Status: fiber.StatusNotFound, Code: "not_found", Message: what + " not found"}
}

var (
	errNoNATS = &APIError{Status: fiber.StatusServiceUnavailable, Code: "unavailable",
		Message: "this query service has no NATS connection (start it with --nats-url) and cannot send test alerts"}
	errUnauthorized = &APIError{Status: fiber.StatusUnauthorized, Code: "unauthorized",
		Message: `missing, unknown or revoked API key: send "Authorization: Bearer <key>"`}
	errOtherReseller = &APIError{Status: fiber.StatusForbidden, Code: "forbidden",
		Message: "this key belongs to another reseller", Param: "reseller"}
	errOrgNotFound   = &APIError{Status: fiber.StatusNotFound, Code: "not_found", Message: "organization not found"}
	errNoRevenue     = &APIError{Status: fiber.StatusForbidden, Code: "forbidden", Message: "revenue is not enabled for this key"}
	errRouteNotFound = &APIError{Status: fiber.StatusNotFound, Code: "not_found", Message: "no such route"}
	errTimeout       = &APIError{Status: fiber.StatusGatewayTimeout, Code: "timeout", Message: "the query took too long: narrow the time range or filters"}
	errInternal      = &APIError{Status: fiber.StatusInternalServerError, Code: "internal", Message: "internal error"}
)

// errorHandler is the app's one error handler: typed errors to status and body.
func (q *Query) errorHandler(c *fiber.Ctx, err error) error {
	var (
		api  *APIError
		ferr *fiber.Error
	)
	switch {
	case errors.As(err, &api):
	case errors.Is(err, context.DeadlineExceeded):
		api = errTimeout
	case errors.As(err, &ferr) && ferr.Code == fiber.StatusNotFound:
		api = errRouteNotFound
	case errors.As(err, &ferr) && ferr.Code < 500:
		api = &APIError{Status: ferr.Code, Code: "bad_request", Message: ferr.Message}
	default:
		q.log.Error("query request failed", "method", c.Method(), "path", c.Path(), "err", err)
		api = errInternal
	}
	return c.Status(api.Status).JSON(api)
}
