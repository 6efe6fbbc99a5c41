package secgroup_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// contained runs the network branch as the state machine does: Validate, Ensure unless the groups are ready
// (the warm path skips it), Apply.
func contained(t *testing.T, srv *sim.Server, instance string, mode secgroup.Mode) (workflow.Record, *workflow.EnsureGroupsOutput, workflow.ApplyGroupsOutput) {
	t.Helper()
	rec := validated(t, srv, instance, mode)
	in := workflow.ApplyGroupsInput{InstanceID: instance, ExecutionName: "exec-1", Record: &rec}
	var ens *workflow.EnsureGroupsOutput
	if !rec.GroupsReady {
		out, err := newEnsure(t, srv, "ensure", mode).Handle(context.Background(), ensureWithRecord(rec))
		if err != nil {
			t.Fatalf("ensure: %v", err)
		}
		ens, in.Ensured = &out, &out
	}
	out, err := newApply(t, srv, "apply", mode).Handle(context.Background(), in)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return rec, ens, out
}

// Issue 12 case 2(a): an isolation group of ours that has a rule whose peer is a security group or a prefix list
// is not usable: Validate does not call it ready, Ensure empties it, the ENIs end on a group with no rule.
func TestIssue12GroupPeerAndPrefixListRulesAreRevoked(t *testing.T) {
	sc := scenario()
	sc.SecurityGroups = append(sc.SecurityGroups, sim.SecurityGroup{ID: "sg-0a9", VpcID: vpcA, Name: groupName, Description: "isolation",
		Tags: map[string]string{secgroup.TagManaged: "true"},
		Ingress: []sim.Rule{
			{Protocol: "tcp", FromPort: 22, ToPort: 22, GroupID: "sg-0a1"},
			{Protocol: "tcp", FromPort: 443, ToPort: 443, PrefixListID: "pl-0123456789abcdef0", Description: "a prefix list"},
		},
		Egress: []sim.Rule{{Protocol: "-1", GroupID: "sg-0a2"}, {Protocol: "-1", PrefixListID: "pl-0fedcba9876543210"}},
	})
	srv := start(t, sc)
	rec, ens, _ := contained(t, srv, oneENI, secgroup.ModeDirect)
	if rec.GroupsReady {
		t.Errorf("Validate called the group with rules ready")
	}
	if ens == nil {
		t.Fatal("Ensure skipped")
	}
	checkIsolationGroups(t, srv, []string{vpcA}, *ens)
	if diff := cmp.Diff(map[string][]string{"eni-01a": {"sg-0a9"}}, newReader(t, srv).eniGroups(oneENI)); diff != "" {
		t.Errorf("ENI groups (-want +got):\n%s", diff)
	}
}

// readyScenario has our empty isolation group in vpcA already: Validate finds the groups ready (the warm path).
func readyScenario() sim.Scenario {
	sc := scenario()
	sc.SecurityGroups = append(sc.SecurityGroups, sim.SecurityGroup{ID: "sg-00000000000000e01", VpcID: vpcA, Name: groupName, Description: "q",
		Egress: []sim.Rule{}, Tags: map[string]string{secgroup.TagManaged: "true"}})
	return sc
}

// Issue 12 case 4: on the warm path the isolation group is deleted between Validate and Apply. Apply reports
// GroupMissing (not GroupNotVisible, which the state machine retried 8 times and a redrive repeated), changing
// nothing; Ensure, given the GroupMissing, looks the groups up afresh, creates the missing one, and Apply then
// contains the instance.
func TestIssue12GroupDeletedBetweenValidateAndApply(t *testing.T) {
	srv := start(t, readyScenario())
	rec := validated(t, srv, oneENI, secgroup.ModeDirect)
	if !rec.GroupsReady {
		t.Fatalf("record: groups not ready: %+v", rec.IsolationGroups)
	}
	srv.Update(func(a *sim.Account) {
		if err := a.DeleteSecurityGroup("sg-00000000000000e01"); err != nil {
			t.Fatalf("delete sg-00000000000000e01: %v", err)
		}
	})
	apply := workflow.ApplyGroupsInput{InstanceID: oneENI, ExecutionName: "exec-1", Record: &rec}
	_, err := newApply(t, srv, "apply", secgroup.ModeDirect).Handle(context.Background(), apply)
	var gm *steperr.GroupMissing
	if !errors.As(err, &gm) || gm.VpcID != vpcA || gm.GroupID != "sg-00000000000000e01" {
		t.Fatalf("Apply error = %v (%T), want GroupMissing{%s, sg-00000000000000e01}", err, err, vpcA)
	}
	if diff := cmp.Diff(map[string][]string{"eni-01a": {"sg-0a1"}}, newReader(t, srv).eniGroups(oneENI)); diff != "" {
		t.Errorf("ENI groups after the refused Apply (-want +got):\n%s", diff)
	}

	// The state machine's Catch: Ensure with the caught error and no previous Ensure output (warm path).
	in := ensureWithRecord(rec)
	in.GroupMissing = &workflow.CaughtError{Error: "GroupMissing", Cause: err.Error()}
	ens, err := newEnsure(t, srv, "ensure", secgroup.ModeDirect).Handle(context.Background(), in)
	if err != nil {
		t.Fatalf("Ensure after GroupMissing: %v", err)
	}
	if ens.Round != 1 || len(ens.Groups) != 1 || ens.Groups[0].IsolationGroupID == "sg-00000000000000e01" || !ens.Groups[0].Created {
		t.Fatalf("Ensure output %+v: want round 1 and a new group in %s", ens, vpcA)
	}
	checkIsolationGroups(t, srv, []string{vpcA}, ens)
	apply.Ensured = &ens
	if _, err := newApply(t, srv, "apply", secgroup.ModeDirect).Handle(context.Background(), apply); err != nil {
		t.Fatalf("Apply after Ensure: %v", err)
	}
	want := map[string][]string{"eni-01a": {ens.Groups[0].IsolationGroupID}}
	if diff := cmp.Diff(want, newReader(t, srv).eniGroups(oneENI)); diff != "" {
		t.Errorf("ENI groups (-want +got):\n%s", diff)
	}
}

