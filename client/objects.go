package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/relaymesh/relaymesh/flow"
	"github.com/relaymesh/relaymesh/relay"
	"github.com/relaymesh/relaymesh/task"
)

// Objects is one kind of object of the API (flows, relays, tasks): S is
// what a client sends (the spec), V what the agent answers (the view).
type Objects[S, V any] struct {
	c      *Client
	plural string // "flows": the path under /v1/ and the list's key
}

// Flows are the node's flows.
func (c *Client) Flows() Objects[flow.Spec, flow.View] {
	return Objects[flow.Spec, flow.View]{c, "flows"}
}

// Relays are the node's scheduled relay rules.
func (c *Client) Relays() Objects[relay.Spec, relay.View] {
	return Objects[relay.Spec, relay.View]{c, "relays"}
}

// Tasks are the node's pseudo-live tasks.
func (c *Client) Tasks() Objects[task.Spec, task.View] {
	return Objects[task.Spec, task.View]{c, "tasks"}
}

// Documents is a kind of object as JSON documents, sent and answered as
// they are: for tools that pass a user's file to the agent unchanged
// (so the agent's strict decoding names a misspelt field) and show the
// agent's answer. kind is "flows", "relays" or "tasks".
func (c *Client) Documents(kind string) (Objects[json.RawMessage, json.RawMessage], error) {
	switch kind {
	case "flows", "relays", "tasks":
		return Objects[json.RawMessage, json.RawMessage]{c, kind}, nil
	}
	return Objects[json.RawMessage, json.RawMessage]{}, fmt.Errorf("unknown object kind %q: want flows, relays or tasks", kind)
}

// Kind is the plural name of the objects, e.g. "flows".
func (o Objects[S, V]) Kind() string { return o.plural }

func (o Objects[S, V]) path(id string) string {
	if id == "" {
		return "/v1/" + o.plural
	}
	return "/v1/" + o.plural + "/" + url.PathEscape(id)
}

// List lists the objects; filter narrows it where the kind has filters
// (tasks: id, name, destination). Secrets in the answer are masked.
func (o Objects[S, V]) List(ctx context.Context, filter url.Values) ([]V, error) {
	var all map[string][]V
	if err := o.c.get(ctx, withQuery(o.path(""), filter), &all); err != nil {
		return nil, err
	}
	list, ok := all[o.plural]
	if !ok {
		return nil, fmt.Errorf("GET %s: the answer has no %q list", o.path(""), o.plural)
	}
	return list, nil
}

// Get is one object by its id.
func (o Objects[S, V]) Get(ctx context.Context, id string) (V, error) {
	var v V
	return v, o.c.get(ctx, o.path(id), &v)
}

// Create creates an object from spec and answers with its view.
func (o Objects[S, V]) Create(ctx context.Context, spec S) (V, error) {
	var v V
	return v, o.c.do(ctx, http.MethodPost, o.path(""), spec, &v)
}

// Update replaces object id's spec, as its state allows. Secrets sent
// back masked, as Get answered them, keep their values.
func (o Objects[S, V]) Update(ctx context.Context, id string, spec S) (V, error) {
	var v V
	return v, o.c.do(ctx, http.MethodPut, o.path(id), spec, &v)
}

// Delete deletes object id.
func (o Objects[S, V]) Delete(ctx context.Context, id string) error {
	return o.c.do(ctx, http.MethodDelete, o.path(id), nil, nil)
}

// Do runs one of the kind's actions on object id (flows: start, stop;
// tasks: start, stop, restart) and answers with its view.
func (o Objects[S, V]) Do(ctx context.Context, id, action string) (V, error) {
	var v V
	return v, o.c.do(ctx, http.MethodPost, o.path(id)+"/"+url.PathEscape(action), nil, &v)
}
