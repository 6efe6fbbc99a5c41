package secgroup_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// The record path: Ensure and Apply get Validate's record, as the definition passes it.

func ensureWithRecord(rec workflow.Record) workflow.EnsureGroupsInput {
	return workflow.EnsureGroupsInput{InstanceID: rec.InstanceID, ExecutionName: "exec-1", VpcIDs: rec.VpcIDs, Record: &rec}
}

func TestEnsureWithRecordCreatesOnlyWhatValidateDidNotFind(t *testing.T) {
	sc := scenario()
	sc.SecurityGroups = append(sc.SecurityGroups, sim.SecurityGroup{ID: "sg-0e1", VpcID: vpcA, Name: groupName, Description: "q",
		Egress: []sim.Rule{}, Tags: map[string]string{secgroup.TagManaged: "true"}})
	srv := start(t, sc)
	rec := validated(t, srv, twoVPCs, secgroup.ModeDirect)
	if rec.GroupsReady || len(rec.IsolationGroups) != 1 {
		t.Fatalf("record: groups %+v ready %v, want vpcA's only", rec.IsolationGroups, rec.GroupsReady)
	}

	srv.ResetCalls()
	out, err := newEnsure(t, srv, "ensure", secgroup.ModeDirect).Handle(context.Background(), ensureWithRecord(rec))
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	checkIsolationGroups(t, srv, []string{vpcA, vpcB}, out)
	if out.Groups[0].IsolationGroupID != "sg-0e1" || out.Groups[0].Created || !out.Groups[1].Created {
		t.Errorf("groups %+v: want vpcA's existing sg-0e1 and a new group in vpcB", out.Groups)
	}
	// No lookup (Validate did it), one create, its default egress revoked by id: 0.0.0.0/0, and ::/0 which vpcB
	// (no IPv6 CIDR) never had (InvalidPermission.NotFound: already as wanted).
	var got []string
	for _, c := range srv.Calls() {
		if c.Caller == "ensure" {
			got = append(got, c.Action+" "+c.ErrorCode)
		}
	}
	want := []string{"CreateSecurityGroup ", "RevokeSecurityGroupEgress ", "RevokeSecurityGroupEgress InvalidPermission.NotFound"}
	if diff := cmp.Diff(want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	newID := out.Groups[1].IsolationGroupID
	wantChanges := []change{
		{newID, "CreateSecurityGroup", "created the isolation group " + groupName + " in " + vpcB},
		{newID, "RevokeSecurityGroupEgress", "revoked all traffic to 0.0.0.0/0"},
	}
	if diff := cmp.Diff(wantChanges, changesOf(out.Changes)); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}

	// Everything known: no call at all.
	srv.ResetCalls()
	rec = validated(t, srv, twoVPCs, secgroup.ModeDirect)
	if !rec.GroupsReady {
		t.Fatalf("second record: groups not ready: %+v", rec.IsolationGroups)
	}
	srv.ResetCalls()
	again, err := newEnsure(t, srv, "ensure", secgroup.ModeDirect).Handle(context.Background(), ensureWithRecord(rec))
	if err != nil {
		t.Fatalf("second Handle: %v", err)
	}
	if n := len(srv.Calls()); n != 0 {
		t.Errorf("%d calls with every group known, want none", n)
	}
	for i := range out.Groups {
		out.Groups[i].Created = false
	}
	if diff := cmp.Diff(out.Groups, again.Groups); diff != "" {
		t.Errorf("second run groups (-want +got):\n%s", diff)
	}
}

