package evidence_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	gocmp "github.com/google/go-cmp/cmp"

	"github.com/ec2-isolation/ec2-isolation/internal/evidence"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/simtest"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// Issue 16: the isolation runs the "fleet" stage (Auto Scaling, target groups: they cannot wait), the evidence
// state machine the "settings" stage (termination protection, shutdown behaviour, delete-on-termination); ""
// (an older execution, a redrive) runs both.
func TestPreserveStages(t *testing.T) {
	untouchedAttrs := recordedAttrs(record())
	preservedAttrs := attrs{TerminationProtection: true, ShutdownBehavior: "stop",
		DeleteOnTermination: map[string]bool{volRoot: false, volData: false, volScratch: false}}
	inFleet := fleet{AutoScaling: &workflow.AutoScalingMembership{GroupName: asgName, LifecycleState: "InService"},
		Desired: map[string]int32{asgName: 2, otherASG: 0}, Others: others,
		Registered: []workflow.TargetRegistration{{TargetGroupARN: tgAPIARN, Port: 8080}, {TargetGroupARN: tgAPIARN, Port: 8081}, {TargetGroupARN: tgWebARN, Port: 80}}}
	outOfFleet := fleet{Desired: map[string]int32{asgName: 2, otherASG: 0}, Registered: []workflow.TargetRegistration{}, Others: others}
	for _, tt := range []struct {
		stage     string
		wantAttrs attrs
		wantFleet fleet
		// wantActions are the mutating actions the stage may make, and must make.
		wantActions []string
	}{
		{workflow.StageAll, preservedAttrs, outOfFleet, []string{"DeregisterTargets", "DetachInstances", modify}},
		{workflow.StageFleet, untouchedAttrs, outOfFleet, []string{"DeregisterTargets", "DetachInstances"}},
		{workflow.StageSettings, preservedAttrs, inFleet, []string{modify}},
	} {
		t.Run("stage="+tt.stage, func(t *testing.T) {
			srv := simtest.Start(t, fleetScenario(true))
			in := branchInput(fleetRecord())
			in.Stage = tt.stage
			if _, err := preserve(srv, evidence.AllParts).Handle(ctx, in); err != nil {
				t.Fatalf("Handle: %v", err)
			}
			c := newClients(srv, "test")
			if diff := gocmp.Diff(tt.wantAttrs, readAttrs(t, c.ec2)); diff != "" {
				t.Errorf("instance settings (-want +got):\n%s", diff)
			}
			if diff := gocmp.Diff(tt.wantFleet, readFleet(t, c)); diff != "" {
				t.Errorf("fleet (-want +got):\n%s", diff)
			}
			got := map[string]bool{}
			for _, call := range srv.Calls() {
				if call.Mutating && call.Caller == "preserve-evidence" {
					got[call.Action] = true
				}
			}
			want := map[string]bool{}
			for _, a := range tt.wantActions {
				want[a] = true
			}
			if diff := gocmp.Diff(want, got); diff != "" {
				t.Errorf("mutating actions of the stage (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPreserveRefusesAnUnknownStage(t *testing.T) {
	srv := simtest.Start(t, fleetScenario(true))
	in := branchInput(fleetRecord())
	in.Stage = "everything"
	_, err := preserve(srv, evidence.AllParts).Handle(ctx, in)
	if !isA[*steperr.InvalidInput](err) || !strings.Contains(err.Error(), `"everything"`) {
		t.Errorf("error = %T %v, want InvalidInput naming the stage", err, err)
	}
	if calls := srv.Calls(); len(calls) > 0 {
		t.Errorf("calls before refusing: %d", len(calls))
	}
}

// A settings job is queued by the isolation and runs later: if the instance was released in between, it changes
// nothing (the release restored the settings the job would set again) and says so. Until then, or when the
// record does not list the isolation yet, it applies them.
func TestSettingsJobOfAReleasedIncidentChangesNothing(t *testing.T) {
	const bucket = "incidents"
	released := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name     string
		incident *workflow.Incident // nil: no record yet
		want     attrs
		skipped  string
	}{
		{name: "released", want: recordedAttrs(record()), skipped: "was released at 2026-12-05T10:00:00Z",
			incident: &workflow.Incident{ReleasedAt: &released, Executions: []workflow.ExecutionEntry{
				{Workflow: workflow.WorkflowIsolation, ExecutionName: "tag-1"}, {Workflow: workflow.WorkflowRelease, ExecutionName: "release-1"}}}},
		{name: "still isolated", want: attrs{TerminationProtection: true, ShutdownBehavior: "stop",
			DeleteOnTermination: map[string]bool{volRoot: false, volData: false, volScratch: false}},
			incident: &workflow.Incident{Executions: []workflow.ExecutionEntry{{Workflow: workflow.WorkflowIsolation, ExecutionName: "tag-1"}}}},
		{name: "no record yet", want: attrs{TerminationProtection: true, ShutdownBehavior: "stop",
			DeleteOnTermination: map[string]bool{volRoot: false, volData: false, volScratch: false}}},
		{name: "an earlier incident released", want: attrs{TerminationProtection: true, ShutdownBehavior: "stop",
			DeleteOnTermination: map[string]bool{volRoot: false, volData: false, volScratch: false}},
			incident: &workflow.Incident{ReleasedAt: &released, Executions: []workflow.ExecutionEntry{{Workflow: workflow.WorkflowIsolation, ExecutionName: "tag-0"}}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sc := instanceScenario()
			sc.Buckets = []sim.S3Bucket{{Name: bucket, Versioning: true}}
			srv := simtest.Start(t, sc)
			rec := record()
			rec.Account, rec.Region = srv.AccountID(), srv.Region()
			if tt.incident != nil {
				body, _ := json.Marshal(workflow.IncidentFile{SchemaVersion: 1, InstanceID: instanceID, Incidents: []workflow.Incident{*tt.incident}})
				if _, err := s3.NewFromConfig(srv.AWSConfig("test"), func(o *s3.Options) { o.UsePathStyle = true }).PutObject(ctx, &s3.PutObjectInput{
					Bucket: aws.String(bucket), Key: aws.String(workflow.IncidentKey(rec.Account, rec.Region, instanceID)), Body: bytes.NewReader(body)}); err != nil {
					t.Fatalf("put the record: %v", err)
				}
			}
			c := newClients(srv, "preserve-evidence")
			h := evidence.NewPreserve(c.ec2, c.asg, c.elb, evidence.AllParts, quiet).
				WithIncidents(s3.NewFromConfig(srv.AWSConfig("preserve-evidence"), func(o *s3.Options) { o.UsePathStyle = true }), bucket)
			in := workflow.EvidenceInput{InstanceID: instanceID, ExecutionName: "tag-1", IsolationExecution: "tag-1",
				Record: &rec, Stage: workflow.StageSettings}
			out, err := h.Handle(ctx, in)
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			if diff := gocmp.Diff(tt.want, readAttrs(t, newClients(srv, "test").ec2)); diff != "" {
				t.Errorf("instance settings (-want +got):\n%s", diff)
			}
			if tt.skipped != "" && !containsAll(out.Skipped, tt.skipped) {
				t.Errorf("skipped = %q, want it to say %q", out.Skipped, tt.skipped)
			}
			if tt.skipped != "" && len(mutating(srv)) > 1 { // the test's own PutObject
				t.Errorf("mutating calls: %v", mutating(srv))
			}
		})
	}
}
