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

type entry struct {
	spec      Spec
	readOnly  bool
	state     lifecycle.State
	reason    string
	since     time.Time
	item      int
	pass      int
	cancel    context.CancelFunc
	done      chan struct{}
	player    *player
	stopState lifecycle.State // what a cancel ends in: standby or finished
	resume    bool            // the next start continues at item/pass (restart of the node)
	preparing bool            // starting: the playlist is being downloaded and probed
}

// Position is where a task is in its playlist: the item index and the
// 1-based pass (loop) through the playlist.
type Position struct {
	Item int `json:"item"`
	Pass int `json:"pass"`
}

// Manager owns the node's tasks, their state machines and their schedule.
type Manager struct {
	deps       *Deps
	maxRunning func() int
	// NotifierFor returns the webhook for a callback URL ("" = none).
	NotifierFor func(callback string) Notifier
	// OnChange is called (without locks) after a task changed.
	OnChange func(id string)
	// DefaultCallback is the node's webhook URL ([webhooks] url), used by
	// tasks without a callback; a task needs one of the two.
	DefaultCallback func() string
	now             func() time.Time

	mu    sync.Mutex
	tasks map[string]*entry
	wg    sync.WaitGroup
}

// NewManager returns an empty manager; maxRunning is read on every start.
func NewManager(deps *Deps, maxRunning func() int) *Manager {
	return &Manager{deps: deps, maxRunning: maxRunning, tasks: map[string]*entry{}, now: time.Now}
}

func (m *Manager) changed(id string) {
	if m.OnChange != nil {
		m.OnChange(id)
	}
}

func (m *Manager) notify(e *entry, event, reason string) {
	if m.NotifierFor == nil {
		return
	}
	n := m.NotifierFor(e.spec.Callback)
	if n == nil {
		return
	}
	ev := Event{Event: event, Task: e.spec.ID, State: e.state.TaskName(), Time: m.now().UTC(), Reason: reason}
	if event == "item-changed" {
		i := e.item
		ev.Item, ev.Loop = &i, e.pass
		if i < len(e.spec.Source.Playlist) {
			ev.URL = e.spec.Source.Playlist[i]
		}
	}
	n.Notify(event, ev)
}

// Create adds a task. state is the state it comes back in after a
// restart; "" is a new task (NotStarted).
func (m *Manager) Create(spec Spec, readOnly bool, state lifecycle.State) error {
	return m.create(spec, readOnly, state, nil)
}

// Restore adds a task read back from the store: a task that was running
// starts again at the playlist item and pass it had reached.
func (m *Manager) Restore(spec Spec, state lifecycle.State, at Position) error {
	return m.create(spec, false, state, &at)
}

func (m *Manager) create(spec Spec, readOnly bool, state lifecycle.State, at *Position) error {
	spec.Normalize()
	if state == "" {
		if err := spec.Validate(m.now()); err != nil {
			return err
		}
		if err := m.checkCallback(&spec); err != nil {
			return err
		}
	}
	m.mu.Lock()
	if _, ok := m.tasks[spec.ID]; ok {
		m.mu.Unlock()
		return lifecycle.Newf(lifecycle.Exists, "id", "a task %q exists", spec.ID)
	}
	// a task with a start time waits for it (NotStarted); one without
	// waits for the start action (Stopped)
	st := state
	if st == "" || st == lifecycle.Scheduled || st.Active() {
		st = resting(&spec)
	}
	e := &entry{spec: spec, readOnly: readOnly, state: st, since: m.now()}
	if at != nil && state.Active() && at.Item >= 0 && at.Item < len(spec.Source.Playlist) && at.Pass >= 1 {
		e.item, e.pass, e.resume = at.Item, at.Pass, true
	}
	m.tasks[spec.ID] = e
	m.mu.Unlock()
	m.changed(spec.ID)
	if state.Active() {
		if err := m.start(context.Background(), spec.ID); err != nil {
			m.fail(spec.ID, err)
		}
	}
	return nil
}

