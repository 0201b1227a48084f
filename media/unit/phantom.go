package unit

// A phantom payload stands for an FLV tag body nobody will read: a
// TS-native publisher's demuxer (media/mpegts) emits its FLV video
// frames with one while the stream's FLV lane is off (no FLV reader), so
// the hub keeps the stream's timeline, meter and limits exactly as with
// the real body (they need the frame's time, flags and size, not its
// bytes) while no frame is assembled or allocated. The hub drops a
// phantom before any lane or reader could see it. Its bytes are zeros
// of one shared array that nothing writes (never resident beyond the
// page a meter's peek touches).
var phantom [MaxPhantom]byte

// MaxPhantom is the largest payload a phantom can stand for; larger
// frames get their real body.
const MaxPhantom = 16 << 20

// Phantom returns a phantom payload of n bytes (n at most MaxPhantom).
func Phantom(n int) []byte { return phantom[:n:n] }

// IsPhantom reports whether b is a phantom payload.
func IsPhantom(b []byte) bool { return cap(b) > 0 && &b[:1][0] == &phantom[0] }
