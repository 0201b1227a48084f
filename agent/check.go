package agent

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

// serviceUser is the packaged unit's User=: as root, `relaymesh check`
// checks that this account can read what the agent reads.
const serviceUser = "relaymesh"

// neededFile is a file the agent opens at start, by its config key.
type neededFile struct{ key, path string }

// neededFiles lists the files the agent reads at start with this config
// (a file of a section that is off is not read, so not listed).
func (c *Config) neededFiles() []neededFile {
	var out []neededFile
	addIf := func(on bool, key, path string) {
		if on && path != "" {
			out = append(out, neededFile{key, path})
		}
	}
	addIf(true, "auth.key_file", c.Auth.KeyFile)
	addIf(true, "api.token_file", c.API.TokenFile)
	cl := c.Cluster
	addIf(cl.Enabled, "cluster.key_file", cl.KeyFile)
	addIf(cl.Enabled, "cluster.backbone_key_file", cl.BackboneKeyFile)
	addIf(cl.Enabled, "cluster.locations_file", cl.LocationsFile)
	addIf(c.Webhooks.URL != "", "webhooks.secret_file", c.Webhooks.SecretFile)
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
			if _, err := gossip.LoadLocationTable(cl.LocationsFile); err != nil {
				ps.add("cluster.locations_file", "%v", err)
			}
		}
	}
	if w := c.Webhooks; w.URL != "" && w.SecretFile != "" {
		if _, err := loadWebhookSecret(w.SecretFile); err != nil {
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
		u, err := user.Lookup(serviceUser)
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

// checkServiceUser returns one problem per file the agent reads at start
// (configPaths: the config and its drop-ins) that u cannot read, judged
// from owners and modes along the path, as root can read anything.
func checkServiceUser(c *Config, configPaths []string, u *user.User) error {
	uid, _ := strconv.Atoi(u.Uid)
	gids := map[int]bool{}
	if g, err := strconv.Atoi(u.Gid); err == nil {
		gids[g] = true
	}
	if list, err := u.GroupIds(); err == nil {
		for _, s := range list {
			if g, err := strconv.Atoi(s); err == nil {
				gids[g] = true
			}
		}
	}
	var ps cfgProblems
	files := c.neededFiles()
	for _, p := range configPaths {
		files = append(files, neededFile{"config", p})
	}
	for _, f := range files {
		if why := unreadableBy(f.path, uid, gids); why != "" {
			if f.key == "config" {
				ps.errs = append(ps.errs, fmt.Errorf("%s: %s", f.path, fmt.Sprintf(why, u.Username)))
				continue
			}
			ps.add(cfgPath(f.key), why, u.Username)
		}
	}
	return ps.err()
}

// unreadableBy says why uid (in groups gids) cannot read path, with one %s
// for the user's name, or "" when it can. Files under /home, /root and
// /run/user are hidden from the service by ProtectHome=yes.
func unreadableBy(path string, uid int, gids map[int]bool) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "%s: " + err.Error()
	}
	for _, hidden := range []string{"/home", "/root", "/run/user"} {
		if abs == hidden || strings.HasPrefix(abs, hidden+"/") {
			return fmt.Sprintf("%s is under %s, which the packaged unit hides from user %%s (ProtectHome=yes): move it, e.g. to /etc/relaymesh", abs, hidden)
		}
	}
	// every directory on the way needs search (x), the file itself read (r)
	dirs := []string{}
	for d := filepath.Dir(abs); ; d = filepath.Dir(d) {
		dirs = append(dirs, d)
		if d == "/" {
			break
		}
	}
	slices.Reverse(dirs)
	for _, d := range dirs {
		if !permits(d, uid, gids, 1) {
			return fmt.Sprintf("user %%s cannot enter directory %s (%s), so cannot read %s", d, modeOf(d), abs)
		}
	}
	if _, err := os.Stat(abs); err != nil {
		return fmt.Sprintf("%s: %v", abs, errors.Unwrap(err))
	}
	if !permits(abs, uid, gids, 4) {
		return fmt.Sprintf("%s (%s) is not readable by user %%s, which the agent runs as: e.g. chgrp %%[1]s %s && chmod g+r %s", abs, modeOf(abs), abs, abs)
	}
	return ""
}

// permits reports whether uid/gids have the bit (4 read, 1 search) on path.
func permits(path string, uid int, gids map[int]bool, bit fs.FileMode) bool {
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
	case uid == 0:
		return true
	case int(st.Uid) == uid:
		return m&(bit<<6) != 0
	case gids[int(st.Gid)]:
		return m&(bit<<3) != 0
	}
	return m&bit != 0
}

// configFiles lists the config file and its drop-ins, as Load reads them.
func configFiles(path string) []string {
	if path == "" {
		return nil
	}
	dropins, _ := filepath.Glob(filepath.Join(DropInDir(path), "*.toml"))
	slices.Sort(dropins)
	return append([]string{path}, dropins...)
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

// qosWarnings says when an interface [qos] names does not exist here:
// a warning, since check may run elsewhere than on the target host, but
// the agent refuses to start there.
func qosWarnings(c *Config) []string {
	if !c.QoS.Enabled || c.QoS.Interface == "" {
		return nil
	}
	if _, err := netutil.InterfaceIndex(c.QoS.Interface); errors.Is(err, netutil.ErrNoInterface) {
		return []string{fmt.Sprintf("qos.interface %q: no such interface on this host; the agent refuses to start where it is missing", c.QoS.Interface)}
	}
	return nil
}

// keyFileWarnings is the part of FileWarnings for the secrets [cluster]
// and [webhooks] name.
func keyFileWarnings(c *Config) []string {
	var w []string
	for _, f := range c.neededFiles() {
		switch f.key {
		case "cluster.key_file", "cluster.backbone_key_file", "webhooks.secret_file":
			if s := auth.KeyFileWarning(f.path); s != "" {
				w = append(w, f.key+": "+s)
			}
		}
	}
	return w
}
