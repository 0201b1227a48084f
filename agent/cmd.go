package agent

// What the command line (package cli) needs from the agent besides New
// and Run: loading and checking a config as `run` does, the checks of
// `check`, and the removal of the tc state the agent recorded
// (`cleanup`). The flags, texts and exit codes live in cli.

import (
	"fmt"
	"os"

	"github.com/relaymesh/relaymesh/netutil"
)

// Version is set at build time with -ldflags "-X .../agent.Version=...".
var Version = "dev"

// DefaultConfigPath is read by run and check when -c is not given.
const DefaultConfigPath = "/etc/relaymesh/relaymesh.toml"

// ServiceUser is the account the packaged unit runs the agent as.
const ServiceUser = serviceUser

// QoSRecordFile is the agent's record of its tc state in its runtime
// directory.
const QoSRecordFile = qosRecordFile

// LoadConfig loads the config at path (with its drop-ins) and validates
// it; path "" is the built-in standalone default.
func LoadConfig(path string) (*Config, error) { return loadConfig(path) }

func loadConfig(path string) (*Config, error) {
	if path == "" {
		cfg := Default()
		return cfg, cfg.Validate()
	}
	return Load(path)
}

// Problems unpacks a config error (an errors.Join tree) into one line per
// problem.
func Problems(err error) []string { return flattenErrors(err) }

// flattenErrors unpacks errors.Join trees into lines.
func flattenErrors(err error) []string {
	var out []string
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		out = append(out, e.Error())
	}
	walk(err)
	return out
}

// Warnings are what is allowed in cfg but probably not meant.
func Warnings(cfg *Config) []string { return checkWarnings(cfg) }

// CheckServiceUser checks that the account the agent runs as can read
// the files cfg needs: name when explicit ("" for none), else, as root,
// ServiceUser when it exists. The config files themselves are checked
// when they are what the unit reads (path is DefaultConfigPath) or the
// account was named.
func CheckServiceUser(cfg *Config, path, name string, explicit bool) error {
	u, err := lookupServiceUser(name, explicit)
	if err != nil || u == nil {
		return err
	}
	var files []string
	if explicit || path == DefaultConfigPath {
		files = cfg.Sources
	}
	return checkServiceUser(cfg, files, u)
}

// Cleanup removes the tc trees the agent recorded in its runtime
// directory dir. The record is enough, so a broken or unreadable config
// does not stop it; without a record it falls back to configPath's
// qos.interface ("" : DefaultConfigPath when it exists). report gets one
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
			if _, err := os.Stat(DefaultConfigPath); err == nil {
				configPath = DefaultConfigPath
			}
		}
		cfg, err := loadConfig(configPath)
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
