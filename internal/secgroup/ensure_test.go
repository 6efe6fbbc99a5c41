package secgroup_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// checkIsolationGroups asserts that each of vpcs holds exactly one isolation group, the one out names, with no
// rule at all and the managed tag.
func checkIsolationGroups(t *testing.T, srv *sim.Server, vpcs []string, out workflow.EnsureGroupsOutput) {
	t.Helper()
	found := newReader(t, srv).groupsNamed(groupName)
	if len(found) != len(vpcs) {
		t.Errorf("isolation groups in %d VPCs, want %d: %v", len(found), len(vpcs), found)
	}
	for i, vpc := range vpcs {
		gs := found[vpc]
		if len(gs) != 1 {
			t.Errorf("%s: %d groups named %s, want 1", vpc, len(gs), groupName)
			continue
		}
		g := gs[0]
		if i < len(out.Groups) && (out.Groups[i].VpcID != vpc || out.Groups[i].IsolationGroupID != aws.ToString(g.GroupId)) {
			t.Errorf("output group %d = %+v, want %s in %s", i, out.Groups[i], aws.ToString(g.GroupId), vpc)
		}
		if diff := cmp.Diff([]rule{}, rules(g.IpPermissions)); diff != "" {
			t.Errorf("%s: ingress of the isolation group (-want +got):\n%s", vpc, diff)
		}
		if diff := cmp.Diff([]rule{}, rules(g.IpPermissionsEgress)); diff != "" {
			t.Errorf("%s: egress of the isolation group (-want +got):\n%s", vpc, diff)
		}
		if got := tagValue(g.Tags, secgroup.TagManaged); got != "true" {
			t.Errorf("%s: tag %s = %q, want true", vpc, secgroup.TagManaged, got)
		}
	}
}

func TestEnsureCreatesAnEmptyGroupInEveryVPC(t *testing.T) {
	for _, instance := range []string{oneENI, twoVPCs} {
		t.Run(instance, func(t *testing.T) {
			srv := start(t, scenario())
			h := newEnsure(t, srv, "ensure", secgroup.ModeDirect)

			out, err := h.Handle(context.Background(), ensureInput(instance))
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			vpcs := vpcsOf[instance]
			checkIsolationGroups(t, srv, vpcs, out)
			for _, g := range out.Groups {
				if !g.Created || g.UntrackGroupID != "" {
					t.Errorf("%+v: want Created and no untrack group", g)
				}
			}
			if n := calledAction(srv, "CreateSecurityGroup"); n != len(vpcs) {
				t.Errorf("CreateSecurityGroup called %d times, want %d", n, len(vpcs))
			}
			if n := calledAction(srv, "DescribeSecurityGroups"); n < 1 {
				t.Errorf("DescribeSecurityGroups never called")
			}
			var wantChanges []change
			for _, g := range out.Groups {
				wantChanges = append(wantChanges,
					change{g.IsolationGroupID, "CreateSecurityGroup", "created the isolation group " + groupName + " in " + g.VpcID},
					change{g.IsolationGroupID, "RevokeSecurityGroupEgress", "revoked all traffic to 0.0.0.0/0"})
				if g.VpcID == vpcA { // the VPC with an IPv6 CIDR
					wantChanges = append(wantChanges, change{g.IsolationGroupID, "RevokeSecurityGroupEgress", "revoked all traffic to ::/0"})
				}
			}
			if diff := cmp.Diff(sortedChanges(wantChanges), changesOf(out.Changes)); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}

			// A second run finds everything in place and changes nothing.
			srv.ResetCalls()
			again, err := h.Handle(context.Background(), ensureInput(instance))
			if err != nil {
				t.Fatalf("second Handle: %v", err)
			}
			if m := mutating(srv); len(m) != 0 {
				t.Errorf("second run made mutating calls %v", m)
			}
			if n := calledAction(srv, "DescribeSecurityGroups"); n != 1 {
				t.Errorf("second run: %d DescribeSecurityGroups calls, want one for all VPCs", n)
			}
			want := out
			want.Changes = nil
			for i := range want.Groups {
				want.Groups[i].Created = false
			}
			if diff := cmp.Diff(want, again); diff != "" {
				t.Errorf("second run output (-want +got):\n%s", diff)
			}
		})
	}
}

