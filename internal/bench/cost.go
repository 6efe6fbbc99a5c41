package bench

import (
	"math"
	"time"
)

// List prices, us-east-1, as published on the providers' pricing pages (read 2026-11-23):
//   - Step Functions Standard: $0.025 per 1,000 state transitions, retries included
//     (https://aws.amazon.com/step-functions/pricing/).
//   - Lambda, Arm: $0.0000133334 per GB-second (first 7.5 billion GB-s a month) and $0.20 per million requests
//     (https://aws.amazon.com/lambda/pricing/). Duration is billed per 1 ms, rounded up.
const (
	priceTransition = 0.025 / 1000
	priceGBSecond   = 0.0000133334
	priceRequest    = 0.20 / 1e6
	pricesRead      = "2026-11-23"
)

// Cost is the cost of one isolation and of 1,000.
type Cost struct {
	Transitions float64 // per isolation
	Invocations float64 // per isolation
	GBSeconds   float64 // per isolation
	// Billed is the sum of the invocations' billed durations per isolation.
	Billed                time.Duration
	StepFunctions, Lambda float64 // USD per 1,000 isolations
	Total                 float64
}

// cost prices isolations executions that made these transitions and invocations; memory is each function's
// MemorySize in MB.
func cost(isolations, transitions int, invs []invocation, memory func(string) int) Cost {
	c := Cost{}
	if isolations == 0 {
		return c
	}
	n := float64(isolations)
	c.Transitions = float64(transitions) / n
	c.Invocations = float64(len(invs)) / n
	var gbs float64
	var billed time.Duration
	for _, inv := range invs {
		d := billedDuration(inv.End.Sub(inv.Start))
		billed += d
		gbs += float64(memory(inv.Function)) / 1024 * d.Seconds()
	}
	c.GBSeconds = gbs / n
	c.Billed = time.Duration(float64(billed) / n)
	c.StepFunctions = 1000 * c.Transitions * priceTransition
	c.Lambda = 1000 * (c.GBSeconds*priceGBSecond + c.Invocations*priceRequest)
	c.Total = c.StepFunctions + c.Lambda
	return c
}

// billedDuration rounds up to the millisecond (at least 1 ms).
func billedDuration(d time.Duration) time.Duration {
	ms := math.Ceil(float64(d) / float64(time.Millisecond))
	return time.Duration(max(ms, 1)) * time.Millisecond
}
