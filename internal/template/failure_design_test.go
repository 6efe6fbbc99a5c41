package template

// The failure design of statemachine/README.md, checked over both definitions (issue 12, case 8): every Task has
// the house Retry list and a TimeoutSeconds; every Catch the design relies on covers States.ALL and leads to a
// failure marker naming the task; every state a marker can name is a redrive target. The node tests exercise
// these paths with stubs; this test makes `go test ./...` notice a removed retrier or a narrowed Catch too.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

type retrier struct {
	ErrorEquals     []string
	IntervalSeconds float64
	BackoffRate     float64
	MaxAttempts     int
	MaxDelaySeconds int
	JitterStrategy  string
}

type catcher struct {
	ErrorEquals []string
	ResultPath  *string
	Next        string
}

type designState struct {
	Type           string
	Resource       string
	TimeoutSeconds int
	Retry          []retrier
	Catch          []catcher
	Next           string
	End            bool
	Default        string
	Choices        []map[string]any
	Parameters     map[string]any
	ResultPath     *string
	Branches       []designMachine
}

type designMachine struct {
	StartAt string
	States  map[string]designState
	// TimeoutSeconds is the execution timeout (issue 13, item 8; 0 in a branch).
	TimeoutSeconds int
}

// houseRetry is statemachine/README.md's table: the same list, in this order, on every Task of both machines.
var houseRetry = []retrier{
	{ErrorEquals: []string{"Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException", "Lambda.TooManyRequestsException"},
		IntervalSeconds: 1, BackoffRate: 2, MaxAttempts: 30, MaxDelaySeconds: 60, JitterStrategy: "FULL"},
	{ErrorEquals: []string{"Throttled"}, IntervalSeconds: 2, BackoffRate: 2, MaxAttempts: 30, MaxDelaySeconds: 60, JitterStrategy: "FULL"},
	{ErrorEquals: []string{"Transient"}, IntervalSeconds: 2, BackoffRate: 2, MaxAttempts: 6, MaxDelaySeconds: 30, JitterStrategy: "FULL"},
	{ErrorEquals: []string{"AssociationPending"}, IntervalSeconds: 2, BackoffRate: 1.5, MaxAttempts: 10, MaxDelaySeconds: 15, JitterStrategy: "FULL"},
	{ErrorEquals: []string{"GroupNotVisible"}, IntervalSeconds: 1, BackoffRate: 2, MaxAttempts: 8, MaxDelaySeconds: 10, JitterStrategy: "FULL"},
	{ErrorEquals: []string{"ProfileNotReady"}, IntervalSeconds: 2, BackoffRate: 2, MaxAttempts: 6, MaxDelaySeconds: 20, JitterStrategy: "FULL"},
}

// extraRetrier is a task's retrier besides the house list: Notify failure's timeout retrier (first: it has no
// Catch) and the release's wait for a running isolation on "Read incident record" (issue 12, case 7).
type extraRetrier struct {
	retrier
	first, required bool
}

var extraRetriers = map[string]extraRetrier{
	"Notify failure": {retrier{ErrorEquals: []string{"States.Timeout", "Sandbox.Timedout", "Lambda.Unknown"},
		IntervalSeconds: 2, BackoffRate: 2, MaxAttempts: 3, MaxDelaySeconds: 30, JitterStrategy: "FULL"}, true, true},
	"Read incident record": {retrier{ErrorEquals: []string{"IsolationInProgress"},
		IntervalSeconds: 5, BackoffRate: 1.5, MaxAttempts: 20, MaxDelaySeconds: 30, JitterStrategy: "FULL"}, false, true},
}

// integrationRetry replaces the house list on a Task of a Step Functions service integration (its Resource is
// arn:${Partition}:states:::SERVICE:ACTION), which raises the service's errors, never Lambda's nor the steps':
// "Queue instance settings" (issue 16) sends to the evidence queue.
var integrationRetry = map[string][]retrier{
	"arn:${Partition}:states:::sqs:sendMessage": {{ErrorEquals: []string{"SQS.AmazonSQSException", "SQS.SdkClientException", "States.Timeout"},
		IntervalSeconds: 1, BackoffRate: 2, MaxAttempts: 8, MaxDelaySeconds: 30, JitterStrategy: "FULL"}},
}

