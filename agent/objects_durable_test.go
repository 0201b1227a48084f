package agent_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/client"
	"github.com/relaymesh/relaymesh/task"
)

// mountSmallDataDir mounts a tmpfs of size at dir/data, so the test can
// fill the agent's data dir; it skips when not root.
func mountSmallDataDir(t *testing.T, size string) (dir, data string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs as the data dir (CI runs as root)")
	}
	dir = t.TempDir()
	data = filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", data, "tmpfs", 0, "size="+size); err != nil {
		t.Fatalf("cannot mount a tmpfs as root (%v): the full-disk test needs it", err)
	}
	t.Cleanup(func() { syscall.Unmount(data, syscall.MNT_DETACH) })
	return dir, data
}

// fillDisk writes dir/filler until the filesystem is full and returns its
// path.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill %s: %v", path, err)
			}
			return path
		}
	}
}

// noCallback is a task callback nobody listens on (a task needs one on a
// node without [webhooks] url); its events are refused at once.
const noCallback = "http://127.0.0.1:1/task-events"

func taskBody(id, item string) task.Spec {
	start := time.Now().Add(time.Hour).UTC()
	return task.Spec{ID: id, Source: task.Source{Playlist: []string{item}},
		Destination: task.Destination{URL: "rtmp://127.0.0.1:1/live/" + id}, Callback: noCallback, Start: &start}
}

// TestObjectsFullDisk: on a full data dir, creates, updates and deletes
// are refused with 507 and the reason, memory keeps the old state, and
// after kill -9 and a restart exactly the acknowledged objects exist.
func TestObjectsFullDisk(t *testing.T) {
	dir, data := mountSmallDataDir(t, "256k")
	a := startAgentIn(t, dir, "test-node", "", nil)
	ctx := context.Background()
	tasks := a.Client().Tasks()
	exists := map[string]bool{} // acknowledged state by task id
	for i := range 5 {
		id := fmt.Sprintf("tk-%d", i)
		if _, err := tasks.Create(ctx, taskBody(id, "/srv/a.mp4")); err != nil {
			t.Fatalf("create %s with free space: %v", id, err)
		}
		exists[id] = true
	}

	filler := fillDisk(t, data)
	t.Run("refused", func(t *testing.T) {
		_, err := tasks.Create(ctx, taskBody("refused", "/srv/a.mp4"))
		if p := problem(t, err); p.Status != 507 || !strings.Contains(p.Message, "not saved") || !strings.Contains(p.Message, "no space left") {
			t.Errorf("create on a full disk: %v, want 507 saying it was not saved for lack of space", p)
		}
		if _, err := tasks.Get(ctx, "refused"); !client.IsNotFound(err) {
			t.Errorf("a refused create is in memory: GET answers %v, want 404", err)
		}
		if _, err := tasks.Update(ctx, "tk-1", taskBody("tk-1", "/srv/changed.mp4")); statusOf(t, err, 200) != 507 {
			t.Errorf("update on a full disk: %v, want 507", err)
		}
		if v, err := tasks.Get(ctx, "tk-1"); err != nil || !slices.Equal(v.Source.Playlist, []string{"/srv/a.mp4"}) {
			t.Errorf("a refused update is in memory: %+v, %v", v.Source, err)
		}
		if err := tasks.Delete(ctx, "tk-2"); statusOf(t, err, 204) != 507 {
			t.Errorf("delete on a full disk: %v, want 507", err)
		}
		if _, err := tasks.Get(ctx, "tk-2"); err != nil {
			t.Errorf("a refused delete was done in memory: GET answers %v", err)
		}
	})

	// free a little, then a burst of creates and deletes runs into the
	// full disk again half way: each answer says what survives a restart
	if err := os.Truncate(filler, 216*1024); err != nil {
		t.Fatal(err)
	}
	var acked, refused int
	for i := range 120 {
		id := fmt.Sprintf("burst-%d", i)
		_, err := tasks.Create(ctx, taskBody(id, "/srv/a.mp4"))
		switch st := statusOf(t, err, 201); st {
		case 201:
			exists[id] = true
			acked++
		case 507:
			refused++
		default:
			t.Fatalf("create %s: %d, want 201 or 507", id, st)
		}
		if i%10 == 9 {
			victim := fmt.Sprintf("burst-%d", i-5)
			switch st := statusOf(t, tasks.Delete(ctx, victim), 204); {
			case st == 204:
				exists[victim] = false
			case st == 507, st == 404 && !exists[victim]:
			default:
				t.Fatalf("delete %s: %d", victim, st)
			}
		}
	}
	if acked == 0 || refused == 0 {
		t.Fatalf("the burst had %d acknowledged and %d refused creates: the disk did not fill half way", acked, refused)
	}
	t.Logf("burst: %d creates acknowledged, %d refused", acked, refused)

	// another write error (a read-only filesystem) is a 503 with the reason
	if err := remountReadOnly(data); err != nil {
		t.Fatalf("remount read-only: %v", err)
	}
	if _, err := tasks.Create(ctx, taskBody("on-ro", "/srv/a.mp4")); err == nil {
		t.Errorf("create on a read-only data dir succeeded, want 503 with the reason")
	} else if p := problem(t, err); p.Status != 503 || !strings.Contains(p.Message, "read-only file system") {
		t.Errorf("create on a read-only data dir: %v, want 503 with the reason", p)
	}
	if err := syscall.Mount("", data, "", syscall.MS_REMOUNT, ""); err != nil {
		t.Fatalf("remount read-write: %v", err)
	}

	a.cmd.Process.Signal(syscall.SIGKILL)
	<-a.exited
	os.Remove(filler)
	b := a.restart(t)
	list, err := b.Client().Tasks().List(ctx, nil)
	if err != nil {
		t.Fatalf("list after restart: %v", err)
	}
	var got, want []string
	for _, tk := range list {
		got = append(got, tk.ID)
	}
	for id, ok := range exists {
		if ok {
			want = append(want, id)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("after a restart the tasks are\n  %v\nwant exactly the acknowledged ones\n  %v", got, want)
	}
}

// TestStaleStoreTempRemoved: the temp files a kill -9 during a save
// leaves in the data dir are removed when the agent starts.
func TestStaleStoreTempRemoved(t *testing.T) {
	a := startAgent(t, "")
	ctx := context.Background()
	if _, err := a.Client().Tasks().Create(ctx, taskBody("kept", "/srv/a.mp4")); err != nil {
		t.Fatalf("create: %v", err)
	}
	a.cmd.Process.Signal(syscall.SIGKILL)
	<-a.exited
	data := filepath.Join(filepath.Dir(a.cfg), "data")
	stale := filepath.Join(data, ".objects-123456.json")
	if err := os.WriteFile(stale, []byte(`{"version":1,"flo`), 0o600); err != nil {
		t.Fatal(err)
	}
	b := a.restart(t)
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("stale temp file after the restart: %v", err)
	}
	if !strings.Contains(b.logs.String(), "removed temp files of an interrupted save") {
		t.Errorf("the removal is not logged")
	}
	if _, err := b.Client().Tasks().Get(ctx, "kept"); err != nil {
		t.Fatalf("the saved task after the restart: %v", err)
	}
}

// remountReadOnly makes the data dir read-only. The kernel refuses with
// EBUSY while a file on it is still open for writing (the agent may be
// finishing a write it already answered for), so it retries, bounded.
func remountReadOnly(dir string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := syscall.Mount("", dir, "", syscall.MS_REMOUNT|syscall.MS_RDONLY, "")
		if err == nil || !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}
