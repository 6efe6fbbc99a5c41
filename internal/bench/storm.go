package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
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

// StormResult is the storm row.
type StormResult struct {
	Instances, Isolated, Failed int
	FailedBy                    map[string]int    // what failed the failed executions ("state: error")
	FailureCause                map[string]string // one cause of each
	Calls, Operations           int               // HTTP requests, and SDK operations (calls before retries)
	Throttled                   int               // RequestLimitExceeded answers
	ThrottledBy                 map[string]int    // by action
	StateRetries                int               // Task retries by the state machine
	LambdaRefused               int               // invocations refused over the reserved concurrency
	Makespan                    time.Duration     // first execution start -> last execution end
	Containment                 time.Duration     // first execution start -> last instance contained
	// ContainBound is ModifyNetworkInterfaceAttribute's bound; Bounds every mutating EC2 action's, largest first.
	ContainBound Bound
	Bounds       []Bound
	// ReadBounds are the non-mutating buckets' bounds, largest first.
	ReadBounds  []Bound
	P50, P99    time.Duration // execution start -> its instance contained
	Transitions int
	Invocations []invocation
	Factor      float64
	Concurrency int
	Real        time.Duration
	// Excluded is the real time the process was starved of CPU, kept out of simulated time (virtualClock);
	// LagMax the longest such stretch.
	Excluded, LagMax time.Duration
}

// storm tags n instances at once (copies of the base instance with one ENI, in a subnet of their own) and runs
// their executions concurrently against EC2's token buckets.
func (b *bench) storm(ctx context.Context, concurrency int) (StormResult, error) {
	n := b.opts.Storm
	res := StormResult{Instances: n, Factor: b.opts.StormFactor, Concurrency: concurrency, FailedBy: map[string]int{}, ThrottledBy: map[string]int{},
		FailureCause: map[string]string{}}
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
	h, err := newHarness(harnessConfig{Scenario: sc, Factor: b.opts.StormFactor, Costs: b.opts.Costs, Env: b.env,
		Concurrency: concurrency, Conns: 256, Operations: &ops})
	if err != nil {
		return res, err
	}
	defer h.Close()

	events := make([][]byte, n)
	for k, id := range ids {
		if events[k], err = tagEvent(b.opts.Event, sc, id); err != nil {
			return res, err
		}
	}
	execs := make([]*asl.Execution, n)
	excludedBefore, _ := h.clock.Excluded()
	realStart := time.Now()
	start := h.clock.Now()
	var wg sync.WaitGroup
	for k := range n {
		wg.Go(func() { execs[k] = h.start(ctx, fmt.Sprintf("storm-%04d", k), events[k]) })
	}
	wg.Wait()
	res.Real = time.Since(realStart)
	excluded, lags := h.clock.Excluded()
	res.Excluded = excluded - excludedBefore
	slices.Sort(lags)
	res.LagMax = percentile(lags, 1)
	calls := h.srv.Calls()
	// Read back without throttling (the check is not part of the storm).
	h.srv.Update(func(a *sim.Account) { a.Faults.TokenBuckets.Enabled = false })

	end := start
	for _, e := range execs {
		if e.StopTime.After(end) {
			end = e.StopTime
		}
		if e.Status != asl.StatusSucceeded {
			res.Failed++
			what, cause := failureOf(e)
			res.FailedBy[what]++
			if res.FailureCause[what] == "" {
				res.FailureCause[what] = truncate(cause, 400)
			}
		}
		res.Transitions += transitions(e)
		for _, ev := range e.History.Events() {
			if ev.Type == asl.TaskScheduled && ev.RetryCount > 0 {
				res.StateRetries++
			}
		}
	}
	res.Makespan = end.Sub(start)
	res.Operations = int(ops.Load())
	res.Invocations = h.recorded()
	h.mu.Lock()
	res.LambdaRefused = h.refused
	h.mu.Unlock()

	// Every ENI of the storm's instances, read back through the SDK.
	final, err := stormENIs(ctx, ec2.NewFromConfig(h.srv.AWSConfig("bench-check")))
	if err != nil {
		return res, err
	}
	contained := map[string]bool{} // instance -> every ENI only on the isolation group
	for inst, enis := range final {
		contained[inst] = isolated(enis, b.groupName())
	}
	mutating, reads := map[string]int{}, map[string]int{}
	for _, c := range calls {
		res.Calls++
		if c.ErrorCode == "RequestLimitExceeded" {
			res.Throttled++
			res.ThrottledBy[c.Action]++
			continue
		}
		switch {
		case c.Service != "ec2":
		case c.Mutating && !c.DryRun:
			mutating[c.Action]++ // a call past the bucket took a token, whatever its answer
		default:
			reads[readBucketKey(c)]++
		}
	}
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
	for _, c := range calls {
		if c.Action != "ModifyNetworkInterfaceAttribute" || c.ErrorCode != "" || c.HTTPStatus != 200 {
			continue
		}
		eni := c.Params.Get("NetworkInterfaceId")
		e, ok := eniFinal[eni]
		if !ok || seen[eni] {
			continue
		}
		set := indexed(c.Params, "SecurityGroupId")
		slices.Sort(set)
		if !slices.Equal(set, e.groups) {
			continue
		}
		seen[eni] = true
		if inst := eniInstance[eni]; c.End.After(containedAt[inst]) {
			containedAt[inst] = c.End
		}
	}
	byName := map[string]*asl.Execution{}
	for _, e := range execs {
		byName[eventInstance(e)] = e
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
		if e := byName[id]; e != nil {
			times = append(times, at.Sub(e.StartTime))
		}
	}
	res.Containment = lastContained.Sub(start)
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	res.P50, res.P99 = percentile(times, 0.50), percentile(times, 0.99)
	for action, k := range mutating {
		res.Bounds = append(res.Bounds, bucketBound(action, k))
	}
	for key, k := range reads {
		b := nonMutatingBucket
		if strings.HasSuffix(key, " (unfiltered)") {
			b = unfilteredBucket
		}
		res.ReadBounds = append(res.ReadBounds, boundOf(key, b, k))
	}
	sort.Slice(res.ReadBounds, func(i, j int) bool { return res.ReadBounds[i].Time > res.ReadBounds[j].Time })
	sort.Slice(res.Bounds, func(i, j int) bool {
		if res.Bounds[i].Time != res.Bounds[j].Time {
			return res.Bounds[i].Time > res.Bounds[j].Time
		}
		return res.Bounds[i].Action < res.Bounds[j].Action
	})
	res.ContainBound = bucketBound("ModifyNetworkInterfaceAttribute", mutating["ModifyNetworkInterfaceAttribute"])
	return res, nil
}

// eventInstance is the instance an execution's input names.
func eventInstance(e *asl.Execution) string {
	var in struct {
		Resources []string `json:"resources"`
	}
	if err := json.Unmarshal(e.Input, &in); err != nil || len(in.Resources) == 0 {
		return ""
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
