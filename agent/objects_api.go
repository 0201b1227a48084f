package agent

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/relaymesh/relaymesh/flow"
	"github.com/relaymesh/relaymesh/lifecycle"
	"github.com/relaymesh/relaymesh/relayrule"
	"github.com/relaymesh/relaymesh/task"
)

// routesObjects registers the objects API endpoints on s.mux.
func (s *apiServer) routesObjects() {
	m := s.mux
	m.HandleFunc("GET /v1/flows", s.listFlows)
	m.HandleFunc("POST /v1/flows", s.mutating(s.createFlow))
	m.HandleFunc("GET /v1/flows/{id}", s.getFlow)
	m.HandleFunc("PUT /v1/flows/{id}", s.mutating(s.updateFlow))
	m.HandleFunc("DELETE /v1/flows/{id}", s.mutating(s.flowAction("delete")))
	m.HandleFunc("POST /v1/flows/{id}/start", s.mutating(s.flowAction("start")))
	m.HandleFunc("POST /v1/flows/{id}/stop", s.mutating(s.flowAction("stop")))

	m.HandleFunc("GET /v1/relays", s.listRelays)
	m.HandleFunc("POST /v1/relays", s.mutating(s.createRelay))
	m.HandleFunc("GET /v1/relays/{id}", s.getRelay)
	m.HandleFunc("PUT /v1/relays/{id}", s.mutating(s.updateRelay))
	m.HandleFunc("DELETE /v1/relays/{id}", s.mutating(s.deleteRelay))

	m.HandleFunc("GET /v1/tasks", s.listTasks)
	m.HandleFunc("POST /v1/tasks", s.mutating(s.createTask))
	m.HandleFunc("GET /v1/tasks/{id}", s.getTask)
	m.HandleFunc("PUT /v1/tasks/{id}", s.mutating(s.updateTask))
	m.HandleFunc("DELETE /v1/tasks/{id}", s.mutating(s.taskAction("delete")))
	for _, act := range []string{"start", "stop", "restart"} {
		m.HandleFunc("POST /v1/tasks/{id}/"+act, s.mutating(s.taskAction(act)))
	}
}

