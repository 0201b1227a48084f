package srt

import (
	"errors"
	"strings"
	"testing"
)

func TestParseStreamID(t *testing.T) {
	cases := []struct {
		name, in           string
		action, key, token string
		wantErr            string
	}{
		{"publish", "publish:live/cam1", ActionPublish, "live/cam1", "", ""},
		{"read", "read:live/cam1", ActionRead, "live/cam1", "", ""},
		{"bare key reads", "live/cam1", ActionRead, "live/cam1", "", ""},
		{"query token", "publish:live/cam1?token=abc.def&expires=9", ActionPublish, "live/cam1", "abc.def", ""},
		{"access control publish", "#!::r=live/cam1,m=publish,t=tok", ActionPublish, "live/cam1", "tok", ""},
		{"access control request", "#!::m=request,r=live/cam1", ActionRead, "live/cam1", "", ""},
		{"access control default mode", "#!::r=live/cam1,u=alice", ActionRead, "live/cam1", "", ""},
		{"empty", "", "", "", "", "empty"},
		{"no app", "publish:cam1", "", "", "", "app/name"},
		{"unknown action", "play:live/cam1", "", "", "", "unknown action"},
		{"bad mode", "#!::r=live/x,m=bidirectional", "", "", "", "mode"},
		{"duplicate key", "#!::r=live/x,r=live/y", "", "", "", "twice"},
		{"unknown ac key", "#!::r=live/x,zz=1", "", "", "", "unknown access-control key"},
		{"ac without resource", "#!::m=publish", "", "", "", "without r="},
		{"bad escape", "publish:live/x?token=%zz", "", "", "", "query"},
		{"two tokens", "#!::r=live/x?token=a,t=b", "", "", "", "two different tokens"},
		{"control byte", "publish:live/x\x00", "", "", "", "control"},
		{"too long", "publish:live/" + strings.Repeat("a", 600), "", "", "", "longer than"},
		{"dotdot", "publish:live/../x", "", "", "", "bad stream key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id, err := ParseStreamID(c.in)
			if c.wantErr != "" {
				if err == nil || !errors.Is(err, ErrBadStreamID) || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if id.Action != c.action || id.Key != c.key || id.Token != c.token {
				t.Errorf("got %+v", id)
			}
		})
	}
}

func FuzzParseStreamID(f *testing.F) {
	for _, s := range []string{"publish:live/a", "read:live/a?token=x", "live/a", "#!::r=live/a,m=publish,t=x", "#!::m=request,r=a/b?token=y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseStreamID(s)
		if err != nil {
			return
		}
		if id.Action != ActionPublish && id.Action != ActionRead {
			t.Fatalf("action %q", id.Action)
		}
		if strings.ContainsAny(id.Key, "?#%") || !strings.Contains(id.Key, "/") {
			t.Fatalf("key %q", id.Key)
		}
	})
}

func TestCheckUDPBuffers(t *testing.T) {
	dir := t.TempDir()
	write := func(name, v string) {
		if err := osWriteFile(dir+"/"+name, v); err != nil {
			t.Fatal(err)
		}
	}
	write("rmem_default", "212992\n")
	write("rmem_max", "16777216\n")
	if w := checkUDPBuffers(dir); !strings.Contains(w, "rmem_default=212992") || strings.Contains(w, "rmem_max=16777216") {
		t.Errorf("low default: %q", w)
	}
	write("rmem_default", "8388608\n")
	if w := checkUDPBuffers(dir); w != "" {
		t.Errorf("large buffers: %q", w)
	}
}

func TestURLParam(t *testing.T) {
	for _, tc := range []struct{ sid, want string }{
		{"publish:live/a?token=1767225600-ab12", "publish:live/a?token=1767225600-ab12"},
		{"read:live/a b&x#y%", "read:live/a%20b%26x%23y%25"},
	} {
		got := URLParam(tc.sid)
		if got != tc.want {
			t.Errorf("URLParam(%q) = %q, want %q", tc.sid, got, tc.want)
		}
		if id, err := ParseStreamID(got); tc.sid[0] == 'p' && (err != nil || id.Key != "live/a" || id.Token != "1767225600-ab12") {
			t.Errorf("ParseStreamID(%q) = %+v, %v; want live/a with its token", got, id, err)
		}
	}
}
