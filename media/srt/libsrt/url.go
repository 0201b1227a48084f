package libsrt

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// URLKeys are the query keys ParseURL reads (srt-live-transmit's and
// ffmpeg's names); mode may only be caller.
var URLKeys = []string{"streamid", "passphrase", "pbkeylen", "latency", "conntimeo", "peeridletimeo", "mode"}

// ParseURL reads srt://host:port?streamid=...&passphrase=...&pbkeylen=N
// &latency=MS&conntimeo=MS&peeridletimeo=MS (the names srt-live-transmit
// and ffmpeg use) into a dial address and options. It refuses what a
// connect would refuse or ignore: a port outside 1..65535, an unknown
// key, a number out of range, a passphrase libsrt does not take; the
// error names the key and never quotes the passphrase.
func ParseURL(raw string) (string, Options, error) {
	var o Options
	u, err := url.Parse(raw)
	if err != nil {
		return "", o, err
	}
	if u.Scheme != "srt" || u.Hostname() == "" || u.Port() == "" {
		return "", o, fmt.Errorf("not srt://host:port")
	}
	if p, err := strconv.Atoi(u.Port()); err != nil || p < 1 || p > 65535 {
		return "", o, fmt.Errorf("port %s is outside 1..65535", u.Port())
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return "", o, fmt.Errorf("bad query: %w", err)
	}
	for k, v := range q {
		if !slices.Contains(URLKeys, k) {
			return "", o, fmt.Errorf("unknown key %q: an srt URL takes %s", k, strings.Join(URLKeys, ", "))
		}
		if len(v) > 1 {
			return "", o, fmt.Errorf("%s is given %d times", k, len(v))
		}
	}
	if m := q.Get("mode"); m != "" && m != "caller" {
		return "", o, fmt.Errorf("mode=%q: relaymesh calls this URL, so mode can only be caller", m)
	}
	o.StreamID = q.Get("streamid")
	o.Passphrase = q.Get("passphrase")
	num := func(key string, max int) (int, error) {
		v := q.Get(key)
		if v == "" {
			return 0, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > max {
			return 0, fmt.Errorf("%s=%q is not a number in 0..%d", key, v, max)
		}
		return n, nil
	}
	if o.PBKeyLen, err = num("pbkeylen", 32); err != nil {
		return "", o, err
	}
	// durations in milliseconds, with their upper bounds
	for _, m := range []struct {
		key string
		max int
		d   *time.Duration
	}{{"latency", 60_000, &o.Latency}, {"conntimeo", 60_000, &o.ConnectTimeout}, {"peeridletimeo", 600_000, &o.PeerIdleTimeout}} {
		n, err := num(m.key, m.max)
		if err != nil {
			return "", o, fmt.Errorf("%w (milliseconds)", err)
		}
		*m.d = time.Duration(n) * time.Millisecond
	}
	if err := o.Validate(); err != nil {
		return "", o, err
	}
	return u.Host, o, nil
}
