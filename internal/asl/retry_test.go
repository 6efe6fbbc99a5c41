package asl_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/ec2-isolation/ec2-isolation/internal/asl"
	"github.com/google/go-cmp/cmp"
)

// sequence fails with the given error names in turn, then succeeds with "ok".
func sequence(names ...string) taskFunc {
	return func(_ context.Context, _ any, call int) (any, error) {
		if call < len(names) {
			return nil, &asl.TaskError{Name: names[call], Cause: fmt.Sprintf("attempt %d", call)}
		}
		return "ok", nil
	}
}

func TestRetryBackoff(t *testing.T) {
	tests := []struct {
		name      string
		retry     string
		errors    []string // errors of successive attempts, then success
		wantWaits []time.Duration
		wantCalls int
		wantState asl.Status
		wantError string
	}{
		{
			// Developer guide: "makes 2 retry attempts after waiting for 3 and 4.5 seconds".
			name:      "documented example",
			retry:     `[{"ErrorEquals":["States.Timeout"],"IntervalSeconds":3,"MaxAttempts":2,"BackoffRate":1.5}]`,
			errors:    []string{"States.Timeout", "States.Timeout", "States.Timeout"},
			wantWaits: secs(3, 4.5), wantCalls: 3, wantState: asl.StatusFailed, wantError: "States.Timeout",
		},
		{
			name:      "defaults: 1s, backoff 2, 3 attempts",
			retry:     `[{"ErrorEquals":["E"]}]`,
			errors:    []string{"E", "E", "E", "E"},
			wantWaits: secs(1, 2, 4), wantCalls: 4, wantState: asl.StatusFailed, wantError: "E",
		},
		{
			name:      "succeeds on a retry",
			retry:     `[{"ErrorEquals":["E"],"IntervalSeconds":2}]`,
			errors:    []string{"E", "E"},
			wantWaits: secs(2, 4), wantCalls: 3, wantState: asl.StatusSucceeded,
		},
		{
			name:      "MaxDelaySeconds caps the wait",
			retry:     `[{"ErrorEquals":["E"],"IntervalSeconds":1,"BackoffRate":2,"MaxAttempts":6,"MaxDelaySeconds":5}]`,
			errors:    []string{"E", "E", "E", "E", "E", "E"},
			wantWaits: secs(1, 2, 4, 5, 5, 5), wantCalls: 7, wantState: asl.StatusSucceeded,
		},
		{
			name:      "MaxAttempts 0 never retries",
			retry:     `[{"ErrorEquals":["E"],"MaxAttempts":0},{"ErrorEquals":["States.ALL"]}]`,
			errors:    []string{"E"},
			wantWaits: nil, wantCalls: 1, wantState: asl.StatusFailed, wantError: "E",
		},
		{
			name:      "an unmatched error is not retried",
			retry:     `[{"ErrorEquals":["Other"]}]`,
			errors:    []string{"E"},
			wantWaits: nil, wantCalls: 1, wantState: asl.StatusFailed, wantError: "E",
		},
		{
			name:      "States.TaskFailed matches a named error",
			retry:     `[{"ErrorEquals":["States.TaskFailed"],"MaxAttempts":1}]`,
			errors:    []string{"InstanceNotFound"},
			wantWaits: secs(1), wantCalls: 2, wantState: asl.StatusSucceeded,
		},
		{
			name:      "States.TaskFailed does not match States.Timeout",
			retry:     `[{"ErrorEquals":["States.TaskFailed"]}]`,
			errors:    []string{"States.Timeout"},
			wantWaits: nil, wantCalls: 1, wantState: asl.StatusFailed, wantError: "States.Timeout",
		},
		{
			name:      "each retrier has its own attempt count",
			retry:     `[{"ErrorEquals":["X"]},{"ErrorEquals":["Y"],"MaxAttempts":1,"IntervalSeconds":7}]`,
			errors:    []string{"X", "X", "Y", "Y"},
			wantWaits: secs(1, 2, 7), wantCalls: 4, wantState: asl.StatusFailed, wantError: "Y",
		},
		{
			name:      "first matching retrier only, even when exhausted",
			retry:     `[{"ErrorEquals":["E"],"MaxAttempts":1},{"ErrorEquals":["States.ALL"],"MaxAttempts":5}]`,
			errors:    []string{"E", "E"},
			wantWaits: secs(1), wantCalls: 2, wantState: asl.StatusFailed, wantError: "E",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inv := newInvoker(map[string]taskFunc{"r": sequence(tc.errors...)})
			e, sl := run(t, `{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"r","Retry":`+tc.retry+`,"End":true}}}`, `{}`, inv)
			if e.Status != tc.wantState || e.Error != tc.wantError {
				t.Errorf("status %s error %q, want %s %q", e.Status, e.Error, tc.wantState, tc.wantError)
			}
			if diff := cmp.Diff(tc.wantWaits, sl.waits()); diff != "" {
				t.Errorf("waits (-want +got):\n%s", diff)
			}
			if got := inv.count("r"); got != tc.wantCalls {
				t.Errorf("%d calls, want %d", got, tc.wantCalls)
			}
			sum := e.History.Summary()
			if len(sum) != 1 || sum[0].Retries != tc.wantCalls-1 {
				t.Errorf("summary %+v, want 1 row with %d retries", sum, tc.wantCalls-1)
			}
		})
	}
}

