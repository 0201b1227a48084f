package link

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/relaymesh/relaymesh/media/link/flv"
	"github.com/relaymesh/relaymesh/netutil"
)

// pullHTTPFLV reads an HTTP-FLV stream.
func (p *Puller) pullHTTPFLV(ctx context.Context, t Target, u *url.URL, sk *sink) error {
	target := Redact(t.URL)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var idle atomic.Bool
	watchdog := time.AfterFunc(connectTimeout, func() {
		idle.Store(true)
		cancel()
	})
	defer watchdog.Stop()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("http-flv %s: %w", target, err)
	}
	req.Header.Set("User-Agent", "relaymesh")
	d := &net.Dialer{Timeout: connectTimeout, Control: t.dialControl()}
	client := &http.Client{CheckRedirect: netutil.CheckRedirect, Transport: &http.Transport{
		DialContext:           d.DialContext,
		ResponseHeaderTimeout: connectTimeout,
		TLSHandshakeTimeout:   connectTimeout,
		DisableCompression:    true,
	}}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		if idle.Load() {
			return fmt.Errorf("http-flv %s: no answer within %s", target, connectTimeout)
		}
		return fmt.Errorf("http-flv %s: %w", target, err)
	}
	defer resp.Body.Close()
	ctype := resp.Header.Get("Content-Type")
	br := bufio.NewReaderSize(resp.Body, 4096)
	if resp.StatusCode != http.StatusOK {
		// the body is not quoted: it may be an internal service's answer
		return fmt.Errorf("http-flv %s: HTTP %s", target, resp.Status)
	}
	watchdog.Reset(p.cfg.ReadTimeout)
	if head, _ := br.Peek(3); string(head) != "FLV" {
		return fmt.Errorf("http-flv %s: %w: the response is not FLV (Content-Type %q)", target, flv.ErrNotFLV, ctype)
	}
	fr := flv.NewReader(&countReader{r: br, onRead: func(n int) {
		watchdog.Reset(p.cfg.ReadTimeout)
		p.tr.addBytes(n)
	}})
	for {
		pk, err := fr.ReadPacket()
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return nil
			case idle.Load():
				return fmt.Errorf("http-flv %s: %w for %s", target, ErrIdle, p.cfg.ReadTimeout)
			case errors.Is(err, io.EOF):
				return fmt.Errorf("http-flv %s: %w (the server closed the response)", target, ErrSourceEnded)
			}
			return fmt.Errorf("http-flv %s: %w", target, err)
		}
		if err := sk.write(pk); err != nil {
			return err
		}
	}
}

type countReader struct {
	r      io.Reader
	onRead func(int)
}

func (c *countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if n > 0 {
		c.onRead(n)
	}
	return n, err
}
