package asl

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/ec2-isolation/ec2-isolation/internal/partition"
	"math"
	mrand "math/rand/v2"
	"strconv"
	"sync"
	"time"
)

// Invoker runs a Task state's Resource with the state's effective input and returns its result. An error of type
// *TaskError (anywhere in the chain) is reported with its Name; any other error as States.TaskFailed with the
// error's message as Cause. ctx is cancelled when the state's TimeoutSeconds passes, when a sibling Parallel
// branch fails, or when the execution stops; Invoke must then return promptly. After a sibling failure or a stop
// the engine waits for Invoke to return; after TimeoutSeconds it moves on at once (States.Timeout).
type Invoker interface {
	Invoke(ctx context.Context, resource string, input json.RawMessage) (json.RawMessage, error)
}

// InvokerFunc adapts a function to Invoker.
type InvokerFunc func(ctx context.Context, resource string, input json.RawMessage) (json.RawMessage, error)

// Invoke calls f.
func (f InvokerFunc) Invoke(ctx context.Context, resource string, input json.RawMessage) (json.RawMessage, error) {
	return f(ctx, resource, input)
}

// Options are the execution's clock and identity. Zero fields take the defaults noted. Sleep, Now, Rand and
// WithTimeout are called from concurrent Parallel branches and must be safe for that.
type Options struct {
	// Sleep waits d (Retry intervals and Wait states) or until ctx is done. Default: a timer. A simulation can
	// compress waits; a test can record them.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock for event timestamps and $$ times. Default: time.Now.
	Now func() time.Time
	// Rand returns a number in [0, 1) for JitterStrategy FULL. Default: math/rand/v2.
	Rand func() float64
	// WithTimeout derives the context that enforces a Task's TimeoutSeconds and the machine's TimeoutSeconds.
	// Default: context.WithTimeout. A test can scale durations down.
	WithTimeout func(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc)
	// StateMachineName is $$.StateMachine.Name and part of the execution ARN. Default: "StateMachine".
	StateMachineName string
	// Region and Account form the execution ARN ($$.Execution.Id). Defaults: us-east-1, 123456789012.
	Region, Account string
	// OnEvent, if set, is called with each history event as it is recorded (from the goroutine recording it,
	// concurrently for Parallel branches), e.g. to stream the history while the execution runs.
	OnEvent func(Event)
	// TransitionLatency is waited (through Sleep) before each state is entered: the service's own time per state
	// transition, which a benchmark states (isolation bench). Default 0: none.
	TransitionLatency time.Duration
}

func (o Options) withDefaults() Options {
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = mrand.Float64
	}
	if o.WithTimeout == nil {
		o.WithTimeout = context.WithTimeout
	}
	if o.StateMachineName == "" {
		o.StateMachineName = "StateMachine"
	}
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.Account == "" {
		o.Account = "123456789012"
	}
	return o
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Status is an execution's status, as DescribeExecution reports it.
type Status string

const (
	StatusRunning   Status = "RUNNING"
	StatusSucceeded Status = "SUCCEEDED"
	StatusFailed    Status = "FAILED"
	StatusTimedOut  Status = "TIMED_OUT"
	// StatusAborted: the ctx passed to Start or Redrive was cancelled.
	StatusAborted Status = "ABORTED"
)

// Execution is one execution of a Machine. Start and Redrive run it synchronously and update it in place; do not
// read it while either is running (History is the exception: it is safe to read concurrently).
type Execution struct {
	ID          string // arn:PARTITION:states:REGION:ACCOUNT:execution:MACHINE:NAME
	Name        string
	Input       json.RawMessage
	StartTime   time.Time
	StopTime    time.Time
	RedriveTime time.Time // when it was last redriven
	Status      Status
	Output      json.RawMessage // SUCCEEDED only
	Error       string
	Cause       string
	// RedriveCount is how many times the execution has been redriven ($$.Execution.RedriveCount).
	RedriveCount int
	History      *History

	machine *Machine
	opts    Options
	input   any
	// resume is where a redrive continues: the state that did not succeed, with the input it had.
	resume *resumePoint
}

// resumePoint is a state that did not complete and the raw input it was entered with. For a Parallel state it
// also records each branch: its output if it succeeded, else where inside it to resume.
type resumePoint struct {
	state    string
	input    any
	branches []branchState
}

type branchState struct {
	done   bool
	output any
	at     *resumePoint
}

