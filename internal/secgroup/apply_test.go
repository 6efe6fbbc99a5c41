package secgroup_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ec2-isolation/ec2-isolation/internal/citest"
	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// ensured runs "Validate and record" and "Ensure isolation security group" for the instance, and returns Apply's
// input as the state machine passes it (the record and Ensure's output).
func ensured(t *testing.T, srv *sim.Server, instance string, mode secgroup.Mode) workflow.ApplyGroupsInput {
	t.Helper()
	rec := validated(t, srv, instance, mode)
	out, err := newEnsure(t, srv, "ensure", mode).Handle(context.Background(), workflow.EnsureGroupsInput{
		InstanceID: instance, ExecutionName: "exec-1", VpcIDs: rec.VpcIDs, Record: &rec})
	if err != nil {
		t.Fatalf("ensure: %v", err)
	}
	return workflow.ApplyGroupsInput{InstanceID: instance, ExecutionName: "exec-1", Record: &rec, Ensured: &out}
}

// groupsOnly is Apply's input of an older definition: the groups alone, no record (Apply describes first).
func groupsOnly(in workflow.ApplyGroupsInput) workflow.ApplyGroupsInput {
	return workflow.ApplyGroupsInput{InstanceID: in.InstanceID, ExecutionName: in.ExecutionName, Groups: in.Ensured.Groups}
}

// scenarioENIs lists each ENI of the instance in the scenario: its VPC and its groups before isolation.
func scenarioENIs(sc sim.Scenario, instance string) []workflow.AppliedInterface {
	vpcOf := map[string]string{}
	for _, s := range sc.Subnets {
		vpcOf[s.ID] = s.VpcID
	}
	var out []workflow.AppliedInterface
	for _, inst := range sc.Instances {
		if inst.ID != instance {
			continue
		}
		for _, n := range inst.NetworkInterfaces {
			out = append(out, workflow.AppliedInterface{ID: n.ID, VpcID: vpcOf[n.SubnetID], Before: n.Groups})
		}
	}
	return out
}

func isolationGroupOf(in workflow.ApplyGroupsInput) map[string]string {
	m := map[string]string{}
	for _, g := range groupsOf(in) {
		m[g.VpcID] = g.IsolationGroupID
	}
	return m
}

// groupsOf is the groups Apply uses.
func groupsOf(in workflow.ApplyGroupsInput) []workflow.VpcGroups {
	if len(in.Groups) > 0 {
		return in.Groups
	}
	return in.Ensured.Groups
}

