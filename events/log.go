package events

import "log/slog"

// Log returns a subscriber that logs the stream events (published,
// reconnected, ended) on log. The webhook notifier runs it first on its
// subscription, so logs and webhooks see one order.
func Log(log *slog.Logger) func(Record) {
	return func(r Record) {
		switch e := r.Event.(type) {
		case StreamPublished:
			log.Info("stream published", "stream", e.Stream, "protocol", e.Protocol, "remote", e.Remote)
		case StreamReconnected:
			log.Info("stream publisher reconnected", "stream", e.Stream, "protocol", e.Protocol, "remote", e.Remote, "takeover", e.Takeover)
		case StreamEnded:
			log.Info("stream ended", "stream", e.Stream, "reason", e.Reason)
		}
	}
}
