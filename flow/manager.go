package flow

import (
	"context"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/relaymesh/relaymesh/lifecycle"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/netutil"
)

// View is a flow as the API shows it.
type View struct {
	Spec
	State    lifecycle.State `json:"state"`
	Reason   string          `json:"reason,omitempty"`
	Since    time.Time       `json:"since"`
	ReadOnly bool            `json:"read_only"`
	Origin   string          `json:"origin"` // "config" or "api"
	Status   *Status         `json:"status,omitempty"`
	// Warnings name what keeps a flow source from delivering (the flow it
	// names is missing, not started, or has no such output): it is not
	// refused for it, and connects by itself once that is fixed (remote.go).
	Warnings []string `json:"warnings,omitempty"`
	// URLs are where to publish to its sources and play its outputs.
	URLs *URLs `json:"urls,omitempty"`
}

type entry struct {
	spec     Spec
	readOnly bool
	state    lifecycle.State
	reason   string
	since    time.Time
	run      *Runner
	cancel   context.CancelFunc
	done     chan struct{}
}

// Manager owns the node's flows and their state machines.
type Manager struct {
	hub *media.Hub
	log *slog.Logger
	// OnChange is called (without locks held) after a flow changed state
	// or spec, so the owner can persist it.
	OnChange func(id string)
	// OnSwitch is passed to every runner.
	OnSwitch func(id string, sw Switch)
	// Policy is the outbound policy of pull sources and push outputs,
	// read at each connection attempt (nil: none).
	Policy func() *netutil.FetchPolicy
	// MaxOutputs caps a flow's outputs (nil or 0: no cap).
	MaxOutputs func() int
	// Cluster resolves flow sources that name other nodes' flows and the
	// users of this node's outputs (nil: a node alone).
	Cluster Cluster
	// URLs, when set, gives a flow's URLs for the API (urls.go).
	URLs func(*Spec) *URLs
	// Deliver resolves flow outputs that deliver to another node's flow
	// (deliver.go; nil: a node alone).
	Deliver Deliver

	now func() time.Time

	mu    sync.Mutex
	flows map[string]*entry
	wg    sync.WaitGroup
	// switches counts every flow's source switches by reason
	switches map[string]uint64
}

// NewManager returns an empty manager.
func NewManager(hub *media.Hub, log *slog.Logger) *Manager {
	return &Manager{hub: hub, log: log, flows: map[string]*entry{}, now: time.Now}
}

func (m *Manager) changed(id string) {
	if m.OnChange != nil {
		m.OnChange(id)
	}
}

// Create adds a flow. state is the state to come back in (config or
// restart): running starts it (unless its window has ended), anything
// else rests (scheduled with a start time, finished after the end time,
// else standby). "" is a new flow from the API: an end time must lie in
// the future.
func (m *Manager) Create(spec Spec, readOnly bool, state lifecycle.State) error {
	spec.Normalize()
	now := m.now()
	if state == "" {
		if err := lifecycle.CheckWindow(spec.Start, spec.End, now); err != nil {
			return err
		}
		if err := m.checkOutputs(&spec); err != nil {
			return err
		}
	}
	m.mu.Lock()
	if err := spec.Validate(m.lookupLocked); err != nil {
		m.mu.Unlock()
		return err
	}
	if err := m.checkSRTLocked(&spec); err != nil {
		m.mu.Unlock()
		return err
	}
	if _, ok := m.flows[spec.ID]; ok {
		m.mu.Unlock()
		return lifecycle.Newf(lifecycle.Exists, "id", "a flow %q exists", spec.ID)
	}
	rest := lifecycle.Resting(spec.Start, spec.End, now)
	e := &entry{spec: spec, readOnly: readOnly, state: rest, since: now}
	m.flows[spec.ID] = e
	m.mu.Unlock()
	m.changed(spec.ID)
	if state.Active() && rest != lifecycle.Finished {
		if err := m.Start(spec.ID); err != nil {
			m.log.Warn("flow did not start again", "flow", spec.ID, "err", err)
		}
	}
	return nil
}