// The ASL specification's "complex retry" example (states-language.net, "Retrying after error"): errors ErrorA,
// ErrorB, ErrorC, ErrorB wait 1, 2 and 5 seconds; the fourth error matches the first retrier, whose MaxAttempts
// of two is used up (its count covers every error it matched), so the Catch takes over.
func TestRetriersCountSeparately(t *testing.T) {
	def := `{"StartAt":"X","States":{
		"X":{"Type":"Task","Resource":"arn:aws:states:us-east-1:123456789012:task:X","Next":"Y",
			"Retry":[{"ErrorEquals":["ErrorA","ErrorB"],"IntervalSeconds":1,"BackoffRate":2.0,"MaxAttempts":2},
			         {"ErrorEquals":["ErrorC"],"IntervalSeconds":5}],
			"Catch":[{"ErrorEquals":["States.ALL"],"Next":"Z"}]},
		"Y":{"Type":"Pass","End":true},
		"Z":{"Type":"Pass","Result":"caught","ResultPath":"$.outcome","End":true}}}`
	inv := newInvoker(map[string]taskFunc{"arn:aws:states:us-east-1:123456789012:task:X": sequence("ErrorA", "ErrorB", "ErrorC", "ErrorB")})
	e, sl := run(t, def, `{}`, inv)
	if diff := cmp.Diff(secs(1, 2, 5), sl.waits()); diff != "" {
		t.Errorf("waits (-want +got):\n%s", diff)
	}
	want := js(t, `{"Error":"ErrorB","Cause":"attempt 3","outcome":"caught"}`)
	if diff := cmp.Diff(want, decode(t, e.Output)); e.Status != asl.StatusSucceeded || diff != "" {
		t.Errorf("status %s, output (-want +got):\n%s", e.Status, diff)
	}
}

func TestFullJitter(t *testing.T) {
	def := `{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"r","End":true,
		"Retry":[{"ErrorEquals":["E"],"IntervalSeconds":2,"BackoffRate":2,"MaxAttempts":3,"MaxDelaySeconds":5,"JitterStrategy":"FULL"}]}}}`
	m := mustLoad(t, def)

	t.Run("a fraction of the capped backoff", func(t *testing.T) {
		fractions := []float64{0.5, 0.25, 0.9}
		sl := &recSleeper{}
		o := testOptions(sl)
		o.Rand = func() float64 { f := fractions[0]; fractions = fractions[1:]; return f }
		inv := newInvoker(map[string]taskFunc{"r": sequence("E", "E", "E")})
		e := m.Start(testCtx(t), "j", []byte(`{}`), inv, o)
		if e.Status != asl.StatusSucceeded {
			t.Fatalf("status %s %s", e.Status, e.Error)
		}
		// Backoffs 2, 4, min(8, 5)=5.
		if diff := cmp.Diff(secs(0.5*2, 0.25*4, 0.9*5), sl.waits()); diff != "" {
			t.Errorf("waits (-want +got):\n%s", diff)
		}
	})

	t.Run("within [0, backoff] for any random value", func(t *testing.T) {
		def := `{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"r","End":true,
			"Retry":[{"ErrorEquals":["E"],"IntervalSeconds":1,"BackoffRate":2,"MaxAttempts":30,"MaxDelaySeconds":60,"JitterStrategy":"FULL"}]}}}`
		sl := &recSleeper{}
		o := testOptions(sl)
		o.Rand = rand.New(rand.NewPCG(1, 2)).Float64
		errs := make([]string, 30)
		for i := range errs {
			errs[i] = "E"
		}
		e := mustLoad(t, def).Start(testCtx(t), "j", []byte(`{}`), newInvoker(map[string]taskFunc{"r": sequence(errs...)}), o)
		if e.Status != asl.StatusSucceeded {
			t.Fatalf("status %s %s", e.Status, e.Error)
		}
		waits := sl.waits()
		if len(waits) != 30 {
			t.Fatalf("%d waits, want 30", len(waits))
		}
		distinct := map[time.Duration]bool{}
		for i, w := range waits {
			upper := time.Duration(min(float64(int64(1)<<i), 60)) * time.Second
			if w < 0 || w > upper {
				t.Errorf("wait %d = %v, outside [0, %v]", i, w, upper)
			}
			distinct[w] = true
		}
		if len(distinct) < 20 {
			t.Errorf("only %d distinct waits out of 30: jitter is not applied", len(distinct))
		}
	})
}

