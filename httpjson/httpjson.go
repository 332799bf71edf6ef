// Package httpjson is the JSON encoding tally's HTTP APIs (ingest, query)
// share, so their responses read the same.
package httpjson

import (
	"bytes"
	"encoding/json"
)

// Marshal is json.Marshal without HTML escaping: field names like "<key>"
// and reasons like "must be > 0" stay readable in responses.
func Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'}), nil
}