// checkOutputs refuses more outputs than MaxOutputs.
func (m *Manager) checkOutputs(spec *Spec) error {
	if m.MaxOutputs == nil {
		return nil
	}
	if max := m.MaxOutputs(); max > 0 && len(spec.Outputs) > max {
		return lifecycle.Invalidf("outputs", "%d outputs is more than %d, the most a flow has here (objects.max_outputs)", len(spec.Outputs), max)
	}
	return nil
}

// Changed returns the edit parts that differ between two specs.
func Changed(a, b *Spec) []lifecycle.Part {
	var out []lifecycle.Part
	if a.Description != b.Description {
		out = append(out, lifecycle.PartName)
	}
	if !reflect.DeepEqual(a.Source, b.Source) || !reflect.DeepEqual(a.Backup, b.Backup) || a.MaxBandwidth != b.MaxBandwidth {
		out = append(out, lifecycle.PartSource)
	}
	if !reflect.DeepEqual(a.Outputs, b.Outputs) {
		out = append(out, lifecycle.PartOutputs)
	}
	if !lifecycle.SameTime(a.Start, b.Start) || !lifecycle.SameTime(a.End, b.End) {
		out = append(out, lifecycle.PartWindow)
	}
	return out
}

// Update replaces a flow's spec as its state allows. A running flow whose
// source changed restarts its data plane (players stay connected through
// the hub's reconnect grace).
func (m *Manager) Update(spec Spec) error {
	spec.Normalize()
	if err := m.checkOutputs(&spec); err != nil {
		return err
	}
	m.mu.Lock()
	e := m.flows[spec.ID]
	if e == nil {
		m.mu.Unlock()
		return lifecycle.Newf(lifecycle.NotFound, "", "no flow %q", spec.ID)
	}
	if err := spec.Validate(m.lookupLocked); err != nil {
		m.mu.Unlock()
		return err
	}
	if err := m.checkSRTLocked(&spec); err != nil {
		m.mu.Unlock()
		return err
	}
	if err := m.checkUsersLocked(&e.spec, &spec); err != nil {
		m.mu.Unlock()
		return err
	}
	parts := Changed(&e.spec, &spec)
	if err := lifecycle.FlowRules.Check(e.state, string(e.state), parts...); err != nil {
		m.mu.Unlock()
		return err
	}
	now := m.now()
	if slices.Contains(parts, lifecycle.PartWindow) {
		if err := lifecycle.CheckWindow(spec.Start, spec.End, now); err != nil {
			m.mu.Unlock()
			return err
		}
	}
	restart := e.state == lifecycle.Running && slices.Contains(parts, lifecycle.PartSource)
	e.spec = spec
	switch e.state {
	case lifecycle.Standby, lifecycle.Scheduled, lifecycle.Finished:
		if rest := lifecycle.Resting(spec.Start, spec.End, now); rest != e.state {
			m.setLocked(e, rest, "")
		}
	}
	m.mu.Unlock()
	if restart {
		m.stop(spec.ID, lifecycle.Standby, "")
		if err := m.Start(spec.ID); err != nil {
			return err
		}
	}
	m.changed(spec.ID)
	return nil
}

// Delete removes a flow that does not run.
func (m *Manager) Delete(id string) error {
	m.mu.Lock()
	e := m.flows[id]
	if e == nil {
		m.mu.Unlock()
		return lifecycle.Newf(lifecycle.NotFound, "", "no flow %q", id)
	}
	if e.state.Active() {
		m.mu.Unlock()
		return lifecycle.Conflictf("state", "flow %q is %s: stop it before deleting it", id, e.state)
	}
	if err := m.checkUsersLocked(&e.spec, nil); err != nil {
		m.mu.Unlock()
		return err
	}
	delete(m.flows, id)
	m.mu.Unlock()
	m.changed(id)
	return nil
}

