package web

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lifeline-ems/lifeline/dispatch"
)

// decode reads one JSON object from the body into v. Bodies over limit,
// unknown fields (they signal a client bug: a misspelt field would
// otherwise be silently ignored), wrong types and trailing data are
// invalid requests, each with its reason; nothing is applied.
func decode(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	body := http.MaxBytesReader(w, r.Body, limit)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	reject := func(reason, format string, args ...any) error {
		return &rejection{reason: reason, err: dispatch.Errorf(dispatch.CodeInvalid, format, args...)}
	}
	tooLarge := func() error {
		return &rejection{reason: reasonTooLarge, status: http.StatusRequestEntityTooLarge, err: dispatch.Errorf(dispatch.CodeInvalid, "request body is over %d bytes", limit)}
	}
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		var syntax *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &tooBig):
			return tooLarge()
		case errors.As(err, &syntax):
			return reject(reasonMalformed, "malformed JSON at byte %d", syntax.Offset)
		case errors.As(err, &typ):
			if typ.Field == "" {
				return reject(reasonWrongType, "want a JSON object, got a JSON %s", typ.Value)
			}
			return reject(reasonWrongType, "field %q: want a %s, got a JSON %s", typ.Field, typ.Type, typ.Value)
		case errors.Is(err, io.EOF):
			return reject(reasonMalformed, "empty request body: want a JSON object")
		case errors.Is(err, io.ErrUnexpectedEOF):
			return reject(reasonMalformed, "truncated JSON body")
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return reject(reasonUnknownField, "unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
		default:
			return reject(reasonMalformed, "bad JSON body: %v", err)
		}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return tooLarge()
		}
		return reject(reasonMalformed, "trailing data after the JSON object")
	}
	return nil
}

// parseTime reads a query time: RFC 3339 or epoch milliseconds; "" gives def.
func parseTime(name, s string, def time.Time) (time.Time, error) {
	if s == "" {
		return def, nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, dispatch.Errorf(dispatch.CodeInvalid, "%s=%q: want RFC 3339 or epoch milliseconds", name, s)
	}
	return t.UTC(), nil
}

func parseLimit(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 10000 {
		return 0, dispatch.Errorf(dispatch.CodeInvalid, "limit=%q: want 0 to 10000", s)
	}
	return n, nil
}
