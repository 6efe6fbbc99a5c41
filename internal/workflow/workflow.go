// Package workflow defines the data that flows between the isolation state machine's steps: the EventBridge
// event that starts an execution, the record of the instance's pre-isolation state, and each step's typed input
// and output. The JSON names are the paths the ASL definition (statemachine/) reads and writes.
package workflow

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
)

// TagEvent is the EventBridge "Tag Change on Resource" event (source aws.tag) that starts an execution.
type TagEvent struct {
	Version    string    `json:"version"`
	ID         string    `json:"id"`
	DetailType string    `json:"detail-type"`
	Source     string    `json:"source"`
	Account    string    `json:"account"`
	Time       string    `json:"time"`
	Region     string    `json:"region"`
	Resources  []string  `json:"resources"`
	Detail     TagDetail `json:"detail"`
	// Reconcile is set when the reconciler (issue 14), not EventBridge, started the execution: the instance's
	// current tag, with no execution seen for it. Nil for a real event.
	Reconcile *Reconcile `json:"reconcile,omitempty"`
}

// Reasons the reconciler gives for an execution it starts.
const (
	ReasonLostEvent        = "the tag event was not seen"
	ReasonDrift            = "isolation was undone by hand: drift"
	ReasonLostReleaseEvent = "the release tag event was not seen"
)

// Reconcile is why the reconciler started an execution.
type Reconcile struct {
	// Reason is one of the Reason constants.
	Reason string `json:"reason"`
	// Open is what the reconciler's read-back found open, in the words of "Verify containment".
	Open []string `json:"open,omitempty"`
	// Pass names the reconciler's pass (its scheduled time).
	Pass string `json:"pass,omitempty"`
}

// InstanceID is the instance id the event's only resource names (arn:…:instance/i-…), or "" when it names no
// single instance. It does not validate the event: "Validate and record" does.
func (e TagEvent) InstanceID() string {
	if len(e.Resources) != 1 {
		return ""
	}
	_, id, ok := strings.Cut(e.Resources[0], ":instance/")
	if !ok {
		return ""
	}
	return id
}

// UnmarshalJSON decodes the event. The execution input is whatever started the execution (EventBridge, or
// anyone allowed StartExecution): input that is not an object of this shape is a steperr.InvalidEvent saying what
// is wrong, rather than the JSON decoder's error (which aws-lambda-go would report as UnmarshalTypeError, a name
// the state machine does not know).
func (e *TagEvent) UnmarshalJSON(b []byte) error {
	type plain TagEvent
	var v plain
	if err := json.Unmarshal(b, &v); err != nil {
		return &steperr.InvalidEvent{Reason: "the execution input is not an EventBridge tag change event: " + decodeError(err)}
	}
	*e = TagEvent(v)
	return nil
}

// decodeError names the field and the type a JSON decoding error is about, without the Go type names.
func decodeError(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te) && te.Field != "":
		return fmt.Sprintf("%s is a JSON %s, want %s", te.Field, te.Value, jsonKind(te.Type.Kind().String()))
	case errors.As(err, &te):
		return fmt.Sprintf("it is a JSON %s, want an object", te.Value)
	case errors.As(err, &se):
		return "it is not JSON: " + se.Error()
	}
	return err.Error()
}

func jsonKind(goKind string) string {
	switch goKind {
	case "slice", "array":
		return "a list"
	case "map", "struct":
		return "an object"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	}
	return "a number"
}

// TagDetail is the detail of a tag change event.
type TagDetail struct {
	ChangedTagKeys []string          `json:"changed-tag-keys"`
	Service        string            `json:"service"`
	ResourceType   string            `json:"resource-type"`
	Version        int               `json:"version"`
	Tags           map[string]string `json:"tags"`
}

// ValidateInput is the input of "Validate and record": the whole event and the execution's name.
type ValidateInput struct {
	Event         TagEvent `json:"event"`
	ExecutionName string   `json:"executionName"`
}

