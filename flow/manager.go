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

// object is a flow's own data in the registry.
type object struct {
	spec   Spec
	run    *Runner
	cancel context.CancelFunc
	done   chan struct{}
}

type entry = lifecycle.Entry[object]

// Manager owns the node's flows and their state machines; the registry
// keeps their states, the objects.max_flows limit and their persistence.
type Manager struct {
	hub *media.Hub
	log *slog.Logger
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

	// reg also counts every flow's source switches by reason
	// (SwitchCounts)
	reg *lifecycle.Registry[object]
	wg  sync.WaitGroup
}

// NewManager returns an empty manager; env.Limit is objects.max_flows.
func NewManager(hub *media.Hub, log *slog.Logger, env lifecycle.Env) *Manager {
	return &Manager{hub: hub, log: log, reg: lifecycle.NewRegistry[object](lifecycle.Options{
		Kind: "flow", Plural: "flows", LimitOf: lifecycle.LimitObjects, LimitKey: "objects.max_flows"}, env)}
}

// Create adds a flow. opts.State is the state to come back in (config or
// restart): running starts it (unless its window has ended), anything
// else rests (scheduled with a start time, finished after the end time,
// else standby). A new flow from the API (FromAPI) must have an end time
// in the future and counts against objects.max_flows.
func (m *Manager) Create(spec Spec, opts lifecycle.CreateOpts) error {
	spec.Normalize()
	now := m.reg.Now()
	if opts.From == lifecycle.FromAPI {
		if err := lifecycle.CheckWindow(spec.Start, spec.End, now); err != nil {
			return err
		}
		if err := m.checkOutputs(&spec); err != nil {
			return err
		}
	}
	rest := lifecycle.Resting(spec.Start, spec.End, now)
	_, err := m.reg.Add(spec.ID, opts, rest, object{spec: spec}, func() error {
		if err := spec.Validate(m.lookupLocked); err != nil {
			return err
		}
		if err := m.checkCycleLocked(&spec); err != nil {
			return err
		}
		return m.checkSRTLocked(&spec)
	})
	if err != nil {
		return err
	}
	if opts.State.Active() && rest != lifecycle.Finished {
		if err := m.Start(context.Background(), spec.ID); err != nil {
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
	var restart bool
	err := m.reg.Do(spec.ID, func(e *entry) error {
		if err := spec.Validate(m.lookupLocked); err != nil {
			return err
		}
		if err := m.checkCycleLocked(&spec); err != nil {
			return err
		}
		if err := m.checkSRTLocked(&spec); err != nil {
			return err
		}
		if err := m.checkUsersLocked(&e.Obj.spec, &spec); err != nil {
			return err
		}
		parts := Changed(&e.Obj.spec, &spec)
		if err := lifecycle.FlowRules.Check(e.State(), e.StateName(), parts...); err != nil {
			return err
		}
		now := m.reg.Now()
		if slices.Contains(parts, lifecycle.PartWindow) {
			if err := lifecycle.CheckWindow(spec.Start, spec.End, now); err != nil {
				return err
			}
		}
		restart = e.State() == lifecycle.Running && slices.Contains(parts, lifecycle.PartSource)
		e.Obj.spec = spec
		e.Changed()
		switch e.State() {
		case lifecycle.Standby, lifecycle.Scheduled, lifecycle.Finished:
			if rest := lifecycle.Resting(spec.Start, spec.End, now); rest != e.State() {
				return e.Move(rest, "")
			}
		}
		return nil
	})
	if err != nil || !restart {
		return err
	}
	m.stop(spec.ID, lifecycle.Standby, "")
	return m.Start(context.Background(), spec.ID)
}

// Delete removes a flow that does not run and is no other flow's source,
// on this node or any other (checkUsersLocked).
func (m *Manager) Delete(id string) error {
	_, err := m.reg.Delete(id, func(e *entry) error { return m.checkUsersLocked(&e.Obj.spec, nil) })
	return err
}

// Start starts a flow: standby (or error) -> starting -> running. The
// change is saved (the env's Store) before Start returns, so an API
// answer means the state is on disk.
func (m *Manager) Start(_ context.Context, id string) error {
	return m.reg.Do(id, func(e *entry) error {
		if e.State().Active() {
			return lifecycle.Conflictf("state", "flow %q is already %s", id, e.State())
		}
		if len(e.Obj.spec.Outputs) == 0 {
			return lifecycle.Conflictf("outputs", "flow %q has no output: add one before starting it", id)
		}
		if !e.State().Can(lifecycle.Starting) {
			return lifecycle.Conflictf("state", "flow %q cannot start from %s", id, e.State())
		}
		if lifecycle.Ended(e.Obj.spec.End, m.reg.Now()) {
			return lifecycle.Conflictf("end_time", "flow %q ended at %s: set a later end_time first", id, e.Obj.spec.End.Format(time.RFC3339))
		}
		if err := e.Move(lifecycle.Starting, ""); err != nil {
			return err
		}
		m.runLocked(e)
		return nil
	})
}

// runLocked runs a starting flow's data plane: running once its runner
// says so, error with the reason when it fails.
func (m *Manager) runLocked(e *entry) {
	id := e.ID
	ctx, cancel := context.WithCancel(context.Background())
	run := NewRunner(e.Obj.spec, m.hub, m.log)
	run.policy = m.Policy
	run.deliver = m.Deliver
	run.OnSwitch = func(sw Switch) {
		m.reg.Count(sw.Reason)
		if m.OnSwitch != nil {
			m.OnSwitch(id, sw)
		}
	}
	done := make(chan struct{})
	e.Obj.run, e.Obj.cancel, e.Obj.done = run, cancel, done
	m.wg.Add(2)
	go func() {
		defer m.wg.Done()
		select {
		case <-run.Running():
			m.reg.With(e, func(e *entry) {
				if e.Obj.run == run && e.State() == lifecycle.Starting {
					e.Move(lifecycle.Running, "")
				}
			})
		case <-done:
		}
	}()
	go func() {
		defer m.wg.Done()
		defer close(done)
		err := run.Run(ctx)
		if err != nil && ctx.Err() == nil {
			m.reg.With(e, func(e *entry) {
				if e.Obj.run == run {
					e.Move(lifecycle.Error, err.Error())
					e.Obj.run, e.Obj.cancel = nil, nil
				}
			})
			m.log.Warn("flow failed", "flow", id, "err", err)
		}
	}()
}

// Fail puts a flow that does not run into error with reason: a flow the
// agent restores but does not start again.
func (m *Manager) Fail(id, reason string) {
	m.reg.Do(id, func(e *entry) error {
		if !e.State().Active() {
			return e.Move(lifecycle.Error, reason)
		}
		return nil
	})
}

// Stop stops a running flow: running -> stopping -> standby.
func (m *Manager) Stop(_ context.Context, id string) error {
	err := m.reg.Do(id, func(e *entry) error {
		if !e.State().Active() {
			return lifecycle.Conflictf("state", "flow %q is %s, not running", id, e.State())
		}
		return nil
	})
	if err != nil {
		return err
	}
	m.stop(id, lifecycle.Standby, "")
	return nil
}

// stop takes an active flow through stopping to the state to.
func (m *Manager) stop(id string, to lifecycle.State, reason string) {
	var cancel context.CancelFunc
	var done chan struct{}
	var e *entry
	m.reg.Do(id, func(x *entry) error {
		if !x.State().Active() {
			return nil
		}
		e, cancel, done = x, x.Obj.cancel, x.Obj.done
		return x.Move(lifecycle.Stopping, "")
	})
	if e == nil {
		return
	}
	if cancel != nil {
		cancel()
		<-done
	}
	m.reg.With(e, func(e *entry) {
		e.Obj.run, e.Obj.cancel = nil, nil
		e.Move(to, reason)
	})
}

// Run is the scheduler: it starts scheduled flows at their start time and
// stops flows at their end time (finished), until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	lifecycle.Schedule(ctx, 250*time.Millisecond, nil, m.tick)
	return nil
}

func (m *Manager) tick() {
	now := m.reg.Now()
	var start, finish []string
	m.reg.Each(func(e *entry) {
		ended := lifecycle.Ended(e.Obj.spec.End, now)
		switch {
		case e.State().Active() && ended:
			finish = append(finish, e.ID)
		case e.State() == lifecycle.Scheduled && ended:
			e.Move(lifecycle.Finished, "the time window ended before the flow started")
		case e.State() == lifecycle.Scheduled && lifecycle.Due(e.Obj.spec.Start, now):
			start = append(start, e.ID)
		}
	})
	for _, id := range finish {
		m.stop(id, lifecycle.Finished, "")
		m.log.Info("flow finished: its time window ended", "flow", id)
	}
	for _, id := range start {
		if err := m.Start(context.Background(), id); err != nil {
			m.reg.Do(id, func(e *entry) error {
				if e.State() == lifecycle.Scheduled {
					return e.Move(lifecycle.Error, err.Error())
				}
				return nil
			})
			m.log.Warn("scheduled flow did not start", "flow", id, "err", err)
		}
	}
}

// Get returns one flow.
func (m *Manager) Get(id string) (View, bool) { return lifecycle.Get(m.reg, id, m.viewLocked) }

// List returns every flow by id.
func (m *Manager) List() []View { return lifecycle.List(m.reg, m.viewLocked) }

func (m *Manager) viewLocked(e *entry) View {
	v := View{Spec: e.Obj.spec, State: e.State(), Reason: e.Reason(), Since: e.Since(), ReadOnly: e.ReadOnly, Origin: lifecycle.Origin(e.ReadOnly)}
	if e.Obj.run != nil {
		st := e.Obj.run.Status()
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
func (m *Manager) IDs(readOnly bool) []string { return m.reg.IDs(readOnly) }

// Remove stops and deletes a flow regardless of its state (reload).
func (m *Manager) Remove(id string) {
	m.stop(id, lifecycle.Standby, "")
	m.reg.Remove(id)
}

// Close stops every flow and waits for them; their states stay as they
// were, so a restart starts the running ones again.
func (m *Manager) Close() error {
	var stops []*entry
	m.reg.Each(func(e *entry) {
		if e.Obj.cancel != nil {
			stops = append(stops, e)
		}
	})
	for _, e := range stops {
		var cancel context.CancelFunc
		var done chan struct{}
		m.reg.With(e, func(e *entry) { cancel, done = e.Obj.cancel, e.Obj.done })
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
func (m *Manager) SwitchCounts() map[string]uint64 { return m.reg.Counts() }
