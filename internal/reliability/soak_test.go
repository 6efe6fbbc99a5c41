package reliability

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ec2-isolation/ec2-isolation/internal/asl"
	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
)

var soakLong = flag.Bool("soak.long", false, "run the long fault soak (500 executions; SOAK_EXECUTIONS overrides)")

// Soak sizes: the short soak runs in every go test; the long one on demand (and in CI).
const (
	shortSoak = 50
	longSoak  = 500
	// faultRate is the share of all calls answered by a fault: a third each throttling, 5xx, timeouts.
	faultRate = 0.30
)

// soakFaults answers faultRate of all calls, at random (seeded), with throttling (EC2 RequestLimitExceeded, SNS
// Throttling), a 5xx (InternalError 500, Unavailable 503) or a timeout: no answer before the client's
// per-attempt timeout. Half the EC2 timeouts are applied (the change is made, its answer lost), the case that
// tests idempotency hardest. SNS timeouts are never applied: a Publish whose answer is lost is retried and so
// notifies twice; at-least-once is the intended behaviour there (a lost notification would be worse), and
// TestLostPublishAnswerNotifiesTwiceNeverZero covers it.
//
// Rules are tried in order and each draws only for the calls it matches, so rule k's rate is its share divided
// by what the rules before it left.
func soakFaults(seed uint64) sim.Faults {
	third := faultRate / 3
	rate := func(share, left float64) float64 { return share / left }
	return sim.Faults{Seed: seed, Errors: []sim.ErrorFault{
		{Service: "ec2", Code: "RequestLimitExceeded", Rate: rate(third, 1)},
		{Service: "sns", Code: "Throttling", Rate: rate(third, 1)},
		{Code: "InternalError", Rate: rate(third/2, 1-third)},
		{Code: "Unavailable", Rate: rate(third/2, 1-third-third/2)},
		{Service: "ec2", Timeout: time.Hour, Applied: true, Rate: rate(third/2, 1-2*third)},
		{Service: "ec2", Timeout: time.Hour, Rate: rate(third/2, 1-2*third-third/2)},
		{Service: "sns", Timeout: time.Hour, Rate: rate(third, 1-2*third)},
	}}
}

func soakSize(t *testing.T) int {
	if v := os.Getenv("SOAK_EXECUTIONS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("SOAK_EXECUTIONS=%q is not a positive number", v)
		}
		return n
	}
	if *soakLong {
		return longSoak
	}
	if testing.Short() {
		return shortSoak / 5
	}
	return shortSoak
}

func soakSeed(t *testing.T) uint64 {
	if v := os.Getenv("SOAK_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("SOAK_SEED=%q is not a number", v)
		}
		return s
	}
	return defaultSoakSeed
}

// defaultSoakSeed: a fixed seed, so that go test runs the same soak every time; SOAK_SEED tries others.
const defaultSoakSeed = 20261205

// soakRun is one execution of the soak.
type soakRun struct {
	inst fleetInstance
	mode secgroup.Mode
	ex   *asl.Execution
	// firstStatus and firstFailures are the outcome of the first run, before any redrive.
	firstStatus   asl.Status
	firstFailures []string
}

// TestFaultSoak runs executions concurrently (one per instance, alternately in the two connection tracking
// modes) while faultRate of all calls fail, then clears the faults and redrives every failed execution. Each
// must end isolated, or failed with exactly one failure notification naming the failed state and then isolated
// by one redrive; no task may fail with an unnamed error (a panic, an unclassified error).
func TestFaultSoak(t *testing.T) {
	t.Parallel()
	n, seed := soakSize(t), soakSeed(t)
	begin := time.Now()
	if os.Getenv("SOAK_CLOCK") == "scaled" {
		// The soak as it was before the virtual clock, for comparison: simulated time 20 times real time, so
		// task timeouts race the wall clock, and CPU starvation becomes simulated time.
		t.Logf("SOAK_CLOCK=scaled: simulated time runs 20 times faster than the wall clock")
		faultSoak(t, n, seed, scaledOptions())
	} else {
		synctest.Test(t, func(t *testing.T) { faultSoak(t, n, seed, virtualOptions()) })
	}
	t.Logf("real time: %s", time.Since(begin).Round(time.Millisecond))
}