// Start runs a new execution to completion and returns it. input is the execution input (JSON; empty means {}).
// An empty name gets a random one. Input that is not JSON fails the execution at once with Error
// InvalidExecutionInput (StartExecution would refuse it), a nil inv with InvalidArgument; neither is redrivable.
func (m *Machine) Start(ctx context.Context, name string, input json.RawMessage, inv Invoker, opts Options) *Execution {
	o := opts.withDefaults()
	if name == "" {
		name = randomName()
	}
	if len(input) == 0 {
		input = json.RawMessage("{}")
	}
	e := &Execution{
		ID:        fmt.Sprintf("arn:%s:states:%s:%s:execution:%s:%s", partition.Of(o.Region), o.Region, o.Account, o.StateMachineName, name),
		Name:      name,
		Input:     input,
		StartTime: o.Now(),
		Status:    StatusRunning,
		History:   &History{},
		machine:   m,
		opts:      o,
	}
	v, err := decodeJSON(input)
	switch {
	case err != nil:
		e.Status, e.StopTime = StatusFailed, e.StartTime
		e.Error, e.Cause = "InvalidExecutionInput", "execution input is not JSON: "+err.Error()
		return e
	case inv == nil:
		e.Status, e.StopTime = StatusFailed, e.StartTime
		e.Error, e.Cause = "InvalidArgument", "no Invoker"
		return e
	}
	e.input = v
	e.record(nil, Event{Type: ExecutionStarted, Timestamp: e.StartTime, Input: encodeJSON(v)})
	r := &runner{m: m, e: e, inv: inv, o: o}
	r.run(ctx, m.top.startAt, v, nil)
	return e
}

// Redrive continues an unsuccessful (FAILED, TIMED_OUT or ABORTED) execution as Step Functions' RedriveExecution
// does: from the state that did not succeed, with the input that state had, without re-running the states that
// succeeded (their history is kept); RedriveCount goes up by one and an ExecutionRedriven event is recorded. In a
// Parallel state only the branches that failed or were aborted run again, each from its own unsuccessful state;
// the others keep their outputs. The machine's TimeoutSeconds starts again. It returns an error wrapping
// ErrExecutionNotRedrivable for a SUCCEEDED (or never started) execution; the outcome is on exec.
func (m *Machine) Redrive(ctx context.Context, exec *Execution, inv Invoker) error {
	if exec == nil || exec.machine != m {
		return errors.New("redrive: the execution was not started by this state machine")
	}
	switch {
	case exec.Status == StatusSucceeded:
		return fmt.Errorf("%w: execution %s succeeded", ErrExecutionNotRedrivable, exec.Name)
	case exec.Status == StatusRunning:
		return fmt.Errorf("%w: execution %s is still running", ErrExecutionNotRedrivable, exec.Name)
	case exec.resume == nil:
		return fmt.Errorf("%w: execution %s failed before its first state (%s)", ErrExecutionNotRedrivable, exec.Name, exec.Error)
	case inv == nil:
		return errors.New("redrive: no Invoker")
	}
	o := exec.opts
	exec.RedriveCount++
	exec.Status, exec.Output, exec.Error, exec.Cause = StatusRunning, nil, "", ""
	exec.RedriveTime, exec.StopTime = o.Now(), time.Time{}
	exec.record(nil, Event{Type: ExecutionRedriven, Timestamp: exec.RedriveTime, RedriveCount: exec.RedriveCount})
	at := exec.resume
	r := &runner{m: m, e: exec, inv: inv, o: o}
	r.run(ctx, at.state, at.input, at)
	return nil
}

// record appends an event to the history and reports it to Options.OnEvent.
func (e *Execution) record(th *thread, ev Event) {
	ev = e.History.append(th, ev)
	if e.opts.OnEvent != nil {
		e.opts.OnEvent(ev)
	}
}

func randomName() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

type runner struct {
	m      *Machine
	e      *Execution
	inv    Invoker
	o      Options
	randMu sync.Mutex
}

// failure is how a state list stops early: with an error, or interrupted (its context was cancelled: execution
// timeout, abort, or a sibling branch failed). at is where a redrive resumes.
type failure struct {
	err         *stateError
	interrupted bool
	at          *resumePoint
}

type scope struct {
	parallel string
	branch   int
}

