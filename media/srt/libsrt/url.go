package libsrt

import (
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// ParseURL reads srt://host:port?streamid=...&passphrase=...&pbkeylen=N
// &latency=MS&conntimeo=MS&peeridletimeo=MS (the names srt-live-transmit
// and ffmpeg use) into a dial address and options.
func ParseURL(raw string) (string, Options, error) {
	var o Options
	u, err := url.Parse(raw)
	if err != nil {
		return "", o, err
	}
	if u.Scheme != "srt" || u.Port() == "" {
		return "", o, fmt.Errorf("%q is not srt://host:port", raw)
	}
	q := u.Query()
	o.StreamID = q.Get("streamid")
	o.Passphrase = q.Get("passphrase")
	num := func(key string) (int, error) {
		v := q.Get(key)
		if v == "" {
			return 0, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%s=%q is not a number", key, v)
		}
		return n, nil
	}
	msOf := func(key string, d *time.Duration) error {
		n, err := num(key)
		*d = time.Duration(n) * time.Millisecond
		return err
	}
	if o.PBKeyLen, err = num("pbkeylen"); err != nil {
		return "", o, err
	}
	for k, d := range map[string]*time.Duration{"latency": &o.Latency, "conntimeo": &o.ConnectTimeout, "peeridletimeo": &o.PeerIdleTimeout} {
		if err := msOf(k, d); err != nil {
			return "", o, err
		}
	}
	return u.Host, o, o.Validate()
}
