package bench

import (
	"context"
	"os"
	"testing"
	"time"
)

// The two stages in a small storm, through the real definitions, handlers and SDK against the simulator: every
// instance contained and its evidence read back complete, every instance setting changed by stage 2 (three
// ModifyInstanceAttribute calls per instance by the evidence executions, none by the isolations), one evidence
// execution per isolation. Simulated time only; nothing here is timed.
func TestStormRunsEvidenceAsASecondStage(t *testing.T) {
	scenario, err := os.ReadFile("../../cmd/isolation/scenarios/default.json")
	if err != nil {
		t.Fatal(err)
	}
	event, err := os.ReadFile("../../events/isolate.json")
	if err != nil {
		t.Fatal(err)
	}
	const n = 12
	rep, err := Run(context.Background(), Options{Repo: "../..", Scenario: scenario, Event: event,
		Only: map[string]bool{"storm": true}, Storm: n, StormFactor: 5, Concurrency: []int{0},
		Window: 4, EvidenceWindow: 2, AccountConcurrency: 1000, Latency: 100 * time.Millisecond,
		Costs: Costs{Invoke: 25 * time.Millisecond, Transition: 15 * time.Millisecond}, Env: map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Errors) > 0 || len(rep.Storms) != 1 {
		t.Fatalf("errors %v, %d storms", rep.Errors, len(rep.Storms))
	}
	s := rep.Storms[0]
	if s.Isolated != n || s.Failed != 0 || s.Evidence != n || s.Snapshots != n || s.Records != n {
		t.Errorf("isolated %d, failed %d %v, evidence %d, snapshots %d, records %d of %d; missing %v",
			s.Isolated, s.Failed, s.FailureCause, s.Evidence, s.Snapshots, s.Records, n, s.EvidenceMissing)
	}
	if s.EvidenceSent != n || s.EvidenceExecutions != n {
		t.Errorf("evidence jobs sent %d, evidence executions %d: want %d each", s.EvidenceSent, s.EvidenceExecutions, n)
	}
	if got := s.Stage2Calls["ModifyInstanceAttribute"]; got != 3*n || s.StageOneModifies != 0 {
		t.Errorf("ModifyInstanceAttribute: stage 2 %d, stage 1 %d; want %d and 0", got, s.StageOneModifies, 3*n)
	}
	if s.EvidenceMakespan <= 0 || s.EvidenceMakespan > s.Makespan || s.Containment <= 0 {
		t.Errorf("evidence complete at %v, makespan %v, containment %v", s.EvidenceMakespan, s.Makespan, s.Containment)
	}
}
