// Package qos keeps the backbone's traffic shaping (the tc tree of
// package netutil) in force for a running node: it applies, reconciles
// and removes the tree, undoes a change the kernel refused part way, and
// keeps the record of installed trees (netutil/tcrecord) in the runtime
// directory that `relaymesh cleanup` reads after a crash.
//
//	q, err := qos.New(rtDir, log) // adopts the trees a killed agent left
//	err = q.Set(cfg.NetQoS())     // start
//	abort, err := q.Prepare(old.NetQoS(), next.NetQoS()) // reload
//	q.Close()                     // removes every tree it installed
package qos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/netutil"
	"github.com/relaymesh/relaymesh/netutil/tcrecord"
)

// applyTimeout bounds one netutil.Apply.
const applyTimeout = 10 * time.Second

// Shaper is the QoS tree in force on a node.
type Shaper struct {
	log   *slog.Logger
	rtDir string // "" keeps no record

	mu sync.Mutex
	// cur is the tree in force (Enabled false when none); applied is
	// false when the kernel refused (no CAP_NET_ADMIN).
	cur     netutil.QoSConfig
	applied bool
	warned  bool
	// installed is every tree put on an interface and not removed yet,
	// by interface; kept in rtDir's record.
	installed map[string]tcrecord.Tree
}

// New adopts the trees recorded in rtDir (a killed agent's: removed on
// Close unless applied again) and writes the record back, so a runtime
// directory that cannot hold it fails here. rtDir "" keeps no record.
// Nothing is applied until Set.
func New(rtDir string, log *slog.Logger) (*Shaper, error) {
	s := &Shaper{log: log, rtDir: rtDir, installed: map[string]tcrecord.Tree{}}
	if rtDir == "" {
		return s, nil
	}
	r, _, err := tcrecord.Read(rtDir)
	if err != nil {
		log.Warn("qos: the record of installed trees is unreadable; starting a new one", "error", err)
	}
	for _, t := range r.Trees {
		s.installed[t.Interface] = t
	}
	if err := tcrecord.Write(rtDir, s.installed); err != nil {
		return nil, fmt.Errorf("qos: keep the record of installed trees in %s (RUNTIME_DIRECTORY): %w", rtDir, err)
	}
	return s, nil
}

// Check refuses n when its interface does not exist, without touching
// the kernel's tc state.
func Check(n netutil.QoSConfig) error {
	if n.Enabled && n.Interface != "" {
		if _, err := netutil.InterfaceIndex(n.Interface); errors.Is(err, netutil.ErrNoInterface) {
			return fmt.Errorf("qos.interface %q: %w", n.Interface, netutil.ErrNoInterface)
		}
	}
	return nil
}

// Prepare puts next's tree on the interface: the one reload step with an
// effect outside the process that only the kernel can check, so a reload
// runs it last. A change the kernel refuses part way is undone (old's
// tree is back) and returned; abort puts old's tree back should a later
// step refuse the reload.
func (s *Shaper) Prepare(old, next netutil.QoSConfig) (abort func(), err error) {
	if err := s.Set(next); err != nil {
		return nil, err
	}
	return func() {
		if err := s.Set(old); err != nil {
			s.log.Error("qos: the old tree could not be put back", "err", err)
		}
	}, nil
}