// Issue 12 case 3 on the record path, in two VPCs: a foreign group with the isolation group's name in vpcA does
// not stop containment, neither in vpcB (whose group is valid) nor in vpcA (a group of ours under the derived
// name); the foreign group is untouched and named; a later Validate finds the derived group (the warm path).
func TestForeignGroupInOneVPCDoesNotStopContainment(t *testing.T) {
	for _, mode := range []secgroup.Mode{secgroup.ModeDirect, secgroup.ModeUntrackFirst} {
		t.Run(string(mode), func(t *testing.T) {
			sc := scenario()
			sc.SecurityGroups = append(sc.SecurityGroups, sim.SecurityGroup{
				ID: "sg-0a8", VpcID: vpcA, Name: groupName, Description: "a team's own group that happens to share the name",
				Egress: []sim.Rule{{Protocol: "tcp", FromPort: 443, ToPort: 443, CIDR: "0.0.0.0/0"}},
			})
			srv := start(t, sc)
			rec, ens, out := contained(t, srv, twoVPCs, mode)
			if rec.GroupsReady || ens == nil {
				t.Fatalf("the record's groups %+v ready: want Ensure to run", rec.IsolationGroups)
			}
			if ens.Groups[0].ForeignGroupID != "sg-0a8" || ens.Groups[1].ForeignGroupID != "" {
				t.Errorf("groups %+v: want vpcA's to name sg-0a8, vpcB's none", ens.Groups)
			}
			iso := map[string]string{}
			for _, g := range ens.Groups {
				iso[g.VpcID] = g.IsolationGroupID
			}
			want := map[string][]string{"eni-02a": {iso[vpcA]}, "eni-02b": {iso[vpcB]}}
			if diff := cmp.Diff(want, newReader(t, srv).eniGroups(twoVPCs)); diff != "" {
				t.Errorf("ENI groups (-want +got):\n%s", diff)
			}
			if iso[vpcA] == "sg-0a8" || len(out.NetworkInterfaces) != 2 {
				t.Errorf("vpcA's group %s, apply output %+v", iso[vpcA], out.NetworkInterfaces)
			}
			g := newReader(t, srv).groupsNamed(groupName)[vpcA]
			if len(g) != 1 || len(g[0].IpPermissionsEgress) != 1 || len(g[0].IpPermissions) != 0 {
				t.Errorf("the team's group was changed: %+v", g)
			}
			// For the foreign group's sake the only calls naming it are reads.
			for _, c := range srv.Calls() {
				if c.Mutating && c.Params.Get("GroupId") == "sg-0a8" {
					t.Errorf("%s on sg-0a8", c.Action)
				}
			}

			rec = validated(t, srv, twoVPCs, mode)
			if !rec.GroupsReady || rec.IsolationGroups[0].IsolationGroupID != iso[vpcA] || rec.IsolationGroups[0].ForeignGroupID != "sg-0a8" {
				t.Errorf("second record: ready %v groups %+v, want the derived group of vpcA and sg-0a8 named", rec.GroupsReady, rec.IsolationGroups)
			}
		})
	}
}

// Concurrent executions converge on one derived group per VPC.
func TestConcurrentExecutionsShareTheDerivedGroup(t *testing.T) {
	sc := scenario()
	sc.SecurityGroups = append(sc.SecurityGroups, sim.SecurityGroup{ID: "sg-0a8", VpcID: vpcA, Name: groupName, Description: "theirs"})
	srv := start(t, sc)
	rec := validated(t, srv, oneENI, secgroup.ModeDirect)
	const n = 4
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			out, err := newEnsure(t, srv, fmt.Sprintf("ensure-%d", i), secgroup.ModeDirect).Handle(context.Background(), ensureWithRecord(rec))
			errs[i] = err
			if err == nil {
				ids[i] = out.Groups[0].IsolationGroupID
			}
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Errorf("execution %d: group %s, error %v; want %s", i, ids[i], errs[i], ids[0])
		}
	}
	if got := newReader(t, srv).groupsNamed(secgroup.DerivedName(groupName))[vpcA]; len(got) != 1 {
		t.Errorf("%d derived groups in %s, want 1", len(got), vpcA)
	}
}

