package agent

// What the command line (package cli) needs from the agent besides New
// and Run: its version and the machine checks of `check` beyond the
// config's (package config). The flags, texts and exit codes live in cli;
// `cleanup` reads the agent's tc record (netutil/tcrecord) itself.

import (
	"slices"

	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/listeners"
)

// Version is set at build time with -ldflags "-X .../agent.Version=...".
var Version = "dev"

// Warnings are what is allowed in cfg but probably not meant, and the
// problems of the machine that `relaymesh check` reports.
func Warnings(cfg *config.Config) []string {
	return slices.Concat(cfg.FileWarnings(), listeners.Warnings(cfg), cfg.QoSWarnings())
}
