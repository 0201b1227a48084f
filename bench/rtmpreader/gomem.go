package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// goMem is a Go server's memory as its heap profile reports it.
type goMem struct {
	HeapAlloc  uint64 `json:"heap_alloc"`
	HeapInuse  uint64 `json:"heap_inuse"`
	HeapSys    uint64 `json:"heap_sys"`
	StackInuse uint64 `json:"stack_inuse"`
	Sys        uint64 `json:"sys"`
	Goroutines int    `json:"goroutines"`
}

// readGoMem forces a GC through /debug/pprof/heap?gc=1 and reads the
// runtime.MemStats lines of its text form, then the goroutine count.
func readGoMem(ctx context.Context, base string) (*goMem, error) {
	base = strings.TrimRight(base, "/")
	body, err := get(ctx, base+"/debug/pprof/heap?gc=1&debug=1")
	if err != nil {
		return nil, err
	}
	m, err := parseMemStats(body)
	if err != nil {
		return nil, err
	}
	g, err := get(ctx, base+"/debug/pprof/goroutine?debug=1")
	if err != nil {
		return nil, err
	}
	m.Goroutines, err = parseGoroutines(g)
	return m, err
}

func get(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), nil
}

// parseMemStats reads "# Name = value" lines of a debug=1 heap profile.
func parseMemStats(s string) (*goMem, error) {
	m := &goMem{}
	found := 0
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "# ")
		if !ok {
			continue
		}
		k, v, ok := strings.Cut(line, " = ")
		if !ok {
			continue
		}
		// "# Stack = inuse / sys" carries two numbers: keep the first.
		v, _, _ = strings.Cut(v, " / ")
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "HeapAlloc":
			m.HeapAlloc = n
		case "HeapInuse":
			m.HeapInuse = n
		case "HeapSys":
			m.HeapSys = n
		case "Stack":
			m.StackInuse = n
		case "Sys":
			m.Sys = n
		default:
			continue
		}
		found++
	}
	if m.HeapAlloc == 0 || found < 3 {
		return nil, fmt.Errorf("heap profile has no runtime.MemStats lines")
	}
	return m, nil
}

// parseGoroutines reads "goroutine profile: total N".
func parseGoroutines(s string) (int, error) {
	line, _, _ := strings.Cut(s, "\n")
	v, ok := strings.CutPrefix(line, "goroutine profile: total ")
	if !ok {
		return 0, fmt.Errorf("unexpected goroutine profile header %q", line)
	}
	return strconv.Atoi(strings.TrimSpace(v))
}