func TestEnsureWithRecordEmptiesOurGroupThatHasRules(t *testing.T) {
	sc := scenario()
	sc.SecurityGroups = append(sc.SecurityGroups, sim.SecurityGroup{ID: "sg-0a9", VpcID: vpcA, Name: groupName, Description: "isolation",
		Tags:    map[string]string{secgroup.TagManaged: "true"},
		Ingress: []sim.Rule{{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: "198.51.100.0/24"}}})
	srv := start(t, sc)
	rec := validated(t, srv, oneENI, secgroup.ModeDirect)
	if len(rec.IsolationGroups) != 0 {
		t.Fatalf("Validate found a group with rules usable: %+v", rec.IsolationGroups)
	}
	out, err := newEnsure(t, srv, "ensure", secgroup.ModeDirect).Handle(context.Background(), ensureWithRecord(rec))
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	checkIsolationGroups(t, srv, []string{vpcA}, out)
	if g := out.Groups[0]; g.IsolationGroupID != "sg-0a9" || g.Created {
		t.Errorf("group %+v, want the existing sg-0a9", g)
	}
}

func TestEnsureWithRecordWaitsForTheNewGroupToBecomeVisible(t *testing.T) {
	for _, mode := range []secgroup.Mode{secgroup.ModeDirect, secgroup.ModeUntrackFirst} {
		t.Run(string(mode), func(t *testing.T) {
			sc := scenario()
			sc.Behaviour.GroupVisibilityDelay = 100 * time.Millisecond
			srv := start(t, sc)
			rec := validated(t, srv, twoVPCs, mode)
			out, err := newEnsure(t, srv, "ensure", mode).Handle(context.Background(), ensureWithRecord(rec))
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			time.Sleep(sc.Behaviour.GroupVisibilityDelay) // for the reader
			checkIsolationGroups(t, srv, vpcsOf[twoVPCs], out)
			notFound := 0
			for _, c := range srv.Calls() {
				if c.ErrorCode == "InvalidGroup.NotFound" {
					notFound++
				}
			}
			if notFound == 0 {
				t.Errorf("the new groups were never invisible: the wait was not exercised")
			}
			if mode == secgroup.ModeUntrackFirst {
				checkAllowAll(t, srv, vpcsOf[twoVPCs], out)
			}
		})
	}
}

func TestEnsureWithRecordReportsGroupNotVisible(t *testing.T) {
	sc := scenario()
	sc.Behaviour.GroupVisibilityDelay = time.Hour
	srv := start(t, sc)
	rec := validated(t, srv, oneENI, secgroup.ModeDirect)
	h := newEnsure(t, srv, "ensure", secgroup.ModeDirect)
	h.Wait = secgroup.Wait{Attempts: 2, Base: time.Millisecond, Max: time.Millisecond}
	_, err := h.Handle(context.Background(), ensureWithRecord(rec))
	var nv *steperr.GroupNotVisible
	if !errors.As(err, &nv) || nv.VpcID != vpcA {
		t.Fatalf("error = %v, want GroupNotVisible for %s", err, vpcA)
	}
}

func TestEnsureWithRecordRefusesBadRecord(t *testing.T) {
	tests := map[string]func(*workflow.Record){
		"record of another instance": func(r *workflow.Record) { r.InstanceID = oneENI },
		"malformed group id": func(r *workflow.Record) {
			r.IsolationGroups = []workflow.VpcGroups{{VpcID: vpcA, IsolationGroupID: "quarantine"}}
		},
	}
	for name, edit := range tests {
		t.Run(name, func(t *testing.T) {
			srv := start(t, scenario())
			rec := validated(t, srv, twoVPCs, secgroup.ModeDirect)
			edit(&rec)
			srv.ResetCalls()
			in := ensureWithRecord(rec)
			in.InstanceID = twoVPCs
			_, err := newEnsure(t, srv, "ensure", secgroup.ModeDirect).Handle(context.Background(), in)
			var ii *steperr.InvalidInput
			if !errors.As(err, &ii) {
				t.Fatalf("error = %v, want InvalidInput", err)
			}
			if n := len(srv.Calls()); n != 0 {
				t.Errorf("%d calls before refusing", n)
			}
		})
	}
}

