package cli

import (
	"flag"
	"fmt"
	"io"
	"slices"

	"github.com/relaymesh/relaymesh/config"
	"github.com/relaymesh/relaymesh/listeners"
)

// cmdCheck is `relaymesh check`: validate a config like nginx -t, "ok"
// and exit 0 or every problem and exit 1.
func cmdCheck(args []string, stdout, stderr io.Writer) int {
	var userName string
	userSet := false
	cfg, path, code, err := loadChecked("check", args, stderr, func(fs *flag.FlagSet) {
		fs.Func("user", "check that this account can read the files (default as root: "+config.ServiceUser+", the unit's User=, if it exists; \"\" for none)",
			func(s string) error { userName, userSet = s, true; return nil })
	})
	if code == 2 {
		return code
	}
	name := configName(path)
	if err == nil {
		err = cfg.CheckServiceUser(path, userName, userSet)
	}
	if err != nil {
		fmt.Fprintf(stderr, "relaymesh: %s: config has problems:\n", name)
		for _, e := range config.Problems(err) {
			fmt.Fprintf(stderr, "  %s\n", e)
		}
		return 1
	}
	// what is allowed but probably not meant, and problems of the machine
	for _, w := range slices.Concat(cfg.FileWarnings(), listeners.Warnings(cfg), cfg.QoSWarnings()) {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	fmt.Fprintf(stdout, "relaymesh: %s: ok\n", name)
	return 0
}
