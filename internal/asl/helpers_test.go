package asl_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ec2-isolation/ec2-isolation/internal/asl"
)

// taskFunc is a fake task: it gets the effective input the engine built and the 0-based number of the call to
// this resource in the test.
type taskFunc func(ctx context.Context, input any, call int) (any, error)

type taskCall struct {
	Resource string
	Input    any
}

// fakeInvoker dispatches on Resource and records every call. Fakes are right here: the engine is under test.
type fakeInvoker struct {
	mu    sync.Mutex
	calls []taskCall
	fns   map[string]taskFunc
}

func newInvoker(fns map[string]taskFunc) *fakeInvoker { return &fakeInvoker{fns: fns} }

func (f *fakeInvoker) Invoke(ctx context.Context, resource string, input json.RawMessage) (json.RawMessage, error) {
	var in any
	dec := json.NewDecoder(bytes.NewReader(input))
	dec.UseNumber()
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("fake: input is not JSON: %v", err)
	}
	f.mu.Lock()
	n := 0
	for _, c := range f.calls {
		if c.Resource == resource {
			n++
		}
	}
	f.calls = append(f.calls, taskCall{resource, in})
	fn := f.fns[resource]
	f.mu.Unlock()
	if fn == nil {
		return nil, fmt.Errorf("fake: no task %s", resource)
	}
	out, err := fn(ctx, in, n)
	if err != nil {
		return nil, err
	}
	return json.Marshal(out)
}

// inputs returns the inputs of the calls to resource, in order.
func (f *fakeInvoker) inputs(resource string) []any {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []any
	for _, c := range f.calls {
		if c.Resource == resource {
			out = append(out, c.Input)
		}
	}
	return out
}

func (f *fakeInvoker) count(resource string) int { return len(f.inputs(resource)) }

// returns is a task that always returns v.
func returns(v any) taskFunc {
	return func(context.Context, any, int) (any, error) { return v, nil }
}

// echo returns its input.
func echo(_ context.Context, in any, _ int) (any, error) { return in, nil }

// failsWith fails with a named task error.
func failsWith(name, cause string) taskFunc {
	return func(context.Context, any, int) (any, error) { return nil, &asl.TaskError{Name: name, Cause: cause} }
}

// blocks waits for its context to end, then reports why.
func blocks(ctx context.Context, _ any, _ int) (any, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// recSleeper records every requested wait and returns at once.
type recSleeper struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *recSleeper) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *recSleeper) waits() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

// testOptions: recorded sleeps, a clock that advances 1ms per reading, and timeouts scaled down 1000× so that
// TimeoutSeconds 1 expires after 1ms.
func testOptions(s *recSleeper) asl.Options {
	var ticks atomic.Int64
	base := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	return asl.Options{
		Sleep: s.Sleep,
		Now:   func() time.Time { return base.Add(time.Duration(ticks.Add(1)) * time.Millisecond) },
		WithTimeout: func(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
			return context.WithTimeout(ctx, d/1000)
		},
		StateMachineName: "test-machine",
	}
}

func mustLoad(t *testing.T, def string) *asl.Machine {
	t.Helper()
	m, err := asl.Load([]byte(def), nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return m
}

func decode(t *testing.T, raw json.RawMessage) any {
	t.Helper()
	if raw == nil {
		return nil
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return v
}

// js parses a JSON literal written in a test, with numbers as json.Number like the engine's values.
func js(t *testing.T, s string) any {
	t.Helper()
	return decode(t, json.RawMessage(s))
}

func eventTypes(e *asl.Execution) []asl.EventType {
	var out []asl.EventType
	for _, ev := range e.History.Events() {
		out = append(out, ev.Type)
	}
	return out
}

func run(t *testing.T, def, input string, inv asl.Invoker) (*asl.Execution, *recSleeper) {
	t.Helper()
	s := &recSleeper{}
	e := mustLoad(t, def).Start(testCtx(t), "exec-1", json.RawMessage(input), inv, testOptions(s))
	return e, s
}

// testCtx bounds an execution, so an engine that fails to cancel a blocked task fails the test (ABORTED)
// instead of hanging it.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func secs(f ...float64) []time.Duration {
	out := make([]time.Duration, len(f))
	for i, x := range f {
		out[i] = time.Duration(x * float64(time.Second))
	}
	return out
}