func (r *runner) run(ctx context.Context, start string, input any, resume *resumePoint) {
	e := r.e
	ectx, cancel := ctx, context.CancelFunc(func() {})
	if r.m.TimeoutSeconds > 0 {
		ectx, cancel = r.o.WithTimeout(ctx, time.Duration(r.m.TimeoutSeconds)*time.Second)
	}
	defer cancel()
	th := &thread{last: e.History.lastID()}
	out, f := r.runList(ectx, r.m.top, start, input, resume, th, scope{})
	e.StopTime = r.o.Now()
	ev := Event{Timestamp: e.StopTime}
	switch {
	case f == nil:
		e.Status, e.Output, e.resume = StatusSucceeded, encodeJSON(out), nil
		ev.Type, ev.Output = ExecutionSucceeded, e.Output
	case f.interrupted && ctx.Err() != nil:
		e.Status, e.resume = StatusAborted, f.at
		e.Error, e.Cause = "", "execution aborted: "+context.Cause(ctx).Error()
		ev.Type, ev.Cause = ExecutionAborted, e.Cause
	case f.interrupted:
		e.Status, e.resume = StatusTimedOut, f.at
		e.Error = ErrorTimeout
		e.Cause = fmt.Sprintf("the execution ran longer than the state machine's TimeoutSeconds (%d)", r.m.TimeoutSeconds)
		ev.Type, ev.Error, ev.Cause = ExecutionTimedOut, e.Error, e.Cause
	default:
		e.Status, e.resume = StatusFailed, f.at
		e.Error, e.Cause = f.err.Name, f.err.Cause
		ev.Type, ev.Error, ev.Cause = ExecutionFailed, e.Error, e.Cause
	}
	e.record(th, ev)
}

// runList runs states of one list (the top level or a branch) from name until an end state or a failure.
// resume, when it names the first state, carries a Parallel state's per-branch progress.
func (r *runner) runList(ctx context.Context, l *stateList, name string, input any, resume *resumePoint, th *thread, sc scope) (any, *failure) {
	var inJSON json.RawMessage // input encoded, when the state before already did it
	for {
		var rp *resumePoint
		if resume != nil && resume.state == name {
			rp = resume
		}
		resume = nil
		if ctx.Err() != nil {
			if rp == nil {
				rp = &resumePoint{state: name, input: input}
			}
			return nil, &failure{interrupted: true, at: rp}
		}
		v := r.enter(ctx, l.states[name], input, inJSON, th, sc)
		out, next, f := v.execute(rp)
		if f != nil {
			return nil, f
		}
		if next == "" {
			return out, nil
		}
		name, input, inJSON = next, out, v.outJSON
	}
}

// visit is one execution of one state.
type visit struct {
	r       *runner
	ctx     context.Context
	st      *state
	raw     any // the state's input, before InputPath
	run     *StateRun
	th      *thread
	entered time.Time
	outJSON json.RawMessage // the output as the history shows it, which the next state's entry shows as input
}

// enter starts a visit; in is raw encoded, or nil to encode it here (a state's output is encoded once, for its
// exit and the next state's entry: the history's encoding is a fifth of a storm bench's CPU).
func (r *runner) enter(ctx context.Context, st *state, raw any, in json.RawMessage, th *thread, sc scope) *visit {
	if r.o.TransitionLatency > 0 {
		// Cancelled: the state is entered anyway and then stops as any state does.
		_ = r.o.Sleep(ctx, r.o.TransitionLatency)
	}
	now := r.o.Now()
	if in == nil {
		in = encodeJSON(raw)
	}
	run := r.e.History.beginRun(&StateRun{Name: st.name, Type: st.typ, Parallel: sc.parallel, Branch: sc.branch,
		Status: RunInProgress, Start: now, Input: in, RedriveCount: r.e.RedriveCount})
	v := &visit{r: r, ctx: ctx, st: st, raw: raw, run: run, th: th, entered: now}
	v.event(Event{Type: EventType(st.typ + "StateEntered"), Input: in})
	return v
}

func (v *visit) execute(rp *resumePoint) (any, string, *failure) {
	switch v.st.typ {
	case "Task":
		return v.task()
	case "Parallel":
		return v.parallel(rp)
	case "Pass":
		return v.pass()
	case "Choice":
		return v.choice()
	case "Wait":
		return v.wait()
	case "Succeed":
		return v.succeed()
	case "Fail":
		return v.fail(&stateError{Name: v.st.errName, Cause: v.st.cause}, nil)
	}
	return v.fail(runtimeError("state type %s not implemented", v.st.typ), nil)
}

