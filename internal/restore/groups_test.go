package restore_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/google/go-cmp/cmp"

	"github.com/ec2-isolation/ec2-isolation/internal/awscfg"
	"github.com/ec2-isolation/ec2-isolation/internal/restore"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/simtest"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// Two VPCs; the instance has three ENIs: two in vpc-a, one in vpc-b (a multi-VPC attachment).
const (
	vpcA, vpcB          = "vpc-0aaa0000000000001", "vpc-0bbb0000000000001"
	subnetA, subnetB    = "subnet-0aaa000000000001", "subnet-0bbb000000000001"
	eni0, eni1, eni2    = "eni-0000000000000000a", "eni-0000000000000000b", "eni-0000000000000000c"
	eniNew              = "eni-0000000000000000d"
	sgWeb, sgSSH, sgApp = "sg-0000000000000a001", "sg-0000000000000a002", "sg-0000000000000b001"
	sgIsoA, sgIsoB      = "sg-0000000000000a0ff", "sg-0000000000000b0ff"
)

// isolatedScenario is the instance as isolation left it: every ENI on its VPC's isolation group.
func isolatedScenario() sim.Scenario {
	return sim.Scenario{
		VPCs: []sim.VPC{{ID: vpcA, CIDR: "10.0.0.0/16"}, {ID: vpcB, CIDR: "10.1.0.0/16"}},
		Subnets: []sim.Subnet{
			{ID: subnetA, VpcID: vpcA, AvailabilityZone: "us-east-1a", CIDR: "10.0.1.0/24"},
			{ID: subnetB, VpcID: vpcB, AvailabilityZone: "us-east-1a", CIDR: "10.1.1.0/24"},
		},
		SecurityGroups: []sim.SecurityGroup{
			{ID: sgWeb, VpcID: vpcA, Name: "web", Description: "web"},
			{ID: sgSSH, VpcID: vpcA, Name: "ssh", Description: "ssh"},
			{ID: sgApp, VpcID: vpcB, Name: "app", Description: "app"},
			{ID: sgIsoA, VpcID: vpcA, Name: "ec2-isolation", Description: "isolation", Ingress: []sim.Rule{}, Egress: []sim.Rule{}},
			{ID: sgIsoB, VpcID: vpcB, Name: "ec2-isolation", Description: "isolation", Ingress: []sim.Rule{}, Egress: []sim.Rule{}},
		},
		Instances: []sim.Instance{{ID: instanceID, SubnetID: subnetA, NetworkInterfaces: []sim.NetworkInterface{
			{ID: eni0, SubnetID: subnetA, DeviceIndex: 0, Groups: []string{sgIsoA}},
			{ID: eni1, SubnetID: subnetA, DeviceIndex: 1, Groups: []string{sgIsoA}},
			{ID: eni2, SubnetID: subnetB, DeviceIndex: 2, Groups: []string{sgIsoB}},
		}}},
	}
}

// recorded is the record of the instance before isolation.
func recorded() workflow.Record {
	return workflow.Record{VpcIDs: []string{vpcA, vpcB}, NetworkInterfaces: []workflow.NetworkInterface{
		{ID: eni0, VpcID: vpcA, SubnetID: subnetA, DeviceIndex: 0, Groups: []string{sgWeb, sgSSH}},
		{ID: eni1, VpcID: vpcA, SubnetID: subnetA, DeviceIndex: 1, Groups: []string{sgSSH}},
		{ID: eni2, VpcID: vpcB, SubnetID: subnetB, DeviceIndex: 2, Groups: []string{sgApp}},
	}}
}

// groupsNow reads the groups of every ENI attached to the instance back through the SDK, each list sorted.
func groupsNow(t *testing.T, c *ec2.Client) map[string][]string {
	t.Helper()
	out, err := c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{
		{Name: aws.String("attachment.instance-id"), Values: []string{instanceID}},
	}})
	if err != nil {
		t.Fatalf("describe network interfaces: %v", err)
	}
	got := map[string][]string{}
	for _, n := range out.NetworkInterfaces {
		gs := []string{}
		for _, g := range n.Groups {
			gs = append(gs, aws.ToString(g.GroupId))
		}
		slices.Sort(gs)
		got[aws.ToString(n.NetworkInterfaceId)] = gs
	}
	return got
}

