package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	ec2isolation "github.com/ec2-isolation/ec2-isolation"
	"github.com/ec2-isolation/ec2-isolation/internal/asl"
	"github.com/ec2-isolation/ec2-isolation/internal/awscfg"
	"github.com/ec2-isolation/ec2-isolation/internal/partition"
	"github.com/ec2-isolation/ec2-isolation/internal/runner"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
)

// Costs are the stated service costs the simulation adds: Lambda's invoke overhead (Step Functions -> a warm
// execution environment -> the handler starts) and Step Functions' time per state transition.
type Costs struct {
	Invoke     time.Duration
	Transition time.Duration
}

// harness runs the real isolation definition with the real handlers (runner) against a simulator, every time on
// one scaled clock (the simulator's latency and state changes, the engine's waits, timeouts and history, the SDK's
// backoff and attempt timeout), adding the stated costs and recording every invocation.
type harness struct {
	srv     *sim.Server
	clock   *virtualClock
	machine *asl.Machine
	run     *runner.Runner
	opts    asl.Options
	costs   Costs
	names   map[string]string // function ARN -> functions/<dir>
	// limit, when positive, is each function's reserved concurrency: an invocation beyond it is refused with
	// Lambda.TooManyRequestsException, as Lambda refuses a synchronous invoke over the reservation.
	limit int
	// account, when positive, is the account's unreserved concurrency, shared by every function: Lambda refuses
	// an invoke beyond it with TooManyRequestsException (Reason: ConcurrentInvocationLimitExceeded).
	// https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html
	account int

	mu          sync.Mutex
	running     int // invocations in flight, all functions
	peak        int // the most at once
	inflight    map[string]int
	scalers     map[string]*scaler // Lambda's scaling rate, per function
	invocations []invocation
	refused     int
	owner       bool // the simulator is this harness's own

	// Stage 2 (issue 16): evidence is the evidence state machine, evidenceOpts its engine options (its own name
	// in execution ARNs); queue receives each job the isolation's "Queue instance settings" Task sends (nil:
	// sent and dropped, as by a queue no one reads); latency is the simulated answer time of SendMessage.
	evidence     *asl.Machine
	evidenceOpts asl.Options
	queue        func(evidenceJob)
	latency      time.Duration
	run2         *runner.Runner // stage 2's functions (their callers named stage2Caller + function)
}

// invocation is one Lambda invocation, in simulated time (overhead excluded: Start is when the handler began).
type invocation struct {
	Function   string
	Start, End time.Time
	Failed     bool
}

type harnessConfig struct {
	Scenario sim.Scenario
	// Factor: simulated time runs this many times faster than real time.
	Factor float64
	Costs  Costs
	// Env is the functions' environment (stack parameters); TOPIC_ARN is set to the scenario's first topic.
	Env map[string]string
	// Concurrency is each function's reserved concurrency (0: none); AccountConcurrency the account's
	// concurrency that every function without a reservation shares (0: unlimited).
	Concurrency, AccountConcurrency int
	// InProcess serves the simulator without sockets (sim.WithInProcess): the same wire protocols, less CPU.
	InProcess bool
	// CallSink, when set, receives every call instead of the simulator keeping it (sim.WithCallSink).
	CallSink func(sim.Call)
	// Conns: keep this many idle connections per function (a storm's concurrent calls reuse them instead of
	// opening one per call).
	Conns int
	// Operations, if set, counts the functions' SDK operations (each once, however often retried).
	Operations *atomic.Int64
	// Definition is the state machine (default: the isolation one).
	Definition []byte
	// Evidence is the evidence state machine (stage 2; nil: none). Latency is SendMessage's answer time.
	Evidence []byte
	Latency  time.Duration
	// server and clock, when set, are a running simulator to share (Scenario and Factor are then unused).
	server *sim.Server
	clock  *virtualClock
}

