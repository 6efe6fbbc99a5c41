package asl

import (
	"encoding/json"
	"sync"
	"time"
)

// EventType names a history event as the Step Functions GetExecutionHistory API does.
type EventType string

const (
	ExecutionStarted   EventType = "ExecutionStarted"
	ExecutionSucceeded EventType = "ExecutionSucceeded"
	ExecutionFailed    EventType = "ExecutionFailed"
	ExecutionTimedOut  EventType = "ExecutionTimedOut"
	ExecutionAborted   EventType = "ExecutionAborted"
	ExecutionRedriven  EventType = "ExecutionRedriven"

	TaskStateEntered EventType = "TaskStateEntered"
	TaskScheduled    EventType = "TaskScheduled"
	TaskStarted      EventType = "TaskStarted"
	TaskSucceeded    EventType = "TaskSucceeded"
	TaskFailed       EventType = "TaskFailed"
	TaskTimedOut     EventType = "TaskTimedOut"
	TaskStateExited  EventType = "TaskStateExited"
	TaskStateAborted EventType = "TaskStateAborted"

	PassStateEntered EventType = "PassStateEntered"
	PassStateExited  EventType = "PassStateExited"

	ChoiceStateEntered EventType = "ChoiceStateEntered"
	ChoiceStateExited  EventType = "ChoiceStateExited"

	ParallelStateEntered   EventType = "ParallelStateEntered"
	ParallelStateStarted   EventType = "ParallelStateStarted"
	ParallelStateSucceeded EventType = "ParallelStateSucceeded"
	ParallelStateFailed    EventType = "ParallelStateFailed"
	ParallelStateExited    EventType = "ParallelStateExited"
	ParallelStateAborted   EventType = "ParallelStateAborted"

	FailStateEntered EventType = "FailStateEntered"

	SucceedStateEntered EventType = "SucceedStateEntered"
	SucceedStateExited  EventType = "SucceedStateExited"

	WaitStateEntered EventType = "WaitStateEntered"
	WaitStateExited  EventType = "WaitStateExited"
	WaitStateAborted EventType = "WaitStateAborted"
)

// Event is one history event. PreviousEventID links it to the event that led to it: within a Parallel branch that
// is the branch's previous event (the ParallelStateStarted for its first one), so branches read as separate chains.
type Event struct {
	ID              int64           `json:"id"`
	PreviousEventID int64           `json:"previousEventId"`
	Type            EventType       `json:"type"`
	Timestamp       time.Time       `json:"timestamp"`
	State           string          `json:"state,omitempty"`
	Resource        string          `json:"resource,omitempty"`
	Input           json.RawMessage `json:"input,omitempty"`
	Output          json.RawMessage `json:"output,omitempty"`
	Error           string          `json:"error,omitempty"`
	Cause           string          `json:"cause,omitempty"`
	// RetryCount is $$.State.RetryCount for Task events: 0 on the first attempt, n on the nth retry.
	RetryCount int `json:"retryCount,omitempty"`
	// RedriveCount is set on ExecutionRedriven: how many times the execution has been redriven.
	RedriveCount int `json:"redriveCount,omitempty"`
}

// RunStatus is the outcome of one state visit, as the console's table view shows it.
type RunStatus string

const (
	RunInProgress RunStatus = "InProgress"
	RunSucceeded  RunStatus = "Succeeded"
	RunFailed     RunStatus = "Failed"
	// RunCaught: the state failed and a Catch sent the execution on.
	RunCaught RunStatus = "Caught"
	// RunAborted: the state was stopped from outside: a sibling branch failed, the execution timed out or its
	// context was cancelled.
	RunAborted RunStatus = "Aborted"
)

// StateRun summarises one visit of a state (one row of the console's table view). A state visited again (a loop,
// or a redrive re-running it) gets another row.
type StateRun struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Parallel and Branch locate a state inside a Parallel branch ("" and 0 at the top level).
	Parallel string    `json:"parallel,omitempty"`
	Branch   int       `json:"branch,omitempty"`
	Status   RunStatus `json:"status"`
	Start    time.Time `json:"start"`
	// Duration is from entering the state to leaving it, retries and their waits included.
	Duration time.Duration   `json:"duration"`
	Retries  int             `json:"retries"`
	Input    json.RawMessage `json:"input,omitempty"`
	Output   json.RawMessage `json:"output,omitempty"`
	Error    string          `json:"error,omitempty"`
	Cause    string          `json:"cause,omitempty"`
	// RedriveCount is the execution's redrive count when the state ran (0: the original attempt).
	RedriveCount int `json:"redriveCount"`
}

// History is an execution's event log and per-state summary. It is safe for concurrent use: Parallel branches
// append to it at once.
type History struct {
	mu     sync.Mutex
	events []Event
	runs   []*StateRun
}

// Events returns a copy of the events so far, in order.
func (h *History) Events() []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Event, len(h.events))
	copy(out, h.events)
	return out
}

// Summary returns one row per state visit, in the order the states were entered.
func (h *History) Summary() []StateRun {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]StateRun, len(h.runs))
	for i, r := range h.runs {
		out[i] = *r
	}
	return out
}

// thread is one sequential chain of events (the top level or a Parallel branch); it remembers its last event for
// PreviousEventID. Each goroutine has its own.
type thread struct{ last int64 }

func (h *History) append(th *thread, e Event) Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	e.ID = int64(len(h.events) + 1)
	if th != nil {
		e.PreviousEventID = th.last
		th.last = e.ID
	} else if n := len(h.events); n > 0 {
		e.PreviousEventID = h.events[n-1].ID
	}
	h.events = append(h.events, e)
	return e
}

func (h *History) lastID() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return int64(len(h.events))
}

func (h *History) beginRun(r *StateRun) *StateRun {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.runs = append(h.runs, r)
	return r
}

// update changes a run under the lock (Summary may be reading it from another goroutine).
func (h *History) update(r *StateRun, f func(*StateRun)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f(r)
}
