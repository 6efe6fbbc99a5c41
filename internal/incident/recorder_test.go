package incident_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/go-cmp/cmp"

	"github.com/ec2-isolation/ec2-isolation/internal/incident"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// fleet: the instance (groups as preRecord says) in an Auto Scaling group, registered in two target groups of
// vpcA (one on two ports); a third group of vpcB holds another instance only.
func fleet() sim.Scenario {
	sc := withInstance(network(), []string{"sg-0000000000000000a", "sg-0000000000000000b"}, []string{"sg-0000000000000000d"})
	sc.Instances = append(sc.Instances, sim.Instance{ID: "i-0fedcba9876543210", SubnetID: "subnet-0bbb000000000001"})
	sc.TargetGroups = []sim.TargetGroup{
		{Name: "web", VpcID: vpcA, Port: 80, Targets: []sim.Target{{ID: instanceID}}},
		{Name: "api", VpcID: vpcA, Port: 8080, Targets: []sim.Target{{ID: instanceID}, {ID: instanceID, Port: 9090}}},
		{Name: "mgmt", VpcID: vpcB, Port: 22, Targets: []sim.Target{{ID: "i-0fedcba9876543210"}}},
	}
	sc.AutoScaling = []sim.AutoScalingGroup{{
		Name: "web-asg", MinSize: 1, MaxSize: 4, DesiredCapacity: 2,
		Instances:       []sim.AutoScalingInstance{{ID: instanceID, ProtectedFromScaleIn: true}},
		TargetGroupARNs: []string{"web"},
	}}
	return sc
}

func newRecorder(srv *sim.Server) *incident.Recorder {
	cfg := srv.AWSConfig("record-incident")
	return incident.NewRecorder(s3Client(srv, "record-incident"), autoscaling.NewFromConfig(cfg),
		elbv2.NewFromConfig(cfg), bucket, quiet)
}

var quiet = slog.New(slog.DiscardHandler)

func openInput(execution string) workflow.OpenIncidentInput {
	return workflow.OpenIncidentInput{Record: preRecord(), ExecutionName: execution,
		ExecutionARN: "arn:aws:states:us-east-1:123456789012:execution:isolation:" + execution}
}

// targetGroupARNs reads the scenario's target group ARNs by name through the SDK.
func targetGroupARNs(t *testing.T, srv *sim.Server) map[string]string {
	t.Helper()
	out, err := elbv2.NewFromConfig(srv.AWSConfig("test")).DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{})
	if err != nil {
		t.Fatalf("describe target groups: %v", err)
	}
	m := map[string]string{}
	for _, g := range out.TargetGroups {
		m[aws.ToString(g.TargetGroupName)] = aws.ToString(g.TargetGroupArn)
	}
	return m
}

