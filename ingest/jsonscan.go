package ingest

import (
	"bytes"
	"strconv"
)

// SyntaxError is malformed JSON in a request body.
type SyntaxError struct {
	// Line and Column are 1-based; Column counts bytes.
	Line, Column int
	// Offset is the 0-based byte offset in the body.
	Offset int
	Msg    string
}

// Error returns "invalid JSON at line L, column C: msg".
func (e *SyntaxError) Error() string {
	return "invalid JSON at line " + strconv.Itoa(e.Line) + ", column " + strconv.Itoa(e.Column) + ": " + e.Msg
}

// syntaxAt builds a SyntaxError for offset off of body; base is the line
// number of body's first line (1 for a whole body, the line's own number
// for an NDJSON line).
func syntaxAt(body []byte, off, base int, msg string) *SyntaxError {
	line := base + bytes.Count(body[:off], []byte{'\n'})
	col := off + 1
	if nl := bytes.LastIndexByte(body[:off], '\n'); nl >= 0 {
		col = off - nl
	}
	return &SyntaxError{Line: line, Column: col, Offset: off, Msg: msg}
}

// maxNesting bounds nesting depth, so hostile input cannot exhaust the stack.
const maxNesting = 64

// compactor checks JSON syntax and copies values without insignificant
// whitespace into out, in one pass over the input. Event bodies become
// sub-slices of out, which is allocated once per request with the body's
// length (compacting never grows JSON).
type compactor struct {
	in  []byte
	i   int
	out []byte
	err string // first error message; position is c.i
}

