package flow

// Health-based failover: a source that delivers packets but breaks a
// health rule (media/health: its frame rate collapsed, its timestamps
// froze) is not used, like a silent one; a switch away from it names the
// rule ("health: framerate").

import (
	"log/slog"
	"time"

	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/health"
)

// SwitchHealth prefixes the reason of a switch away from an unhealthy
// source; the rule follows ("health: framerate", "health: frozen").
const SwitchHealth = "health: "

// sourceHealth is one source's health as the switcher sees it.
type sourceHealth struct {
	m      *health.Monitor
	sick   string // the rule it breaks, "" = healthy
	detail string // how, for the API and the log
}

func (h *sourceHealth) monitor() *health.Monitor {
	if h.m == nil {
		h.m = health.New(health.Rules{})
	}
	return h.m
}

func (h *sourceHealth) packet(now time.Time, p *media.Packet) { h.monitor().Packet(now, p) }

// restart forgets the history: the source delivers again after silence.
func (h *sourceHealth) restart() { h.monitor().Reset() }

// check judges the source at now and logs a change. It reports whether
// the source is healthy again: that starts a new unbroken run (the
// primary's return waits returnHold from there, switchPolicy.resume).
func (h *sourceHealth) check(now time.Time, name string, log *slog.Logger) (recovered bool) {
	rule, detail := h.monitor().Check(now)
	switch {
	case rule != "" && h.sick == "":
		log.Warn("flow source unhealthy: not used while it is", "source", name, "rule", rule, "detail", detail)
	case rule == "" && h.sick != "":
		log.Info("flow source healthy again", "source", name, "rule", h.sick)
		recovered = true
	}
	h.sick, h.detail = rule, detail
	return recovered
}

// reason is the reason of a switch away from this source.
func (h *sourceHealth) reason() string {
	if h.sick != "" {
		return SwitchHealth + h.sick
	}
	return SwitchSilence
}
