package agent

// This file wires flows, relays and pseudo-live tasks with their API and persistence into the agent.

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/events"
	"github.com/relaymesh/relaymesh/flow"
	"github.com/relaymesh/relaymesh/lifecycle"
	"github.com/relaymesh/relaymesh/relay"
	"github.com/relaymesh/relaymesh/task"
	"github.com/relaymesh/relaymesh/webhook"
)

// objectsState is the agent's objects part (Agent.objects).
type objectsState struct {
	flows  *flow.Manager
	dir    *flow.Directory // the flows of the cluster; nil outside one
	relays *relay.Manager
	tasks  *task.Manager
	// journal writes objects.json on every change, and makes the API's
	// writes durable (lifecycle.Journal)
	journal *lifecycle.Journal
	// notifier builds the webhook sender for a task's callback URL; tests
	// replace it.
	notifier func(callback string) task.Notifier
	hooks    *webhook.Callbacks // newTaskHooks
}

// newObjects builds the objects components from cfg and registers them with
// a.add (run and close) and a.beforeDrain.
func (a *Agent) newObjects(cfg *config.Config) error {
	o := &a.objects
	dataDir := cfg.Node.ResolveDataDir()
	file := objectsFile(dataDir)
	if stale, err := file.RemoveStale(); err != nil {
		return err
	} else if len(stale) > 0 {
		a.log.Info("removed temp files of an interrupted save", "files", stale)
	}
	stored := &storedObjects{Version: storeVersion}
	if err := file.Load(stored); err != nil {
		return err
	}
	log := a.log.With("component", "objects")
	// every manager saves through one journal, held while loading
	store := &lifecycle.Journal{File: file, Snapshot: o.snapshot, Log: a.log}
	o.journal = store
	store.Hold(true)
	env := func(limit func(config.ObjectsConfig) int) lifecycle.Env {
		return lifecycle.Env{Store: store, Limit: func() int { return limit(a.objectsConfig()) }}
	}
	flowEnv := env(func(c config.ObjectsConfig) int { return c.MaxFlows })
	flowEnv.Store = lifecycle.StoreFunc(func(kind, id string) {
		store.Changed(kind, id)
		if o.dir != nil {
			o.dir.Advertise(id)
		}
	})
	o.flows = flow.NewManager(a.hub, log, flowEnv)
	o.flows.OnSwitch = func(id string, sw flow.Switch) {
		a.events.Publish(events.FlowSwitched{Flow: id, Stream: (&flow.Spec{ID: id}).Key(), From: sw.From, To: sw.To,
			Failover: sw.Failover, Reason: sw.Reason, GapMS: sw.GapMS})
	}
	o.flows.Policy = a.fetchPolicy
	o.flows.MaxOutputs = func() int { return a.objectsConfig().OutputLimit() }
	o.flows.URLs = func(spec *flow.Spec) *flow.URLs {
		return flow.URLsFor(spec, a.listenerAddrs(), a.access.Load(), time.Now().Add(flow.URLTTL))
	}
	// before the flows are loaded: one restored running starts with its
	// cross-node sources and outputs resolved through the cluster
	a.wireFlowDirectory() // flowdir.go
	o.relays = relay.NewManager(a.hub, log, env(config.ObjectsConfig.RelayLimit))
	o.relays.Policy = a.fetchPolicy
	deps := &task.Deps{Hub: a.hub, Log: log, Local: func(dest string) (string, bool) { return task.LocalIngest(dest, a.listenAddr) }, CacheDir: filepath.Join(dataDir, "task-cache"),
		Policy:          a.fetchPolicy,
		MaxDownload:     func() int64 { return a.objectsConfig().DownloadLimit() },
		DownloadTimeout: func() time.Duration { return a.objectsConfig().DownloadTimeLimit() }}
	o.tasks = task.NewManager(deps, env(config.ObjectsConfig.RunningTaskLimit))
	o.hooks = newTaskHooks(a)
	if o.notifier == nil {
		o.notifier = a.taskNotifier
	}
	o.tasks.DefaultCallback = func() string { return a.config().Webhooks.URL }
	o.tasks.NotifierFor = func(cb string) task.Notifier {
		if cb == "" {
			cb = a.config().Webhooks.URL // the node's default
		}
		if cb == "" {
			return nil
		}
		return o.notifier(cb)
	}

	// config objects first (read-only), then the API-made ones
	flows, relays, tasks := o.declared()
	if err := flows.CreateAll(cfg.Flows); err != nil {
		return err
	}
	if err := relays.CreateAll(cfg.Relays); err != nil {
		return err
	}
	if err := tasks.CreateAll(cfg.Tasks); err != nil {
		return err
	}
	// objects saved as running start again, unless the agent died while
	// starting them last time (lifecycle.StartGuard)
	var restarting []string
	for _, f := range stored.Flows {
		if f.State.Active() {
			restarting = append(restarting, "flow/"+f.Spec.ID)
		}
	}
	for _, t := range stored.Tasks {
		if t.State.Active() {
			restarting = append(restarting, "task/"+t.Spec.ID)
		}
	}
	guard := lifecycle.NewStartGuard(dataDir, log)
	interrupted := guard.Begin(restarting)
	a.add(guard.Run, guard.Clear)
	o.flows.LoadStored(stored.Flows, interrupted)
	o.relays.LoadStored(stored.Relays)
	o.tasks.LoadStored(stored.Tasks, interrupted)
	store.Hold(false)
	if len(interrupted) > 0 {
		store.Changed("", "") // on disk too, so the next start does not start them either
	}
	// relay rules look at a stream as soon as it is live (or back)
	a.subscribe("relays", func(r events.Record) {
		switch r.Event.(type) {
		case events.StreamPublished, events.StreamReconnected, events.Missed:
			o.relays.Poke()
		}
	})
	// per-source and per-output allowlists; the listeners log a refusal
	// with its reason
	a.onAuthorize = append(a.onAuthorize, o.flows.Authorize)

	a.add(func(ctx context.Context) error {
		var wg sync.WaitGroup
		wg.Go(func() { o.relays.Run(ctx) })
		wg.Go(func() { o.tasks.Run(ctx) })
		wg.Go(func() { o.flows.Run(ctx) })
		wg.Wait()
		return nil
	}, func() error {
		errs := []error{o.tasks.Close(), o.relays.Close(), o.flows.Close(), o.hooks.Close()}
		return errors.Join(errs...)
	})
	return nil
}