func (v *visit) event(e Event) {
	e.State = v.st.name
	e.Timestamp = v.r.o.Now()
	v.r.e.record(v.th, e)
}

// finishRun ends the state's run; out is its output already encoded (nil: none).
func (v *visit) finishRun(status RunStatus, out json.RawMessage, serr *stateError) {
	now := v.r.o.Now()
	v.r.e.History.update(v.run, func(r *StateRun) {
		r.Status = status
		r.Duration = now.Sub(v.entered)
		if out != nil {
			r.Output = out
		}
		if serr != nil {
			r.Error, r.Cause = serr.Name, serr.Cause
		}
	})
}

// exit records a successful end of the state and moves on to next ("" ends the list).
func (v *visit) exit(out any, next string) (any, string, *failure) {
	v.outJSON = encodeJSON(out)
	v.event(Event{Type: EventType(v.st.typ + "StateExited"), Output: v.outJSON})
	v.finishRun(RunSucceeded, v.outJSON, nil)
	return out, next, nil
}

func (v *visit) fail(serr *stateError, branches []branchState) (any, string, *failure) {
	v.finishRun(RunFailed, nil, serr)
	return nil, "", &failure{err: serr, at: &resumePoint{state: v.st.name, input: v.raw, branches: branches}}
}

func (v *visit) abort(branches []branchState) (any, string, *failure) {
	v.finishRun(RunAborted, nil, nil)
	return nil, "", &failure{interrupted: true, at: &resumePoint{state: v.st.name, input: v.raw, branches: branches}}
}

func (v *visit) contextObject(retries int) map[string]any {
	e := v.r.e
	return map[string]any{
		"Execution": map[string]any{
			"Id":           e.ID,
			"Name":         e.Name,
			"Input":        e.input,
			"StartTime":    formatTime(e.StartTime),
			"RedriveCount": json.Number(strconv.Itoa(e.RedriveCount)),
		},
		"State": map[string]any{
			"Name":        v.st.name,
			"EnteredTime": formatTime(v.entered),
			"RetryCount":  json.Number(strconv.Itoa(retries)),
		},
		"StateMachine": map[string]any{"Name": v.r.o.StateMachineName},
	}
}

func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func (v *visit) inputPath() (any, *stateError) {
	out, err := selectPath(v.st.inputPath, v.raw)
	if err != nil {
		return nil, runtimeError("InputPath: %v", err)
	}
	return out, nil
}

func (v *visit) outputPath(in any) (any, *stateError) {
	out, err := selectPath(v.st.outputPath, in)
	if err != nil {
		return nil, runtimeError("OutputPath: %v", err)
	}
	return out, nil
}

func selectPath(op optionalPath, in any) (any, error) {
	switch {
	case op.null:
		return map[string]any{}, nil
	case op.p == nil:
		return in, nil
	}
	return evalPath(op.p, in, nil)
}

func (v *visit) parameters(in any, ctxObj map[string]any) (any, *stateError) {
	if v.st.parameters == nil {
		return in, nil
	}
	out, err := v.st.parameters.eval(in, ctxObj)
	if err != nil {
		return nil, runtimeError("Parameters: %v", err)
	}
	return out, nil
}

func applyResultPath(rp resultPath, raw, result any) (any, error) {
	switch {
	case rp.discard:
		return raw, nil
	case rp.p == nil:
		return result, nil
	}
	return rp.p.set(raw, result)
}

// finish applies ResultSelector, ResultPath (onto the raw state input) and OutputPath to a state's result.
func (v *visit) finish(result any, ctxObj map[string]any) (any, *stateError) {
	if v.st.resultSelector != nil {
		sel, err := v.st.resultSelector.eval(result, ctxObj)
		if err != nil {
			return nil, runtimeError("ResultSelector: %v", err)
		}
		result = sel
	}
	out, err := applyResultPath(v.st.resultPath, v.raw, result)
	if err != nil {
		return nil, runtimeError("ResultPath: %v", err)
	}
	return v.outputPath(out)
}