// Update replaces a task's spec as its state allows: NotStarted: time,
// callback and source; Stopped: callback and source; otherwise nothing.
func (m *Manager) Update(spec Spec) error {
	spec.Normalize()
	if err := spec.Validate(m.now()); err != nil {
		return err
	}
	m.mu.Lock()
	e := m.tasks[spec.ID]
	if e == nil {
		m.mu.Unlock()
		return lifecycle.Newf(lifecycle.NotFound, "", "no task %q", spec.ID)
	}
	if err := lifecycle.TaskRules.Check(e.state, e.state.TaskName(), Changed(&e.spec, &spec)...); err != nil {
		m.mu.Unlock()
		return err
	}
	if err := m.checkCallback(&spec); err != nil {
		m.mu.Unlock()
		return err
	}
	e.spec = spec
	if e.state == lifecycle.Scheduled && spec.Start == nil {
		m.setLocked(e, lifecycle.Standby, "") // no start time left: it waits for the start action
	}
	m.mu.Unlock()
	m.changed(spec.ID)
	return nil
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
	m.mu.Lock()
	e := m.tasks[id]
	if e == nil {
		m.mu.Unlock()
		return lifecycle.Newf(lifecycle.NotFound, "", "no task %q", id)
	}
	if e.state.Active() {
		m.mu.Unlock()
		return lifecycle.Conflictf("state", "task %q is Running: stop it before deleting it", id)
	}
	delete(m.tasks, id)
	others := m.specsLocked()
	m.mu.Unlock()
	m.deps.dropCache(&e.spec, others)
	m.changed(id)
	return nil
}

func (m *Manager) specsLocked() []*Spec {
	out := make([]*Spec, 0, len(m.tasks))
	for _, e := range m.tasks {
		out = append(out, &e.spec)
	}
	return out
}

func (m *Manager) runningLocked() int {
	n := 0
	for _, e := range m.tasks {
		if e.state.Active() {
			n++
		}
	}
	return n
}

// Start is the start action: only a Stopped task starts (a NotStarted
// one starts by itself at its start time; a Failed or Finished one is
// done). The refusal is a Conflict saying why.
func (m *Manager) Start(ctx context.Context, id string) error {
	m.mu.Lock()
	e := m.tasks[id]
	if e == nil {
		m.mu.Unlock()
		return lifecycle.Newf(lifecycle.NotFound, "", "no task %q", id)
	}
	state, start := e.state, e.spec.Start
	m.mu.Unlock()
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
	m.mu.Lock()
	e := m.tasks[id]
	if e == nil {
		m.mu.Unlock()
		return lifecycle.Newf(lifecycle.NotFound, "", "no task %q", id)
	}
	if e.state.Active() {
		m.mu.Unlock()
		return lifecycle.Conflictf("state", "task %q is already Running", id)
	}
	if e.spec.End != nil && !e.spec.End.After(m.now()) {
		m.mu.Unlock()
		return lifecycle.Conflictf("end_time", "task %q ended at %s: set a later end_time first", id, e.spec.End.Format(time.RFC3339))
	}
	if max := m.maxRunning(); max > 0 && m.runningLocked() >= max {
		m.mu.Unlock()
		return lifecycle.Newf(lifecycle.Limit, "", "%d tasks are running, the most this node runs (objects.max_running_tasks)", max)
	}
	spec, prev := e.spec, e.state
	m.setLocked(e, lifecycle.Starting, "")
	download := m.deps.needsDownload(&spec)
	var paths []string
	if !download {
		m.mu.Unlock()
		var err error
		paths, err = Probe(ctx, m.deps, &spec) // local files only: no network
		m.mu.Lock()
		if err != nil {
			m.setLocked(e, prev, "") // a refused start changes nothing
			m.mu.Unlock()
			field, msg, _ := cut(err.Error())
			return lifecycle.Invalidf(field, "%s", msg)
		}
	}
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	e.cancel, e.done, e.stopState = cancel, done, lifecycle.Standby
	if download {
		e.preparing = true
	} else {
		m.playLocked(e, spec, paths)
	}
	m.mu.Unlock()
	m.changed(id)
	m.wg.Go(func() { m.run(rctx, id, e, spec, download, done) })
	return nil
}

