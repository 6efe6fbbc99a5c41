package verify_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/verify"
)

// TestFleetNamesARequesterManagedENIApart: an ENI an AWS service manages (an ECS awsvpc task's) keeps its groups
// after the isolation (EC2 refuses the change), so the reconciler's and `isolation status`'s read-back must not
// call the instance open for it, or the reconciler would isolate it again at every pass; an ordinary ENI put
// back on its old group still is open.
func TestFleetNamesARequesterManagedENIApart(t *testing.T) {
	sc := scenario()
	sc.Instances[0].NetworkInterfaces = append(sc.Instances[0].NetworkInterfaces, sim.NetworkInterface{
		ID: "eni-0a3", SubnetID: "subnet-0a2", DeviceIndex: 2, Groups: []string{"sg-0db"},
		RequesterManaged: true, RequesterID: "ecs.amazonaws.com"})
	srv := startWith(t, sc)
	isolate(t, srv, secgroup.ModeDirect)
	ctx := context.Background()
	c := client(srv, "reconcile")

	check := func() verify.Verdict {
		t.Helper()
		fleet, err := verify.ReadFleet(ctx, c, settings(secgroup.ModeDirect))
		if err != nil {
			t.Fatal(err)
		}
		out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{instance}})
		if err != nil {
			t.Fatal(err)
		}
		return fleet.Check(out.Reservations[0].Instances[0])
	}
	if v := check(); !v.Contained() {
		t.Fatalf("isolated instance with a requester-managed ENI on sg-0db: open %q, want contained", v.Open)
	}
	if _, err := hand(srv).ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: aws.String("eni-0a2"), Groups: []string{"sg-0db"}}); err != nil {
		t.Fatal(err)
	}
	if v := check(); v.Contained() {
		t.Errorf("eni-0a2 put back on sg-0db by hand: contained, want open")
	}
}
