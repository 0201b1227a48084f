package config

import (
	"fmt"

	"github.com/relaymesh/relaymesh/auth"
	"github.com/relaymesh/relaymesh/netutil"
)

// Policy is [auth] as the listeners enforce it, with its key file read
// and its allowlists parsed.
func (a AuthConfig) Policy() (*auth.Policy, error) {
	p := &auth.Policy{PublishAuth: a.Publish, PlayAuth: a.Play}
	var err error
	if p.PublishAuth || p.PlayAuth {
		if p.Key, err = auth.LoadKey(a.KeyFile); err != nil {
			return nil, fmt.Errorf("auth.key_file: %w", err)
		}
	}
	if p.PublishAllow, err = netutil.ParseAllowList(a.PublishAllow); err != nil {
		return nil, fmt.Errorf("auth.publish_allow: %w", err)
	}
	if p.PlayAllow, err = netutil.ParseAllowList(a.PlayAllow); err != nil {
		return nil, fmt.Errorf("auth.play_allow: %w", err)
	}
	return p, nil
}
