package lifecycle

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"
)

// Store persists a registry's objects.
type Store interface {
	// Changed is called, without the registry's lock held, after object
	// id of kind was added, changed or removed.
	Changed(kind, id string)
}

// StoreFunc is a Store that calls a function.
type StoreFunc func(kind, id string)

// Changed calls f.
func (f StoreFunc) Changed(kind, id string) { f(kind, id) }

// Env is what a node gives each object manager: the store its objects
// persist in, the clock, and the kind's configured limit.
type Env struct {
	Store Store            // nil: nothing is persisted
	Clock func() time.Time // nil: time.Now
	// Limit is the kind's maximum (objects.max_flows, max_relays,
	// max_running_tasks), read at every check; nil or 0: none.
	Limit func() int
}

// Now is the time on the env's clock.
func (e Env) Now() time.Time {
	if e.Clock == nil {
		return time.Now()
	}
	return e.Clock()
}

func (e Env) limit() int {
	if e.Limit == nil {
		return 0
	}
	return e.Limit()
}

// From says where a created object comes from.
type From int

// Where objects come from.
const (
	// FromAPI is a new object: every check applies, an end time must lie
	// in the future, and a LimitObjects limit refuses it when reached
	// (every object counts, whatever its origin).
	FromAPI From = iota
	// FromConfig is declared in the config file: read-only; its time
	// window may have ended (it is then finished). The config's own
	// validation bounds how many there are.
	FromConfig
	// FromStore is read back from the store after a restart: it was
	// accepted once, so it is kept even over a lowered limit.
	FromStore
)

// CreateOpts says how an object is created.
type CreateOpts struct {
	From From
	// State is the state to come back in (config or restart): an active
	// one starts the object again; "" rests.
	State State
}

// ReadOnly reports whether the object is declared in the config file.
func (o CreateOpts) ReadOnly() bool { return o.From == FromConfig }

// LimitOf says what a registry's Env.Limit counts.
type LimitOf int

// What a limit counts.
const (
	// LimitObjects counts the objects kept ("3 relays exist").
	LimitObjects LimitOf = iota
	// LimitActive counts the objects starting, running or stopping; it is
	// checked when one starts ("3 tasks are running").
	LimitActive
)

// Options describe the objects of one registry.
type Options struct {
	Kind, Plural string // "flow", "flows": they name the objects in refusals
	LimitOf      LimitOf
	LimitKey     string // the setting that sets the limit: "objects.max_flows"
	// StateName is a state as the API shows it (tasks: NotStarted, ...);
	// nil: the state itself.
	StateName func(State) string
}

// Registry holds the objects of one kind by id under one lock. It
// enforces the state transitions (every change goes through Entry.Move),
// the kind's limit, and persists each change through the Env's Store
// once the lock is released.
type Registry[T any] struct {
	opt Options
	env Env

	mu      sync.Mutex
	objs    map[string]*Entry[T]
	pending []string          // ids changed under the lock, to persist
	counts  map[string]uint64 // events of the kind by name (Count)
}

// Entry is one object: its bookkeeping, kept by the registry, and the
// kind's own data in Obj. Its fields and methods are used only under the
// registry's lock (inside the functions the registry runs).
type Entry[T any] struct {
	ID       string
	ReadOnly bool
	Obj      T

	state  State
	reason string
	since  time.Time
	reg    *Registry[T]
}

// NewRegistry returns an empty registry.
func NewRegistry[T any](opt Options, env Env) *Registry[T] {
	if opt.StateName == nil {
		opt.StateName = func(s State) string { return string(s) }
	}
	return &Registry[T]{opt: opt, env: env, objs: map[string]*Entry[T]{}}
}

// Now is the time on the registry's clock.
func (r *Registry[T]) Now() time.Time { return r.env.Now() }

// State is where the object is.
func (e *Entry[T]) State() State { return e.state }

// Reason says why the object is in error (or why it finished early).
func (e *Entry[T]) Reason() string { return e.reason }

// Since is when the object entered its state.
func (e *Entry[T]) Since() time.Time { return e.since }

// StateName is the state as the API shows it.
func (e *Entry[T]) StateName() string { return e.reg.opt.StateName(e.state) }

// Move changes the object's state to next with reason. A move the
// transitions table does not allow is refused (Conflict on "state"), and
// so is a start beyond a LimitActive limit (Limit).
func (e *Entry[T]) Move(next State, reason string) error {
	r := e.reg
	if !e.state.Can(next) {
		return Conflictf("state", "%s %q cannot go from %s to %s", r.opt.Kind, e.ID, e.StateName(), r.opt.StateName(next))
	}
	if r.opt.LimitOf == LimitActive && next.Active() && !e.state.Active() {
		if max := r.env.limit(); max > 0 && r.activeLocked() >= max {
			return Newf(Limit, "", "%d %s are running, the most this node runs (%s)", max, r.opt.Plural, r.opt.LimitKey)
		}
	}
	e.state, e.reason, e.since = next, reason, r.Now()
	e.Changed()
	return nil
}

// Changed marks the object to be persisted when the registry's lock is
// released (a change of its spec or of data the store keeps).
func (e *Entry[T]) Changed() {
	if !slices.Contains(e.reg.pending, e.ID) {
		e.reg.pending = append(e.reg.pending, e.ID)
	}
}

func (r *Registry[T]) activeLocked() int {
	n := 0
	for _, e := range r.objs {
		if e.state.Active() {
			n++
		}
	}
	return n
}

