package workflow

import (
	"encoding/json"
	"time"
)

// Workflow names, as NotifyInput.Workflow and ExecutionEntry.Workflow carry them.
const (
	WorkflowIsolation = "isolation"
	WorkflowRelease   = "release"
	// WorkflowNearMiss: the isolation tag was set to a value that starts nothing (issue 13 item 5); EventBridge
	// invokes Notify directly, no execution runs.
	WorkflowNearMiss = "near-miss"
	// WorkflowEvidence: the evidence state machine (issue 16), which applies the instance settings the isolation
	// queued; it notifies only a failure.
	WorkflowEvidence = "evidence"
)

// Change is one change a step made to the account, for the incident record and the notification.
type Change struct {
	At time.Time `json:"at"`
	// Step is the ASL state name that made the change, e.g. "Apply isolation security group".
	Step string `json:"step"`
	// Resource is what was changed: eni-…, i-…, sg-…, an IAM role name, an Auto Scaling group name, a target
	// group ARN.
	Resource string `json:"resource"`
	// Action is the AWS API action, e.g. ModifyNetworkInterfaceAttribute.
	Action string `json:"action"`
	// Detail says what changed, for a person: "groups sg-1,sg-2 -> sg-9".
	Detail string `json:"detail,omitempty"`
}

// AutoScalingMembership is the instance's Auto Scaling group before isolation.
type AutoScalingMembership struct {
	GroupName            string `json:"groupName"`
	LifecycleState       string `json:"lifecycleState"`
	ProtectedFromScaleIn bool   `json:"protectedFromScaleIn"`
}

// TargetRegistration is one registration of the instance in a target group before isolation (an instance may be
// registered on several ports).
type TargetRegistration struct {
	TargetGroupARN   string `json:"targetGroupArn"`
	Port             int32  `json:"port"`
	AvailabilityZone string `json:"availabilityZone,omitempty"`
}

// PreIsolationState is what a release restores: the instance as the first isolation execution of an incident
// found it. Later executions of the same incident (a redrive, a repeated tag) never replace it.
type PreIsolationState struct {
	// Record is "Validate and record"'s output of that execution: ENIs and their groups, the profile
	// association, termination protection, shutdown behaviour, each volume's delete-on-termination.
	Record Record `json:"record"`
	// Instance is the instance's full description (DescribeInstances) as "Record pre-isolation state" read it.
	Instance json.RawMessage `json:"instance,omitempty"`
	// AutoScaling is nil when the instance was in no Auto Scaling group.
	AutoScaling  *AutoScalingMembership `json:"autoScaling,omitempty"`
	TargetGroups []TargetRegistration   `json:"targetGroups"`
	// Missing is empty when Record is a genuine observation made before any change. Otherwise it says why the
	// pre-isolation state is unknown (every observation of the incident already showed isolation artifacts):
	// Record is then what was seen, a placeholder that a later genuine observation replaces, and a release is
	// refused (restore by hand).
	Missing string `json:"missing,omitempty"`
}

// ExecutionEntry is one execution (isolation or release) that acted on the incident.
type ExecutionEntry struct {
	Workflow      string    `json:"workflow"`
	ExecutionName string    `json:"executionName"`
	ExecutionARN  string    `json:"executionArn,omitempty"`
	StartedAt     time.Time `json:"startedAt"`
	// Outcome is empty until the execution's last recording step ("Record outcome" / "Record release").
	Outcome    string     `json:"outcome,omitempty"`
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
	// Failures are the states that failed, when Outcome is FAILED.
	Failures []Failure `json:"failures,omitempty"`
}

// Incident is one isolation of the instance, from the first isolation execution to its release.
type Incident struct {
	OpenedAt     time.Time         `json:"openedAt"`
	PreIsolation PreIsolationState `json:"preIsolation"`
	Executions   []ExecutionEntry  `json:"executions"`
	Snapshots    []Snapshot        `json:"snapshots"`
	Changes      []Change          `json:"changes"`
	// ReleasedAt is nil while the incident is open (the instance is isolated).
	ReleasedAt *time.Time `json:"releasedAt,omitempty"`
}

// IncidentFile is the durable record of one instance: one S3 object (key IncidentKey) in the stack's
// versioned incident bucket, every version kept.
type IncidentFile struct {
	SchemaVersion int    `json:"schemaVersion"`
	InstanceID    string `json:"instanceId"`
	InstanceARN   string `json:"instanceArn"`
	Account       string `json:"account"`
	Region        string `json:"region"`
	// Incidents, oldest first. Only the last may be open.
	Incidents []Incident `json:"incidents"`
}

// IncidentKey is the S3 key of an instance's incident record.
func IncidentKey(account, region, instanceID string) string {
	return "incidents/" + account + "/" + region + "/" + instanceID + ".json"
}

// OpenIncidentInput is the input of "Record pre-isolation state".
type OpenIncidentInput struct {
	Record        Record `json:"record"`
	ExecutionName string `json:"executionName"`
	ExecutionARN  string `json:"executionArn,omitempty"`
}

// IncidentRef points at the version of the record a step wrote or read, with the incident's pre-isolation
// state (the state later steps act on: not the instance's current state, which a repeated execution finds
// already isolated).
type IncidentRef struct {
	Bucket    string `json:"bucket"`
	Key       string `json:"key"`
	VersionID string `json:"versionId,omitempty"`
	// Opened is true when this execution opened the incident, false when it joined one already open.
	Opened       bool              `json:"opened"`
	OpenedAt     time.Time         `json:"openedAt"`
	PreIsolation PreIsolationState `json:"preIsolation"`
	// Isolations names the incident's isolation executions when "Read incident record" read it: "Record release"
	// does not close the incident over one that joined since (it may have contained the instance again).
	Isolations []string `json:"isolations,omitempty"`
	// Central is the copy written to the organization's central bucket (issue 13, item 15); nil without one.
	Central *CentralCopy `json:"central,omitempty"`
}