// Record is the instance as it was before isolation: what the later steps act on and what a release restores.
type Record struct {
	InstanceID       string `json:"instanceId"`
	InstanceARN      string `json:"instanceArn"`
	Account          string `json:"account"`
	Region           string `json:"region"`
	AvailabilityZone string `json:"availabilityZone"`
	State            string `json:"state"`
	// VpcIDs lists every VPC one of the instance's ENIs is in (multi-VPC attachments), sorted, no repeats.
	VpcIDs            []string           `json:"vpcIds"`
	NetworkInterfaces []NetworkInterface `json:"networkInterfaces"`
	// ProfileAssociation is nil when the instance has no instance profile.
	ProfileAssociation    *ProfileAssociation `json:"profileAssociation,omitempty"`
	DisableAPITermination bool                `json:"disableApiTermination"`
	ShutdownBehavior      string              `json:"shutdownBehavior"`
	Volumes               []Volume            `json:"volumes"`
	// Reason says why the instance is isolated, e.g. `tag Isolate=true`.
	Reason     string    `json:"reason"`
	RecordedAt time.Time `json:"recordedAt"`
	// IsolationGroups are the isolation groups "Validate and record" found (looked up by name, at once with the
	// instance) in the instance's VPCs. GroupsReady is true when every VPC has a usable one, so the workflow
	// goes straight to "Apply isolation security group" (the warm path: two sequential round trips).
	IsolationGroups []VpcGroups `json:"isolationGroups,omitempty"`
	GroupsReady     bool        `json:"groupsReady"`
	// InstanceLifecycle is "spot" for a Spot Instance, empty for On-Demand (DescribeInstances'
	// InstanceLifecycle): a Spot Instance cannot have termination protection.
	InstanceLifecycle string `json:"instanceLifecycle,omitempty"`
	// Tags are the instance's tags as "Validate and record" read them: the current tag decides, not the event's.
	Tags map[string]string `json:"tags,omitempty"`
	// Artifacts name the isolation artifacts the observation already showed (an ENI on a managed isolation or
	// allow-all group, the isolation profile associated): such a record describes an instance already (partly)
	// isolated, and is never kept as the pre-isolation state while a genuine observation exists.
	Artifacts []string `json:"artifacts,omitempty"`
	// ManagedGroups are the ids of the security groups tagged ec2-isolation:managed=true that "Validate and
	// record" saw (any VPC, any name): the groups that are isolation artifacts on an ENI.
	ManagedGroups []string `json:"managedGroups,omitempty"`
	// Reconcile (issue 14) is the event's: set when the reconciler started the execution, and why.
	Reconcile *Reconcile `json:"reconcile,omitempty"`
	// Description (issue 16) is the instance as Validate's DescribeInstances gave it (the SDK's field names): the
	// incident record keeps it as the full pre-isolation description instead of describing the instance again,
	// one DescribeInstances fewer per isolation, and read before any change rather than beside containment.
	Description json.RawMessage `json:"description,omitempty"`
}

// Genuine reports whether the record is an observation of the instance before any isolation change: it shows no
// isolation artifact (RecordedAt is when it was read).
func (r Record) Genuine() bool { return len(r.Artifacts) == 0 }

// NetworkInterface is one ENI attached to the instance, with its security groups before isolation.
type NetworkInterface struct {
	ID          string   `json:"networkInterfaceId"`
	VpcID       string   `json:"vpcId"`
	SubnetID    string   `json:"subnetId"`
	DeviceIndex int32    `json:"deviceIndex"`
	Groups      []string `json:"groups"`
}

// ProfileAssociation is an IAM instance profile association of an instance.
type ProfileAssociation struct {
	AssociationID string `json:"associationId"`
	ProfileARN    string `json:"profileArn"`
	State         string `json:"state"`
}

// Volume is an EBS volume attached to the instance.
type Volume struct {
	VolumeID            string `json:"volumeId"`
	DeviceName          string `json:"deviceName"`
	DeleteOnTermination bool   `json:"deleteOnTermination"`
}

// InstanceInput is the input of the steps that need only the instance: disassociate, attach, snapshot.
type InstanceInput struct {
	InstanceID    string `json:"instanceId"`
	ExecutionName string `json:"executionName"`
	Reason        string `json:"reason,omitempty"`
	// Record (slice S, issue 16) is "Validate and record"'s record: "Snapshot volumes" uses its volumes instead
	// of describing the instance again. The whole record is passed ($.record, always present where the step runs),
	// not $.record.volumes: a path to a missing key fails the execution (States.Runtime). Absent, or no volume
	// in it: the step describes the instance.
	Record *Record `json:"record,omitempty"`
	// Rerun (issue 16): "Disassociate profile" trusts Record's association on its first run (one
	// DescribeIamInstanceProfileAssociations fewer per isolation); a retry or a redrive reads EC2's.
	Rerun
}

// DisassociateOutput says which associations "Disassociate profile" removed (none when there were none).
type DisassociateOutput struct {
	Disassociated []ProfileAssociation `json:"disassociated"`
	Changes       []Change             `json:"changes,omitempty"`
}

// AttachOutput is the isolation profile's association after "Attach isolation profile".
type AttachOutput struct {
	AssociationID string `json:"associationId"`
	ProfileARN    string `json:"profileArn"`
	// Changed is false when the isolation profile was already attached.
	Changed bool     `json:"changed"`
	Changes []Change `json:"changes,omitempty"`
}

