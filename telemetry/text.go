package telemetry

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// TextKind says which characters a field of text from outside may hold.
type TextKind int

// The kinds of text CheckText knows.
const (
	// Identifier is an id, a username, a source system's name: no
	// control character at all.
	Identifier TextKind = iota
	// FreeText is what a person writes (an address, a decline reason):
	// it may also hold tab, line feed and carriage return.
	FreeText
)

// CheckText is Lifeline's one rule for text that comes from outside (MQTT
// payloads, HTTP bodies and sign-ins): it must be valid UTF-8 and hold no
// control character (C0, DEL, C1), except that FreeText may hold tab, line
// feed and carriage return. A NUL, which PostgreSQL cannot store in text,
// is thus refused at the edge, with the field's name, instead of failing a
// write deep inside; so are the characters that corrupt logs and
// terminals. The error says what and where (a byte offset).
func CheckText(s string, k TextKind) error {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if !allowed(rune(c), k) {
				return fmt.Errorf("control character %U at byte %d", c, i)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			return fmt.Errorf("invalid UTF-8 at byte %d", i)
		}
		if !allowed(r, k) {
			return fmt.Errorf("control character %U at byte %d", r, i)
		}
		i += n
	}
	return nil
}

// CleanText returns s without what CheckText refuses: the bytes of
// invalid UTF-8 and the control characters k does not allow. It is for
// text that must not be lost to a stray byte, such as a crew's decline
// reason from terminal firmware that ends its strings with a NUL.
func CleanText(s string, k TextKind) string {
	if CheckText(s, k) == nil {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if !(r == utf8.RuneError && n == 1) && allowed(r, k) {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// allowed reports whether r may stand in text of kind k.
func allowed(r rune, k TextKind) bool {
	switch {
	case r < 0x20:
		return k == FreeText && (r == '\t' || r == '\n' || r == '\r')
	case r >= 0x7f && r <= 0x9f: // DEL and the C1 controls
		return false
	}
	return true
}
