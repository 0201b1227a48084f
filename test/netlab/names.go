package netlab

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Names. Every lab of a process gets base "<prefix>-<pid>-<n>"; its hub
// namespace is base+"_hub" and each host's is base+"-"+host. Interfaces
// are named inside those namespaces only (br0, v<i>, eth0), so nothing is
// created in the caller's namespace and nothing clashes between labs.

var hostNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

func validHostName(name string) error {
	if !hostNameRE.MatchString(name) {
		return fmt.Errorf("host name %q: use 1-32 of a-z, 0-9 and '-', starting with a letter or digit", name)
	}
	return nil
}

func validPrefix(p string) error {
	if !regexp.MustCompile(`^[a-z][a-z0-9]{0,11}$`).MatchString(p) {
		return fmt.Errorf("prefix %q: use 1-12 of a-z and 0-9, starting with a letter", p)
	}
	return nil
}

// ownerPID returns the pid encoded in a namespace name made with prefix.
func ownerPID(prefix, ns string) (int, bool) {
	rest, ok := strings.CutPrefix(ns, prefix+"-")
	if !ok {
		return 0, false
	}
	pidStr, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(pidStr)
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// listNamespaces returns the names in `ip netns list`.
func listNamespaces() ([]string, error) {
	out, err := ipOut("netns", "list")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names, nil
}

// sweepLeftovers deletes namespaces made with prefix by processes that no
// longer exist (a crashed or killed earlier run), after killing whatever
// still runs in them. Live labs of other test processes are left alone.
func sweepLeftovers(prefix string) error {
	names, err := listNamespaces()
	if err != nil {
		return err
	}
	var errs []error
	for _, ns := range names {
		pid, ok := ownerPID(prefix, ns)
		if !ok || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		errs = append(errs, deleteNamespace(ns))
	}
	return errors.Join(errs...)
}

// killNamespacePIDs SIGKILLs every process in ns, by PID, and waits until
// none is left.
func killNamespacePIDs(ns string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := ipOut("netns", "pids", ns)
		if err != nil {
			return err
		}
		pids := strings.Fields(out)
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("netns %s: processes %v still running after SIGKILL", ns, pids)
		}
		for _, p := range pids {
			if pid, err := strconv.Atoi(p); err == nil && pid != os.Getpid() {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// deleteNamespace kills the processes in ns and deletes it. A namespace
// that is already gone is not an error.
func deleteNamespace(ns string) error {
	if _, err := os.Stat("/run/netns/" + ns); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := killNamespacePIDs(ns); err != nil {
		return err
	}
	return ip("netns", "delete", ns)
}
