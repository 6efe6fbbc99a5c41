package bench

import (
	"testing"
	"time"
)

// Lambda's scaling rate: 1,000 new environments at once, then 100 per second; a warm environment is reused.
func TestScalerFollowsLambdasScalingRate(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	var s scaler
	for i := range 1000 {
		if !s.admit(t0, i) {
			t.Fatalf("invocation %d of the first burst refused", i+1)
		}
	}
	if s.admit(t0, 1000) {
		t.Fatal("a 1,001st environment in the same instant: Lambda adds at most 1,000 at once")
	}
	if !s.admit(t0, 999) {
		t.Error("an invocation finding a warm environment was refused")
	}
	if got := admitted(&s, t0.Add(time.Second), 1000, 500); got != 100 {
		t.Errorf("one second later %d new environments, want 100 (1,000 per 10 s)", got)
	}
	if got := admitted(&s, t0.Add(time.Hour), 1100, 5000); got != 1000 {
		t.Errorf("after an idle hour %d new environments at once, want 1,000 (unused rate does not accumulate)", got)
	}
}

// admitted asks for want new environments at one instant, with busy invocations in flight already.
func admitted(s *scaler, at time.Time, busy, want int) int {
	n := 0
	for i := range want {
		if s.admit(at, busy+i) {
			n++
		}
	}
	return n
}