// mutating wraps a handler that changes state: bearer-token auth when a
// token file is configured, and a bounded body.
func (s *apiServer) mutating(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		cfg := s.a.config()
		tok, err := cfg.API.LoadToken()
		if err != nil {
			writeError(w, http.StatusInternalServerError, "token_unreadable", "the API token file cannot be read: "+err.Error(), "")
			return
		}
		if tok != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(tok)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="relaymesh"`)
				writeError(w, http.StatusUnauthorized, "unauthorized", "send the API token as Authorization: Bearer <token> (api.token_file)", "")
				return
			}
		}
		r.Body = http.MaxBytesReader(w, r.Body, cfg.Objects.maxAPIBody())
		h(w, r)
	}
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

// idFromPath refuses a body whose id differs from the path's.
func idFromPath(r *http.Request, bodyID *string) error {
	id := r.PathValue("id")
	if *bodyID == "" {
		*bodyID = id
	}
	if *bodyID != id {
		return lifecycle.Invalidf("id", "%q differs from the id in the path (%q); ids cannot change", *bodyID, id)
	}
	return nil
}

const masked = "********"

func mask(s string) string {
	if s == "" {
		return ""
	}
	return masked
}

func unmask(s *string, old string) {
	if *s == masked {
		*s = old
	}
}

// ---- flows

func maskFlow(v flow.View) flow.View {
	v.Source.Passphrase = mask(v.Source.Passphrase)
	if v.Backup != nil {
		b := *v.Backup
		b.Passphrase = mask(b.Passphrase)
		v.Backup = &b
	}
	outs := append([]flow.Output(nil), v.Outputs...)
	for i := range outs {
		outs[i].Passphrase = mask(outs[i].Passphrase)
	}
	v.Outputs = outs
	return v
}

func (s *apiServer) listFlows(w http.ResponseWriter, r *http.Request) {
	out := []flow.View{}
	for _, v := range s.a.ext.objects.flows.List() {
		out = append(out, maskFlow(v))
	}
	writeJSON(w, http.StatusOK, map[string]any{"flows": out})
}

func (s *apiServer) getFlow(w http.ResponseWriter, r *http.Request) {
	v, ok := s.a.ext.objects.flows.Get(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "no flow "+r.PathValue("id"), "")
		return
	}
	writeJSON(w, http.StatusOK, maskFlow(v))
}

func (s *apiServer) createFlow(w http.ResponseWriter, r *http.Request) {
	var spec flow.Spec
	if err := decodeBody(r, &spec); err != nil {
		writeProblem(w, err)
		return
	}
	fm := s.a.ext.objects.flows
	if max := s.a.config().Objects.MaxFlows; max > 0 && len(fm.List()) >= max {
		writeProblem(w, lifecycle.Newf(lifecycle.Limit, "", "%d flows exist, the most this node keeps (objects.max_flows)", max))
		return
	}
	if err := fm.Create(spec, false, ""); err != nil {
		writeProblem(w, err)
		return
	}
	v, _ := fm.Get(spec.ID)
	writeJSON(w, http.StatusCreated, maskFlow(v))
}

func (s *apiServer) updateFlow(w http.ResponseWriter, r *http.Request) {
	var spec flow.Spec
	if err := decodeBody(r, &spec); err != nil {
		writeProblem(w, err)
		return
	}
	if err := idFromPath(r, &spec.ID); err != nil {
		writeProblem(w, err)
		return
	}
	fm := s.a.ext.objects.flows
	old, ok := fm.Get(spec.ID)
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "no flow "+spec.ID, "")
		return
	}
	if old.ReadOnly {
		writeProblem(w, readOnly("flow", spec.ID))
		return
	}
	unmask(&spec.Source.Passphrase, old.Source.Passphrase)
	if spec.Backup != nil && old.Backup != nil {
		unmask(&spec.Backup.Passphrase, old.Backup.Passphrase)
	}
	for i := range spec.Outputs {
		for _, o := range old.Outputs {
			if o.Name == spec.Outputs[i].Name {
				unmask(&spec.Outputs[i].Passphrase, o.Passphrase)
			}
		}
	}
	if err := fm.Update(spec); err != nil {
		writeProblem(w, err)
		return
	}
	v, _ := fm.Get(spec.ID)
	writeJSON(w, http.StatusOK, maskFlow(v))
}

func readOnly(kind, id string) error {
	return lifecycle.Newf(lifecycle.ReadOnly, "", "%s %q is declared in the config file: change it there and reload", kind, id)
}

func (s *apiServer) flowAction(act string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		fm := s.a.ext.objects.flows
		v, ok := fm.Get(id)
		if !ok {
			writeError(w, http.StatusNotFound, "not_found", "no flow "+id, "")
			return
		}
		if v.ReadOnly {
			writeProblem(w, readOnly("flow", id))
			return
		}
		var err error
		switch act {
		case "delete":
			if err = fm.Delete(id); err == nil {
				w.WriteHeader(http.StatusNoContent)
				return
			}
		case "start":
			err = fm.Start(id)
		case "stop":
			err = fm.Stop(id)
		}
		if err != nil {
			writeProblem(w, err)
			return
		}
		v, _ = fm.Get(id)
		writeJSON(w, http.StatusOK, maskFlow(v))
	}
}

// ---- relays

func maskRelay(v relayrule.View) relayrule.View {
	v.Passphrase = mask(v.Passphrase)
	return v
}

func (s *apiServer) listRelays(w http.ResponseWriter, r *http.Request) {
	out := []relayrule.View{}
	for _, v := range s.a.ext.objects.relays.List() {
		out = append(out, maskRelay(v))
	}
	writeJSON(w, http.StatusOK, map[string]any{"relays": out})
}

func (s *apiServer) getRelay(w http.ResponseWriter, r *http.Request) {
	v, ok := s.a.ext.objects.relays.Get(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "no relay "+r.PathValue("id"), "")
		return
	}
	writeJSON(w, http.StatusOK, maskRelay(v))
}

func (s *apiServer) createRelay(w http.ResponseWriter, r *http.Request) {
	var spec relayrule.Spec
	if err := decodeBody(r, &spec); err != nil {
		writeProblem(w, err)
		return
	}
	rm := s.a.ext.objects.relays
	if err := rm.Create(spec, false, false); err != nil {
		writeProblem(w, err)
		return
	}
	v, _ := rm.Get(spec.ID)
	writeJSON(w, http.StatusCreated, maskRelay(v))
}

func (s *apiServer) updateRelay(w http.ResponseWriter, r *http.Request) {
	var spec relayrule.Spec
	if err := decodeBody(r, &spec); err != nil {
		writeProblem(w, err)
		return
	}
	if err := idFromPath(r, &spec.ID); err != nil {
		writeProblem(w, err)
		return
	}
	rm := s.a.ext.objects.relays
	old, ok := rm.Get(spec.ID)
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "no relay "+spec.ID, "")
		return
	}
	if old.ReadOnly {
		writeProblem(w, readOnly("relay", spec.ID))
		return
	}
	unmask(&spec.Passphrase, old.Passphrase)
	if err := rm.Update(spec); err != nil {
		writeProblem(w, err)
		return
	}
	v, _ := rm.Get(spec.ID)
	writeJSON(w, http.StatusOK, maskRelay(v))
}

func (s *apiServer) deleteRelay(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	rm := s.a.ext.objects.relays
	v, ok := rm.Get(id)
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "no relay "+id, "")
		return
	}
	if v.ReadOnly {
		writeProblem(w, readOnly("relay", id))
		return
	}
	if err := rm.Delete(id); err != nil {
		writeProblem(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ---- tasks

func maskTask(v task.View) task.View {
	v.Destination.Passphrase = mask(v.Destination.Passphrase)
	return v
}

func (s *apiServer) listTasks(w http.ResponseWriter, r *http.Request) {
	out := []task.View{}
	for _, v := range s.a.ext.objects.tasks.List() {
		out = append(out, maskTask(v))
	}
	writeJSON(w, http.StatusOK, map[string]any{"tasks": out})
}

func (s *apiServer) getTask(w http.ResponseWriter, r *http.Request) {
	v, ok := s.a.ext.objects.tasks.Get(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "no task "+r.PathValue("id"), "")
		return
	}
	writeJSON(w, http.StatusOK, maskTask(v))
}

func (s *apiServer) createTask(w http.ResponseWriter, r *http.Request) {
	var spec task.Spec
	if err := decodeBody(r, &spec); err != nil {
		writeProblem(w, err)
		return
	}
	tm := s.a.ext.objects.tasks
	if err := tm.Create(spec, false, ""); err != nil {
		writeProblem(w, err)
		return
	}
	v, _ := tm.Get(spec.ID)
	writeJSON(w, http.StatusCreated, maskTask(v))
}

func (s *apiServer) updateTask(w http.ResponseWriter, r *http.Request) {
	var spec task.Spec
	if err := decodeBody(r, &spec); err != nil {
		writeProblem(w, err)
		return
	}
	if err := idFromPath(r, &spec.ID); err != nil {
		writeProblem(w, err)
		return
	}
	tm := s.a.ext.objects.tasks
	old, ok := tm.Get(spec.ID)
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "no task "+spec.ID, "")
		return
	}
	if old.ReadOnly {
		writeProblem(w, readOnly("task", spec.ID))
		return
	}
	unmask(&spec.Destination.Passphrase, old.Destination.Passphrase)
	if err := tm.Update(spec); err != nil {
		writeProblem(w, err)
		return
	}
	v, _ := tm.Get(spec.ID)
	writeJSON(w, http.StatusOK, maskTask(v))
}

func (s *apiServer) taskAction(act string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		tm := s.a.ext.objects.tasks
		v, ok := tm.Get(id)
		if !ok {
			writeError(w, http.StatusNotFound, "not_found", "no task "+id, "")
			return
		}
		if v.ReadOnly {
			writeProblem(w, readOnly("task", id))
			return
		}
		// probing a playlist may download it: bound the call
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
		defer cancel()
		var err error
		switch act {
		case "delete":
			if err = tm.Delete(id); err == nil {
				w.WriteHeader(http.StatusNoContent)
				return
			}
		case "start":
			err = tm.Start(ctx, id)
		case "stop":
			err = tm.Stop(id, false)
		case "restart":
			err = tm.Restart(ctx, id)
		default:
			err = fmt.Errorf("unknown action %q", act)
		}
		if err != nil {
			writeProblem(w, err)
			return
		}
		v, _ = tm.Get(id)
		writeJSON(w, http.StatusOK, maskTask(v))
	}
}
