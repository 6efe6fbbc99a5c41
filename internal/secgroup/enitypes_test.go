package secgroup_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/google/go-cmp/cmp"

	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// An instance of an EKS node with security groups for Pods (its trunk interface) and an HPC instance's Elastic
// Fabric Adapters (efa, efa-only), all on one instance.
const hpcNode = "i-00000000000000e4a"

var interfaceTypes = map[string]string{"eni-0e4a0": "interface", "eni-0e4a1": "trunk", "eni-0e4a2": "efa", "eni-0e4a3": "efa-only"}

func withTrunkAndEFA() sim.Scenario {
	sc := scenario()
	sc.Instances = append(sc.Instances, sim.Instance{ID: hpcNode, SubnetID: "subnet-0a1", Tags: isolateTag,
		NetworkInterfaces: []sim.NetworkInterface{
			{ID: "eni-0e4a0", SubnetID: "subnet-0a1", DeviceIndex: 0, Groups: []string{"sg-0a1"}},
			{ID: "eni-0e4a1", SubnetID: "subnet-0a1", DeviceIndex: 1, Groups: []string{"sg-0a1", "sg-0a2"}, InterfaceType: "trunk"},
			{ID: "eni-0e4a2", SubnetID: "subnet-0a2", DeviceIndex: 2, Groups: []string{"sg-0a2"}, InterfaceType: "efa"},
			{ID: "eni-0e4a3", SubnetID: "subnet-0a2", DeviceIndex: 3, Groups: []string{"sg-0a2"}, InterfaceType: "efa-only"},
		}})
	return sc
}

// Issue 16 leftover 3: trunk and EFA interfaces carry security groups like any interface (EC2 lets the account
// replace them), so Apply contains them like any other ENI: each ends on its VPC's isolation group alone, none is
// set apart as not owned, and EC2 still reports each one's type.
func TestApplyContainsTrunkAndEFAInterfaces(t *testing.T) {
	for _, mode := range []secgroup.Mode{secgroup.ModeDirect, secgroup.ModeUntrackFirst} {
		for shape, inputOf := range map[string]func(workflow.ApplyGroupsInput) workflow.ApplyGroupsInput{
			"record": func(in workflow.ApplyGroupsInput) workflow.ApplyGroupsInput { return in }, "groups only": groupsOnly,
		} {
			t.Run(string(mode)+"/"+shape, func(t *testing.T) {
				srv := start(t, withTrunkAndEFA())
				in := inputOf(ensured(t, srv, hpcNode, mode))
				iso := isolationGroupOf(in)[vpcA]
				out, err := newApply(t, srv, "apply", mode).Handle(context.Background(), in)
				if err != nil {
					t.Fatalf("Handle: %v", err)
				}
				want := map[string][]string{}
				for id := range interfaceTypes {
					want[id] = []string{iso}
				}
				if diff := cmp.Diff(want, newReader(t, srv).eniGroups(hpcNode)); diff != "" {
					t.Errorf("ENI groups after isolation (-want +got):\n%s", diff)
				}
				changed := map[string]bool{}
				for _, n := range out.NetworkInterfaces {
					changed[n.ID] = n.Changed
				}
				if len(changed) != 4 || len(out.NotOwned) != 0 {
					t.Errorf("Apply reported %v changed and %v not owned; want all four changed, none set apart", changed, out.NotOwned)
				}
				d, err := client(t, srv, "reader").DescribeNetworkInterfaces(context.Background(), &ec2.DescribeNetworkInterfacesInput{
					Filters: []types.Filter{{Name: aws.String("interface-type"), Values: []string{"trunk", "efa", "efa-only"}}}})
				if err != nil {
					t.Fatal(err)
				}
				got := map[string]string{}
				for _, n := range d.NetworkInterfaces {
					got[aws.ToString(n.NetworkInterfaceId)] = string(n.InterfaceType)
				}
				if diff := cmp.Diff(map[string]string{"eni-0e4a1": "trunk", "eni-0e4a2": "efa", "eni-0e4a3": "efa-only"}, got); diff != "" {
					t.Errorf("interface types (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// EKS branch interfaces belong to the trunk, not to the instance (README: the documented limit): a scenario that
// attaches one to an instance is refused rather than simulating what EC2 cannot show.
func TestBranchInterfaceIsNotAnAttachment(t *testing.T) {
	sc := withTrunkAndEFA()
	inst := &sc.Instances[len(sc.Instances)-1]
	inst.NetworkInterfaces = append(inst.NetworkInterfaces, sim.NetworkInterface{ID: "eni-0e4a4", SubnetID: "subnet-0a1",
		DeviceIndex: 4, Groups: []string{"sg-0a1"}, InterfaceType: "branch"})
	if _, err := sim.Start(sc, sim.WithInProcess()); err == nil {
		t.Fatal("a branch interface attached to an instance was accepted")
	}
}