// checkAllowAll asserts that each VPC's allow-all group allows all traffic in and out.
func checkAllowAll(t *testing.T, srv *sim.Server, vpcs []string, out workflow.EnsureGroupsOutput) {
	t.Helper()
	untrack := newReader(t, srv).groupsNamed(groupName + secgroup.UntrackSuffix)
	allowAll := []rule{{"-1", "0.0.0.0/0"}, {"-1", "::/0"}}
	for i, vpc := range vpcs {
		gs := untrack[vpc]
		if len(gs) != 1 || out.Groups[i].UntrackGroupID != *gs[0].GroupId {
			t.Errorf("%s: untrack groups %d, output %q", vpc, len(gs), out.Groups[i].UntrackGroupID)
			continue
		}
		if diff := cmp.Diff(allowAll, rules(gs[0].IpPermissions)); diff != "" {
			t.Errorf("%s: untrack ingress (-want +got):\n%s", vpc, diff)
		}
		if diff := cmp.Diff(allowAll, rules(gs[0].IpPermissionsEgress)); diff != "" {
			t.Errorf("%s: untrack egress (-want +got):\n%s", vpc, diff)
		}
		if got := tagValue(gs[0].Tags, secgroup.TagRole); got != "untrack" {
			t.Errorf("%s: role tag %q", vpc, got)
		}
	}
}

// moveENI detaches eni from its instance and attaches it to instance at index, as someone could between
// "Validate and record" and "Apply isolation security group".
func moveENI(t *testing.T, srv *sim.Server, eni, instance string, index int32) {
	t.Helper()
	srv.Update(func(a *sim.Account) {
		if err := a.DetachNetworkInterface(eni); err != nil {
			t.Errorf("detach: %v", err)
		}
		if err := a.AttachNetworkInterface(eni, instance, index); err != nil {
			t.Errorf("attach: %v", err)
		}
	})
}

func TestApplyIsolatesAnENIAttachedSinceValidate(t *testing.T) {
	for _, mode := range []secgroup.Mode{secgroup.ModeDirect, secgroup.ModeUntrackFirst} {
		t.Run(string(mode), func(t *testing.T) {
			sc := scenario()
			srv := start(t, sc)
			in := ensured(t, srv, twoVPCs, mode)
			moveENI(t, srv, "eni-01a", twoVPCs, 2) // vpcA, on sg-0a1

			srv.ResetCalls()
			out, err := newApply(t, srv, "apply", mode).Handle(context.Background(), in)
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			iso := isolationGroupOf(in)
			want := map[string][]string{"eni-02a": {iso[vpcA]}, "eni-02b": {iso[vpcB]}, "eni-01a": {iso[vpcA]}}
			if diff := cmp.Diff(want, newReader(t, srv).eniGroups(twoVPCs)); diff != "" {
				t.Errorf("ENI groups (-want +got):\n%s", diff)
			}
			wantOut := []workflow.AppliedInterface{
				{ID: "eni-02a", VpcID: vpcA, Before: []string{"sg-0a1"}, After: []string{iso[vpcA]}, Changed: true},
				{ID: "eni-02b", VpcID: vpcB, Before: []string{"sg-0b1"}, After: []string{iso[vpcB]}, Changed: true},
				{ID: "eni-01a", VpcID: vpcA, Before: []string{"sg-0a1"}, After: []string{iso[vpcA]}, Changed: true},
			}
			if diff := cmp.Diff(wantOut, out.NetworkInterfaces); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
			// The late ENI costs one more round, after the Describe that found it.
			modified := map[string]int{}
			for _, c := range srv.Calls() {
				if c.Action == "ModifyNetworkInterfaceAttribute" {
					modified[c.Params.Get("NetworkInterfaceId")]++
				}
			}
			perENI := 1
			if mode == secgroup.ModeUntrackFirst {
				perENI = 2
			}
			if diff := cmp.Diff(map[string]int{"eni-02a": perENI, "eni-02b": perENI, "eni-01a": perENI}, modified); diff != "" {
				t.Errorf("modify calls per ENI (-want +got):\n%s", diff)
			}
		})
	}
}

