// Package incident is the durable incident record of an instance (one JSON object per instance in the stack's
// versioned, encrypted S3 bucket, key workflow.IncidentKey) and the steps that read and write it:
//
//   - Recorder (function record-incident) serves three states, told apart by the input's "phase":
//     "Record pre-isolation state" (open), "Record outcome" (outcome) and "Record release" (release).
//   - Reader (function read-incident-record) is "Read incident record", the release's first state. It never
//     writes.
//
// # Record semantics
//
// The record holds the instance's incidents, oldest first; only the last may be open (ReleasedAt nil). An
// isolation execution joins the open incident (adding its ExecutionEntry, once) or opens a new one with the
// pre-isolation state: Validate's record, plus the Auto Scaling membership, the target group registrations and
// the full DescribeInstances description that this package reads. A later execution of an open incident (a
// redrive, the tag set again) replaces that pre-isolation state only with an earlier genuine observation (see
// below): the instance it finds is already isolated. "Record outcome" and "Record release" add each step's changes (deduplicated by step, resource,
// action and time), the snapshots and the execution's outcome and failures (one entry per execution name,
// updated by a redrive); a successful release closes the incident.
//
// Writes are conditional (If-None-Match: * to create, If-Match: <ETag> to update) and start again from a fresh
// read when another execution wrote in between; a run that finds nothing to add writes nothing.
//
// The description is read while the network containment runs beside it, so its security groups may already be
// the isolation group's; what a release restores is Validate's record (read before any change).
//
// # Inputs (ASL Parameters)
//
// The three states share the function; "phase" says which one runs, the rest is the phase's type:
//
//	"Record pre-isolation state": {"phase": "open", "record.$": "$.record",
//	    "executionName.$": "$$.Execution.Name", "executionArn.$": "$$.Execution.Id"}
//	    (workflow.OpenIncidentInput; output workflow.IncidentRef)
//	"Record outcome": {"phase": "outcome", ...every field of Notify's input} (workflow.NotifyInput: record,
//	    incident (the open phase's output; without it the key comes from record), disassociate, attach, groups,
//	    apply, snapshot, revoke, preserve, failures, outcome (SUCCEEDED | FAILED; when absent, FAILED iff
//	    failures), executionName, executionArn, redriveCount)
//	"Record release": {"phase": "release", "workflow": "release", ...} (workflow.NotifyInput: incident (Read
//	    incident record's), restoreGroups, restoreProfile, liftRevocation, restoreEvidence, failures, outcome,
//	    executionName, executionArn, instanceId)
//
// Outcome and release return the incident's IncidentRef at the version written (or read, when there was nothing
// to add). Without an incident or a record to name the object (the execution failed at "Validate and record" or
// "Read incident record"), they record nothing, make no call and return an empty IncidentRef.
//
// # The pre-isolation state (docs/record-rules.md)
//
// The pre-isolation state is an observation made before any change: Validate's record, read at RecordedAt.
// One that already shows an isolation artifact (Record.Artifacts: an ENI on a managed group in any position, the
// isolation profile; for records of earlier versions, LooksIsolated) is only a placeholder: the incident keeps
// what it knows without the artifacts and says why the state is unknown (PreIsolationState.Missing). When
// executions race to open or join the incident ("Record pre-isolation state", or "Record outcome" when that step
// did not write), the earliest genuine observation wins, decided on the record as each conditional write finds
// it. "Record outcome" completes the state with what the execution saw before changing it (ENIs attached since,
// the Auto Scaling membership and registrations Preserve evidence observed). "Read incident record" refuses to
// release an incident without a genuine state (RecordMissing: restore it by hand), refuses a release the
// instance's tag no longer asks for (Superseded), and answers IsolationInProgress while the incident's latest
// isolation has not recorded its outcome (the release retries it).
package incident

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// EnvBucket names the incident bucket (created by the stack).
const EnvBucket = "INCIDENT_BUCKET"

// Phases of record-incident, the "phase" field its ASL states set in Parameters.
const (
	PhaseOpen    = "open"    // "Record pre-isolation state": the rest of the input is a workflow.OpenIncidentInput
	PhaseOutcome = "outcome" // "Record outcome": the rest is a workflow.NotifyInput of the isolation
	PhaseRelease = "release" // "Record release": the rest is a workflow.NotifyInput of the release
)