// described is Validate's record of the instance: preRecord with the description EC2 gives now.
func described(t *testing.T, srv *sim.Server) workflow.Record {
	t.Helper()
	out, err := ec2.NewFromConfig(srv.AWSConfig("test")).DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{instanceID}})
	if err != nil || len(out.Reservations) != 1 || len(out.Reservations[0].Instances) != 1 {
		t.Fatalf("describe: %v", err)
	}
	rec := preRecord()
	if rec.Description, err = json.Marshal(out.Reservations[0].Instances[0]); err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestOpenRecordsThePreIsolationStateOnce(t *testing.T) {
	srv := start(t, fleet())
	r := newRecorder(srv)
	in := openInput("iso-1")
	in.Record = described(t, srv)
	ref, err := r.Open(ctx, in)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	f, version := readRecord(t, srv)
	if ref.Bucket != bucket || ref.Key != key || ref.VersionID != version || !ref.Opened {
		t.Errorf("ref = %s/%s@%s opened=%v, want %s/%s@%s opened", ref.Bucket, ref.Key, ref.VersionID, ref.Opened, bucket, key, version)
	}
	if len(f.Incidents) != 1 {
		t.Fatalf("%d incidents, want 1", len(f.Incidents))
	}
	inc := f.Incidents[0]
	tg := targetGroupARNs(t, srv)
	want := workflow.PreIsolationState{
		Record:      preRecord(),
		AutoScaling: &workflow.AutoScalingMembership{GroupName: "web-asg", LifecycleState: "InService", ProtectedFromScaleIn: true},
		TargetGroups: sortRegs([]workflow.TargetRegistration{
			{TargetGroupARN: tg["web"], Port: 80}, {TargetGroupARN: tg["api"], Port: 8080}, {TargetGroupARN: tg["api"], Port: 9090},
		}),
	}
	got := inc.PreIsolation
	got.Instance = nil
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pre-isolation state (-want +got):\n%s", diff)
	}
	var desc struct {
		InstanceId        string
		NetworkInterfaces []struct{ NetworkInterfaceId string }
	}
	if err := json.Unmarshal(inc.PreIsolation.Instance, &desc); err != nil || desc.InstanceId != instanceID || len(desc.NetworkInterfaces) != 2 {
		t.Errorf("description = %+v (%v), want the instance with its 2 ENIs", desc, err)
	}
	if diff := cmp.Diff(inc.PreIsolation, ref.PreIsolation); diff != "" {
		t.Errorf("ref's pre-isolation state differs from the record's (-record +ref):\n%s", diff)
	}
	if len(inc.Executions) != 1 || inc.Executions[0].ExecutionName != "iso-1" || inc.Executions[0].Workflow != "isolation" ||
		inc.Executions[0].ExecutionARN == "" || inc.Executions[0].StartedAt.IsZero() || inc.ReleasedAt != nil {
		t.Errorf("incident = %+v, want open with iso-1's entry", inc)
	}

	// The same state again (Lambda retry, redrive): reads only, same answer.
	srv.ResetCalls()
	again, err := r.Open(ctx, in)
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	if m := mutating(srv); len(m) != 0 {
		t.Errorf("second Open made mutating calls %v", m)
	}
	if diff := cmp.Diff(ref, again); diff != "" {
		t.Errorf("second Open's ref (-first +second):\n%s", diff)
	}

	// Another execution (the tag set again) on the isolated instance joins: the pre-isolation state stays.
	ec2c := ec2.NewFromConfig(srv.AWSConfig("test"))
	if _, err := ec2c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: aws.String("eni-0aaa0000000000001"), Groups: []string{isoA},
	}); err != nil {
		t.Fatal(err)
	}
	isolated := openInput("iso-2")
	isolated.Record.NetworkInterfaces[0].Groups = []string{isoA}
	joined, err := r.Open(ctx, isolated)
	if err != nil {
		t.Fatalf("Open by iso-2: %v", err)
	}
	f2, _ := readRecord(t, srv)
	if joined.Opened || len(f2.Incidents) != 1 || len(f2.Incidents[0].Executions) != 2 {
		t.Errorf("iso-2: opened=%v, %d incidents, want it to join the open one", joined.Opened, len(f2.Incidents))
	}
	if diff := cmp.Diff(inc.PreIsolation, f2.Incidents[0].PreIsolation); diff != "" {
		t.Errorf("a later execution changed the pre-isolation state (-first +now):\n%s", diff)
	}
	if diff := cmp.Diff(inc.PreIsolation, joined.PreIsolation); diff != "" {
		t.Errorf("iso-2's ref is not the incident's pre-isolation state (-want +got):\n%s", diff)
	}
}

