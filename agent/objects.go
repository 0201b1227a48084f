package agent

// This file wires flows, relays and pseudo-live tasks with their API and persistence into the agent.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"reflect"
	"strings"
	"sync"

	"github.com/relaymesh/relaymesh/flow"
	"github.com/relaymesh/relaymesh/lifecycle"
	"github.com/relaymesh/relaymesh/relayrule"
	"github.com/relaymesh/relaymesh/task"
)

// objectsState is the agent's objects state (see extensions.go).
type objectsState struct {
	flows   *flow.Manager
	relays  *relayrule.Manager
	tasks   *task.Manager
	store   *objectStore
	loading bool
	saveMu  sync.Mutex
	// notifier builds the webhook sender for a task's callback URL; tests
	// replace it.
	notifier func(callback string) task.Notifier
	hooks    *taskHooks
}

// newObjects builds the objects components from cfg and registers them with
// a.add (run and close) and a.beforeDrain.
func (a *Agent) newObjects(cfg *Config) error {
	o := &a.ext.objects
	dataDir := cfg.Node.ResolveDataDir()
	o.store = newObjectStore(dataDir)
	stored, err := o.store.load()
	if err != nil {
		return err
	}
	log := a.log.With("component", "objects")
	o.flows = flow.NewManager(a.hub, log)
	o.flows.OnSwitch = func(id string, sw flow.Switch) {}
	o.relays = relayrule.NewManager(a.hub, log, func() int { return a.config().Objects.maxRelays() })
	deps := &task.Deps{Hub: a.hub, Log: log, Local: a.localIngest, CacheDir: filepath.Join(dataDir, "task-cache")}
	o.tasks = task.NewManager(deps, func() int { return a.config().Objects.maxRunningTasks() })
	o.hooks = newTaskHooks(a)
	if o.notifier == nil {
		o.notifier = o.hooks.notifier
	}
	o.tasks.NotifierFor = func(cb string) task.Notifier {
		if cb == "" {
			return nil
		}
		return o.notifier(cb)
	}

	o.loading = true
	// config objects first (read-only), then the API-made ones
	for i := range cfg.Flows {
		f := &cfg.Flows[i]
		st := lifecycle.Standby
		if f.Start {
			st = lifecycle.Running
		}
		if err := o.flows.Create(f.spec(), true, st); err != nil {
			return fmt.Errorf("flow[%d]: %w", i, err)
		}
	}
	for i := range cfg.Relays {
		if err := o.relays.Create(cfg.Relays[i].spec(), true, true); err != nil {
			return fmt.Errorf("relay[%d]: %w", i, err)
		}
	}
	for i := range cfg.Tasks {
		if err := o.tasks.Create(cfg.Tasks[i].spec(), true, lifecycle.Scheduled); err != nil {
			return fmt.Errorf("task[%d]: %w", i, err)
		}
	}
	for _, f := range stored.Flows {
		if err := o.flows.Create(f.Spec, false, f.State); err != nil {
			log.Error("stored flow not restored", "flow", f.Spec.ID, "err", err)
		}
	}
	for _, r := range stored.Relays {
		if err := o.relays.Create(r.Spec, false, true); err != nil {
			log.Error("stored relay not restored", "relay", r.Spec.ID, "err", err)
		}
	}
	for _, t := range stored.Tasks {
		st := t.State
		if st == "" {
			st = lifecycle.Scheduled
		}
		var at task.Position
		if t.At != nil {
			at = *t.At
		}
		if err := o.tasks.Restore(t.Spec, st, at); err != nil {
			log.Error("stored task not restored", "task", t.Spec.ID, "err", err)
		}
	}
	o.loading = false
	save := func(string) { a.saveObjects() }
	o.flows.OnChange, o.relays.OnChange, o.tasks.OnChange = save, save, save
	a.onPublished = append(a.onPublished, func(string) { o.relays.Poke() })
	// per-source and per-output allowlists; the listeners log a refusal
	// with its reason
	a.onAuthorize = append(a.onAuthorize, func(action, key string, remote net.Addr) error {
		return o.flows.Authorize(action, flow.ProtoOf(remote), key, remote)
	})

	a.add(func(ctx context.Context) error {
		var wg sync.WaitGroup
		wg.Go(func() { o.relays.Run(ctx) })
		wg.Go(func() { o.tasks.Run(ctx) })
		wg.Go(func() { o.flows.Run(ctx) })
		wg.Wait()
		return nil
	}, func() error {
		errs := []error{o.tasks.Close(), o.relays.Close(), o.flows.Close(), o.hooks.close()}
		return errors.Join(errs...)
	})
	return nil
}

