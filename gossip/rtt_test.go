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
