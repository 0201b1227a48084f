package agent

import (
	"bufio"
	"context"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/internal/promtest"
	"github.com/relaymesh/relaymesh/internal/testmedia"
)

var updateMetricsGolden = flag.Bool("update-metrics", false, "rewrite testdata/metrics.golden from the running agent")

// TestMetricsGolden holds /metrics to what users scrape today: every
// relaymesh_ descriptor the agent registers (name, help, label names) and
// the HELP and TYPE lines and the series (names and labels) of a scrape of a node with a
// live stream, webhooks and the cluster on, against testdata/metrics.golden (written
// by the agent before the metrics moved to metrics/).
func TestMetricsGolden(t *testing.T) {
	cfg := testAgentConfig(t)
	cfg.Cluster.Enabled = true
	cfg.Cluster.Bind = "127.0.0.1:0"
	hooks := NewHookSink(t)
	cfg.Webhooks = config.WebhooksConfig{URL: hooks.URL(), SecretFile: hooks.SecretFile}
	a, _ := runAgent(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fed := feed(t, ctx, a.hub, "live/golden", 25)
	defer func() { cancel(); <-fed }()

	var lines []string
	descs := make(chan *prometheus.Desc, 256)
	go func() { a.ops.reg.Describe(descs); close(descs) }()
	for d := range descs {
		if s := d.String(); strings.Contains(s, `"relaymesh_`) {
			lines = append(lines, "desc "+s)
		}
	}

	url := "http://" + a.listenAddr("api") + "/metrics"
	testmedia.Eventually(t, 15*time.Second, "the stream's series in /metrics", func() bool {
		mfs, err := promtest.TryScrape(url)
		if err != nil {
			return false
		}
		_, ok := promtest.Value(mfs, "relaymesh_stream_readers", map[string]string{"stream": "live/golden"})
		return ok
	})
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	series := map[string]bool{}
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "# HELP relaymesh_"), strings.HasPrefix(l, "# TYPE relaymesh_"):
			lines = append(lines, l)
		case strings.HasPrefix(l, "relaymesh_"):
			// the series (name and labels), not its value
			series[l[:strings.LastIndexByte(l, ' ')]] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for l := range series {
		lines = append(lines, "series "+l)
	}
	slices.Sort(lines)
	got := strings.Join(lines, "\n") + "\n"

	path := filepath.Join("testdata", "metrics.golden")
	if *updateMetricsGolden {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("/metrics differs from %s (what users scraped before):\n%s", path, lineDiff(string(want), got))
	}
}

// lineDiff lists the lines only in want (-) and only in got (+).
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for _, l := range w {
		if !slices.Contains(g, l) {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range g {
		if !slices.Contains(w, l) {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}
