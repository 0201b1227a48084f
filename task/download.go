package task

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/relaymesh/relaymesh/media/link"
)

// urlExt is the lower-case extension of a playlist item: of the URL's
// path for an http(s) item (never of its query or fragment), else of the
// file name.
func urlExt(p string) string {
	if isRemote(p) {
		u, err := url.Parse(p)
		if err != nil {
			return ""
		}
		return strings.ToLower(path.Ext(u.Path))
	}
	return strings.ToLower(filepath.Ext(p))
}

// cachePath is where a remote item is kept once downloaded.
func (d *Deps) cachePath(p string) string {
	sum := sha256.Sum256([]byte(p))
	return filepath.Join(d.CacheDir, hex.EncodeToString(sum[:12])+urlExt(p))
}

// fetch returns a local path for a playlist item, downloading http(s)
// items into the cache once, through the outbound policy (checked on the
// resolved address of every connection, redirects included), within
// MaxDownload bytes and DownloadTimeout. Errors never quote the response.
func (d *Deps) fetch(ctx context.Context, p string) (string, error) {
	if !isRemote(p) {
		return p, nil
	}
	dst := d.cachePath(p)
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	if err := os.MkdirAll(d.CacheDir, 0o750); err != nil {
		return "", err
	}
	shown := link.Redact(p)
	if d.DownloadTimeout != nil {
		if t := d.DownloadTimeout(); t > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, t)
			defer cancel()
		}
	}
	var limit int64
	if d.MaxDownload != nil {
		limit = d.MaxDownload()
	}
	c := d.policy().HTTPClient(0)
	defer c.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p, nil)
	if err != nil {
		return "", fmt.Errorf("download %s: %w", shown, err)
	}
	resp, err := c.Do(req)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return "", fmt.Errorf("download %s: not done within objects.download_timeout", shown)
		}
		return "", fmt.Errorf("download %s: %w", shown, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("download %s: HTTP %d", shown, resp.StatusCode)
	}
	tooBig := func(n int64) error {
		return fmt.Errorf("download %s: %d bytes or more, over objects.max_download (%d)", shown, n, limit)
	}
	if limit > 0 && resp.ContentLength > limit {
		return "", tooBig(resp.ContentLength)
	}
	f, err := os.CreateTemp(d.CacheDir, ".part-*")
	if err != nil {
		return "", err
	}
	body := io.Reader(resp.Body)
	if limit > 0 {
		body = io.LimitReader(resp.Body, limit+1)
	}
	n, err := io.Copy(f, body)
	if err == nil && limit > 0 && n > limit {
		err = tooBig(n)
	} else if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			err = fmt.Errorf("download %s: not done within objects.download_timeout", shown)
		} else {
			err = fmt.Errorf("download %s: %w", shown, err)
		}
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	if err := os.Rename(f.Name(), dst); err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return dst, nil
}

// dropCache removes the downloaded items of spec that no task in others
// uses.
func (d *Deps) dropCache(spec *Spec, others []*Spec) {
	used := map[string]bool{}
	for _, o := range others {
		for _, p := range o.Source.Playlist {
			used[p] = true
		}
	}
	for _, p := range spec.Source.Playlist {
		if isRemote(p) && !used[p] && d.CacheDir != "" {
			os.Remove(d.cachePath(p))
		}
	}
}

// needsDownload reports whether a playlist item still has to be fetched.
func (d *Deps) needsDownload(s *Spec) bool {
	for _, p := range s.Source.Playlist {
		if isRemote(p) {
			if _, err := os.Stat(d.cachePath(p)); err != nil {
				return true
			}
		}
	}
	return false
}