// EnsureGroupsInput is the input of "Ensure isolation security group".
type EnsureGroupsInput struct {
	InstanceID    string   `json:"instanceId"`
	ExecutionName string   `json:"executionName"`
	VpcIDs        []string `json:"vpcIds"`
	// Record is what "Validate and record" returned: its IsolationGroups are usable as they are, so Ensure
	// creates only what is missing instead of looking them up again. Nil: Ensure looks every group up.
	Record *Record `json:"record,omitempty"`
	// GroupMissing is the error "Apply isolation security group" was caught with when a group it was given no
	// longer exists (steperr.GroupMissing); null on the normal path. When set, Ensure trusts neither the record's
	// groups nor Previous: it looks every group up afresh.
	GroupMissing *CaughtError `json:"groupMissing,omitempty"`
	// Previous is this execution's earlier Ensure output ($.groups), when Ensure runs again after GroupMissing.
	Previous *EnsureGroupsOutput `json:"previous,omitempty"`
	Rerun
}

// CaughtError is a Catch's error output ({"Error", "Cause"}) kept at a ResultPath.
type CaughtError struct {
	Error string `json:"Error"`
	Cause string `json:"Cause"`
}

// Rerun says whether a step runs again with the same record: a retry ($$.State.RetryCount) or a redrive
// ($$.Execution.RedriveCount). The first run trusts the record, read moments before (the fast path); a rerun's
// record may be stale (the first run may have done part of the work), so it reads the state first and changes
// only what is missing.
type Rerun struct {
	Attempt      int `json:"attempt,omitempty"`
	RedriveCount int `json:"redriveCount,omitempty"`
}

// Again is true on a retry or a redrive.
func (r Rerun) Again() bool { return r.Attempt > 0 || r.RedriveCount > 0 }

// VpcGroups names, for one VPC, the isolation group and, in untrack-first mode, the allow-all group applied
// before it.
type VpcGroups struct {
	VpcID            string `json:"vpcId"`
	IsolationGroupID string `json:"isolationGroupId"`
	// UntrackGroupID is empty unless the connection tracking mode is untrack-first.
	UntrackGroupID string `json:"untrackGroupId,omitempty"`
	// Created is true when this run created the isolation group.
	Created bool `json:"created"`
	// ForeignGroupID is a group of the VPC that carries the isolation group's name but is not ec2-isolation's
	// (not tagged as managed): it is never used nor changed; IsolationGroupID is then a managed group under a
	// derived name. The notification names it.
	ForeignGroupID string `json:"foreignGroupId,omitempty"`
}

// EnsureGroupsOutput lists the groups of every VPC of the instance, in the order of the input's VpcIDs.
type EnsureGroupsOutput struct {
	Groups  []VpcGroups `json:"groups"`
	Changes []Change    `json:"changes,omitempty"`
	// Round counts the runs of Ensure in this execution that followed a GroupMissing (0 on the first run): it
	// bounds the Apply -> Ensure loop when groups keep disappearing.
	Round int `json:"round,omitempty"`
}

// ApplyGroupsInput is the input of "Apply isolation security group".
type ApplyGroupsInput struct {
	InstanceID    string      `json:"instanceId"`
	ExecutionName string      `json:"executionName"`
	Groups        []VpcGroups `json:"groups"`
	// Record is what "Validate and record" returned: Apply modifies its NetworkInterfaces whose Groups differ
	// from the target at once, without describing them first. When Groups is empty, the groups are
	// Ensured.Groups, or, on the warm path (Ensure did not run, Ensured is nil), Record.IsolationGroups.
	Record *Record `json:"record,omitempty"`
	// Ensured is what "Ensure isolation security group" returned; null on the warm path.
	Ensured *EnsureGroupsOutput `json:"ensured,omitempty"`
	Rerun
}

// AppliedInterface is one ENI after "Apply isolation security group".
type AppliedInterface struct {
	ID     string   `json:"networkInterfaceId"`
	VpcID  string   `json:"vpcId"`
	Before []string `json:"before"`
	After  []string `json:"after"`
	// Changed is false when the ENI already carried only the isolation group.
	Changed bool `json:"changed"`
}

// ApplyGroupsOutput lists every ENI of the instance after isolation.
type ApplyGroupsOutput struct {
	NetworkInterfaces []AppliedInterface `json:"networkInterfaces"`
	Changes           []Change           `json:"changes,omitempty"`
	// NotOwned are attached ENIs an AWS service manages (issue 13 item 4): left as they are, still open.
	NotOwned []NotOwnedInterface `json:"notOwned,omitempty"`
}

