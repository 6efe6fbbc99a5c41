package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/ec2-isolation/ec2-isolation/internal/asl"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
)

// EC2's documented request token buckets (https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html,
// "Request token bucket sizes and refill rates"), as the simulator applies them: mutating actions 50 tokens
// refilled at 5 per second, and the uncategorized actions the workflow uses with their own buckets.
var (
	mutatingBucket = sim.Bucket{Capacity: 50, RefillPerSecond: 5}
	actionBuckets  = map[string]sim.Bucket{
		"AssociateIamInstanceProfile":     {Capacity: 100, RefillPerSecond: 5},
		"DisassociateIamInstanceProfile":  {Capacity: 100, RefillPerSecond: 5},
		"CreateSnapshots":                 {Capacity: 100, RefillPerSecond: 5},
		"CreateTags":                      {Capacity: 100, RefillPerSecond: 10},
		"ModifyNetworkInterfaceAttribute": {Capacity: 100, RefillPerSecond: 5},
	}
)

func bucketOf(action string) sim.Bucket {
	if b, ok := actionBuckets[action]; ok {
		return b
	}
	return mutatingBucket
}

// Non-mutating buckets: 100 tokens at 20/s; the Describe actions called without a filter and without pagination
// use 50 at 10/s (a separate bucket, keyed "<action> (unfiltered)").
var (
	nonMutatingBucket = sim.Bucket{Capacity: 100, RefillPerSecond: 20}
	unfilteredBucket  = sim.Bucket{Capacity: 50, RefillPerSecond: 10}
	unfilteredActions = map[string]bool{"DescribeInstances": true, "DescribeInstanceStatus": true,
		"DescribeNetworkInterfaces": true, "DescribeSecurityGroups": true, "DescribeSnapshots": true,
		"DescribeSpotInstanceRequests": true, "DescribeVolumes": true}
)

// readBucketKey is the bucket a non-mutating EC2 call takes its token from (as the simulator decides it).
func readBucketKey(c sim.Call) string {
	if unfilteredActions[c.Action] && c.Params.Get("Filter.1.Name") == "" && c.Params.Get("MaxResults") == "" &&
		c.Params.Get("NextToken") == "" {
		return c.Action + " (unfiltered)"
	}
	return c.Action
}

// Bound is the least time an action's bucket needs to let n calls through: (n - capacity) / refill.
type Bound struct {
	Action string
	Calls  int
	Bucket sim.Bucket
	Time   time.Duration
}

func bucketBound(action string, n int) Bound { return boundOf(action, bucketOf(action), n) }

func boundOf(action string, b sim.Bucket, n int) Bound {
	t := 0.0
	if float64(n) > b.Capacity {
		t = (float64(n) - b.Capacity) / b.RefillPerSecond
	}
	return Bound{Action: action, Calls: n, Bucket: b, Time: time.Duration(t * float64(time.Second))}
}

// Step Functions' documented API quotas (https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html,
// "Quotas related to API action throttling" and "state throttling"; us-east-1, us-west-2, eu-west-1): StartExecution
// a bucket of 1,300 refilled at 300 per second, state transitions 5,000 refilled at 5,000 per second. The admission
// starter's StartExecution calls take a token from the first; the second is counted (Transitions per second) and
// printed beside its quota.
var (
	startExecutionBucket  = sim.Bucket{Capacity: 1300, RefillPerSecond: 300}
	stateTransitionBucket = sim.Bucket{Capacity: 5000, RefillPerSecond: 5000}
)