// saveObjects writes the API-made objects and their states.
func (a *Agent) saveObjects() {
	o := &a.ext.objects
	if o.loading {
		return
	}
	o.saveMu.Lock()
	defer o.saveMu.Unlock()
	so := &storedObjects{Flows: []storedFlow{}, Relays: []storedRelay{}, Tasks: []storedTask{}}
	for _, f := range o.flows.List() {
		if !f.ReadOnly {
			st := f.State
			if st == lifecycle.Starting {
				st = lifecycle.Running
			}
			if st == lifecycle.Stopping {
				st = lifecycle.Standby
			}
			so.Flows = append(so.Flows, storedFlow{Spec: f.Spec, State: st})
		}
	}
	for _, r := range o.relays.List() {
		if !r.ReadOnly {
			so.Relays = append(so.Relays, storedRelay{Spec: r.Spec})
		}
	}
	for _, t := range o.tasks.List() {
		if !t.ReadOnly {
			st := storedTask{Spec: t.Spec, State: t.Internal, Reason: t.Reason}
			if t.Internal.Active() && t.Pass > 0 {
				st.At = &task.Position{Item: t.Item, Pass: t.Pass}
			}
			so.Tasks = append(so.Tasks, st)
		}
	}
	if err := o.store.save(so); err != nil {
		a.log.Error("objects not saved", "err", err)
	}
}

// localIngest maps a destination URL that points at this node's own RTMP
// or SRT listener to the hub key it would publish.
func (a *Agent) localIngest(dest string) (string, bool) {
	u, err := url.Parse(dest)
	if err != nil {
		return "", false
	}
	var own string
	switch u.Scheme {
	case "rtmp":
		own = a.listenAddr("rtmp")
	case "srt":
		own = a.listenAddr("srt")
	default:
		return "", false
	}
	if own == "" {
		return "", false
	}
	_, ownPort, _ := net.SplitHostPort(own)
	host, port := u.Hostname(), u.Port()
	if port == "" && u.Scheme == "rtmp" {
		port = "1935"
	}
	if port != ownPort || !isLocalHost(host) {
		return "", false
	}
	if u.Scheme == "rtmp" {
		key := strings.Trim(u.Path, "/")
		return key, key != ""
	}
	sid := u.Query().Get("streamid")
	mode, key, ok := strings.Cut(sid, ":")
	if !ok || mode != "publish" {
		return "", false
	}
	return key, key != ""
}

func isLocalHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	if ip == nil {
		return false
	}
	if ip.IsLoopback() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, ad := range addrs {
		if n, ok := ad.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}

// reloadObjects applies a valid new config; an error refuses the reload.
func (a *Agent) reloadObjects(old, next *Config) error {
	o := &a.ext.objects
	// refuse ids taken by API-made objects first, so nothing half-applied stays
	for _, f := range next.Flows {
		if v, ok := o.flows.Get(f.ID); ok && !v.ReadOnly {
			return fmt.Errorf("flow %q: an API-made flow has that id: delete it or rename the [[flow]]", f.ID)
		}
	}
	for _, r := range next.Relays {
		if v, ok := o.relays.Get(r.ID); ok && !v.ReadOnly {
			return fmt.Errorf("relay %q: an API-made relay has that id", r.ID)
		}
	}
	for _, t := range next.Tasks {
		if v, ok := o.tasks.Get(t.ID); ok && !v.ReadOnly {
			return fmt.Errorf("task %q: an API-made task has that id", t.ID)
		}
	}
	oldFlows, nextFlows := map[string]FlowConfig{}, map[string]FlowConfig{}
	for _, f := range old.Flows {
		oldFlows[f.ID] = f
	}
	for _, f := range next.Flows {
		nextFlows[f.ID] = f
	}
	for id, f := range oldFlows {
		if n, ok := nextFlows[id]; !ok || !reflect.DeepEqual(f, n) {
			o.flows.Remove(id)
		}
	}
	for id, f := range nextFlows {
		if of, ok := oldFlows[id]; ok && reflect.DeepEqual(of, f) {
			continue
		}
		st := lifecycle.Standby
		if f.Start {
			st = lifecycle.Running
		}
		if err := o.flows.Create(f.spec(), true, st); err != nil {
			a.log.Error("flow from the reloaded config not created", "flow", id, "err", err)
		}
	}
	oldRelays, nextRelays := map[string]RelayConfig{}, map[string]RelayConfig{}
	for _, r := range old.Relays {
		oldRelays[r.ID] = r
	}
	for _, r := range next.Relays {
		nextRelays[r.ID] = r
	}
	for id, r := range oldRelays {
		if n, ok := nextRelays[id]; !ok || n != r {
			o.relays.Delete(id)
		}
	}
	for id, r := range nextRelays {
		if or, ok := oldRelays[id]; ok && or == r {
			continue
		}
		if err := o.relays.Create(r.spec(), true, true); err != nil {
			a.log.Error("relay from the reloaded config not created", "relay", id, "err", err)
		}
	}
	oldTasks, nextTasks := map[string]TaskConfig{}, map[string]TaskConfig{}
	for _, t := range old.Tasks {
		oldTasks[t.ID] = t
	}
	for _, t := range next.Tasks {
		nextTasks[t.ID] = t
	}
	for id, t := range oldTasks {
		if n, ok := nextTasks[id]; !ok || !reflect.DeepEqual(n, t) {
			o.tasks.Remove(id)
		}
	}
	for id, t := range nextTasks {
		if ot, ok := oldTasks[id]; ok && reflect.DeepEqual(ot, t) {
			continue
		}
		if err := o.tasks.Create(t.spec(), true, lifecycle.Scheduled); err != nil {
			a.log.Error("task from the reloaded config not created", "task", id, "err", err)
		}
	}
	return nil
}
