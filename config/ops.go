package config

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/relaymesh/relaymesh/netutil"
	"github.com/relaymesh/relaymesh/webhook"
)

// QoSConfig is [qos]: traffic control on the backbone interface (see the
// netutil package doc for the tree it installs). Zero values take the
// defaults noted.
type QoSConfig struct {
	Enabled     bool    `toml:"enabled"`
	Interface   string  `toml:"interface"`    // e.g. "eth0"
	Rate        Bitrate `toml:"rate"`         // egress link rate, e.g. "100M": set slightly below the real uplink
	MediaShare  float64 `toml:"media_share"`  // fraction of rate guaranteed to backbone media; 0 = 0.5
	MediaRate   Bitrate `toml:"media_rate"`   // guaranteed media rate; overrides media_share
	ControlRate Bitrate `toml:"control_rate"` // guaranteed to gossip and the API; "" = 5% of rate (at least 64k)
	MediaDSCP   int     `toml:"media_dscp"`   // DSCP of backbone media, 1..63; 0 = cluster.dscp, else AF41 (34)
	// MediaPorts are matched as source or destination; empty = the port
	// of cluster.backbone_listen.
	MediaPorts []int `toml:"media_ports"`
	// ControlPorts: empty = the gossip port (cluster.bind) and the API
	// port (api.listen).
	ControlPorts []int `toml:"control_ports"`
}

// WebhooksConfig is [webhooks]: node events POSTed to one URL, signed
// with HMAC-SHA256 (see the webhook package doc).
type WebhooksConfig struct {
	URL        string   `toml:"url"`         // "" disables
	SecretFile string   `toml:"secret_file"` // HMAC key file; "" sends unsigned requests
	Events     []string `toml:"events"`      // empty = all of WebhookEvents
}

// Webhook events the agent sends (package webhook owns the names and
// builds the data of each).
const (
	EventStreamPublished   = webhook.EventStreamPublished
	EventStreamReconnected = webhook.EventStreamReconnected
	EventStreamUnpublished = webhook.EventStreamUnpublished
	EventStreamFailover    = webhook.EventStreamFailover
	EventMemberJoin        = webhook.EventMemberJoin
	EventMemberLeave       = webhook.EventMemberLeave
)

// WebhookEvents lists every event webhooks.events may name.
var WebhookEvents = webhook.Events

func (c *Config) validateOps(ps *cfgProblems) {
	q := &c.QoS
	at := cfgPath("qos")
	for _, r := range []struct {
		key string
		v   Bitrate
	}{{"rate", q.Rate}, {"media_rate", q.MediaRate}, {"control_rate", q.ControlRate}} {
		if r.v < 0 {
			ps.add(at.Key(r.key), "%d is negative", r.v)
		}
	}
	portsOK := true
	for _, l := range []struct {
		key   string
		ports []int
	}{{"media_ports", q.MediaPorts}, {"control_ports", q.ControlPorts}} {
		for i, p := range l.ports {
			if p < 1 || p > 65535 {
				ps.add(at.Key(l.key).Index(i), "%d is not a port 1..65535", p)
				portsOK = false
			}
		}
	}
	if q.Enabled && portsOK {
		// netutil names its keys "qos.<key>: <message>"
		walkJoined(c.NetQoS().Validate(), func(e error) {
			key, msg, ok := strings.Cut(e.Error(), ": ")
			if !ok {
				key, msg = "qos", e.Error()
			}
			ps.add(cfgPath(key), "%s", msg)
		})
	}

	w := &c.Webhooks
	at = "webhooks"
	if w.URL != "" {
		if err := webhook.ValidateURL(w.URL); err != nil {
			ps.add(at.Key("url"), "%v", err)
		}
	} else if w.SecretFile != "" || len(w.Events) > 0 {
		ps.add(at.Key("url"), "must be set when webhooks.secret_file or webhooks.events is: the endpoint to POST events to")
	}
	if w.SecretFile != "" && !filepath.IsAbs(w.SecretFile) {
		ps.add(at.Key("secret_file"), "%q is not an absolute path", w.SecretFile)
	}
	for i, e := range w.Events {
		ps.oneOf(at.Key("events").Index(i), e, WebhookEvents...)
	}
}

// NetQoS is [qos] for netutil, with the defaults and derived ports filled
// in.
func (c *Config) NetQoS() netutil.QoSConfig {
	q := c.QoS
	n := netutil.DefaultQoSConfig()
	n.Enabled = q.Enabled
	n.Interface = q.Interface
	n.Rate = uint64(max(q.Rate, 0))
	if q.MediaShare != 0 {
		n.MediaShare = q.MediaShare
	}
	n.MediaRate = uint64(max(q.MediaRate, 0))
	n.ControlRate = uint64(max(q.ControlRate, 0))
	switch {
	case q.MediaDSCP != 0:
		n.MediaDSCP = q.MediaDSCP
	case c.Cluster.DSCPMark() != 0:
		n.MediaDSCP = c.Cluster.DSCPMark()
	}
	toPorts := func(ps []int) []uint16 {
		out := make([]uint16, 0, len(ps))
		for _, p := range ps {
			out = append(out, uint16(p))
		}
		return out
	}
	if len(q.MediaPorts) > 0 {
		n.MediaPorts = toPorts(q.MediaPorts)
	} else if p := listenPort(c.Cluster.BackboneAddr()); p != 0 {
		n.MediaPorts = []uint16{p}
	}
	if len(q.ControlPorts) > 0 {
		n.ControlPorts = toPorts(q.ControlPorts)
	} else {
		for _, addr := range []string{c.Cluster.GossipBind(), c.API.Listen} {
			if p := listenPort(addr); p != 0 && !slices.Contains(n.ControlPorts, p) && !slices.Contains(n.MediaPorts, p) {
				n.ControlPorts = append(n.ControlPorts, p)
			}
		}
	}
	return n
}

// listenPort is the port of a host:port listen address, or 0.
func listenPort(addr string) uint16 {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return 0
	}
	return uint16(n)
}

// LoadWebhookSecret reads the HMAC key: the file's text without surrounding
// whitespace, at least 16 bytes.
func LoadWebhookSecret(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s := bytes.TrimSpace(data)
	if len(s) < 16 {
		return nil, fmt.Errorf("%s holds %d bytes: put a secret of at least 16 in it, e.g. `head -c 32 /dev/urandom | base64 > %s`", path, len(s), path)
	}
	return s, nil
}