func TestApplyIsolatesARecordedENIWhoseGroupsChangedSince(t *testing.T) {
	srv := start(t, scenario())
	in := ensured(t, srv, twoVPCs, secgroup.ModeDirect)
	if _, err := newApply(t, srv, "apply", secgroup.ModeDirect).Handle(context.Background(), in); err != nil {
		t.Fatalf("first Handle: %v", err)
	}
	// A new execution records the instance isolated; then someone puts an ENI back on its old group.
	rec := validated(t, srv, twoVPCs, secgroup.ModeDirect)
	if _, err := client(t, srv, "someone").ModifyNetworkInterfaceAttribute(context.Background(), &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: aws.String("eni-02b"), Groups: []string{"sg-0b1"}}); err != nil {
		t.Fatalf("put eni-02b back on sg-0b1: %v", err)
	}
	srv.ResetCalls()
	out, err := newApply(t, srv, "apply", secgroup.ModeDirect).Handle(context.Background(), workflow.ApplyGroupsInput{
		InstanceID: twoVPCs, ExecutionName: "exec-2", Record: &rec})
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	iso := isolationGroupOf(in)
	want := map[string][]string{"eni-02a": {iso[vpcA]}, "eni-02b": {iso[vpcB]}}
	if diff := cmp.Diff(want, newReader(t, srv).eniGroups(twoVPCs)); diff != "" {
		t.Errorf("ENI groups (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"ModifyNetworkInterfaceAttribute"}, mutating(srv)); diff != "" {
		t.Errorf("mutating calls (-want +got):\n%s", diff)
	}
	if got := out.NetworkInterfaces[1]; got.ID != "eni-02b" || !got.Changed || !cmp.Equal(got.Before, []string{"sg-0b1"}) {
		t.Errorf("eni-02b in the output: %+v", got)
	}
}

// An ENI attached since Validate in a VPC that has no group in the input no longer fails the network branch
// (issue 12 case 2(c)/9): every other ENI is contained, that one is reported unchanged (After == Before) for
// "Verify containment" to contain.
func TestApplyContainsTheOthersWhenAnENIAttachedSinceValidateIsInAVPCWithoutGroup(t *testing.T) {
	srv := start(t, scenario())
	in := ensured(t, srv, oneENI, secgroup.ModeDirect) // vpcA only
	moveENI(t, srv, "eni-02b", oneENI, 1)              // vpcB
	out, err := newApply(t, srv, "apply", secgroup.ModeDirect).Handle(context.Background(), in)
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	iso := isolationGroupOf(in)
	want := map[string][]string{"eni-01a": {iso[vpcA]}, "eni-02b": {"sg-0b1"}}
	if diff := cmp.Diff(want, newReader(t, srv).eniGroups(oneENI)); diff != "" {
		t.Errorf("ENI groups (-want +got):\n%s", diff)
	}
	wantOut := []workflow.AppliedInterface{
		{ID: "eni-01a", VpcID: vpcA, Before: []string{"sg-0a1"}, After: []string{iso[vpcA]}, Changed: true},
		{ID: "eni-02b", VpcID: vpcB, Before: []string{"sg-0b1"}, After: []string{"sg-0b1"}},
	}
	if diff := cmp.Diff(wantOut, out.NetworkInterfaces); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	for _, c := range srv.Calls() {
		if c.Mutating && c.Params.Get("NetworkInterfaceId") == "eni-02b" {
			t.Errorf("%s on eni-02b, which has no group to go to", c.Action)
		}
	}
}