func faultSoak(t *testing.T, n int, seed uint64, o options) {
	t.Logf("fault soak: %d executions, seed %d (SOAK_SEED=%d SOAK_EXECUTIONS=%d go test -run '^TestFaultSoak$' -v ./internal/reliability reproduces the fault draws)", n, seed, seed, n)

	sc, instances := fleet(n)
	sc.Faults = soakFaults(seed)
	o.seed = seed
	e := newEnv(t, sc, o)
	ctx := context.Background()

	runs := make([]*soakRun, n)
	begin := time.Now()
	var wg sync.WaitGroup
	for i, fi := range instances {
		mode := secgroup.ModeDirect
		if i%2 == 1 {
			mode = secgroup.ModeUntrackFirst
		}
		runs[i] = &soakRun{inst: fi, mode: mode}
		wg.Go(func() {
			r := runs[i]
			r.ex = e.runners[mode].Start(ctx, fmt.Sprintf("soak-%04d", i), event(fi.ID))
			r.firstStatus, r.firstFailures = r.ex.Status, failedStates(r.ex)
		})
	}
	wg.Wait()
	firstPhase := time.Since(begin)
	calls := e.srv.Calls()
	firstNotes := e.notified()

	// The cause cleared: no more faults. Every failed execution is redriven once.
	e.clearFaults()
	for _, r := range runs {
		if r.firstStatus != asl.StatusSucceeded {
			wg.Go(func() {
				if err := e.runners[r.mode].Redrive(ctx, r.ex); err != nil {
					t.Errorf("%s: redrive: %v", r.ex.Name, err)
				}
			})
		}
	}
	wg.Wait()
	notes := e.notified()

	var (
		isolatedFirst, failedFirst, redrivenIsolated, failuresNotified int
		failedAt                                                       = map[string]int{}
		failedWith                                                     = map[string]int{}
	)
	for _, r := range runs {
		id, name := r.inst.ID, r.ex.Name
		first := firstNotes[id]
		if first == nil {
			first = &notifications{}
		}
		for _, u := range unnamedErrors(r.ex) {
			t.Errorf("%s (%s): a task failed with an unnamed error: %s", name, id, u)
		}
		switch r.firstStatus {
		case asl.StatusSucceeded:
			isolatedFirst++
			if first.Succeeded != 1 || len(first.Failed) != 0 {
				t.Errorf("%s (%s) succeeded with notifications %+v, want exactly one success", name, id, *first)
			}
		default:
			failedFirst++
			for _, s := range r.firstFailures {
				failedAt[s]++
			}
			for _, f := range failureErrors(r.ex) {
				failedWith[f]++
			}
			// Exactly one failure notification, naming the (first) failed state, and no success.
			switch {
			case len(r.firstFailures) == 0:
				t.Errorf("%s (%s) ended %s without reaching Notify failure (%s: %s)", name, id, r.firstStatus, r.ex.Error, r.ex.Cause)
			case len(first.Failed) != 1 || first.Failed[0] != r.firstFailures[0] || first.Succeeded != 0:
				t.Errorf("%s (%s) failed at %v with notifications %+v, want exactly one failure naming %q; history: %s", name, id, r.firstFailures, *first, r.firstFailures[0], notifyRuns(r.ex))
			default:
				failuresNotified++
			}
			if r.ex.Status != asl.StatusSucceeded {
				t.Errorf("%s (%s): the redrive ended %s %s: %s", name, id, r.ex.Status, r.ex.Error, r.ex.Cause)
			} else if now := notes[id]; now == nil || now.Succeeded != 1 || len(now.Failed) != len(first.Failed) {
				t.Errorf("%s (%s): notifications after the redrive %+v, want the failure then one success", name, id, now)
			} else {
				redrivenIsolated++
			}
		}
		if p := e.isolationProblems(ctx, r.inst, name); len(p) > 0 {
			t.Errorf("%s (%s, %s, first run %s): not isolated: %s", name, id, r.mode, r.firstStatus, strings.Join(p, "; "))
		}
	}

	st := faultStats(calls)
	t.Logf("calls: %d, of which %d (%.1f%%) answered by a fault: %d throttled, %d 5xx, %d timed out (%d of them applied, the answer lost)",
		st.calls, st.faulted, 100*float64(st.faulted)/float64(max(st.calls, 1)), st.throttled, st.serverErrors, st.timedOut, st.applied)
	t.Logf("attempts the clients saw end without an answer: %d (the simulator withheld %d answers; the difference: client timeouts under load, attempts cancelled by a task timeout)",
		e.noAnswer.Load(), st.timedOut)
	t.Logf("faults on mutating calls, each made in the middle of its step (after the step's reads): %d, by action: %s",
		st.midStep, formatCounts(st.midStepByAction))
	t.Logf("executions: %d; isolated on the first run: %d; failed and notified: %d (failed at: %s; errors: %s); of those, isolated by one redrive: %d",
		n, isolatedFirst, failedFirst, formatCounts(failedAt), formatCounts(failedWith), redrivenIsolated)
	t.Logf("isolated or failed-then-redriven-isolated: %d/%d (%.1f%%); failures notified: %d/%d (%.1f%%); simulated time: first phase %s, total %s",
		isolatedFirst+redrivenIsolated, n, 100*float64(isolatedFirst+redrivenIsolated)/float64(n),
		failuresNotified, failedFirst, 100*float64(failuresNotified)/float64(max(failedFirst, 1)),
		firstPhase.Round(time.Millisecond), time.Since(begin).Round(time.Millisecond))
	if st.faulted == 0 || st.timedOut == 0 || st.applied == 0 || st.midStep == 0 {
		t.Errorf("the faults did not apply as intended: %+v", st)
	}
}

