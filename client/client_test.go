package client_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/client"
	"github.com/relaymesh/relaymesh/flow"
	"github.com/relaymesh/relaymesh/internal/testagent"
	"github.com/relaymesh/relaymesh/lifecycle"
)

// TestClient: the typed client against the real binary: answers decode
// into the agent's own types, error answers into a Problem with status,
// code and field, no agent into an UnreachableError, and a refused
// reload's reasons or a missing socket as the agent reports them.
func TestClient(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := client.New("http://127.0.0.1:1").Health(ctx)
	var ue *client.UnreachableError
	if !errors.As(err, &ue) || ue.Addr != "http://127.0.0.1:1" {
		t.Errorf("Health without an agent: %v, want an UnreachableError naming the address", err)
	}

	a := testagent.Start(t, "client-node")
	anon := client.New(a.API)
	c := client.New(a.API, client.WithToken(testagent.Token))

	h, err := anon.Health(ctx)
	if err != nil || h.Status != "ok" || h.Node != "client-node" || h.Role != "standalone" {
		t.Errorf("Health: %+v %v", h, err)
	}
	if _, err := c.Nodes(ctx); !client.IsNotFound(err) {
		t.Errorf("Nodes on a standalone node: %v, want a 404 Problem", err)
	}

	spec := flow.Spec{ID: "f1", Source: flow.Source{Type: "rtmp-push", Stream: "live/f1"},
		Outputs: []flow.Output{{Name: "p", Type: "httpflv"}}}
	cases := []struct {
		name   string
		call   func() error
		status int
		code   string
		field  string
	}{
		{"create without token", func() error { _, err := anon.Flows().Create(ctx, spec); return err }, http.StatusUnauthorized, "", ""},
		{"invalid spec names the field", func() error {
			bad := spec
			bad.ID, bad.Outputs = "f2", []flow.Output{{Name: "p", Type: "carrier-pigeon"}}
			_, err := c.Flows().Create(ctx, bad)
			return err
		}, http.StatusBadRequest, string(lifecycle.Invalid), "outputs[0].type"},
		{"missing task", func() error { _, err := c.Tasks().Get(ctx, "nope"); return err }, http.StatusNotFound, string(lifecycle.NotFound), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			p := client.ProblemOf(err)
			if p == nil || p.Status != tc.status || (tc.code != "" && p.Code != tc.code) || p.Field != tc.field || p.Message == "" {
				t.Errorf("got %#v (%v), want a Problem with status %d, code %q, field %q and a message", p, err, tc.status, tc.code, tc.field)
			}
		})
	}

	v, err := c.Flows().Create(ctx, spec)
	if err != nil || v.ID != "f1" || v.State != lifecycle.Standby || v.Origin != "api" {
		t.Fatalf("Create: %+v %v", v, err)
	}
	if v, err = c.Flows().Do(ctx, "f1", "start"); err != nil || v.State == lifecycle.Standby {
		t.Errorf("start: %+v %v", v, err)
	}
	list, err := anon.Flows().List(ctx, nil)
	if err != nil || len(list) != 1 || list[0].Source.Stream != "live/f1" {
		t.Errorf("List: %+v %v", list, err)
	}
	if err := c.Flows().Delete(ctx, "f1"); err == nil {
		t.Error("Delete of a running flow succeeded")
	}
	if _, err := c.Flows().Do(ctx, "f1", "stop"); err != nil {
		t.Error(err)
	}
	if err := c.Flows().Delete(ctx, "f1"); err != nil {
		t.Error(err)
	}
	if _, err := c.Flows().Get(ctx, "f1"); !client.IsNotFound(err) {
		t.Errorf("Get after Delete: %v, want not found", err)
	}

	// a directory without the agent's socket
	dir := t.TempDir()
	if _, err := client.Reload(ctx, dir); !errors.As(err, &ue) || ue.Addr != filepath.Join(dir, client.ControlSocket) {
		t.Errorf("Reload without an agent: %v, want an UnreachableError naming the socket", err)
	}

	// the agent's own socket: a config that renames the node is refused
	// with the key named, the unchanged one is reloaded
	good, err := os.ReadFile(a.Config)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(good), `name = "client-node"`, `name = "other-node"`, 1)
	if bad == string(good) {
		t.Fatal("the config names no node")
	}
	if err := os.WriteFile(a.Config, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	verdict, err := client.Reload(ctx, a.RuntimeDir)
	if err != nil || verdict.Reloaded || !strings.Contains(strings.Join(verdict.Problems, "\n"), "node.name") {
		t.Errorf("Reload renaming the node: %+v %v, want refused naming node.name", verdict, err)
	}
	if h, err := anon.Health(ctx); err != nil || h.Node != "client-node" {
		t.Errorf("Health after the refused reload: %+v %v, want node client-node", h, err)
	}
	if err := os.WriteFile(a.Config, good, 0o644); err != nil {
		t.Fatal(err)
	}
	if verdict, err := client.Reload(ctx, a.RuntimeDir); err != nil || !verdict.Reloaded || len(verdict.Problems) != 0 {
		t.Errorf("Reload of the unchanged config: %+v %v, want reloaded", verdict, err)
	}
}
