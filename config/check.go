package config

// What `relaymesh check` looks at beyond the config's own validity: the
// files the agent reads at start, whether the service user can read them,
// and whether the interfaces [qos] names exist here.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/relaymesh/relaymesh/auth"
	"github.com/relaymesh/relaymesh/gossip"
	"github.com/relaymesh/relaymesh/netutil"
)

// ServiceUser is the packaged unit's User=: as root, `relaymesh check`
// checks that this account can read what the agent reads.
const ServiceUser = "relaymesh"

// DefaultPath is the config file run and check read when -c is not given.
const DefaultPath = "/etc/relaymesh/relaymesh.toml"

// LoadFile loads the config at path (with its drop-ins) and validates
// it; path "" is the built-in standalone default.
func LoadFile(path string) (*Config, error) {
	if path == "" {
		return Load()
	}
	return Load(path)
}

// CheckServiceUser checks that the account the agent runs as can read
// the files c needs: name when explicit ("" for none), else, as root,
// ServiceUser when it exists. The config files themselves are checked
// when they are what the unit reads (path is DefaultPath) or the account
// was named.
func (c *Config) CheckServiceUser(path, name string, explicit bool) error {
	u, err := lookupServiceUser(name, explicit)
	if err != nil || u == nil {
		return err
	}
	var files []string
	if explicit || path == DefaultPath {
		files = c.Sources
	}
	return checkServiceUser(c, files, u)
}

// neededFile is a file the agent opens at start, by its config key;
// secret is set for the ones that must not be readable by everyone.
type neededFile struct {
	key, path string
	secret    bool
}

// neededFiles lists the files the agent reads at start with this config
// (a file of a section that is off is not read, so not listed).
func (c *Config) neededFiles() []neededFile {
	var out []neededFile
	addIf := func(on bool, key, path string, secret bool) {
		if on && path != "" {
			out = append(out, neededFile{key, path, secret})
		}
	}
	addIf(true, "auth.key_file", c.Auth.KeyFile, true)
	addIf(true, "api.token_file", c.API.TokenFile, true)
	addIf(true, "api.read_token_file", c.API.ReadTokenFile, true)
	addIf(true, "auth.locate_token_file", c.Auth.LocateTokenFile, true)
	cl := c.Cluster
	addIf(cl.Enabled, "cluster.key_file", cl.KeyFile, true)
	addIf(cl.Enabled, "cluster.backbone_key_file", cl.BackboneKeyFile, true)
	addIf(cl.Enabled, "cluster.locations_file", cl.LocationsFile, false)
	addIf(c.Webhooks.URL != "", "webhooks.secret_file", c.Webhooks.SecretFile, true)
	return out
}

// checkClusterFiles loads the files of [cluster] and [webhooks] as the
// agent does at start, adding one problem per file that fails.
func (c *Config) checkClusterFiles(ps *cfgProblems) {
	if cl := c.Cluster; cl.Enabled {
		if cl.KeyFile != "" {
			if _, err := gossip.LoadKey(cl.KeyFile); err != nil {
				ps.add("cluster.key_file", "%v", err)
			}
		}
		if _, err := cl.LoadBackbonePassphrase(); err != nil {
			ps.add("cluster.backbone_key_file", "%v", err)
		}
		if cl.LocationsFile != "" {
			if _, err := LoadLocationTable(cl.LocationsFile); err != nil {
				ps.add("cluster.locations_file", "%v", err)
			}
		}
	}
	if w := c.Webhooks; w.URL != "" && w.SecretFile != "" {
		if _, err := LoadWebhookSecret(w.SecretFile); err != nil {
			ps.add("webhooks.secret_file", "%v", err)
		}
	}
}

// lookupServiceUser returns the account `check` checks for: name, or
// when name is "" and check runs as root, the packaged unit's user if it
// exists. nil means no such check (not root, or no such account).
func lookupServiceUser(name string, explicit bool) (*user.User, error) {
	if !explicit {
		if os.Geteuid() != 0 {
			return nil, nil
		}
		u, err := user.Lookup(ServiceUser)
		if err != nil {
			return nil, nil // not installed from the .deb: nobody to check for
		}
		return u, nil
	}
	if name == "" {
		return nil, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("--user %q: %w", name, err)
	}
	return u, nil
}

// account is the user `check` judges the files for.
type account struct {
	name string
	uid  int
	gids map[int]bool
}

