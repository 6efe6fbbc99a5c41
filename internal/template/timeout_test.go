package template

// Issue 13, item 8: each state machine has an execution TimeoutSeconds derived from its tasks' timeouts and
// retriers, so that an execution still running past every retry budget the design allows ends TIMED_OUT and
// the ExecutionsTimedOut alarm fires; a redrive resets that timeout ("When you redrive an execution, the state
// machine level timeout, if defined, is reset to 0",
// https://docs.aws.amazon.com/step-functions/latest/dg/redrive-executions.html), so it never cuts a redrive.

import (
	"fmt"
	"math"
	"testing"

	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
)

// retryWait is the longest a retrier waits in all: its MaxAttempts waits, each IntervalSeconds x BackoffRate^k
// capped at MaxDelaySeconds (JitterStrategy FULL only shortens them). Defaults as the ASL specification's.
func retryWait(r retrier) float64 {
	interval, rate, attempts := r.IntervalSeconds, r.BackoffRate, r.MaxAttempts
	if interval == 0 {
		interval = 1
	}
	if rate == 0 {
		rate = 2
	}
	total := 0.0
	for k := range attempts {
		d := interval * math.Pow(rate, float64(k))
		if r.MaxDelaySeconds > 0 {
			d = math.Min(d, float64(r.MaxDelaySeconds))
		}
		total += d
	}
	return total
}

// stateCost is the longest a state can take in one visit: one error class failing every attempt (all of that
// retrier's attempts spent, each attempt lasting the whole task timeout), the worst class. A Parallel state's
// attempt lasts as long as its longest branch.
func stateCost(s designState) (float64, []string) {
	var attempt float64
	var problems []string
	switch s.Type {
	case "Task":
		attempt = float64(s.TimeoutSeconds)
	case "Parallel":
		for _, b := range s.Branches {
			c, p := longestPath(b)
			attempt = math.Max(attempt, c)
			problems = append(problems, p...)
		}
	default:
		return 0, nil
	}
	worst := attempt
	for _, r := range s.Retry {
		worst = math.Max(worst, float64(r.MaxAttempts+1)*attempt+retryWait(r))
	}
	return worst, problems
}

// visitBudget is how often one execution can enter a state that lies on a cycle of the definition; every other
// state is entered at most once. A cycle through a state missing here is reported: its bound is unknown.
func visitBudget() map[string]int {
	return map[string]int{
		// Notify success failing: Collect failure -> Anything to record? -> Record outcome again -> Outcome? ->
		// Notify failure (Notify success runs once: the second time Outcome? sees the failure).
		"Collect failure": 2, "Anything to record?": 2, "Outcome?": 2, "Record outcome": 2, "Record release": 2,
		"Notify success": 1,
		// Apply's GroupMissing Catch leads back to Ensure: rounds 1..MaxMissingRounds, then one more Ensure that
		// refuses (AWSError, not retried).
		"Ensure isolation security group": secgroup.MaxMissingRounds + 2,
		"Apply isolation security group":  secgroup.MaxMissingRounds + 1,
	}
}

// resumeState's edges are followed only on a redrive, which starts the execution timeout again.
const resumeState = "Resume at failed state"

func successors(s designState) []string {
	var out []string
	if s.Next != "" {
		out = append(out, s.Next)
	}
	for _, c := range s.Catch {
		out = append(out, c.Next)
	}
	for _, c := range s.Choices {
		if n, ok := c["Next"].(string); ok {
			out = append(out, n)
		}
	}
	if s.Default != "" {
		out = append(out, s.Default)
	}
	return out
}

// longestPath is the longest time from StartAt to the end of m, over every path that enters each state no more
// often than visitBudget allows.
func longestPath(m designMachine) (float64, []string) {
	budget := visitBudget()
	var best float64
	var problems []string
	seen := map[string]bool{}
	var walk func(name string, visits map[string]int, acc float64)
	walk = func(name string, visits map[string]int, acc float64) {
		s, ok := m.States[name]
		if !ok {
			problems = append(problems, fmt.Sprintf("no state %q", name))
			return
		}
		c, p := stateCost(s)
		problems = append(problems, p...)
		acc += c
		best = math.Max(best, acc)
		visits[name]++
		defer func() { visits[name]-- }()
		if name == resumeState {
			return
		}
		for _, next := range successors(s) {
			limit, budgeted := budget[next]
			if !budgeted {
				limit = 1
			}
			if visits[next] >= limit {
				if !budgeted && !seen[next] {
					seen[next] = true
					problems = append(problems, fmt.Sprintf("a cycle re-enters %q, which visitBudget does not bound", next))
				}
				continue
			}
			walk(next, visits, acc)
		}
	}
	walk(m.StartAt, map[string]int{}, 0)
	return best, problems
}

// executionTimeout is the TimeoutSeconds a definition must have: its longest path rounded up to the hour.
func executionTimeout(m designMachine) (bound float64, timeout int, problems []string) {
	bound, problems = longestPath(m)
	return bound, int(math.Ceil(bound/3600)) * 3600, problems
}

func TestExecutionTimeoutIsDerivedFromTheTasks(t *testing.T) {
	for _, def := range []string{"statemachine/isolation.asl.json", "statemachine/release.asl.json", "statemachine/evidence.asl.json"} {
		m := loadDesign(t, def)
		bound, want, problems := executionTimeout(m)
		for _, p := range problems {
			t.Errorf("%s: %s", def, p)
		}
		t.Logf("%s: longest path %.0f s (%.1f h) -> TimeoutSeconds %d", def, bound, bound/3600, want)
		if m.TimeoutSeconds != want {
			t.Errorf("%s: TimeoutSeconds = %d, want %d (the longest path, %.0f s, rounded up to the hour; statemachine/README.md shows the arithmetic)",
				def, m.TimeoutSeconds, want, bound)
		}
	}
}

// The arithmetic on a small machine: a Task of 10 s with one retrier (2 attempts, 1 s then 2 s) costs 3 x 10 + 3
// = 33 s; a Parallel takes its longest branch; a budgeted loop counts each lap.
func TestExecutionTimeoutArithmetic(t *testing.T) {
	task := func(next string, retry ...retrier) designState {
		return designState{Type: "Task", TimeoutSeconds: 10, Retry: retry, Next: next, End: next == ""}
	}
	r := retrier{ErrorEquals: []string{"X"}, IntervalSeconds: 1, BackoffRate: 2, MaxAttempts: 2}
	m := designMachine{StartAt: "A", States: map[string]designState{
		"A": task("P", r),
		"P": {Type: "Parallel", Next: "Z", Branches: []designMachine{
			{StartAt: "B1", States: map[string]designState{"B1": task("")}},
			{StartAt: "B2", States: map[string]designState{"B2": task("B3"), "B3": task("")}},
		}},
		"Z": {Type: "Succeed"},
	}}
	if got, _ := longestPath(m); got != 33+20 {
		t.Errorf("longest path = %v, want 53", got)
	}
	// A cycle nobody budgeted is reported, not silently cut.
	m.States["Z"] = designState{Type: "Pass", Next: "A"}
	if _, problems := longestPath(m); len(problems) != 1 {
		t.Errorf("problems = %q, want the unbounded cycle", problems)
	}
}
