package flow

import "time"

// URLs are the addresses a user needs for a flow, on the node's
// advertised addresses: where its push sources are published to and
// where its play outputs are read from, signed when the node's auth asks
// for it.
type URLs struct {
	Sources []URL `json:"sources,omitempty"`
	Outputs []URL `json:"outputs,omitempty"`
	// Expires is when the signed URLs' tokens run out (nil: unsigned).
	Expires *time.Time `json:"expires,omitempty"`
}

// URL is one address of a source or output, by its name.
type URL struct {
	Name     string `json:"name"`
	Protocol string `json:"protocol"` // rtmp, srt or http-flv
	URL      string `json:"url"`
}
