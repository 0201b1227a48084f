package auth

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/netutil"
)

func TestPolicyCheck(t *testing.T) {
	now := time.Unix(1735689600, 0)
	lan, err := netutil.ParseAllowList([]string{"10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	token := func(action, key string, exp time.Time) string {
		return strings.TrimPrefix(Sign(testKey, action, key, exp), "token=")
	}
	inLAN := &net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 5000}
	outside := &net.TCPAddr{IP: net.ParseIP("192.0.2.9"), Port: 5000}
	signedPublish := &Policy{PublishAuth: true, Key: testKey}
	cases := []struct {
		name               string
		p                  *Policy
		action, key, token string
		remote             net.Addr
		err                string // "" = admitted
	}{
		{"open", &Policy{}, ActionPublish, "live/a", "", outside, ""},
		{"publish allowlist admits", &Policy{PublishAllow: lan}, ActionPublish, "live/a", "", inLAN, ""},
		{"publish allowlist refuses", &Policy{PublishAllow: lan}, ActionPublish, "live/a", "", outside, "address 192.0.2.9:5000 is not in auth.publish_allow"},
		{"publish allowlist leaves play open", &Policy{PublishAllow: lan}, ActionPlay, "live/a", "", outside, ""},
		{"play allowlist refuses", &Policy{PlayAllow: lan}, ActionPlay, "live/a", "", outside, "not in auth.play_allow"},
		{"signed publish without token", signedPublish, ActionPublish, "live/a", "", inLAN, "a signed URL is required"},
		{"signed publish with token", signedPublish, ActionPublish, "live/a", token(ActionPublish, "live/a", now.Add(time.Minute)), inLAN, ""},
		{"token of another stream", signedPublish, ActionPublish, "live/b", token(ActionPublish, "live/a", now.Add(time.Minute)), inLAN, "the signature does not match"},
		{"play token used to publish", signedPublish, ActionPublish, "live/a", token(ActionPlay, "live/a", now.Add(time.Minute)), inLAN, "the signature does not match"},
		{"expired token", signedPublish, ActionPublish, "live/a", token(ActionPublish, "live/a", now.Add(-time.Minute)), inLAN, "the signed URL has expired"},
		{"signed publish leaves play open", signedPublish, ActionPlay, "live/a", "", inLAN, ""},
		{"allowlist before token", &Policy{PublishAuth: true, Key: testKey, PublishAllow: lan}, ActionPublish, "live/a",
			token(ActionPublish, "live/a", now.Add(time.Minute)), outside, "not in auth.publish_allow"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.p.Check(c.action, c.key, c.token, c.remote, now)
			switch {
			case c.err == "" && err != nil:
				t.Errorf("Check: %v, want admitted", err)
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
				t.Errorf("Check: %v, want refused saying %q", err, c.err)
			}
		})
	}
}

func TestPolicySign(t *testing.T) {
	exp := time.Unix(1735689600, 0)
	cases := []struct {
		name   string
		p      *Policy
		action string
		signed bool
	}{
		{"no policy", nil, ActionPublish, false},
		{"open", &Policy{}, ActionPublish, false},
		{"publish signed", &Policy{PublishAuth: true, Key: testKey}, ActionPublish, true},
		{"play not asked", &Policy{PublishAuth: true, Key: testKey}, ActionPlay, false},
		{"play signed", &Policy{PlayAuth: true, Key: testKey}, ActionPlay, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := c.p.Sign(c.action, "live/a", exp)
			if want := Sign(testKey, c.action, "live/a", exp); c.signed && got != want {
				t.Errorf("Sign = %q, want %q", got, want)
			}
			if !c.signed && got != "" {
				t.Errorf("Sign = %q, want none", got)
			}
			if c.signed && c.p.Check(c.action, "live/a", strings.TrimPrefix(got, "token="), nil, exp.Add(-time.Second)) != nil {
				t.Errorf("the policy refuses its own signed URL %q", got)
			}
		})
	}
}