func sortRegs(r []workflow.TargetRegistration) []workflow.TargetRegistration {
	for i := range r {
		for j := i + 1; j < len(r); j++ {
			if r[j].TargetGroupARN < r[i].TargetGroupARN || (r[j].TargetGroupARN == r[i].TargetGroupARN && r[j].Port < r[i].Port) {
				r[i], r[j] = r[j], r[i]
			}
		}
	}
	return r
}

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// isolationState is "Record outcome"'s input after an isolation whose steps made these changes.
func isolationState(ref workflow.IncidentRef, execution string, failures ...workflow.Failure) workflow.NotifyInput {
	rec := preRecord()
	in := workflow.NotifyInput{
		Outcome: workflow.OutcomeSucceeded, ExecutionName: execution, Record: &rec, Incident: &ref,
		ExecutionARN: "arn:aws:states:us-east-1:123456789012:execution:isolation:" + execution,
		Apply: &workflow.ApplyGroupsOutput{Changes: []workflow.Change{
			{At: t0.Add(time.Second), Step: "Apply isolation security group", Resource: "eni-0aaa0000000000001", Action: "ModifyNetworkInterfaceAttribute", Detail: "sg-a,sg-b -> " + isoA},
		}},
		Revoke: &workflow.RevokeOutput{Changes: []workflow.Change{
			{At: t0.Add(2 * time.Second), Step: "Revoke credentials", Resource: "web-role", Action: "PutRolePolicy"},
		}},
		Snapshot: &workflow.SnapshotOutput{
			Snapshots: []workflow.Snapshot{{SnapshotID: "snap-00000000000000001", VolumeID: "vol-00000000000000001", State: "pending"}},
			Changes:   []workflow.Change{{At: t0.Add(3 * time.Second), Step: "Snapshot volumes", Resource: "snap-00000000000000001", Action: "CreateSnapshots"}},
		},
	}
	if len(failures) > 0 {
		in.Outcome, in.Failures = workflow.OutcomeFailed, failures
	}
	return in
}

func TestOutcomeAndReleaseAreRecordedOnceEach(t *testing.T) {
	srv := start(t, fleet())
	r := newRecorder(srv)
	ref, err := r.Open(ctx, openInput("iso-1"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}

	// The isolation fails at Revoke credentials, then a redrive succeeds: one entry, every change once.
	failure := workflow.Failure{State: "Revoke credentials", Error: "Throttled", Cause: "IAM throttled"}
	failed := isolationState(ref, "iso-1", failure)
	failed.Revoke = nil
	if _, err := r.Close(ctx, incident.PhaseOutcome, failed); err != nil {
		t.Fatalf("Record outcome (failed): %v", err)
	}
	srv.ResetCalls()
	if _, err := r.Close(ctx, incident.PhaseOutcome, failed); err != nil {
		t.Fatalf("Record outcome again: %v", err)
	}
	if m := mutating(srv); len(m) != 0 {
		t.Errorf("recording the same outcome again made mutating calls %v", m)
	}
	redriven := isolationState(ref, "iso-1")
	redriven.Snapshot.Snapshots[0].State = "completed"
	redriven.RedriveCount = 1
	out, err := r.Close(ctx, incident.PhaseOutcome, redriven)
	if err != nil {
		t.Fatalf("Record outcome (redrive): %v", err)
	}
	f, version := readRecord(t, srv)
	if out.VersionID != version {
		t.Errorf("ref version %s, record at %s", out.VersionID, version)
	}
	inc := f.Incidents[0]
	if len(inc.Executions) != 1 {
		t.Fatalf("executions = %+v, want iso-1 once", inc.Executions)
	}
	e := inc.Executions[0]
	if e.Outcome != workflow.OutcomeSucceeded || e.FinishedAt == nil || !cmp.Equal(e.Failures, []workflow.Failure{failure}) {
		t.Errorf("entry = %+v, want SUCCEEDED, finished, with the first attempt's failure", e)
	}
	wantChanges := append(append(append([]workflow.Change{}, redriven.Apply.Changes...), redriven.Revoke.Changes...), redriven.Snapshot.Changes...)
	if diff := cmp.Diff(wantChanges, inc.Changes); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(redriven.Snapshot.Snapshots, inc.Snapshots); diff != "" {
		t.Errorf("snapshots (-want +got):\n%s", diff)
	}

	// The release: its changes and entry, and the incident closes.
	rel := workflow.NotifyInput{
		Workflow: workflow.WorkflowRelease, Outcome: workflow.OutcomeSucceeded, ExecutionName: "rel-1", InstanceID: instanceID,
		Incident: &workflow.IncidentRef{Bucket: bucket, Key: key},
		RestoreGroups: &workflow.StepChanges{Changes: []workflow.Change{
			{At: t0.Add(time.Hour), Step: "Restore security groups", Resource: "eni-0aaa0000000000001", Action: "ModifyNetworkInterfaceAttribute"},
		}},
		LiftRevocation: &workflow.RevokeOutput{Changes: []workflow.Change{
			{At: t0.Add(time.Hour + time.Second), Step: "Lift credential revocation", Resource: "web-role", Action: "DeleteRolePolicy"},
		}},
	}
	if _, err := r.Close(ctx, incident.PhaseRelease, rel); err != nil {
		t.Fatalf("Record release: %v", err)
	}
	srv.ResetCalls()
	if _, err := r.Close(ctx, incident.PhaseRelease, rel); err != nil {
		t.Fatalf("Record release again: %v", err)
	}
	if m := mutating(srv); len(m) != 0 {
		t.Errorf("recording the same release again made mutating calls %v", m)
	}
	f, _ = readRecord(t, srv)
	inc = f.Incidents[0]
	if inc.ReleasedAt == nil || len(inc.Executions) != 2 || inc.Executions[1].Workflow != "release" ||
		inc.Executions[1].Outcome != workflow.OutcomeSucceeded || !inc.Executions[1].StartedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("after the release: %+v, want it closed with both executions", inc)
	}
	if n := len(inc.Changes); n != 5 {
		t.Errorf("%d changes, want the isolation's 3 and the release's 2", n)
	}
	if diff := cmp.Diff(redriven.Snapshot.Snapshots, inc.Snapshots); diff != "" {
		t.Errorf("snapshots after the release (-want +got):\n%s", diff)
	}
	// Every write kept the earlier versions: open, failed outcome, redrive, release.
	if n := versions(t, srv); n != 4 {
		t.Errorf("%d versions of the record, want 4", n)
	}

	// Isolated again: a new incident, with a new pre-isolation state.
	again, err := r.Open(ctx, openInput("iso-3"))
	if err != nil || !again.Opened {
		t.Fatalf("Open after release = %+v, %v; want a new incident", again, err)
	}
	if f, _ := readRecord(t, srv); len(f.Incidents) != 2 || f.Incidents[1].ReleasedAt != nil {
		t.Errorf("after re-isolation: %d incidents, want 2, the last open", len(f.Incidents))
	}
}