// StormResult is the storm row.
type StormResult struct {
	Instances, Isolated, Failed int
	FailedBy                    map[string]int    // what failed the failed executions ("state: error")
	FailureCause                map[string]string // one cause of each
	Calls, Operations           int               // HTTP requests, and SDK operations (calls before retries)
	Throttled                   int               // RequestLimitExceeded answers
	ThrottledBy                 map[string]int    // by action
	StateRetries                int               // Task retries by the state machine
	MostRetries                 int               // the most retries of one Task visit: the margin to its budget
	MostRetriesAt               string            // that Task's state and the error it retried last
	LambdaRefused               int               // invocations refused (reserved or account concurrency)
	LambdaPeak                  int               // most invocations in flight at once, all functions
	Makespan                    time.Duration     // tag -> last execution end
	Containment                 time.Duration     // tag -> last instance contained
	// ContainBound is ModifyNetworkInterfaceAttribute's bound; Bounds every mutating EC2 action's, largest first.
	ContainBound Bound
	Bounds       []Bound
	// ReadBounds are the non-mutating buckets' bounds, largest first; ReadCallers the calls of the first by
	// function.
	ReadBounds  []Bound
	ReadCallers map[string]int
	// P50, P99: the instance tagged -> contained (the wait for admission included).
	P50, P99    time.Duration
	Transitions int
	// TransitionsPeak is the most state transitions in one simulated second (quota: stateTransitionBucket).
	TransitionsPeak int
	Invocations     []invocation
	Factor          float64
	// TailFactor is the clock's speed after StageOneEnded (tag -> every isolation ended); 0: Factor throughout.
	TailFactor    float64
	StageOneEnded time.Duration
	Concurrency   int
	// Window is the admission window (executions running at once; 0: every execution started at the tag) and
	// AccountConcurrency the account's Lambda concurrency (0: unlimited).
	Window, AccountConcurrency int
	// AdmittedLast is when the last execution was started (tag -> its StartExecution); Shortest the shortest
	// execution (start -> end): an isolation that hardly waited, the tail every makespan has beyond the bound.
	AdmittedLast, Shortest time.Duration
	// Stage 2 (issue 16): EvidenceWindow is the evidence executions running at once at most; EvidenceSent the
	// jobs the isolations sent, EvidenceExecutions the evidence executions started; EvidenceMakespan the tag ->
	// the last evidence execution that succeeded; EvidenceAdmittedLast the tag -> the last one's start;
	// EvidenceBound ModifyInstanceAttribute's bound, the stated bound for evidence.
	EvidenceWindow, EvidenceSent, EvidenceExecutions int
	EvidenceMakespan, EvidenceAdmittedLast           time.Duration
	EvidenceBound                                    Bound
	// FirstContained is the least time to containment; EvidenceShortest the shortest evidence execution.
	FirstContained, EvidenceShortest time.Duration
	// Stage1Bound is the largest bound over the buckets the isolation executions (stage 1) used: the least
	// containment makespan their calls allow, whatever the bucket.
	Stage1Bound Bound
	// Stage2Calls are stage 2's calls by action (those past their bucket), StageOneModifies stage 1's
	// ModifyInstanceAttribute calls (none: the instance settings are stage 2's).
	Stage2Calls      map[string]int
	StageOneModifies int
	// Evidence: instances whose evidence was read back complete (termination protection on, shutdown behaviour
	// stop, no volume deleted on termination, a snapshot of each volume, an incident record).
	Evidence, Snapshots, Records int
	EvidenceMissing              []string // a few examples of what was missing
	Real                         time.Duration
	// Excluded is the real time the process was starved of CPU, kept out of simulated time (virtualClock);
	// LagMax the longest such stretch.
	Excluded, LagMax time.Duration
}

// execSummary is what the storm keeps of an execution once it ended (the execution and its history are dropped:
// 10,000 histories held to the end were most of the bench's memory).
type execSummary struct {
	instance             string
	start, stop          time.Time
	failed               bool
	what, cause          string
	transitions, retries int
	mostRetries          int         // of one Task visit
	mostRetriesAt        string      // its state and the error retried last
	entered              []time.Time // when each state was entered (transitions per second)
	evidence             bool        // a stage-2 (evidence) execution
}

func summarise(e *asl.Execution) execSummary {
	s := execSummary{instance: eventInstance(e), start: e.StartTime, stop: e.StopTime, failed: e.Status != asl.StatusSucceeded,
		transitions: transitions(e)}
	if s.failed {
		s.what, s.cause = failureOf(e)
	}
	lastErr := ""
	for _, ev := range e.History.Events() {
		if ev.Type == asl.TaskFailed || ev.Type == asl.TaskTimedOut {
			lastErr = ev.Error
		}
		if ev.Type == asl.TaskScheduled && ev.RetryCount > 0 {
			s.retries++
			s.entered = append(s.entered, ev.Timestamp)
			if ev.RetryCount > s.mostRetries {
				s.mostRetries, s.mostRetriesAt = ev.RetryCount, ev.State+", "+lastErr
			}
		}
		if strings.HasSuffix(string(ev.Type), "StateEntered") {
			s.entered = append(s.entered, ev.Timestamp)
		}
	}
	return s
}