// neverRetried are the step errors no retry fixes (statemachine/README.md): no retrier may name them.
var neverRetried = []string{"InvalidEvent", "InvalidInput", "ConfigError", "InstanceNotFound", "InstanceNotIsolatable",
	"NotIsolated", "RecordMissing", "AWSError", "Superseded", "NotContained", "GroupMissing", "States.ALL"}

// extraCatchers are the catchers allowed before the States.ALL one: Apply's GroupMissing leads back to Ensure
// (issue 12, case 4).
var extraCatchers = map[string][]catcher{
	"Apply isolation security group": {{ErrorEquals: []string{"GroupMissing"}, ResultPath: ptr("$.groupMissing"), Next: "Ensure isolation security group"}},
}

func ptr(s string) *string { return &s }

func loadDesign(t *testing.T, definition string) designMachine {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, definition))
	if err != nil {
		t.Fatal(err) // a missing definition fails, never skips
	}
	var m designMachine
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// failureDesignProblems lists every departure from the failure design in a definition.
func failureDesignProblems(m designMachine) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	resumable := map[string]bool{}
	if r, ok := m.States["Resume at failed state"]; ok {
		var walk func(c map[string]any)
		walk = func(c map[string]any) {
			if s, ok := c["StringEquals"].(string); ok && c["Variable"] == "$.notify.resumeAt" {
				resumable[s] = true
			}
			if or, ok := c["Or"].([]any); ok {
				for _, x := range or {
					if cm, ok := x.(map[string]any); ok {
						walk(cm)
					}
				}
			}
		}
		for _, c := range r.Choices {
			walk(c)
		}
	} else {
		bad("no \"Resume at failed state\" Choice: a redrive cannot resume")
	}

	var check func(scope map[string]designState, inBranch bool, parallel string)
	check = func(scope map[string]designState, inBranch bool, parallel string) {
		for _, name := range sortedKeys(scope) {
			s := scope[name]
			switch s.Type {
			case "Task":
				checkTask(name, s, scope, inBranch, bad)
				// A redrive resumes at the failed state, or at the Parallel it is in.
				if name != "Notify failure" && !resumable[name] {
					bad("%s: a failure marker naming it is not a redrive target of \"Resume at failed state\"", name)
				}
				if inBranch && !resumable[parallel] {
					bad("%s: its Parallel %s is not a redrive target", name, parallel)
				}
			case "Parallel":
				if len(s.Catch) != 1 || !slices.Equal(s.Catch[0].ErrorEquals, []string{"States.ALL"}) {
					bad("Parallel %s: Catch %+v, want one States.ALL catcher", name, s.Catch)
				}
				for _, b := range s.Branches {
					check(b.States, true, name)
				}
			}
		}
	}
	check(m.States, false, "")
	return problems
}

