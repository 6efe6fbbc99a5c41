package evidence_test

import (
	"slices"
	"strings"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/ec2-isolation/ec2-isolation/internal/evidence"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/simtest"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// branchInput is the input of "Preserve evidence" in its own branch (issue 12 case 5): Validate's record, no
// pre-isolation state (the incident record is written beside it).
func branchInput(rec workflow.Record) workflow.EvidenceInput {
	return workflow.EvidenceInput{InstanceID: instanceID, ExecutionName: "exec-1", Record: &rec}
}

func fleetRecord() workflow.Record {
	rec := record()
	rec.VpcIDs = []string{vpcA}
	return rec
}

// Issue 12 case 5: given only Validate's record, Preserve finds the registrations itself, takes the instance
// out of its Auto Scaling group and of every target group, and reports what it saw before changing it.
func TestPreserveInItsOwnBranchFindsAndReportsWhatItChanges(t *testing.T) {
	srv := simtest.Start(t, fleetScenario(true))
	h := preserve(srv, evidence.AllParts)
	res, err := h.Handle(ctx, branchInput(fleetRecord()))
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	want := fleet{Desired: map[string]int32{asgName: 2, otherASG: 0}, Registered: []workflow.TargetRegistration{}, Others: others}
	if diff := gocmp.Diff(want, readFleet(t, newClients(srv, "test"))); diff != "" {
		t.Errorf("membership and registrations (-want +got):\n%s", diff)
	}
	a := readAttrs(t, newClients(srv, "test").ec2)
	if !a.TerminationProtection || a.ShutdownBehavior != "stop" || a.DeleteOnTermination[volRoot] || a.DeleteOnTermination[volData] {
		t.Errorf("instance settings %+v, want protected, stop, volumes kept", a)
	}
	if res.Observed == nil {
		t.Fatal("no observation reported")
	}
	if diff := gocmp.Diff(&workflow.AutoScalingMembership{GroupName: asgName, LifecycleState: "InService"}, res.Observed.AutoScaling); diff != "" {
		t.Errorf("observed Auto Scaling membership (-want +got):\n%s", diff)
	}
	// The group deregisters the instance from its own target group (web) as it detaches it, which may come
	// first: web:80 may be missing from what the step saw, and the group registers it again on the release.
	got := slices.DeleteFunc(slices.Clone(res.Observed.TargetGroups), func(r workflow.TargetRegistration) bool {
		return r.TargetGroupARN == tgWebARN && r.Port == 80
	})
	wantRegs := []workflow.TargetRegistration{{TargetGroupARN: tgAPIARN, Port: 8080}, {TargetGroupARN: tgAPIARN, Port: 8081}}
	if diff := gocmp.Diff(wantRegs, got); diff != "" {
		t.Errorf("observed registrations (-want +got):\n%s", diff)
	}

	// Twice = once. A second run is a retry or a redrive: it reads again (the record predates the first run).
	srv.ResetCalls()
	rerun := branchInput(fleetRecord())
	rerun.RedriveCount = 1
	again, err := h.Handle(ctx, rerun)
	if err != nil || len(again.Changes) != 0 {
		t.Errorf("second run = %+v, %v; want no change", again, err)
	}
	if m := mutating(srv); len(m) > 0 {
		t.Errorf("second run made mutating calls: %v", m)
	}
}

// spotScenario: the instance of instanceScenario as a Spot Instance.
func spotScenario() sim.Scenario {
	sc := instanceScenario()
	sc.Instances[0].InstanceLifecycle = "spot"
	return sc
}

// Issue 12 case 6: EC2 refuses termination protection for a Spot Instance; Preserve skips it, says why, and does
// every other part: the step does not fail. Whether the record says the instance is Spot or not (an older input:
// EC2's refusal says so).
func TestPreserveSpotInstanceSkipsTerminationProtection(t *testing.T) {
	spotRec := record()
	spotRec.InstanceLifecycle = "spot"
	for name, in := range map[string]workflow.EvidenceInput{
		"record says spot":  branchInput(spotRec),
		"record says none":  branchInput(record()),
		"older input (pre)": evidenceInput(workflow.PreIsolationState{Record: record()}),
	} {
		t.Run(name, func(t *testing.T) {
			srv := simtest.Start(t, spotScenario())
			res, err := preserve(srv, instanceOnly).Handle(ctx, in)
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			a := readAttrs(t, newClients(srv, "test").ec2)
			want := attrs{ShutdownBehavior: "stop", DeleteOnTermination: map[string]bool{volRoot: false, volData: false, volScratch: false}}
			if diff := gocmp.Diff(want, a); diff != "" {
				t.Errorf("instance settings (-want +got):\n%s", diff)
			}
			if !slices.ContainsFunc(res.Skipped, func(s string) bool { return strings.Contains(s, "Spot Instance") }) {
				t.Errorf("skipped = %q, want termination protection skipped for a Spot Instance", res.Skipped)
			}
			if slices.ContainsFunc(res.Changes, func(c workflow.Change) bool { return strings.Contains(c.Detail, "termination protection") }) {
				t.Errorf("changes %+v claim termination protection", res.Changes)
			}
			// Known to be Spot: never asked; not known: asked once, and EC2 refused.
			var refused []string
			for _, c := range srv.Calls() {
				if c.Action == modify && c.Params.Get("DisableApiTermination.Value") != "" {
					refused = append(refused, c.ErrorCode)
				}
			}
			wantRefused := []string{"UnsupportedOperation"}
			if in.Record != nil && in.Record.InstanceLifecycle == "spot" {
				wantRefused = nil
			}
			if diff := gocmp.Diff(wantRefused, refused); diff != "" {
				t.Errorf("DisableApiTermination calls (-want +got):\n%s", diff)
			}
		})
	}
}

// The release never tries a Spot Instance's termination protection.
func TestRestoreSpotInstanceNeverTriesTerminationProtection(t *testing.T) {
	srv := simtest.Start(t, spotScenario())
	rec := record()
	rec.InstanceLifecycle = "spot"
	if _, err := preserve(srv, instanceOnly).Handle(ctx, branchInput(rec)); err != nil {
		t.Fatalf("preserve: %v", err)
	}
	srv.ResetCalls()
	res, err := restorer(srv).Handle(ctx, releaseInput(workflow.PreIsolationState{Record: rec}))
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if diff := gocmp.Diff(recordedAttrs(rec), readAttrs(t, newClients(srv, "test").ec2)); diff != "" {
		t.Errorf("instance settings after the release (-want +got):\n%s", diff)
	}
	for _, c := range srv.Calls() {
		if c.Action == modify && c.Params.Get("DisableApiTermination.Value") != "" {
			t.Errorf("ModifyInstanceAttribute DisableApiTermination on a Spot Instance")
		}
	}
	if !slices.ContainsFunc(res.Skipped, func(s string) bool { return strings.Contains(s, "Spot Instance") }) {
		t.Errorf("skipped = %q", res.Skipped)
	}
}
