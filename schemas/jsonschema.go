package schemas

import (
	"embed"
)

//go:embed v1/*.json
var schemaFiles embed.FS

//go:embed examples/*.json
var exampleFiles embed.FS

// JSONSchema returns the JSON Schema (draft 2020-12) of an event type, e.g.
// JSONSchema("job.completed"), describing envelope and data; "envelope"
// returns the envelope schema, which checks data through the type files.
func JSONSchema(typ string) ([]byte, bool) {
	if typ != "envelope" && typeSpecs[typ] == nil {
		return nil, false
	}
	b, err := schemaFiles.ReadFile("v1/" + typ + ".json")
	return b, err == nil
}

// Example returns a valid example event of typ as indented JSON (the file
// examples/<typ>.json). Its time lies in the past: it passes Decode.
func Example(typ string) ([]byte, bool) {
	if typeSpecs[typ] == nil {
		return nil, false
	}
	b, err := exampleFiles.ReadFile("examples/" + typ + ".json")
	return b, err == nil
}