func checkTask(name string, s designState, scope map[string]designState, inBranch bool, bad func(string, ...any)) {
	if s.TimeoutSeconds <= 0 {
		bad("%s: no TimeoutSeconds", name)
	}
	retry := s.Retry
	if x, ok := extraRetriers[name]; ok {
		i := slices.IndexFunc(retry, func(r retrier) bool { return cmp.Equal(r, x.retrier) })
		switch {
		case i < 0 && x.required:
			bad("%s: missing its retrier %+v", name, x.retrier)
		case i > 0 && x.first:
			bad("%s: its retrier for %v must come first (only the first matching retrier is used)", name, x.ErrorEquals)
		}
		if i >= 0 {
			retry = slices.Delete(slices.Clone(retry), i, i+1)
		}
	}
	want, list := houseRetry, "the house list"
	if strings.Contains(s.Resource, ":states:::") {
		want, list = integrationRetry[s.Resource], "its integration's list"
		if want == nil {
			bad("%s: a service integration (%s) with no retry list in integrationRetry", name, s.Resource)
		}
	}
	if diff := cmp.Diff(want, retry); diff != "" {
		bad("%s: Retry is not %s (-want +got):\n%s", name, list, diff)
	}
	for _, r := range s.Retry {
		for _, e := range r.ErrorEquals {
			if slices.Contains(neverRetried, e) {
				bad("%s: retries %s, which no retry fixes", name, e)
			}
		}
	}

	if name == "Notify failure" {
		// It fails the execution on purpose (IsolationFailed / ReleaseFailed): the redrive point.
		if len(s.Catch) != 0 {
			bad("Notify failure has a Catch: the execution would not fail there and could not be redriven")
		}
		return
	}
	extra := extraCatchers[name]
	if len(s.Catch) != len(extra)+1 {
		bad("%s: Catch %s, want %d extra catcher(s) then one States.ALL", name, catchers(s.Catch), len(extra))
		return
	}
	if diff := cmp.Diff(extra, s.Catch[:len(extra)], cmpopts.EquateEmpty()); diff != "" {
		bad("%s: catchers before States.ALL (-want +got):\n%s", name, diff)
	}
	all := s.Catch[len(extra)]
	if !slices.Equal(all.ErrorEquals, []string{"States.ALL"}) {
		bad("%s: last catcher %v, want exactly [States.ALL]: any other error (a timeout, a Lambda error) would fail the execution unnotified", name, all.ErrorEquals)
		return
	}
	// The first state's input is the execution input, which need not be an object: no ResultPath there.
	first := name == "Validate and record" || name == "Read incident record"
	switch {
	case first && all.ResultPath != nil:
		bad("%s: Catch ResultPath %q, want none (the execution input need not be an object)", name, *all.ResultPath)
	case !first && (all.ResultPath == nil || *all.ResultPath != "$.error"):
		bad("%s: Catch ResultPath %v, want $.error (the task's input is kept for the marker and the notification)", name, all.ResultPath)
	}
	// The catcher leads to a marker naming this task (through Choices' defaults, as Snapshot volumes' does).
	target, seen := all.Next, map[string]bool{}
	for {
		t, ok := scope[target]
		if !ok || seen[target] {
			bad("%s: Catch leads to %q, not a failure marker", name, target)
			return
		}
		seen[target] = true
		if t.Type == "Choice" {
			target = t.Default
			continue
		}
		if t.Type != "Pass" || markerState(t) != name {
			bad("%s: Catch leads to %s (%s), whose marker names %q, not the task", name, target, t.Type, markerState(t))
			return
		}
		if inBranch && !(t.End && t.ResultPath != nil && *t.ResultPath == "$.failure") {
			bad("%s: its marker %s must end the branch normally with ResultPath $.failure, so no other branch is aborted", name, target)
		}
		return
	}
}

// markerState is the "state" a failure marker Pass records (in Parameters, or in Parameters.failure).
func markerState(p designState) string {
	if s, ok := p.Parameters["state"].(string); ok {
		return s
	}
	if f, ok := p.Parameters["failure"].(map[string]any); ok {
		s, _ := f["state"].(string)
		return s
	}
	return ""
}

func catchers(cs []catcher) string {
	var out []string
	for _, c := range cs {
		out = append(out, fmt.Sprintf("%v->%s", c.ErrorEquals, c.Next))
	}
	return "[" + strings.Join(out, " ") + "]"
}

func sortedKeys(m map[string]designState) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func TestFailureDesignOfBothDefinitions(t *testing.T) {
	for _, def := range []string{"statemachine/isolation.asl.json", "statemachine/release.asl.json"} {
		t.Run(filepath.Base(def), func(t *testing.T) {
			m := loadDesign(t, def)
			tasks := 0
			var count func(d designMachine)
			count = func(d designMachine) {
				for _, s := range d.States {
					if s.Type == "Task" {
						tasks++
					}
					for _, b := range s.Branches {
						count(b)
					}
				}
			}
			count(m)
			if tasks < 7 {
				t.Fatalf("%d Task states: the definition did not parse as expected", tasks)
			}
			for _, p := range failureDesignProblems(m) {
				t.Error(p)
			}
		})
	}
}