func (c *compactor) fail(msg string) bool {
	if c.err == "" {
		c.err = msg
	}
	return false
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

func (c *compactor) skipWS() {
	for c.i < len(c.in) && isSpace(c.in[c.i]) {
		c.i++
	}
}

// value reads one JSON value at c.i (after whitespace) and appends it.
func (c *compactor) value(depth int) bool {
	c.skipWS()
	if c.i >= len(c.in) {
		return c.fail("unexpected end of input, expecting a value")
	}
	switch b := c.in[c.i]; {
	case b == '{':
		return c.object(depth + 1)
	case b == '[':
		return c.array(depth + 1)
	case b == '"':
		return c.str()
	case b == '-' || b >= '0' && b <= '9':
		return c.number()
	case b == 't':
		return c.literal("true")
	case b == 'f':
		return c.literal("false")
	case b == 'n':
		return c.literal("null")
	default:
		return c.fail("unexpected " + quoteByte(b) + ", expecting a value")
	}
}

func (c *compactor) object(depth int) bool {
	if depth > maxNesting {
		return c.fail("nested too deeply")
	}
	c.out = append(c.out, '{')
	c.i++
	c.skipWS()
	if c.i < len(c.in) && c.in[c.i] == '}' {
		c.out = append(c.out, '}')
		c.i++
		return true
	}
	for {
		c.skipWS()
		if c.i >= len(c.in) {
			return c.fail("unexpected end of input in object")
		}
		if c.in[c.i] != '"' {
			return c.fail("unexpected " + quoteByte(c.in[c.i]) + ", expecting a string key")
		}
		if !c.str() {
			return false
		}
		c.skipWS()
		if c.i >= len(c.in) || c.in[c.i] != ':' {
			return c.fail(c.unexpected("':' after object key"))
		}
		c.out = append(c.out, ':')
		c.i++
		if !c.value(depth) {
			return false
		}
		c.skipWS()
		if c.i >= len(c.in) {
			return c.fail("unexpected end of input in object, expecting ',' or '}'")
		}
		switch c.in[c.i] {
		case ',':
			c.out = append(c.out, ',')
			c.i++
		case '}':
			c.out = append(c.out, '}')
			c.i++
			return true
		default:
			return c.fail("unexpected " + quoteByte(c.in[c.i]) + " in object, expecting ',' or '}'")
		}
	}
}

func (c *compactor) array(depth int) bool {
	if depth > maxNesting {
		return c.fail("nested too deeply")
	}
	c.out = append(c.out, '[')
	c.i++
	c.skipWS()
	if c.i < len(c.in) && c.in[c.i] == ']' {
		c.out = append(c.out, ']')
		c.i++
		return true
	}
	for {
		if !c.value(depth) {
			return false
		}
		c.skipWS()
		if c.i >= len(c.in) {
			return c.fail("unexpected end of input in array, expecting ',' or ']'")
		}
		switch c.in[c.i] {
		case ',':
			c.out = append(c.out, ',')
			c.i++
		case ']':
			c.out = append(c.out, ']')
			c.i++
			return true
		default:
			return c.fail("unexpected " + quoteByte(c.in[c.i]) + " in array, expecting ',' or ']'")
		}
	}
}

// str copies a string literal, checking escapes and control characters.
func (c *compactor) str() bool {
	start := c.i
	c.i++
	for c.i < len(c.in) {
		b := c.in[c.i]
		switch {
		case b == '"':
			c.i++
			c.out = append(c.out, c.in[start:c.i]...)
			return true
		case b == '\\':
			if c.i+1 >= len(c.in) {
				c.i++
				return c.fail("unexpected end of input in string escape")
			}
			switch c.in[c.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				c.i += 2
			case 'u':
				if c.i+6 > len(c.in) || !isHex(c.in[c.i+2]) || !isHex(c.in[c.i+3]) || !isHex(c.in[c.i+4]) || !isHex(c.in[c.i+5]) {
					c.i++
					return c.fail(`invalid \u escape in string`)
				}
				c.i += 6
			default:
				c.i++
				return c.fail("invalid escape " + quoteByte(c.in[c.i]) + " in string")
			}
		case b < 0x20:
			return c.fail("control character " + quoteByte(b) + " in string (newlines must be escaped)")
		default:
			c.i++
		}
	}
	return c.fail("unexpected end of input in string")
}

func isHex(b byte) bool { return b >= '0' && b <= '9' || b >= 'a' && b <= 'f' || b >= 'A' && b <= 'F' }

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

func (c *compactor) number() bool {
	start := c.i
	if c.in[c.i] == '-' {
		c.i++
	}
	switch {
	case c.i < len(c.in) && c.in[c.i] == '0':
		c.i++
	case c.i < len(c.in) && isDigit(c.in[c.i]):
		for c.i < len(c.in) && isDigit(c.in[c.i]) {
			c.i++
		}
	default:
		return c.fail(c.unexpected("digit in number"))
	}
	if c.i < len(c.in) && c.in[c.i] == '.' {
		c.i++
		if c.i >= len(c.in) || !isDigit(c.in[c.i]) {
			return c.fail(c.unexpected("digit after decimal point"))
		}
		for c.i < len(c.in) && isDigit(c.in[c.i]) {
			c.i++
		}
	}
	if c.i < len(c.in) && (c.in[c.i] == 'e' || c.in[c.i] == 'E') {
		c.i++
		if c.i < len(c.in) && (c.in[c.i] == '+' || c.in[c.i] == '-') {
			c.i++
		}
		if c.i >= len(c.in) || !isDigit(c.in[c.i]) {
			return c.fail(c.unexpected("digit in exponent"))
		}
		for c.i < len(c.in) && isDigit(c.in[c.i]) {
			c.i++
		}
	}
	c.out = append(c.out, c.in[start:c.i]...)
	return true
}

func (c *compactor) literal(lit string) bool {
	if len(c.in)-c.i < len(lit) || string(c.in[c.i:c.i+len(lit)]) != lit {
		return c.fail("invalid literal, expecting " + lit)
	}
	c.i += len(lit)
	c.out = append(c.out, lit...)
	return true
}

// unexpected describes the byte at c.i when something else was expected.
func (c *compactor) unexpected(want string) string {
	if c.i >= len(c.in) {
		return "unexpected end of input, expecting " + want
	}
	return "unexpected " + quoteByte(c.in[c.i]) + ", expecting " + want
}

func quoteByte(b byte) string {
	if b >= 0x20 && b < 0x7f {
		return "'" + string(rune(b)) + "'"
	}
	return "byte 0x" + strconv.FormatUint(uint64(b), 16)
}
