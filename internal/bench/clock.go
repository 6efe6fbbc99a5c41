package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ec2-isolation/ec2-isolation/internal/asl"
)

// virtualClock is simulated time that runs factor times faster than real time, except while this process is
// starved of CPU. In AWS a thousand executions' throttled calls are answered in parallel by a fleet; here they
// queue for two cores, and on a plain scaled clock (sim.ScaledClock) that queueing becomes simulated time in
// which token buckets refill unused and task timeouts expire. A monitor goroutine asks to wake every millisecond;
// when it wakes late, every goroutine was waiting for a CPU, and the lateness is excluded from simulated time.
// Time the simulation spends computing while it does get a CPU still counts.
type virtualClock struct {
	start  time.Time
	paused atomic.Int64 // real nanoseconds excluded
	last   atomic.Int64 // the latest simulated offset handed out (Now never goes back)
	base   atomic.Pointer[clockBase]
	stop   chan struct{}
	done   chan struct{}

	mu   sync.Mutex
	lags []time.Duration
	wake chan struct{} // closed when the factor changes: sleepers recompute their timers
	// waiting counts the sleeps waiting on a timer (a test waits for one before changing the factor).
	waiting atomic.Int64
}

// clockBase: from real offset real (excluded time not counted), simulated time runs factor times faster than real
// time, starting at simulated offset sim.
type clockBase struct {
	real, sim time.Duration
	factor    float64
}

// lagTolerance is the lateness of a 1 ms sleep that is not counted: timer slack, not starvation. A Go program
// that only sleeps 1 ms in a loop, on this 2-core machine, woke over 0.5 ms late on 4% of its ticks and over 1 ms
// late on 2% (3,000 ticks); the bench, whose CPU use stayed under one core, had 0.5 ms counted as starvation on a
// quarter of its real time (a 1,000-instance storm: 14 s of 66 s). Real starvation (a loaded machine) shows as
// stretches of tens of milliseconds to a second. Counting less only makes simulated time longer, never shorter:
// the bench's ratios can only lean worse for it.
const lagTolerance = 2 * time.Millisecond

func newVirtualClock(factor float64) *virtualClock {
	c := &virtualClock{start: time.Now(), stop: make(chan struct{}), done: make(chan struct{}), wake: make(chan struct{})}
	c.base.Store(&clockBase{factor: factor})
	go c.monitor()
	return c
}

func (c *virtualClock) monitor() {
	defer close(c.done)
	for {
		t := time.Now()
		select {
		case <-c.stop:
			return
		case <-time.After(time.Millisecond):
		}
		if late := time.Since(t) - time.Millisecond; late > lagTolerance {
			c.paused.Add(int64(late))
			c.mu.Lock()
			c.lags = append(c.lags, late)
			c.mu.Unlock()
		}
	}
}

// Close stops the monitor; the clock keeps running at its factor.
func (c *virtualClock) Close() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
		<-c.done
	}
}

// Excluded is the real time excluded so far, and the lateness of each tick that was.
func (c *virtualClock) Excluded() (time.Duration, []time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Duration(c.paused.Load()), append([]time.Duration(nil), c.lags...)
}

// SetFactor changes the speed from now on (simulated time so far is kept). The storm runs its light tail, when
// only the evidence executions are left, faster than its busy start.
func (c *virtualClock) SetFactor(f float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	real := time.Since(c.start) - time.Duration(c.paused.Load())
	b := c.base.Load()
	c.base.Store(&clockBase{real: real, sim: b.sim + time.Duration(float64(real-b.real)*b.factor), factor: f})
	close(c.wake)
	c.wake = make(chan struct{})
}

func (c *virtualClock) factor() float64 { return c.base.Load().factor }

func (c *virtualClock) Now() time.Time {
	real := time.Since(c.start) - time.Duration(c.paused.Load())
	b := c.base.Load()
	sim := int64(b.sim + time.Duration(float64(real-b.real)*b.factor))
	for {
		last := c.last.Load()
		if sim <= last {
			return c.start.Add(time.Duration(last))
		}
		if c.last.CompareAndSwap(last, sim) {
			return c.start.Add(time.Duration(sim))
		}
	}
}

// Sleep blocks for d of simulated time.
func (c *virtualClock) Sleep(d time.Duration) { _ = c.sleep(context.Background(), d) }

func (c *virtualClock) sleep(ctx context.Context, d time.Duration) error {
	until := c.Now().Add(d)
	for {
		rem := until.Sub(c.Now())
		if rem <= 0 {
			return ctx.Err()
		}
		c.mu.Lock()
		wake := c.wake
		c.mu.Unlock()
		t := time.NewTimer(time.Duration(float64(rem) / c.factor()))
		c.waiting.Add(1)
		select {
		case <-ctx.Done():
			t.Stop()
			c.waiting.Add(-1)
			return ctx.Err()
		case <-wake:
			t.Stop()
		case <-t.C:
		}
		c.waiting.Add(-1)
	}
}

// withTimeout is context.WithTimeout in simulated time.
func (c *virtualClock) withTimeout(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	go func() {
		if c.sleep(ctx, d) == nil {
			cancel()
		}
	}()
	return ctx, cancel
}

// options are the engine's clock on this one (asl.Scaled, but with the excluded time).
func (c *virtualClock) options() asl.Options {
	return asl.Options{Now: c.Now, Sleep: c.sleep, WithTimeout: c.withTimeout}
}
