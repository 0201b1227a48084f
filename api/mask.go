package api

// This file hides secrets in API answers: passphrases, and the stream keys
// and tokens inside push and pull URLs (an RTMP URL's stream name is the
// platform's stream key, an SRT streamid names the stream and may carry a
// token). A client that sends an answer back unchanged (PUT) gets the
// secrets it could not see put back.

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strings"

	"github.com/relaymesh/relaymesh/media/link"
)

// Masked replaces a secret in answers and logs.
const Masked = "********"

// MaskText hides the stream key and secrets of every URL inside s, as
// the API's answers do: for log lines.
func MaskText(s string) string { return maskInString(s) }

// maskURL hides the stream key and secrets of a media URL:
// rtmp://h/app/KEY -> rtmp://h/app/********, srt://h:p?streamid=publish:KEY
// -> srt://h:p?streamid=publish:********; tokens, passphrases and
// passwords in any URL become xxxxx (link.Redact).
func maskURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return link.Redact(raw)
	}
	host := u.Host
	if u.User != nil {
		host = u.User.Username() + "@" + host
	}
	head := u.Scheme + "://" + host
	query := ""
	if u.RawQuery != "" {
		query = "?" + u.RawQuery
	}
	switch strings.ToLower(u.Scheme) {
	case "rtmp", "rtmps":
		app, rest, ok := strings.Cut(strings.TrimPrefix(u.EscapedPath(), "/"), "/")
		if !ok || rest == "" {
			return link.Redact(head + u.EscapedPath() + query)
		}
		return link.Redact(head + "/" + app + "/" + Masked + query)
	case "srt":
		parts := strings.Split(u.RawQuery, "&")
		for i, p := range parts {
			name, val, _ := strings.Cut(p, "=")
			if name != "streamid" || val == "" {
				continue
			}
			sid, err := url.QueryUnescape(val)
			if err != nil {
				sid = val
			}
			mode, _, ok := strings.Cut(sid, ":")
			if ok && (mode == "publish" || mode == "read" || mode == "request") {
				parts[i] = name + "=" + mode + ":" + Masked
			} else {
				parts[i] = name + "=" + Masked
			}
		}
		q := strings.Join(parts, "&")
		if q != "" {
			q = "?" + q
		}
		return link.Redact(head + u.EscapedPath() + q)
	}
	return link.Redact(raw)
}

// unmaskURL puts old back when the client sent old's masked form.
func unmaskURL(s *string, old string) {
	if *s != old && *s == maskURL(old) {
		*s = old
	}
}

// maskAnswer returns v as JSON values with every secret hidden: a
// "passphrase" (or "*_passphrase") string becomes ********, every string
// that is a media or web URL goes through maskURL. It walks the whole
// answer, so status fields (push targets, last errors naming a URL) are
// covered as well as the spec.
func maskAnswer(v any) any {
	data, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var tree any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // counters above 2^53 stay exact
	if err := dec.Decode(&tree); err != nil {
		return v
	}
	return maskTree("", tree)
}

func maskTree(key string, v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if k == "urls" {
				continue // a flow's URLs to publish to and play from: they are the answer (flow.URLsFor)
			}
			x[k] = maskTree(k, e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = maskTree(key, e)
		}
		return x
	case string:
		if x != "" && (key == "passphrase" || strings.HasSuffix(key, "_passphrase")) {
			return Masked
		}
		return maskInString(x)
	}
	return v
}

// maskInString masks every URL inside s (an error message may quote one).
func maskInString(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '"' || r == '\'' || r == ',' })
	for _, f := range fields {
		if i := strings.Index(f, "://"); i > 0 {
			if m := maskURL(f); m != f {
				s = strings.Replace(s, f, m, 1)
			}
		}
	}
	return s
}