// Issue 12 case 3: a group that is not ours holds the isolation group's name: it is never changed, and the VPC
// gets a group of ours under the derived name; the output names the foreign group.
func TestEnsureUsesADerivedNameBesideAGroupItDidNotCreate(t *testing.T) {
	sc := scenario()
	sc.SecurityGroups = append(sc.SecurityGroups, sim.SecurityGroup{
		ID: "sg-0a8", VpcID: vpcA, Name: groupName, Description: "a team's own group that happens to share the name",
		Egress: []sim.Rule{{Protocol: "tcp", FromPort: 443, ToPort: 443, CIDR: "0.0.0.0/0"}},
	})
	srv := start(t, sc)
	h := newEnsure(t, srv, "ensure", secgroup.ModeDirect)
	out, err := h.Handle(context.Background(), ensureInput(oneENI))
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	r := newReader(t, srv)
	derived := r.groupsNamed(secgroup.DerivedName(groupName))[vpcA]
	if len(derived) != 1 {
		t.Fatalf("groups named %s in %s: %+v, want one", secgroup.DerivedName(groupName), vpcA, derived)
	}
	want := []workflow.VpcGroups{{VpcID: vpcA, IsolationGroupID: aws.ToString(derived[0].GroupId), Created: true, ForeignGroupID: "sg-0a8"}}
	if diff := cmp.Diff(want, out.Groups); diff != "" {
		t.Errorf("groups (-want +got):\n%s", diff)
	}
	if len(derived[0].IpPermissions)+len(derived[0].IpPermissionsEgress) != 0 || tagValue(derived[0].Tags, secgroup.TagManaged) != "true" {
		t.Errorf("derived group %+v: want no rule and the managed tag", derived[0])
	}
	g := r.groupsNamed(groupName)[vpcA]
	if len(g) != 1 || len(g[0].IpPermissionsEgress) != 1 || len(g[0].IpPermissions) != 0 {
		t.Errorf("the team's group was changed: %+v", g)
	}

	// Again: the derived group is found, nothing changes.
	srv.ResetCalls()
	again, err := h.Handle(context.Background(), ensureInput(oneENI))
	if err != nil {
		t.Fatalf("second Handle: %v", err)
	}
	if m := mutating(srv); len(m) != 0 {
		t.Errorf("second run made mutating calls %v", m)
	}
	want[0].Created = false
	if diff := cmp.Diff(want, again.Groups); diff != "" {
		t.Errorf("second run groups (-want +got):\n%s", diff)
	}
}

// When the derived name is not ours either, the VPC cannot get a group: a ConfigError naming both, nothing changed.
func TestEnsureRefusesWhenTheDerivedNameIsNotOursEither(t *testing.T) {
	sc := scenario()
	sc.SecurityGroups = append(sc.SecurityGroups,
		sim.SecurityGroup{ID: "sg-0a8", VpcID: vpcA, Name: groupName, Description: "theirs"},
		sim.SecurityGroup{ID: "sg-0a7", VpcID: vpcA, Name: secgroup.DerivedName(groupName), Description: "theirs too"})
	srv := start(t, sc)
	_, err := newEnsure(t, srv, "ensure", secgroup.ModeDirect).Handle(context.Background(), ensureInput(oneENI))
	var ce *steperr.ConfigError
	if !errors.As(err, &ce) || !strings.Contains(ce.Reason, "sg-0a8") || !strings.Contains(ce.Reason, "sg-0a7") {
		t.Fatalf("error %v, want a ConfigError naming sg-0a8 and sg-0a7", err)
	}
	if m := mutating(srv); len(m) != 0 {
		t.Errorf("mutating calls %v, want none", m)
	}
}

