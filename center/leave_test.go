package center

import (
	"testing"

	"github.com/relaymesh/relaymesh/media/srt"
)

func TestLinksOf(t *testing.T) {
	cases := []struct {
		name          string
		roles         []string
		uplinks, pull int
	}{
		{"none", nil, 0, 0},
		{"uplinks only", []string{srt.ActionPublish, srt.ActionPublish}, 2, 0},
		{"pulls only", []string{srt.ActionRead}, 0, 1},
		{"both", []string{srt.ActionRead, srt.ActionPublish, srt.ActionRead}, 1, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stats []srt.ConnStats
			for _, r := range c.roles {
				stats = append(stats, srt.ConnStats{Role: r})
			}
			if up, pl := linksOf(stats); up != c.uplinks || pl != c.pull {
				t.Errorf("linksOf = %d uplinks, %d pulls; want %d, %d", up, pl, c.uplinks, c.pull)
			}
		})
	}
}