// Set makes the shaping what n says: applies (or reconciles) the tree,
// and removes it from an interface no longer shaped. Without
// CAP_NET_ADMIN it logs one warning per Shaper and goes on. Any other
// failure (the kernel refusing an op part way, the old tree that cannot
// be removed) is undone before it returns: the tree in force before the
// call is what the interfaces carry, and the error says what failed.
func (s *Shaper) Set(n netutil.QoSConfig) error {
	s.mu.Lock()
	cur, curApplied := s.cur, s.applied
	_, hadTree := s.installed[n.Interface] // before this change: a killed agent's, or the one in force
	s.mu.Unlock()
	if reflect.DeepEqual(cur, n) {
		return nil
	}
	undo := func(err error) error { return s.undo(err, n, cur, curApplied, hadTree) }
	applied := false
	if n.Enabled {
		err := apply(n)
		switch {
		case err == nil:
			applied = true
		case errors.Is(err, netutil.ErrNoNetAdmin):
			s.mu.Lock()
			warned := s.warned
			s.warned = true
			s.mu.Unlock()
			if !warned {
				s.log.Warn("qos: not applied, the agent lacks CAP_NET_ADMIN; running without traffic shaping (run as the packaged service, or grant CAP_NET_ADMIN)",
					"interface", n.Interface, "error", err)
			}
		default:
			if !strings.HasPrefix(err.Error(), "qos") { // netutil's errors name qos or the key
				err = fmt.Errorf("qos: %w", err)
			}
			return undo(err)
		}
	}
	moved := cur.Enabled && curApplied && (!n.Enabled || cur.Interface != n.Interface)
	if moved {
		if err := netutil.Remove(cur.Interface); err != nil {
			return undo(fmt.Errorf("qos: remove the tree from %s: %w", cur.Interface, err))
		}
	}
	if applied {
		if err := s.record(n.Interface); err != nil {
			return undo(err)
		}
		s.log.Info("qos applied", "interface", n.Interface, "rate", config.Bitrate(n.Rate).String(),
			"media_ports", n.MediaPorts, "control_ports", n.ControlPorts, "media_dscp", n.MediaDSCP)
	}
	if moved {
		s.forget(cur.Interface)
		s.log.Info("qos removed", "interface", cur.Interface)
	}
	s.mu.Lock()
	s.cur, s.applied = n, applied
	s.mu.Unlock()
	return nil
}

// State returns the QoS config in force and whether it is installed.
func (s *Shaper) State() (netutil.QoSConfig, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur, s.applied
}

// Close removes every tree the Shaper (or the killed agent whose record
// it adopted) installed.
func (s *Shaper) Close() error {
	s.mu.Lock()
	s.applied = false
	s.cur.Enabled = false
	trees := make([]tcrecord.Tree, 0, len(s.installed))
	for _, t := range s.installed {
		trees = append(trees, t)
	}
	s.mu.Unlock()
	var errs []error
	for _, t := range trees {
		what, err := tcrecord.Remove(t)
		if err != nil {
			errs = append(errs, fmt.Errorf("qos: remove: %w", err))
			continue
		}
		s.log.Info("qos cleanup", "interface", t.Interface, "result", what)
		s.forget(t.Interface)
	}
	return errors.Join(errs...)
}

// apply is netutil.Apply, bounded.
func apply(n netutil.QoSConfig) error {
	ctx, cancel := context.WithTimeout(context.Background(), applyTimeout)
	defer cancel()
	return netutil.Apply(ctx, n)
}

// record notes a tree applied on ifname, in memory and in the record.
func (s *Shaper) record(ifname string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.installed[ifname] = tcrecord.NewTree(ifname)
	if s.rtDir == "" {
		return nil
	}
	if err := tcrecord.Write(s.rtDir, s.installed); err != nil {
		return fmt.Errorf("qos: record the tree on %s in %s: %w", ifname, s.rtDir, err)
	}
	return nil
}

// forget drops ifname's tree from the record once it is removed.
func (s *Shaper) forget(ifname string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.installed, ifname)
	if s.rtDir == "" {
		return
	}
	if err := tcrecord.Write(s.rtDir, s.installed); err != nil {
		s.log.Warn("qos: could not update the record of installed trees", "dir", s.rtDir, "error", err)
	}
}

// undo puts back the tree in force (cur, when it was applied) after a
// failed change to n, removes what the change left on n's interface when
// it carried no tree of ours before (hadTree false), and returns err, or
// err with the reason undoing failed.
func (s *Shaper) undo(err error, n, cur netutil.QoSConfig, curApplied, hadTree bool) error {
	var errs []error
	if n.Enabled && (!cur.Enabled || !curApplied || cur.Interface != n.Interface) {
		if !hadTree {
			if _, rerr := netutil.RemoveTree(n.Interface); rerr != nil {
				errs = append(errs, fmt.Errorf("remove the partial tree from %s: %w", n.Interface, rerr))
			} else {
				s.forget(n.Interface)
			}
		}
	}
	if cur.Enabled && curApplied {
		if aerr := apply(cur); aerr != nil {
			errs = append(errs, fmt.Errorf("put the old tree back on %s: %w", cur.Interface, aerr))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w; undoing it failed too (run relaymesh cleanup, then reload): %w", err, errors.Join(errs...))
	}
	return fmt.Errorf("%w; the tree in force is unchanged", err)
}