func TestApplyPutsEveryENIOnItsVPCsIsolationGroup(t *testing.T) {
	shapes := map[string]func(workflow.ApplyGroupsInput) workflow.ApplyGroupsInput{
		"record":      func(in workflow.ApplyGroupsInput) workflow.ApplyGroupsInput { return in },
		"groups only": groupsOnly,
	}
	for _, mode := range []secgroup.Mode{secgroup.ModeDirect, secgroup.ModeUntrackFirst} {
		for _, instance := range []string{oneENI, threeENIs, twoVPCs} {
			for shape, inputOf := range shapes {
				t.Run(string(mode)+"/"+instance+"/"+shape, func(t *testing.T) {
					sc := scenario()
					srv := start(t, sc)
					in := inputOf(ensured(t, srv, instance, mode))
					iso := isolationGroupOf(in)
					untrack := map[string]string{}
					for _, g := range groupsOf(in) {
						untrack[g.VpcID] = g.UntrackGroupID
					}
					h := newApply(t, srv, "apply", mode)

					srv.ResetCalls()
					out, err := h.Handle(context.Background(), in)
					if err != nil {
						t.Fatalf("Handle: %v", err)
					}

					// What EC2 now says about the ENIs.
					wantGroups := map[string][]string{}
					var wantOut workflow.ApplyGroupsOutput
					var wantChanges []change
					for _, n := range scenarioENIs(sc, instance) {
						wantGroups[n.ID] = []string{iso[n.VpcID]}
						n.After, n.Changed = []string{iso[n.VpcID]}, true
						wantOut.NetworkInterfaces = append(wantOut.NetworkInterfaces, n)
						from := strings.Join(n.Before, ",")
						if mode == secgroup.ModeUntrackFirst {
							wantChanges = append(wantChanges, change{n.ID, "ModifyNetworkInterfaceAttribute",
								"groups " + from + " -> " + untrack[n.VpcID] + " (allow-all first: untracks connections)"})
							from = untrack[n.VpcID]
						}
						wantChanges = append(wantChanges, change{n.ID, "ModifyNetworkInterfaceAttribute", "groups " + from + " -> " + iso[n.VpcID]})
					}
					if diff := cmp.Diff(wantGroups, newReader(t, srv).eniGroups(instance)); diff != "" {
						t.Errorf("ENI groups after isolation (-want +got):\n%s", diff)
					}
					if diff := cmp.Diff(wantOut, out, cmpopts.IgnoreFields(workflow.ApplyGroupsOutput{}, "Changes")); diff != "" {
						t.Errorf("output (-want +got):\n%s", diff)
					}
					if diff := cmp.Diff(sortedChanges(wantChanges), changesOf(out.Changes)); diff != "" {
						t.Errorf("changes (-want +got):\n%s", diff)
					}
					if n := calledAction(srv, "ModifyInstanceAttribute"); n != 0 {
						t.Errorf("ModifyInstanceAttribute called %d times", n)
					}
					if len(in.Groups) > 1 && iso[in.Groups[0].VpcID] == iso[in.Groups[1].VpcID] {
						t.Errorf("two VPCs share the group %s", iso[in.Groups[0].VpcID])
					}

					// Run again, as a new execution would (its record shows the isolation groups): nothing to do.
					if in.Record != nil {
						in = ensured(t, srv, instance, mode)
						if !in.Record.GroupsReady {
							t.Errorf("the record of an isolated instance: groups not ready")
						}
						in.Ensured = nil // the warm path: Ensure does not run
					}
					srv.ResetCalls()
					again, err := h.Handle(context.Background(), in)
					if err != nil {
						t.Fatalf("second Handle: %v", err)
					}
					if m := mutating(srv); len(m) != 0 {
						t.Errorf("second run made mutating calls %v", m)
					}
					for i := range wantOut.NetworkInterfaces {
						n := &wantOut.NetworkInterfaces[i]
						n.Before, n.Changed = n.After, false
					}
					if diff := cmp.Diff(wantOut, again); diff != "" {
						t.Errorf("second run output (-want +got):\n%s", diff)
					}
				})
			}
		}
	}
}

func TestApplyUntrackFirstAppliesTheAllowAllGroupToEveryENIFirst(t *testing.T) {
	srv := start(t, scenario())
	in := ensured(t, srv, twoVPCs, secgroup.ModeUntrackFirst)
	srv.ResetCalls()
	if _, err := newApply(t, srv, "apply", secgroup.ModeUntrackFirst).Handle(context.Background(), in); err != nil {
		t.Fatalf("Handle: %v", err)
	}

	untrack, iso := map[string]bool{}, map[string]bool{}
	for _, g := range groupsOf(in) {
		untrack[g.UntrackGroupID], iso[g.IsolationGroupID] = true, true
	}
	// The successful modify calls in arrival order: every ENI's allow-all call, then every ENI's isolation call.
	type step struct{ ENI, Kind string }
	var got []step
	for _, c := range srv.Calls() {
		if c.Action != "ModifyNetworkInterfaceAttribute" || c.ErrorCode != "" {
			continue
		}
		kind := "other: " + c.Params.Get("SecurityGroupId.1")
		switch g := c.Params.Get("SecurityGroupId.1"); {
		case c.Params.Has("SecurityGroupId.2"):
			kind = "several groups"
		case untrack[g]:
			kind = "untrack"
		case iso[g]:
			kind = "isolation"
		}
		got = append(got, step{c.Params.Get("NetworkInterfaceId"), kind})
	}
	if len(got) != 4 {
		t.Fatalf("modify calls %v, want 4 (two per ENI)", got)
	}
	seen := map[string]string{}
	for i, s := range got {
		wantKind := "untrack"
		if i >= 2 {
			wantKind = "isolation"
		}
		if s.Kind != wantKind {
			t.Errorf("call %d: %v, want %s (all ENIs untracked before any is isolated)", i, s, wantKind)
		}
		seen[s.ENI] += s.Kind + " "
	}
	want := map[string]string{"eni-02a": "untrack isolation ", "eni-02b": "untrack isolation "}
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("groups applied per ENI (-want +got):\n%s", diff)
	}
}

