package agent

// What the command line (package cli) needs from the agent besides New
// and Run: its version. The flags, texts, exit codes and the checks of
// `check` live in cli; `cleanup` reads the agent's tc record
// (netutil/tcrecord) itself.

// Version is set at build time with -ldflags "-X .../agent.Version=...".
var Version = "dev"