// modifyCall is a successful ModifyNetworkInterfaceAttribute: the ENI, its groups (sorted) and the answer's time.
type modifyCall struct {
	eni    string
	groups []string
	end    time.Time
}

// callTally counts the simulator's calls as they are answered (sim.WithCallSink): a 10,000-instance storm makes
// too many to keep.
type callTally struct {
	closed           bool // the storm is over: the read-back's calls are not the storm's
	calls, throttled int
	throttledBy      map[string]int
	mutating, reads  map[string]int
	readsBy          map[string]map[string]int // read bucket -> caller (function) -> calls past the bucket
	// stage1 counts the calls of stage 1 (the isolation executions) past each bucket: "mutating/<action>" or
	// "read/<bucket key>".
	stage1 map[string]int
	// stage2 counts stage 2's calls past their bucket by action.
	stage2   map[string]int
	modifies []modifyCall
}

func (t *callTally) add(c sim.Call) {
	if t.closed {
		return
	}
	t.calls++
	if c.ErrorCode == "RequestLimitExceeded" {
		t.throttled++
		t.throttledBy[c.Action]++
		return
	}
	if t.stage2 != nil && strings.HasPrefix(c.Caller, stage2Caller) {
		t.stage2[c.Action]++
	}
	switch {
	case c.Service != "ec2":
	case c.Mutating && !c.DryRun:
		t.mutating[c.Action]++ // a call past the bucket took a token, whatever its answer
		if t.stage1 != nil && !strings.HasPrefix(c.Caller, stage2Caller) {
			t.stage1["mutating/"+c.Action]++
		}
	default:
		key := readBucketKey(c)
		t.reads[key]++
		if t.stage1 != nil && !strings.HasPrefix(c.Caller, stage2Caller) {
			t.stage1["read/"+key]++
		}
		if t.readsBy != nil {
			if t.readsBy[key] == nil {
				t.readsBy[key] = map[string]int{}
			}
			t.readsBy[key][c.Caller]++
		}
	}
	if c.Action == "ModifyNetworkInterfaceAttribute" && c.ErrorCode == "" && c.HTTPStatus == 200 {
		set := indexed(c.Params, "SecurityGroupId")
		slices.Sort(set)
		t.modifies = append(t.modifies, modifyCall{eni: c.Params.Get("NetworkInterfaceId"), groups: set, end: c.End})
	}
}

