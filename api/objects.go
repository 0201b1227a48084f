package api

import (
	"context"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/relaymesh/relaymesh/flow"
	"github.com/relaymesh/relaymesh/lifecycle"
	"github.com/relaymesh/relaymesh/relay"
	"github.com/relaymesh/relaymesh/task"
)

// Objects are the flows, relays and tasks the API manages, and the
// durable write every change goes through.
type Objects interface {
	Flows() Flows
	Relays() Relays
	Tasks() Tasks
	// Write runs one API change: op changes the objects in memory, undo
	// reverses it; an error that is a StatusError answers with its
	// status (the change could not be saved and was undone).
	Write(op, undo func() error) error
}

// Kind is what the API needs of one kind's manager: S is the spec
// clients send, V the view they get back. flow.Manager, relay.Manager
// and task.Manager satisfy it.
type Kind[S, V any] interface {
	List() []V
	Get(id string) (V, bool)
	Create(spec S, opts lifecycle.CreateOpts) error
	Update(spec S) error
	Delete(id string) error
	// Remove stops and deletes an object regardless of its state (the
	// undo of a create).
	Remove(id string)
}

// Runnable is a kind whose objects are started and stopped by hand.
type Runnable interface {
	Start(ctx context.Context, id string) error
	Stop(ctx context.Context, id string) error
}

// Flows are the node's flows (flow.Manager).
type Flows interface {
	Kind[flow.Spec, flow.View]
	Runnable
}

// Relays are the node's relay rules (relay.Manager).
type Relays interface {
	Kind[relay.Spec, relay.View]
}

// Tasks are the node's pseudo-live tasks (task.Manager).
type Tasks interface {
	Kind[task.Spec, task.View]
	Runnable
	Restart(ctx context.Context, id string) error
	// Restore puts back a deleted task where it was (undo of a delete).
	Restore(spec task.Spec, state lifecycle.State, at task.Position) error
}

// A StatusError names the HTTP status and error code it answers with.
type StatusError interface {
	error
	HTTPStatus() (status int, code string)
}

// routesObjects registers the objects API endpoints on s.mux: for each
// kind, list, get, create, update, delete and the kind's actions.
func (s *Server) routesObjects() {
	o := s.d.Objects
	routeKind(s, objectKind[flow.Spec, flow.View]{
		name: "flow", plural: "flows", save: o.Write,
		list: func() []flow.View { return o.Flows().List() }, get: func(id string) (flow.View, bool) { return o.Flows().Get(id) },
		create: func(spec flow.Spec) error { return o.Flows().Create(spec, lifecycle.CreateOpts{}) },
		update: func(spec flow.Spec) error { return o.Flows().Update(spec) },
		delete: func(id string) error { return o.Flows().Delete(id) },
		remove: func(id string) error { o.Flows().Remove(id); return nil },
		restore: func(v flow.View) error {
			return o.Flows().Create(v.Spec, lifecycle.CreateOpts{From: lifecycle.FromStore, State: v.State})
		},
		spec: func(v flow.View) flow.Spec { return v.Spec },
		actions: map[string]func(context.Context, string) error{
			"start": func(ctx context.Context, id string) error {
				return o.Write(func() error { return o.Flows().Start(ctx, id) }, func() error { return o.Flows().Stop(ctx, id) })
			},
			"stop": func(ctx context.Context, id string) error {
				return o.Write(func() error { return o.Flows().Stop(ctx, id) }, func() error { return o.Flows().Start(ctx, id) })
			},
		},
		id: func(s *flow.Spec) *string { return &s.ID }, readOnly: func(v flow.View) bool { return v.ReadOnly },
		unmask: unmaskFlow,
	})
	routeKind(s, objectKind[relay.Spec, relay.View]{
		name: "relay", plural: "relays", save: o.Write,
		list: func() []relay.View { return o.Relays().List() }, get: func(id string) (relay.View, bool) { return o.Relays().Get(id) },
		create: func(spec relay.Spec) error { return o.Relays().Create(spec, lifecycle.CreateOpts{}) },
		update: func(spec relay.Spec) error { return o.Relays().Update(spec) },
		delete: func(id string) error { return o.Relays().Delete(id) },
		remove: func(id string) error { return o.Relays().Delete(id) },
		restore: func(v relay.View) error {
			return o.Relays().Create(v.Spec, lifecycle.CreateOpts{From: lifecycle.FromStore})
		},
		spec: func(v relay.View) relay.Spec { return v.Spec },
		id:   func(s *relay.Spec) *string { return &s.ID }, readOnly: func(v relay.View) bool { return v.ReadOnly },
		unmask: func(spec *relay.Spec, old relay.View) {
			unmask(&spec.Passphrase, old.Passphrase)
			unmaskURL(&spec.URL, old.URL)
		},
	})
	routeKind(s, objectKind[task.Spec, task.View]{
		name: "task", plural: "tasks", save: o.Write,
		list: func() []task.View { return o.Tasks().List() }, get: func(id string) (task.View, bool) { return o.Tasks().Get(id) },
		create: func(spec task.Spec) error { return o.Tasks().Create(spec, lifecycle.CreateOpts{}) },
		update: func(spec task.Spec) error { return o.Tasks().Update(spec) },
		delete: func(id string) error { return o.Tasks().Delete(id) },
		remove: func(id string) error { o.Tasks().Remove(id); return nil },
		restore: func(v task.View) error {
			return o.Tasks().Restore(v.Spec, v.Internal, task.Position{Item: v.Item, Pass: v.Pass})
		},
		spec: func(v task.View) task.Spec { return v.Spec },
		filter: func(q url.Values) (func(task.View) bool, error) {
			f, err := task.ParseFilter(q)
			return func(v task.View) bool { return f.Match(&v) }, err
		},
		actions: map[string]func(context.Context, string) error{
			"start": func(ctx context.Context, id string) error {
				return o.Write(func() error { return o.Tasks().Start(ctx, id) }, func() error { return o.Tasks().Stop(ctx, id) })
			},
			"stop": func(ctx context.Context, id string) error {
				return o.Write(func() error { return o.Tasks().Stop(ctx, id) }, func() error { return o.Tasks().Start(ctx, id) })
			},
			"restart": func(ctx context.Context, id string) error { return o.Tasks().Restart(ctx, id) },
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
	save     func(op, undo func() error) error                     // Objects.Write
	actions  map[string]func(ctx context.Context, id string) error // POST /v1/<plural>/{id}/<action>
	id       func(*S) *string
	readOnly func(V) bool
	unmask   func(*S, V) // puts back secrets a client sent back masked (answers are masked by maskAnswer)
}

// actionTimeout bounds an action: starting a task probes its local
// playlist files (downloads run in the background).
const actionTimeout = 2 * time.Minute

func routeKind[S, V any](s *Server, k objectKind[S, V]) {
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

func unmask(s *string, old string) {
	if *s == Masked {
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
