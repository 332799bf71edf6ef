package schemas

import (
	"strconv"
	"unicode/utf8"
)

// maxDepth bounds nesting inside values tally does not interpret (unknown
// fields), so hostile input cannot exhaust the stack.
const maxDepth = 64

// jsonKind is the JSON type of a value, for "must be a number, got string".
type jsonKind uint8

const (
	jString jsonKind = iota
	jNumber
	jObject
	jArray
	jBool
	jNull
)

func (k jsonKind) String() string {
	switch k {
	case jString:
		return "string"
	case jNumber:
		return "number"
	case jObject:
		return "object"
	case jArray:
		return "array"
	case jBool:
		return "boolean"
	default:
		return "null"
	}
}

// syntaxError is malformed JSON; parsing stops at the first one.
type syntaxError struct {
	off   int
	msg   string
	field string // JSON path of the value being read, if known
}

func (e *syntaxError) Error() string {
	return "invalid JSON at offset " + strconv.Itoa(e.off) + ": " + e.msg
}

// scanner reads JSON from a string so that unescaped strings are substrings
// of the input and cost no allocation.
type scanner struct {
	s     string
	i     int
	depth int
}

// plain marks bytes that can appear in a JSON string without escaping and
// need no UTF-8 check.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func (sc *scanner) fail(msg string) error { return &syntaxError{off: sc.i, msg: msg} }

func (sc *scanner) skipWS() {
	for sc.i < len(sc.s) {
		switch sc.s[sc.i] {
		case ' ', '\t', '\n', '\r':
			sc.i++
		default:
			return
		}
	}
}

// eof reports whether only whitespace is left.
func (sc *scanner) eof() bool {
	sc.skipWS()
	return sc.i >= len(sc.s)
}

// peek returns the kind of the value at the cursor (after whitespace).
func (sc *scanner) peek() (jsonKind, error) {
	sc.skipWS()
	if sc.i >= len(sc.s) {
		return 0, sc.fail("unexpected end of input")
	}
	switch c := sc.s[sc.i]; {
	case c == '"':
		return jString, nil
	case c == '{':
		return jObject, nil
	case c == '[':
		return jArray, nil
	case c == 't' || c == 'f':
		return jBool, nil
	case c == 'n':
		return jNull, nil
	case c == '-' || c >= '0' && c <= '9':
		return jNumber, nil
	default:
		return 0, sc.fail("unexpected character " + strconv.QuoteRune(rune(c)))
	}
}

// str reads a string at the cursor (which is at '"').
func (sc *scanner) str() (string, error) {
	s := sc.s
	start := sc.i + 1
	i := start
	for i < len(s) {
		c := s[i]
		if plain[c] {
			i++
			continue
		}
		switch {
		case c == '"':
			sc.i = i + 1
			return s[start:i], nil
		case c == '\\':
			return sc.strEscaped(start, i)
		case c < 0x20:
			sc.i = i
			return "", sc.fail("control character in string")
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				sc.i = i
				return "", sc.fail("invalid UTF-8 in string")
			}
			i += size
		}
	}
	sc.i = i
	return "", sc.fail("unterminated string")
}

// strEscaped finishes a string that contains escapes; s[start:i] is plain.
func (sc *scanner) strEscaped(start, i int) (string, error) {
	s := sc.s
	buf := make([]byte, 0, len(s[start:i])+16)
	buf = append(buf, s[start:i]...)
	for i < len(s) {
		c := s[i]
		switch {
		case plain[c]:
			buf = append(buf, c)
			i++
		case c == '"':
			sc.i = i + 1
			return string(buf), nil
		case c < 0x20:
			sc.i = i
			return "", sc.fail("control character in string")
		case c >= 0x80:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				sc.i = i
				return "", sc.fail("invalid UTF-8 in string")
			}
			buf = append(buf, s[i:i+size]...)
			i += size
		default: // backslash
			if i+1 >= len(s) {
				sc.i = i
				return "", sc.fail("unterminated string")
			}
			switch e := s[i+1]; e {
			case '"', '\\', '/':
				buf = append(buf, e)
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'u':
				r, ok := hex4(s, i+2)
				if !ok {
					sc.i = i
					return "", sc.fail(`invalid \u escape`)
				}
				i += 6
				if r >= 0xD800 && r < 0xDC00 {
					// High surrogate: combine with a following low one;
					// a lone surrogate becomes U+FFFD as in encoding/json.
					if i+1 < len(s) && s[i] == '\\' && s[i+1] == 'u' {
						if r2, ok := hex4(s, i+2); ok && r2 >= 0xDC00 && r2 < 0xE000 {
							r = (r-0xD800)<<10 | (r2 - 0xDC00) + 0x10000
							i += 6
						} else {
							r = utf8.RuneError
						}
					} else {
						r = utf8.RuneError
					}
				} else if r >= 0xDC00 && r < 0xE000 {
					r = utf8.RuneError
				}
				buf = utf8.AppendRune(buf, r)
				continue
			default:
				sc.i = i
				return "", sc.fail("invalid escape " + strconv.Quote(s[i:i+2]))
			}
			i += 2
		}
	}
	sc.i = i
	return "", sc.fail("unterminated string")
}