// storm tags n instances at once (copies of the base instance with one ENI, in a subnet of their own) and runs
// their executions against EC2's token buckets. With an admission window (Options.Window) the tag events queue
// and at most Window executions run at once, started in tag order as the admission starter does (queue ->
// starter -> StartExecution); without one every execution starts at the tag, as an EventBridge rule targeting
// the state machine does.
func (b *bench) storm(ctx context.Context, concurrency int) (StormResult, error) {
	n := b.opts.Storm
	res := StormResult{Instances: n, Factor: b.opts.StormFactor, Concurrency: concurrency, FailedBy: map[string]int{}, ThrottledBy: map[string]int{},
		FailureCause: map[string]string{}, Window: b.opts.Window, AccountConcurrency: b.opts.AccountConcurrency}
	sc, err := b.baseScenario()
	if err != nil {
		return res, err
	}
	if err := addSubnet(&sc); err != nil {
		return res, err
	}
	base := sc.Instances[0]
	ids := make([]string, n)
	for k := range n {
		in := cloneInstance(base, 1000+k, 1, benchSubnet)
		ids[k] = in.ID
		sc.Instances = append(sc.Instances, in)
	}
	sc = withLatency(sc, b.opts.Latency, true)
	var ops atomic.Int64
	tally := &callTally{throttledBy: map[string]int{}, mutating: map[string]int{}, reads: map[string]int{},
		readsBy: map[string]map[string]int{}, stage1: map[string]int{}, stage2: map[string]int{}}
	evidenceDef, err := evidenceDefinition()
	if err != nil {
		return res, err
	}
	h, err := newHarness(harnessConfig{Scenario: sc, Factor: b.opts.StormFactor, Costs: b.opts.Costs, Env: b.env,
		Concurrency: concurrency, AccountConcurrency: b.opts.AccountConcurrency, Conns: 256, Operations: &ops,
		InProcess: true, CallSink: tally.add, Evidence: evidenceDef, Latency: b.opts.Latency})
	if err != nil {
		return res, err
	}
	defer h.Close()
	queue := newJobQueue(n)
	h.queue = queue.send
	res.EvidenceWindow = b.opts.EvidenceWindow

	events := make([][]byte, n)
	for k, id := range ids {
		if events[k], err = tagEvent(b.opts.Event, sc, id); err != nil {
			return res, err
		}
	}
	summaries := make([]execSummary, n)
	excludedBefore, _ := h.clock.Excluded()
	realStart := time.Now()
	start := h.clock.Now() // every instance tagged
	run := func(k int) {
		summaries[k] = summarise(h.start(ctx, fmt.Sprintf("storm-%05d", k), events[k]))
		events[k] = nil
	}
	var wg, wg2 sync.WaitGroup
	var admittedLast, admittedLast2 atomic.Int64
	// One StartExecution bucket per account and Region: both starters take their tokens from it.
	sfn := &tokenWaiter{clock: h.clock, bucket: startExecutionBucket}
	// Stage 2: the starter's second event source; at most EvidenceWindow evidence executions run at once, each
	// job started in the order it was sent.
	var mu sync.Mutex
	var summaries2 []execSummary
	for range max(1, b.opts.EvidenceWindow) {
		wg2.Go(func() {
			for job := range queue.jobs {
				sfn.take()
				admittedLast2.Store(int64(h.clock.Now().Sub(start)))
				s := summarise(h.startEvidence(ctx, job))
				s.evidence = true
				mu.Lock()
				summaries2 = append(summaries2, s)
				mu.Unlock()
			}
		})
	}
	if w := b.opts.Window; w > 0 {
		// The starter: the queue hands out events in tag order; each of w slots starts the next execution when
		// its previous one ended, after StartExecution's bucket grants a token.
		next := make(chan int, n)
		for k := range n {
			next <- k
		}
		close(next)
		for range min(w, n) {
			wg.Go(func() {
				for k := range next {
					sfn.take()
					admittedLast.Store(int64(h.clock.Now().Sub(start)))
					run(k)
				}
			})
		}
	} else {
		// EventBridge calls StartExecution once per event; a throttled call is retried by the target's retry
		// policy (template.yaml: 185 attempts within 24 hours), modelled as waiting for StartExecution's bucket.
		for k := range n {
			wg.Go(func() {
				sfn.take()
				run(k)
			})
		}
	}
	wg.Wait()
	close(queue.jobs) // every isolation ended: no job comes after
	res.StageOneEnded = h.clock.Now().Sub(start)
	if f := b.opts.TailFactor; f > 0 && f != b.opts.StormFactor {
		h.clock.SetFactor(f)
		res.TailFactor = f
	}
	wg2.Wait()
	if b.opts.HeapProfile != "" {
		if err := writeHeapProfile(b.opts.HeapProfile); err != nil {
			return res, err
		}
	}
	res.AdmittedLast = time.Duration(admittedLast.Load())
	res.Real = time.Since(realStart)
	excluded, lags := h.clock.Excluded()
	res.Excluded = excluded - excludedBefore
	slices.Sort(lags)
	res.LagMax = percentile(lags, 1)
	// Read back without throttling and without latency (the check is not part of the storm: at 10,000
	// instances, 40,000 reads each waiting 100 simulated ms took 14 minutes at x5).
	// The tally closes under the simulator's lock, in the same update: no read-back call reaches it.
	h.srv.Update(func(a *sim.Account) {
		a.Faults.TokenBuckets.Enabled = false
		a.Faults.Latency = sim.Latency{}
		tally.closed = true
	})

	end := start
	perSecond := map[int64]int{}
	res.EvidenceSent, res.EvidenceExecutions = int(queue.sent.Load()), len(summaries2)
	res.EvidenceAdmittedLast = time.Duration(admittedLast2.Load())
	for _, e := range summaries2 {
		if !e.failed && e.stop.Sub(start) > res.EvidenceMakespan {
			res.EvidenceMakespan = e.stop.Sub(start)
		}
		if d := e.stop.Sub(e.start); res.EvidenceShortest == 0 || d < res.EvidenceShortest {
			res.EvidenceShortest = d
		}
	}
	for _, e := range append(summaries, summaries2...) {
		if e.stop.After(end) {
			end = e.stop
		}
		if e.failed {
			if e.evidence {
				e.what = "evidence: " + e.what
			}
			res.Failed++
			res.FailedBy[e.what]++
			if res.FailureCause[e.what] == "" {
				res.FailureCause[e.what] = truncate(e.cause, 400)
			}
		}
		if d := e.stop.Sub(e.start); !e.evidence && (res.Shortest == 0 || d < res.Shortest) {
			res.Shortest = d
		}
		res.Transitions += e.transitions
		res.StateRetries += e.retries
		if e.mostRetries > res.MostRetries {
			res.MostRetries, res.MostRetriesAt = e.mostRetries, e.mostRetriesAt
		}
		for _, t := range e.entered {
			perSecond[t.Sub(start).Milliseconds()/1000]++
		}
	}
	for _, k := range perSecond {
		res.TransitionsPeak = max(res.TransitionsPeak, k)
	}
	res.Makespan = end.Sub(start)
	res.Operations = int(ops.Load())
	res.Invocations = h.recorded()
	h.mu.Lock()
	res.LambdaRefused, res.LambdaPeak = h.refused, h.peak
	h.mu.Unlock()

	// Every ENI of the storm's instances, read back through the SDK.
	client := ec2.NewFromConfig(h.srv.AWSConfig("bench-check"))
	final, err := stormENIs(ctx, client)
	if err != nil {
		return res, err
	}
	if err := b.stormEvidence(ctx, h, client, ids, &res); err != nil {
		return res, err
	}
	contained := map[string]bool{} // instance -> every ENI only on the isolation group
	for inst, enis := range final {
		contained[inst] = isolated(enis, b.groupName())
	}
	res.Calls, res.Throttled, res.ThrottledBy = tally.calls, tally.throttled, tally.throttledBy
	// Each ENI's containing call: the first successful modify that gave it its final groups; an instance is
	// contained when its last ENI is.
	eniFinal, eniInstance := map[string]eniState{}, map[string]string{}
	for inst, enis := range final {
		for _, e := range enis {
			eniFinal[e.id], eniInstance[e.id] = e, inst
		}
	}
	containedAt := map[string]time.Time{}
	seen := map[string]bool{}
	sort.SliceStable(tally.modifies, func(i, j int) bool { return tally.modifies[i].end.Before(tally.modifies[j].end) })
	for _, c := range tally.modifies {
		e, ok := eniFinal[c.eni]
		if !ok || seen[c.eni] || !slices.Equal(c.groups, e.groups) {
			continue
		}
		seen[c.eni] = true
		if inst := eniInstance[c.eni]; c.end.After(containedAt[inst]) {
			containedAt[inst] = c.end
		}
	}
	var times []time.Duration
	lastContained := start
	for _, id := range ids {
		if !contained[id] {
			continue
		}
		res.Isolated++
		at, ok := containedAt[id]
		if !ok {
			continue
		}
		if at.After(lastContained) {
			lastContained = at
		}
		// From the tag (every instance was tagged at start), not from its execution's start: the wait for
		// admission is part of what the responder sees.
		times = append(times, at.Sub(start))
	}
	res.Containment = lastContained.Sub(start)
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	res.P50, res.P99 = percentile(times, 0.50), percentile(times, 0.99)
	if len(times) > 0 {
		res.FirstContained = times[0]
	}
	for action, k := range tally.mutating {
		res.Bounds = append(res.Bounds, bucketBound(action, k))
	}
	for key, k := range tally.reads {
		b := nonMutatingBucket
		if strings.HasSuffix(key, " (unfiltered)") {
			b = unfilteredBucket
		}
		res.ReadBounds = append(res.ReadBounds, boundOf(key, b, k))
	}
	sort.Slice(res.ReadBounds, func(i, j int) bool { return res.ReadBounds[i].Time > res.ReadBounds[j].Time })
	if len(res.ReadBounds) > 0 {
		res.ReadCallers = tally.readsBy[res.ReadBounds[0].Action]
	}
	sort.Slice(res.Bounds, func(i, j int) bool {
		if res.Bounds[i].Time != res.Bounds[j].Time {
			return res.Bounds[i].Time > res.Bounds[j].Time
		}
		return res.Bounds[i].Action < res.Bounds[j].Action
	})
	res.ContainBound = bucketBound("ModifyNetworkInterfaceAttribute", tally.mutating["ModifyNetworkInterfaceAttribute"])
	res.EvidenceBound = bucketBound("ModifyInstanceAttribute", tally.mutating["ModifyInstanceAttribute"])
	res.Stage1Bound = stage1Binding(tally.stage1)
	res.Stage2Calls = tally.stage2
	res.StageOneModifies = tally.stage1["mutating/ModifyInstanceAttribute"]
	return res, nil
}