func TestRestoreGroups(t *testing.T) {
	restored := map[string][]string{eni0: {sgWeb, sgSSH}, eni1: {sgSSH}, eni2: {sgApp}}
	tests := []struct {
		name string
		// before changes the account after the isolation (the ENI that another actor changed).
		before      func(t *testing.T, a *sim.Account)
		modify      map[string][]string // ENI groups set through EC2 before the step runs
		rec         func(*workflow.Record)
		want        map[string][]string
		wantChanged []string
		wantSkipped []string // substrings, one per skip
		wantErr     string   // substring of the error; "" for success
	}{
		{name: "three ENIs in two VPCs", want: restored, wantChanged: []string{eni0, eni1, eni2}},
		{name: "one ENI already restored (an earlier attempt)",
			modify: map[string][]string{eni1: {sgSSH}},
			want:   restored, wantChanged: []string{eni0, eni2}},
		{name: "groups recorded in another order",
			rec:    func(r *workflow.Record) { r.NetworkInterfaces[0].Groups = []string{sgSSH, sgWeb} },
			modify: map[string][]string{eni0: {sgWeb, sgSSH}},
			want:   restored, wantChanged: []string{eni1, eni2}},
		{name: "a recorded ENI detached since isolation",
			before: func(t *testing.T, a *sim.Account) {
				if err := a.DetachNetworkInterface(eni1); err != nil {
					t.Fatal(err)
				}
			},
			want:        map[string][]string{eni0: {sgWeb, sgSSH}, eni2: {sgApp}},
			wantChanged: []string{eni0, eni2},
			wantSkipped: []string{eni1 + ": no longer attached"}},
		{name: "an ENI attached since isolation",
			before: func(t *testing.T, a *sim.Account) {
				if err := a.DetachNetworkInterface(eni1); err != nil {
					t.Fatal(err)
				}
				if err := a.AttachNetworkInterface(eni1, instanceID, 3); err != nil {
					t.Fatal(err)
				}
			},
			rec: func(r *workflow.Record) {
				// The record knows the instance with two ENIs; eni1 came later and keeps the isolation group.
				r.NetworkInterfaces = slices.Delete(r.NetworkInterfaces, 1, 2)
			},
			want:        map[string][]string{eni0: {sgWeb, sgSSH}, eni1: {sgIsoA}, eni2: {sgApp}},
			wantChanged: []string{eni0, eni2},
			wantSkipped: []string{eni1 + ": attached since isolation"}},
		{name: "a recorded group deleted since isolation",
			before: func(t *testing.T, a *sim.Account) {
				if err := a.DeleteSecurityGroup(sgApp); err != nil {
					t.Fatal(err)
				}
			},
			// The other ENIs are restored; eni2 stays isolated and the error names it.
			want:        map[string][]string{eni0: {sgWeb, sgSSH}, eni1: {sgSSH}, eni2: {sgIsoB}},
			wantChanged: []string{eni0, eni1},
			wantErr:     eni2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := simtest.Start(t, isolatedScenario())
			if tt.before != nil {
				srv.Update(func(a *sim.Account) { tt.before(t, a) })
			}
			for eni, groups := range tt.modify {
				if _, err := client(srv, "someone").ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
					NetworkInterfaceId: aws.String(eni), Groups: groups,
				}); err != nil {
					t.Fatal(err)
				}
			}
			rec := recorded()
			if tt.rec != nil {
				tt.rec(&rec)
			}
			in := releaseInput(rec)
			h := restore.NewGroups(client(srv, "restore-security-groups"), quiet)
			srv.ResetCalls()

			out, err := h.Handle(ctx, in)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Handle: %v", err)
			case tt.wantErr != "" && (!isA[*steperr.AWSError](err) || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error = %T %v, want an AWSError naming %s", err, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, groupsNow(t, client(srv, "test"))); diff != "" {
				t.Errorf("groups after restore (-want +got):\n%s", diff)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tt.wantChanged, resources(out.Changes)); diff != "" {
				t.Errorf("changed ENIs (-want +got):\n%s", diff)
			}
			checkChanges(t, restore.GroupsStep, out.Changes)
			if len(out.Skipped) != len(tt.wantSkipped) {
				t.Errorf("skipped = %q, want %d entries like %q", out.Skipped, len(tt.wantSkipped), tt.wantSkipped)
			}
			for _, s := range tt.wantSkipped {
				if !slices.ContainsFunc(out.Skipped, func(got string) bool { return strings.Contains(got, s) }) {
					t.Errorf("skipped = %q, want one saying %q", out.Skipped, s)
				}
			}
			// As many modify calls as changes: nothing was modified that did not differ.
			if m := mutating(srv); len(m) != len(tt.wantChanged) {
				t.Errorf("mutating calls %v, want %d", m, len(tt.wantChanged))
			}

			// A second run (a redrive) finds everything restored.
			srv.ResetCalls()
			again, err := h.Handle(ctx, in)
			if err != nil || len(again.Changes) != 0 {
				t.Errorf("second run = %+v, %v; want no change", again, err)
			}
			if m := mutating(srv); len(m) > 0 {
				t.Errorf("second run made mutating calls: %v", m)
			}
		})
	}
}

