package task

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/relaymesh/relaymesh/lifecycle"
	"github.com/relaymesh/relaymesh/media"
)

// Notifier delivers webhook events; it must not block.
type Notifier interface {
	Notify(event string, payload any)
}

// View is a task as the API shows it.
type View struct {
	Spec
	State     string          `json:"state"` // NotStarted, Running, Stopped, Failed, Finished
	Internal  lifecycle.State `json:"lifecycle"`
	Reason    string          `json:"reason,omitempty"`
	Since     time.Time       `json:"since"`
	Item      int             `json:"item"` // playlist index now playing
	Pass      int             `json:"pass"` // 1-based pass through the playlist
	ReadOnly  bool            `json:"read_only"`
	Origin    string          `json:"origin"`
	Stream    string          `json:"stream"` // hub key the task publishes
	LastError string          `json:"last_error,omitempty"`
	// Phase is "preparing" while a starting task downloads and probes its
	// playlist.
	Phase string `json:"phase,omitempty"`
}

// object is a task's own data in the registry.
type object struct {
	spec      Spec
	item      int
	pass      int
	cancel    context.CancelFunc
	done      chan struct{}
	player    *player
	stopState lifecycle.State // what a cancel ends in: standby or finished ("": the node stops)
	resume    bool            // the next start continues at item/pass (restart of the node)
	preparing bool            // starting: the playlist is being downloaded and probed
}

type entry = lifecycle.Entry[object]

// Position is where a task is in its playlist: the item index and the
// 1-based pass (loop) through the playlist.
type Position struct {
	Item int `json:"item"`
	Pass int `json:"pass"`
}

// Manager owns the node's tasks, their state machines and their
// schedule; the registry keeps their states, the
// objects.max_running_tasks limit and their persistence.
type Manager struct {
	deps *Deps
	// NotifierFor returns the webhook for a callback URL ("" = none).
	NotifierFor func(callback string) Notifier
	// DefaultCallback is the node's webhook URL ([webhooks] url), used by
	// tasks without a callback; a task needs one of the two.
	DefaultCallback func() string

	reg *lifecycle.Registry[object]
	// wg holds every goroutine the manager starts; each is added under
	// the registry's lock unless closing (set under it by Close), so
	// Close's wait sees them all.
	wg      sync.WaitGroup
	closing bool
}

// errClosing refuses a start while the manager closes: the task keeps
// its state, so the node's next start resumes it.
var errClosing = errors.New("the node is stopping")

// NewManager returns an empty manager; env.Limit is
// objects.max_running_tasks, read on every start.
func NewManager(deps *Deps, env lifecycle.Env) *Manager {
	return &Manager{deps: deps, reg: lifecycle.NewRegistry[object](lifecycle.Options{
		Kind: "task", Plural: "tasks", LimitOf: lifecycle.LimitActive, LimitKey: "objects.max_running_tasks",
		StateName: lifecycle.State.TaskName}, env)}
}

func (m *Manager) notify(e *entry, event, reason string) {
	if m.NotifierFor == nil {
		return
	}
	n := m.NotifierFor(e.Obj.spec.Callback)
	if n == nil {
		return
	}
	ev := Event{Event: event, Task: e.ID, State: e.StateName(), Time: m.reg.Now().UTC(), Reason: reason}
	if event == "item-changed" {
		i := e.Obj.item
		ev.Item, ev.Loop = &i, e.Obj.pass
		if i < len(e.Obj.spec.Source.Playlist) {
			ev.URL = e.Obj.spec.Source.Playlist[i]
		}
	}
	n.Notify(event, ev)
}

// move changes e's state and sends the webhook event (when not "").
func (m *Manager) move(e *entry, to lifecycle.State, reason, event string) {
	if err := e.Move(to, reason); err != nil {
		m.deps.Log.Error("task state not changed", "task", e.ID, "err", err)
		return
	}
	if event != "" {
		m.notify(e, event, reason)
	}
}

// Create adds a task. opts.State is the state it comes back in (config
// or restart); a new task from the API (FromAPI) is validated at this
// time and rests: NotStarted with a start time, Stopped without.
func (m *Manager) Create(spec Spec, opts lifecycle.CreateOpts) error {
	return m.create(spec, opts, nil)
}

// Restore adds a task read back from the store: a task that was running
// starts again at the playlist item and pass it had reached.
func (m *Manager) Restore(spec Spec, state lifecycle.State, at Position) error {
	return m.create(spec, lifecycle.CreateOpts{From: lifecycle.FromStore, State: state}, &at)
}