// playLocked makes e run spec's player on paths.
func (m *Manager) playLocked(e *entry, spec Spec, paths []string) {
	id := spec.ID
	pl := newPlayer(spec, paths, m.deps)
	if e.resume {
		pl.from = Position{Item: e.item, Pass: e.pass}
		e.resume = false
	}
	pl.onItem = func(i, pass int) {
		m.mu.Lock()
		e.item, e.pass = i, pass
		m.notify(e, "item-changed", "")
		m.mu.Unlock()
		m.changed(id) // saved, so a restart resumes at this item
	}
	e.player = pl
	m.setLocked(e, lifecycle.Running, "")
	m.notify(e, "started", "")
}

// run prepares the task when it has downloads (the task stays starting,
// phase preparing, meanwhile), then plays it until rctx ends or the
// playlist is done, and sets the state it ends in.
func (m *Manager) run(rctx context.Context, id string, e *entry, spec Spec, download bool, done chan struct{}) {
	defer close(done)
	if download {
		paths, err := Probe(rctx, m.deps, &spec)
		m.mu.Lock()
		e.preparing = false
		switch {
		case rctx.Err() != nil && e.stopState == "":
			// the node is shutting down: stay starting, so a restart
			// prepares it again
			m.mu.Unlock()
			return
		case rctx.Err() != nil:
			e.cancel = nil
			m.setLocked(e, e.stopState, "")
			m.notify(e, "stopped", "")
			m.mu.Unlock()
			m.changed(id)
			return
		case err != nil:
			e.cancel = nil
			m.setLocked(e, lifecycle.Error, err.Error())
			m.notify(e, "failed", err.Error())
			m.mu.Unlock()
			m.changed(id)
			return
		}
		m.playLocked(e, spec, paths)
		m.mu.Unlock()
		m.changed(id)
	}
	m.mu.Lock()
	pl := e.player
	m.mu.Unlock()
	err := pl.run(rctx)
	m.mu.Lock()
	if e.player != pl {
		m.mu.Unlock()
		return
	}
	e.player, e.cancel = nil, nil
	switch {
	case rctx.Err() != nil && e.stopState == "", errors.Is(err, media.ErrHubClosed):
		// the node is shutting down (the hub closes before the tasks
		// are stopped): keep Running for the restart
		m.mu.Unlock()
		return
	case rctx.Err() != nil:
		m.setLocked(e, e.stopState, "")
		ev := "stopped"
		if e.stopState == lifecycle.Finished {
			ev = "finished"
		}
		m.notify(e, ev, "")
	case err != nil:
		m.setLocked(e, lifecycle.Error, err.Error())
		m.notify(e, "failed", err.Error())
	default:
		m.setLocked(e, lifecycle.Finished, "")
		m.notify(e, "finished", "")
	}
	m.mu.Unlock()
	m.changed(id)
}

func cut(s string) (field, msg string, ok bool) {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == ':' && s[i+1] == ' ' {
			return s[:i], s[i+2:], true
		}
	}
	return "source", s, false
}

func (m *Manager) setLocked(e *entry, s lifecycle.State, reason string) {
	e.state, e.reason, e.since = s, reason, m.now()
}

func (m *Manager) fail(id string, err error) {
	m.mu.Lock()
	if e := m.tasks[id]; e != nil && !e.state.Active() {
		m.setLocked(e, lifecycle.Error, err.Error())
		m.notify(e, "failed", err.Error())
	}
	m.mu.Unlock()
	m.changed(id)
}

// Fail puts a task that does not run into error (Failed) with reason: a
// task the agent restores but does not start again.
func (m *Manager) Fail(id, reason string) { m.fail(id, errors.New(reason)) }

// Stop stops a running task (Stopped), or with finished=true at the end
// of its window (Finished).
func (m *Manager) Stop(id string, finished bool) error {
	m.mu.Lock()
	e := m.tasks[id]
	if e == nil {
		m.mu.Unlock()
		return lifecycle.Newf(lifecycle.NotFound, "", "no task %q", id)
	}
	if !e.state.Active() || e.cancel == nil {
		m.mu.Unlock()
		return lifecycle.Conflictf("state", "task %q is %s, not Running", id, e.state.TaskName())
	}
	e.stopState = lifecycle.Standby
	if finished {
		e.stopState = lifecycle.Finished
	}
	cancel, done := e.cancel, e.done
	m.mu.Unlock()
	cancel()
	<-done
	return nil
}

