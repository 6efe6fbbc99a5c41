package bench

import (
	"strings"
	"testing"
	"time"

	"github.com/ec2-isolation/ec2-isolation/internal/sim"
)

// The storm's pass/fail (the CI smoke step runs `isolation bench -only storm -storm 300 -check`): each property
// of issue 16 fails the check on its own, and a storm meeting them all passes.
func TestStormCheck(t *testing.T) {
	good := StormResult{Instances: 300, Isolated: 300, Evidence: 300, Snapshots: 300, Records: 300,
		Makespan: 190 * time.Second, P50: 100 * time.Second, Shortest: 10 * time.Second,
		Bounds: []Bound{boundOf("ModifyInstanceAttribute", sim.Bucket{Capacity: 50, RefillPerSecond: 5}, 900)}}
	if bad := good.Check(); len(bad) != 0 {
		t.Fatalf("a storm meeting every property fails: %v", bad)
	}
	for _, tt := range []struct {
		name   string
		break_ func(*StormResult)
		want   string
	}{
		{"one instance open", func(s *StormResult) { s.Isolated-- }, "299 of 300 instances contained"},
		{"a failed execution", func(s *StormResult) { s.Failed = 1 }, "1 failed executions"},
		{"a record missing", func(s *StormResult) { s.Records-- }, "records 299"},
		{"a snapshot missing", func(s *StormResult) { s.Snapshots-- }, "snapshots 299"},
		{"unfair", func(s *StormResult) { s.P50 = 105 * time.Second }, "p50 time to containment"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := good
			tt.break_(&s)
			bad := s.Check()
			if len(bad) != 1 || !strings.Contains(bad[0], tt.want) {
				t.Errorf("Check() = %q, want one failure containing %q", bad, tt.want)
			}
		})
	}
}

// Efficiency is reported apart: a slow storm fails it, and only it; the good one meets it.
func TestStormEfficiency(t *testing.T) {
	good := StormResult{Instances: 300, Isolated: 300, Evidence: 300, Snapshots: 300, Records: 300,
		Makespan: 190 * time.Second, P50: 50 * time.Second, Shortest: 10 * time.Second,
		Bounds: []Bound{boundOf("ModifyInstanceAttribute", sim.Bucket{Capacity: 50, RefillPerSecond: 5}, 900)}}
	if slow := good.Efficiency(); len(slow) != 0 {
		t.Fatalf("a storm within 1.1 x its bound: %v", slow)
	}
	// The bound: (900 - 50) / 5 = 170 s, + 10 s: 1.1 x 180 s = 198 s.
	good.Makespan = 199 * time.Second
	if slow := good.Efficiency(); len(slow) != 1 || !strings.Contains(slow[0], "makespan 3m19s > 1.1 x") {
		t.Errorf("Efficiency() = %q, want the makespan named", slow)
	}
	if bad := good.Check(); len(bad) != 0 {
		t.Errorf("Check() = %q: a slow but correct storm passes -check", bad)
	}
}

// The bucket bounds count the storm's calls only: once the storm is over the tally is closed, and the read-back
// (two DescribeInstanceAttribute calls per instance, throttling off) no longer inflates the read bounds, as it did
// in the first runs of this bench with admission (3,000 instances: 41,339 calls counted, 6,000 of them the
// read-back's, so a "bound" above the makespan).
func TestTallyClosesBeforeTheReadBack(t *testing.T) {
	tally := &callTally{throttledBy: map[string]int{}, mutating: map[string]int{}, reads: map[string]int{}}
	read := sim.Call{Service: "ec2", Action: "DescribeInstanceAttribute", HTTPStatus: 200}
	tally.add(read)
	tally.closed = true
	tally.add(read)
	if tally.calls != 1 || tally.reads["DescribeInstanceAttribute"] != 1 {
		t.Errorf("calls %d, DescribeInstanceAttribute %d: want 1 each, the read-back's not counted", tally.calls, tally.reads["DescribeInstanceAttribute"])
	}
}
