package web

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/lifeline-ems/lifeline/dispatch"
)

// httpError carries a status that is not implied by a domain code, such
// as 413 for an oversized body.
type httpError struct {
	status int
	err    *dispatch.Error
}

func (e *httpError) Error() string { return e.err.Error() }
func (e *httpError) Unwrap() error { return e.err }

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
// is the one place where domain errors become statuses. Internal errors
// are logged here and never shown to the client.
func Error(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	code, msg := dispatch.ErrorCode(err), dispatch.ErrorMessage(err)
	status := codeStatus[code]
	var he *httpError
	if errors.As(err, &he) {
		status = he.status
	}
	if code == dispatch.CodeInternal {
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