func TestApplySurvivesThrottling(t *testing.T) {
	sc := scenario()
	srv := start(t, sc)
	in := ensured(t, srv, threeENIs, secgroup.ModeDirect)
	srv.Update(func(a *sim.Account) {
		a.Faults.Errors = []sim.ErrorFault{{Action: "*", Service: "ec2", Code: "RequestLimitExceeded", FirstCalls: 1}}
	})
	srv.ResetCalls()
	if _, err := newApply(t, srv, "apply", secgroup.ModeDirect).Handle(context.Background(), in); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	iso := isolationGroupOf(in)[vpcA]
	want := map[string][]string{"eni-03a": {iso}, "eni-03b": {iso}, "eni-03c": {iso}}
	if diff := cmp.Diff(want, newReader(t, srv).eniGroups(threeENIs)); diff != "" {
		t.Errorf("ENI groups (-want +got):\n%s", diff)
	}
	throttled := false
	for _, c := range srv.Calls() {
		throttled = throttled || c.ErrorCode == "RequestLimitExceeded"
	}
	if !throttled {
		t.Errorf("no call was throttled: the fault did not apply")
	}
}

func TestApplyRefusesBadInputWithoutChangingAnything(t *testing.T) {
	sc := scenario()
	tests := []struct {
		name string
		mode secgroup.Mode
		edit func(*workflow.ApplyGroupsInput)
		want string // in the error message
	}{
		{"bad instance id", secgroup.ModeDirect, func(in *workflow.ApplyGroupsInput) { in.InstanceID = "web-1" }, "web-1"},
		{"no groups", secgroup.ModeDirect, func(in *workflow.ApplyGroupsInput) { in.Groups = nil }, "no isolation group"},
		{"record without groups, Ensure's output missing", secgroup.ModeDirect, func(in *workflow.ApplyGroupsInput) { *in = recordOnly(*in, false) }, "no isolation group"},
		{"record of another instance", secgroup.ModeDirect, func(in *workflow.ApplyGroupsInput) { *in = recordOnly(*in, true); in.Record.InstanceID = oneENI }, oneENI},
		{"malformed ENI in the record", secgroup.ModeDirect, func(in *workflow.ApplyGroupsInput) {
			*in = recordOnly(*in, true)
			in.Record.NetworkInterfaces[1].ID = "eth1"
		}, "eth1"},
		{"ENI twice in the record", secgroup.ModeDirect, func(in *workflow.ApplyGroupsInput) {
			*in = recordOnly(*in, true)
			in.Record.NetworkInterfaces[1].ID = in.Record.NetworkInterfaces[0].ID
		}, "twice"},
		{"a recorded ENI's VPC has no group", secgroup.ModeDirect, func(in *workflow.ApplyGroupsInput) {
			*in = recordOnly(*in, true)
			in.Record.IsolationGroups = in.Record.IsolationGroups[:1]
		}, "eni-02b"},
		{"malformed group", secgroup.ModeDirect, func(in *workflow.ApplyGroupsInput) { in.Groups[1].IsolationGroupID = "quarantine" }, "quarantine"},
		{"an ENI's VPC has no group", secgroup.ModeDirect, func(in *workflow.ApplyGroupsInput) { in.Groups = in.Groups[:1] }, "eni-02b"},
		{"untrack-first without untrack group", secgroup.ModeUntrackFirst, func(in *workflow.ApplyGroupsInput) {}, "allow-all group"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := start(t, sc)
			in := groupsOnly(ensured(t, srv, twoVPCs, secgroup.ModeDirect))
			tt.edit(&in)
			srv.ResetCalls()
			_, err := newApply(t, srv, "apply", tt.mode).Handle(context.Background(), in)
			var ii *steperr.InvalidInput
			if !errors.As(err, &ii) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want InvalidInput naming %q", err, tt.want)
			}
			if m := mutating(srv); len(m) != 0 {
				t.Errorf("mutating calls %v for bad input", m)
			}
			want := map[string][]string{"eni-02a": {"sg-0a1"}, "eni-02b": {"sg-0b1"}}
			if diff := cmp.Diff(want, newReader(t, srv).eniGroups(twoVPCs)); diff != "" {
				t.Errorf("ENI groups changed (-want +got):\n%s", diff)
			}
		})
	}
}

