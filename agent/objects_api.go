package agent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/relaymesh/relaymesh/flow"
	"github.com/relaymesh/relaymesh/lifecycle"
	"github.com/relaymesh/relaymesh/relayrule"
	"github.com/relaymesh/relaymesh/task"
)

// routesObjects registers the objects API endpoints on s.mux: for each
// kind, list, get, create, update, delete and the kind's actions.
func (s *apiServer) routesObjects() {
	o := &s.a.ext.objects
	routeKind(s, objectKind[flow.Spec, flow.View]{
		name: "flow", plural: "flows", save: s.a.writeObjects,
		list: func() []flow.View { return o.flows.List() }, get: func(id string) (flow.View, bool) { return o.flows.Get(id) },
		create: func(spec flow.Spec) error { return o.flows.Create(spec, lifecycle.CreateOpts{}) },
		update: func(spec flow.Spec) error { return o.flows.Update(spec) },
		delete: func(id string) error { return o.flows.Delete(id) },
		remove: func(id string) error { o.flows.Remove(id); return nil },
		restore: func(v flow.View) error {
			return o.flows.Create(v.Spec, lifecycle.CreateOpts{From: lifecycle.FromStore, State: v.State})
		},
		spec: func(v flow.View) flow.Spec { return v.Spec },
		actions: map[string]func(context.Context, string) error{
			"start": o.flows.Start,
			"stop":  o.flows.Stop,
		},
		id: func(s *flow.Spec) *string { return &s.ID }, readOnly: func(v flow.View) bool { return v.ReadOnly },
		unmask: unmaskFlow,
	})
	routeKind(s, objectKind[relayrule.Spec, relayrule.View]{
		name: "relay", plural: "relays", save: s.a.writeObjects,
		list: func() []relayrule.View { return o.relays.List() }, get: func(id string) (relayrule.View, bool) { return o.relays.Get(id) },
		create: func(spec relayrule.Spec) error { return o.relays.Create(spec, lifecycle.CreateOpts{}) },
		update: func(spec relayrule.Spec) error { return o.relays.Update(spec) },
		delete: func(id string) error { return o.relays.Delete(id) },
		remove: func(id string) error { return o.relays.Delete(id) },
		restore: func(v relayrule.View) error {
			return o.relays.Create(v.Spec, lifecycle.CreateOpts{From: lifecycle.FromStore})
		},
		spec: func(v relayrule.View) relayrule.Spec { return v.Spec },
		id:   func(s *relayrule.Spec) *string { return &s.ID }, readOnly: func(v relayrule.View) bool { return v.ReadOnly },
		unmask: func(spec *relayrule.Spec, old relayrule.View) {
			unmask(&spec.Passphrase, old.Passphrase)
			unmaskURL(&spec.URL, old.URL)
		},
	})
	routeKind(s, objectKind[task.Spec, task.View]{
		name: "task", plural: "tasks", save: s.a.writeObjects,
		list: func() []task.View { return o.tasks.List() }, get: func(id string) (task.View, bool) { return o.tasks.Get(id) },
		create: func(spec task.Spec) error { return o.tasks.Create(spec, lifecycle.CreateOpts{}) },
		update: func(spec task.Spec) error { return o.tasks.Update(spec) },
		delete: func(id string) error { return o.tasks.Delete(id) },
		remove: func(id string) error { o.tasks.Remove(id); return nil },
		restore: func(v task.View) error {
			return o.tasks.Restore(v.Spec, v.Internal, task.Position{Item: v.Item, Pass: v.Pass})
		},
		spec: func(v task.View) task.Spec { return v.Spec },
		filter: func(q url.Values) (func(task.View) bool, error) {
			f, err := task.ParseFilter(q)
			return func(v task.View) bool { return f.Match(&v) }, err
		},
		actions: map[string]func(context.Context, string) error{
			"start":   o.tasks.Start,
			"stop":    o.tasks.Stop,
			"restart": o.tasks.Restart,
		},
		id: func(s *task.Spec) *string { return &s.ID }, readOnly: func(v task.View) bool { return v.ReadOnly },
		unmask: func(spec *task.Spec, old task.View) {
			unmask(&spec.Destination.Passphrase, old.Destination.Passphrase)
			unmaskURL(&spec.Destination.URL, old.Destination.URL)
			unmaskURL(&spec.Source.URL, old.Source.URL)
			unmaskURL(&spec.Callback, old.Callback)
			for i := range spec.Source.Playlist {
				if i < len(old.Source.Playlist) {
					unmaskURL(&spec.Source.Playlist[i], old.Source.Playlist[i])
				}
			}
		},
	})
}

// objectKind is one kind of object (flow, relay, task) as the API serves
// it: S is what clients send, V what they get back.
type objectKind[S, V any] struct {
	name, plural string // "flow", "flows"
	list         func() []V
	filter       func(url.Values) (func(V) bool, error) // GET /v1/<plural>?...; nil: no filters
	get          func(id string) (V, bool)
	create       func(S) error
	update       func(S) error
	delete       func(id string) error
	// undo of an API write whose result could not be saved: remove undoes
	// a create, restore a delete, update(spec(old)) an update
	remove   func(id string) error
	restore  func(V) error
	spec     func(V) S
	save     func(op, undo func() error) error                     // Agent.writeObjects
	actions  map[string]func(ctx context.Context, id string) error // POST /v1/<plural>/{id}/<action>
	id       func(*S) *string
	readOnly func(V) bool
	unmask   func(*S, V) // puts back secrets a client sent back masked (answers are masked by maskAnswer)
}