func TestRestoreGroupsRefusesBadInput(t *testing.T) {
	tests := []struct {
		name   string
		change func(*workflow.ReleaseInput)
		want   string
	}{
		{"no execution name", func(in *workflow.ReleaseInput) { in.ExecutionName = "" }, "executionName"},
		{"not an instance id", func(in *workflow.ReleaseInput) { in.InstanceID = "web-1" }, "web-1"},
		{"record of another instance", func(in *workflow.ReleaseInput) {
			in.Incident.PreIsolation.Record.InstanceID = "i-0fedcba9876543210"
		}, "i-0fedcba9876543210"},
		{"no ENI recorded", func(in *workflow.ReleaseInput) { in.Incident.PreIsolation.Record.NetworkInterfaces = nil }, "no network interface"},
		{"ENI without groups", func(in *workflow.ReleaseInput) { in.Incident.PreIsolation.Record.NetworkInterfaces[1].Groups = nil }, eni1},
		{"not a group id", func(in *workflow.ReleaseInput) {
			in.Incident.PreIsolation.Record.NetworkInterfaces[2].Groups = []string{"app"}
		}, `"app"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := simtest.Start(t, isolatedScenario())
			in := releaseInput(recorded())
			tt.change(&in)
			_, err := restore.NewGroups(client(srv, "restore-security-groups"), quiet).Handle(ctx, in)
			if !isA[*steperr.InvalidInput](err) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %T %v, want InvalidInput naming %s", err, err, tt.want)
			}
			if calls := srv.Calls(); len(calls) > 0 {
				t.Errorf("calls before refusing: %d", len(calls))
			}
		})
	}
}

// TestRestoreGroupsTransient: EC2 failing the calls with a server error beyond the SDK's retries is a Transient
// (ASL retries), and the retry restores every ENI.
func TestRestoreGroupsTransient(t *testing.T) {
	sc := isolatedScenario()
	sc.Faults.Errors = []sim.ErrorFault{{Action: "ModifyNetworkInterfaceAttribute", Code: "InternalError", Count: 3 * awscfg.MaxAttempts}}
	srv := simtest.Start(t, sc)
	h := restore.NewGroups(client(srv, "restore-security-groups"), quiet)
	in := releaseInput(recorded())
	_, err := h.Handle(ctx, in)
	if !isA[*steperr.Transient](err) {
		t.Fatalf("error = %T %v, want *steperr.Transient", err, err)
	}
	if _, err := h.Handle(context.Background(), in); err != nil {
		t.Fatalf("retry: %v", err)
	}
	want := map[string][]string{eni0: {sgWeb, sgSSH}, eni1: {sgSSH}, eni2: {sgApp}}
	if diff := cmp.Diff(want, groupsNow(t, client(srv, "test"))); diff != "" {
		t.Errorf("groups after the retry (-want +got):\n%s", diff)
	}
}