func TestApplyNamesTheENIThatFailed(t *testing.T) {
	srv := start(t, scenario())
	in := ensured(t, srv, twoVPCs, secgroup.ModeDirect)
	srv.Update(func(a *sim.Account) {
		a.Faults.Errors = []sim.ErrorFault{{Action: "ModifyNetworkInterfaceAttribute", Code: "UnauthorizedOperation", Message: "not allowed"}}
	})
	_, err := newApply(t, srv, "apply", secgroup.ModeDirect).Handle(context.Background(), in)
	var ae *steperr.AWSError
	if !errors.As(err, &ae) {
		t.Fatalf("error = %#v, want AWSError", err)
	}
	for _, eni := range []string{"eni-02a", "eni-02b"} {
		if !strings.Contains(err.Error(), eni) {
			t.Errorf("error %q does not name %s", err, eni)
		}
	}
	if code := steperr.Code(err); code != "UnauthorizedOperation" {
		t.Errorf("error code %q, want UnauthorizedOperation", code)
	}
}

func TestApplyRefusesAnInstanceWithoutENI(t *testing.T) {
	for shape, inputOf := range map[string]func(workflow.ApplyGroupsInput) workflow.ApplyGroupsInput{
		// The record still names the ENI: its modify fails (InvalidNetworkInterfaceID.NotFound), the Describe
		// finds none attached.
		"record":      func(in workflow.ApplyGroupsInput) workflow.ApplyGroupsInput { return in },
		"groups only": groupsOnly,
	} {
		t.Run(shape, func(t *testing.T) {
			sc := scenario()
			sc.Instances[0].NetworkInterfaces[0].ID = "eni-0000000000000001a" // well formed: EC2 answers NotFound once it is gone
			srv := start(t, sc)
			in := inputOf(ensured(t, srv, oneENI, secgroup.ModeDirect))
			srv.Update(func(a *sim.Account) {
				if err := a.TerminateInstance(oneENI); err != nil {
					t.Errorf("terminate: %v", err)
				}
			})
			if left := newReader(t, srv).eniGroups(oneENI); len(left) != 0 {
				citest.Skipf(t, "sim: a terminated instance keeps its ENIs attached: %v", left)
			}
			srv.ResetCalls()
			_, err := newApply(t, srv, "apply", secgroup.ModeDirect).Handle(context.Background(), in)
			var ni *steperr.InstanceNotIsolatable
			if !errors.As(err, &ni) || ni.InstanceID != oneENI {
				t.Fatalf("error = %v, want InstanceNotIsolatable for %s", err, oneENI)
			}
			for _, c := range srv.Calls() {
				if c.Mutating && c.ErrorCode != "InvalidNetworkInterfaceID.NotFound" {
					t.Errorf("%s on %s answered %q, want only failed modifies of the gone ENI", c.Action, c.Params.Get("NetworkInterfaceId"), c.ErrorCode)
				}
			}
		})
	}
}

func TestModeFromEnv(t *testing.T) {
	for v, want := range map[string]secgroup.Mode{"": secgroup.ModeDirect, "direct": secgroup.ModeDirect, "untrack-first": secgroup.ModeUntrackFirst} {
		got, err := secgroup.ModeFromEnv(func(string) string { return v })
		if err != nil || got != want {
			t.Errorf("CONNECTION_TRACKING=%q: %q, %v; want %q", v, got, err, want)
		}
	}
	_, err := secgroup.ModeFromEnv(func(string) string { return "untrack" })
	var ce *steperr.ConfigError
	if !errors.As(err, &ce) {
		t.Errorf("CONNECTION_TRACKING=untrack: error %v, want ConfigError", err)
	}
}

// recordOnly turns a groups-only input back into the warm path's: the record, with the groups Validate found
// (ready or not), and no Ensure output.
func recordOnly(in workflow.ApplyGroupsInput, ready bool) workflow.ApplyGroupsInput {
	rec := workflow.Record{InstanceID: in.InstanceID, IsolationGroups: in.Groups, GroupsReady: ready}
	vpcOf := map[string]string{"eni-02a": vpcA, "eni-02b": vpcB}
	for _, id := range []string{"eni-02a", "eni-02b"} {
		rec.NetworkInterfaces = append(rec.NetworkInterfaces, workflow.NetworkInterface{ID: id, VpcID: vpcOf[id], Groups: []string{"sg-0a1"}})
	}
	return workflow.ApplyGroupsInput{InstanceID: in.InstanceID, ExecutionName: in.ExecutionName, Record: &rec}
}