// stage1Binding is the largest bound over the buckets stage 1's calls went through (tally.stage1's keys).
func stage1Binding(calls map[string]int) Bound {
	var best Bound
	for key, n := range calls {
		var b Bound
		switch kind, name, _ := strings.Cut(key, "/"); {
		case kind == "mutating":
			b = bucketBound(name, n)
		case strings.HasSuffix(name, " (unfiltered)"):
			b = boundOf(name, unfilteredBucket, n)
		default:
			b = boundOf(name, nonMutatingBucket, n)
		}
		if b.Time > best.Time || (b.Time == best.Time && b.Action < best.Action) {
			best = b
		}
	}
	return best
}

// Binding is the largest bound over every bucket: the least makespan EC2's buckets allow for the calls made.
func (s StormResult) Binding() Bound {
	var b Bound
	for _, x := range append(append([]Bound(nil), s.Bounds...), s.ReadBounds...) {
		if x.Time > b.Time {
			b = x
		}
	}
	return b
}

// The ratios of issue 16's storm goals (simulated times only, so a loaded machine does not move them much).
const (
	boundGoal = 1.1  // a makespan at most this many times its bucket's bound
	fairGoal  = 0.55 // p50 time to containment at most this share of the containment makespan
)

// Check returns the storm's properties that do not hold (issue 16), none when all do: every instance contained,
// no failed execution, evidence, snapshots and records complete; fair (p50 time to containment at most 0.55x the
// containment makespan); containment within 1.1x the bound of stage 1's binding bucket; evidence complete within
// 1.1x ModifyInstanceAttribute's bound (the stated bound); the whole storm within 1.1x the binding bucket's bound.
// Containment against ModifyNetworkInterfaceAttribute's own bound is apart: see Unchecked.
func (s StormResult) Check() []string {
	var bad []string
	if s.Isolated != s.Instances {
		bad = append(bad, fmt.Sprintf("%d of %d instances contained", s.Isolated, s.Instances))
	}
	if s.Failed != 0 {
		bad = append(bad, fmt.Sprintf("%d failed executions", s.Failed))
	}
	if s.Evidence != s.Instances || s.Snapshots != s.Instances || s.Records != s.Instances {
		bad = append(bad, fmt.Sprintf("evidence %d, snapshots %d, records %d of %d", s.Evidence, s.Snapshots, s.Records, s.Instances))
	}
	if s.Containment <= 0 || s.P50.Seconds() > fairGoal*s.Containment.Seconds() {
		bad = append(bad, fmt.Sprintf("p50 time to containment %v > %g x containment makespan %v", s.P50, fairGoal, s.Containment))
	}
	// Each bound plus the least time one item takes alone (the first containment, the shortest evidence
	// execution, the shortest isolation): a tail no bucket explains, a fraction of a percent of the bound at
	// 10,000 instances, not at 300.
	within := func(what string, d time.Duration, b Bound, tail time.Duration) {
		if d.Seconds() > boundGoal*(b.Time+tail).Seconds() {
			bad = append(bad, fmt.Sprintf("%s %v > %g x (%s's bound %v + %v)", what, d, boundGoal, b.Action, b.Time, tail))
		}
	}
	within("evidence complete", s.EvidenceMakespan, s.EvidenceBound, s.EvidenceShortest)
	within("makespan", s.Makespan, s.Binding(), s.Shortest)
	return bad
}