// Start starts a flow: standby (or error) -> starting -> running. The
// change is saved (OnChange) before Start returns, so an API answer means
// the state is on disk.
func (m *Manager) Start(id string) error {
	if err := m.start(id); err != nil {
		return err
	}
	m.changed(id)
	return nil
}

func (m *Manager) start(id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.flows[id]
	if e == nil {
		return lifecycle.Newf(lifecycle.NotFound, "", "no flow %q", id)
	}
	if e.state.Active() {
		return lifecycle.Conflictf("state", "flow %q is already %s", id, e.state)
	}
	if len(e.spec.Outputs) == 0 {
		return lifecycle.Conflictf("outputs", "flow %q has no output: add one before starting it", id)
	}
	if !e.state.Can(lifecycle.Starting) {
		return lifecycle.Conflictf("state", "flow %q cannot start from %s", id, e.state)
	}
	if lifecycle.Ended(e.spec.End, m.now()) {
		return lifecycle.Conflictf("end_time", "flow %q ended at %s: set a later end_time first", id, e.spec.End.Format(time.RFC3339))
	}
	ctx, cancel := context.WithCancel(context.Background())
	run := NewRunner(e.spec, m.hub, m.log)
	run.policy = m.Policy
	run.deliver = m.Deliver
	run.OnSwitch = func(sw Switch) {
		m.mu.Lock()
		if m.switches == nil {
			m.switches = map[string]uint64{}
		}
		m.switches[sw.Reason]++
		m.mu.Unlock()
		if m.OnSwitch != nil {
			m.OnSwitch(id, sw)
		}
	}
	e.run, e.cancel, e.done = run, cancel, make(chan struct{})
	m.setLocked(e, lifecycle.Starting, "")
	done := e.done
	m.wg.Add(2)
	go func() {
		defer m.wg.Done()
		select {
		case <-run.Running():
			m.mu.Lock()
			if e.run == run && e.state == lifecycle.Starting {
				m.setLocked(e, lifecycle.Running, "")
			}
			m.mu.Unlock()
			m.changed(id)
		case <-done:
		}
	}()
	go func() {
		defer m.wg.Done()
		defer close(done)
		err := run.Run(ctx)
		if err != nil && ctx.Err() == nil {
			m.mu.Lock()
			if e.run == run {
				m.setLocked(e, lifecycle.Error, err.Error())
				e.run, e.cancel = nil, nil
			}
			m.mu.Unlock()
			m.log.Warn("flow failed", "flow", id, "err", err)
			m.changed(id)
		}
	}()
	return nil
}

func (m *Manager) setLocked(e *entry, s lifecycle.State, reason string) {
	e.state, e.reason, e.since = s, reason, time.Now()
}

// Fail puts a flow that does not run into error with reason: a flow the
// agent restores but does not start again.
func (m *Manager) Fail(id, reason string) {
	m.mu.Lock()
	if e := m.flows[id]; e != nil && !e.state.Active() {
		m.setLocked(e, lifecycle.Error, reason)
	}
	m.mu.Unlock()
	m.changed(id)
}

// Stop stops a running flow: running -> stopping -> standby.
func (m *Manager) Stop(id string) error {
	m.mu.Lock()
	e := m.flows[id]
	if e == nil {
		m.mu.Unlock()
		return lifecycle.Newf(lifecycle.NotFound, "", "no flow %q", id)
	}
	if !e.state.Active() {
		m.mu.Unlock()
		return lifecycle.Conflictf("state", "flow %q is %s, not running", id, e.state)
	}
	m.mu.Unlock()
	m.stop(id, lifecycle.Standby, "")
	m.changed(id)
	return nil
}