func TestFailedReleaseLeavesTheIncidentOpen(t *testing.T) {
	srv := start(t, fleet())
	r := newRecorder(srv)
	ref, err := r.Open(ctx, openInput("iso-1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Close(ctx, incident.PhaseOutcome, isolationState(ref, "iso-1")); err != nil {
		t.Fatal(err)
	}
	_, err = r.Close(ctx, incident.PhaseRelease, workflow.NotifyInput{
		Workflow: workflow.WorkflowRelease, Outcome: workflow.OutcomeFailed, ExecutionName: "rel-1",
		Incident: &workflow.IncidentRef{Bucket: bucket, Key: key},
		Failures: []workflow.Failure{{State: "Restore security groups", Error: "AWSError"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	f, _ := readRecord(t, srv)
	if inc := f.Incidents[0]; inc.ReleasedAt != nil || len(inc.Executions) != 2 || inc.Executions[1].Outcome != workflow.OutcomeFailed {
		t.Errorf("incident = %+v, want open with the failed release on record", inc)
	}
	// A later release can still find it.
	if _, err := newReader(srv).Handle(ctx, workflow.ValidateInput{Event: releaseEvent(instanceID), ExecutionName: "rel-2"}); err != nil {
		t.Errorf("Read incident record after the failed release: %v", err)
	}
}

// "Record pre-isolation state" did not write (its branch failed): "Record outcome" records the state then.
func TestOutcomeWithoutAnOpenIncidentOpensIt(t *testing.T) {
	srv := start(t, fleet())
	in := isolationState(workflow.IncidentRef{}, "iso-1", workflow.Failure{State: "Record pre-isolation state", Error: "Transient"})
	in.Incident = nil
	ref, err := newRecorder(srv).Close(ctx, incident.PhaseOutcome, in)
	if err != nil {
		t.Fatalf("Close: %v", err)
	}
	f, _ := readRecord(t, srv)
	if len(f.Incidents) != 1 || f.Incidents[0].PreIsolation.AutoScaling == nil || len(f.Incidents[0].PreIsolation.TargetGroups) != 3 ||
		!ref.Opened || f.Incidents[0].Executions[0].Outcome != workflow.OutcomeFailed {
		t.Errorf("record = %+v, ref %+v; want an incident opened with the full pre-isolation state and the failed entry", f, ref)
	}
}

// Executions of the same instance writing at once: every one is on record (conditional writes, retried).
func TestConcurrentWritersLoseNothing(t *testing.T) {
	srv := start(t, fleet())
	const n = 5
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { _, errs[i] = newRecorder(srv).Open(ctx, openInput(fmt.Sprintf("iso-%d", i))) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("iso-%d: %v", i, err)
		}
	}
	f, _ := readRecord(t, srv)
	if len(f.Incidents) != 1 || len(f.Incidents[0].Executions) != n {
		t.Errorf("%d incidents, %d executions in the first; want 1 with %d", len(f.Incidents), len(f.Incidents[0].Executions), n)
	}
}

// racingS3 is the real S3 client, with another writer that gets in just before this one's first write.
type racingS3 struct {
	*s3.Client
	before func()
	once   sync.Once
}

func (r *racingS3) PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	r.once.Do(r.before)
	return r.Client.PutObject(ctx, in, opts...)
}

// A write that lost the race (412) starts again from a fresh read: neither execution is lost, and the first
// incident's pre-isolation state is the one kept.
func TestLostRaceReadsAgain(t *testing.T) {
	for _, existing := range []bool{false, true} {
		t.Run(fmt.Sprintf("record existed=%v", existing), func(t *testing.T) {
			srv := start(t, fleet())
			if existing {
				if _, err := newRecorder(srv).Open(ctx, openInput("iso-0")); err != nil {
					t.Fatal(err)
				}
			}
			racer := &racingS3{Client: s3Client(srv, "record-incident"), before: func() {
				if _, err := newRecorder(srv).Open(ctx, openInput("iso-other")); err != nil {
					t.Errorf("the other writer: %v", err)
				}
			}}
			cfg := srv.AWSConfig("record-incident")
			r := incident.NewRecorder(racer, autoscaling.NewFromConfig(cfg), elbv2.NewFromConfig(cfg), bucket, quiet)
			ref, err := r.Open(ctx, openInput("iso-1"))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			f, version := readRecord(t, srv)
			var names []string
			for _, e := range f.Incidents[0].Executions {
				names = append(names, e.ExecutionName)
			}
			want := []string{"iso-other", "iso-1"}
			if existing {
				want = []string{"iso-0", "iso-other", "iso-1"}
			}
			if len(f.Incidents) != 1 || !cmp.Equal(want, names) || ref.VersionID != version || ref.Opened {
				t.Errorf("executions %v (%d incidents), ref %s opened=%v; want %v in one incident, ref at %s, joined", names, len(f.Incidents), ref.VersionID, ref.Opened, want, version)
			}
			refused := 0
			for _, c := range srv.Calls() {
				if c.Action == "PutObject" && c.ErrorCode == "PreconditionFailed" {
					refused++
				}
			}
			if refused != 1 {
				t.Errorf("%d writes refused with PreconditionFailed, want 1 (the race this test sets up)", refused)
			}
		})
	}
}

// An instance found already isolated with no open incident: the incident opens (the isolation goes on), and a
// release of it is refused.
func TestAlreadyIsolatedWithoutIncident(t *testing.T) {
	sc := fleet()
	sc.Instances[0].NetworkInterfaces[0].Groups = []string{isoA}
	srv := start(t, sc)
	in := openInput("iso-1")
	in.Record.NetworkInterfaces[0].Groups = []string{isoA}
	ref, err := newRecorder(srv).Open(ctx, in)
	if err != nil || !ref.Opened {
		t.Fatalf("Open = %+v, %v; want an incident opened", ref, err)
	}
	if ref.PreIsolation.Missing == "" {
		t.Errorf("the incident does not say its pre-isolation state is missing: %+v", ref.PreIsolation)
	}
	out := isolationState(ref, "iso-1")
	out.Record = &in.Record
	if _, err := newRecorder(srv).Close(ctx, incident.PhaseOutcome, out); err != nil {
		t.Fatal(err)
	}
	_, err = newReader(srv).Handle(ctx, workflow.ValidateInput{Event: releaseEvent(instanceID), ExecutionName: "rel-1"})
	var missing *steperr.RecordMissing
	if !errors.As(err, &missing) {
		t.Errorf("release: err = %v, want RecordMissing", err)
	}
}

func TestRefusesBadInputWithoutACall(t *testing.T) {
	tests := []struct {
		name string
		json string
	}{
		{"no phase", `{"record":{}}`},
		{"unknown phase", `{"phase":"close"}`},
		{"open without a record", `{"phase":"open","executionName":"x"}`},
		{"open without an execution", `{"phase":"open","record":{"instanceId":"i-0123456789abcdef0","instanceArn":"a","account":"123456789012","region":"us-east-1"}}`},
		{"release with the isolation's workflow", `{"phase":"release","workflow":"isolation","executionName":"x","outcome":"SUCCEEDED"}`},
		{"unknown outcome", `{"phase":"outcome","executionName":"x","outcome":"MAYBE"}`},
		{"another bucket", `{"phase":"outcome","executionName":"x","outcome":"SUCCEEDED","incident":{"bucket":"other","key":"k"}}`},
		{"not an object", `[1]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := start(t, fleet())
			var in incident.Input
			err := json.Unmarshal([]byte(tt.json), &in)
			if err == nil {
				_, err = newRecorder(srv).Handle(ctx, in)
			}
			var ii *steperr.InvalidInput
			if !errors.As(err, &ii) {
				t.Errorf("err = %v (%T), want InvalidInput", err, err)
			}
			if n := len(srv.Calls()); n != 0 {
				t.Errorf("%d calls before refusing", n)
			}
		})
	}
}

// The phase travels beside the phase's own fields (the ASL's Parameters), both ways.
func TestInputJSON(t *testing.T) {
	for _, in := range []incident.Input{
		{Phase: incident.PhaseOpen, Open: openInput("iso-1")},
		{Phase: incident.PhaseRelease, State: workflow.NotifyInput{Workflow: "release", Outcome: "SUCCEEDED", ExecutionName: "rel-1"}},
	} {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		var back incident.Input
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if diff := cmp.Diff(in, back); diff != "" {
			t.Errorf("round trip of %s (-want +got):\n%s", b, diff)
		}
	}
}

// Nothing names the instance's record (validation failed): nothing to record, no call.
func TestOutcomeBeforeAnyRecord(t *testing.T) {
	srv := start(t, fleet())
	ref, err := newRecorder(srv).Close(ctx, incident.PhaseOutcome, workflow.NotifyInput{
		Outcome: workflow.OutcomeFailed, ExecutionName: "iso-1", Failures: []workflow.Failure{{State: "Validate and record", Error: "InvalidEvent"}},
	})
	if err != nil || !cmp.Equal(ref, workflow.IncidentRef{}) {
		t.Errorf("Close = %+v, %v; want nothing recorded", ref, err)
	}
	if n := len(srv.Calls()); n != 0 {
		t.Errorf("%d calls", n)
	}
}

// Through aws-lambda-go's decoding, as in Lambda: a bad input is reported as InvalidInput (the errorType the
// state machine sees), and a good one reaches its phase.
func TestLambdaDecoding(t *testing.T) {
	srv := start(t, fleet())
	h := lambda.NewHandler(newRecorder(srv).Handle)
	_, err := h.Invoke(ctx, []byte(`{"phase":"open","record":"not an object"}`))
	var ii *steperr.InvalidInput
	if !errors.As(err, &ii) || fmt.Sprintf("%T", err) != "*steperr.InvalidInput" {
		t.Errorf("err = %v (%T), want *steperr.InvalidInput", err, err)
	}
	if n := len(srv.Calls()); n != 0 {
		t.Errorf("%d calls before refusing", n)
	}
	in, _ := json.Marshal(incident.Input{Phase: incident.PhaseOpen, Open: openInput("iso-1")})
	out, err := h.Invoke(ctx, in)
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	var ref workflow.IncidentRef
	if err := json.Unmarshal(out, &ref); err != nil || !ref.Opened || ref.Key != key {
		t.Errorf("output %s (%v), want the opened incident's ref", out, err)
	}
}

// "Record outcome" naming a record (by its incident ref) that holds no open incident, without Validate's record
// to open one: a named error, no write.
func TestOutcomeWithoutIncidentOrRecord(t *testing.T) {
	srv := start(t, fleet())
	f := isolatedFile(preRecord())
	at := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	f.Incidents[0].ReleasedAt = &at
	putFile(t, srv, f)
	srv.ResetCalls()
	_, err := newRecorder(srv).Close(ctx, incident.PhaseOutcome, workflow.NotifyInput{
		Outcome: workflow.OutcomeSucceeded, ExecutionName: "iso-9", Incident: &workflow.IncidentRef{Bucket: bucket, Key: key},
	})
	var missing *steperr.RecordMissing
	if !errors.As(err, &missing) {
		t.Errorf("err = %v (%T), want RecordMissing", err, err)
	}
	if m := mutating(srv); len(m) != 0 {
		t.Errorf("mutating calls %v", m)
	}
}

// TestOpenKeepsValidatesDescription (issue 16): the incident record keeps the description Validate read before any
// change, not one read beside network containment (which may already have swapped the groups), and makes no
// DescribeInstances call of its own: one read fewer per isolation in the unfiltered bucket a storm's Validate needs.
func TestOpenKeepsValidatesDescription(t *testing.T) {
	srv := start(t, fleet())
	ec2c := ec2.NewFromConfig(srv.AWSConfig("test"))
	rec := described(t, srv)
	// Network containment ran first: the ENI is on the isolation group when the record is written.
	if _, err := ec2c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: aws.String("eni-0aaa0000000000001"), Groups: []string{isoA}}); err != nil {
		t.Fatalf("modify: %v", err)
	}
	srv.ResetCalls()
	in := openInput("iso-1")
	in.Record = rec
	if _, err := newRecorder(srv).Open(ctx, in); err != nil {
		t.Fatalf("Open: %v", err)
	}
	for _, c := range srv.Calls() {
		if c.Action == "DescribeInstances" {
			t.Errorf("Open described the instance again (%s)", c.Caller)
		}
	}
	f, _ := readRecord(t, srv)
	if len(f.Incidents) != 1 {
		t.Fatalf("%d incidents, want 1", len(f.Incidents))
	}
	pre := f.Incidents[0].PreIsolation
	var desc struct {
		NetworkInterfaces []struct {
			NetworkInterfaceId string
			Groups             []struct{ GroupId string }
		}
	}
	if err := json.Unmarshal(pre.Instance, &desc); err != nil {
		t.Fatalf("description: %v", err)
	}
	for _, ni := range desc.NetworkInterfaces {
		if ni.NetworkInterfaceId == "eni-0aaa0000000000001" && (len(ni.Groups) != 2 || ni.Groups[0].GroupId == isoA) {
			t.Errorf("recorded description shows %s on %+v, want its pre-isolation groups a and b", ni.NetworkInterfaceId, ni.Groups)
		}
	}
	if len(pre.Record.Description) != 0 {
		t.Errorf("the description is kept twice (record and instance)")
	}
}
