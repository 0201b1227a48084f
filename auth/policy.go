package auth

import (
	"fmt"
	"net"
	"time"

	"github.com/relaymesh/relaymesh/netutil"
)

// Policy is what every listener consults before a publish or a play: the
// CIDR allowlist of the action first, then a signed URL when the action
// requires one. It is immutable once built; a reload builds a new one.
type Policy struct {
	PublishAuth, PlayAuth   bool   // signed URLs required to publish, to play
	Key                     []byte // the HMAC key (set when either is required)
	PublishAllow, PlayAllow netutil.AllowList
}

// Check decides a publish or play (action) of stream key by remote with
// token (the token= value, "" when none) at now.
func (p *Policy) Check(action, key, token string, remote net.Addr, now time.Time) error {
	allow, need := p.PlayAllow, p.PlayAuth
	if action == ActionPublish {
		allow, need = p.PublishAllow, p.PublishAuth
	}
	if allow.Len() > 0 && !allow.AllowsNetAddr(remote) {
		return fmt.Errorf("address %s is not in auth.%s_allow", remote, action)
	}
	if need {
		return VerifyToken(p.Key, action, key, token, now)
	}
	return nil
}

// Sign is the query ("token=...") that grants action on stream key until
// exp, or "" when the policy (nil: none) requires no token for action.
func (p *Policy) Sign(action, key string, exp time.Time) string {
	if p == nil || len(p.Key) == 0 || !p.Needs(action) {
		return ""
	}
	return Sign(p.Key, action, key, exp)
}

// Needs reports whether action requires a signed URL.
func (p *Policy) Needs(action string) bool {
	if action == ActionPublish {
		return p.PublishAuth
	}
	return p.PlayAuth
}
