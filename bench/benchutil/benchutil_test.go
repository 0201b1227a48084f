package benchutil

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/bench/procstat"
)

func TestRound(t *testing.T) {
	tests := []struct {
		name   string
		v      float64
		digits int
		want   float64
	}{
		{"two decimals", 1.23456, 2, 1.23},
		{"half up", 0.125, 2, 0.13},
		{"none", 2.5, 0, 3},
		{"negative", -1.26, 1, -1.3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Round(tc.v, tc.digits); got != tc.want {
				t.Errorf("Round(%v, %d) = %v, want %v", tc.v, tc.digits, got, tc.want)
			}
		})
	}
}

func TestSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Sleep(ctx, time.Hour) {
		t.Error("Sleep on an ended context reported it alive")
	}
	if Sleep(ctx, 0) {
		t.Error("Sleep(0) on an ended context reported it alive")
	}
	if !Sleep(context.Background(), time.Millisecond) {
		t.Error("Sleep on a live context reported it ended")
	}
}

func TestWindowCost(t *testing.T) {
	c0 := procstat.Sample{CPUTicks: 100, SysTicks: 40}
	c1 := procstat.Sample{CPUTicks: 350, SysTicks: 90}
	// 2.5 s of CPU, 0.5 s of it in the kernel, over 10 s, 1 Gbit delivered
	got := WindowCost(c0, c1, 10, 125_000_000)
	want := Cost{CPUSeconds: 2.5, SysSeconds: 0.5, CPUPct: 25, CPUPerGbit: 2.5}
	if got != want {
		t.Errorf("WindowCost = %+v, want %+v", got, want)
	}
	if got := WindowCost(c0, c1, 10, 0); got.CPUPerGbit != 0 {
		t.Errorf("nothing delivered: CPUPerGbit = %v, want 0", got.CPUPerGbit)
	}
}

func TestPerReader(t *testing.T) {
	if got := PerReader(3000, 1000, 40); got != 50 {
		t.Errorf("PerReader = %v, want 50", got)
	}
	if got := PerReader(3000, 1000, 0); got != 0 {
		t.Errorf("PerReader with no readers = %v, want 0", got)
	}
}

func TestMeasureIdleOfThisProcess(t *testing.T) {
	idle, err := MeasureIdle(context.Background(), os.Getpid(), 1100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if idle.Start.PIDs < 1 || idle.RSSMaxKiB == 0 || len(idle.RSS) < 1 {
		t.Errorf("idle = %+v, want this process sampled with its RSS", idle)
	}
	if _, err := MeasureIdle(context.Background(), -1, time.Second); err == nil {
		t.Error("MeasureIdle of no process succeeded")
	}
}

// TestCostJSON: the readers' JSON keeps the keys bench/*.sh read with jq.
func TestCostJSON(t *testing.T) {
	b, err := json.Marshal(struct {
		Cost
	}{Cost{CPUSeconds: 1, SysSeconds: 0.5, CPUPct: 10, CPUPerGbit: 0.2}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"cpu_seconds":1,"sys_seconds":0.5,"cpu_percent":10,"cpu_seconds_per_gbit":0.2}`
	if string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
}