func newHarness(c harnessConfig) (*harness, error) {
	if c.Definition == nil {
		c.Definition = ec2isolation.Definition
	}
	clock, srv := c.clock, c.server
	if srv == nil {
		clock = newVirtualClock(c.Factor)
		var err error
		opts := []sim.Option{sim.WithClock(clock)}
		if c.InProcess {
			opts = append(opts, sim.WithInProcess())
		}
		if c.CallSink != nil {
			opts = append(opts, sim.WithCallSink(c.CallSink))
		}
		if srv, err = sim.Start(c.Scenario, opts...); err != nil {
			clock.Close()
			return nil, fmt.Errorf("start simulator: %w", err)
		}
	}
	env := map[string]string{}
	for k, v := range c.Env {
		env[k] = v
	}
	if len(c.Scenario.Topics) > 0 {
		env["TOPIC_ARN"] = fmt.Sprintf("arn:aws:sns:%s:%s:%s", srv.Region(), srv.AccountID(), c.Scenario.Topics[0].Name)
	}
	h := &harness{srv: srv, clock: clock, costs: c.Costs, names: map[string]string{}, limit: c.Concurrency,
		account: c.AccountConcurrency, scalers: map[string]*scaler{}, inflight: map[string]int{}, owner: c.server == nil}
	h.opts = clock.options()
	h.opts.TransitionLatency = c.Costs.Transition
	h.opts.Region, h.opts.Account, h.opts.StateMachineName = srv.Region(), srv.AccountID(), runner.StateMachineName
	// prefix names the callers (the simulator's access keys) of a stage: stage 2's calls are told apart by it.
	newRunner := func(env map[string]string, prefix string) (*runner.Runner, error) {
		return runner.New(runner.Config{
			Definition: c.Definition,
			Region:     srv.Region(),
			Account:    srv.AccountID(),
			AWS: func(name string) aws.Config {
				cfg := h.awsConfig(prefix+name, c.Factor, c.Conns)
				if c.Operations != nil {
					cfg.APIOptions = append(cfg.APIOptions, countOperations(c.Operations))
				}
				return cfg
			},
			Env: func(k string) string { return env[k] },
			Log: slog.New(slog.DiscardHandler),
			// The harness plays the queue and admits the jobs itself (stages.go).
			HoldEvidence: true,
		})
	}
	var err error
	if c.Evidence != nil {
		if h.run2, err = newRunner(env, stage2Caller); err != nil {
			h.Close()
			return nil, err
		}
	}
	if h.run, err = newRunner(env, ""); err != nil {
		h.Close()
		return nil, err
	}
	// The same machine the runner runs, loaded here so that every invocation passes through h (costs, records).
	subs := map[string]string{}
	for _, f := range runner.Functions {
		arn := runner.FunctionARN(srv.Region(), srv.AccountID(), f.Name)
		subs[f.Substitution] = arn
		h.names[arn] = f.Name
	}
	subs["Partition"] = partition.Of(srv.Region())
	subs["EvidenceQueueUrl"] = evidenceQueueURL(srv.Region(), srv.AccountID())
	if h.machine, err = asl.Load(c.Definition, subs); err != nil {
		h.Close()
		return nil, fmt.Errorf("load state machine: %w", err)
	}
	h.latency = c.Latency
	if err := h.loadEvidence(c, subs, env); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// awsConfig is the simulator's configuration for a function (its name is the access key, so each call names its
// caller) with the product's retry policy (awscfg), its backoff waited on the simulated clock. The attempt timeout
// (awscfg.AttemptTimeout) stays in real time: the simulator always answers, and a scaled one could fire while a
// request merely waits for a CPU.
func (h *harness) awsConfig(name string, factor float64, conns int) aws.Config {
	cfg := h.srv.AWSConfig(name)
	cfg.Retryer = func() aws.Retryer {
		return awscfg.Retryer(simulatedBackoff{clock: h.clock,
			next: awscfg.FullJitter{Base: awscfg.BaseDelay, Max: awscfg.MaxDelay}})
	}
	if hc, ok := cfg.HTTPClient.(*http.Client); ok {
		c := *hc
		c.Timeout = awscfg.AttemptTimeout
		if tr, ok := c.Transport.(*http.Transport); ok && conns > 0 {
			tr.MaxIdleConns, tr.MaxIdleConnsPerHost = conns, conns
		}
		cfg.HTTPClient = &c
	}
	return cfg
}

// simulatedBackoff waits the product's backoff on the simulated clock and hands the SDK a zero delay: a backoff
// waited in real time would let a CPU-starved storm retry more often per simulated second than AWS would see.
type simulatedBackoff struct {
	clock *virtualClock
	next  awscfg.FullJitter
}

func (b simulatedBackoff) BackoffDelay(attempt int, err error) (time.Duration, error) {
	d, e := b.next.BackoffDelay(attempt, err)
	if e != nil {
		return 0, e
	}
	b.clock.Sleep(d)
	return 0, nil
}

func (h *harness) Close() {
	if h.owner {
		h.srv.Close()
		h.clock.Close()
	}
}

// start runs one execution to its end.
func (h *harness) start(ctx context.Context, name string, input json.RawMessage) *asl.Execution {
	return h.machine.Start(ctx, name, input, h, h.opts)
}

// Invoke implements asl.Invoker: Lambda's invoke overhead, then the function through the runner; the
// sqs:sendMessage service integration goes to the evidence queue (no Lambda involved).
func (h *harness) Invoke(ctx context.Context, resource string, input json.RawMessage) (json.RawMessage, error) {
	if isSendMessage(resource) {
		return h.sendMessage(ctx, input)
	}
	name := h.names[resource]
	h.mu.Lock()
	switch {
	case h.limit > 0 && h.inflight[name] >= h.limit:
		h.refused++
		h.mu.Unlock()
		return nil, &asl.TaskError{Name: "Lambda.TooManyRequestsException",
			Cause: "Rate Exceeded. (Reason: ReservedFunctionConcurrentInvocationLimitExceeded)"}
	case h.limit <= 0 && h.account > 0 && h.running >= h.account:
		h.refused++
		h.mu.Unlock()
		return nil, &asl.TaskError{Name: "Lambda.TooManyRequestsException",
			Cause: "Rate Exceeded. (Reason: ConcurrentInvocationLimitExceeded)"}
	}
	sc := h.scalers[name]
	if sc == nil {
		sc = &scaler{}
		h.scalers[name] = sc
	}
	if !sc.admit(h.clock.Now(), h.inflight[name]) {
		h.refused++
		h.mu.Unlock()
		return nil, &asl.TaskError{Name: "Lambda.TooManyRequestsException", Cause: "Rate Exceeded."}
	}
	h.inflight[name]++
	h.running++
	h.peak = max(h.peak, h.running)
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.inflight[name]--
		h.running--
		h.mu.Unlock()
	}()
	if h.costs.Invoke > 0 {
		if err := h.opts.Sleep(ctx, h.costs.Invoke); err != nil {
			return nil, err
		}
	}
	start := h.clock.Now()
	out, err := h.invokeStage(ctx, resource, input)
	inv := invocation{Function: name, Start: start, End: h.clock.Now(), Failed: err != nil}
	h.mu.Lock()
	h.invocations = append(h.invocations, inv)
	h.mu.Unlock()
	return out, err
}

func (h *harness) recorded() []invocation {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]invocation(nil), h.invocations...)
}

// transitions counts an execution's billed state transitions: every state entered, and every retry of a Task
// (Step Functions bills "each time a step of your workflow is executed ... including retries").
func transitions(e *asl.Execution) int {
	n := 0
	for _, ev := range e.History.Events() {
		switch {
		case strings.HasSuffix(string(ev.Type), "StateEntered"):
			n++
		case ev.Type == asl.TaskScheduled && ev.RetryCount > 0:
			n++
		}
	}
	return n
}