// Unchecked returns the containment goals that do not hold: the last instance contained within 1.1x
// ModifyNetworkInterfaceAttribute's bound (issue 16), and within 1.1x stage 1's binding bound. Both are reported,
// not checked by -check: stage 1's binding bucket is a read bucket (DescribeIamInstanceProfileAssociations, about
// 3.5 calls per isolation at 20 per second), and at 300 instances its ratio moved from 0.97 to 1.30 between two
// runs of the same build on a loaded machine (docs/PERFORMANCE.md), too noisy for CI to fail on.
func (s StormResult) Unchecked() []string {
	var slow []string
	for _, b := range []Bound{s.ContainBound, s.Stage1Bound} {
		if s.Containment.Seconds() > boundGoal*(b.Time+s.FirstContained).Seconds() {
			slow = append(slow, fmt.Sprintf("containment makespan %v > %g x (%s's bound %v + %v)", s.Containment, boundGoal, b.Action, b.Time, s.FirstContained))
		}
	}
	return slow
}

// tokenWaiter takes a token from a bucket on the simulated clock, waiting for the refill when it is empty (the
// starter waits, it does not fail: a throttled StartExecution is retried, not dropped).
type tokenWaiter struct {
	mu     sync.Mutex
	clock  *virtualClock
	bucket sim.Bucket
	tokens float64
	last   time.Time
	init   bool
}

