package asl

import (
	"errors"
	"fmt"
)

// Error names the engine itself reports (the States.* names of the Amazon States Language).
const (
	ErrorAll        = "States.ALL"
	ErrorRuntime    = "States.Runtime"
	ErrorTimeout    = "States.Timeout"
	ErrorTaskFailed = "States.TaskFailed"
	// ErrorDataLimitExceeded is never produced here (no payload quota), but like States.Runtime it is terminal.
	ErrorDataLimitExceeded = "States.DataLimitExceeded"
)

// Sentinels for errors.Is. Load wraps ErrInvalidDefinition (the definition is wrong) or ErrUnsupported (valid
// ASL this engine does not implement); Redrive wraps ErrExecutionNotRedrivable.
var (
	ErrInvalidDefinition      = errors.New("invalid state machine definition")
	ErrUnsupported            = errors.New("not supported by this ASL engine")
	ErrExecutionNotRedrivable = errors.New("ExecutionNotRedrivable")
)

// TaskError is how an Invoker reports a named task error. Name is what Retry and Catch match on (for a Lambda
// function, the errorType aws-lambda-go reports: the Go type name of the returned error) and Cause its
// description. Any other error an Invoker returns is reported as States.TaskFailed with its message as Cause.
// (The Step Functions API calls these fields error and cause; a Go error type cannot have a field named Error.)
type TaskError struct {
	Name  string
	Cause string
}

func (e *TaskError) Error() string {
	if e.Cause == "" {
		return e.Name
	}
	return e.Name + ": " + e.Cause
}

// stateError is an error a state reports: the name Retry/Catch match on, and a human-readable cause.
type stateError struct {
	Name  string
	Cause string
}

func runtimeError(format string, args ...any) *stateError {
	return &stateError{Name: ErrorRuntime, Cause: fmt.Sprintf(format, args...)}
}

// terminal reports errors that no retrier or catcher handles: AWS documents that States.ALL cannot catch
// States.Runtime or States.DataLimitExceeded, and that a States.Runtime error always fails the execution.
func terminal(name string) bool { return name == ErrorRuntime || name == ErrorDataLimitExceeded }

// errorMatches applies one ErrorEquals list to an error name.
func errorMatches(equals []string, name string) bool {
	if terminal(name) {
		return false
	}
	for _, e := range equals {
		switch e {
		case ErrorAll:
			return true
		case ErrorTaskFailed:
			// Documented: as a matcher, States.TaskFailed matches any known error except States.Timeout.
			if name != ErrorTimeout {
				return true
			}
		default:
			if e == name {
				return true
			}
		}
	}
	return false
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidDefinition}, args...)...)
}

func unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrUnsupported}, args...)...)
}
