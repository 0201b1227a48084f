package wire

import (
	"encoding/binary"
	"math/rand/v2"
)

// Rand is the harness's deterministic random source: case i of a run with
// seed s is always built from NewRand(s, i), whatever ran before it, so a
// failing case is replayed from its two numbers alone.
func NewRand(seed, i uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, i)) }

// interesting are the values that break length and index arithmetic.
var interesting32 = []uint32{0, 1, 2, 3, 4, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000,
	0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff}

// Mutate returns a mutated copy of p: between 1 and max edits, each a bit
// flip, an interesting byte/16/32-bit value, a truncation, an insertion,
// a deletion, a duplicated block or random bytes appended. The result may
// be empty or much longer than p.
func Mutate(r *rand.Rand, p []byte, max int) []byte {
	b := append([]byte(nil), p...)
	n := 1 + r.IntN(max)
	for range n {
		b = mutateOnce(r, b)
	}
	return b
}

func mutateOnce(r *rand.Rand, b []byte) []byte {
	if len(b) == 0 {
		return randBytes(r, 1+r.IntN(64))
	}
	switch r.IntN(10) {
	case 0: // flip a bit
		i := r.IntN(len(b))
		b[i] ^= 1 << r.IntN(8)
	case 1: // interesting byte
		b[r.IntN(len(b))] = byte(interesting32[r.IntN(len(interesting32))])
	case 2: // interesting 16-bit value, aligned as SRT fields are
		if len(b) >= 2 {
			i := r.IntN(len(b)/2) * 2
			binary.BigEndian.PutUint16(b[i:], uint16(interesting32[r.IntN(len(interesting32))]))
		}
	case 3: // interesting 32-bit value
		if len(b) >= 4 {
			i := r.IntN(len(b)/4) * 4
			binary.BigEndian.PutUint32(b[i:], interesting32[r.IntN(len(interesting32))])
		}
	case 4: // truncate
		b = b[:r.IntN(len(b))]
	case 5: // insert random bytes
		i := r.IntN(len(b) + 1)
		ins := randBytes(r, 1+r.IntN(16))
		b = append(b[:i], append(ins, b[i:]...)...)
	case 6: // delete a run
		i := r.IntN(len(b))
		j := min(len(b), i+1+r.IntN(16))
		b = append(b[:i], b[j:]...)
	case 7: // duplicate a block at the end (repeated extensions)
		i := r.IntN(len(b))
		j := min(len(b), i+4+r.IntN(32))
		b = append(b, b[i:j]...)
	case 8: // append garbage, sometimes up to a jumbo datagram
		n := 1 + r.IntN(32)
		if r.IntN(8) == 0 {
			n = 1 + r.IntN(9000)
		}
		b = append(b, randBytes(r, n)...)
	default: // random byte
		b[r.IntN(len(b))] = byte(r.Uint32())
	}
	return b
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// RandBytes is n random bytes from r.
func RandBytes(r *rand.Rand, n int) []byte { return randBytes(r, n) }