func (m *Manager) create(spec Spec, opts lifecycle.CreateOpts, at *Position) error {
	spec.Normalize()
	state := opts.State
	if opts.From == lifecycle.FromAPI {
		if err := spec.Validate(m.reg.Now()); err != nil {
			return err
		}
		if err := m.checkCallback(&spec); err != nil {
			return err
		}
	}
	// a task with a start time waits for it (NotStarted); one without
	// waits for the start action (Stopped)
	st := state
	if st == "" || st == lifecycle.Scheduled || st.Active() {
		st = resting(&spec)
	}
	obj := object{spec: spec}
	if at != nil && state.Active() && at.Item >= 0 && at.Item < len(spec.Source.Playlist) && at.Pass >= 1 {
		obj.item, obj.pass, obj.resume = at.Item, at.Pass, true
	}
	if _, err := m.reg.Add(spec.ID, opts, st, obj, nil); err != nil {
		return err
	}
	if state.Active() {
		if err := m.start(context.Background(), spec.ID); err != nil && !errors.Is(err, errClosing) {
			m.fail(spec.ID, err)
		}
	}
	return nil
}

// Update replaces a task's spec as its state allows: NotStarted: time,
// callback and source; Stopped: callback and source; otherwise nothing.
func (m *Manager) Update(spec Spec) error {
	spec.Normalize()
	if err := spec.Validate(m.reg.Now()); err != nil {
		return err
	}
	return m.reg.Do(spec.ID, func(e *entry) error {
		if err := lifecycle.TaskRules.Check(e.State(), e.StateName(), Changed(&e.Obj.spec, &spec)...); err != nil {
			return err
		}
		if err := m.checkCallback(&spec); err != nil {
			return err
		}
		e.Obj.spec = spec
		e.Changed()
		if e.State() == lifecycle.Scheduled && spec.Start == nil {
			return e.Move(lifecycle.Standby, "") // no start time left: it waits for the start action
		}
		return nil
	})
}

// resting is the state a task waits in: NotStarted with a start time,
// Stopped without.
func resting(s *Spec) lifecycle.State {
	if s.Start != nil {
		return lifecycle.Scheduled
	}
	return lifecycle.Standby
}

// checkCallback refuses a task without a callback on a node without a
// default webhook URL.
func (m *Manager) checkCallback(s *Spec) error {
	if s.Callback == "" && (m.DefaultCallback == nil || m.DefaultCallback() == "") {
		return lifecycle.Invalidf("callback", "required: the http(s) URL that gets the task's state changes (or set [webhooks] url on the node as the default)")
	}
	return nil
}

// Delete removes a task that does not run, and its downloaded playlist
// items that no other task uses.
func (m *Manager) Delete(id string) error {
	var others []*Spec
	e, err := m.reg.Delete(id, func(*entry) error {
		others = m.specsLocked(id)
		return nil
	})
	if err != nil {
		return err
	}
	m.deps.dropCache(&e.Obj.spec, others)
	return nil
}

// specsLocked returns the specs of the tasks other than id.
func (m *Manager) specsLocked(id string) []*Spec {
	var out []*Spec
	m.reg.EachLocked(func(e *entry) {
		if e.ID != id {
			out = append(out, &e.Obj.spec)
		}
	})
	return out
}

// Start is the start action: only a Stopped task starts (a NotStarted
// one starts by itself at its start time; a Failed or Finished one is
// done). The refusal is a Conflict saying why.
func (m *Manager) Start(ctx context.Context, id string) error {
	var state lifecycle.State
	var start *time.Time
	if err := m.reg.Do(id, func(e *entry) error { state, start = e.State(), e.Obj.spec.Start; return nil }); err != nil {
		return err
	}
	switch {
	case state == lifecycle.Standby:
		return m.start(ctx, id)
	case state == lifecycle.Scheduled && start != nil:
		return lifecycle.Conflictf("state", "task %q is NotStarted: it starts by itself at its start_time %s (only a Stopped task is started by the start action)", id, start.Format(time.RFC3339))
	case state.Active():
		return lifecycle.Conflictf("state", "task %q is already Running", id)
	}
	return lifecycle.Conflictf("state", "task %q is %s: only a Stopped task starts (delete it and create it again)", id, state.TaskName())
}

