package query

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// maxBody bounds JSON request bodies.
const maxBody = 64 << 10

// decodeBody decodes the JSON request body into v, refusing unknown fields
// and trailing data; errors are 400s naming the field when known.
func decodeBody(c *fiber.Ctx, v any) error {
	raw := c.Body()
	if len(raw) > maxBody {
		return badBody("", "request body larger than %d bytes", maxBody)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return badBody("", "a JSON object body is required")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.Decode(new(json.RawMessage)) != io.EOF {
		err = errors.New("trailing data after the JSON object")
	}
	if err == nil {
		return nil
	}
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typeErr):
		return badBody(typeErr.Field, "%s: want a JSON %s", typeErr.Field, typeErr.Type.Kind())
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return badBody(field, "unknown field %q", field)
	default:
		return badBody("", "invalid JSON body: %v", err)
	}
}
