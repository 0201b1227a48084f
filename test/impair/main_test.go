package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/test/impair/control"
)

type verdictRec struct {
	id     uint32
	accept bool
	at     time.Time
}

type recorder struct {
	mu sync.Mutex
	v  []verdictRec
}

func (r *recorder) verdict(id uint32, accept bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.v = append(r.v, verdictRec{id, accept, time.Now()})
	return nil
}

func (r *recorder) get() []verdictRec {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]verdictRec(nil), r.v...)
}

// The daemon loop, without a kernel queue: requests on "stdin", packets
// on the channel, verdicts recorded with their time.
func TestDaemonLoop(t *testing.T) {
	rec := &recorder{}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	d := &daemon{
		q:    rec,
		eng:  newEngine(1),
		out:  json.NewEncoder(outW),
		log:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		pkts: make(chan packetIn, 16),
		reqs: make(chan control.Request),
	}
	ctx, cancel := context.WithCancel(context.Background())
	go d.readRequests(inR, cancel)
	done := make(chan int)
	go func() { done <- d.loop(ctx, nil, "") }()
	replies := json.NewDecoder(outR)

	ask := func(req string) control.Reply {
		t.Helper()
		if _, err := io.WriteString(inW, req+"\n"); err != nil {
			t.Fatal(err)
		}
		var r control.Reply
		if err := replies.Decode(&r); err != nil {
			t.Fatal(err)
		}
		return r
	}

	t.Run("bad requests are answered with an error", func(t *testing.T) {
		for _, req := range []string{
			`{"id":1,"op":"nope"}`,
			`{"id":2,"op":"set"}`,
			`{"id":3,"op":"set","config":{"links":[{"src":"10.77.0.1","dst":"10.77.0.2","loss":2}]}}`,
			`{"id":4,"op":"set","config":{"bogus":1}}`,
			`not json`,
		} {
			if r := ask(req); r.Error == "" {
				t.Fatalf("%s: no error in reply %+v", req, r)
			}
		}
	})

	if r := ask(`{"id":10,"op":"set","config":{"links":[{"src":"10.77.0.1","dst":"10.77.0.2","delay":"40ms"}],"blackhole":["10.77.0.3"]}}`); r.ID != 10 || r.Error != "" {
		t.Fatalf("set: %+v", r)
	}
	sent := time.Now()
	d.pkts <- packetIn{id: 1, hdr: hdr(addrA, addrB), ipv4: true, at: sent}
	d.pkts <- packetIn{id: 2, hdr: hdr(addrB, addrA), ipv4: true, at: sent}
	d.pkts <- packetIn{id: 3, hdr: hdr(addrA, addrC), ipv4: true, at: sent}
	d.pkts <- packetIn{id: 4, ipv4: false, at: sent}

	deadline := time.Now().Add(5 * time.Second)
	for len(rec.get()) < 4 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	got := map[uint32]verdictRec{}
	for _, v := range rec.get() {
		got[v.id] = v
	}
	cases := []struct {
		name   string
		id     uint32
		accept bool
		after  time.Duration
	}{
		{"delayed direction", 1, true, 40 * time.Millisecond},
		{"other direction unimpaired", 2, true, 0},
		{"blackholed", 3, false, 0},
		{"not IPv4", 4, true, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, ok := got[c.id]
			if !ok {
				t.Fatalf("no verdict for packet %d", c.id)
			}
			if v.accept != c.accept {
				t.Fatalf("accept = %v, want %v", v.accept, c.accept)
			}
			if d := v.at.Sub(sent); d < c.after {
				t.Fatalf("verdict after %v, want at least %v", d, c.after)
			}
		})
	}
	r := ask(`{"id":11,"op":"stats"}`)
	if s := r.Stats; s.Received != 4 || s.Accepted != 3 || s.Blackholed != 1 || s.Delayed != 1 || s.Pending != 0 {
		t.Fatalf("stats %+v", s)
	}

	// A packet still held when stdin closes is let go, not dropped. It
	// arrives "an hour from now", so it is due long after this test ends
	// however slowly the machine runs (a packet due in 40 ms was sometimes
	// released before the stats request under CPU load).
	d.pkts <- packetIn{id: 5, hdr: hdr(addrA, addrB), ipv4: true, at: time.Now().Add(time.Hour)}
	// The packet and the stats request come in on different channels, so
	// the request may be served first: ask until the packet was seen.
	var st control.Stats
	for deadline := time.Now().Add(5 * time.Second); st.Received < 5 && time.Now().Before(deadline); {
		st = ask(`{"id":12,"op":"stats"}`).Stats
	}
	if st.Received != 5 || st.Pending != 1 {
		t.Fatalf("received %d, pending %d; want 5 and 1", st.Received, st.Pending)
	}
	inW.Close()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("loop exit code %d", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("loop did not stop at stdin EOF")
	}
	if v := rec.get(); v[len(v)-1].id != 5 || !v[len(v)-1].accept {
		t.Fatalf("held packet at exit: last verdict %+v, want accept of 5", v[len(v)-1])
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, body, wantErr string
	}{
		{"valid", `{"links":[{"src":"10.0.0.1","dst":"10.0.0.2","delay":"80ms","loss":0.02}],"blackhole":["10.0.0.3"]}`, ""},
		{"unknown key", `{"link":[]}`, "unknown field"},
		{"bad duration", `{"links":[{"src":"10.0.0.1","dst":"10.0.0.2","delay":"80"}]}`, "missing unit"},
		{"ipv6", `{"links":[{"src":"::1","dst":"10.0.0.2"}]}`, "links[0].src"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, c.name+".json")
			if err := os.WriteFile(p, []byte(c.body), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := loadConfig(p)
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("loadConfig: %v", err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Fatalf("loadConfig: %v, want an error with %q", err, c.wantErr)
			}
		})
	}
}

func TestParseQueueDrops(t *testing.T) {
	proc := []byte("    0  12345     3 2   128     7     5    999  1\n    1  12346     0 2   128     0     0      0  1\n")
	cases := []struct {
		name string
		in   []byte
		num  uint16
		want uint64
	}{
		{"queue 0", proc, 0, 12},
		{"queue 1", proc, 1, 0},
		{"absent queue", proc, 2, 0},
		{"empty", nil, 0, 0},
		{"garbage", []byte("0 x y z w v u"), 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := parseQueueDrops(c.in, c.num); got != c.want {
				t.Fatalf("got %d, want %d", got, c.want)
			}
		})
	}
}