// notifyRuns summarises the runs of the notify states, for a failure message.
func notifyRuns(ex *asl.Execution) string {
	var parts []string
	for _, r := range ex.History.Summary() {
		if strings.HasPrefix(r.Name, "Notify") {
			parts = append(parts, fmt.Sprintf("%s (redrive %d): %s %s retries %d %s", r.Name, r.RedriveCount, r.Status, r.Error, r.Retries, r.Cause))
		}
	}
	return strings.Join(parts, "; ")
}

// failureErrors lists "state: error" of the failures that reached Notify failure in the first run.
func failureErrors(ex *asl.Execution) []string {
	var out []string
	for _, r := range ex.History.Summary() {
		if r.RedriveCount == 0 && (r.Status == asl.RunCaught || r.Status == asl.RunFailed) && r.Type == "Task" && r.Name != "Notify failure" {
			out = append(out, r.Name+": "+r.Error)
		}
	}
	return out
}

type soakStats struct {
	calls, faulted, throttled, serverErrors, timedOut, applied, midStep int
	midStepByAction                                                     map[string]int
}

func faultStats(calls []sim.Call) soakStats {
	st := soakStats{midStepByAction: map[string]int{}}
	for _, c := range calls {
		if c.Caller == "reliability-test" {
			continue
		}
		st.calls++
		fault := true
		switch {
		case c.TimedOut:
			st.timedOut++
			if c.ErrorCode != "RequestTimeout" {
				st.applied++
			}
		case c.ErrorCode == "RequestLimitExceeded" || c.ErrorCode == "Throttling":
			st.throttled++
		case c.HTTPStatus >= 500:
			st.serverErrors++
		default:
			fault = false
		}
		if fault {
			st.faulted++
			if c.Mutating || c.TimedOut && !strings.HasPrefix(c.Action, "Describe") {
				st.midStep++
				st.midStepByAction[c.Action]++
			}
		}
	}
	return st
}

func formatCounts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
