package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ec2-isolation/ec2-isolation/internal/runner"
)

// progress shows an execution's states as they start and end, with the time since the execution started: on a
// terminal one line per finished state and a status line of the running ones, redrawn in place; otherwise
// (piped, a file, a test) plain lines, one per start and one per end.
type progress struct {
	w   io.Writer
	tty bool
	now func() time.Time

	mu      sync.Mutex
	t0      time.Time
	running map[string][]time.Time // state -> start times of its open visits
	order   []string               // running states in start order
	stop    chan struct{}
	done    sync.WaitGroup
}

// newProgress returns nil (no display) when off; w is a terminal when it is a character device.
func newProgress(w io.Writer, off bool, now func() time.Time) *progress {
	if off {
		return nil
	}
	p := &progress{w: w, now: now, running: map[string][]time.Time{}}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

// begin starts the display of one execution.
func (p *progress) begin(title string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.t0 = p.now()
	clear(p.running)
	p.order = nil
	fmt.Fprintf(p.w, "%s\n", title)
	if p.tty {
		p.stop = make(chan struct{})
		p.done.Add(1)
		go p.tick(p.stop)
	}
}

// tick redraws the status line so that the elapsed time moves while a state runs.
func (p *progress) tick(stop chan struct{}) {
	defer p.done.Done()
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			p.mu.Lock()
			p.status()
			p.mu.Unlock()
		}
	}
}

// end stops the display of the execution (the status line is cleared).
func (p *progress) end() {
	if p == nil {
		return
	}
	if p.tty && p.stop != nil {
		close(p.stop)
		p.done.Wait()
		p.stop = nil
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// on is the runner's OnProgress callback.
func (p *progress) on(ev runner.Progress) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	at := ev.Time
	if at.IsZero() {
		at = p.now()
	}
	elapsed := fmt.Sprintf("+%-8s", round(at.Sub(p.t0)))
	var line string
	switch ev.Phase {
	case runner.PhaseStarted:
		p.running[ev.State] = append(p.running[ev.State], at)
		p.order = append(p.order, ev.State)
		if !p.tty {
			line = fmt.Sprintf("  %s started   %s", elapsed, ev.State)
		}
	case runner.PhaseSucceeded, runner.PhaseFailed, runner.PhaseAborted:
		took := ""
		if starts := p.running[ev.State]; len(starts) > 0 {
			took = " in " + round(at.Sub(starts[0])).String()
			p.running[ev.State] = starts[1:]
			if i := slices.Index(p.order, ev.State); i >= 0 {
				p.order = slices.Delete(p.order, i, i+1)
			}
		}
		verb := map[runner.Phase]string{runner.PhaseSucceeded: "done     ", runner.PhaseFailed: "FAILED   ", runner.PhaseAborted: "aborted  "}[ev.Phase]
		line = fmt.Sprintf("  %s %s %s%s", elapsed, verb, ev.State, took)
		if ev.Error != "" {
			line += ": " + ev.Error
		}
	case runner.PhaseAttemptFailed:
		line = fmt.Sprintf("  %s error     %s (attempt %d): %s", elapsed, ev.State, ev.Retry+1, ev.Error)
	case runner.PhaseExecutionEnded:
		line = fmt.Sprintf("  %s %s", elapsed, ev.Status)
	}
	if line == "" {
		p.status()
		return
	}
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
	fmt.Fprintln(p.w, line)
	p.status()
}

// status redraws the terminal's status line: the running states and the time so far. Called with mu held.
func (p *progress) status() {
	if !p.tty || len(p.order) == 0 {
		return
	}
	s := fmt.Sprintf("  +%-8s running: %s", round(p.now().Sub(p.t0)), strings.Join(p.order, ", "))
	if len(s) > 160 {
		s = s[:159] + "…"
	}
	fmt.Fprint(p.w, "\r\033[K"+s)
}

// callback is the runner's OnProgress for this display (nil for none).
func (p *progress) callback() func(runner.Progress) {
	if p == nil {
		return nil
	}
	return p.on
}