func TestEnsureEmptiesAnExistingGroup(t *testing.T) {
	sc := scenario()
	sc.SecurityGroups = append(sc.SecurityGroups, sim.SecurityGroup{
		ID: "sg-0a9", VpcID: vpcA, Name: groupName, Description: "isolation",
		Tags: map[string]string{secgroup.TagManaged: "true"}, // ours, tampered with since
		Ingress: []sim.Rule{
			{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: "198.51.100.0/24", Description: "someone's ssh"},
			{Protocol: "-1", GroupID: "sg-0a1"},
		},
		Egress: []sim.Rule{
			{Protocol: "tcp", FromPort: 443, ToPort: 443, CIDR: "0.0.0.0/0"},
			{Protocol: "udp", FromPort: 53, ToPort: 53, IPv6CIDR: "::/0"},
		},
	})
	srv := start(t, sc)
	h := newEnsure(t, srv, "ensure", secgroup.ModeDirect)

	out, err := h.Handle(context.Background(), ensureInput(oneENI))
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	want := workflow.EnsureGroupsOutput{Groups: []workflow.VpcGroups{{VpcID: vpcA, IsolationGroupID: "sg-0a9"}}}
	if diff := cmp.Diff(want, out, cmpopts.IgnoreFields(workflow.EnsureGroupsOutput{}, "Changes")); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	wantChanges := []change{
		{"sg-0a9", "RevokeSecurityGroupEgress", "revoked outbound rules to 0.0.0.0/0, ::/0"},
		{"sg-0a9", "RevokeSecurityGroupIngress", "revoked inbound rules from 198.51.100.0/24, sg-0a1"},
	}
	if diff := cmp.Diff(wantChanges, changesOf(out.Changes)); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	g := newReader(t, srv).groupsNamed(groupName)[vpcA]
	if len(g) != 1 {
		t.Fatalf("groups named %s in %s: %d, want 1", groupName, vpcA, len(g))
	}
	if r := append(rules(g[0].IpPermissions), rules(g[0].IpPermissionsEgress)...); len(r) != 0 {
		t.Errorf("rules left in the isolation group: %v", r)
	}
	if n := calledAction(srv, "CreateSecurityGroup"); n != 0 {
		t.Errorf("CreateSecurityGroup called %d times for an existing group", n)
	}

	srv.ResetCalls()
	if _, err := h.Handle(context.Background(), ensureInput(oneENI)); err != nil {
		t.Fatalf("second Handle: %v", err)
	}
	if m := mutating(srv); len(m) != 0 {
		t.Errorf("second run made mutating calls %v", m)
	}
}

