package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/relaymesh/relaymesh/client"
)

const tokenFileUsage = "file holding the API token, needed when the API listens beyond loopback (default: $RELAYMESH_TOKEN, else none)"

// apiFlags are the flags of the commands that talk to the API.
type apiFlags struct {
	api, tokenFile *string
}

func addAPIFlags(fs *flag.FlagSet) apiFlags {
	return apiFlags{
		api:       fs.String("api", client.DefaultAPI, "agent API base URL"),
		tokenFile: fs.String("token-file", "", tokenFileUsage),
	}
}

// client is the API client the flags name; the error is already printed.
func (f apiFlags) client(stderr io.Writer) (*client.Client, error) {
	token, err := client.Token(*f.tokenFile)
	if err != nil {
		fmt.Fprintln(stderr, "relaymesh:", err)
		return nil, err
	}
	return client.New(*f.api, client.WithToken(token)), nil
}

// apiFailed prints err of a call to the API; short names a problem by
// its path and message only (status, locate), else in full.
func apiFailed(stderr io.Writer, err error, short bool) int {
	var ue *client.UnreachableError
	var p *client.Problem
	switch {
	case errors.As(err, &ue):
		err = fmt.Errorf("cannot reach the relaymesh API at %s (is the agent running? see --api): %w", ue.Addr, ue.Err)
	case short && errors.As(err, &p) && p.Message != "":
		err = fmt.Errorf("%s: %s", p.Path, p.Message)
	case short && errors.As(err, &p):
		err = fmt.Errorf("%s: HTTP %d", p.Path, p.Status)
	}
	fmt.Fprintln(stderr, "relaymesh:", err)
	return 1
}
