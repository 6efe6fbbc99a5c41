// Package parts runs the independent parts of a step at once and reports them as one step result: the changes
// and skips of every part, and one named error (see internal/steperr) naming every part that failed. A part that
// fails does not stop the others: "Preserve evidence" must keep the volumes even when the target groups cannot
// be read, and a release must restore every ENI it can.
package parts

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// Part is one independent piece of a step.
type Part struct {
	// Name says what the part is about, for the error: "termination protection", "eni-0a1".
	Name string
	// Run does the part and reports what it changed or left alone. On error, what it reports is kept too (a
	// part may change some things before failing).
	Run func(ctx context.Context, r *Result) error
}

// Result collects one part's changes and skips.
type Result struct {
	step    string
	changes []workflow.Change
	skipped []string
}

// Changed records a change made now.
func (r *Result) Changed(resource, action, detail string) {
	r.changes = append(r.changes, workflow.Change{At: time.Now().UTC(), Step: r.step, Resource: resource, Action: action, Detail: detail})
}

// Skip records something the part left alone, and why.
func (r *Result) Skip(format string, a ...any) {
	r.skipped = append(r.skipped, fmt.Sprintf(format, a...))
}

// Run runs every part at once and returns their changes and skips in the order of parts, and the error of each
// part that failed (nil when none did), prefixed with the part's name.
func Run(ctx context.Context, step string, ps []Part) (workflow.StepChanges, []error) {
	results := make([]Result, len(ps))
	errs := make([]error, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		results[i].step = step
		wg.Go(func() { errs[i] = p.Run(ctx, &results[i]) })
	}
	wg.Wait()
	out := workflow.StepChanges{Changes: []workflow.Change{}}
	var failed []error
	for i, r := range results {
		out.Changes = append(out.Changes, r.changes...)
		out.Skipped = append(out.Skipped, r.skipped...)
		if errs[i] != nil {
			failed = append(failed, fmt.Errorf("%s: %w", ps[i].Name, errs[i]))
		}
	}
	return out, failed
}

// Error is the step's top-level error for the parts that failed (nil when none did), as a steperr type the state
// machine tells apart: Throttled when a part was throttled, else Transient when a part failed for a reason a
// retry may fix (the parts that succeeded make no call on the retry: every part reads first), else the named
// error every failure shares (InstanceNotFound, AssociationPending, …), else an AWSError naming them all. total
// is the number of parts.
func Error(step string, total int, errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	op := step
	if total > 1 {
		op = fmt.Sprintf("%s (%d of %d parts failed)", step, len(errs), total)
	}
	joined := errors.Join(errs...)
	var (
		throttled *steperr.Throttled
		transient *steperr.Transient
	)
	for _, err := range errs {
		if errors.As(err, &throttled) {
			return &steperr.Throttled{Op: op, Err: joined}
		}
	}
	for _, err := range errs {
		if errors.As(err, &transient) {
			return &steperr.Transient{Op: op, Err: joined}
		}
	}
	// An instance that is gone (terminated mid-run) is the reason, whatever the other parts answered.
	for _, err := range errs {
		var gone *steperr.InstanceNotIsolatable
		if errors.As(err, &gone) {
			return gone
		}
	}
	// Every part failing for the same named reason (an unknown instance fails every EC2 part) is that reason.
	first := unwrapNamed(errs[0])
	for _, err := range errs[1:] {
		if named := unwrapNamed(err); first == nil || named == nil || fmt.Sprintf("%T", named) != fmt.Sprintf("%T", first) {
			first = nil
			break
		}
	}
	if first != nil {
		return first
	}
	return &steperr.AWSError{Op: op, Err: joined}
}

// unwrapNamed finds the named error inside err (which the part's name wraps) when it is one the state machine
// handles apart from a plain AWSError, so that a single failure keeps its type.
func unwrapNamed(err error) error {
	var (
		notFound     *steperr.InstanceNotFound
		notIsolable  *steperr.InstanceNotIsolatable
		pending      *steperr.AssociationPending
		profile      *steperr.ProfileNotReady
		invalidInput *steperr.InvalidInput
		config       *steperr.ConfigError
	)
	switch {
	case errors.As(err, &notFound):
		return notFound
	case errors.As(err, &notIsolable):
		return notIsolable
	case errors.As(err, &pending):
		return pending
	case errors.As(err, &profile):
		return profile
	case errors.As(err, &invalidInput):
		return invalidInput
	case errors.As(err, &config):
		return config
	}
	return nil
}

var instanceIDPattern = regexp.MustCompile(`^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$`)

// CheckInstance refuses, as steperr.InvalidInput, a step input without a well-formed instance id or execution name.
func CheckInstance(step, instanceID, executionName string) error {
	switch {
	case executionName == "":
		return &steperr.InvalidInput{Step: step, Reason: "executionName is empty"}
	case instanceID == "":
		return &steperr.InvalidInput{Step: step, Reason: "instanceId is empty"}
	case !instanceIDPattern.MatchString(instanceID):
		return &steperr.InvalidInput{Step: step, Reason: fmt.Sprintf("instanceId %q is not an instance id", instanceID)}
	}
	return nil
}

// CheckRelease refuses a release step's input that is not about one instance and its incident record.
func CheckRelease(step string, in workflow.ReleaseInput) error {
	if err := CheckInstance(step, in.InstanceID, in.ExecutionName); err != nil {
		return err
	}
	if rec := in.Incident.PreIsolation.Record.InstanceID; rec != in.InstanceID {
		return &steperr.InvalidInput{Step: step, Reason: fmt.Sprintf(
			"the incident's pre-isolation record is of instance %q, not %s", rec, in.InstanceID)}
	}
	return nil
}