// RevokeInput is the input of "Revoke credentials" (isolation) and "Lift credential revocation" (release).
type RevokeInput struct {
	InstanceID    string `json:"instanceId"`
	InstanceARN   string `json:"instanceArn"`
	ExecutionName string `json:"executionName"`
	// ProfileARN is the pre-isolation instance profile; empty when the instance had none (nothing to revoke).
	ProfileARN string `json:"profileArn,omitempty"`
	// ReleaseStartedAt is the release execution's start ($$.Execution.StartTime; "Lift credential revocation"
	// only): credentials of the instance issued before it stay denied. It is the same on a redrive, so the policy
	// is too; a restored profile's fresh credentials are issued after it. Nil: the step's own clock.
	ReleaseStartedAt *time.Time `json:"releaseStartedAt,omitempty"`
}

// RevokedRole is one role that carries (or carried) the revoking inline policy.
type RevokedRole struct {
	RoleName   string `json:"roleName"`
	PolicyName string `json:"policyName"`
	// Changed is false when the policy was already in the wanted state.
	Changed bool `json:"changed"`
	// DeniedBefore and Until are set by "Lift credential revocation" (issue 13): the policy still denies the
	// instance's credentials issued before DeniedBefore, and can be deleted after Until (when none of them can
	// still be valid).
	DeniedBefore *time.Time `json:"deniedBefore,omitempty"`
	Until        *time.Time `json:"until,omitempty"`
}

// RevokeOutput is the output of "Revoke credentials" and "Lift credential revocation".
type RevokeOutput struct {
	Roles []RevokedRole `json:"roles"`
	// Skipped says why nothing was revoked or lifted, e.g. the role is outside the stack's revocable roles.
	Skipped []string `json:"skipped,omitempty"`
	Changes []Change `json:"changes,omitempty"`
}

// EvidenceInput is the input of "Preserve evidence" (isolation) and "Restore evidence settings" (release).
type EvidenceInput struct {
	InstanceID    string `json:"instanceId"`
	ExecutionName string `json:"executionName"`
	// Record is Validate's record: "Preserve evidence" runs beside the incident record, not after it, so it
	// reads what it changes itself (Observed).
	Record       *Record           `json:"record,omitempty"`
	PreIsolation PreIsolationState `json:"preIsolation"`
	// Rerun (issue 13 item 3): the first run of "Preserve evidence" takes termination protection, shutdown
	// behaviour and each volume's delete-on-termination from Record (Validate read them moments before: three
	// reads fewer); a retry or a redrive reads them again, since the first run may have changed them.
	Rerun
	// Stage (slice T, issue 16) says which parts run: StageAll ("", old executions and redrives), StageFleet
	// (the isolation's evidence branch: Auto Scaling and target groups, which cannot wait) or StageSettings (the
	// evidence state machine: termination protection, shutdown behaviour, delete-on-termination). Anything else
	// is refused (steperr.InvalidInput), changing nothing.
	Stage string `json:"stage,omitempty"`
	// IsolationExecution (slice T, issue 16) is the isolation execution that queued a StageSettings job: the
	// settings are left alone once the incident it joined is released.
	IsolationExecution string `json:"isolationExecution,omitempty"`
}

// Stages of "Preserve evidence" (EvidenceInput.Stage).
const (
	StageAll      = ""
	StageFleet    = "fleet"
	StageSettings = "settings"
)

// EvidenceJob (issue 16) is the message the isolation's "Queue instance settings" sends to the evidence queue,
// {"evidenceJob": {...}}: the input of the evidence state machine.
type EvidenceJob struct {
	InstanceID         string  `json:"instanceId"`
	IsolationExecution string  `json:"isolationExecution"`
	Record             *Record `json:"record,omitempty"`
}

// EvidenceMessage is the evidence queue's message body.
type EvidenceMessage struct {
	EvidenceJob *EvidenceJob `json:"evidenceJob"`
}

// EvidenceObserved is what "Preserve evidence" saw before changing it: "Record outcome" adds it to the
// incident's pre-isolation state where that state (read concurrently) missed it.
type EvidenceObserved struct {
	AutoScaling  *AutoScalingMembership `json:"autoScaling,omitempty"`
	TargetGroups []TargetRegistration   `json:"targetGroups,omitempty"`
}

// StepChanges is the output of the steps that report only what they changed: "Preserve evidence" and the
// release's restore steps.
type StepChanges struct {
	Changes []Change `json:"changes"`
	// Skipped says what the step left alone and why (a setting turned off by a stack parameter, a resource
	// that no longer exists).
	Skipped []string `json:"skipped,omitempty"`
	// Observed is set by "Preserve evidence" only.
	Observed *EvidenceObserved `json:"observed,omitempty"`
}

// ReleaseInput is the input of the release's restore steps ("Restore security groups", "Restore instance
// profile", "Restore evidence settings"): the instance and its incident, as "Read incident record" returned it.
type ReleaseInput struct {
	InstanceID    string      `json:"instanceId"`
	InstanceARN   string      `json:"instanceArn"`
	ExecutionName string      `json:"executionName"`
	Incident      IncidentRef `json:"incident"`
}
