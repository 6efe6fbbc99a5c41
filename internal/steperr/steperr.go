// Package steperr holds the errors the state machine tells apart. aws-lambda-go reports a returned error's Go
// type name as errorType, and the ASL Retry and Catch match on it, so each type name here is an ErrorEquals
// string of statemachine/isolation.asl.json. A handler must return these types unwrapped (a fmt.Errorf wrapper
// would be reported as "wrapError"); they carry the context in their fields and wrap the cause.
package steperr

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// InvalidEvent: the execution input is not an EC2 instance tag change this stack handles. Not retried.
type InvalidEvent struct{ Reason string }

func (e *InvalidEvent) Error() string { return "invalid event: " + e.Reason }

// InvalidInput: a step's input is missing something it needs (a bug in the definition). Not retried.
type InvalidInput struct{ Step, Reason string }

func (e *InvalidInput) Error() string { return fmt.Sprintf("invalid %s input: %s", e.Step, e.Reason) }

// ConfigError: the function's configuration (an environment variable from the stack) is missing or wrong.
type ConfigError struct{ Reason string }

func (e *ConfigError) Error() string { return "configuration: " + e.Reason }

// InstanceNotFound: no instance with this id in the account and region. Not retried.
type InstanceNotFound struct{ InstanceID string }

func (e *InstanceNotFound) Error() string { return fmt.Sprintf("instance %s not found", e.InstanceID) }

// InstanceNotIsolatable: the instance exists but cannot be isolated (terminated, no VPC). Not retried.
type InstanceNotIsolatable struct{ InstanceID, Reason string }

func (e *InstanceNotIsolatable) Error() string {
	return fmt.Sprintf("instance %s cannot be isolated: %s", e.InstanceID, e.Reason)
}

// AssociationPending: an instance profile association is still changing state. Retried by ASL.
type AssociationPending struct{ InstanceID, AssociationID, State string }

func (e *AssociationPending) Error() string {
	return fmt.Sprintf("instance %s: profile association %s is %s", e.InstanceID, e.AssociationID, e.State)
}

// ProfileNotReady: EC2 refused the isolation instance profile (a new profile is not visible to EC2 for a few
// seconds; a missing one never is). Retried by ASL a bounded number of times.
type ProfileNotReady struct {
	Profile string
	Err     error
}

func (e *ProfileNotReady) Error() string {
	return fmt.Sprintf("isolation instance profile %s not usable: %v", e.Profile, e.Err)
}
func (e *ProfileNotReady) Unwrap() error { return e.Err }

// GroupNotVisible: a security group just created (here or by a concurrent execution) is not yet visible to
// Describe. Retried by ASL.
type GroupNotVisible struct{ VpcID, GroupName string }

func (e *GroupNotVisible) Error() string {
	return fmt.Sprintf("security group %s in %s not visible yet", e.GroupName, e.VpcID)
}

// Throttled: AWS kept throttling after the SDK's retries. Retried by ASL with backoff and jitter.
type Throttled struct {
	Op  string
	Err error
}

func (e *Throttled) Error() string { return fmt.Sprintf("%s: throttled: %v", e.Op, e.Err) }
func (e *Throttled) Unwrap() error { return e.Err }

// Transient: a server error or timeout persisted through the SDK's retries. Retried by ASL.
type Transient struct {
	Op  string
	Err error
}

func (e *Transient) Error() string { return fmt.Sprintf("%s: transient failure: %v", e.Op, e.Err) }
func (e *Transient) Unwrap() error { return e.Err }

// AWSError: AWS refused a call for a reason no retry fixes (permissions, validation). Not retried.
type AWSError struct {
	Op  string
	Err error
}

func (e *AWSError) Error() string { return fmt.Sprintf("%s: %v", e.Op, e.Err) }
func (e *AWSError) Unwrap() error { return e.Err }

// throttleCodes are the error codes AWS services use for throttling (EC2: RequestLimitExceeded; SNS, IAM:
// Throttling).
var throttleCodes = map[string]bool{
	"RequestLimitExceeded": true, "Throttling": true, "ThrottlingException": true,
	"ThrottledException": true, "TooManyRequestsException": true, "RequestThrottled": true,
}

// transientCodes are server-side codes that mean "try again".
var transientCodes = map[string]bool{
	"InternalError": true, "InternalFailure": true, "ServiceUnavailable": true, "Unavailable": true,
}