// retryDelay picks the first retrier whose ErrorEquals matches (a later one is never tried, even when the first
// is exhausted) and returns the wait before the next attempt: IntervalSeconds × BackoffRate^(retries so far by
// this retrier), capped at MaxDelaySeconds, then with FULL jitter a uniform random fraction of it.
func (v *visit) retryDelay(counts []int64, serr *stateError) (time.Duration, bool) {
	for i, rt := range v.st.retry {
		if !errorMatches(rt.errorEquals, serr.Name) {
			continue
		}
		if counts[i] >= rt.maxAttempts {
			return 0, false
		}
		secs := float64(rt.intervalSeconds) * math.Pow(rt.backoffRate, float64(counts[i]))
		if rt.maxDelaySeconds > 0 && secs > float64(rt.maxDelaySeconds) {
			secs = float64(rt.maxDelaySeconds)
		}
		if rt.fullJitter {
			secs *= v.r.rand()
		}
		counts[i]++
		const maxSecs = float64(math.MaxInt64/int64(time.Second)) - 1
		return time.Duration(math.Min(secs, maxSecs) * float64(time.Second)), true
	}
	return 0, false
}

func (r *runner) rand() float64 {
	r.randMu.Lock()
	defer r.randMu.Unlock()
	f := r.o.Rand()
	return math.Max(0, math.Min(f, 1))
}

// sleepFor sleeps d; false if the state's context ended meanwhile.
func (v *visit) sleepFor(d time.Duration) bool {
	_ = v.r.o.Sleep(v.ctx, d)
	return v.ctx.Err() == nil
}

func (v *visit) addRetry() int {
	n := 0
	v.r.e.History.update(v.run, func(r *StateRun) { r.Retries++; n = r.Retries })
	return n
}

// catchOrFail applies the first matching catcher (its ResultPath puts {"Error","Cause"} onto the raw state
// input) or fails the state.
func (v *visit) catchOrFail(serr *stateError, branches []branchState) (any, string, *failure) {
	for _, c := range v.st.catch {
		if !errorMatches(c.errorEquals, serr.Name) {
			continue
		}
		out, err := applyResultPath(c.resultPath, v.raw, map[string]any{"Error": serr.Name, "Cause": serr.Cause})
		if err != nil {
			return v.fail(runtimeError("Catch ResultPath: %v", err), branches)
		}
		v.outJSON = encodeJSON(out)
		v.finishRun(RunCaught, v.outJSON, serr)
		return out, c.next, nil
	}
	return v.fail(serr, branches)
}

func (v *visit) task() (any, string, *failure) {
	st := v.st
	in, serr := v.inputPath()
	if serr != nil {
		return v.fail(serr, nil)
	}
	counts := make([]int64, len(st.retry))
	retries := 0
	for {
		ctxObj := v.contextObject(retries)
		params, serr := v.parameters(in, ctxObj)
		if serr != nil {
			return v.fail(serr, nil)
		}
		payload := encodeJSON(integrationParameters(st.resource, params))
		v.event(Event{Type: TaskScheduled, Resource: st.resource, Input: payload, RetryCount: retries})
		v.event(Event{Type: TaskStarted, Resource: st.resource, RetryCount: retries})
		result, serr, interrupted := v.invoke(payload)
		if interrupted {
			v.event(Event{Type: TaskStateAborted})
			return v.abort(nil)
		}
		if serr == nil {
			v.event(Event{Type: TaskSucceeded, Resource: st.resource, Output: encodeJSON(result), RetryCount: retries})
			out, serr := v.finish(result, ctxObj)
			if serr != nil {
				return v.fail(serr, nil)
			}
			return v.exit(out, st.next)
		}
		typ := TaskFailed
		if serr.Name == ErrorTimeout {
			typ = TaskTimedOut
		}
		v.event(Event{Type: typ, Resource: st.resource, Error: serr.Name, Cause: serr.Cause, RetryCount: retries})
		if d, ok := v.retryDelay(counts, serr); ok {
			retries = v.addRetry()
			if !v.sleepFor(d) {
				v.event(Event{Type: TaskStateAborted})
				return v.abort(nil)
			}
			continue
		}
		return v.catchOrFail(serr, nil)
	}
}

type stateNameKey struct{}

// StateName is the name of the Task state a context passed to Options.WithTimeout or to the Invoker belongs to
// ("" for any other context): a test can time out one state's invocations and no other's.
func StateName(ctx context.Context) string {
	name, _ := ctx.Value(stateNameKey{}).(string)
	return name
}

