package cli

import (
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/relaymesh/relaymesh/auth"
	"github.com/relaymesh/relaymesh/config"
)

// cmdSign is `relaymesh sign`: print a signed URL's path and query.
func cmdSign(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sign", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keyFile := fs.String("key", "", "HMAC key file (default: auth.key_file of the config)")
	cfgPath := fs.String("c", "", "config file (for auth.key_file)")
	action := fs.String("action", auth.ActionPublish, "publish or play")
	ttl := fs.Duration("ttl", time.Hour, "how long the URL stays valid")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: relaymesh sign [-c FILE | --key FILE] [--action publish|play] [--ttl 1h] APP/NAME")
		return 2
	}
	if *action != auth.ActionPublish && *action != auth.ActionPlay {
		fmt.Fprintf(stderr, "relaymesh sign: --action %q: want publish or play\n", *action)
		return 2
	}
	if *keyFile == "" {
		path := *cfgPath
		if path == "" {
			path = config.DefaultPath
		}
		cfg, err := config.Load(path)
		if err != nil {
			fmt.Fprintf(stderr, "relaymesh sign: %v (or pass --key FILE)\n", err)
			return 1
		}
		*keyFile = cfg.Auth.KeyFile
	}
	key, err := auth.LoadKey(*keyFile)
	if err != nil {
		fmt.Fprintf(stderr, "relaymesh sign: %v\n", err)
		return 1
	}
	stream := fs.Arg(0)
	fmt.Fprintf(stdout, "%s?%s\n", stream, auth.Sign(key, *action, stream, time.Now().Add(*ttl)))
	return 0
}