// Code returns the AWS error code of err, or "".
func Code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// FromAWS classifies an error returned by an AWS call (after the SDK's own retries) as Throttled, Transient or
// AWSError, with op naming what was attempted ("modify groups of eni-…"). Errors already classified pass through.
func FromAWS(op string, err error) error {
	if err == nil {
		return nil
	}
	var (
		throttled *Throttled
		transient *Transient
		awsErr    *AWSError
	)
	if errors.As(err, &throttled) || errors.As(err, &transient) || errors.As(err, &awsErr) {
		return err
	}
	code := Code(err)
	switch {
	case throttleCodes[code]:
		return &Throttled{Op: op, Err: err}
	case transientCodes[code], isServerError(err), isTimeout(err), isConnectionError(err):
		return &Transient{Op: op, Err: err}
	}
	return &AWSError{Op: op, Err: err}
}

func isServerError(err error) bool {
	var re *smithyhttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() >= 500
}

// isConnectionError: no answer came back (connection reset or closed, refused), as the SDK reports it after its
// retries. Whether the call took effect is unknown; the steps read the state again when the state machine
// retries them.
func isConnectionError(err error) bool {
	var ce interface{ ConnectionError() bool }
	return errors.As(err, &ce) && ce.ConnectionError()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// IsolationFailed: returned by "Notify failure" after it has published the failure notification, so that the
// execution ends FAILED at that state, naming what failed. A redrive restarts there and resumes at the failed
// state (see statemachine/README.md). Not retried.
type IsolationFailed struct{ Summary string }

func (e *IsolationFailed) Error() string { return "isolation failed: " + e.Summary }

// ReleaseFailed: the release workflow's counterpart of IsolationFailed, returned by its "Notify failure".
type ReleaseFailed struct{ Summary string }

func (e *ReleaseFailed) Error() string { return "release failed: " + e.Summary }

// EvidenceFailed (issue 16): the evidence state machine's counterpart of IsolationFailed, returned by its "Notify
// failure" once the failure to apply the instance settings is published (containment is not affected).
type EvidenceFailed struct{ Summary string }

func (e *EvidenceFailed) Error() string { return "evidence settings failed: " + e.Summary }

// NotIsolated: a release was asked for an instance this stack never isolated, or whose incident is already
// released (no open incident in its record). Nothing was changed.
type NotIsolated struct{ InstanceID, Reason string }

func (e *NotIsolated) Error() string {
	return fmt.Sprintf("instance %s cannot be released: %s", e.InstanceID, e.Reason)
}

// RecordMissing: the incident record of an instance that the workflow needs cannot be read (deleted, or the
// bucket is gone). Nothing was changed.
type RecordMissing struct{ Bucket, Key, Reason string }

func (e *RecordMissing) Error() string {
	return fmt.Sprintf("incident record s3://%s/%s: %s", e.Bucket, e.Key, e.Reason)
}

// Superseded: the instance no longer carries the tag value the execution acts on (the tag was removed, or changed
// to the other workflow's value, after the event): the current tag decides, so nothing was changed. Not retried.
type Superseded struct{ InstanceID, TagKey, Want, Got string }

func (e *Superseded) Error() string {
	got := fmt.Sprintf("%s=%q", e.TagKey, e.Got)
	if e.Got == "" {
		got = "no " + e.TagKey + " tag"
	}
	return fmt.Sprintf("superseded: instance %s now carries %s, not %s=%q; nothing was changed", e.InstanceID, got, e.TagKey, e.Want)
}

// NotContained: the final read-back found the instance still open after containing it again (bounded); Open names
// each thing that is open (an ENI and its groups, a rule of an isolation group, a profile association).
type NotContained struct {
	InstanceID string
	Open       []string
}

func (e *NotContained) Error() string {
	return fmt.Sprintf("instance %s is NOT contained: %s", e.InstanceID, joinOpen(e.Open))
}

func joinOpen(open []string) string {
	if len(open) == 0 {
		return "(nothing named)"
	}
	s := open[0]
	for _, o := range open[1:] {
		s += "; " + o
	}
	return s
}

// GroupMissing: an isolation group the step was given no longer exists (deleted between "Validate and record" and
// "Apply isolation security group"). The isolation workflow catches it and runs "Ensure isolation security group"
// again, which looks the groups up afresh. Not retried.
type GroupMissing struct{ VpcID, GroupID string }

func (e *GroupMissing) Error() string {
	return fmt.Sprintf("isolation group %s of %s no longer exists", e.GroupID, e.VpcID)
}

// IsolationInProgress: a release found an isolation of the instance still running (its incident is open and the
// isolation execution has not recorded its outcome yet). The release workflow retries until it has finished.
type IsolationInProgress struct{ InstanceID, Execution string }

func (e *IsolationInProgress) Error() string {
	return fmt.Sprintf("instance %s: isolation execution %s is still running; the release waits for it", e.InstanceID, e.Execution)
}
