// Package tcrecord is the record of the tc trees the agent installed,
// kept in its runtime directory so that `relaymesh cleanup`
// (ExecStopPost) removes them without reading the config, which may be
// broken or unreadable by then.
package tcrecord

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/relaymesh/relaymesh/internal/atomicfile"
	"github.com/relaymesh/relaymesh/netutil"
)

// File is the record's name in the runtime directory.
const File = "qos.json"

// Record is the content of the record file.
type Record struct {
	Trees []Tree `json:"trees"`
}

// Tree is one interface the agent shaped.
type Tree struct {
	Interface string    `json:"interface"`
	IfIndex   int       `json:"ifindex"`
	Root      string    `json:"root_qdisc"` // handle, as tc prints it
	Kind      string    `json:"kind"`
	Installed time.Time `json:"installed"`
}

// Read reads dir's record; found is false when there is none (no agent
// ran with this directory, or it failed before keeping one).
func Read(dir string) (r Record, found bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, File))
	if errors.Is(err, os.ErrNotExist) {
		return r, false, nil
	}
	if err != nil {
		return r, false, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, false, fmt.Errorf("%s: %w", filepath.Join(dir, File), err)
	}
	return r, true, nil
}

// Write replaces dir's record atomically (temp file, fsync, rename, fsync
// of the directory). An empty record stays: it says the agent holds no
// tree, so cleanup need not read the config.
func Write(dir string, trees map[string]Tree) error {
	path := filepath.Join(dir, File)
	r := Record{Trees: []Tree{}}
	for _, t := range trees {
		r.Trees = append(r.Trees, t)
	}
	sort.Slice(r.Trees, func(i, j int) bool { return r.Trees[i].Interface < r.Trees[j].Interface })
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, ".qos-*.json", append(b, '\n'), 0o644)
}

// NewTree describes the tree just applied on ifname.
func NewTree(ifname string) Tree {
	idx, _ := netutil.InterfaceIndex(ifname)
	return Tree{Interface: ifname, IfIndex: idx, Root: netutil.QoSRootHandle(), Kind: "htb", Installed: time.Now().UTC()}
}

// Remove removes one recorded tree and says in one line what it found;
// err is set only when the kernel refused.
func Remove(t Tree) (string, error) {
	idx, err := netutil.InterfaceIndex(t.Interface)
	switch {
	case errors.Is(err, netutil.ErrNoInterface):
		return fmt.Sprintf("%s: no such interface (any tree went with it); nothing to remove", t.Interface), nil
	case err != nil:
		return "", fmt.Errorf("%s: %w", t.Interface, err)
	case t.IfIndex != 0 && idx != t.IfIndex:
		return fmt.Sprintf("%s: the interface was re-created since the agent shaped it (index %d, now %d); its tree went with the old one; nothing removed",
			t.Interface, t.IfIndex, idx), nil
	}
	res, err := netutil.RemoveTree(t.Interface)
	if err != nil {
		return "", fmt.Errorf("%s: %w", t.Interface, err)
	}
	switch res {
	case netutil.Removed:
		return fmt.Sprintf("%s: removed the relaymesh tc tree (root qdisc %s)", t.Interface, t.Root), nil
	case netutil.NoInterface:
		return fmt.Sprintf("%s: no such interface (any tree went with it); nothing to remove", t.Interface), nil
	}
	return fmt.Sprintf("%s: no relaymesh tc tree there (already removed); nothing to remove", t.Interface), nil
}

// Cleanup removes the trees recorded in dir. The record is enough, so a
// broken or unreadable config does not stop it; without a record it asks
// fallback for the interface to clear ("" : none). report gets one line
// per step, problem set for those that go to stderr; ok is false when a
// tree or the record could not be updated.
func Cleanup(dir string, fallback func() (ifname string, err error), report func(problem bool, line string)) (ok bool) {
	rec, found, err := Read(dir)
	if err != nil {
		report(true, fmt.Sprintf("the record is unreadable (%v); trying the config", err))
	}
	trees := rec.Trees
	if found && len(trees) == 0 {
		report(false, fmt.Sprintf("the agent's record in %s lists no tc tree; nothing to remove", dir))
		return true
	}
	if !found {
		ifname, err := fallback()
		if err != nil {
			report(true, fmt.Sprintf("no record in %s and the config is unreadable (%v); nothing removed", dir, err))
			return true
		}
		if ifname == "" {
			report(false, fmt.Sprintf("no record in %s and no [qos] in the config; nothing to remove", dir))
			return true
		}
		trees = []Tree{{Interface: ifname, Root: netutil.QoSRootHandle(), Kind: "htb"}}
	}
	ok = true
	left := map[string]Tree{}
	for _, t := range trees {
		what, err := Remove(t)
		if err != nil {
			report(true, err.Error())
			left[t.Interface] = t
			ok = false
			continue
		}
		report(false, what)
	}
	if found {
		if err := Write(dir, left); err != nil {
			report(true, fmt.Sprintf("update the record in %s: %v", dir, err))
			ok = false
		}
	}
	return ok
}