// State names.
const (
	stateOpen    = "Record pre-isolation state"
	stateOutcome = "Record outcome"
	stateRelease = "Record release"
)

// Input is the input of record-incident: a JSON object with "phase" and, beside it, the fields of the phase's
// input type (OpenIncidentInput for "open", NotifyInput for "outcome" and "release").
type Input struct {
	Phase string
	Open  workflow.OpenIncidentInput
	State workflow.NotifyInput
}

// UnmarshalJSON decodes the phase, then the rest as the phase's type. Input that is not such an object is a
// steperr.InvalidInput (aws-lambda-go reports its type name).
func (in *Input) UnmarshalJSON(b []byte) error {
	var p struct {
		Phase string `json:"phase"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return &steperr.InvalidInput{Step: "record-incident", Reason: "the input is not a JSON object with a phase: " + err.Error()}
	}
	*in = Input{Phase: p.Phase}
	var err error
	switch p.Phase {
	case PhaseOpen:
		err = json.Unmarshal(b, &in.Open)
	case PhaseOutcome, PhaseRelease:
		err = json.Unmarshal(b, &in.State)
	default:
		return &steperr.InvalidInput{Step: "record-incident", Reason: fmt.Sprintf("phase is %q, want %q, %q or %q", p.Phase, PhaseOpen, PhaseOutcome, PhaseRelease)}
	}
	if err != nil {
		return &steperr.InvalidInput{Step: stateName(p.Phase), Reason: err.Error()}
	}
	return nil
}

// MarshalJSON writes the input as UnmarshalJSON reads it (the runner and tests build inputs with it).
func (in Input) MarshalJSON() ([]byte, error) {
	var v any = in.Open
	if in.Phase != PhaseOpen {
		v = in.State
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	m["phase"], _ = json.Marshal(in.Phase)
	return json.Marshal(m)
}

func stateName(phase string) string {
	switch phase {
	case PhaseOpen:
		return stateOpen
	case PhaseRelease:
		return stateRelease
	}
	return stateOutcome
}

// Recorder is the record-incident handler.
type Recorder struct {
	store store
	// central is the organization's central bucket (WithCentral), which gets a copy of every record written.
	central *store
	asg     AutoScalingAPI
	elb     ELBAPI
	log     *slog.Logger
	now     func() time.Time
}

// NewRecorder returns the handler of the bucket. A nil logger logs to slog.Default().
func NewRecorder(s3 S3API, asg AutoScalingAPI, elb ELBAPI, bucket string, log *slog.Logger) *Recorder {
	if log == nil {
		log = slog.Default()
	}
	return &Recorder{store: store{s3: s3, bucket: bucket}, asg: asg, elb: elb, log: log, now: time.Now}
}

// EnvCentralBucket and EnvCentralBucketRegion name the organization's central bucket (parameters
// CentralBucketName, CentralBucketRegion), "" for none.
const (
	EnvCentralBucket       = "CENTRAL_BUCKET"
	EnvCentralBucketRegion = "CENTRAL_BUCKET_REGION"
)

// WithCentral makes the recorder copy each record it writes to the organization's central bucket, at the same
// key, with client (of that bucket's region; the bucket policy lets the organization write its own prefix).
func (r *Recorder) WithCentral(client S3API, bucket string) *Recorder {
	r.central = &store{s3: client, bucket: bucket}
	return r
}

// copyCentral writes the record as it now is to the central bucket (versioned there: each copy is a version).
// A failure is logged and reported, never the step's: the stack's bucket has the record, and the next
// recording state (or a redrive) copies it again.
func (r *Recorder) copyCentral(ctx context.Context, key string, f *workflow.IncidentFile, log *slog.Logger) *workflow.CentralCopy {
	if r.central == nil || f == nil {
		return nil
	}
	c := &workflow.CentralCopy{Target: fmt.Sprintf("s3://%s/%s", r.central.bucket, key)}
	body, err := json.Marshal(f)
	if err == nil {
		var out *s3.PutObjectOutput
		out, err = r.central.s3.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(r.central.bucket), Key: aws.String(key), Body: bytes.NewReader(body),
			ContentType: aws.String("application/json"),
		})
		if err == nil {
			c.ID = aws.ToString(out.VersionId)
			log.Info("record copied to the central bucket", "target", c.Target, "version", c.ID)
			return c
		}
		err = steperr.FromAWS("copy the record to "+c.Target, err)
	}
	c.Error = err.Error()
	log.Error("central bucket: record not copied", "target", c.Target, "error", c.Error)
	return c
}

// Handle runs the input's phase.
func (r *Recorder) Handle(ctx context.Context, in Input) (workflow.IncidentRef, error) {
	switch in.Phase {
	case PhaseOpen:
		return r.Open(ctx, in.Open)
	case PhaseOutcome, PhaseRelease:
		return r.Close(ctx, in.Phase, in.State)
	}
	return workflow.IncidentRef{}, &steperr.InvalidInput{Step: "record-incident", Reason: fmt.Sprintf("phase is %q, want %q, %q or %q", in.Phase, PhaseOpen, PhaseOutcome, PhaseRelease)}
}

var (
	instanceIDPattern = regexp.MustCompile(`^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$`)
	accountPattern    = regexp.MustCompile(`^[0-9]{12}$`)
	regionPattern     = regexp.MustCompile(`^[a-z]{2}(?:-[a-z]+)+-[0-9]+$`)
)

func checkRecord(rec workflow.Record, state string) error {
	bad := func(format string, a ...any) error {
		return &steperr.InvalidInput{Step: state, Reason: fmt.Sprintf(format, a...)}
	}
	switch {
	case !instanceIDPattern.MatchString(rec.InstanceID):
		return bad("record.instanceId %q is not an instance id", truncate(rec.InstanceID, 100))
	case !accountPattern.MatchString(rec.Account):
		return bad("record.account %q is not an account id", truncate(rec.Account, 100))
	case !regionPattern.MatchString(rec.Region):
		return bad("record.region %q is not a region", truncate(rec.Region, 100))
	case rec.InstanceARN == "":
		return bad("record.instanceArn is empty")
	}
	return nil
}

// Open is "Record pre-isolation state": it joins the instance's open incident or opens one.
func (r *Recorder) Open(ctx context.Context, in workflow.OpenIncidentInput) (workflow.IncidentRef, error) {
	log := r.log.With("instance", in.Record.InstanceID, "execution", in.ExecutionName, "step", stateOpen)
	if err := checkRecord(in.Record, stateOpen); err != nil {
		log.Error("refused input", "error", err)
		return workflow.IncidentRef{}, err
	}
	if in.ExecutionName == "" {
		err := &steperr.InvalidInput{Step: stateOpen, Reason: "executionName is empty"}
		log.Error("refused input", "error", err)
		return workflow.IncidentRef{}, err
	}
	key := workflow.IncidentKey(in.Record.Account, in.Record.Region, in.Record.InstanceID)
	var pre *workflow.PreIsolationState // read once, whatever the number of write attempts
	f, version, err := r.store.update(ctx, key, func(l loaded) (*workflow.IncidentFile, bool, error) {
		f := l.file
		if f == nil {
			f = newFile(in.Record)
		}
		if inc := openIncident(f); inc != nil {
			changed := false
			if !listedInClosed(f, in.ExecutionName) && adopt(f, len(f.Incidents)-1, in.Record) {
				// An execution whose record write failed or came late: its observation was made before the one
				// the incident holds (or that one was no genuine observation).
				log.Warn("this execution's observation replaces the incident's pre-isolation state (earliest genuine observation wins)",
					"recordedAt", in.Record.RecordedAt)
				changed = true
			}
			if !slices.ContainsFunc(inc.Executions, sameExecution(in.ExecutionName)) {
				inc.Executions = append(inc.Executions, workflow.ExecutionEntry{
					Workflow: workflow.WorkflowIsolation, ExecutionName: in.ExecutionName, ExecutionARN: in.ExecutionARN,
					StartedAt: r.now().UTC(),
				})
				changed = true
			}
			return f, changed, nil
		}
		if pre == nil {
			p, err := r.capture(ctx, in.Record)
			if err != nil {
				return nil, false, err
			}
			if p.Missing = missingReason(in.Record); p.Missing != "" {
				p.Record = placeholder(in.Record)
			}
			pre = &p
			if p.Missing != "" {
				log.Warn("no incident is open and the instance already shows isolation artifacts: the incident holds them as a placeholder until a genuine observation is recorded; a release is refused until then",
					"artifacts", artifactsOf(in.Record))
			}
		}
		now := r.now().UTC()
		f.Incidents = append(f.Incidents, workflow.Incident{
			OpenedAt: now, PreIsolation: *pre, Snapshots: []workflow.Snapshot{}, Changes: []workflow.Change{},
			Executions: []workflow.ExecutionEntry{{
				Workflow: workflow.WorkflowIsolation, ExecutionName: in.ExecutionName, ExecutionARN: in.ExecutionARN, StartedAt: now,
			}},
		})
		return f, true, nil
	})
	if err != nil {
		err = r.named(err, key)
		log.Error("cannot record the pre-isolation state", "error", err)
		return workflow.IncidentRef{}, err
	}
	inc := openIncident(f)
	ref := r.ref(key, version, inc, in.ExecutionName)
	log.Info("incident recorded", "key", key, "version", version, "opened", ref.Opened, "openedAt", ref.OpenedAt)
	ref.Central = r.copyCentral(ctx, key, f, log)
	return ref, nil
}

// Close is "Record outcome" (phase outcome) and "Record release" (phase release): it adds the execution's
// outcome, failures, changes and snapshots to its incident; a successful release closes the incident.
func (r *Recorder) Close(ctx context.Context, phase string, in workflow.NotifyInput) (workflow.IncidentRef, error) {
	state := stateName(phase)
	log := r.log.With("instance", closeInstanceID(in), "execution", in.ExecutionName, "step", state)
	wf := workflow.WorkflowIsolation
	if phase == PhaseRelease {
		wf = workflow.WorkflowRelease
	}
	outcome, err := checkClose(in, state, wf)
	if err != nil {
		log.Error("refused input", "error", err)
		return workflow.IncidentRef{}, err
	}
	key := ""
	switch {
	case in.Incident != nil && in.Incident.Key != "":
		if in.Incident.Bucket != r.store.bucket {
			err := &steperr.InvalidInput{Step: state, Reason: fmt.Sprintf("incident.bucket %q is not this stack's incident bucket %q", truncate(in.Incident.Bucket, 100), r.store.bucket)}
			log.Error("refused input", "error", err)
			return workflow.IncidentRef{}, err
		}
		key = in.Incident.Key
	case in.Record != nil && phase == PhaseOutcome:
		if err := checkRecord(*in.Record, state); err != nil {
			log.Error("refused input", "error", err)
			return workflow.IncidentRef{}, err
		}
		key = workflow.IncidentKey(in.Record.Account, in.Record.Region, in.Record.InstanceID)
	default:
		// The execution failed before it knew the instance ("Validate and record", "Read incident record"):
		// there is no incident to add to. The notification says what failed.
		log.Info("no incident to record: the execution failed before naming its instance's record", "outcome", outcome)
		return workflow.IncidentRef{}, nil
	}

	changes := collectChanges(in)
	// A release may close the incident only if no isolation joined it while the release restored: that isolation
	// may have contained the instance again after the restore, so the release cannot claim success.
	var readIsolations map[string]bool
	if phase == PhaseRelease && outcome == workflow.OutcomeSucceeded && in.Incident != nil && len(in.Incident.Isolations) > 0 {
		readIsolations = map[string]bool{}
		for _, name := range in.Incident.Isolations {
			readIsolations[name] = true
		}
	}
	var pre *workflow.PreIsolationState
	var idx int
	f, version, err := r.store.update(ctx, key, func(l loaded) (*workflow.IncidentFile, bool, error) {
		f := l.file
		if f == nil && (phase == PhaseRelease || in.Record == nil) {
			return nil, false, &steperr.RecordMissing{Bucket: r.store.bucket, Key: key, Reason: "it no longer exists"}
		}
		if f == nil {
			f = newFile(*in.Record)
		}
		idx = incidentOf(f, in.ExecutionName, wf)
		changed := false
		if idx < 0 {
			if phase == PhaseOutcome && in.Record == nil {
				return nil, false, &steperr.RecordMissing{Bucket: r.store.bucket, Key: key,
					Reason: "it holds no open incident for this execution, and the input has no record to open one with"}
			}
			if phase == PhaseOutcome {
				// "Record pre-isolation state" did not write (it failed, or its branch never ran): record what it
				// would have, now; nothing but the network containment waited for it.
				if pre == nil {
					p, err := r.capture(ctx, *in.Record)
					if err != nil {
						return nil, false, err
					}
					if p.Missing = missingReason(*in.Record); p.Missing != "" {
						p.Record = placeholder(*in.Record)
					}
					pre = &p
				}
				f.Incidents = append(f.Incidents, workflow.Incident{
					OpenedAt: r.now().UTC(), PreIsolation: *pre, Snapshots: []workflow.Snapshot{}, Changes: []workflow.Change{},
				})
			} else if len(f.Incidents) == 0 {
				return nil, false, &steperr.RecordMissing{Bucket: r.store.bucket, Key: key, Reason: "it holds no incident"}
			}
			// A release that found no open incident (another release closed it meanwhile) is recorded in the last.
			idx = len(f.Incidents) - 1
			changed = true
		}
		if phase == PhaseOutcome && in.Record != nil && !listedInClosed(f, in.ExecutionName) && adopt(f, idx, *in.Record) {
			log.Warn("this execution's observation replaces the incident's pre-isolation state (earliest genuine observation wins)",
				"recordedAt", in.Record.RecordedAt)
			changed = true
		}
		inc := &f.Incidents[idx]
		if readIsolations != nil && inc.ReleasedAt == nil {
			for _, e := range inc.Executions {
				if e.Workflow == workflow.WorkflowIsolation && !readIsolations[e.ExecutionName] {
					return nil, false, &steperr.IsolationInProgress{InstanceID: f.InstanceID, Execution: e.ExecutionName}
				}
			}
		}
		if phase == PhaseOutcome && completePreIsolation(inc, in) {
			changed = true
		}
		if mergeExecution(inc, in, wf, outcome, changes, r.now().UTC()) {
			changed = true
		}
		if mergeChanges(inc, changes) {
			changed = true
		}
		if in.Snapshot != nil && mergeSnapshots(inc, in.Snapshot.Snapshots) {
			changed = true
		}
		if wf == workflow.WorkflowRelease && outcome == workflow.OutcomeSucceeded && inc.ReleasedAt == nil {
			at := r.now().UTC()
			inc.ReleasedAt = &at
			changed = true
		}
		return f, changed, nil
	})
	if err != nil {
		err = r.named(err, key)
		log.Error("cannot record the outcome", "error", err)
		return workflow.IncidentRef{}, err
	}
	inc := &f.Incidents[idx]
	ref := r.ref(key, version, inc, in.ExecutionName)
	log.Info("incident recorded", "key", key, "version", version, "outcome", outcome, "changes", len(changes),
		"released", inc.ReleasedAt != nil)
	ref.Central = r.copyCentral(ctx, key, f, log)
	return ref, nil
}

func checkClose(in workflow.NotifyInput, state, wf string) (string, error) {
	bad := func(format string, a ...any) (string, error) {
		return "", &steperr.InvalidInput{Step: state, Reason: fmt.Sprintf(format, a...)}
	}
	if in.Workflow != "" && in.Workflow != wf {
		return bad("workflow is %q, but this is the %s's recording state", in.Workflow, wf)
	}
	if in.ExecutionName == "" {
		return bad("executionName is empty")
	}
	switch in.Outcome {
	case "":
		// The state may run before the Choice that tells success from failure: the failures say.
		if len(in.Failures) > 0 {
			return workflow.OutcomeFailed, nil
		}
		return workflow.OutcomeSucceeded, nil
	case workflow.OutcomeSucceeded:
		if len(in.Failures) > 0 {
			return bad("outcome %s with %d failures", in.Outcome, len(in.Failures))
		}
		return in.Outcome, nil
	case workflow.OutcomeFailed:
		return in.Outcome, nil
	}
	return bad("outcome %q, want %s or %s", truncate(in.Outcome, 50), workflow.OutcomeSucceeded, workflow.OutcomeFailed)
}

// named turns the store's internal errors into the named errors the state machine knows.
func (r *Recorder) named(err error, key string) error {
	return storeError(err, r.store.bucket, key)
}

func storeError(err error, bucket, key string) error {
	var unreadable *errUnreadable
	switch {
	case err == errNoBucket:
		return &steperr.RecordMissing{Bucket: bucket, Key: key, Reason: "the bucket does not exist"}
	case asErr(err, &unreadable):
		return &steperr.RecordMissing{Bucket: bucket, Key: key, Reason: unreadable.Error()}
	}
	return err
}

func (r *Recorder) ref(key, version string, inc *workflow.Incident, execution string) workflow.IncidentRef {
	ref := workflow.IncidentRef{Bucket: r.store.bucket, Key: key, VersionID: version}
	if inc != nil {
		ref.OpenedAt, ref.PreIsolation = inc.OpenedAt, inc.PreIsolation
		ref.Opened = len(inc.Executions) > 0 && inc.Executions[0].ExecutionName == execution
	}
	return ref
}

func newFile(rec workflow.Record) *workflow.IncidentFile {
	return &workflow.IncidentFile{
		SchemaVersion: SchemaVersion, InstanceID: rec.InstanceID, InstanceARN: rec.InstanceARN,
		Account: rec.Account, Region: rec.Region, Incidents: []workflow.Incident{},
	}
}

// openIncident is the last incident if it is open, else nil.
func openIncident(f *workflow.IncidentFile) *workflow.Incident {
	if n := len(f.Incidents); n > 0 && f.Incidents[n-1].ReleasedAt == nil {
		return &f.Incidents[n-1]
	}
	return nil
}

// incidentOf is the index of the incident that an execution's outcome belongs to: the latest that lists the
// execution, else the open one; -1 when there is neither.
func incidentOf(f *workflow.IncidentFile, execution, wf string) int {
	for i := len(f.Incidents) - 1; i >= 0; i-- {
		if slices.ContainsFunc(f.Incidents[i].Executions, func(e workflow.ExecutionEntry) bool {
			return e.ExecutionName == execution && e.Workflow == wf
		}) {
			return i
		}
	}
	if openIncident(f) != nil {
		return len(f.Incidents) - 1
	}
	return -1
}

// listedInClosed: the isolation execution belongs to an incident already released (a redrive long after): its
// observation describes that incident's instance, not the open one's.
func listedInClosed(f *workflow.IncidentFile, execution string) bool {
	for _, inc := range f.Incidents {
		if inc.ReleasedAt != nil && slices.ContainsFunc(inc.Executions, sameExecution(execution)) {
			return true
		}
	}
	return false
}

func sameExecution(name string) func(workflow.ExecutionEntry) bool {
	return func(e workflow.ExecutionEntry) bool {
		return e.ExecutionName == name && e.Workflow == workflow.WorkflowIsolation
	}
}

func closeInstanceID(in workflow.NotifyInput) string {
	switch {
	case in.Record != nil && in.Record.InstanceID != "":
		return in.Record.InstanceID
	case in.InstanceID != "":
		return in.InstanceID
	case in.Event != nil:
		return in.Event.InstanceID()
	}
	return ""
}

// LooksIsolated reports whether Validate's record shows an ENI that carries one of the stack's managed groups
// (in any position): then the record is not of an instance before isolation. Records of this version also say
// so in Record.Artifacts; this covers those written before.
func LooksIsolated(rec workflow.Record) bool {
	managed := map[string]bool{}
	for _, id := range rec.ManagedGroups {
		managed[id] = true
	}
	for _, g := range rec.IsolationGroups {
		if g.IsolationGroupID != "" {
			managed[g.IsolationGroupID] = true
		}
		if g.UntrackGroupID != "" {
			managed[g.UntrackGroupID] = true
		}
	}
	for _, n := range rec.NetworkInterfaces {
		if slices.ContainsFunc(n.Groups, func(g string) bool { return managed[g] }) {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