// Restart stops a Running task and starts it again; any other state is
// a Conflict.
func (m *Manager) Restart(ctx context.Context, id string) error {
	m.mu.Lock()
	e := m.tasks[id]
	if e == nil {
		m.mu.Unlock()
		return lifecycle.Newf(lifecycle.NotFound, "", "no task %q", id)
	}
	state := e.state
	m.mu.Unlock()
	if state != lifecycle.Running {
		return lifecycle.Conflictf("state", "task %q is %s: only a Running task restarts (start a Stopped one)", id, state.TaskName())
	}
	if err := m.Stop(id, false); err != nil {
		return err
	}
	return m.start(ctx, id)
}

// Run is the scheduler: it starts NotStarted tasks at their start time
// and finishes tasks at their end time.
func (m *Manager) Run(ctx context.Context) error {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			m.tick(ctx)
		}
	}
}

func (m *Manager) tick(ctx context.Context) {
	now := m.now()
	var start, finish, expire []string
	m.mu.Lock()
	for id, e := range m.tasks {
		ended := e.spec.End != nil && !e.spec.End.After(now)
		switch {
		case e.state == lifecycle.Running && ended:
			finish = append(finish, id)
		case e.state == lifecycle.Scheduled && ended:
			expire = append(expire, id)
		case e.state == lifecycle.Scheduled && e.spec.Start != nil && !e.spec.Start.After(now):
			start = append(start, id)
		}
	}
	m.mu.Unlock()
	for _, id := range finish {
		m.Stop(id, true)
	}
	for _, id := range expire {
		m.mu.Lock()
		if e := m.tasks[id]; e != nil && e.state == lifecycle.Scheduled {
			m.setLocked(e, lifecycle.Finished, "the time window ended before the task started")
			m.notify(e, "finished", e.reason)
		}
		m.mu.Unlock()
		m.changed(id)
	}
	for _, id := range start {
		go func() {
			if err := m.start(ctx, id); err != nil {
				m.fail(id, err)
			}
		}()
	}
}

// Get returns one task.
func (m *Manager) Get(id string) (View, bool) { return lifecycle.Get(&m.mu, m.tasks, id, m.viewLocked) }

// List returns every task by id.
func (m *Manager) List() []View { return lifecycle.List(&m.mu, m.tasks, m.viewLocked) }

func (m *Manager) viewLocked(e *entry) View {
	v := View{Spec: e.spec, State: e.state.TaskName(), Internal: e.state, Reason: e.reason, Since: e.since,
		Item: e.item, Pass: e.pass, ReadOnly: e.readOnly, Origin: lifecycle.Origin(e.readOnly), Stream: e.spec.Key()}
	if e.preparing {
		v.Phase = "preparing"
	}
	if e.player == nil {
		if k, ok := (&player{spec: e.spec, deps: m.deps}).destKey(); ok {
			v.Stream = k // where it publishes once it runs
		}
	}
	if e.player != nil {
		if k, ok := e.player.destKey(); ok {
			v.Stream = k
		}
		if e.player.pusher != nil {
			v.LastError = e.player.pusher.Status().LastError
		}
		if e.player.puller != nil {
			v.LastError = e.player.puller.Status().LastError
		}
	}
	return v
}

// IDs returns the ids of config-declared (readOnly) or API-made tasks.
func (m *Manager) IDs(readOnly bool) []string {
	return lifecycle.IDs(&m.mu, m.tasks, func(e *entry) bool { return e.readOnly == readOnly })
}

// Remove stops and deletes a task regardless of its state (reload), with
// its downloaded items that no other task uses.
func (m *Manager) Remove(id string) {
	m.Stop(id, false)
	m.mu.Lock()
	e := m.tasks[id]
	delete(m.tasks, id)
	others := m.specsLocked()
	m.mu.Unlock()
	if e != nil {
		m.deps.dropCache(&e.spec, others)
	}
}

// Close stops the players and waits for them; states stay as they were
// so a restart resumes running tasks.
func (m *Manager) Close() error {
	m.mu.Lock()
	var dones []chan struct{}
	for _, e := range m.tasks {
		if e.cancel != nil {
			e.stopState = ""
			e.cancel()
			dones = append(dones, e.done)
		}
	}
	m.mu.Unlock()
	for _, d := range dones {
		<-d
	}
	m.wg.Wait()
	return nil
}