func TestEnsureConcurrentExecutionsShareOneGroupPerVPC(t *testing.T) {
	srv := start(t, scenario())
	const executions = 3
	outs := make([]workflow.EnsureGroupsOutput, executions)
	errs := make([]error, executions)
	var wg sync.WaitGroup
	for i := range executions {
		h := newEnsure(t, srv, fmt.Sprintf("ensure-%d", i), secgroup.ModeDirect)
		wg.Go(func() { outs[i], errs[i] = h.Handle(context.Background(), ensureInput(twoVPCs)) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("execution %d: %v", i, err)
		}
	}
	checkIsolationGroups(t, srv, vpcsOf[twoVPCs], outs[0])
	for i := 1; i < executions; i++ {
		for j := range outs[i].Groups {
			outs[i].Groups[j].Created = outs[0].Groups[j].Created
		}
		if diff := cmp.Diff(outs[0], outs[i], cmpopts.IgnoreFields(workflow.EnsureGroupsOutput{}, "Changes")); diff != "" {
			t.Errorf("execution %d found other groups (-first +this):\n%s", i, diff)
		}
	}
}

func TestEnsureUsesTheGroupAnotherExecutionJustCreated(t *testing.T) {
	sc := scenario()
	sc.Behaviour.GroupVisibilityDelay = 50 * time.Millisecond
	srv := start(t, sc)
	var theirs string
	srv.Update(func(a *sim.Account) {
		var err error
		if theirs, err = a.CreateSecurityGroup(vpcA, groupName, "created by another execution"); err != nil {
			t.Errorf("create: %v", err)
			return
		}
		a.SetTag(theirs, secgroup.TagManaged, "true") // as our CreateSecurityGroup does
	})

	// Its Describe does not see the new group yet, so it creates one and learns it exists.
	out, err := newEnsure(t, srv, "ensure", secgroup.ModeDirect).Handle(context.Background(), ensureInput(oneENI))
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	want := workflow.EnsureGroupsOutput{Groups: []workflow.VpcGroups{{VpcID: vpcA, IsolationGroupID: theirs}},
		Changes: []workflow.Change{{Step: "Ensure isolation security group", Resource: theirs, Action: "RevokeSecurityGroupEgress", Detail: "revoked outbound rules to 0.0.0.0/0, ::/0"}}}
	if diff := cmp.Diff(want, out, ignoreAt); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	checkIsolationGroups(t, srv, []string{vpcA}, out)
	duplicate := false
	for _, c := range srv.Calls() {
		duplicate = duplicate || (c.Action == "CreateSecurityGroup" && c.ErrorCode == "InvalidGroup.Duplicate")
	}
	if !duplicate {
		t.Errorf("CreateSecurityGroup never answered InvalidGroup.Duplicate: the race was not exercised")
	}
}

func TestEnsureDescribesAgainWhenARuleWasRevokedConcurrently(t *testing.T) {
	sc := scenario()
	// Our group, with rules added since: another execution empties it too and revokes a rule first.
	sc.SecurityGroups = append(sc.SecurityGroups, sim.SecurityGroup{ID: "sg-0a9", VpcID: vpcA, Name: groupName, Description: "isolation",
		Tags: map[string]string{secgroup.TagManaged: "true"}})
	sc.Faults.Errors = []sim.ErrorFault{{Action: "RevokeSecurityGroupEgress", Code: "InvalidPermission.NotFound", Count: 1}}
	srv := start(t, sc)

	out, err := newEnsure(t, srv, "ensure", secgroup.ModeDirect).Handle(context.Background(), ensureInput(oneENI))
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	checkIsolationGroups(t, srv, vpcsOf[oneENI], out)
	if n := calledAction(srv, "DescribeSecurityGroups"); n < 2 {
		t.Errorf("%d DescribeSecurityGroups calls: the group was not described again", n)
	}
	if calls := srv.Calls(); !slices.ContainsFunc(calls, func(c sim.Call) bool { return c.ErrorCode == "InvalidPermission.NotFound" }) {
		t.Errorf("the fault never fired")
	}
}

func TestEnsureWaitsForANewGroupToBecomeVisible(t *testing.T) {
	sc := scenario()
	sc.Behaviour.GroupVisibilityDelay = 100 * time.Millisecond
	srv := start(t, sc)

	out, err := newEnsure(t, srv, "ensure", secgroup.ModeDirect).Handle(context.Background(), ensureInput(twoVPCs))
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	checkIsolationGroups(t, srv, vpcsOf[twoVPCs], out)
	if calls := srv.Calls(); !slices.ContainsFunc(calls, func(c sim.Call) bool { return c.ErrorCode == "InvalidGroup.NotFound" }) {
		t.Errorf("the new groups were never invisible: the wait was not exercised")
	}
}

func TestEnsureReportsGroupNotVisibleThenSucceedsOnRetry(t *testing.T) {
	sc := scenario()
	sc.Behaviour.GroupVisibilityDelay = 300 * time.Millisecond
	srv := start(t, sc)

	impatient := newEnsure(t, srv, "ensure", secgroup.ModeDirect)
	impatient.Wait = secgroup.Wait{Attempts: 1}
	_, err := impatient.Handle(context.Background(), ensureInput(oneENI))
	var nv *steperr.GroupNotVisible
	if !errors.As(err, &nv) || nv.VpcID != vpcA {
		t.Fatalf("error = %v, want GroupNotVisible for %s", err, vpcA)
	}

	// The state machine retries the step (the same execution, so the same caller).
	out, err := newEnsure(t, srv, "ensure", secgroup.ModeDirect).Handle(context.Background(), ensureInput(oneENI))
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	checkIsolationGroups(t, srv, []string{vpcA}, out)
}

func TestEnsureSurvivesThrottling(t *testing.T) {
	sc := scenario()
	sc.Faults.Errors = []sim.ErrorFault{{Action: "*", Service: "ec2", Code: "RequestLimitExceeded", FirstCalls: 1}}
	srv := start(t, sc)

	out, err := newEnsure(t, srv, "ensure", secgroup.ModeUntrackFirst).Handle(context.Background(), ensureInput(twoVPCs))
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	checkIsolationGroups(t, srv, vpcsOf[twoVPCs], out)
	throttled := 0
	for _, c := range srv.Calls() {
		if c.ErrorCode == "RequestLimitExceeded" {
			throttled++
		}
	}
	if throttled == 0 {
		t.Errorf("no call was throttled: the fault did not apply")
	}
}

func TestEnsureUntrackFirstKeepsAnAllowAllGroup(t *testing.T) {
	srv := start(t, scenario())
	h := newEnsure(t, srv, "ensure", secgroup.ModeUntrackFirst)

	out, err := h.Handle(context.Background(), ensureInput(twoVPCs))
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	checkIsolationGroups(t, srv, vpcsOf[twoVPCs], out)
	untrack := newReader(t, srv).groupsNamed(groupName + secgroup.UntrackSuffix)
	allowAll := []rule{{"-1", "0.0.0.0/0"}, {"-1", "::/0"}}
	for i, vpc := range vpcsOf[twoVPCs] {
		gs := untrack[vpc]
		if len(gs) != 1 {
			t.Fatalf("%s: %d untrack groups, want 1", vpc, len(gs))
		}
		if got := out.Groups[i].UntrackGroupID; got != aws.ToString(gs[0].GroupId) {
			t.Errorf("%s: output untrack group %s, want %s", vpc, got, aws.ToString(gs[0].GroupId))
		}
		if diff := cmp.Diff(allowAll, rules(gs[0].IpPermissions)); diff != "" {
			t.Errorf("%s: untrack ingress (-want +got):\n%s", vpc, diff)
		}
		if diff := cmp.Diff(allowAll, rules(gs[0].IpPermissionsEgress)); diff != "" {
			t.Errorf("%s: untrack egress (-want +got):\n%s", vpc, diff)
		}
	}

	srv.ResetCalls()
	if _, err := h.Handle(context.Background(), ensureInput(twoVPCs)); err != nil {
		t.Fatalf("second Handle: %v", err)
	}
	if m := mutating(srv); len(m) != 0 {
		t.Errorf("second run made mutating calls %v", m)
	}
}

func TestEnsureRefusesBadInput(t *testing.T) {
	tests := []struct {
		name string
		in   workflow.EnsureGroupsInput
	}{
		{"no instance", workflow.EnsureGroupsInput{VpcIDs: []string{vpcA}}},
		{"no VPC", workflow.EnsureGroupsInput{InstanceID: oneENI}},
		{"malformed VPC", workflow.EnsureGroupsInput{InstanceID: oneENI, VpcIDs: []string{vpcA, "subnet-0a1"}}},
		{"empty VPC", workflow.EnsureGroupsInput{InstanceID: oneENI, VpcIDs: []string{""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := start(t, scenario())
			_, err := newEnsure(t, srv, "ensure", secgroup.ModeUntrackFirst).Handle(context.Background(), tt.in)
			var ii *steperr.InvalidInput
			if !errors.As(err, &ii) {
				t.Fatalf("error = %#v, want InvalidInput", err)
			}
			if calls := srv.Calls(); len(calls) != 0 {
				t.Errorf("%d calls made for bad input, want none", len(calls))
			}
		})
	}
}

func TestSettingsFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    secgroup.Settings
		wantErr bool
	}{
		{"defaults to direct", map[string]string{"ISOLATION_GROUP_NAME": "quarantine"}, secgroup.Settings{GroupName: "quarantine", Mode: secgroup.ModeDirect}, false},
		{"untrack-first", map[string]string{"ISOLATION_GROUP_NAME": "q", "CONNECTION_TRACKING": "untrack-first"}, secgroup.Settings{GroupName: "q", Mode: secgroup.ModeUntrackFirst}, false},
		{"no name", map[string]string{"CONNECTION_TRACKING": "direct"}, secgroup.Settings{}, true},
		{"sg- prefix", map[string]string{"ISOLATION_GROUP_NAME": "sg-quarantine"}, secgroup.Settings{}, true},
		{"bad character", map[string]string{"ISOLATION_GROUP_NAME": "quarantine's"}, secgroup.Settings{}, true},
		{"too long", map[string]string{"ISOLATION_GROUP_NAME": string(make([]byte, 250))}, secgroup.Settings{}, true},
		{"unknown mode", map[string]string{"ISOLATION_GROUP_NAME": "q", "CONNECTION_TRACKING": "Direct"}, secgroup.Settings{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := secgroup.SettingsFromEnv(func(k string) string { return tt.env[k] })
			var ce *steperr.ConfigError
			if tt.wantErr {
				if !errors.As(err, &ce) {
					t.Fatalf("error = %v, want ConfigError", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("error = %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("settings (-want +got):\n%s", diff)
			}
		})
	}
}