// NotOwnedInterface is a network interface attached to the instance whose security groups the account cannot
// change (a requester-managed interface: an ECS awsvpc task's, for instance): it stays open, and says so.
type NotOwnedInterface struct {
	ID     string   `json:"networkInterfaceId"`
	VpcID  string   `json:"vpcId"`
	Groups []string `json:"groups"`
	Reason string   `json:"reason"`
}

// SnapshotOutput is the multi-volume snapshot set of the instance.
type SnapshotOutput struct {
	Snapshots []Snapshot `json:"snapshots"`
	// Created is false when an earlier run of this execution had already created the set.
	Created bool     `json:"created"`
	Changes []Change `json:"changes,omitempty"`
}

// Snapshot is one snapshot of the set.
type Snapshot struct {
	SnapshotID string `json:"snapshotId"`
	VolumeID   string `json:"volumeId"`
	State      string `json:"state"`
}

// Outcome of an execution, as the notification reports it.
const (
	OutcomeSucceeded = "SUCCEEDED"
	OutcomeFailed    = "FAILED"
)

// NotifyInput is the input of "Notify": what the execution did, or where it failed.
type NotifyInput struct {
	Outcome string `json:"outcome"`
	// Workflow is WorkflowIsolation (the default when empty) or WorkflowRelease.
	Workflow      string `json:"workflow,omitempty"`
	ExecutionName string `json:"executionName"`
	// Event is the execution input ($$.Execution.Input): before a record exists, the instance id comes from it.
	Event *TagEvent `json:"event,omitempty"`
	// ExecutionARN is $$.Execution.Id: the notification's redrive command and console link need it.
	ExecutionARN string `json:"executionArn,omitempty"`
	// InstanceID is set even when Record is not (validation failed before recording).
	InstanceID   string              `json:"instanceId,omitempty"`
	Record       *Record             `json:"record,omitempty"`
	Disassociate *DisassociateOutput `json:"disassociate,omitempty"`
	Attach       *AttachOutput       `json:"attach,omitempty"`
	Groups       *EnsureGroupsOutput `json:"groups,omitempty"`
	Apply        *ApplyGroupsOutput  `json:"apply,omitempty"`
	Snapshot     *SnapshotOutput     `json:"snapshot,omitempty"`
	// Incident is the incident record "Record pre-isolation state" (isolation) or "Read incident record"
	// (release) returned.
	Incident *IncidentRef  `json:"incident,omitempty"`
	Revoke   *RevokeOutput `json:"revoke,omitempty"`
	Preserve *StepChanges  `json:"preserve,omitempty"`
	// Verify is the final read-back ("Verify containment"): what the instance looked like at the end, which the
	// notification reports (not what the steps meant to do).
	Verify *VerifyOutput `json:"verify,omitempty"`
	// The release's restore steps.
	RestoreGroups   *StepChanges  `json:"restoreGroups,omitempty"`
	RestoreProfile  *StepChanges  `json:"restoreProfile,omitempty"`
	LiftRevocation  *RevokeOutput `json:"liftRevocation,omitempty"`
	RestoreEvidence *StepChanges  `json:"restoreEvidence,omitempty"`
	// Failures is empty on success. On failure it names each state that failed (two when both branches of the
	// containment Parallel failed).
	Failures []Failure `json:"failures,omitempty"`
	// RedriveCount is $$.Execution.RedriveCount as "Notify failure" runs. When it is greater than every
	// failure's RedriveCount, this run is a redrive resuming: Notify publishes nothing and answers ResumeAt.
	RedriveCount int `json:"redriveCount"`
	// RerunCommand (slice L, issue 15) is not part of the state's input: Notify sets it from its settings when
	// the execution runs on a responder's machine (isolation run/release), where there is no Step Functions
	// execution to redrive and running the command again resumes it.
	RerunCommand string `json:"-"`
	// NearMiss is set by the near-miss rule's input transformer (Workflow WorkflowNearMiss, issue 13 item 5):
	// the stack's tag key and values, to say why the event's value started nothing.
	NearMiss *NearMiss `json:"nearMiss,omitempty"`
}

// NearMiss names the isolation tag key and the two values that start a workflow.
type NearMiss struct {
	TagKey       string `json:"tagKey"`
	IsolateValue string `json:"isolateValue"`
	ReleaseValue string `json:"releaseValue"`
}