// start starts the task. A playlist of local files (or of downloads
// already cached) is probed first, so a bad file or codec is refused here
// naming the item; a playlist with items still to download starts in the
// background: the task is Running (lifecycle starting) with phase
// "preparing" until every item is fetched and probed, then runs, or
// fails with the reason. It never waits on the network.
func (m *Manager) start(ctx context.Context, id string) error {
	var e *entry
	var spec Spec
	var prev lifecycle.State
	var download bool
	err := m.reg.Do(id, func(x *entry) error {
		if x.State().Active() {
			return lifecycle.Conflictf("state", "task %q is already Running", id)
		}
		if end := x.Obj.spec.End; lifecycle.Ended(end, m.reg.Now()) {
			return lifecycle.Conflictf("end_time", "task %q ended at %s: set a later end_time first", id, end.Format(time.RFC3339))
		}
		e, spec, prev = x, x.Obj.spec, x.State()
		download = m.deps.needsDownload(&spec)
		return x.Move(lifecycle.Starting, "") // refused beyond objects.max_running_tasks
	})
	if err != nil {
		return err
	}
	var paths []string
	if !download {
		var err error
		paths, err = Probe(ctx, m.deps, &spec) // local files only: no network
		if err != nil {
			// a refused start leaves the task where it was
			m.reg.With(e, func(e *entry) {
				m.move(e, lifecycle.Stopping, "", "")
				m.move(e, prev, "", "")
			})
			field, msg, _ := cut(err.Error())
			return lifecycle.Invalidf(field, "%s", msg)
		}
	}
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var closing bool
	m.reg.With(e, func(e *entry) {
		if closing = m.closing; closing {
			return // it stays starting: the node's next start starts it
		}
		e.Obj.cancel, e.Obj.done, e.Obj.stopState = cancel, done, lifecycle.Standby
		if download {
			e.Obj.preparing = true
		} else {
			m.playLocked(e, spec, paths)
		}
		m.wg.Add(1)
	})
	if closing {
		cancel()
		return errClosing
	}
	go func() {
		defer m.wg.Done()
		m.run(rctx, e, spec, download, done)
	}()
	return nil
}

// playLocked makes e run spec's player on paths.
func (m *Manager) playLocked(e *entry, spec Spec, paths []string) {
	pl := newPlayer(spec, paths, m.deps)
	if e.Obj.resume {
		pl.from = Position{Item: e.Obj.item, Pass: e.Obj.pass}
		e.Obj.resume = false
	}
	pl.onItem = func(i, pass int) {
		m.reg.With(e, func(e *entry) {
			e.Obj.item, e.Obj.pass = i, pass
			e.Changed() // saved, so a restart resumes at this item
			m.notify(e, "item-changed", "")
		})
	}
	e.Obj.player = pl
	m.move(e, lifecycle.Running, "", "started")
}

// run prepares the task when it has downloads (the task stays starting,
// phase preparing, meanwhile), then plays it until rctx ends or the
// playlist is done, and sets the state it ends in.
func (m *Manager) run(rctx context.Context, e *entry, spec Spec, download bool, done chan struct{}) {
	defer close(done)
	if download {
		paths, err := Probe(rctx, m.deps, &spec)
		var stop bool
		m.reg.With(e, func(e *entry) {
			e.Obj.preparing = false
			stop = true
			switch {
			case rctx.Err() != nil && e.Obj.stopState == "":
				// the node is shutting down: stay starting, so a restart
				// prepares it again
			case rctx.Err() != nil:
				e.Obj.cancel = nil
				m.move(e, e.Obj.stopState, "", "stopped")
			case err != nil:
				e.Obj.cancel = nil
				m.move(e, lifecycle.Error, err.Error(), "failed")
			case e.State() == lifecycle.Stopping:
				// stopped as the downloads ended, before the cancel came
				e.Obj.cancel = nil
				m.move(e, e.Obj.stopState, "", "stopped")
			default:
				stop = false
				m.playLocked(e, spec, paths)
			}
		})
		if stop {
			return
		}
	}
	var pl *player
	m.reg.With(e, func(e *entry) { pl = e.Obj.player })
	err := pl.run(rctx)
	m.reg.With(e, func(e *entry) {
		if e.Obj.player != pl {
			return
		}
		e.Obj.player, e.Obj.cancel = nil, nil
		switch {
		case rctx.Err() != nil && e.Obj.stopState == "", errors.Is(err, media.ErrHubClosed):
			// the node is shutting down (the hub closes before the tasks
			// are stopped): keep Running for the restart
		case rctx.Err() != nil:
			ev := "stopped"
			if e.Obj.stopState == lifecycle.Finished {
				ev = "finished"
			}
			m.move(e, e.Obj.stopState, "", ev)
		case err != nil:
			m.move(e, lifecycle.Error, err.Error(), "failed")
		default:
			m.move(e, lifecycle.Finished, "", "finished")
		}
	})
}

func cut(s string) (field, msg string, ok bool) {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == ':' && s[i+1] == ' ' {
			return s[:i], s[i+2:], true
		}
	}
	return "source", s, false
}

func (m *Manager) fail(id string, err error) {
	m.reg.Do(id, func(e *entry) error {
		if !e.State().Active() {
			m.move(e, lifecycle.Error, err.Error(), "failed")
		}
		return nil
	})
}

// Fail puts a task that does not run into error (Failed) with reason: a
// task the agent restores but does not start again.
func (m *Manager) Fail(id, reason string) { m.fail(id, errors.New(reason)) }

// Stop is the stop action: a Running task stops (Stopped).
func (m *Manager) Stop(_ context.Context, id string) error { return m.stop(id, false) }

