package netlab

import "testing"

func TestOwnerPID(t *testing.T) {
	cases := []struct {
		ns      string
		wantPID int
		wantOK  bool
	}{
		{"rmt-1234-1-fra", 1234, true},
		{"rmt-1234-12_hub", 1234, true}, // hubs are swept too
		{"rmt-99-3-a-b", 99, true},
		{"rmtx-1234-1-fra", 0, false},
		{"rmt-abc-1-fra", 0, false},
		{"rmt--1-fra", 0, false},
		{"other", 0, false},
	}
	for _, c := range cases {
		t.Run(c.ns, func(t *testing.T) {
			pid, ok := ownerPID("rmt", c.ns)
			if pid != c.wantPID || ok != c.wantOK {
				t.Fatalf("ownerPID = %d, %v; want %d, %v", pid, ok, c.wantPID, c.wantOK)
			}
		})
	}
}

func TestValidNames(t *testing.T) {
	cases := []struct {
		name string
		ok   bool
	}{
		{"fra", true}, {"edge-1", true}, {"1a", true},
		{"", false}, {"Fra", false}, {"-a", false}, {"a_b", false}, {"a/b", false},
		{"abcdefghijklmnopqrstuvwxyz0123456", false}, // 33 characters
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := validHostName(c.name); (err == nil) != c.ok {
				t.Fatalf("validHostName(%q) = %v, want ok %v", c.name, err, c.ok)
			}
		})
	}
}
