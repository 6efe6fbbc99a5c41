package bench

import (
	"testing"
	"time"
)

// SetFactor keeps the simulated time so far and wakes the sleepers, so that a sleep begun at the old speed ends
// at the new one: a sleep of an hour at x1 returns once the clock runs a million times faster (without the wake
// it would hold the test for an hour).
func TestSetFactorKeepsTimeAndWakesSleepers(t *testing.T) {
	c := newVirtualClock(1)
	defer c.Close()
	done := make(chan struct{})
	go func() {
		c.Sleep(time.Hour)
		close(done)
	}()
	for c.waiting.Load() == 0 { // the sleep is on its timer, at x1
		time.Sleep(time.Millisecond)
	}
	before := c.Now()
	c.SetFactor(1e6)
	if after := c.Now(); after.Before(before) || after.Sub(before) > time.Minute {
		t.Errorf("simulated time jumped from %v to %v at the change", before.Sub(c.start), after.Sub(c.start))
	}
	<-done
	if got := c.Now().Sub(before); got < time.Hour {
		t.Errorf("the sleep of an hour ended after %v of simulated time", got)
	}
}
