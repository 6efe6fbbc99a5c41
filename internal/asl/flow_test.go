package asl_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ec2-isolation/ec2-isolation/internal/asl"
	"github.com/google/go-cmp/cmp"
)

func TestChoiceRules(t *testing.T) {
	tests := []struct {
		name  string
		rule  string // one rule, without Next
		input string
		want  string // "Yes", "No" (Default), or "" for a States.Runtime failure
	}{
		{"StringEquals", `"Variable":"$.s","StringEquals":"true"`, `{"s":"true"}`, "Yes"},
		{"StringEquals other value", `"Variable":"$.s","StringEquals":"true"`, `{"s":"True"}`, "No"},
		{"StringEquals on a number is false", `"Variable":"$.s","StringEquals":"1"`, `{"s":1}`, "No"},
		{"StringEqualsPath", `"Variable":"$.a","StringEqualsPath":"$.b"`, `{"a":"x","b":"x"}`, "Yes"},
		{"StringEqualsPath differs", `"Variable":"$.a","StringEqualsPath":"$.b"`, `{"a":"x","b":"y"}`, "No"},
		{"StringEqualsPath missing operand", `"Variable":"$.a","StringEqualsPath":"$.b"`, `{"a":"x"}`, ""},
		{"NumericEquals", `"Variable":"$.n","NumericEquals":2`, `{"n":2.0}`, "Yes"},
		{"NumericEquals on a string is false", `"Variable":"$.n","NumericEquals":2`, `{"n":"2"}`, "No"},
		{"NumericGreaterThan", `"Variable":"$.n","NumericGreaterThan":1`, `{"n":1.5}`, "Yes"},
		{"NumericGreaterThan equal", `"Variable":"$.n","NumericGreaterThan":1`, `{"n":1}`, "No"},
		{"NumericGreaterThanPath", `"Variable":"$$.Execution.RedriveCount","NumericGreaterThanPath":"$.count"`, `{"count":0}`, "No"},
		{"NumericGreaterThanPath true", `"Variable":"$.a","NumericGreaterThanPath":"$.b"`, `{"a":3,"b":2}`, "Yes"},
		{"BooleanEquals", `"Variable":"$.b","BooleanEquals":false`, `{"b":false}`, "Yes"},
		{"BooleanEquals on a string is false", `"Variable":"$.b","BooleanEquals":true`, `{"b":"true"}`, "No"},
		{"IsPresent true", `"Variable":"$.a.b","IsPresent":true`, `{"a":{"b":null}}`, "Yes"},
		{"IsPresent on a missing path", `"Variable":"$.a.b","IsPresent":true`, `{"a":{}}`, "No"},
		{"IsPresent false", `"Variable":"$.a[3]","IsPresent":false`, `{"a":[1]}`, "Yes"},
		{"IsNull", `"Variable":"$.a","IsNull":true`, `{"a":null}`, "Yes"},
		{"IsNull on a value", `"Variable":"$.a","IsNull":true`, `{"a":0}`, "No"},
		{"IsString", `"Variable":"$.a","IsString":true`, `{"a":""}`, "Yes"},
		{"IsString false", `"Variable":"$.a","IsString":false`, `{"a":{}}`, "Yes"},
		{"missing Variable is an error", `"Variable":"$.missing","StringEquals":"x"`, `{}`, ""},
		{"missing Variable for IsNull is an error", `"Variable":"$.missing","IsNull":true`, `{}`, ""},
		{"And", `"And":[{"Variable":"$.a","IsPresent":true},{"Variable":"$.a","StringEquals":"x"}]`, `{"a":"x"}`, "Yes"},
		{"And stops at the first false (guards a missing field)", `"And":[{"Variable":"$.a","IsPresent":true},{"Variable":"$.a","StringEquals":"x"}]`, `{}`, "No"},
		{"Or", `"Or":[{"Variable":"$.a","StringEquals":"x"},{"Variable":"$.a","StringEquals":"y"}]`, `{"a":"y"}`, "Yes"},
		{"Or none", `"Or":[{"Variable":"$.a","StringEquals":"x"},{"Variable":"$.a","StringEquals":"y"}]`, `{"a":"z"}`, "No"},
		{"Not", `"Not":{"Variable":"$.failure","IsNull":true}`, `{"failure":{"state":"X"}}`, "Yes"},
		{"nested And in Not", `"Not":{"And":[{"Variable":"$.a","BooleanEquals":true},{"Variable":"$.b","BooleanEquals":true}]}`, `{"a":true,"b":false}`, "Yes"},
		{"context Variable", `"Variable":"$$.Execution.Input.a","StringEquals":"x"`, `{"a":"x"}`, "Yes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			def := `{"StartAt":"C","States":{
				"C":{"Type":"Choice","Choices":[{` + tc.rule + `,"Next":"Yes"}],"Default":"No"},
				"Yes":{"Type":"Pass","Result":"Yes","End":true},
				"No":{"Type":"Pass","Result":"No","End":true}}}`
			e, _ := run(t, def, tc.input, newInvoker(nil))
			if tc.want == "" {
				if e.Status != asl.StatusFailed || e.Error != asl.ErrorRuntime || !strings.Contains(e.Cause, "invalid path") {
					t.Fatalf("status %s error %s cause %q, want FAILED States.Runtime invalid path", e.Status, e.Error, e.Cause)
				}
				return
			}
			if e.Status != asl.StatusSucceeded {
				t.Fatalf("status %s: %s: %s", e.Status, e.Error, e.Cause)
			}
			if got := decode(t, e.Output); got != tc.want {
				t.Errorf("went to %v, want %s", got, tc.want)
			}
		})
	}
}

func TestChoiceOrderDefaultAndNoMatch(t *testing.T) {
	def := `{"StartAt":"C","States":{
		"C":{"Type":"Choice","InputPath":"$.in","OutputPath":"$.keep","Choices":[
			{"Variable":"$.n","NumericGreaterThan":10,"Next":"Big"},
			{"Variable":"$.n","NumericGreaterThan":0,"Next":"Small"}]},
		"Big":{"Type":"Pass","Result":"Big","ResultPath":"$.route","End":true},
		"Small":{"Type":"Pass","Result":"Small","ResultPath":"$.route","End":true}}}`
	e, _ := run(t, def, `{"in":{"n":20,"keep":{"k":1}}}`, newInvoker(nil))
	if diff := cmp.Diff(js(t, `{"k":1,"route":"Big"}`), decode(t, e.Output)); diff != "" {
		t.Errorf("first matching rule, InputPath and OutputPath (-want +got):\n%s", diff)
	}
	e, _ = run(t, def, `{"in":{"n":-1,"keep":{}}}`, newInvoker(nil))
	if e.Status != asl.StatusFailed || e.Error != asl.ErrorRuntime || !strings.Contains(e.Cause, "NoChoiceMatched") {
		t.Errorf("no match without Default: status %s error %s cause %q", e.Status, e.Error, e.Cause)
	}
}

const parallelDef = `{"StartAt":"Par","States":{
	"Par":{"Type":"Parallel","InputPath":"$.in","ResultPath":"$.results","Next":"Done",
		"Branches":[
			{"StartAt":"A1","States":{
				"A1":{"Type":"Task","Resource":"a1","ResultPath":"$.a1","Next":"A2"},
				"A2":{"Type":"Task","Resource":"a2","ResultPath":"$.a2","End":true}}},
			{"StartAt":"B1","States":{
				"B1":{"Type":"Task","Resource":"b1","ResultPath":"$.b1","Next":"B2"},
				"B2":{"Type":"Task","Resource":"b2","ResultPath":"$.b2","End":true}}}],
		"Catch":[{"ErrorEquals":["Caught"],"ResultPath":"$.error","Next":"Handled"}]},
	"Done":{"Type":"Succeed"},
	"Handled":{"Type":"Pass","Result":"handled","ResultPath":"$.route","End":true}}}`

func TestParallelSuccess(t *testing.T) {
	inv := newInvoker(map[string]taskFunc{"a1": returns("A1"), "a2": returns("A2"), "b1": returns("B1"), "b2": echo})
	e, _ := run(t, parallelDef, `{"in":{"id":"i-1"},"other":1}`, inv)
	if e.Status != asl.StatusSucceeded {
		t.Fatalf("status %s: %s: %s", e.Status, e.Error, e.Cause)
	}
	// Each branch got its own copy of the effective input: B2 sees b1 but not a1.
	want := js(t, `{"in":{"id":"i-1"},"other":1,"results":[{"id":"i-1","a1":"A1","a2":"A2"},{"id":"i-1","b1":"B1","b2":{"id":"i-1","b1":"B1"}}]}`)
	if diff := cmp.Diff(want, decode(t, e.Output)); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	// Branch events chain from ParallelStateStarted, each branch separately.
	events := e.History.Events()
	var started int64
	byID := map[int64]asl.Event{}
	for _, ev := range events {
		byID[ev.ID] = ev
		if ev.Type == asl.ParallelStateStarted {
			started = ev.ID
		}
	}
	for _, ev := range events {
		if ev.Type == asl.TaskStateEntered && (ev.State == "A1" || ev.State == "B1") && ev.PreviousEventID != started {
			t.Errorf("%s entered after event %d, want ParallelStateStarted (%d)", ev.State, ev.PreviousEventID, started)
		}
		if ev.Type == asl.TaskStateEntered && ev.State == "A2" {
			if prev := byID[ev.PreviousEventID]; prev.State != "A1" || prev.Type != asl.TaskStateExited {
				t.Errorf("A2 entered after %+v, want A1's TaskStateExited", prev)
			}
		}
	}
}

// A failing branch fails the Parallel state with its error; the other branch is cancelled; the Parallel's Catch
// then applies.
func TestParallelFailureCancelsOtherBranches(t *testing.T) {
	var mu sync.Mutex
	var b1Ended error
	b1Started := make(chan struct{})
	b1 := func(ctx context.Context, _ any, _ int) (any, error) {
		close(b1Started)
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Second): // not cancelled: let the test fail instead of hanging
		}
		mu.Lock()
		b1Ended = ctx.Err()
		mu.Unlock()
		return nil, errors.New("b1 stopped")
	}
	a2 := func(context.Context, any, int) (any, error) {
		<-b1Started // fail only once the other branch is busy
		return nil, &asl.TaskError{Name: "Caught", Cause: "a2 broke"}
	}
	inv := newInvoker(map[string]taskFunc{"a1": returns("A1"), "a2": a2, "b1": b1, "b2": echo})
	e, _ := run(t, parallelDef, `{"in":{"id":"i-1"}}`, inv)
	if e.Status != asl.StatusSucceeded {
		t.Fatalf("status %s: %s: %s", e.Status, e.Error, e.Cause)
	}
	want := js(t, `{"in":{"id":"i-1"},"error":{"Error":"Caught","Cause":"a2 broke"},"route":"handled"}`)
	if diff := cmp.Diff(want, decode(t, e.Output)); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	mu.Lock()
	if !errors.Is(b1Ended, context.Canceled) {
		t.Errorf("the other branch's task context ended with %v, want canceled", b1Ended)
	}
	mu.Unlock()
	if inv.count("b2") != 0 {
		t.Error("the cancelled branch went on to B2")
	}
	statuses := map[string]asl.RunStatus{}
	for _, r := range e.History.Summary() {
		statuses[r.Name] = r.Status
	}
	wantStatus := map[string]asl.RunStatus{"Par": asl.RunCaught, "A1": asl.RunSucceeded, "A2": asl.RunFailed,
		"B1": asl.RunAborted, "Handled": asl.RunSucceeded}
	if diff := cmp.Diff(wantStatus, statuses); diff != "" {
		t.Errorf("summary statuses (-want +got):\n%s", diff)
	}
}

// A Parallel state's Retry runs every branch again.
func TestParallelRetry(t *testing.T) {
	def := `{"StartAt":"Par","States":{"Par":{"Type":"Parallel","End":true,
		"Retry":[{"ErrorEquals":["Flaky"],"IntervalSeconds":3}],
		"ResultSelector":{"ids.$":"$[*].id","first.$":"$[0]"},
		"Branches":[
			{"StartAt":"A","States":{"A":{"Type":"Task","Resource":"a","End":true}}},
			{"StartAt":"B","States":{"B":{"Type":"Task","Resource":"b","End":true}}}]}}}`
	aCalled := make(chan struct{}, 2)
	a := func(context.Context, any, int) (any, error) {
		aCalled <- struct{}{}
		return map[string]any{"id": "a"}, nil
	}
	flakyOnce := func(_ context.Context, _ any, call int) (any, error) {
		if call == 0 {
			<-aCalled // fail once the other branch has run its task
			return nil, &asl.TaskError{Name: "Flaky"}
		}
		return map[string]any{"id": "b"}, nil
	}
	inv := newInvoker(map[string]taskFunc{"a": a, "b": flakyOnce})
	e, sl := run(t, def, `{}`, inv)
	if e.Status != asl.StatusSucceeded {
		t.Fatalf("status %s: %s: %s", e.Status, e.Error, e.Cause)
	}
	if diff := cmp.Diff(js(t, `{"ids":["a","b"],"first":{"id":"a"}}`), decode(t, e.Output)); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(secs(3), sl.waits()); diff != "" {
		t.Errorf("waits (-want +got):\n%s", diff)
	}
	if inv.count("a") != 2 || inv.count("b") != 2 {
		t.Errorf("calls a=%d b=%d, want 2 each", inv.count("a"), inv.count("b"))
	}
}

// An uncaught branch error fails the execution with the branch's error name and cause.
func TestParallelUncaughtFailure(t *testing.T) {
	inv := newInvoker(map[string]taskFunc{"a1": returns("A1"), "a2": returns("A2"), "b1": failsWith("Throttled", "slow down"), "b2": echo})
	e, _ := run(t, parallelDef, `{"in":{}}`, inv)
	if e.Status != asl.StatusFailed || e.Error != "Throttled" || e.Cause != "slow down" {
		t.Fatalf("status %s error %s cause %s", e.Status, e.Error, e.Cause)
	}
	types := eventTypes(e)
	if types[len(types)-1] != asl.ExecutionFailed || !containsType(types, asl.ParallelStateFailed) {
		t.Errorf("events %v", types)
	}
}

func containsType(types []asl.EventType, t asl.EventType) bool {
	for _, x := range types {
		if x == t {
			return true
		}
	}
	return false
}

func TestHistoryAndSummary(t *testing.T) {
	def := `{"StartAt":"T","States":{
		"T":{"Type":"Task","Resource":"r","Retry":[{"ErrorEquals":["E"],"IntervalSeconds":2}],
			"Catch":[{"ErrorEquals":["States.ALL"],"ResultPath":"$.error","Next":"Failed"}],"End":true},
		"Failed":{"Type":"Pass","Parameters":{"state":"T","error.$":"$.error.Error"},"Next":"Stop"},
		"Stop":{"Type":"Fail","Error":"IsolationFailed","Cause":"T failed"}}}`
	inv := newInvoker(map[string]taskFunc{"r": sequence("E", "Fatal")})
	e, _ := run(t, def, `{"x":1}`, inv)
	want := []asl.EventType{asl.ExecutionStarted,
		asl.TaskStateEntered, asl.TaskScheduled, asl.TaskStarted, asl.TaskFailed,
		asl.TaskScheduled, asl.TaskStarted, asl.TaskFailed,
		asl.PassStateEntered, asl.PassStateExited, asl.FailStateEntered, asl.ExecutionFailed}
	if diff := cmp.Diff(want, eventTypes(e)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	events := e.History.Events()
	for i, ev := range events {
		if ev.ID != int64(i+1) || (i > 0 && ev.PreviousEventID != int64(i)) || ev.Timestamp.IsZero() {
			t.Errorf("event %d: id %d previous %d time %v", i, ev.ID, ev.PreviousEventID, ev.Timestamp)
		}
	}
	if f := events[7]; f.Error != "Fatal" || f.Cause != "attempt 1" || f.RetryCount != 1 || f.Resource != "r" {
		t.Errorf("second TaskFailed: %+v", f)
	}
	type row struct {
		Name    string
		Status  asl.RunStatus
		Retries int
		Error   string
		Output  any
	}
	var got []row
	for _, r := range e.History.Summary() {
		if r.Duration <= 0 || r.Start.IsZero() {
			t.Errorf("%s: start %v duration %v", r.Name, r.Start, r.Duration)
		}
		got = append(got, row{r.Name, r.Status, r.Retries, r.Error, decode(t, r.Output)})
	}
	wantRows := []row{
		{"T", asl.RunCaught, 1, "Fatal", js(t, `{"x":1,"error":{"Error":"Fatal","Cause":"attempt 1"}}`)},
		{"Failed", asl.RunSucceeded, 0, "", js(t, `{"state":"T","error":"Fatal"}`)},
		{"Stop", asl.RunFailed, 0, "IsolationFailed", nil},
	}
	if diff := cmp.Diff(wantRows, got); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
}

// States.Runtime in a branch fails the Parallel state, and its States.ALL catcher does not catch it.
func TestParallelRuntimeErrorIsNotCaught(t *testing.T) {
	def := `{"StartAt":"Par","States":{"Par":{"Type":"Parallel","Next":"Done",
		"Retry":[{"ErrorEquals":["States.ALL"]}],
		"Catch":[{"ErrorEquals":["States.ALL"],"Next":"Done"}],
		"Branches":[{"StartAt":"Bad","States":{"Bad":{"Type":"Pass","InputPath":"$.missing","End":true}}}]},
		"Done":{"Type":"Succeed"}}}`
	e, sl := run(t, def, `{}`, newInvoker(nil))
	if e.Status != asl.StatusFailed || e.Error != asl.ErrorRuntime {
		t.Fatalf("status %s error %s (%s), want FAILED States.Runtime", e.Status, e.Error, e.Cause)
	}
	if len(sl.waits()) != 0 {
		t.Errorf("States.Runtime was retried: waits %v", sl.waits())
	}
	// A task may still report an error named States.Runtime itself; it is terminal too.
	e, _ = run(t, `{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"r","Catch":[{"ErrorEquals":["States.ALL"],"Next":"Done"}],"End":true},"Done":{"Type":"Succeed"}}}`,
		`{}`, newInvoker(map[string]taskFunc{"r": failsWith(asl.ErrorRuntime, "from the task")}))
	if e.Status != asl.StatusFailed || e.Error != asl.ErrorRuntime {
		t.Errorf("task-reported States.Runtime: status %s error %s", e.Status, e.Error)
	}
}
