package srt

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/relaymesh/relaymesh/media"
)

// Actions a stream id asks for.
const (
	ActionPublish = "publish"
	ActionRead    = "read"
)

// ErrBadStreamID is wrapped by every ParseStreamID error.
var ErrBadStreamID = errors.New("bad SRT streamid")

// maxStreamID is libsrt's limit for SRTO_STREAMID.
const maxStreamID = 512

// StreamID is a parsed SRT stream id.
type StreamID struct {
	Action string     // ActionPublish or ActionRead
	Key    string     // app/name
	Token  string     // from ?token= or the access-control key t
	Query  url.Values // the query string after the resource, if any
}

// ParseStreamID reads the stream id forms relaymesh accepts:
//
//	publish:app/name[?token=...]
//	read:app/name[?token=...]
//	app/name[?token=...]                    (read)
//	#!::r=app/name,m=publish[,t=TOKEN]      (SRT access control; m=request reads)
func ParseStreamID(s string) (StreamID, error) {
	var id StreamID
	bad := func(format string, a ...any) (StreamID, error) {
		return StreamID{}, fmt.Errorf("%w: "+format, append([]any{ErrBadStreamID}, a...)...)
	}
	if s == "" {
		return bad("empty; use publish:app/name or read:app/name")
	}
	if len(s) > maxStreamID {
		return bad("%d bytes, longer than %d", len(s), maxStreamID)
	}
	for _, c := range []byte(s) {
		if c < 0x20 || c > 0x7e {
			return bad("control or non-ASCII byte 0x%02x", c)
		}
	}
	var resource string
	switch {
	case strings.HasPrefix(s, "#!::"):
		var mode, token string
		seen := map[string]bool{}
		for _, kv := range strings.Split(s[4:], ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return bad("access-control item %q is not key=value", kv)
			}
			if seen[k] {
				return bad("access-control key %q given twice", k)
			}
			seen[k] = true
			switch k {
			case "r":
				resource = v
			case "m":
				mode = v
			case "t":
				token = v
			case "u", "s", "h":
				// user, session and host are accepted and ignored
			default:
				return bad("unknown access-control key %q (want r, m, t, u, s, h)", k)
			}
		}
		switch mode {
		case "publish":
			id.Action = ActionPublish
		case "request", "":
			id.Action = ActionRead
		default:
			return bad("mode m=%q is not publish or request", mode)
		}
		if resource == "" {
			return bad("access-control form without r=app/name")
		}
		id.Token = token
	case strings.HasPrefix(s, "publish:"):
		id.Action, resource = ActionPublish, s[len("publish:"):]
	case strings.HasPrefix(s, "read:"):
		id.Action, resource = ActionRead, s[len("read:"):]
	default:
		if strings.Contains(s, ":") && !strings.Contains(s[:strings.IndexByte(s, ':')], "/") {
			return bad("unknown action in %q; use publish: or read:", s)
		}
		id.Action, resource = ActionRead, s
	}
	key, query, hasQuery := strings.Cut(resource, "?")
	if err := media.CheckKey(key); err != nil {
		return bad("%v", err)
	}
	id.Key = key
	if hasQuery {
		q, err := url.ParseQuery(query)
		if err != nil {
			return bad("query %q: %v", query, err)
		}
		if len(q["token"]) > 1 {
			return bad("token given twice")
		}
		if t := q.Get("token"); t != "" {
			if id.Token != "" && id.Token != t {
				return bad("two different tokens (t= and ?token=)")
			}
			id.Token = t
		}
		id.Query = q
	}
	return id, nil
}

// URLParam writes sid as the streamid option of an srt:// URL the way
// ffmpeg and srt-live-transmit read it back: they take the option up to
// the next '&' and do not decode %XX, so ':', '/', '?' and '=' stay as
// they are and only what would end or garble the option is escaped.
func URLParam(sid string) string {
	return urlParamEscaper.Replace(sid)
}

var urlParamEscaper = strings.NewReplacer("%", "%25", "&", "%26", "#", "%23", " ", "%20")