// actionTimeout bounds an action: starting a task probes its local
// playlist files (downloads run in the background).
const actionTimeout = 2 * time.Minute

func routeKind[S, V any](s *apiServer, k objectKind[S, V]) {
	base := "/v1/" + k.plural
	s.mux.HandleFunc("GET "+base, k.handleList)
	s.mux.HandleFunc("POST "+base, k.handleCreate)
	s.mux.HandleFunc("GET "+base+"/{id}", k.handleGet)
	s.mux.HandleFunc("PUT "+base+"/{id}", k.handleUpdate)
	s.mux.HandleFunc("DELETE "+base+"/{id}", k.handleAction("delete", nil))
	for name, act := range k.actions {
		s.mux.HandleFunc("POST "+base+"/{id}/"+name, k.handleAction(name, act))
	}
}

func (k objectKind[S, V]) notFound(w http.ResponseWriter, id string) {
	writeError(w, http.StatusNotFound, "not_found", "no "+k.name+" "+id, "")
}

func (k objectKind[S, V]) handleList(w http.ResponseWriter, r *http.Request) {
	match := func(V) bool { return true }
	if q := r.URL.Query(); k.filter != nil {
		var err error
		if match, err = k.filter(q); err != nil {
			writeProblem(w, err)
			return
		}
	} else if len(q) > 0 {
		// refused rather than ignored and everything listed
		writeProblem(w, lifecycle.Invalidf(slices.Sorted(maps.Keys(q))[0], "%s take no filters: list them without a query", k.plural))
		return
	}
	out := []V{}
	for _, v := range k.list() {
		if match(v) {
			out = append(out, v)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{k.plural: out})
}

func (k objectKind[S, V]) handleGet(w http.ResponseWriter, r *http.Request) {
	v, ok := k.get(r.PathValue("id"))
	if !ok {
		k.notFound(w, r.PathValue("id"))
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (k objectKind[S, V]) handleCreate(w http.ResponseWriter, r *http.Request) {
	var spec S
	if err := decodeBody(r, &spec); err != nil {
		writeProblem(w, err)
		return
	}
	id := *k.id(&spec)
	err := k.save(func() error { return k.create(spec) }, func() error { return k.remove(id) })
	if err != nil {
		writeProblem(w, err)
		return
	}
	v, _ := k.get(*k.id(&spec))
	writeJSON(w, http.StatusCreated, v)
}

func (k objectKind[S, V]) handleUpdate(w http.ResponseWriter, r *http.Request) {
	var spec S
	if err := decodeBody(r, &spec); err != nil {
		writeProblem(w, err)
		return
	}
	id := k.id(&spec)
	if err := idFromPath(r, id); err != nil {
		writeProblem(w, err)
		return
	}
	old, ok := k.get(*id)
	if !ok {
		k.notFound(w, *id)
		return
	}
	if k.readOnly(old) {
		writeProblem(w, readOnly(k.name, *id))
		return
	}
	k.unmask(&spec, old)
	err := k.save(func() error { return k.update(spec) }, func() error { return k.update(k.spec(old)) })
	if err != nil {
		writeProblem(w, err)
		return
	}
	v, _ := k.get(*id)
	writeJSON(w, http.StatusOK, v)
}

// handleAction runs act on an API-made object and answers with its view;
// a nil act is delete (204).
func (k objectKind[S, V]) handleAction(name string, act func(context.Context, string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		v, ok := k.get(id)
		if !ok {
			k.notFound(w, id)
			return
		}
		if k.readOnly(v) {
			writeProblem(w, readOnly(k.name, id))
			return
		}
		if act == nil {
			if err := k.save(func() error { return k.delete(id) }, func() error { return k.restore(v) }); err != nil {
				writeProblem(w, err)
				return
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), actionTimeout)
		defer cancel()
		if err := act(ctx, id); err != nil {
			writeProblem(w, err)
			return
		}
		v, _ = k.get(id)
		writeJSON(w, http.StatusOK, v)
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
	var ns *notSavedError
	if errors.As(err, &ns) {
		st, code := ns.status()
		writeError(w, st, code, ns.Error(), "")
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

func unmask(s *string, old string) {
	if *s == masked {
		*s = old
	}
}

func readOnly(kind, id string) error {
	return lifecycle.Newf(lifecycle.ReadOnly, "", "%s %q is declared in the config file: change it there and reload", kind, id)
}

func unmaskFlow(spec *flow.Spec, old flow.View) {
	unmask(&spec.Source.Passphrase, old.Source.Passphrase)
	unmaskURL(&spec.Source.URL, old.Source.URL)
	if spec.Backup != nil && old.Backup != nil {
		unmask(&spec.Backup.Passphrase, old.Backup.Passphrase)
		unmaskURL(&spec.Backup.URL, old.Backup.URL)
	}
	for i := range spec.Outputs {
		for _, o := range old.Outputs {
			if o.Name == spec.Outputs[i].Name {
				unmask(&spec.Outputs[i].Passphrase, o.Passphrase)
				unmaskURL(&spec.Outputs[i].URL, o.URL)
			}
		}
	}
}