func (m *Manager) stop(id string, to lifecycle.State, reason string) {
	m.mu.Lock()
	e := m.flows[id]
	if e == nil || e.cancel == nil {
		if e != nil && e.state.Active() {
			m.setLocked(e, to, reason)
		}
		m.mu.Unlock()
		return
	}
	cancel, done := e.cancel, e.done
	m.setLocked(e, lifecycle.Stopping, "")
	m.mu.Unlock()
	cancel()
	<-done
	m.mu.Lock()
	e.run, e.cancel = nil, nil
	m.setLocked(e, to, reason)
	m.mu.Unlock()
}

// Run is the scheduler: it starts scheduled flows at their start time and
// stops flows at their end time (finished), until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			m.tick()
		}
	}
}

func (m *Manager) tick() {
	now := m.now()
	var start, finish, expire []string
	m.mu.Lock()
	for id, e := range m.flows {
		ended := lifecycle.Ended(e.spec.End, now)
		switch {
		case e.state.Active() && ended:
			finish = append(finish, id)
		case e.state == lifecycle.Scheduled && ended:
			expire = append(expire, id)
		case e.state == lifecycle.Scheduled && lifecycle.Due(e.spec.Start, now):
			start = append(start, id)
		}
	}
	for _, id := range expire {
		m.setLocked(m.flows[id], lifecycle.Finished, "the time window ended before the flow started")
	}
	m.mu.Unlock()
	for _, id := range expire {
		m.changed(id)
	}
	for _, id := range finish {
		m.stop(id, lifecycle.Finished, "")
		m.log.Info("flow finished: its time window ended", "flow", id)
		m.changed(id)
	}
	for _, id := range start {
		if err := m.Start(id); err != nil {
			m.mu.Lock()
			if e := m.flows[id]; e != nil && e.state == lifecycle.Scheduled {
				m.setLocked(e, lifecycle.Error, err.Error())
			}
			m.mu.Unlock()
			m.log.Warn("scheduled flow did not start", "flow", id, "err", err)
			m.changed(id)
		}
	}
}

// Get returns one flow.
func (m *Manager) Get(id string) (View, bool) { return lifecycle.Get(&m.mu, m.flows, id, m.viewLocked) }

// List returns every flow by id.
func (m *Manager) List() []View { return lifecycle.List(&m.mu, m.flows, m.viewLocked) }

func (m *Manager) viewLocked(e *entry) View {
	v := View{Spec: e.spec, State: e.state, Reason: e.reason, Since: e.since, ReadOnly: e.readOnly, Origin: lifecycle.Origin(e.readOnly)}
	if e.run != nil {
		st := e.run.Status()
		v.Status = &st
		if v.Reason == "" {
			v.Reason = st.Reason // a source or output cut for its bitrate
		}
	}
	m.annotateLocked(&v)
	return v
}

// IDs returns the ids of the flows that are (readOnly) or are not
// (!readOnly) declared in the config.
func (m *Manager) IDs(readOnly bool) []string {
	return lifecycle.IDs(&m.mu, m.flows, func(e *entry) bool { return e.readOnly == readOnly })
}

// Remove stops and deletes a flow regardless of its state (reload).
func (m *Manager) Remove(id string) {
	m.stop(id, lifecycle.Standby, "")
	m.mu.Lock()
	delete(m.flows, id)
	m.mu.Unlock()
}

// Close stops every flow and waits for them.
func (m *Manager) Close() error {
	m.mu.Lock()
	ids := make([]string, 0, len(m.flows))
	for id := range m.flows {
		ids = append(ids, id)
	}
	m.mu.Unlock()
	for _, id := range ids {
		m.mu.Lock()
		e := m.flows[id]
		cancel, done := e.cancel, e.done
		m.mu.Unlock()
		if cancel != nil {
			cancel()
			<-done
		}
	}
	m.wg.Wait()
	return nil
}

// SwitchCounts returns how many times the node's flows switched sources,
// by reason ("silence", "primary back", "health: framerate", ...).
func (m *Manager) SwitchCounts() map[string]uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]uint64, len(m.switches))
	for k, v := range m.switches {
		out[k] = v
	}
	return out
}