// UnmarshalJSON decodes the input of "Notify success" / "Notify failure". The event ($$.Execution.Input) is the
// only part not written by the workflow: when it is not a tag change event (the reason validation failed), the
// notification must still go out, so it keeps only the resources it can read, or nothing.
func (n *NotifyInput) UnmarshalJSON(b []byte) error {
	type plain NotifyInput
	var v struct {
		plain
		Event json.RawMessage `json:"event"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*n = NotifyInput(v.plain)
	n.Event = nil
	if len(v.Event) == 0 || string(v.Event) == "null" {
		return nil
	}
	var ev TagEvent
	if json.Unmarshal(v.Event, &ev) == nil {
		n.Event = &ev
		return nil
	}
	var resources struct {
		Resources []string `json:"resources"`
	}
	if json.Unmarshal(v.Event, &resources) == nil {
		n.Event = &TagEvent{Resources: resources.Resources}
	}
	return nil
}

// Failure is one failed state, as its Catch recorded it.
type Failure struct {
	// State is the ASL name of the state that failed, e.g. "Apply isolation security group".
	State string `json:"state"`
	// Error and Cause are the Catch's error output: the error type aws-lambda-go reported and its message.
	Error string `json:"error"`
	Cause string `json:"cause"`
	// RedriveCount is $$.Execution.RedriveCount when the state failed.
	RedriveCount int `json:"redriveCount"`
}

// NotifyOutput is the published message's id, or, when a redrive resumes, the state to resume at.
type NotifyOutput struct {
	MessageID string `json:"messageId,omitempty"`
	// ResumeAt is set only on a redrive: the failed state that the workflow runs again.
	ResumeAt string `json:"resumeAt,omitempty"`
	// Central is the copy published to the organization's central topic (issue 13, item 15); nil without one.
	Central *CentralCopy `json:"central,omitempty"`
}

// CentralCopy is a copy of a notification or an incident record sent to the organization's security account
// (CentralTopicArn, CentralBucketName). It never fails its step: the stack's own topic or bucket has the
// original, and a retry would send that again.
type CentralCopy struct {
	// Target is the topic ARN or s3://bucket/key.
	Target string `json:"target"`
	// ID is the message id or the object's version id when the copy was made.
	ID string `json:"id,omitempty"`
	// Error says why the copy was not made (e.g. the security account's policy refused it).
	Error string `json:"error,omitempty"`
}

// VerifyInput is the input of "Verify containment", the isolation's final read-back.
type VerifyInput struct {
	InstanceID    string `json:"instanceId"`
	ExecutionName string `json:"executionName"`
	// Record is Validate's record; Groups and Apply the network branch's outputs (either may be null).
	Record *Record             `json:"record,omitempty"`
	Groups *EnsureGroupsOutput `json:"groups,omitempty"`
	Apply  *ApplyGroupsOutput  `json:"apply,omitempty"`
	Rerun
}

// VerifiedInterface is one ENI attached to the instance as the read-back saw it at the end.
type VerifiedInterface struct {
	ID               string   `json:"networkInterfaceId"`
	VpcID            string   `json:"vpcId"`
	Groups           []string `json:"groups"`
	IsolationGroupID string   `json:"isolationGroupId"`
}

// VerifiedGroup is one isolation group as the read-back saw it: a contained instance's have no rule.
type VerifiedGroup struct {
	VpcID   string `json:"vpcId"`
	GroupID string `json:"groupId"`
	Ingress int    `json:"ingress"`
	Egress  int    `json:"egress"`
}

// VerifyOutput is what "Verify containment" read back, after containing again what it found open.
type VerifyOutput struct {
	Contained         bool                `json:"contained"`
	NetworkInterfaces []VerifiedInterface `json:"networkInterfaces"`
	Groups            []VerifiedGroup     `json:"groups"`
	// Associations are the instance's profile associations not disassociated (contained: only the isolation
	// profile's).
	Associations []ProfileAssociation `json:"associations"`
	// Added are ENIs attached since "Validate and record", with their groups as observed before the read-back
	// changed them (never an isolation artifact): "Record outcome" adds them to the pre-isolation state, so
	// that a release restores them.
	Added []NetworkInterface `json:"added,omitempty"`
	// Open names what was still open at the first read-back (contained again since); empty when nothing was.
	Open []string `json:"open,omitempty"`
	// Rounds is the number of read-backs (1 when the first found the instance contained).
	Rounds int `json:"rounds"`
	// Superseded is set when the instance's isolation tag no longer carries the isolation value at the end.
	Superseded string   `json:"superseded,omitempty"`
	Changes    []Change `json:"changes,omitempty"`
	// NotOwned are the ENIs Apply could not contain because an AWS service manages them (issue 13 item 4): not
	// counted against Contained, named as still open.
	NotOwned []NotOwnedInterface `json:"notOwned,omitempty"`
}
