package flow

import (
	"reflect"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/auth"
	"github.com/relaymesh/relaymesh/gossip"
)

func TestURLsFor(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	exp := time.Date(2026, 12, 3, 20, 0, 0, 500, time.FixedZone("x", 3600)) // truncated to the second, in UTC
	expUTC := time.Date(2026, 12, 3, 19, 0, 0, 0, time.UTC)
	all := gossip.Addrs{RTMP: "192.0.2.1:1935", SRT: "192.0.2.1:9000", HTTPFLV: "192.0.2.1:8080"}
	spec := &Spec{ID: "f1",
		Source: Source{Name: "main", Type: SrcRTMPPush, Stream: "live/in"},
		Backup: &Source{Name: "bak", Type: SrcSRTListener, Stream: "live/bak"},
		Outputs: []Output{{Name: "r", Type: OutRTMPPull}, {Name: "w", Type: OutHTTPFLV}, {Name: "s", Type: OutSRTListener},
			{Name: "push", Type: OutRTMPPush, URL: "rtmp://198.51.100.1/live/x"}}}
	pub := func(k string) string { return auth.Sign(key, auth.ActionPublish, k, expUTC) }
	play := auth.Sign(key, auth.ActionPlay, "flow/f1", expUTC)
	cases := []struct {
		name string
		spec *Spec
		ad   gossip.Addrs
		pol  *auth.Policy
		want *URLs
	}{
		{"unsigned", spec, all, nil, &URLs{
			Sources: []URL{{"main", "rtmp", "rtmp://192.0.2.1:1935/live/in"}, {"bak", "srt", "srt://192.0.2.1:9000?streamid=publish:live/bak"}},
			Outputs: []URL{{"r", "rtmp", "rtmp://192.0.2.1:1935/flow/f1"}, {"w", "http-flv", "http://192.0.2.1:8080/flow/f1.flv"},
				{"s", "srt", "srt://192.0.2.1:9000?streamid=read:flow/f1"}}}},
		{"publish signed", spec, all, &auth.Policy{PublishAuth: true, Key: key}, &URLs{
			Sources: []URL{{"main", "rtmp", "rtmp://192.0.2.1:1935/live/in?" + pub("live/in")},
				{"bak", "srt", "srt://192.0.2.1:9000?streamid=publish:live/bak?" + pub("live/bak")}},
			Outputs: []URL{{"r", "rtmp", "rtmp://192.0.2.1:1935/flow/f1"}, {"w", "http-flv", "http://192.0.2.1:8080/flow/f1.flv"},
				{"s", "srt", "srt://192.0.2.1:9000?streamid=read:flow/f1"}},
			Expires: &expUTC}},
		{"play signed", spec, all, &auth.Policy{PlayAuth: true, Key: key}, &URLs{
			Sources: []URL{{"main", "rtmp", "rtmp://192.0.2.1:1935/live/in"}, {"bak", "srt", "srt://192.0.2.1:9000?streamid=publish:live/bak"}},
			Outputs: []URL{{"r", "rtmp", "rtmp://192.0.2.1:1935/flow/f1?" + play}, {"w", "http-flv", "http://192.0.2.1:8080/flow/f1.flv?" + play},
				{"s", "srt", "srt://192.0.2.1:9000?streamid=read:flow/f1?" + play}},
			Expires: &expUTC}},
		{"listeners off", spec, gossip.Addrs{HTTPFLV: "[2001:db8::1]:8080"}, nil, &URLs{
			Outputs: []URL{{"w", "http-flv", "http://[2001:db8::1]:8080/flow/f1.flv"}}}},
		{"nothing to publish or play", &Spec{ID: "p", Source: Source{Type: SrcRTMPPull, URL: "rtmp://198.51.100.1/live/x"},
			Outputs: []Output{{Name: "push", Type: OutRTMPPush, URL: "rtmp://198.51.100.2/live/y"}}}, all, nil, nil},
		{"no listeners", spec, gossip.Addrs{}, &auth.Policy{PublishAuth: true, Key: key}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := URLsFor(c.spec, c.ad, c.pol, exp); !reflect.DeepEqual(got, c.want) {
				t.Errorf("URLsFor =\n%+v\nwant\n%+v", got, c.want)
			}
		})
	}
}
