package sim

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"
)

// faultState is the running state of the faults: token buckets, per-(caller, action) counters for FirstCalls,
// injection counts for Count, and the seeded random source for Rate. It restarts when Account.Faults changes.
type faultState struct {
	rng      *rand.Rand
	buckets  map[string]*tokenBucket
	seen     map[string]int // fault index/caller/action -> matching calls so far
	injected map[int]int    // fault index -> injections so far
}

type tokenBucket struct {
	tokens, capacity, refill float64
	last                     time.Time
}

func newFaultState(f Faults) *faultState {
	seed := f.Seed
	if seed == 0 {
		seed = 1
	}
	return &faultState{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), buckets: map[string]*tokenBucket{},
		seen: map[string]int{}, injected: map[int]int{}}
}

func cloneFaults(f Faults) Faults {
	c := f
	c.Errors = slices.Clone(f.Errors)
	if f.Latency.Actions != nil {
		c.Latency.Actions = map[string]time.Duration{}
		for k, v := range f.Latency.Actions {
			c.Latency.Actions[k] = v
		}
	}
	if f.TokenBuckets.Actions != nil {
		c.TokenBuckets.Actions = map[string]Bucket{}
		for k, v := range f.TokenBuckets.Actions {
			c.TokenBuckets.Actions[k] = v
		}
	}
	return c
}

// injection is a fault chosen for a request: an error answer, or (timeout > 0) no answer at all.
type injection struct {
	err     *apiError
	timeout time.Duration
	applied bool
}

// inject decides whether this request is throttled, fails with an injected error or times out.
func (fs *faultState) inject(f Faults, req *request, now time.Time) *injection {
	if req.service == "ec2" && f.TokenBuckets.Enabled {
		key, b := bucketFor(f.TokenBuckets, req)
		tb := fs.buckets[key]
		if tb == nil {
			tb = &tokenBucket{tokens: b.Capacity, capacity: b.Capacity, refill: b.RefillPerSecond, last: now}
			fs.buckets[key] = tb
		}
		if !tb.take(now) {
			// EC2 answers RequestLimitExceeded with HTTP 503 ("503 request limit exceeded",
			// github.com/jclouds/legacy-jclouds/issues/1214); the SDK retries it as a throttle.
			return &injection{err: errf(503, "RequestLimitExceeded", "Request limit exceeded.")}
		}
	}
	for i, ef := range f.Errors {
		if ef.Action != "" && ef.Action != "*" && ef.Action != req.action {
			continue
		}
		if ef.Service != "" && ef.Service != req.service {
			continue
		}
		if ef.Caller != "" && ef.Caller != req.caller {
			continue
		}
		key := strconv.Itoa(i) + "/" + req.caller + "/" + req.action
		n := fs.seen[key]
		fs.seen[key] = n + 1
		if ef.FirstCalls > 0 && n >= ef.FirstCalls {
			continue
		}
		if ef.Count > 0 && fs.injected[i] >= ef.Count {
			continue
		}
		if ef.Rate > 0 && fs.draw(f, key, n) >= ef.Rate {
			continue
		}
		fs.injected[i]++
		if ef.Timeout > 0 {
			return &injection{timeout: ef.Timeout, applied: ef.Applied}
		}
		status := ef.Status
		if status == 0 {
			status = defaultStatus(ef.Code)
		}
		msg := ef.Message
		if msg == "" {
			msg = defaultMessage(ef.Code)
		}
		return &injection{err: errf(status, ef.Code, "%s", msg)}
	}
	return nil
}

// draw is the random number in [0, 1) of the n-th call matching key (see Faults.Keyed).
func (fs *faultState) draw(f Faults, key string, n int) float64 {
	if !f.Keyed {
		return fs.rng.Float64()
	}
	h := fnv.New64a()
	_, _ = fmt.Fprintf(h, "%d/%s/%d", f.Seed, key, n)
	return rand.New(rand.NewPCG(h.Sum64(), f.Seed)).Float64()
}

func (tb *tokenBucket) take(now time.Time) bool {
	if el := now.Sub(tb.last).Seconds(); el > 0 {
		tb.tokens = math.Min(tb.capacity, tb.tokens+el*tb.refill)
		tb.last = now
	}
	if tb.tokens >= 1 {
		tb.tokens--
		return true
	}
	return false
}

// EC2's documented request token buckets (https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html,
// "Request token bucket sizes and refill rates"), for the actions this simulator serves.
var (
	bucketNonMutating = Bucket{Capacity: 100, RefillPerSecond: 20}
	bucketUnfiltered  = Bucket{Capacity: 50, RefillPerSecond: 10}
	bucketMutating    = Bucket{Capacity: 50, RefillPerSecond: 5}
	// Uncategorized actions with their own sizes.
	bucketUncategorized = map[string]Bucket{
		"AssociateIamInstanceProfile":     {100, 5},
		"DisassociateIamInstanceProfile":  {100, 5},
		"CreateSnapshots":                 {100, 5},
		"CreateTags":                      {100, 10},
		"ModifyNetworkInterfaceAttribute": {100, 5},
	}
	// Describe actions that use the smaller bucket when called without a filter and without pagination.
	unfilteredActions = map[string]bool{
		"DescribeInstances": true, "DescribeInstanceStatus": true, "DescribeNetworkInterfaces": true,
		"DescribeSecurityGroups": true, "DescribeSnapshots": true, "DescribeSpotInstanceRequests": true,
		"DescribeVolumes": true,
	}
)

// bucketFor returns the bucket key and size for a request.
func bucketFor(tb TokenBuckets, req *request) (string, Bucket) {
	mutating := isMutating(req.service, req.action)
	category, size := "non-mutating", bucketNonMutating
	if mutating {
		category, size = "mutating", bucketMutating
		if b, ok := bucketUncategorized[req.action]; ok {
			size = b
		}
		if tb.Mutating.Capacity > 0 {
			size = tb.Mutating
		}
	} else {
		unfiltered := unfilteredActions[req.action] && !req.p.has("Filter") && !req.p.has("MaxResults") &&
			!req.p.has("NextToken")
		if unfiltered {
			category, size = "unfiltered", bucketUnfiltered
		}
		if tb.NonMutating.Capacity > 0 {
			size = tb.NonMutating
		}
	}
	if b, ok := tb.Actions[req.action]; ok && b.Capacity > 0 {
		return "action/" + req.action, b
	}
	if tb.Shared {
		return "category/" + category, size
	}
	return category + "/" + req.action, size
}

func defaultStatus(code string) int {
	switch code {
	case "InternalError", "InternalFailure":
		return 500
	case "Unavailable", "ServiceUnavailable", "RequestLimitExceeded":
		return 503
	}
	return 400
}

func defaultMessage(code string) string {
	switch code {
	case "InternalError", "InternalFailure":
		return "An internal error has occurred"
	case "Unavailable", "ServiceUnavailable":
		return "The service is unavailable. Please try again shortly."
	case "RequestLimitExceeded":
		return "Request limit exceeded."
	case "Throttling":
		return "Rate exceeded"
	}
	return "Injected fault " + code
}
