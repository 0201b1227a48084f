package agent

// The record of the tc state the agent installed, kept in its runtime
// directory so that `relaymesh cleanup` (ExecStopPost) removes it without
// reading the config, which may be broken or unreadable by then.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/relaymesh/relaymesh/netutil"
)

// qosRecordFile is the record's name in the runtime directory.
const qosRecordFile = "qos.json"

// qosRecord is the content of qos.json.
type qosRecord struct {
	Trees []qosTree `json:"trees"`
}

// qosTree is one interface the agent shaped.
type qosTree struct {
	Interface string    `json:"interface"`
	IfIndex   int       `json:"ifindex"`
	Root      string    `json:"root_qdisc"` // handle, as tc prints it
	Kind      string    `json:"kind"`
	Installed time.Time `json:"installed"`
}

// readQoSRecord reads dir/qos.json; found is false when there is none
// (no agent ran with this directory, or it failed before keeping one).
func readQoSRecord(dir string) (r qosRecord, found bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, qosRecordFile))
	if errors.Is(err, os.ErrNotExist) {
		return r, false, nil
	}
	if err != nil {
		return r, false, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, false, fmt.Errorf("%s: %w", filepath.Join(dir, qosRecordFile), err)
	}
	return r, true, nil
}

// writeQoSRecord replaces dir/qos.json atomically (temp file, fsync,
// rename, fsync of the directory). An empty record stays: it says the agent holds no tree, so
// cleanup need not read the config.
func writeQoSRecord(dir string, trees map[string]qosTree) error {
	path := filepath.Join(dir, qosRecordFile)
	r := qosRecord{Trees: []qosTree{}}
	for _, t := range trees {
		r.Trees = append(r.Trees, t)
	}
	sort.Slice(r.Trees, func(i, j int) bool { return r.Trees[i].Interface < r.Trees[j].Interface })
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, ".qos-*.json", append(b, '\n'), 0o644)
}

// newQoSTree describes the tree just applied on ifname.
func newQoSTree(ifname string) qosTree {
	idx, _ := netutil.InterfaceIndex(ifname)
	return qosTree{Interface: ifname, IfIndex: idx, Root: netutil.QoSRootHandle(), Kind: "htb", Installed: time.Now().UTC()}
}

// removeRecorded removes one recorded tree and says in one line what it
// found; err is set only when the kernel refused.
func removeRecorded(t qosTree) (string, error) {
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
