package gossip

import (
	"bytes"
	"log/slog"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/relaymesh/relaymesh/events"
)

type pubRec struct{ got []events.Event }

func (p *pubRec) Publish(e events.Event) uint64 { p.got = append(p.got, e); return uint64(len(p.got)) }

// TestToBus pins which member changes reach the bus and with what: a
// join, leave and failure each as its event with the member's place and
// gossip address (leave and failure with the streams dropped); an update
// only in the debug log.
func TestToBus(t *testing.T) {
	m := Member{Name: "fra-1", Addr: netip.MustParseAddrPort("10.0.0.5:7946"),
		Meta: NodeMeta{Role: RoleCenter, Site: "fra", Region: "eu"}}
	em := events.Member{Name: "fra-1", Role: "center", Site: "fra", Region: "eu", Addr: "10.0.0.5:7946"}
	dropped := []string{"live/a"}
	tests := []struct {
		name  string
		ev    Event
		want  events.Event // nil: nothing published
		level string
	}{
		{"join", Event{Type: EventJoin, Member: m}, events.MemberJoined{Member: em}, "INFO"},
		{"update", Event{Type: EventUpdate, Member: m}, nil, "DEBUG"},
		{"leave", Event{Type: EventLeave, Member: m, Streams: dropped}, events.MemberLeft{Member: em, Streams: dropped}, "INFO"},
		{"failed", Event{Type: EventFailed, Member: m, Streams: dropped}, events.MemberFailed{Member: em, Streams: dropped}, "INFO"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			pub := &pubRec{}
			ToBus(pub, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))(tt.ev)
			var want []events.Event
			if tt.want != nil {
				want = []events.Event{tt.want}
			}
			if !reflect.DeepEqual(pub.got, want) {
				t.Errorf("published %#v, want %#v", pub.got, want)
			}
			if line := logs.String(); !strings.Contains(line, "level="+tt.level) || !strings.Contains(line, "member=fra-1") {
				t.Errorf("log %q, want level %s naming the member", line, tt.level)
			}
		})
	}
}
