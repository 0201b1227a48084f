package gossip

import (
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/serf/coordinate"
)

func TestCoordinateRoundTrip(t *testing.T) {
	cl, err := coordinate.NewClient(coordinate.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	other := coordinate.NewCoordinate(coordinate.DefaultConfig())
	other.Vec[0] = 0.01
	for range 10 {
		if _, err := cl.Update("peer", other, 20*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	c := cl.GetCoordinate()
	got, err := decodeCoordinate(encodeCoordinate(c))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Errorf("round trip changed the coordinate: %+v vs %+v", got, c)
	}
	if est := cl.DistanceTo(other); est < 5*time.Millisecond || est > 60*time.Millisecond {
		t.Errorf("after 10 samples of 20ms the estimate is %v, want near 20ms", est)
	}
	bad := map[string][]byte{
		"empty":      {},
		"version":    {9, 0, 0},
		"short":      encodeCoordinate(c)[:20],
		"nan":        append([]byte{pingVersion, 0}, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
		"wrong dims": append([]byte{pingVersion, 1}, make([]byte, 24)...),
	}
	for name, b := range bad {
		t.Run(name, func(t *testing.T) {
			if _, err := decodeCoordinate(b); err == nil {
				t.Errorf("decodeCoordinate(%x) accepted", b)
			}
		})
	}
}

func FuzzDecodeCoordinate(f *testing.F) {
	f.Add(encodeCoordinate(coordinate.NewCoordinate(coordinate.DefaultConfig())))
	f.Add([]byte{pingVersion, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeCoordinate(b)
		if err != nil {
			return
		}
		if !c.IsValid() {
			t.Fatal("accepted an invalid coordinate")
		}
		cl, _ := coordinate.NewClient(coordinate.DefaultConfig())
		_, _ = cl.Update("x", c, time.Millisecond) // must not panic
	})
}

// TestPathRTT: a center is ranked by the least ping of the last
// rttFilterWindow (a loaded host inflates single pings: 94 ms on a 6 ms
// path), the latest ping when all are older, and a path that got slower
// by its new pings once the fast ones left the window or the ring.
func TestPathRTT(t *testing.T) {
	ms := time.Millisecond
	t0 := time.Now()
	var r memberRec
	r.addPing(6*ms, t0)
	r.addPing(94*ms, t0.Add(3*time.Second))
	if got := r.pathRTT(t0.Add(4 * time.Second)); got != 6*ms {
		t.Errorf("one inflated ping after a 6 ms one: %s, want 6ms", got)
	}
	if got := r.measured; got != 94*ms {
		t.Errorf("the latest ping is %s, want 94ms", got)
	}
	// the path got slower: the 6 ms ping leaves the window
	r.addPing(300*ms, t0.Add(10*time.Second))
	if got := r.pathRTT(t0.Add(rttFilterWindow + time.Second)); got != 94*ms {
		t.Errorf("after the 6 ms ping left the window: %s, want 94ms", got)
	}
	if got := r.pathRTT(t0.Add(time.Minute)); got != 300*ms {
		t.Errorf("every ping older than the window: %s, want the latest, 300ms", got)
	}
	// the ring keeps the last rttFilterSamples pings only
	var q memberRec
	q.addPing(4*ms, t0)
	for i := range rttFilterSamples {
		q.addPing(80*ms, t0.Add(time.Duration(i+1)*time.Millisecond))
	}
	if got := q.pathRTT(t0.Add(time.Second)); got != 80*ms {
		t.Errorf("the 4 ms ping pushed out of the ring still counts: %s, want 80ms", got)
	}
}