// $$.State.RetryCount is the number of retries so far, visible to the task's Parameters on each attempt.
func TestRetryCountInContext(t *testing.T) {
	def := `{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"r","Parameters":{"attempt.$":"$$.State.RetryCount","state.$":"$$.State.Name"},
		"Retry":[{"ErrorEquals":["E"]}],"End":true}}}`
	inv := newInvoker(map[string]taskFunc{"r": sequence("E", "E")})
	e, _ := run(t, def, `{}`, inv)
	if e.Status != asl.StatusSucceeded {
		t.Fatalf("status %s", e.Status)
	}
	want := []any{js(t, `{"attempt":0,"state":"T"}`), js(t, `{"attempt":1,"state":"T"}`), js(t, `{"attempt":2,"state":"T"}`)}
	if diff := cmp.Diff(want, inv.inputs("r")); diff != "" {
		t.Errorf("task inputs (-want +got):\n%s", diff)
	}
	var scheduled []int
	for _, ev := range e.History.Events() {
		if ev.Type == asl.TaskScheduled {
			scheduled = append(scheduled, ev.RetryCount)
		}
	}
	if diff := cmp.Diff([]int{0, 1, 2}, scheduled); diff != "" {
		t.Errorf("TaskScheduled retry counts (-want +got):\n%s", diff)
	}
}

