package sim

import (
	"sync"
	"time"
)

// Clock is the simulator's only source of time: state changes (association settle, group visibility, snapshot
// completion, profile visibility), token bucket refills, latency and the timestamps of calls all go through it,
// so a benchmark can scale or virtualise time.
type Clock interface {
	Now() time.Time
	// Sleep blocks for d of this clock's time (injected latency).
	Sleep(d time.Duration)
}

// RealClock is wall-clock time.
type RealClock struct{}

func (RealClock) Now() time.Time        { return time.Now() }
func (RealClock) Sleep(d time.Duration) { time.Sleep(d) }

// ScaledClock runs Factor times faster than wall-clock time from its first reading: with Factor 10 a 2 s
// association settle takes 200 ms of real time, and a 50 ms latency 5 ms.
type ScaledClock struct {
	Factor float64
	once   sync.Once
	start  time.Time
}

// NewScaledClock returns a clock running factor times faster than real time (factor > 0).
func NewScaledClock(factor float64) *ScaledClock { return &ScaledClock{Factor: factor} }

func (c *ScaledClock) Now() time.Time {
	c.once.Do(func() { c.start = time.Now() })
	return c.start.Add(time.Duration(float64(time.Since(c.start)) * c.Factor))
}

func (c *ScaledClock) Sleep(d time.Duration) { time.Sleep(time.Duration(float64(d) / c.Factor)) }

// ManualClock is virtual time that moves only when Advance is called; Sleep returns at once, counting the
// time slept. Tests use it to step through state transitions without waiting.
type ManualClock struct {
	mu    sync.Mutex
	now   time.Time
	slept time.Duration
}

// NewManualClock returns a manual clock set to start.
func NewManualClock(start time.Time) *ManualClock { return &ManualClock{now: start} }

func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Sleep does not block: it records d (see Slept).
func (c *ManualClock) Sleep(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.slept += d
}

// Advance moves the clock forward by d.
func (c *ManualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Slept is the total duration passed to Sleep.
func (c *ManualClock) Slept() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.slept
}
