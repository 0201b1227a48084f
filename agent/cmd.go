package agent

// What the command line (package cli) needs from the agent besides New
// and Run: the machine checks of `check` beyond the config's (package
// config), and the removal of the tc state the agent recorded
// (`cleanup`). The flags, texts and exit codes live in cli.

import (
	"fmt"
	"os"

	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/netutil"
)

// Version is set at build time with -ldflags "-X .../agent.Version=...".
var Version = "dev"

// QoSRecordFile is the agent's record of its tc state in its runtime
// directory.
const QoSRecordFile = qosRecordFile

// Warnings are what is allowed in cfg but probably not meant.
func Warnings(cfg *config.Config) []string { return checkWarnings(cfg) }

// Cleanup removes the tc trees the agent recorded in its runtime
// directory dir. The record is enough, so a broken or unreadable config
// does not stop it; without a record it falls back to configPath's
// qos.interface ("" : config.DefaultPath when it exists). report gets one
// line per step, problem set for those that go to stderr; ok is false
// when a tree or the record could not be updated.
func Cleanup(dir, configPath string, report func(problem bool, line string)) (ok bool) {
	rec, found, err := readQoSRecord(dir)
	if err != nil {
		report(true, fmt.Sprintf("the record is unreadable (%v); trying the config", err))
	}
	trees := rec.Trees
	if found && len(trees) == 0 {
		report(false, fmt.Sprintf("the agent's record in %s lists no tc tree; nothing to remove", dir))
		return true
	}
	if !found {
		if configPath == "" {
			if _, err := os.Stat(config.DefaultPath); err == nil {
				configPath = config.DefaultPath
			}
		}
		cfg, err := config.LoadFile(configPath)
		if err != nil {
			report(true, fmt.Sprintf("no record in %s and the config is unreadable (%v); nothing removed", dir, err))
			return true
		}
		ifname := qosInterface(cfg)
		if ifname == "" {
			report(false, fmt.Sprintf("no record in %s and no [qos] in the config; nothing to remove", dir))
			return true
		}
		trees = []qosTree{{Interface: ifname, Root: netutil.QoSRootHandle(), Kind: "htb"}}
	}
	ok = true
	left := map[string]qosTree{}
	for _, t := range trees {
		what, err := removeRecorded(t)
		if err != nil {
			report(true, err.Error())
			left[t.Interface] = t
			ok = false
			continue
		}
		report(false, what)
	}
	if found {
		if err := writeQoSRecord(dir, left); err != nil {
			report(true, fmt.Sprintf("update the record in %s: %v", dir, err))
			ok = false
		}
	}
	return ok
}
