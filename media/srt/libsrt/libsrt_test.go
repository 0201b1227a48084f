package libsrt

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

const pass = "libsrt-test-passphrase"

func listen(t *testing.T, cfg ListenConfig) *Listener {
	t.Helper()
	l, err := Listen("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// accepted waits (bounded) for the connection acceptOne accepts.
func accepted(t *testing.T, ac <-chan *Conn) *Conn {
	t.Helper()
	select {
	case sc := <-ac:
		return sc
	case <-time.After(5 * time.Second):
		t.Fatal("no accept")
		return nil
	}
}

func acceptOne(t *testing.T, l *Listener) <-chan *Conn {
	ch := make(chan *Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(ch)
			return
		}
		t.Cleanup(func() { c.CloseNow() })
		ch <- c
	}()
	return ch
}

// TestDecide: the listen callback sees the streamid and peer, and what it
// sets per connection (passphrase, key length, latency) is what the
// connection gets; what it refuses, the caller sees with the reason.
func TestDecide(t *testing.T) {
	l := listen(t, ListenConfig{Decide: func(r Request) Decision {
		switch r.StreamID {
		case "open":
			return Decision{Latency: 450 * time.Millisecond, Tag: "open-tag"}
		case "secret":
			return Decision{Passphrase: pass, Tag: "secret-tag"}
		case "missing":
			return Decision{Reject: RejXNotFound}
		}
		return Decision{Reject: RejXBadRequest}
	}})
	addr := l.Addr().String()
	cases := []struct {
		name     string
		opt      Options
		wantErr  string
		wantTag  string
		wantLat  time.Duration
		wantKey  int
		wantCode int
	}{
		{name: "latency set by the listener", opt: Options{StreamID: "open", Latency: 120 * time.Millisecond}, wantTag: "open-tag", wantLat: 450 * time.Millisecond},
		{name: "the caller's larger latency wins", opt: Options{StreamID: "open", Latency: 800 * time.Millisecond}, wantTag: "open-tag", wantLat: 800 * time.Millisecond},
		{name: "per-connection passphrase, the caller's key length", opt: Options{StreamID: "secret", Passphrase: pass, PBKeyLen: 32}, wantTag: "secret-tag", wantKey: 32},
		{name: "per-connection passphrase, default key length", opt: Options{StreamID: "secret", Passphrase: pass}, wantTag: "secret-tag", wantKey: 16},
		{name: "wrong passphrase", opt: Options{StreamID: "secret", Passphrase: pass + "x"}, wantCode: RejBadSecret, wantErr: "wrong passphrase"},
		{name: "no passphrase", opt: Options{StreamID: "secret"}, wantCode: RejUnsecure, wantErr: "encryption mismatch"},
		{name: "not found", opt: Options{StreamID: "missing"}, wantCode: RejXNotFound, wantErr: "not found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ac := acceptOne(t, l)
			conn, err := Dial(context.Background(), addr, c.opt)
			if c.wantErr != "" {
				var re *RejectError
				if !errors.As(err, &re) || re.Code != c.wantCode || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("Dial error %v, want reject %d %q", err, c.wantCode, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer conn.CloseNow()
			sc := accepted(t, ac)
			if sc.Tag() != c.wantTag || sc.StreamID() != c.opt.StreamID {
				t.Errorf("accepted tag %v streamid %q", sc.Tag(), sc.StreamID())
			}
			if c.wantLat != 0 {
				if r, p := sc.Latency(); r != c.wantLat || p != c.wantLat {
					t.Errorf("listener side latency %s/%s, want %s", r, p, c.wantLat)
				}
				if st := conn.Stats(); time.Duration(st.RecvLatencyMs)*time.Millisecond != c.wantLat {
					t.Errorf("caller stats latency %d ms, want %s", st.RecvLatencyMs, c.wantLat)
				}
			}
			if c.wantKey != 0 && (conn.PBKeyLen() != c.wantKey || sc.PBKeyLen() != c.wantKey) {
				t.Errorf("key length %d/%d, want %d", conn.PBKeyLen(), sc.PBKeyLen(), c.wantKey)
			}
			// messages both ways
			msg := []byte(strings.Repeat("x", 1316))
			for i := 0; i < 100; i++ {
				if _, err := conn.Write(msg); err != nil {
					t.Fatal(err)
				}
			}
			buf := make([]byte, 1500)
			for i := 0; i < 100; i++ {
				sc.SetReadDeadline(time.Now().Add(5 * time.Second))
				n, err := sc.Read(buf)
				if err != nil || n != 1316 {
					t.Fatalf("read %d: %d %v", i, n, err)
				}
			}
		})
	}
}

// TestCloseLingers: a caller that writes and closes at once still gets
// everything to the listener's reader, then the reader sees EOF.
func TestCloseLingers(t *testing.T) {
	l := listen(t, ListenConfig{})
	ac := acceptOne(t, l)
	conn, err := Dial(context.Background(), l.Addr().String(), Options{Latency: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	sc := <-ac
	msg := make([]byte, 1316)
	const n = 2000
	for i := 0; i < n; i++ {
		msg[0] = byte(i)
		if _, err := conn.Write(msg); err != nil {
			t.Fatal(err)
		}
	}
	closed := make(chan struct{})
	go func() { conn.Close(); close(closed) }()
	got := 0
	buf := make([]byte, 1500)
	for {
		sc.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := sc.Read(buf)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("after %d messages: %v", got, err)
			}
			break
		}
		got++
	}
	<-closed
	if got != n {
		t.Errorf("the reader got %d of %d messages", got, n)
	}
}

// TestDeadline: a Read with nothing to read ends at its deadline.
func TestDeadline(t *testing.T) {
	l := listen(t, ListenConfig{})
	ac := acceptOne(t, l)
	conn, err := Dial(context.Background(), l.Addr().String(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	sc := <-ac
	sc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := sc.Read(make([]byte, 1500)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read = %v, want deadline exceeded", err)
	}
}

// TestDialNoAnswer: nobody listening is a timeout error, not a hang.
func TestDialNoAnswer(t *testing.T) {
	l := listen(t, ListenConfig{})
	addr := l.Addr().String()
	l.Close()
	_, err := Dial(context.Background(), addr, Options{ConnectTimeout: 500 * time.Millisecond})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Dial = %v, want ErrTimeout", err)
	}
}

// TestBacklogRefusalKeepsDecision: a caller refused by libsrt itself
// before the listen callback runs (here: the backlog is full) is not
// taken for the connection the callback accepted just before it, which
// keeps its Decide tag and is not reported Failed.
func TestBacklogRefusalKeepsDecision(t *testing.T) {
	failed := make(chan any, 4)
	l := listen(t, ListenConfig{Backlog: 1,
		Decide: func(r Request) Decision { return Decision{Tag: r.StreamID} },
		Failed: func(tag any, reason int) { failed <- tag }})
	a, err := Dial(context.Background(), l.Addr().String(), Options{StreamID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.CloseNow()
	// a waits in libsrt's accept queue (no Accept yet): b finds it full
	_, err = Dial(context.Background(), l.Addr().String(), Options{StreamID: "b"})
	var re *RejectError
	if !errors.As(err, &re) || re.Code != RejBacklog {
		t.Fatalf("second caller: %v, want a backlog refusal", err)
	}
	sc := <-acceptOne(t, l)
	if sc == nil {
		t.Fatal("no accept")
	}
	if sc.Tag() != "a" {
		t.Errorf("accepted connection's tag %v, want a", sc.Tag())
	}
	select {
	case tag := <-failed:
		t.Errorf("Failed called for %v", tag)
	default:
	}
}

// TestFailedWrongPassphrase: a handshake Decide accepted that libsrt then
// refused for its passphrase is reported to Failed with its tag.
func TestFailedWrongPassphrase(t *testing.T) {
	failed := make(chan int, 4)
	l := listen(t, ListenConfig{
		Decide: func(r Request) Decision { return Decision{Passphrase: pass, Tag: r.StreamID} },
		Failed: func(tag any, reason int) {
			if tag == "secret" {
				failed <- reason
			}
		}})
	_, err := Dial(context.Background(), l.Addr().String(), Options{StreamID: "secret", Passphrase: pass + "x"})
	var re *RejectError
	if !errors.As(err, &re) || re.Code != RejBadSecret {
		t.Fatalf("Dial: %v, want a wrong-passphrase refusal", err)
	}
	select {
	case r := <-failed:
		if r != RejBadSecret {
			t.Errorf("Failed reason %d, want %d", r, RejBadSecret)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Failed not called")
	}
	if n := l.Pending(); n != 0 {
		t.Errorf("%d decisions still pending", n)
	}
}

// TestDecideBuffers: the flight window and receive buffer Decide gives a
// connection are what libsrt allocates for it (read back from the accepted
// socket), and data flows through the smaller buffer.
func TestDecideBuffers(t *testing.T) {
	l := listen(t, ListenConfig{Decide: func(r Request) Decision {
		return Decision{FC: 300, RcvBuf: 300 * 1472}
	}})
	ac := acceptOne(t, l)
	conn, err := Dial(context.Background(), l.Addr().String(), Options{StreamID: "small"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	sc := accepted(t, ac)
	defer sc.CloseNow()
	if rb, fc := sc.Buffers(); rb != 300*1472 || fc != 300 {
		t.Errorf("accepted socket: rcvbuf %d fc %d, want %d and 300", rb, fc, 300*1472)
	}
	if rb, fc := conn.Buffers(); rb != 8192*1472 || fc != 25600 {
		t.Errorf("caller socket: rcvbuf %d fc %d, want libsrt's defaults", rb, fc)
	}
	msg := []byte(strings.Repeat("y", 1316))
	buf := make([]byte, 1500)
	// 1000 messages in batches of 100, a third of the receive buffer (each
	// batch waits out the latency once)
	for b := 0; b < 10; b++ {
		for i := 0; i < 100; i++ {
			if _, err := conn.Write(msg); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < 100; i++ {
			sc.SetReadDeadline(time.Now().Add(5 * time.Second))
			if n, err := sc.Read(buf); err != nil || n != 1316 {
				t.Fatalf("batch %d, read %d: %d %v", b, i, n, err)
			}
		}
	}
}

// TestPendingUntilAdmitted: an accepted connection stays in the
// listener's Pending until its owner Admits it or it closes, so that a
// connection limit checked in Decide (owner's count + Pending) never
// misses one between Accept and the owner's bookkeeping (it did:
// TestRefusals in media/srt let a third connection past a limit of 2).
func TestPendingUntilAdmitted(t *testing.T) {
	l := listen(t, ListenConfig{Decide: func(Request) Decision { return Decision{} }})
	var conns []*Conn
	for i := range 2 {
		ac := acceptOne(t, l)
		c, err := Dial(context.Background(), l.Addr().String(), Options{StreamID: "s"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		conns = append(conns, accepted(t, ac))
		if got := l.Pending(); got != i+1 {
			t.Fatalf("after %d accepts and no Admitted: Pending %d, want %d", i+1, got, i+1)
		}
	}
	conns[0].Admitted()
	conns[0].Admitted() // once
	if got := l.Pending(); got != 1 {
		t.Fatalf("after one Admitted: Pending %d, want 1", got)
	}
	conns[1].CloseNow()
	conns[0].CloseNow() // admitted already: not released twice
	if got := l.Pending(); got != 0 {
		t.Fatalf("after the other closed: Pending %d, want 0", got)
	}
}

// TestEveryLossReport: the retransmission rule is set on a caller that
// asks for it and inherited by the sockets a listener that asks for it
// accepts; libsrt's default (once per RTT) stays for the others.
func TestEveryLossReport(t *testing.T) {
	for _, every := range []bool{false, true} {
		l := listen(t, ListenConfig{Options: Options{EveryLossReport: every}})
		ac := acceptOne(t, l)
		conn, err := Dial(context.Background(), l.Addr().String(), Options{StreamID: "rexmit", EveryLossReport: every})
		if err != nil {
			t.Fatal(err)
		}
		sc := accepted(t, ac)
		if conn.EveryLossReport() != every || sc.EveryLossReport() != every {
			t.Errorf("asked for %v: caller %v, accepted %v", every, conn.EveryLossReport(), sc.EveryLossReport())
		}
		conn.CloseNow()
		sc.CloseNow()
	}
}
