package cli

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/relaymesh/relaymesh/config"
)

// configFlag parses -c for run and check; more adds a command's own flags.
func configFlag(name string, args []string, stderr io.Writer, more ...func(*flag.FlagSet)) (path string, err error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	for _, f := range more {
		f(fs)
	}
	fs.StringVar(&path, "c", "", "config file")
	fs.StringVar(&path, "config", "", "config file")
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if fs.NArg() > 0 {
		return "", fmt.Errorf("%s: unexpected argument %q", name, fs.Arg(0))
	}
	if path != "" {
		return path, nil
	}
	if _, err := os.Stat(config.DefaultPath); err == nil {
		return config.DefaultPath, nil
	}
	return "", nil
}

// loadChecked parses -c, loads the config and checks its files, as run
// and check do; code is the exit code when it fails.
func loadChecked(name string, args []string, stderr io.Writer, more ...func(*flag.FlagSet)) (cfg *config.Config, path string, code int, err error) {
	path, err = configFlag(name, args, stderr, more...)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, "", 2, err
	}
	cfg, err = config.LoadFile(path)
	if err == nil {
		err = cfg.CheckFiles()
	}
	return cfg, path, 1, err
}

// configName is how messages name the config at path.
func configName(path string) string {
	if path == "" {
		return "built-in default"
	}
	return path
}
