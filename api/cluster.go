package api

// The cluster routes: members, the stream directory, backbone links and
// locate (where a broadcaster should publish).

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/relaymesh/relaymesh/client"
	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/gossip"
	"github.com/relaymesh/relaymesh/media/srt"
)

// Cluster is the node's gossip cluster as the API shows it.
type Cluster interface {
	Name() string
	Members() []gossip.Member
	Directory() []gossip.DirEntry
	// Links are this node's backbone links: edge uplinks, on-demand
	// pulls and the backbone listener's connections.
	Links() client.Links
	// Locations is the client location table in force.
	Locations() gossip.LocationTable
	// Locate ranks the edges for client, dialing the first probe of them
	// so a refused or unreachable edge drops to the end at once.
	Locate(ctx context.Context, client netip.Addr, table gossip.LocationTable, probe int) ([]gossip.Member, error)
}

// Signer signs the publish URLs locate hands out.
type Signer interface {
	// SignPublish returns the query that lets its bearer publish key
	// until exp, or "" when publishing needs no signed URL.
	SignPublish(key string, exp time.Time) string
}

// locateTokenTTL is how long the signed ingest URLs of locate last.
const locateTokenTTL = 6 * time.Hour

// routesCluster registers the cluster API endpoints on s.mux.
func (s *Server) routesCluster() {
	s.mux.HandleFunc("GET /v1/nodes", s.nodes)
	s.mux.HandleFunc("GET /v1/locate", s.locate)
	s.mux.HandleFunc("GET /v1/directory", s.directory)
	s.mux.HandleFunc("GET /v1/links", s.links)
}

func (s *Server) clusterOff(w http.ResponseWriter) bool {
	if s.d.Cluster == nil {
		writeError(w, http.StatusNotFound, "cluster_disabled", "this node is not in a cluster: set [cluster] enabled = true", "")
		return true
	}
	return false
}

func (s *Server) nodes(w http.ResponseWriter, r *http.Request) {
	if s.clusterOff(w) {
		return
	}
	out := []client.Node{}
	for _, m := range s.d.Cluster.Members() {
		v := client.Node{
			Name: m.Name, Role: string(m.Meta.Role), Site: m.Meta.Site, Region: m.Meta.Region,
			State: m.State.String(), Local: m.Local,
			Streams: m.Meta.Load.Streams, MbpsIn: m.Meta.Load.MbpsIn, MbpsOut: m.Meta.Load.MbpsOut,
			Version: m.Meta.Version, Updated: m.Updated,
			Addrs: map[string]string{},
		}
		v.Capacity = client.Capacity{MaxStreams: m.Meta.Capacity.MaxStreams, MaxMbps: m.Meta.Capacity.MaxMbps}
		if m.RTTKnown && !m.Local {
			ms := float64(m.RTT.Microseconds()) / 1000
			v.RTTMs = &ms
		} else if m.Local {
			zero := 0.0
			v.RTTMs = &zero
		}
		if !m.MeasuredAt.IsZero() && !m.Local {
			ms := float64(m.MeasuredRTT.Microseconds()) / 1000
			v.PingMs = &ms
		}
		for k, a := range map[string]string{"gossip": m.Addr.String(), "rtmp": m.Meta.Addrs.RTMP, "srt": m.Meta.Addrs.SRT,
			"http": m.Meta.Addrs.HTTPFLV, "api": m.Meta.Addrs.API, "backbone": m.Meta.Addrs.Backbone} {
			if a != "" {
				v.Addrs[k] = a
			}
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, client.Nodes{Node: s.d.Cluster.Name(), Nodes: out})
}

func (s *Server) directory(w http.ResponseWriter, r *http.Request) {
	if s.clusterOff(w) {
		return
	}
	out := client.Directory{Streams: []client.DirectoryEntry{}}
	for _, e := range s.d.Cluster.Directory() {
		// keys with '#' (no stream key has one) are a dual-path
		// stream's host entries (center/standby.go), not streams
		if !e.Deleted && !strings.Contains(e.Stream, "#") {
			out.Streams = append(out.Streams, client.DirectoryEntry{Stream: e.Stream, Node: e.Node, Version: e.Version, Updated: e.Updated})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// links lists this node's backbone links: edge uplinks, on-demand pulls
// and the backbone listener's connections.
func (s *Server) links(w http.ResponseWriter, r *http.Request) {
	if s.clusterOff(w) {
		return
	}
	writeJSON(w, http.StatusOK, s.d.Cluster.Links())
}

func (s *Server) locate(w http.ResponseWriter, r *http.Request) {
	if s.clusterOff(w) {
		return
	}
	q := r.URL.Query()
	app, name := q.Get("app"), q.Get("stream")
	key := app + "/" + name
	if err := config.CheckStreamKey("stream", key); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "app and stream must name a stream, e.g. app=live&stream=cam1", "stream")
		return
	}
	clientStr := q.Get("client")
	if clientStr == "" {
		clientStr = r.RemoteAddr
	}
	addr, err := parseClient(clientStr)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("client: %q is not an IP address", clientStr), "client")
		return
	}
	table := s.d.Cluster.Locations()
	edges, err := s.d.Cluster.Locate(r.Context(), addr, table, 3)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "no_edge", err.Error(), "")
		return
	}
	loc, found := table.Lookup(addr)
	token := ""
	if s.locateSigns(r) {
		token = s.d.Signer.SignPublish(key, time.Now().Add(locateTokenTTL))
	}
	views := make([]client.Ingest, 0, 3)
	for _, m := range edges[:min(3, len(edges))] {
		v := client.Ingest{Node: m.Name, Site: m.Meta.Site}
		if m.Meta.Addrs.RTMP != "" {
			v.RTMP = "rtmp://" + m.Meta.Addrs.RTMP + "/" + key
			if token != "" {
				v.RTMP += "?" + token
			}
		}
		if m.Meta.Addrs.SRT != "" {
			sid := "publish:" + key
			if token != "" {
				sid += "?" + token
			}
			v.SRT = "srt://" + m.Meta.Addrs.SRT + "?streamid=" + srt.URLParam(sid) // ffmpeg does not decode %3A
		}
		if found && m.Meta.HasLocation() {
			v.DistanceKm = float64(int64(gossip.Haversine(loc.Lat, loc.Lon, m.Meta.Lat, m.Meta.Lon)))
		}
		views = append(views, v)
	}
	res := client.Located{Stream: key, Client: addr.String(), Edge: views[0], Alternates: views[1:]}
	if found {
		res.Location = &client.ClientLocation{CIDR: loc.CIDR.String(), Site: loc.Site, Lat: loc.Lat, Lon: loc.Lon}
	}
	if token != "" {
		exp := time.Now().Add(locateTokenTTL).UTC().Truncate(time.Second)
		res.Expires = &exp
	}
	writeJSONUnmasked(w, http.StatusOK, res) // the URLs are the answer: the caller may publish there
}

func parseClient(s string) (netip.Addr, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, errors.New("not an IP")
	}
	return a.Unmap(), nil
}
