package agent

// newSRT builds the SRT listener (issue 3).
func (a *Agent) newSRT(cfg *Config) error { return nil }

// srtStats returns per-connection SRT statistics of a stream for the API.
func (a *Agent) srtStats(key string) []any { return nil }

func srtWarnings(cfg *Config) []string { return nil }
