package api

// This file masks secrets in every log line as the API does in its
// answers: a URL in a message or value has its stream key and
// tokens hidden, a passphrase attribute is replaced.

import (
	"fmt"
	"log/slog"
	"strings"
)

// MaskLogAttr is a log handler's ReplaceAttr that masks secrets.
func MaskLogAttr(_ []string, a slog.Attr) slog.Attr {
	switch a.Value.Kind() {
	case slog.KindString:
		s := a.Value.String()
		if s != "" && strings.Contains(strings.ToLower(a.Key), "passphrase") {
			return slog.String(a.Key, Masked)
		}
		if m := MaskText(s); m != s {
			return slog.String(a.Key, m)
		}
	case slog.KindAny:
		var s string
		switch v := a.Value.Any().(type) {
		case error:
			s = v.Error()
		case fmt.Stringer:
			s = v.String()
		case []string:
			s = strings.Join(v, " ")
		default:
			return a
		}
		if m := MaskText(s); m != s {
			return slog.String(a.Key, m)
		}
	}
	return a
}
