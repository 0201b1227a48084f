package api

// This file is the API's one auth middleware: it wraps every route.
//
// On a loopback listener reads, /metrics and pprof are open and changes
// need api.token_file's token when one is set. Beyond loopback (the
// listen address decides, not the caller's) every route needs a token:
// the full token (api.token_file) opens everything; the read token
// (api.read_token_file) opens GET routes and /metrics, not pprof and no
// change; the locate token (auth.locate_token_file) opens /v1/locate
// only. api.metrics_open serves /metrics without a token.

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/relaymesh/relaymesh/config"
)

// apiRole is what a request's token grants.
type apiRole int

const (
	roleNone apiRole = iota
	roleLocate
	roleRead
	roleAdmin
)

type roleKey struct{}

// requestRole returns the role the middleware gave r.
func requestRole(r *http.Request) apiRole {
	role, _ := r.Context().Value(roleKey{}).(apiRole)
	return role
}

// beyondLoopback reports whether the API listens on a non-loopback address.
func (s *Server) beyondLoopback() bool { return !config.IsLoopback(s.ln.Addr().String()) }

// routeNeed is the least role a route needs.
func (s *Server) routeNeed(r *http.Request, cfg *config.Config, adminSet bool) apiRole {
	beyond := s.beyondLoopback()
	path := r.URL.Path
	read := r.Method == http.MethodGet || r.Method == http.MethodHead
	switch {
	case path == "/debug/pprof" || strings.HasPrefix(path, "/debug/pprof/"):
		if beyond {
			return roleAdmin
		}
		return roleNone
	case !read:
		if adminSet || beyond {
			return roleAdmin
		}
		return roleNone
	case !beyond, path == "/healthz": // beyond loopback: the status only, no details
		return roleNone
	case path == "/metrics" && cfg.API.MetricsOpen:
		return roleNone
	case path == "/v1/locate":
		return roleLocate
	}
	return roleRead
}

// authorize is the middleware over every route.
func (s *Server) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cfg := s.d.Node.Config()
		tokens := []struct {
			key  string
			path string
			role apiRole
		}{
			{"api.token_file", cfg.API.TokenFile, roleAdmin},
			{"api.read_token_file", cfg.API.ReadTokenFile, roleRead},
			{"auth.locate_token_file", cfg.Auth.LocateTokenFile, roleLocate},
		}
		got, sent := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		got = strings.TrimSpace(got)
		role, adminSet := roleNone, false
		for _, t := range tokens {
			tok, err := config.LoadTokenFile(t.path)
			if err != nil {
				s.d.Log.Error("API token file unreadable", "key", t.key, "err", err)
				writeError(w, http.StatusInternalServerError, "token_unreadable", "the API token file ("+t.key+") cannot be read; see the agent log", "")
				return
			}
			if t.role == roleAdmin && tok != "" {
				adminSet = true
			}
			if sent && tok != "" && role == roleNone && subtle.ConstantTimeCompare([]byte(got), []byte(tok)) == 1 {
				role = t.role
			}
		}
		need := s.routeNeed(r, cfg, adminSet)
		if !grants(role, need, r.URL.Path) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="relaymesh"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", needMessage(need), "")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			r.Body = http.MaxBytesReader(w, r.Body, cfg.Objects.APIBodyLimit())
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), roleKey{}, role)))
	})
}

// grants reports whether role may use a route that needs need: the
// locate token opens /v1/locate and nothing else.
func grants(role, need apiRole, path string) bool {
	if need == roleNone {
		return true
	}
	if role == roleLocate {
		return path == "/v1/locate"
	}
	return role >= need
}

func needMessage(need apiRole) string {
	switch need {
	case roleAdmin:
		return "send the API token as Authorization: Bearer <token> (api.token_file)"
	case roleLocate:
		return "the API listens beyond loopback: send the API, read or locate token as Authorization: Bearer <token> (api.token_file, api.read_token_file, auth.locate_token_file)"
	}
	return "the API listens beyond loopback: send the API or read token as Authorization: Bearer <token> (api.token_file, api.read_token_file)"
}

// locateSigns says whether /v1/locate signs its URLs for r.
func (s *Server) locateSigns(r *http.Request) bool {
	if role := requestRole(r); role == roleAdmin || role == roleLocate {
		return true
	}
	if v := s.d.Node.Config().Auth.LocateSigns; v != nil {
		return *v
	}
	return !s.beyondLoopback()
}