// invoke calls the Invoker, enforcing TimeoutSeconds. interrupted means the state's own context ended (not the
// task timeout); the engine then waits for the cancelled Invoke to return. A timed-out invocation is not waited
// for: it finishes on its cancelled context, as a Lambda function keeps running after Step Functions stops
// waiting for it.
func (v *visit) invoke(payload json.RawMessage) (any, *stateError, bool) {
	st := v.st
	ictx, cancel := context.WithValue(v.ctx, stateNameKey{}, st.name), context.CancelFunc(func() {})
	if st.timeoutSeconds > 0 {
		ictx, cancel = v.r.o.WithTimeout(ictx, time.Duration(st.timeoutSeconds)*time.Second)
	}
	defer cancel()
	type result struct {
		out json.RawMessage
		err error
	}
	ch := make(chan result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				ch <- result{err: fmt.Errorf("task panicked: %v", p)}
			}
		}()
		out, err := v.r.inv.Invoke(ictx, st.resource, payload)
		ch <- result{out, err}
	}()
	timedOut := &stateError{Name: ErrorTimeout, Cause: fmt.Sprintf("the task did not finish within TimeoutSeconds (%d)", st.timeoutSeconds)}
	select {
	case res := <-ch:
		if v.ctx.Err() != nil {
			return nil, nil, true
		}
		if res.err != nil {
			if st.timeoutSeconds > 0 && ictx.Err() != nil {
				return nil, timedOut, false
			}
			var te *TaskError
			if errors.As(res.err, &te) {
				if te.Name == "" {
					return nil, &stateError{Name: ErrorTaskFailed, Cause: te.Cause}, false
				}
				return nil, &stateError{Name: te.Name, Cause: te.Cause}, false
			}
			return nil, &stateError{Name: ErrorTaskFailed, Cause: res.err.Error()}, false
		}
		if len(res.out) == 0 {
			return nil, nil, false
		}
		out, err := decodeJSON(res.out)
		if err != nil {
			return nil, runtimeError("the task result is not JSON: %v", err), false
		}
		return out, nil, false
	case <-ictx.Done():
		if v.ctx.Err() != nil {
			// Stopped from outside (abort, execution timeout, a sibling branch failed): wait for the cancelled
			// invocation to return, so no task is still running when Start or Redrive returns.
			<-ch
			return nil, nil, true
		}
		return nil, timedOut, false
	}
}

func (v *visit) parallel(rp *resumePoint) (any, string, *failure) {
	st := v.st
	in, serr := v.inputPath()
	if serr != nil {
		return v.fail(serr, nil)
	}
	eff, serr := v.parameters(in, v.contextObject(0))
	if serr != nil {
		return v.fail(serr, nil)
	}
	var prior []branchState
	if rp != nil && len(rp.branches) == len(st.branches) {
		prior = rp.branches
	}
	counts := make([]int64, len(st.retry))
	retries := 0
	for {
		v.event(Event{Type: ParallelStateStarted})
		outputs, serr, branches, interrupted := v.runBranches(eff, prior)
		// Only the first run after a redrive keeps the earlier attempt's successful branches; a retry of the
		// Parallel state runs every branch again, as it does without redrive.
		prior = nil
		if interrupted {
			v.event(Event{Type: ParallelStateAborted})
			return v.abort(branches)
		}
		if serr == nil {
			v.event(Event{Type: ParallelStateSucceeded, Output: encodeJSON(outputs)})
			out, serr := v.finish(outputs, v.contextObject(retries))
			if serr != nil {
				return v.fail(serr, branches)
			}
			return v.exit(out, st.next)
		}
		v.event(Event{Type: ParallelStateFailed, Error: serr.Name, Cause: serr.Cause})
		if d, ok := v.retryDelay(counts, serr); ok {
			retries = v.addRetry()
			if !v.sleepFor(d) {
				v.event(Event{Type: ParallelStateAborted})
				return v.abort(branches)
			}
			continue
		}
		return v.catchOrFail(serr, branches)
	}
}