func accountOf(u *user.User) account {
	uid, _ := strconv.Atoi(u.Uid)
	acc := account{name: u.Username, uid: uid, gids: map[int]bool{}}
	if g, err := strconv.Atoi(u.Gid); err == nil {
		acc.gids[g] = true
	}
	if list, err := u.GroupIds(); err == nil {
		for _, s := range list {
			if g, err := strconv.Atoi(s); err == nil {
				acc.gids[g] = true
			}
		}
	}
	return acc
}

// checkServiceUser returns one problem per file the agent reads at start
// (configPaths: the config and its drop-ins) that u cannot read, judged
// from owners and modes along the path, as root can read anything.
func checkServiceUser(c *Config, configPaths []string, u *user.User) error {
	acc := accountOf(u)
	var ps cfgProblems
	for _, f := range c.neededFiles() {
		if why := acc.cannotRead(f.path); why != "" {
			ps.add(cfgPath(f.key), "%s", why)
		}
	}
	for _, p := range configPaths {
		if why := acc.cannotRead(p); why != "" {
			ps.errs = append(ps.errs, fmt.Errorf("%s: %s", p, why))
		}
	}
	return ps.err()
}

// cannotRead says why the account cannot read path, or "" when it can.
// Files under /home, /root and /run/user are hidden from the service by
// ProtectHome=yes.
func (acc account) cannotRead(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err.Error()
	}
	for _, hidden := range []string{"/home", "/root", "/run/user"} {
		if abs == hidden || strings.HasPrefix(abs, hidden+"/") {
			return fmt.Sprintf("%s is under %s, which the packaged unit hides from user %s (ProtectHome=yes): move it, e.g. to /etc/relaymesh", abs, hidden, acc.name)
		}
	}
	// every directory on the way needs search (x), the file itself read (r)
	var dirs []string
	for d := filepath.Dir(abs); ; d = filepath.Dir(d) {
		dirs = append(dirs, d)
		if d == "/" {
			break
		}
	}
	slices.Reverse(dirs)
	for _, d := range dirs {
		if !acc.permits(d, 1) {
			return fmt.Sprintf("user %s cannot enter directory %s (%s), so cannot read %s", acc.name, d, modeOf(d), abs)
		}
	}
	if _, err := os.Stat(abs); err != nil {
		return fmt.Sprintf("%s: %v", abs, errors.Unwrap(err))
	}
	if !acc.permits(abs, 4) {
		return fmt.Sprintf("%s (%s) is not readable by user %s, which the agent runs as: e.g. chgrp %s %s && chmod g+r %s", abs, modeOf(abs), acc.name, acc.name, abs, abs)
	}
	return ""
}

// permits reports whether the account has the bit (4 read, 1 search) on path.
func (acc account) permits(path string, bit fs.FileMode) bool {
	fi, err := os.Stat(path)
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	m := fi.Mode().Perm()
	switch {
	case acc.uid == 0:
		return true
	case int(st.Uid) == acc.uid:
		return m&(bit<<6) != 0
	case acc.gids[int(st.Gid)]:
		return m&(bit<<3) != 0
	}
	return m&bit != 0
}

// modeOf prints a path's mode and owners, e.g. "0600 root:root".
func modeOf(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "?"
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Sprintf("%04o", fi.Mode().Perm())
	}
	owner, group := strconv.Itoa(int(st.Uid)), strconv.Itoa(int(st.Gid))
	if u, err := user.LookupId(owner); err == nil {
		owner = u.Username
	}
	if g, err := user.LookupGroupId(group); err == nil {
		group = g.Name
	}
	return fmt.Sprintf("%04o %s:%s", fi.Mode().Perm(), owner, group)
}

// QoSWarnings says when an interface [qos] names does not exist here:
// a warning, since check may run elsewhere than on the target host, but
// the agent refuses to start there.
func (c *Config) QoSWarnings() []string {
	if !c.QoS.Enabled || c.QoS.Interface == "" {
		return nil
	}
	if _, err := netutil.InterfaceIndex(c.QoS.Interface); errors.Is(err, netutil.ErrNoInterface) {
		return []string{fmt.Sprintf("qos.interface %q: no such interface on this host; the agent refuses to start where it is missing", c.QoS.Interface)}
	}
	return nil
}

// FileWarnings returns one line per secret file the config names that
// every user can read.
func (c *Config) FileWarnings() []string {
	var w []string
	for _, f := range c.neededFiles() {
		if !f.secret {
			continue
		}
		if s := auth.KeyFileWarning(f.path); s != "" {
			w = append(w, f.key+": "+s)
		}
	}
	return w
}
