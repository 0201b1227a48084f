package agent

// What the command line (package cli) needs from the agent besides New
// and Run: its version and the machine checks of `check` beyond the
// config's (package config). The flags, texts and exit codes live in cli;
// `cleanup` reads the agent's tc record (netutil/tcrecord) itself.

import (
	"github.com/relaymesh/relaymesh/config"
)

// Version is set at build time with -ldflags "-X .../agent.Version=...".
var Version = "dev"

// Warnings are what is allowed in cfg but probably not meant.
func Warnings(cfg *config.Config) []string { return checkWarnings(cfg) }
