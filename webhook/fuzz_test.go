package webhook_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/webhook"
)

// FuzzVerify: Verify never panics on received headers and body, and
// accepts only what Sign produced.
func FuzzVerify(f *testing.F) {
	now := time.Unix(1767225600, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	body := []byte(`{"event":"x"}`)
	f.Add("sha256="+webhook.Sign(secret, ts, body), ts, body)
	f.Add("sha256=", "", []byte{})
	f.Add("md5=00", "-1", []byte("x"))
	f.Add("sha256=0g", "99999999999999999999", []byte("x"))
	f.Fuzz(func(t *testing.T, sig, ts string, body []byte) {
		h := http.Header{}
		h.Set(webhook.HeaderSignature, sig)
		h.Set(webhook.HeaderTimestamp, ts)
		err := webhook.VerifyAt(secret, h, body, now)
		if err == nil && !strings.EqualFold(sig, "sha256="+webhook.Sign(secret, ts, body)) {
			t.Fatalf("accepted a signature Sign did not make: %q %q %q", sig, ts, body)
		}
	})
}
