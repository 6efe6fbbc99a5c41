package bench

import (
	"math"
	"time"
)

// scaler is Lambda's concurrency scaling rate for one function: "every 10 seconds, Lambda can allocate at most
// 1,000 additional execution environment instances ... to each of your functions", refilled continuously, never
// accumulating beyond 1,000 (https://docs.aws.amazon.com/lambda/latest/dg/scaling-behavior.html, "Concurrency
// scaling rate"). Environments, once created, stay (a storm keeps them warm). Not safe for concurrent use.
type scaler struct {
	envs   int     // execution environments the function has
	tokens float64 // new environments it may still add now
	last   time.Time
	init   bool
}

const (
	scaleBurst  = 1000.0 // environments added at once, at most
	scalePerSec = 100.0  // 1,000 per 10 seconds
)

// admit reports whether an invocation with inflight others already running finds an environment: a free one, or
// a new one within the scaling rate. Lambda refuses it otherwise (TooManyRequestsException, status 429).
func (s *scaler) admit(now time.Time, inflight int) bool {
	if !s.init {
		s.tokens, s.last, s.init = scaleBurst, now, true
	}
	if inflight < s.envs {
		return true
	}
	s.tokens = math.Min(scaleBurst, s.tokens+now.Sub(s.last).Seconds()*scalePerSec)
	s.last = now
	if s.tokens < 1 {
		return false
	}
	s.tokens--
	s.envs++
	return true
}
