package telemetry

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestCheckText(t *testing.T) {
	tests := []struct {
		name     string
		s        string
		id, free bool // accepted as Identifier, as FreeText
		clean    string
	}{
		{"empty", "", true, true, ""},
		{"plain", "ASG-1", true, true, "ASG-1"},
		{"Chinese", "富世镇 12号", true, true, "富世镇 12号"},
		{"NUL", "a\x00b", false, false, "ab"},
		{"trailing NUL", "fault\x00", false, false, "fault"},
		{"tab", "a\tb", false, true, "a\tb"},
		{"line breaks", "a\r\nb", false, true, "a\r\nb"},
		{"escape", "a\x1b[31mb", false, false, "a[31mb"},
		{"DEL", "a\x7fb", false, false, "ab"},
		{"C1 NEL", "a\u0085b", false, false, "ab"},
		{"invalid UTF-8", "a\xffb", false, false, "ab"},
		{"truncated UTF-8", "富"[:2], false, false, ""},
		{"replacement character itself", "a\uFFFDb", true, true, "a\uFFFDb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CheckText(tt.s, Identifier) == nil; got != tt.id {
				t.Errorf("CheckText(%q, Identifier) accepted = %v, want %v", tt.s, got, tt.id)
			}
			if got := CheckText(tt.s, FreeText) == nil; got != tt.free {
				t.Errorf("CheckText(%q, FreeText) accepted = %v, want %v", tt.s, got, tt.free)
			}
			if got := CleanText(tt.s, FreeText); got != tt.clean {
				t.Errorf("CleanText(%q, FreeText) = %q, want %q", tt.s, got, tt.clean)
			}
		})
	}
}

func TestCheckTextSaysWhere(t *testing.T) {
	err := CheckText("ab\x00", FreeText)
	if err == nil || !strings.Contains(err.Error(), "U+0000") || !strings.Contains(err.Error(), "byte 2") {
		t.Fatalf("CheckText: %v, want the character and its offset", err)
	}
}

// FuzzCheckText holds the rule to its definition: valid UTF-8 without
// the control characters of unicode.IsControl, tab, LF and CR excepted in
// FreeText; and CleanText yields what CheckText accepts, unchanged when it
// already does.
func FuzzCheckText(f *testing.F) {
	for _, s := range []string{"", "ASG-1", "a\x00", "\t\r\n", "\x7f\u0085", "\xff\xfe", "富世镇", "\U0010FFFF"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, k := range []TextKind{Identifier, FreeText} {
			want := utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool {
				return unicode.IsControl(r) && !(k == FreeText && (r == '\t' || r == '\n' || r == '\r'))
			})
			if got := CheckText(s, k) == nil; got != want {
				t.Fatalf("CheckText(%q, %d) accepted = %v, want %v", s, k, got, want)
			}
			c := CleanText(s, k)
			if err := CheckText(c, k); err != nil {
				t.Fatalf("CleanText(%q, %d) = %q, which CheckText refuses: %v", s, k, c, err)
			}
			if want && c != s {
				t.Fatalf("CleanText(%q, %d) = %q, want it unchanged", s, k, c)
			}
		}
		if CheckText(s, Identifier) == nil && CheckText(s, FreeText) != nil {
			t.Fatalf("%q is an Identifier but not FreeText", s)
		}
	})
}
