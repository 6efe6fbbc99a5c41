package runner_test

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"

	ec2isolation "github.com/ec2-isolation/ec2-isolation"
	"github.com/ec2-isolation/ec2-isolation/internal/asl"
	"github.com/ec2-isolation/ec2-isolation/internal/runner"
	"github.com/ec2-isolation/ec2-isolation/internal/simtest"
	"github.com/ec2-isolation/ec2-isolation/internal/stackenv"
)

// OnProgress reports every state's start and end while the execution runs, and the execution's end last: the
// same states, in the same numbers, as the finished history holds, so a live display misses none of them.
func TestOnProgressReportsEachStateAsItStartsAndEnds(t *testing.T) {
	sc := defaultScenario(t)
	srv := simtest.Start(t, sc)
	srv.ApplyTagEvent(isolateEvent(t))
	var (
		mu    sync.Mutex
		steps []runner.Progress
	)
	env := stackenv.ForSim(sc, srv.Region(), srv.AccountID(), nil)
	r, err := runner.New(runner.Config{Definition: ec2isolation.Definition, Region: srv.Region(), Account: srv.AccountID(),
		AWS: srv.AWSConfig, Env: stackenv.Getenv(env), Log: slog.New(slog.DiscardHandler),
		OnProgress: func(p runner.Progress) { mu.Lock(); defer mu.Unlock(); steps = append(steps, p) }})
	if err != nil {
		t.Fatal(err)
	}
	exec := r.Start(context.Background(), "progress", isolateEvent(t))
	if exec.Status != asl.StatusSucceeded {
		t.Fatalf("execution %s: %s %s", exec.Status, exec.Error, exec.Cause)
	}
	started, ended := map[string]int{}, map[string]int{}
	// The isolation's steps; then the evidence execution of the job it queued (issue 16), told apart by Machine.
	i := slices.IndexFunc(steps, func(p runner.Progress) bool { return p.Machine != runner.StateMachineName })
	if i < 0 || steps[len(steps)-1].Machine != runner.EvidenceStateMachineName || steps[len(steps)-1].Status != "SUCCEEDED" {
		t.Errorf("no evidence execution reported after the isolation's (first other machine at %d, last %+v)", i, steps[len(steps)-1])
	} else {
		steps = steps[:i]
	}
	for _, p := range steps {
		switch p.Phase {
		case runner.PhaseStarted:
			started[p.State]++
		case runner.PhaseSucceeded:
			if started[p.State] <= ended[p.State] {
				t.Errorf("%s ended before it started", p.State)
			}
			ended[p.State]++
		}
	}
	want := map[string]int{}
	for _, s := range exec.History.Summary() {
		want[s.Name]++
	}
	for name, n := range want {
		if started[name] != n || ended[name] != n {
			t.Errorf("%s: %d starts and %d ends reported, want %d of each (the history's visits)", name, started[name], ended[name], n)
		}
	}
	if len(want) < 15 {
		t.Errorf("only %d states in the history", len(want))
	}
	last := steps[len(steps)-1]
	if last.Phase != runner.PhaseExecutionEnded || last.Status != "SUCCEEDED" {
		t.Errorf("last progress %+v, want the execution's end, SUCCEEDED", last)
	}
	if i := slices.IndexFunc(steps, func(p runner.Progress) bool { return p.Time.IsZero() }); i >= 0 {
		t.Errorf("progress %+v has no time", steps[i])
	}
}