// runBranches runs the branches concurrently, each on its own copy of the input (or, after a redrive, from its
// own unsuccessful state), skipping branches that already succeeded. The first branch to fail cancels the others
// and its error becomes the Parallel state's error.
func (v *visit) runBranches(eff any, prior []branchState) ([]any, *stateError, []branchState, bool) {
	st := v.st
	branches := make([]branchState, len(st.branches))
	bctx, cancel := context.WithCancel(v.ctx)
	defer cancel()
	type result struct {
		i   int
		out any
		f   *failure
		th  *thread
	}
	ch := make(chan result, len(st.branches))
	running := 0
	for i, b := range st.branches {
		if prior != nil && prior[i].done {
			branches[i] = prior[i]
			continue
		}
		start, input, resume := b.startAt, deepCopy(eff), (*resumePoint)(nil)
		if prior != nil && prior[i].at != nil {
			resume = prior[i].at
			start, input = resume.state, resume.input
		}
		bth := &thread{last: v.th.last}
		running++
		go func() {
			out, f := v.r.runList(bctx, b, start, input, resume, bth, scope{parallel: st.name, branch: i})
			ch <- result{i: i, out: out, f: f, th: bth}
		}()
	}
	var first *stateError
	last := v.th.last
	for range running {
		res := <-ch
		last = max(last, res.th.last)
		if res.f == nil {
			branches[res.i] = branchState{done: true, output: res.out}
			continue
		}
		branches[res.i] = branchState{at: res.f.at}
		if !res.f.interrupted && first == nil {
			first = res.f.err
			cancel()
		}
	}
	v.th.last = last
	if v.ctx.Err() != nil {
		return nil, nil, branches, true
	}
	if first != nil {
		return nil, first, branches, false
	}
	outputs := make([]any, len(branches))
	for i, b := range branches {
		outputs[i] = b.output
	}
	return outputs, nil, branches, false
}

func (v *visit) pass() (any, string, *failure) {
	in, serr := v.inputPath()
	if serr != nil {
		return v.fail(serr, nil)
	}
	ctxObj := v.contextObject(0)
	result, serr := v.parameters(in, ctxObj)
	if serr != nil {
		return v.fail(serr, nil)
	}
	if v.st.hasResult {
		result = deepCopy(v.st.result)
	}
	out, serr := v.finish(result, ctxObj)
	if serr != nil {
		return v.fail(serr, nil)
	}
	return v.exit(out, v.st.next)
}

func (v *visit) choice() (any, string, *failure) {
	in, serr := v.inputPath()
	if serr != nil {
		return v.fail(serr, nil)
	}
	ctxObj := v.contextObject(0)
	next := ""
	for i, rule := range v.st.choices {
		ok, err := rule.eval(in, ctxObj)
		if err != nil {
			return v.fail(runtimeError("Choices[%d]: %v", i, err), nil)
		}
		if ok {
			next = rule.next
			break
		}
	}
	if next == "" {
		next = v.st.dflt
	}
	if next == "" {
		// AWS documents States.NoChoiceMatched as reserved: no match is reported as States.Runtime.
		return v.fail(runtimeError("no choice rule matched and the Choice state has no Default (States.NoChoiceMatched)"), nil)
	}
	out, serr := v.outputPath(in)
	if serr != nil {
		return v.fail(serr, nil)
	}
	return v.exit(out, next)
}

func (v *visit) wait() (any, string, *failure) {
	in, serr := v.inputPath()
	if serr != nil {
		return v.fail(serr, nil)
	}
	if !v.sleepFor(time.Duration(v.st.seconds) * time.Second) {
		v.event(Event{Type: WaitStateAborted})
		return v.abort(nil)
	}
	out, serr := v.outputPath(in)
	if serr != nil {
		return v.fail(serr, nil)
	}
	return v.exit(out, v.st.next)
}

func (v *visit) succeed() (any, string, *failure) {
	in, serr := v.inputPath()
	if serr != nil {
		return v.fail(serr, nil)
	}
	out, serr := v.outputPath(in)
	if serr != nil {
		return v.fail(serr, nil)
	}
	return v.exit(out, "")
}

// Scaled returns Options for a simulation whose clock runs factor times faster than real time (now is that
// clock): Retry and Wait waits and task timeouts pass factor times faster, and the history's times are the
// simulated ones, as the console would show them.
func Scaled(factor float64, now func() time.Time) Options {
	scale := func(d time.Duration) time.Duration { return time.Duration(float64(d) / factor) }
	return Options{
		Now:   now,
		Sleep: func(ctx context.Context, d time.Duration) error { return sleep(ctx, scale(d)) },
		WithTimeout: func(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
			return context.WithTimeout(ctx, scale(d))
		},
	}
}
