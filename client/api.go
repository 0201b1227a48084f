package client

import (
	"context"
	"net/url"
	"strings"
	"time"
)

// Health is GET /healthz.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	return h, c.get(ctx, "/healthz", &h)
}

// Streams lists the streams live on the node.
func (c *Client) Streams(ctx context.Context) ([]Stream, error) {
	var l StreamList
	return l.Streams, c.get(ctx, "/v1/streams", &l)
}

// Stream is one live stream by its key, "app/name".
func (c *Client) Stream(ctx context.Context, key string) (Stream, error) {
	var s Stream
	return s, c.get(ctx, "/v1/streams/"+escapeKey(key), &s)
}

// StatsQuery is the window of StreamStats; zero fields take the API's
// defaults (the last five minutes at 1 s).
type StatsQuery struct {
	From, To   time.Time
	Resolution time.Duration // 1s..10s
}

// StreamStats is a stream's frame and bit rate over a window.
func (c *Client) StreamStats(ctx context.Context, key string, q StatsQuery) (StreamStats, error) {
	v := url.Values{}
	if !q.From.IsZero() {
		v.Set("from", q.From.Format(time.RFC3339))
	}
	if !q.To.IsZero() {
		v.Set("to", q.To.Format(time.RFC3339))
	}
	if q.Resolution != 0 {
		v.Set("resolution", q.Resolution.String())
	}
	var s StreamStats
	return s, c.get(ctx, withQuery("/v1/streams/"+escapeKey(key)+"/stats", v), &s)
}

// Nodes lists the cluster's members as this node sees them; a node
// outside a cluster answers with a Problem of status 404
// (code cluster_disabled).
func (c *Client) Nodes(ctx context.Context) (Nodes, error) {
	var n Nodes
	return n, c.get(ctx, "/v1/nodes", &n)
}

// Directory is the cluster's stream directory.
func (c *Client) Directory(ctx context.Context) ([]DirectoryEntry, error) {
	var d Directory
	return d.Streams, c.get(ctx, "/v1/directory", &d)
}

// Links lists this node's backbone links.
func (c *Client) Links(ctx context.Context) (Links, error) {
	var l Links
	return l, c.get(ctx, "/v1/links", &l)
}

// Locate asks for the best edge to publish app/name to from client (an
// IP address; "" is the caller's own address as the agent sees it).
func (c *Client) Locate(ctx context.Context, app, name, client string) (Located, error) {
	q := url.Values{"app": {app}, "stream": {name}}
	if client != "" {
		q.Set("client", client)
	}
	var l Located
	return l, c.get(ctx, withQuery("/v1/locate", q), &l)
}

func withQuery(path string, q url.Values) string {
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

// escapeKey escapes the parts of "app/name" for a path.
func escapeKey(key string) string {
	app, name, ok := strings.Cut(key, "/")
	if !ok {
		return url.PathEscape(key)
	}
	return url.PathEscape(app) + "/" + url.PathEscape(name)
}
