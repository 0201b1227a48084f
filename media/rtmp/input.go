package rtmp

import (
	"io"
	"os"
	"sync"
	"syscall"

	"github.com/bluenviron/gortmplib/pkg/bytecounter"
)

// inputSize is the size of one read of a connection: several of a
// publisher's writes, or a quarter of a 1 Mbit/s keyframe, in one syscall
// (a 4 KiB buffer took one read per 4 KiB chunk). Not larger: during a GC
// cycle the runtime parks goroutines that allocate (GC assists) with their
// buffer, ~120 at once at 1,000 publishers (8 MB live at 64 KiB each).
const inputSize = 16 << 10

// inputPool holds the read buffers of all connections: a connection holds
// one only from a read of its socket until the bytes read are used up,
// never while it waits for input, so a thousand idle or waiting
// connections hold none (a bufio.Reader per connection kept 4 KiB each).
var inputPool = sync.Pool{New: func() any { b := make([]byte, inputSize); return &b }}

// input is the buffered input of a message reader. On a connection with
// a file descriptor (TCP) it reads the socket itself through its RawConn,
// taking a buffer from inputPool only once the socket has data; on any
// other reader (a pipe, TLS) it reads src into a pooled buffer. Before
// each read of the connection it runs the MessageConn's beforeRead.
type input struct {
	m   *MessageConn
	raw syscall.RawConn     // nil: read src
	src io.Reader           // counts what it reads
	bc  *bytecounter.Reader // the count of bytes read, for the acks

	buf  *[]byte // from inputPool while it holds unread input
	b    []byte  // the bytes read into buf
	r, w int
}

func newInput(m *MessageConn, bc *bytecounter.Reader, nc any) *input {
	in := &input{m: m, src: bc, bc: bc}
	if sc, ok := nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			in.raw = raw
		}
	}
	return in
}

// ReadByte returns the next byte of input.
func (in *input) ReadByte() (byte, error) {
	if in.r == in.w {
		if err := in.fill(); err != nil {
			return 0, err
		}
	}
	c := in.b[in.r]
	in.r++
	in.release()
	return c, nil
}

// Read copies buffered input into p, reading the connection once when
// none is left.
func (in *input) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if in.r == in.w {
		if err := in.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, in.b[in.r:in.w])
	in.r += n
	in.release()
	return n, nil
}

// release returns the buffer to the pool once its input is used up.
func (in *input) release() {
	if in.r == in.w && in.buf != nil {
		inputPool.Put(in.buf)
		in.buf, in.b, in.r, in.w = nil, nil, 0, 0
	}
}

func (in *input) before() {
	if f := in.m.beforeRead; f != nil {
		f()
	}
}

// fill reads the connection once into a pooled buffer; the buffered input
// is used up.
func (in *input) fill() error {
	if in.raw == nil {
		in.before()
		b := inputPool.Get().(*[]byte)
		var (
			n   int
			err error
		)
		for i := 0; n == 0 && err == nil; i++ { // as bufio: a reader may return 0, nil a few times
			if i == 100 {
				err = io.ErrNoProgress
				break
			}
			n, err = in.src.Read(*b)
		}
		if n == 0 {
			inputPool.Put(b)
			return err
		}
		in.buf, in.b, in.r, in.w = b, (*b)[:n], 0, n
		return nil // an error with data comes again with the next read
	}
	var (
		b    *[]byte
		n    int
		rerr error
	)
	err := in.raw.Read(func(fd uintptr) bool {
		in.before()
		b = inputPool.Get().(*[]byte)
		for {
			n, rerr = syscall.Read(int(fd), *b)
			if rerr != syscall.EINTR {
				break
			}
		}
		if rerr == syscall.EAGAIN {
			// nothing yet: wait for the socket without a buffer
			inputPool.Put(b)
			return false
		}
		return true
	})
	switch {
	case err != nil: // closed, or past the read deadline
		return err
	case rerr != nil:
		inputPool.Put(b)
		return os.NewSyscallError("read", rerr)
	case n <= 0:
		inputPool.Put(b)
		return io.EOF
	}
	in.bc.SetCount(in.bc.Count() + uint64(n))
	in.buf, in.b, in.r, in.w = b, (*b)[:n], 0, n
	return nil
}
