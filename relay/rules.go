// Package relay runs relay rules: streams whose app/name matches a
// pattern are pushed to a destination URL during a time window, with
// reconnect and backoff, each push's state and last error visible.
package relay

import (
	"context"
	"log/slog"
	"path"
	"strings"
	"time"

	"github.com/relaymesh/relaymesh/flow"
	"github.com/relaymesh/relaymesh/lifecycle"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/link"
	"github.com/relaymesh/relaymesh/netutil"
)

// MaxWindow is the longest time window of a relay.
const MaxWindow = 7 * 24 * time.Hour

// Spec is one relay rule.
type Spec struct {
	ID         string    `json:"id"`
	Pattern    string    `json:"pattern"` // app/name; * and ? match within a part, e.g. "live/*"
	URL        string    `json:"url"`     // rtmp(s):// or srt://
	Passphrase string    `json:"passphrase,omitempty"`
	PBKeyLen   int       `json:"pbkeylen,omitempty"`
	LatencyMS  int       `json:"latency_ms,omitempty"`
	Start      time.Time `json:"start_time"`
	End        time.Time `json:"end_time"`
}

// Validate checks a rule at time now.
func (s *Spec) Validate(now time.Time) error {
	if err := flow.CheckID("id", s.ID); err != nil {
		return err
	}
	if len(s.Pattern) > 256 {
		return lifecycle.Invalidf("pattern", "is %d bytes long, more than 256", len(s.Pattern))
	}
	app, name, ok := strings.Cut(s.Pattern, "/")
	if !ok || app == "" || name == "" || strings.Contains(name, "/") {
		return lifecycle.Invalidf("pattern", "%q is not an app/name pattern, e.g. \"live/*\" or \"live/cam1\"", s.Pattern)
	}
	if _, err := path.Match(s.Pattern, "a/b"); err != nil {
		return lifecycle.Invalidf("pattern", "%q: %v", s.Pattern, err)
	}
	if err := flow.CheckTarget("url", s.URL, "publish", "rtmp", "rtmps", "srt"); err != nil {
		return err
	}
	if err := flow.CheckSRTTarget("", s.URL, s.LatencyMS, s.Passphrase, s.PBKeyLen); err != nil {
		return err
	}
	if p := s.Passphrase; p != "" && (len(p) < 10 || len(p) > 79) {
		return lifecycle.Invalidf("passphrase", "is %d bytes long: SRT passphrases have 10 to 79", len(p))
	}
	if k := s.PBKeyLen; k != 0 && k != 16 && k != 24 && k != 32 {
		return lifecycle.Invalidf("pbkeylen", "%d is not 16, 24 or 32", k)
	}
	switch {
	case s.Start.IsZero():
		return lifecycle.Invalidf("start_time", "required (RFC 3339, e.g. 2026-05-01T18:00:00Z)")
	case s.End.IsZero():
		return lifecycle.Invalidf("end_time", "required (RFC 3339)")
	case !s.End.After(now):
		return lifecycle.Invalidf("end_time", "%s is not in the future", s.End.Format(time.RFC3339))
	case !s.End.After(s.Start):
		return lifecycle.Invalidf("end_time", "must be after start_time")
	case s.End.Sub(s.Start) >= MaxWindow:
		return lifecycle.Invalidf("end_time", "the window of %s is not under 7 days", s.End.Sub(s.Start).Round(time.Minute))
	}
	return nil
}

// Matches reports whether a stream key matches the rule's pattern.
func (s *Spec) Matches(key string) bool {
	ok, _ := path.Match(s.Pattern, key)
	return ok
}

// View is a relay as the API shows it.
type View struct {
	Spec
	State     lifecycle.State        `json:"state"` // scheduled, running, finished
	LastError string                 `json:"last_error,omitempty"`
	Pushes    map[string]link.Status `json:"pushes"` // by stream key
	ReadOnly  bool                   `json:"read_only"`
	Origin    string                 `json:"origin"`
}

type push struct {
	p      *link.Pusher
	cancel context.CancelFunc
	done   chan struct{}
}

// object is a rule's own data in the registry. A rule's state is not
// kept: it follows from its window (scheduled, running, finished).
type object struct {
	spec    Spec
	pushes  map[string]*push
	lastErr string
}

type entry = lifecycle.Entry[object]

// Manager owns the relay rules and their pushes; the registry keeps them,
// the objects.max_relays limit and their persistence.
type Manager struct {
	hub *media.Hub
	log *slog.Logger
	// Policy is the outbound policy of the pushes, read at each
	// connection attempt (nil: none).
	Policy func() *netutil.FetchPolicy

	reg  *lifecycle.Registry[object]
	kick chan struct{}
}

// NewManager returns an empty manager; env.Limit is objects.max_relays.
func NewManager(hub *media.Hub, log *slog.Logger, env lifecycle.Env) *Manager {
	return &Manager{hub: hub, log: log.With("component", "relay"), kick: make(chan struct{}, 1),
		reg: lifecycle.NewRegistry[object](lifecycle.Options{
			Kind: "relay", Plural: "relays", LimitOf: lifecycle.LimitObjects, LimitKey: "objects.max_relays"}, env)}
}