func (w *tokenWaiter) take() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		now := w.clock.Now()
		if !w.init {
			w.tokens, w.last, w.init = w.bucket.Capacity, now, true
		}
		w.tokens = math.Min(w.bucket.Capacity, w.tokens+now.Sub(w.last).Seconds()*w.bucket.RefillPerSecond)
		w.last = now
		if w.tokens >= 1 {
			w.tokens--
			return
		}
		w.clock.Sleep(time.Duration((1 - w.tokens) / w.bucket.RefillPerSecond * float64(time.Second)))
	}
}

// eventInstance is the instance an execution's input names (a tag event's resource, an evidence job's instanceId).
func eventInstance(e *asl.Execution) string {
	var in struct {
		Resources  []string `json:"resources"`
		InstanceID string   `json:"instanceId"`
	}
	if err := json.Unmarshal(e.Input, &in); err != nil || len(in.Resources) == 0 {
		return in.InstanceID
	}
	r := in.Resources[0]
	for i := len(r) - 1; i >= 0; i-- {
		if r[i] == '/' {
			return r[i+1:]
		}
	}
	return r
}

// stormENIs reads every ENI of the bench subnet, by instance.
func stormENIs(ctx context.Context, c *ec2.Client) (map[string][]eniState, error) {
	out := map[string][]eniState{}
	p := ec2.NewDescribeNetworkInterfacesPaginator(c, &ec2.DescribeNetworkInterfacesInput{
		Filters: []ec2types.Filter{{Name: aws.String("subnet-id"), Values: []string{benchSubnet}}}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe the storm's ENIs: %w", err)
		}
		for _, ni := range page.NetworkInterfaces {
			e := eniState{id: aws.ToString(ni.NetworkInterfaceId), vpc: aws.ToString(ni.VpcId)}
			for _, g := range ni.Groups {
				e.groups = append(e.groups, aws.ToString(g.GroupId))
				e.names = append(e.names, aws.ToString(g.GroupName))
			}
			slices.Sort(e.groups)
			inst := ""
			if ni.Attachment != nil {
				inst = aws.ToString(ni.Attachment.InstanceId)
			}
			out[inst] = append(out[inst], e)
		}
	}
	return out, nil
}

// percentile is the nearest-rank q-quantile of sorted durations.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// countOperations is an SDK middleware counting operations (each counted once, however often it is retried).
func countOperations(n *atomic.Int64) func(*middleware.Stack) error {
	return func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("BenchCountOperations",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				n.Add(1)
				return next.HandleInitialize(ctx, in)
			}), middleware.Before)
	}
}

// failureOf names what failed an execution: the first Task failure no retry recovered ("state: error", and its
// cause), else the execution's error.
func failureOf(e *asl.Execution) (string, string) {
	for _, r := range e.History.Summary() {
		if (r.Status == asl.RunFailed || r.Status == asl.RunCaught) && r.Type == "Task" {
			return r.Name + ": " + r.Error, r.Cause
		}
	}
	return e.Error, e.Cause
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