func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[i : i+4]) {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// number reads a number literal; integral is false if it has a fraction or
// an exponent.
func (sc *scanner) number() (lit string, integral bool, err error) {
	s := sc.s
	start, i := sc.i, sc.i
	integral = true
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() bool {
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i > j
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		digits()
	default:
		sc.i = i
		return "", false, sc.fail("invalid number")
	}
	if i < len(s) && s[i] == '.' {
		integral = false
		i++
		if !digits() {
			sc.i = i
			return "", false, sc.fail("invalid number")
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		integral = false
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if !digits() {
			sc.i = i
			return "", false, sc.fail("invalid number")
		}
	}
	sc.i = i
	return s[start:i], integral, nil
}

func (sc *scanner) literal() (bool, error) {
	for _, w := range [...]string{"true", "false", "null"} {
		if len(sc.s)-sc.i >= len(w) && sc.s[sc.i:sc.i+len(w)] == w {
			sc.i += len(w)
			return w == "true", nil
		}
	}
	return false, sc.fail("invalid literal")
}

// key reads the next key of an object whose '{' has been consumed; ok is
// false at the closing '}'. first must be true for the first call.
func (sc *scanner) key(first bool) (key string, ok bool, err error) {
	sc.skipWS()
	if sc.i >= len(sc.s) {
		return "", false, sc.fail("unexpected end of input")
	}
	c := sc.s[sc.i]
	if c == '}' {
		sc.i++
		return "", false, nil
	}
	if !first {
		if c != ',' {
			return "", false, sc.fail("expected ',' or '}' after object member")
		}
		sc.i++
		sc.skipWS()
	}
	if sc.i >= len(sc.s) || sc.s[sc.i] != '"' {
		return "", false, sc.fail("expected string key")
	}
	if key, err = sc.str(); err != nil {
		return "", false, err
	}
	sc.skipWS()
	if sc.i >= len(sc.s) || sc.s[sc.i] != ':' {
		return "", false, sc.fail("expected ':' after object key")
	}
	sc.i++
	return key, true, nil
}

// skip reads and discards one value, checking its syntax.
func (sc *scanner) skip() error {
	k, err := sc.peek()
	if err != nil {
		return err
	}
	switch k {
	case jString:
		_, err = sc.str()
	case jNumber:
		_, _, err = sc.number()
	case jBool, jNull:
		_, err = sc.literal()
	case jObject:
		if sc.depth++; sc.depth > maxDepth {
			return sc.fail("nesting too deep")
		}
		sc.i++
		for first := true; ; first = false {
			_, ok, err := sc.key(first)
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			if err := sc.skip(); err != nil {
				return err
			}
		}
		sc.depth--
	case jArray:
		if sc.depth++; sc.depth > maxDepth {
			return sc.fail("nesting too deep")
		}
		sc.i++
		sc.skipWS()
		if sc.i < len(sc.s) && sc.s[sc.i] == ']' {
			sc.i++
		} else {
			for {
				if err := sc.skip(); err != nil {
					return err
				}
				sc.skipWS()
				if sc.i >= len(sc.s) {
					return sc.fail("unexpected end of input")
				}
				if sc.s[sc.i] == ']' {
					sc.i++
					break
				}
				if sc.s[sc.i] != ',' {
					return sc.fail("expected ',' or ']' after array element")
				}
				sc.i++
			}
		}
		sc.depth--
	}
	return err
}
