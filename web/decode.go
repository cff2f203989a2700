package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/telemetry"
)

// decode reads one JSON object from the body into v. Bodies over limit,
// unknown fields (they signal a client bug: a misspelt field would
// otherwise be silently ignored), wrong types, trailing data and text that
// breaks telemetry.CheckText's rule for free text (a NUL, another control
// character but tab, LF and CR, in any string field: sign-in names and
// passwords included) are invalid requests, each with its reason; nothing
// is applied. Fields that are identifiers are held to the stricter rule
// by the domain's own validation.
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
	if field, err := checkStrings(reflect.ValueOf(v), ""); err != nil {
		return reject(reasonMalformed, "field %q: %v", field, err)
	}
	return nil
}

// checkStrings applies telemetry.CheckText (FreeText) to every string in
// v, a decoded request, and returns the first that fails with its JSON
// path.
func checkStrings(v reflect.Value, path string) (string, error) {
	switch v.Kind() {
	case reflect.String:
		if err := telemetry.CheckText(v.String(), telemetry.FreeText); err != nil {
			return path, err
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			return checkStrings(v.Elem(), path)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if !f.Anonymous {
				name = join(path, name)
			} else {
				name = path
			}
			if p, err := checkStrings(v.Field(i), name); err != nil {
				return p, err
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			break // bytes (json.RawMessage) are not text
		}
		for i := range v.Len() {
			if p, err := checkStrings(v.Index(i), join(path, strconv.Itoa(i))); err != nil {
				return p, err
			}
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			k := fmt.Sprint(it.Key().Interface())
			if p, err := checkStrings(it.Key(), join(path, k)); err != nil {
				return p, err
			}
			if p, err := checkStrings(it.Value(), join(path, k)); err != nil {
				return p, err
			}
		}
	}
	return "", nil
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
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
