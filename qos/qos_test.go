package qos

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/netutil"
	"github.com/relaymesh/relaymesh/netutil/tcrecord"
)

func TestCheck(t *testing.T) {
	cases := []struct {
		name string
		n    netutil.QoSConfig
		err  string // "" = accepted
	}{
		{"off, whatever the interface", netutil.QoSConfig{Interface: "nosuch0"}, ""},
		{"on, no interface named", netutil.QoSConfig{Enabled: true}, ""},
		{"on, loopback", netutil.QoSConfig{Enabled: true, Interface: "lo"}, ""},
		{"on, missing interface", netutil.QoSConfig{Enabled: true, Interface: "nosuch0"}, `qos.interface "nosuch0"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Check(c.n)
			switch {
			case c.err == "" && err != nil:
				t.Errorf("Check: %v, want accepted", err)
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err) || !errors.Is(err, netutil.ErrNoInterface)):
				t.Errorf("Check: %v, want ErrNoInterface saying %q", err, c.err)
			}
		})
	}
}

// recorded is the interfaces in dir's record.
func recorded(t *testing.T, dir string) []string {
	t.Helper()
	r, found, err := tcrecord.Read(dir)
	if err != nil || !found {
		t.Fatalf("record in %s: found %v, %v", dir, found, err)
	}
	var out []string
	for _, tr := range r.Trees {
		out = append(out, tr.Interface)
	}
	return out
}

// TestNewAdoptsRecord: New adopts the trees a killed agent recorded and
// writes the record back (a fresh one when it is unreadable), refuses a
// runtime directory that cannot hold it, and Close removes the adopted
// trees from the record (an interface that is gone has nothing left).
func TestNewAdoptsRecord(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	cases := []struct {
		name    string
		prepare func(dir string) string // returns the rtDir to use
		err     string
		kept    []string // the record after New
	}{
		{"no record yet", func(dir string) string { return dir }, "", nil},
		{"a killed agent's tree", func(dir string) string {
			if err := tcrecord.Write(dir, map[string]tcrecord.Tree{"nosuch0": {Interface: "nosuch0", Kind: "htb"}}); err != nil {
				t.Fatal(err)
			}
			return dir
		}, "", []string{"nosuch0"}},
		{"unreadable record", func(dir string) string {
			if err := os.WriteFile(filepath.Join(dir, tcrecord.File), []byte("{not json"), 0o644); err != nil {
				t.Fatal(err)
			}
			return dir
		}, "", nil},
		{"runtime directory is a file", func(dir string) string {
			f := filepath.Join(dir, "file")
			if err := os.WriteFile(f, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			return f
		}, "keep the record of installed trees", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := c.prepare(t.TempDir())
			s, err := New(dir, log)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("New: %v, want an error saying %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := recorded(t, dir); strings.Join(got, ",") != strings.Join(c.kept, ",") {
				t.Errorf("record after New: %q, want %q", got, c.kept)
			}
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if got := recorded(t, dir); len(got) != 0 {
				t.Errorf("record after Close: %q, want empty", got)
			}
		})
	}
	t.Run("no runtime directory", func(t *testing.T) {
		s, err := New("", log)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestSetOff: a config with shaping off is in force without touching
// the kernel; the same config again is a no-op.
func TestSetOff(t *testing.T) {
	logs := &testmedia.LogBuffer{}
	s, err := New("", slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	off := netutil.QoSConfig{Interface: "nosuch0", Rate: 10_000_000}
	for i := range 2 {
		if err := s.Set(off); err != nil {
			t.Fatalf("Set #%d: %v", i+1, err)
		}
		if cur, applied := s.State(); !reflect.DeepEqual(cur, off) || applied {
			t.Errorf("State after Set #%d: %+v, applied %v; want %+v, not applied", i+1, cur, applied, off)
		}
	}
	if l := logs.String(); strings.Contains(l, "qos applied") || strings.Contains(l, "qos removed") {
		t.Errorf("shaping off applied or removed a tree: %s", l)
	}
}
