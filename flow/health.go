package flow

// Health-based failover: a source that delivers packets but breaks a
// health rule (media/health: its frame rate collapsed, its timestamps
// froze, its MPEG-TS input had more continuity errors than its
// max_cc_errors; here: its bitrate over floorWindow fell below its
// min_bitrate)
// is not used, like a silent one; a switch away from it names the rule
// ("health: framerate").

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/relaymesh/relaymesh/media/health"
	"github.com/relaymesh/relaymesh/media/unit"
)

// SwitchHealth prefixes the reason of a switch away from an unhealthy
// source; the rule follows ("health: framerate", "health: frozen",
// "health: continuity", "health: bitrate").
const SwitchHealth = "health: "

// RuleBitrate: the source's bitrate over floorWindow was below its
// min_bitrate.
const RuleBitrate = "bitrate"

// floorWindow is the span the bitrate floor is measured over (the
// health rules' hold); floorSilent is the silence that ends a run (a
// silent source is gone, not unhealthy: media/health's rule too).
const (
	floorWindow = 2 * time.Second
	floorSilent = time.Second
)

// sourceHealth is one source's health as the switcher sees it.
type sourceHealth struct {
	m      *health.Monitor
	sick   string // the rule it breaks, "" = healthy
	detail string // how, for the API and the log
	// min is the source's min_bitrate (bit/s; 0 = no floor); the floor
	// is judged on whole windows of floorWindow from the run's start
	min      int64
	winStart time.Time
	winBytes int64
	rate     int64 // bit/s over the last whole window; -1 = none yet
	last     time.Time
}

// newSourceHealth returns the health of src with its rules: its
// min_bitrate floor and its max_cc_errors.
func newSourceHealth(src *Source) sourceHealth {
	return sourceHealth{min: src.MinBitrate, rate: -1, m: health.New(health.Rules{MaxCCErrors: src.MaxCCErrors})}
}

func (h *sourceHealth) monitor() *health.Monitor {
	if h.m == nil {
		h.m = health.New(health.Rules{})
	}
	return h.m
}

func (h *sourceHealth) packet(now time.Time, p *unit.Packet) {
	h.monitor().Packet(now, p)
	if h.winStart.IsZero() {
		h.winStart, h.rate = now, -1
	}
	h.winBytes += int64(len(p.Payload))
	h.last = now
}

// restart forgets the history: the source delivers again after silence
// (at now). A source that broke a rule keeps its verdict through a pause
// shorter than floorSilent (a publisher that stalls on a loaded machine):
// the history of a healthy one goes, so that the gap is not taken for a
// collapse, but a pause must not make an unhealthy source usable.
func (h *sourceHealth) restart(now time.Time) {
	if h.sick != "" && !h.last.IsZero() && now.Sub(h.last) < floorSilent {
		return
	}
	h.monitor().Reset()
	h.winStart, h.winBytes, h.rate = time.Time{}, 0, -1
}

// floor judges the bitrate floor at now: the rule and how when the last
// whole window carried less than min.
func (h *sourceHealth) floor(now time.Time) (rule, detail string) {
	if h.min <= 0 || h.winStart.IsZero() || now.Sub(h.last) >= floorSilent {
		return "", ""
	}
	if d := now.Sub(h.winStart); d >= floorWindow {
		h.rate = int64(float64(h.winBytes*8) / d.Seconds())
		h.winStart, h.winBytes = now, 0
	}
	if h.rate >= 0 && h.rate < h.min {
		return RuleBitrate, fmt.Sprintf("%d bit/s over the last %s, below its min_bitrate %d", h.rate, floorWindow, h.min)
	}
	return "", ""
}

// check judges the source at now and logs a change. It reports whether
// the source is healthy again: that starts a new unbroken run (the
// primary's return waits returnHold from there, switchPolicy.resume).
func (h *sourceHealth) check(now time.Time, name string, log *slog.Logger) (recovered bool) {
	rule, detail := h.monitor().Check(now)
	if r, d := h.floor(now); rule == "" && r != "" {
		rule, detail = r, d
	}
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