// A group this execution's Ensure just created may not be visible yet: the first attempts say GroupNotVisible
// (retried); later attempts, and a redrive, say GroupMissing.
func TestIssue12CreatedGroupDeletedIsGroupMissingAfterTheFirstAttempts(t *testing.T) {
	srv := start(t, scenario())
	in := ensured(t, srv, oneENI, secgroup.ModeDirect)
	id := in.Ensured.Groups[0].IsolationGroupID
	srv.Update(func(a *sim.Account) {
		if err := a.DeleteSecurityGroup(id); err != nil {
			t.Fatalf("delete %s: %v", id, err)
		}
	})
	for _, c := range []struct {
		rerun workflow.Rerun
		want  string
	}{
		{workflow.Rerun{}, "GroupNotVisible"},
		{workflow.Rerun{Attempt: 4}, "GroupNotVisible"},
		{workflow.Rerun{Attempt: 5}, "GroupMissing"},
		{workflow.Rerun{RedriveCount: 1}, "GroupMissing"},
	} {
		in.Rerun = c.rerun
		_, err := newApply(t, srv, "apply", secgroup.ModeDirect).Handle(context.Background(), in)
		if got := fmt.Sprintf("%T", err); got != "*steperr."+c.want {
			t.Errorf("%+v: error %v (%s), want %s", c.rerun, err, got, c.want)
		}
	}
}

// The Apply -> Ensure loop is bounded: past MaxMissingRounds Ensure fails with an error the state machine does
// not retry, and changes nothing.
func TestIssue12EnsureRoundsAreBounded(t *testing.T) {
	srv := start(t, scenario())
	rec := validated(t, srv, oneENI, secgroup.ModeDirect)
	in := ensureWithRecord(rec)
	in.GroupMissing = &workflow.CaughtError{Error: "GroupMissing", Cause: "isolation group sg-0e9 of vpc-0a1 no longer exists"}
	in.Previous = &workflow.EnsureGroupsOutput{Round: 2, Groups: []workflow.VpcGroups{{VpcID: vpcA, IsolationGroupID: "sg-0e9"}}}
	out, err := newEnsure(t, srv, "ensure", secgroup.ModeDirect).Handle(context.Background(), in)
	if err != nil || out.Round != 3 {
		t.Fatalf("round 3: %+v, %v; want round 3", out, err)
	}
	srv.ResetCalls()
	in.Previous = &out
	_, err = newEnsure(t, srv, "ensure", secgroup.ModeDirect).Handle(context.Background(), in)
	var ae *steperr.AWSError
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "keep disappearing") {
		t.Fatalf("round 4: error %v, want an AWSError saying the groups keep disappearing", err)
	}
	if m := mutating(srv); len(m) != 0 {
		t.Errorf("round 4 made mutating calls %v", m)
	}
}

// Issue 12 case 2(b): an ENI already on [original, isolation] is not isolated: Apply (first run, and a retry
// that describes first) leaves it on the isolation group alone.
func TestIssue12ENIOnOriginalAndIsolationGroupIsNotIsolated(t *testing.T) {
	const iso = "sg-00000000000000e01"
	for _, rerun := range []workflow.Rerun{{}, {Attempt: 1}} {
		t.Run(fmt.Sprintf("attempt%d", rerun.Attempt), func(t *testing.T) {
			srv := start(t, readyScenario())
			if _, err := client(t, srv, "someone").ModifyNetworkInterfaceAttribute(context.Background(), &ec2.ModifyNetworkInterfaceAttributeInput{
				NetworkInterfaceId: aws.String("eni-01a"), Groups: []string{"sg-0a1", iso}}); err != nil {
				t.Fatalf("put eni-01a on both: %v", err)
			}
			rec := validated(t, srv, oneENI, secgroup.ModeDirect)
			if !rec.GroupsReady {
				t.Fatalf("record: groups not ready: %+v", rec.IsolationGroups)
			}
			out, err := newApply(t, srv, "apply", secgroup.ModeDirect).Handle(context.Background(),
				workflow.ApplyGroupsInput{InstanceID: oneENI, ExecutionName: "exec-1", Record: &rec, Rerun: rerun})
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if diff := cmp.Diff(map[string][]string{"eni-01a": {iso}}, newReader(t, srv).eniGroups(oneENI)); diff != "" {
				t.Errorf("ENI groups (-want +got):\n%s", diff)
			}
			want := []workflow.AppliedInterface{{ID: "eni-01a", VpcID: vpcA, Before: []string{"sg-0a1", iso}, After: []string{iso}, Changed: true}}
			if diff := cmp.Diff(want, out.NetworkInterfaces, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
		})
	}
}
