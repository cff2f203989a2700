package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"

	"github.com/lifeline-ems/lifeline/dispatch"
)

// Reasons a request is rejected, the label of lifeline_http_rejected_total.
const (
	reasonTooLarge     = "too_large"
	reasonMalformed    = "malformed"
	reasonUnknownField = "unknown_field"
	reasonWrongType    = "wrong_type"
	reasonUnauthorized = "unauthorized"
	reasonForbidden    = "forbidden"
)

var rejectReasons = []string{reasonTooLarge, reasonMalformed, reasonUnknownField, reasonWrongType, reasonUnauthorized, reasonForbidden}

// rejection is a request body refused by decode: why (a metric label) and,
// where the domain code does not imply it, the HTTP status (413).
type rejection struct {
	reason string
	status int
	err    *dispatch.Error
}

func (e *rejection) Error() string { return e.err.Error() }
func (e *rejection) Unwrap() error { return e.err }

var codeStatus = map[string]int{
	dispatch.CodeInvalid:      http.StatusBadRequest,
	dispatch.CodeNotFound:     http.StatusNotFound,
	dispatch.CodeConflict:     http.StatusConflict,
	dispatch.CodeUnauthorized: http.StatusUnauthorized,
	dispatch.CodeForbidden:    http.StatusForbidden,
	dispatch.CodeUnavailable:  http.StatusServiceUnavailable,
	dispatch.CodeInternal:     http.StatusInternalServerError,
}

// Error writes err as the contract's error body with its HTTP status. It
// is the one place where domain errors become statuses, and where refused
// requests are counted. Internal errors are logged here and never shown
// to the client.
func (s *Server) Error(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := dispatch.ErrorCode(err), dispatch.ErrorMessage(err)
	status := codeStatus[code]
	reason := ""
	var rj *rejection
	if errors.As(err, &rj) {
		reason = rj.reason
		if rj.status != 0 {
			status = rj.status
		}
	}
	switch code {
	case dispatch.CodeUnauthorized:
		reason = reasonUnauthorized
		w.Header().Set("WWW-Authenticate", `Bearer realm="lifeline"`)
	case dispatch.CodeForbidden:
		reason = reasonForbidden
	case dispatch.CodeInternal:
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if reason != "" {
		s.rejected.WithLabelValues(reason).Inc()
	}
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// replies are the buffers replies are encoded into, reused: a reply is
// encoded whole, then written at once with its length.
var replies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledReply is the largest buffer kept for reuse; a rare huge reply
// must not stay in memory.
const maxPooledReply = 256 << 10

// internalReply is what a client gets when its reply cannot be encoded.
var internalReply = []byte(`{"error":{"code":"internal","message":"internal error"}}` + "\n")

// writeJSON encodes v into a pooled buffer and writes it as the reply,
// with its Content-Length: one write, no chunking, and a value that
// cannot be encoded answers 500 instead of half a body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	buf := replies.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledReply {
			replies.Put(buf)
		}
	}()
	body := internalReply
	if err := json.NewEncoder(buf).Encode(v); err == nil {
		body = buf.Bytes()
	} else {
		status = http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
