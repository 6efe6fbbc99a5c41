package targets_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/google/go-cmp/cmp"

	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/simtest"
	"github.com/ec2-isolation/ec2-isolation/internal/targets"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

const (
	inst  = "i-0123456789abcdef0"
	other = "i-0aaaaaaaaaaaaaaa1"
	vpcA  = "vpc-0aaa0000000000001"
	vpcB  = "vpc-0bbb0000000000001"
	tgWeb = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef"
	tgAPI = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/api/fedcba9876543210"
	tgB   = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/b/00000000000000bb"
	tgOld = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/old/00000000000000cc"
)

// Find lists the instance's registrations in the target groups of its VPCs only, each port apart, without the
// ones draining and without other instances'.
func TestFind(t *testing.T) {
	sc := sim.Scenario{
		VPCs: []sim.VPC{{ID: vpcA, CIDR: "10.0.0.0/16"}, {ID: vpcB, CIDR: "10.1.0.0/16"}},
		Subnets: []sim.Subnet{
			{ID: "subnet-0aaa000000000001", VpcID: vpcA, AvailabilityZone: "us-east-1a", CIDR: "10.0.1.0/24"},
			{ID: "subnet-0bbb000000000001", VpcID: vpcB, AvailabilityZone: "us-east-1a", CIDR: "10.1.1.0/24"},
		},
		Instances: []sim.Instance{{ID: inst, SubnetID: "subnet-0aaa000000000001"}, {ID: other, SubnetID: "subnet-0aaa000000000001"}},
		TargetGroups: []sim.TargetGroup{
			{Name: "web", ARN: tgWeb, VpcID: vpcA, Port: 80, Targets: []sim.Target{{ID: inst}, {ID: other}}},
			{Name: "api", ARN: tgAPI, VpcID: vpcA, Port: 8080, Targets: []sim.Target{{ID: inst, Port: 8080}, {ID: inst, Port: 8081}}},
			{Name: "old", ARN: tgOld, VpcID: vpcA, Port: 80, Targets: []sim.Target{{ID: inst}}},
			{Name: "b", ARN: tgB, VpcID: vpcB, Port: 80, Targets: []sim.Target{{ID: inst}}},
		},
	}
	sc.Behaviour.TargetDeregistrationDelay = 1 << 40 // draining for as long as the test runs
	srv := simtest.Start(t, sc)
	c := elbv2.NewFromConfig(srv.AWSConfig("test"))
	ctx := context.Background()
	if _, err := c.DeregisterTargets(ctx, &elbv2.DeregisterTargetsInput{TargetGroupArn: aws.String(tgOld),
		Targets: []elbtypes.TargetDescription{{Id: aws.String(inst), Port: aws.Int32(80)}}}); err != nil {
		t.Fatalf("deregister from old: %v", err)
	}
	got, err := targets.Find(ctx, c, inst, []string{vpcA})
	if err != nil {
		t.Fatalf("Find: %v", err)
	}
	want := []workflow.TargetRegistration{{TargetGroupARN: tgAPI, Port: 8080}, {TargetGroupARN: tgAPI, Port: 8081}, {TargetGroupARN: tgWeb, Port: 80}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("registrations (-want +got):\n%s", diff)
	}
	if got, err := targets.Find(ctx, c, inst, nil); err != nil || len(got) != 0 {
		t.Errorf("no VPC: %+v, %v; want none", got, err)
	}
}
