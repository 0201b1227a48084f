package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

var hlsClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4096, MaxConnsPerHost: 0}}

// get fetches u into io.Discard (or, for playlists, a string) and counts
// the body bytes into r.
func get(ctx context.Context, u string, r *reader, keep bool) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	resp, err := hlsClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		return "", fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	if keep {
		b, err := io.ReadAll(resp.Body)
		r.bytes.Add(uint64(len(b)))
		return string(b), err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	r.bytes.Add(uint64(n))
	return "", err
}

// playHLS reads the multivariant playlist, then each media playlist it
// names (video and, if separate, audio) as an LL-HLS client.
func playHLS(ctx context.Context, index string, r *reader) {
	base, err := url.Parse(index)
	if err != nil {
		r.fail(err)
		return
	}
	var body string
	for i := 0; ; i++ { // the muxer starts on the first request
		body, err = get(ctx, index, r, true)
		if err == nil || i == 30 || ctx.Err() != nil {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		r.fail(err)
		return
	}
	var media []string
	lines := strings.Split(body, "\n")
	for i, l := range lines {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "#EXT-X-STREAM-INF") && i+1 < len(lines) {
			media = append(media, strings.TrimSpace(lines[i+1]))
		}
		if strings.HasPrefix(l, "#EXT-X-MEDIA:") {
			if v := attr(l, "URI"); v != "" {
				media = append(media, v)
			}
		}
	}
	if len(media) == 0 { // already a media playlist
		media = []string{base.String()}
	}
	for i, m := range media {
		ref, err := base.Parse(m)
		if err != nil {
			r.fail(err)
			return
		}
		if i == len(media)-1 {
			mediaLoop(ctx, ref, r)
		} else {
			go mediaLoop(ctx, ref, r)
		}
	}
}

// attr returns the value of KEY="v" or KEY=v in an attribute list.
func attr(line, key string) string {
	i := strings.Index(line, key+"=")
	if i < 0 {
		return ""
	}
	v := line[i+len(key)+1:]
	if strings.HasPrefix(v, `"`) {
		v = v[1:]
		if j := strings.IndexByte(v, '"'); j >= 0 {
			return v[:j]
		}
		return v
	}
	if j := strings.IndexByte(v, ','); j >= 0 {
		return v[:j]
	}
	return v
}

// mediaLoop polls one media playlist with blocking reload and fetches
// the parts it has not fetched yet (on the first load only the parts of
// the segment being written, as a low-latency player joins at the live
// edge) and the init section once.
func mediaLoop(ctx context.Context, pl *url.URL, r *reader) {
	fetched := map[string]bool{}
	first, gotMap := true, false
	query := ""
	for ctx.Err() == nil {
		u := *pl
		q := u.Query()
		if query != "" {
			vq, _ := url.ParseQuery(query)
			for k, v := range vq {
				q[k] = v
			}
		}
		u.RawQuery = q.Encode()
		body, err := get(ctx, u.String(), r, true)
		if err != nil {
			if ctx.Err() == nil {
				r.fail(err)
			}
			return
		}
		var msn, segs, partsAfter int
		var current []string // parts after the last complete segment
		var all []string
		for _, l := range strings.Split(body, "\n") {
			l = strings.TrimSpace(l)
			switch {
			case strings.HasPrefix(l, "#EXT-X-MEDIA-SEQUENCE:"):
				msn, _ = strconv.Atoi(strings.TrimPrefix(l, "#EXT-X-MEDIA-SEQUENCE:"))
			case strings.HasPrefix(l, "#EXT-X-MAP:") && !gotMap:
				if ref, err := pl.Parse(attr(l, "URI")); err == nil {
					if _, err := get(ctx, ref.String(), r, false); err != nil {
						r.fail(err)
						return
					}
					gotMap = true
				}
			case strings.HasPrefix(l, "#EXT-X-PART:"):
				p := attr(l, "URI")
				current = append(current, p)
				all = append(all, p)
				partsAfter++
			case l != "" && !strings.HasPrefix(l, "#"):
				segs++
				partsAfter = 0
				current = current[:0]
			}
		}
		if first { // join at the live edge: skip the complete segments' parts
			cur := map[string]bool{}
			for _, p := range current {
				cur[p] = true
			}
			for _, p := range all {
				if !cur[p] {
					fetched[p] = true
				}
			}
			first = false
		}
		for _, p := range all {
			if fetched[p] {
				continue
			}
			ref, err := pl.Parse(p)
			if err != nil {
				continue
			}
			if _, err := get(ctx, ref.String(), r, false); err != nil {
				if ctx.Err() == nil {
					r.fail(err)
				}
				return
			}
			fetched[p] = true
			r.units.Add(1)
		}
		inList := make(map[string]bool, len(all)) // forget what left the playlist
		for _, p := range all {
			inList[p] = true
		}
		for p := range fetched {
			if !inList[p] {
				delete(fetched, p)
			}
		}
		query = fmt.Sprintf("_HLS_msn=%d&_HLS_part=%d", msn+segs, partsAfter)
	}
}