// Poke makes the manager look at the streams now (a stream went live).
func (m *Manager) Poke() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// Create adds a rule. Rules from the config file or the store skip the
// future-end check (they finish instead).
func (m *Manager) Create(spec Spec, opts lifecycle.CreateOpts) error {
	if err := spec.Validate(m.reg.Now()); err != nil && opts.From == lifecycle.FromAPI {
		return err
	}
	if _, err := m.reg.Add(spec.ID, opts, lifecycle.Standby, object{spec: spec, pushes: map[string]*push{}}, nil); err != nil {
		return err
	}
	m.Poke()
	return nil
}

// Update replaces a rule; its pushes restart.
func (m *Manager) Update(spec Spec) error {
	if err := spec.Validate(m.reg.Now()); err != nil {
		return err
	}
	var old map[string]*push
	err := m.reg.Do(spec.ID, func(e *entry) error {
		old = e.Obj.pushes
		e.Obj.pushes, e.Obj.spec = map[string]*push{}, spec
		e.Changed()
		return nil
	})
	if err != nil {
		return err
	}
	stopAll(old)
	m.Poke()
	return nil
}

// Delete removes a rule and stops its pushes.
func (m *Manager) Delete(id string) error {
	e, err := m.reg.Delete(id, nil)
	if err != nil {
		return err
	}
	stopAll(e.Obj.pushes)
	m.Poke()
	return nil
}

// Remove deletes a rule and stops its pushes (reload).
func (m *Manager) Remove(id string) { m.Delete(id) }

func stopAll(ps map[string]*push) {
	for _, p := range ps {
		p.cancel()
	}
	for _, p := range ps {
		<-p.done
	}
}

func (m *Manager) state(e *entry, now time.Time) lifecycle.State {
	switch {
	case now.Before(e.Obj.spec.Start):
		return lifecycle.Scheduled
	case !now.Before(e.Obj.spec.End):
		return lifecycle.Finished
	}
	return lifecycle.Running
}

// Run starts and stops pushes as windows open and close and streams come
// and go, until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	defer m.Close()
	lifecycle.Schedule(ctx, 500*time.Millisecond, m.kick, m.sync)
	return nil
}

func (m *Manager) sync() {
	now := m.reg.Now()
	live := map[string]bool{}
	for _, st := range m.hub.Streams() {
		if _, ok := st.Publisher(); ok {
			live[st.Key()] = true
		}
	}
	var stop []*push
	m.reg.Read(func() {
		m.reg.EachLocked(func(e *entry) {
			running := m.state(e, now) == lifecycle.Running
			for key, p := range e.Obj.pushes {
				if !running || !live[key] {
					p.cancel()
					stop = append(stop, p)
					delete(e.Obj.pushes, key)
				}
			}
			if !running {
				return
			}
			for key := range live {
				if _, ok := e.Obj.pushes[key]; ok || !e.Obj.spec.Matches(key) {
					continue
				}
				e.Obj.pushes[key] = m.startLocked(e, key)
			}
		})
	})
	for _, p := range stop {
		<-p.done
	}
}

func (m *Manager) startLocked(e *entry, key string) *push {
	s := e.Obj.spec
	t := link.Target{URL: s.URL, Passphrase: s.Passphrase, PBKeyLen: s.PBKeyLen, Latency: time.Duration(s.LatencyMS) * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	p := &push{cancel: cancel, done: make(chan struct{})}
	p.p = link.NewPusher(m.hub, link.PushConfig{Key: key, Persistent: true,
		Next: func(int, error) (link.Target, error) {
			if m.Policy != nil {
				t.Policy = m.Policy()
			}
			return t, nil
		},
		OnState: func(st link.Status) {
			if st.LastError != "" {
				m.reg.With(e, func(e *entry) { e.Obj.lastErr = st.LastError })
			}
		}}, m.log.With("relay", s.ID, "stream", key))
	m.log.Info("relay push started", "relay", s.ID, "stream", key)
	go func() {
		defer close(p.done)
		p.p.Run(ctx)
	}()
	return p
}

// Get returns one rule.
func (m *Manager) Get(id string) (View, bool) { return lifecycle.Get(m.reg, id, m.viewLocked) }

// List returns every rule by id.
func (m *Manager) List() []View { return lifecycle.List(m.reg, m.viewLocked) }

func (m *Manager) viewLocked(e *entry) View {
	v := View{Spec: e.Obj.spec, State: m.state(e, m.reg.Now()), LastError: e.Obj.lastErr, Pushes: map[string]link.Status{},
		ReadOnly: e.ReadOnly, Origin: lifecycle.Origin(e.ReadOnly)}
	for k, p := range e.Obj.pushes {
		v.Pushes[k] = p.p.Status()
	}
	return v
}

// IDs returns the ids of config-declared (readOnly) or API-made rules.
func (m *Manager) IDs(readOnly bool) []string { return m.reg.IDs(readOnly) }

// Close stops every push.
func (m *Manager) Close() error {
	all := map[string]*push{}
	m.reg.Each(func(e *entry) {
		for k, p := range e.Obj.pushes {
			all[e.ID+" "+k] = p
		}
		e.Obj.pushes = map[string]*push{}
	})
	stopAll(all)
	return nil
}
