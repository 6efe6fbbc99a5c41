package runner

import (
	"strings"
	"time"

	"github.com/ec2-isolation/ec2-isolation/internal/asl"
)

// Phase is what happened to a state, as a live progress display shows it.
type Phase string

const (
	PhaseStarted   Phase = "started"
	PhaseSucceeded Phase = "succeeded"
	// PhaseAttemptFailed: a Task attempt failed and the state retries (or its Catch or the execution decides next).
	PhaseAttemptFailed Phase = "attempt failed"
	PhaseFailed        Phase = "failed"
	PhaseAborted       Phase = "aborted"
	// PhaseExecutionEnded: the execution stopped; Status says how.
	PhaseExecutionEnded Phase = "execution ended"
)

// Progress is one step of an execution as it happens: a state started or ended, or the execution ended.
type Progress struct {
	Phase Phase
	// State is the state's name ("" for the execution's end); Type its type (Task, Choice, Parallel, …).
	State, Type string
	Time        time.Time
	// Error is the error of a failed attempt or state, or of the failed execution.
	Error string
	// Retry is the attempt that failed (0 = the first).
	Retry int
	// Status is the execution's status at PhaseExecutionEnded.
	Status string
	// Machine is the state machine's name (issue 16: the isolation runner also runs the evidence state machine,
	// EvidenceStateMachineName, for the jobs it queued).
	Machine string
}

// progressOf maps a history event to a progress step; ok is false for the events a display does not show
// (TaskScheduled, TaskStarted, ParallelStateStarted, …).
func progressOf(ev asl.Event) (Progress, bool) {
	p := Progress{State: ev.State, Time: ev.Timestamp, Error: ev.Error, Retry: ev.RetryCount}
	t := string(ev.Type)
	switch {
	case ev.Type == asl.ExecutionSucceeded, ev.Type == asl.ExecutionFailed, ev.Type == asl.ExecutionTimedOut, ev.Type == asl.ExecutionAborted:
		p.Phase, p.State = PhaseExecutionEnded, ""
		p.Status = strings.ToUpper(strings.TrimPrefix(t, "Execution"))
		if p.Status == "TIMEDOUT" {
			p.Status = "TIMED_OUT"
		}
	case ev.Type == asl.FailStateEntered:
		p.Phase, p.Type = PhaseFailed, "Fail"
	case strings.HasSuffix(t, "StateEntered"):
		p.Phase, p.Type = PhaseStarted, strings.TrimSuffix(t, "StateEntered")
	case strings.HasSuffix(t, "StateExited"):
		p.Phase, p.Type = PhaseSucceeded, strings.TrimSuffix(t, "StateExited")
	case strings.HasSuffix(t, "StateAborted"):
		p.Phase, p.Type = PhaseAborted, strings.TrimSuffix(t, "StateAborted")
	case ev.Type == asl.TaskFailed, ev.Type == asl.TaskTimedOut:
		p.Phase, p.Type = PhaseAttemptFailed, "Task"
		if ev.Type == asl.TaskTimedOut && p.Error == "" {
			p.Error = "States.Timeout"
		}
	case ev.Type == asl.ParallelStateFailed:
		p.Phase, p.Type = PhaseFailed, "Parallel"
	default:
		return Progress{}, false
	}
	return p, true
}

// observe chains the progress callback after the engine's own event callback, if any.
func observe(prev func(asl.Event), onProgress func(Progress), machine string) func(asl.Event) {
	return func(ev asl.Event) {
		if prev != nil {
			prev(ev)
		}
		if p, ok := progressOf(ev); ok {
			p.Machine = machine
			onProgress(p)
		}
	}
}