// locked runs fn under the lock, then persists what fn changed.
func (r *Registry[T]) locked(fn func()) {
	r.mu.Lock()
	fn()
	pending := r.pending
	r.pending = nil
	r.mu.Unlock()
	if r.env.Store == nil {
		return
	}
	for _, id := range pending {
		r.env.Store.Changed(r.opt.Kind, id)
	}
}

// Count counts one event of the kind's objects by name (a flow's source
// switch by reason); the counts outlive the objects (metrics' counters).
// It takes the lock: not for a function the registry runs.
func (r *Registry[T]) Count(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.counts == nil {
		r.counts = map[string]uint64{}
	}
	r.counts[name]++
}

// Counts returns a copy of the event counts by name.
func (r *Registry[T]) Counts() map[string]uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.counts)
}

// NotFound is the refusal for an unknown id.
func (r *Registry[T]) NotFound(id string) error {
	return Newf(NotFound, "", "no %s %q", r.opt.Kind, id)
}

// Add creates the object id in state with obj. check runs first under
// the lock (it may look at the other objects with GetLocked and
// EachLocked); then an id in use is refused (Exists), and a new object
// from the API beyond a LimitObjects limit (Limit).
func (r *Registry[T]) Add(id string, opts CreateOpts, state State, obj T, check func() error) (*Entry[T], error) {
	var e *Entry[T]
	var err error
	r.locked(func() {
		if !state.Valid() {
			err = Invalidf("state", "%q is not a state", state)
			return
		}
		if check != nil {
			if err = check(); err != nil {
				return
			}
		}
		if _, ok := r.objs[id]; ok {
			err = Newf(Exists, "id", "a %s %q exists", r.opt.Kind, id)
			return
		}
		if r.opt.LimitOf == LimitObjects && opts.From == FromAPI {
			if max := r.env.limit(); max > 0 && len(r.objs) >= max {
				err = Newf(Limit, "", "%d %s exist, the most this node keeps (%s)", max, r.opt.Plural, r.opt.LimitKey)
				return
			}
		}
		e = &Entry[T]{ID: id, ReadOnly: opts.ReadOnly(), Obj: obj, state: state, since: r.Now(), reg: r}
		r.objs[id] = e
		e.Changed()
	})
	return e, err
}

// Do runs fn on object id under the lock; an unknown id is NotFound.
func (r *Registry[T]) Do(id string, fn func(*Entry[T]) error) error {
	var err error
	r.locked(func() {
		e := r.objs[id]
		if e == nil {
			err = r.NotFound(id)
			return
		}
		err = fn(e)
	})
	return err
}

// With runs fn on an entry already held (a goroutine of the object)
// under the lock; the entry may have been removed meanwhile.
func (r *Registry[T]) With(e *Entry[T], fn func(*Entry[T])) {
	r.locked(func() { fn(e) })
}

// Each runs fn on every object in id order under the lock.
func (r *Registry[T]) Each(fn func(*Entry[T])) {
	r.locked(func() { r.EachLocked(fn) })
}

// EachLocked is Each for a function the registry already runs.
func (r *Registry[T]) EachLocked(fn func(*Entry[T])) {
	for _, id := range SortedIDs(r.objs) {
		fn(r.objs[id])
	}
}

// GetLocked returns object id (nil if none) in a function the registry
// already runs.
func (r *Registry[T]) GetLocked(id string) *Entry[T] { return r.objs[id] }

// Delete removes object id unless it is active (Conflict: stop it
// first) or guard refuses; guard runs under the lock.
func (r *Registry[T]) Delete(id string, guard func(*Entry[T]) error) (*Entry[T], error) {
	var e *Entry[T]
	err := r.Do(id, func(x *Entry[T]) error {
		if x.state.Active() {
			return Conflictf("state", "%s %q is %s: stop it before deleting it", r.opt.Kind, id, x.StateName())
		}
		if guard != nil {
			if err := guard(x); err != nil {
				return err
			}
		}
		e = x
		r.removeLocked(x)
		return nil
	})
	return e, err
}

// Remove removes object id whatever its state, and returns it (nil if
// none). The caller stops it first.
func (r *Registry[T]) Remove(id string) *Entry[T] {
	var e *Entry[T]
	r.locked(func() {
		if e = r.objs[id]; e != nil {
			r.removeLocked(e)
		}
	})
	return e
}

func (r *Registry[T]) removeLocked(e *Entry[T]) {
	delete(r.objs, e.ID)
	e.Changed()
}

// IDs returns the ids of the config-declared (readOnly) or the other
// objects, in order.
func (r *Registry[T]) IDs(readOnly bool) []string {
	var out []string
	r.Each(func(e *Entry[T]) {
		if e.ReadOnly == readOnly {
			out = append(out, e.ID)
		}
	})
	return out
}

// Get returns the view of object id in r.
func Get[T, V any](r *Registry[T], id string, view func(*Entry[T]) V) (V, bool) {
	var v V
	ok := r.Do(id, func(e *Entry[T]) error { v = view(e); return nil }) == nil
	return v, ok
}

// List returns the views of every object in r, by id.
func List[T, V any](r *Registry[T], view func(*Entry[T]) V) []V {
	var out []V
	r.Each(func(e *Entry[T]) { out = append(out, view(e)) })
	if out == nil {
		out = []V{}
	}
	return out
}

// Read runs fn under the lock, for a look at several objects at once
// (with GetLocked and EachLocked).
func (r *Registry[T]) Read(fn func()) { r.locked(fn) }

// Schedule is a manager's scheduler loop: it runs fn every period and
// whenever kick fires (nil: never), until ctx ends.
func Schedule(ctx context.Context, period time.Duration, kick <-chan struct{}, fn func()) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-kick:
		}
		fn()
	}
}