func TestCatch(t *testing.T) {
	catch := `"Catch":[
		{"ErrorEquals":["InstanceNotFound","InvalidEvent"],"ResultPath":"$.error","Next":"NotFound"},
		{"ErrorEquals":["States.Timeout"],"Next":"TimedOut"},
		{"ErrorEquals":["States.TaskFailed"],"ResultPath":null,"Next":"Other"}]`
	def := `{"StartAt":"T","States":{
		"T":{"Type":"Task","Resource":"r","TimeoutSeconds":200,"ResultPath":"$.result",` + catch + `,"Next":"Done"},
		"Done":{"Type":"Pass","Result":"Done","ResultPath":"$.route","End":true},
		"NotFound":{"Type":"Pass","Result":"NotFound","ResultPath":"$.route","End":true},
		"TimedOut":{"Type":"Pass","Result":"TimedOut","ResultPath":"$.route","End":true},
		"Other":{"Type":"Pass","Result":"Other","ResultPath":"$.route","End":true}}}`
	tests := []struct {
		name string
		task taskFunc
		want string
	}{
		{"no error", returns("r1"), `{"foo":"bar","result":"r1","route":"Done"}`},
		// Developer guide, "Include Both Error and Input in a Catch": the input keeps "foo" and gains "error".
		{"named error with ResultPath", failsWith("InstanceNotFound", "instance i-1 not found"),
			`{"foo":"bar","error":{"Error":"InstanceNotFound","Cause":"instance i-1 not found"},"route":"NotFound"}`},
		{"wrapped TaskError keeps its name", func(context.Context, any, int) (any, error) {
			return nil, fmt.Errorf("validate: %w", &asl.TaskError{Name: "InvalidEvent", Cause: "not an instance"})
		}, `{"foo":"bar","error":{"Error":"InvalidEvent","Cause":"not an instance"},"route":"NotFound"}`},
		{"timeout, default ResultPath replaces the input", blocks,
			`{"Error":"States.Timeout","Cause":"the task did not finish within TimeoutSeconds (200)","route":"TimedOut"}`},
		{"plain Go error is States.TaskFailed, ResultPath null keeps the input", func(context.Context, any, int) (any, error) {
			return nil, errors.New("boom")
		}, `{"foo":"bar","route":"Other"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := run(t, def, `{"foo":"bar"}`, newInvoker(map[string]taskFunc{"r": tc.task}))
			if e.Status != asl.StatusSucceeded {
				t.Fatalf("status %s: %s: %s", e.Status, e.Error, e.Cause)
			}
			if diff := cmp.Diff(js(t, tc.want), decode(t, e.Output)); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("uncaught error fails the execution with its name and cause", func(t *testing.T) {
		e, _ := run(t, `{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"r","Catch":[{"ErrorEquals":["X"],"Next":"C"}],"End":true},"C":{"Type":"Succeed"}}}`,
			`{}`, newInvoker(map[string]taskFunc{"r": func(context.Context, any, int) (any, error) { return nil, errors.New("disk on fire") }}))
		if e.Status != asl.StatusFailed || e.Error != asl.ErrorTaskFailed || e.Cause != "disk on fire" {
			t.Errorf("status %s error %q cause %q", e.Status, e.Error, e.Cause)
		}
		sum := e.History.Summary()
		if len(sum) != 1 || sum[0].Status != asl.RunFailed || sum[0].Error != asl.ErrorTaskFailed {
			t.Errorf("summary %+v", sum)
		}
	})
}

// A Task that outlives TimeoutSeconds has its context cancelled and fails with States.Timeout; Retry applies.
func TestTaskTimeout(t *testing.T) {
	cancelled := make(chan error, 1)
	task := func(ctx context.Context, _ any, call int) (any, error) {
		if call == 0 {
			<-ctx.Done()
			cancelled <- ctx.Err()
			return nil, ctx.Err()
		}
		return "second attempt", nil
	}
	def := `{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"r","TimeoutSeconds":200,
		"Retry":[{"ErrorEquals":["States.Timeout"],"MaxAttempts":1}],"End":true}}}`
	e, sl := run(t, def, `{}`, newInvoker(map[string]taskFunc{"r": task}))
	if e.Status != asl.StatusSucceeded || string(e.Output) != `"second attempt"` {
		t.Fatalf("status %s output %s error %s", e.Status, e.Output, e.Error)
	}
	if err := <-cancelled; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the timed-out invocation's context ended with %v, want deadline exceeded", err)
	}
	if diff := cmp.Diff(secs(1), sl.waits()); diff != "" {
		t.Errorf("waits (-want +got):\n%s", diff)
	}
	want := []asl.EventType{asl.ExecutionStarted, asl.TaskStateEntered, asl.TaskScheduled, asl.TaskStarted,
		asl.TaskTimedOut, asl.TaskScheduled, asl.TaskStarted, asl.TaskSucceeded, asl.TaskStateExited,
		asl.ExecutionSucceeded}
	if diff := cmp.Diff(want, eventTypes(e)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// An invoker that ignores its context cannot hold the execution past TimeoutSeconds.
func TestTaskTimeoutWithUncooperativeInvoker(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	task := func(context.Context, any, int) (any, error) { <-release; return "late", nil }
	e, _ := run(t, `{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"r","TimeoutSeconds":1,"End":true}}}`, `{}`,
		newInvoker(map[string]taskFunc{"r": task}))
	if e.Status != asl.StatusFailed || e.Error != asl.ErrorTimeout {
		t.Fatalf("status %s error %s", e.Status, e.Error)
	}
}

func TestTaskPanicIsTaskFailed(t *testing.T) {
	task := func(context.Context, any, int) (any, error) { panic("nil map") }
	e, _ := run(t, `{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"r","End":true}}}`, `{}`, newInvoker(map[string]taskFunc{"r": task}))
	if e.Status != asl.StatusFailed || e.Error != asl.ErrorTaskFailed || !strings.Contains(e.Cause, "nil map") {
		t.Fatalf("status %s error %s cause %s", e.Status, e.Error, e.Cause)
	}
}

// The machine's TimeoutSeconds stops the execution: TIMED_OUT, the running task aborted.
func TestExecutionTimeout(t *testing.T) {
	e, _ := run(t, `{"TimeoutSeconds":1,"StartAt":"T","States":{"T":{"Type":"Task","Resource":"r","End":true}}}`, `{}`,
		newInvoker(map[string]taskFunc{"r": blocks}))
	if e.Status != asl.StatusTimedOut || e.Error != asl.ErrorTimeout {
		t.Fatalf("status %s error %s", e.Status, e.Error)
	}
	want := []asl.EventType{asl.ExecutionStarted, asl.TaskStateEntered, asl.TaskScheduled, asl.TaskStarted,
		asl.TaskStateAborted, asl.ExecutionTimedOut}
	if diff := cmp.Diff(want, eventTypes(e)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// Cancelling the caller's context aborts the execution, also during a retry wait.
func TestAbort(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	o := testOptions(&recSleeper{})
	o.Sleep = func(ctx context.Context, d time.Duration) error { cancel(); <-ctx.Done(); return ctx.Err() }
	m := mustLoad(t, `{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"r","Retry":[{"ErrorEquals":["E"]}],"End":true}}}`)
	inv := newInvoker(map[string]taskFunc{"r": sequence("E")})
	e := m.Start(ctx, "a", []byte(`{}`), inv, o)
	if e.Status != asl.StatusAborted {
		t.Fatalf("status %s error %s", e.Status, e.Error)
	}
	if inv.count("r") != 1 {
		t.Errorf("%d calls after abort, want 1", inv.count("r"))
	}
	// An aborted execution can be redriven; it re-runs the aborted state.
	if err := m.Redrive(testCtx(t), e, inv); err != nil {
		t.Fatal(err)
	}
	if e.Status != asl.StatusSucceeded || inv.count("r") != 2 {
		t.Errorf("after redrive: status %s, %d calls", e.Status, inv.count("r"))
	}
}