// stop stops a running task: Stopped, or with finished=true at the end of
// its window, Finished.
func (m *Manager) stop(id string, finished bool) error {
	var cancel context.CancelFunc
	var done chan struct{}
	err := m.reg.Do(id, func(e *entry) error {
		if !e.State().Active() || e.Obj.cancel == nil {
			return lifecycle.Conflictf("state", "task %q is %s, not Running", id, e.StateName())
		}
		e.Obj.stopState = lifecycle.Standby
		if finished {
			e.Obj.stopState = lifecycle.Finished
		}
		cancel, done = e.Obj.cancel, e.Obj.done
		return e.Move(lifecycle.Stopping, "")
	})
	if err != nil {
		return err
	}
	cancel()
	<-done
	return nil
}

// Restart stops a Running task and starts it again; any other state is
// a Conflict.
func (m *Manager) Restart(ctx context.Context, id string) error {
	var state lifecycle.State
	if err := m.reg.Do(id, func(e *entry) error { state = e.State(); return nil }); err != nil {
		return err
	}
	if state != lifecycle.Running {
		return lifecycle.Conflictf("state", "task %q is %s: only a Running task restarts (start a Stopped one)", id, state.TaskName())
	}
	if err := m.stop(id, false); err != nil {
		return err
	}
	return m.start(ctx, id)
}

// Run is the scheduler: it starts NotStarted tasks at their start time
// and finishes tasks at their end time.
func (m *Manager) Run(ctx context.Context) error {
	lifecycle.Schedule(ctx, 250*time.Millisecond, nil, func() { m.tick(ctx) })
	return nil
}

func (m *Manager) tick(ctx context.Context) {
	now := m.reg.Now()
	var start, finish []string
	m.reg.Each(func(e *entry) {
		ended := lifecycle.Ended(e.Obj.spec.End, now)
		switch {
		case e.State() == lifecycle.Running && ended:
			finish = append(finish, e.ID)
		case e.State() == lifecycle.Scheduled && ended:
			m.move(e, lifecycle.Finished, "the time window ended before the task started", "finished")
		case e.State() == lifecycle.Scheduled && lifecycle.Due(e.Obj.spec.Start, now) && !m.closing:
			m.wg.Add(1)
			start = append(start, e.ID)
		}
	})
	for _, id := range finish {
		m.stop(id, true)
	}
	for _, id := range start {
		go func() {
			defer m.wg.Done()
			if err := m.start(ctx, id); err != nil && !errors.Is(err, errClosing) {
				m.fail(id, err)
			}
		}()
	}
}

// Get returns one task.
func (m *Manager) Get(id string) (View, bool) { return lifecycle.Get(m.reg, id, m.viewLocked) }

// List returns every task by id.
func (m *Manager) List() []View { return lifecycle.List(m.reg, m.viewLocked) }

func (m *Manager) viewLocked(e *entry) View {
	o := &e.Obj
	v := View{Spec: o.spec, State: e.StateName(), Internal: e.State(), Reason: e.Reason(), Since: e.Since(),
		Item: o.item, Pass: o.pass, ReadOnly: e.ReadOnly, Origin: lifecycle.Origin(e.ReadOnly), Stream: o.spec.Key()}
	if o.preparing {
		v.Phase = "preparing"
	}
	if o.player == nil {
		if k, ok := (&player{spec: o.spec, deps: m.deps}).destKey(); ok {
			v.Stream = k // where it publishes once it runs
		}
	}
	if o.player != nil {
		if k, ok := o.player.destKey(); ok {
			v.Stream = k
		}
		if o.player.pusher != nil {
			v.LastError = o.player.pusher.Status().LastError
		}
		if o.player.puller != nil {
			v.LastError = o.player.puller.Status().LastError
		}
	}
	return v
}

// IDs returns the ids of config-declared (readOnly) or API-made tasks.
func (m *Manager) IDs(readOnly bool) []string { return m.reg.IDs(readOnly) }

// Remove stops and deletes a task regardless of its state (reload), with
// its downloaded items that no other task uses.
func (m *Manager) Remove(id string) {
	m.stop(id, false)
	var others []*Spec
	m.reg.Read(func() { others = m.specsLocked(id) })
	if e := m.reg.Remove(id); e != nil {
		m.deps.dropCache(&e.Obj.spec, others)
	}
}

// Close stops the players and waits for them; states stay as they were
// so a restart resumes running tasks.
func (m *Manager) Close() error {
	var dones []chan struct{}
	m.reg.Read(func() {
		m.closing = true
		m.reg.EachLocked(func(e *entry) {
			if e.Obj.cancel != nil {
				e.Obj.stopState = ""
				e.Obj.cancel()
				dones = append(dones, e.Obj.done)
			}
		})
	})
	for _, d := range dones {
		<-d
	}
	m.wg.Wait()
	return nil
}
