package api

// Answers and request bodies: JSON, with secrets masked (mask.go) and
// errors in one shape (client.Problem).

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/relaymesh/relaymesh/client"
	"github.com/relaymesh/relaymesh/lifecycle"
)

// apiError is the body of every error answer.
type apiError = client.Problem

func writeError(w http.ResponseWriter, status int, code, msg, field string) {
	writeJSON(w, status, apiError{Code: code, Message: msg, Field: field})
}

// writeJSON answers v with its secrets masked (maskAnswer): every answer
// but locate's signed URLs (writeJSONUnmasked).
func writeJSON(w http.ResponseWriter, status int, v any) {
	writeJSONUnmasked(w, status, maskAnswer(v))
}

func writeJSONUnmasked(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

var kindStatus = map[lifecycle.Kind]int{
	lifecycle.Invalid:  http.StatusBadRequest,
	lifecycle.NotFound: http.StatusNotFound,
	lifecycle.Conflict: http.StatusConflict,
	lifecycle.Exists:   http.StatusConflict,
	lifecycle.Limit:    http.StatusTooManyRequests,
	lifecycle.ReadOnly: http.StatusForbidden,
}

func writeProblem(w http.ResponseWriter, err error) {
	var se StatusError
	if errors.As(err, &se) {
		st, code := se.HTTPStatus()
		writeError(w, st, code, se.Error(), "")
		return
	}
	p := lifecycle.AsProblem(err)
	st, ok := kindStatus[p.Kind]
	if !ok {
		st = http.StatusInternalServerError
	}
	writeError(w, st, string(p.Kind), p.Msg, p.Field)
}

// decodeBody reads a JSON object strictly: unknown fields and wrong
// types are refused naming the field.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if dec.More() {
			return lifecycle.Invalidf("", "the body holds more than one JSON value")
		}
		return nil
	}
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	var me *http.MaxBytesError
	switch {
	case errors.As(err, &te):
		return lifecycle.Invalidf(te.Field, "want %s, got JSON %s", te.Type, te.Value)
	case errors.As(err, &se):
		return lifecycle.Invalidf("", "the body is not valid JSON: %v (at byte %d)", err, se.Offset)
	case errors.As(err, &me):
		return lifecycle.Invalidf("", "the body is larger than %d bytes (objects.max_api_body)", me.Limit)
	case errors.Is(err, io.EOF):
		return lifecycle.Invalidf("", "the body is empty: send a JSON object")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return lifecycle.Invalidf(f, "unknown field")
	}
	var terr *time.ParseError
	if errors.As(err, &terr) {
		return lifecycle.Invalidf("", "a time is not RFC 3339 (e.g. 2026-05-01T18:00:00Z): %v", err)
	}
	return lifecycle.Invalidf("", "%v", err)
}
