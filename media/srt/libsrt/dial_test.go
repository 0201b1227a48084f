package libsrt

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestWaitConnectedErrorWhileConnecting: libsrt can flag a socket's error
// (epoll ERR) while srt_getsockstate still says CONNECTING. The wait
// must end with the failure at once, not spin on the closed channel.
// (libsrt does not make this race happen on demand, so the test plays
// the socket's side.)
func TestWaitConnectedErrorWhileConnecting(t *testing.T) {
	st := newSockState()
	st.fail()
	var calls atomic.Int64
	status := func() sockStatus {
		if calls.Add(1) > 1000 {
			return -1 // not CONNECTING, so a spinning loop still ends
		}
		return statusConnecting
	}
	err := waitConnected(context.Background(), st, status, time.Minute)
	if !errors.Is(err, errConnectFailed) {
		t.Fatalf("waitConnected = %v, want errConnectFailed", err)
	}
	if n := calls.Load(); n > 2 {
		t.Errorf("socket state read %d times after the error: the wait spun", n)
	}
}

// TestWaitConnectedBounded: a socket libsrt never reports on (neither
// writable nor broken) ends the wait at the bound with ErrTimeout.
func TestWaitConnectedBounded(t *testing.T) {
	st := newSockState()
	done := make(chan error, 1)
	go func() {
		done <- waitConnected(context.Background(), st, func() sockStatus { return statusConnecting }, 50*time.Millisecond)
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("waitConnected = %v, want ErrTimeout", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("waitConnected did not end at its bound")
	}
}