// The checker finds each kind of departure (each mutation of the real definition must be reported).
func TestFailureDesignCheckerFindsMistakes(t *testing.T) {
	mutate := func(f func(m designMachine)) designMachine {
		m := loadDesign(t, "statemachine/isolation.asl.json")
		f(m)
		return m
	}
	branchState := func(m designMachine, parallel string, branch int, name string, f func(s *designState)) {
		s := m.States[parallel].Branches[branch].States[name]
		f(&s)
		m.States[parallel].Branches[branch].States[name] = s
	}
	state := func(m designMachine, name string, f func(s *designState)) {
		s := m.States[name]
		f(&s)
		m.States[name] = s
	}
	cases := map[string]struct {
		m    designMachine
		want string
	}{
		"a retrier removed": {mutate(func(m designMachine) {
			state(m, "Snapshot volumes", func(s *designState) { s.Retry = s.Retry[1:] })
		}), "Snapshot volumes: Retry is not the house list"},
		"a service integration with the Lambda house list": {mutate(func(m designMachine) {
			state(m, "Snapshot volumes", func(s *designState) { s.Resource = "arn:${Partition}:states:::sqs:sendMessage" })
		}), "Snapshot volumes: Retry is not its integration's list"},
		"a service integration nobody listed": {mutate(func(m designMachine) {
			state(m, "Snapshot volumes", func(s *designState) { s.Resource = "arn:${Partition}:states:::sns:publish" })
		}), "with no retry list in integrationRetry"},
		"a retrier's attempts changed": {mutate(func(m designMachine) {
			branchState(m, "Contain", 1, "Attach isolation profile", func(s *designState) {
				s.Retry = slices.Clone(s.Retry)
				s.Retry[3].MaxAttempts = 1
			})
		}), "Attach isolation profile: Retry is not the house list"},
		"GroupMissing retried": {mutate(func(m designMachine) {
			branchState(m, "Contain", 0, "Apply isolation security group", func(s *designState) {
				s.Retry = append(slices.Clone(s.Retry), retrier{ErrorEquals: []string{"GroupMissing"}, MaxAttempts: 3})
			})
		}), "retries GroupMissing"},
		"a Catch narrowed to States.TaskFailed (a timeout escapes)": {mutate(func(m designMachine) {
			branchState(m, "Contain", 0, "Apply isolation security group", func(s *designState) {
				s.Catch = slices.Clone(s.Catch)
				s.Catch[1].ErrorEquals = []string{"States.TaskFailed"}
			})
		}), "want exactly [States.ALL]"},
		"a Catch removed": {mutate(func(m designMachine) {
			state(m, "Verify containment", func(s *designState) { s.Catch = nil })
		}), "Verify containment: Catch []"},
		"no TimeoutSeconds": {mutate(func(m designMachine) {
			branchState(m, "Contain", 2, "Preserve evidence", func(s *designState) { s.TimeoutSeconds = 0 })
		}), "Preserve evidence: no TimeoutSeconds"},
		"a marker naming another task": {mutate(func(m designMachine) {
			state(m, "Verify containment failed", func(s *designState) { s.Parameters = map[string]any{"state": "Snapshot volumes"} })
		}), "whose marker names \"Snapshot volumes\""},
		"a branch marker that does not end the branch": {mutate(func(m designMachine) {
			branchState(m, "Contain", 1, "Revoke credentials failed", func(s *designState) { s.End = false })
		}), "must end the branch normally"},
		"Notify failure's timeout retrier removed": {mutate(func(m designMachine) {
			state(m, "Notify failure", func(s *designState) { s.Retry = s.Retry[1:] })
		}), "Notify failure: missing its retrier"},
		"the release's wait for a running isolation removed": {func() designMachine {
			m := loadDesign(t, "statemachine/release.asl.json")
			s := m.States["Read incident record"]
			s.Retry = slices.DeleteFunc(slices.Clone(s.Retry), func(r retrier) bool { return slices.Contains(r.ErrorEquals, "IsolationInProgress") })
			m.States["Read incident record"] = s
			return m
		}(), "Read incident record: missing its retrier"},
		"Notify failure caught": {mutate(func(m designMachine) {
			state(m, "Notify failure", func(s *designState) {
				s.Catch = []catcher{{ErrorEquals: []string{"States.ALL"}, Next: "Isolation failed"}}
			})
		}), "Notify failure has a Catch"},
		"a task that is no redrive target": {mutate(func(m designMachine) {
			state(m, "Resume at failed state", func(s *designState) {
				s.Choices = slices.DeleteFunc(slices.Clone(s.Choices), func(c map[string]any) bool { return c["StringEquals"] == "Verify containment" })
			})
		}), "Verify containment: a failure marker naming it is not a redrive target"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			problems := failureDesignProblems(tc.m)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Errorf("no problem containing %q; got:\n%s", tc.want, strings.Join(problems, "\n"))
			}
		})
	}
}