// objectsConfig is the [objects] the managers' limits follow: the config
// in force, or the one a reload is preparing (its objects are created
// under its own limits before it commits).
func (a *Agent) objectsConfig() config.ObjectsConfig {
	if c := a.preparing.Load(); c != nil {
		return c.Objects
	}
	return a.config().Objects
}

// prepareObjects applies the config's flows, relays and tasks of next:
// the ids API-made objects hold are refused first; then each kind is
// changed, and a create that fails undoes every change made so far (abort
// undoes them too when a later step refuses), so the objects in force are
// the old config's or the new one's, never a mix.
func (a *Agent) prepareObjects(old, next *config.Config) (change, error) {
	o := &a.objects
	for _, f := range next.Flows {
		if v, ok := o.flows.Get(f.ID); ok && !v.ReadOnly {
			return change{}, fmt.Errorf("flow %q: an API-made flow has that id: delete it or rename the [[flow]]", f.ID)
		}
	}
	for _, r := range next.Relays {
		if v, ok := o.relays.Get(r.ID); ok && !v.ReadOnly {
			return change{}, fmt.Errorf("relay %q: an API-made relay has that id", r.ID)
		}
	}
	for _, t := range next.Tasks {
		if v, ok := o.tasks.Get(t.ID); ok && !v.ReadOnly {
			return change{}, fmt.Errorf("task %q: an API-made task has that id", t.ID)
		}
	}
	flows, relays, tasks := o.declared()
	kinds := []func() (undo func(), err error){
		func() (func(), error) { return flows.Reconcile(old.Flows, next.Flows, a.log) },
		func() (func(), error) { return relays.Reconcile(old.Relays, next.Relays, a.log) },
		func() (func(), error) { return tasks.Reconcile(old.Tasks, next.Tasks, a.log) },
	}
	var undo []func()
	abort := func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	for _, k := range kinds {
		u, err := k()
		undo = append(undo, u)
		if err != nil {
			abort()
			return change{}, err
		}
	}
	return change{abort: abort}, nil
}

// declared are the config's [[flow]], [[relay]] and [[task]] as the
// managers create, update and remove them, at the start and on a reload.
func (o *objectsState) declared() (lifecycle.Declared[config.FlowConfig], lifecycle.Declared[config.RelayConfig], lifecycle.Declared[config.TaskConfig]) {
	return lifecycle.Declared[config.FlowConfig]{Kind: "flow", ID: func(f config.FlowConfig) string { return f.ID },
			Remove: o.flows.Remove,
			Create: func(f config.FlowConfig) error {
				st := lifecycle.Standby
				if f.Start {
					st = lifecycle.Running
				}
				return o.flows.Create(f.Spec(), lifecycle.CreateOpts{From: lifecycle.FromConfig, State: st})
			},
			// in place: a running flow keeps its players (no window where it is gone)
			Update: func(f config.FlowConfig) error { return o.flows.Update(f.Spec()) },
		}, lifecycle.Declared[config.RelayConfig]{Kind: "relay", ID: func(r config.RelayConfig) string { return r.ID },
			Remove: o.relays.Remove,
			Create: func(r config.RelayConfig) error {
				return o.relays.Create(r.Spec(), lifecycle.CreateOpts{From: lifecycle.FromConfig})
			},
		}, lifecycle.Declared[config.TaskConfig]{Kind: "task", ID: func(t config.TaskConfig) string { return t.ID },
			Remove: o.tasks.Remove,
			Create: func(t config.TaskConfig) error {
				return o.tasks.Create(t.Spec(), lifecycle.CreateOpts{From: lifecycle.FromConfig, State: lifecycle.Scheduled})
			},
		}
}
