// Package client is a typed client of the relaymesh agent's HTTP API
// (/healthz and /v1/...) and of its control socket (reload). The types it
// decodes are the ones the agent encodes: the agent's handlers answer with
// the structs defined here or in the packages that own the objects
// (flow.View, task.View, relay.View, edge.Status, ...), so the two
// cannot drift.
//
// A Client is safe for concurrent use. Every call takes a context; the
// Client itself sets no timeout.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// DefaultAPI is the API address of the built-in default config.
const DefaultAPI = "http://127.0.0.1:9997"

// TokenEnv is the environment variable that holds the API token when no
// token file is given.
const TokenEnv = "RELAYMESH_TOKEN"

// maxAnswer bounds an answer's body.
const maxAnswer = 16 << 20

// Client talks to one agent's API.
type Client struct {
	base  string
	token string
	hc    *http.Client
}

// Option configures a Client.
type Option func(*Client)

// WithToken sends token as "Authorization: Bearer TOKEN" ("" sends none).
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithHTTPClient sends the requests through hc (e.g. one that dials in
// another network namespace). The default is http.DefaultClient's
// transport.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// New returns a client of the API at base, e.g. "http://127.0.0.1:9997".
func New(base string, opts ...Option) *Client {
	c := &Client{base: strings.TrimRight(base, "/"), hc: &http.Client{}}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Base is the API's base URL.
func (c *Client) Base() string { return c.base }

// Token is the API token a command line sends: the first line of file
// (surrounding space trimmed), or $RELAYMESH_TOKEN when file is "".
func Token(file string) (string, error) {
	if file == "" {
		return os.Getenv(TokenEnv), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// Problem is an error answer of the API: its body is
// {"code": ..., "message": ..., "field": ...}. The agent writes this
// struct; the client fills Status, Method and Path from the request.
type Problem struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"` // the request field at fault, e.g. "outputs[0].url"
	Status  int    `json:"-"`               // the HTTP status
	Method  string `json:"-"`
	Path    string `json:"-"` // with its query
}

// Error reads "METHOD PATH: FIELD: MESSAGE (HTTP STATUS)"; without a
// message (an answer that is not a problem) "METHOD PATH: HTTP STATUS".
func (p *Problem) Error() string {
	switch {
	case p.Message == "":
		return fmt.Sprintf("%s %s: HTTP %d", p.Method, p.Path, p.Status)
	case p.Field != "":
		return fmt.Sprintf("%s %s: %s: %s (HTTP %d)", p.Method, p.Path, p.Field, p.Message, p.Status)
	}
	return fmt.Sprintf("%s %s: %s (HTTP %d)", p.Method, p.Path, p.Message, p.Status)
}

// IsNotFound reports whether err is a 404 answer of the API (no such
// stream, object or endpoint; no cluster on this node).
func IsNotFound(err error) bool {
	p := ProblemOf(err)
	return p != nil && p.Status == http.StatusNotFound
}

// ProblemOf is the API's error answer err carries (its status, code,
// message and field), nil when err is not one (nil, or no answer).
func ProblemOf(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	return nil
}

// UnreachableError is a request that got no answer: the agent is not
// running, or not at that address.
type UnreachableError struct {
	Addr string // the API base URL or the control socket's path
	Err  error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach the relaymesh agent at %s: %v", e.Addr, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// do sends a request with in (nil: no body; json.RawMessage and []byte:
// sent as they are; else encoded as JSON) and decodes a 2xx answer into
// out (nil: ignored; *json.RawMessage: the answer's bytes).
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	switch b := in.(type) {
	case nil:
	case []byte:
		body = bytes.NewReader(b)
	case json.RawMessage:
		body = bytes.NewReader(b)
	default:
		data, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return &UnreachableError{Addr: c.base, Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("%s %s: read the answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		p := &Problem{}
		if json.Unmarshal(data, p) != nil {
			p = &Problem{}
		}
		p.Status, p.Method, p.Path = resp.StatusCode, method, path
		return p
	}
	switch o := out.(type) {
	case nil:
		return nil
	case *json.RawMessage:
		*o = data
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode the answer: %w", method, path, err)
	}
	return nil
}

func (c *Client) get(ctx context.Context, path string, out any) error {
	return c.do(ctx, http.MethodGet, path, nil, out)
}
