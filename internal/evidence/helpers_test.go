package evidence_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/ec2-isolation/ec2-isolation/internal/evidence"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/simtest"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

var (
	ctx   = context.Background()
	quiet = slog.New(slog.DiscardHandler)
)

const (
	instanceID = "i-0123456789abcdef0"
	vpcA       = "vpc-0aaa0000000000001"
	subnetA    = "subnet-0aaa000000000001"
	volRoot    = "vol-0000000000000000a"
	volData    = "vol-0000000000000000b"
	volScratch = "vol-0000000000000000c"

	tgWebARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef"
	tgAPIARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/api/fedcba9876543210"
)

// instanceScenario: one instance with termination protection off, shutdown behaviour terminate, and three
// volumes, two deleted on termination.
func instanceScenario() sim.Scenario {
	return sim.Scenario{
		VPCs:    []sim.VPC{{ID: vpcA, CIDR: "10.0.0.0/16"}},
		Subnets: []sim.Subnet{{ID: subnetA, VpcID: vpcA, AvailabilityZone: "us-east-1a", CIDR: "10.0.1.0/24"}},
		Instances: []sim.Instance{{ID: instanceID, SubnetID: subnetA, ShutdownBehavior: "terminate",
			Volumes: []sim.Volume{
				{ID: volRoot, DeviceName: "/dev/xvda", DeleteOnTermination: true},
				{ID: volData, DeviceName: "/dev/xvdf", DeleteOnTermination: true},
				{ID: volScratch, DeviceName: "/dev/xvdg"},
			}}},
	}
}

// record is "Validate and record"'s record of the instance of instanceScenario.
func record() workflow.Record {
	return workflow.Record{InstanceID: instanceID, ShutdownBehavior: "terminate", Volumes: []workflow.Volume{
		{VolumeID: volRoot, DeviceName: "/dev/xvda", DeleteOnTermination: true},
		{VolumeID: volData, DeviceName: "/dev/xvdf", DeleteOnTermination: true},
		{VolumeID: volScratch, DeviceName: "/dev/xvdg"},
	}}
}

// attrs are the instance settings the steps change, as a test compares them.
type attrs struct {
	TerminationProtection bool
	ShutdownBehavior      string
	DeleteOnTermination   map[string]bool // by volume id
}

// readAttrs reads the instance's settings back through the SDK.
func readAttrs(t *testing.T, c *ec2.Client) attrs {
	t.Helper()
	read := func(name types.InstanceAttributeName) *ec2.DescribeInstanceAttributeOutput {
		out, err := c.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(instanceID), Attribute: name})
		if err != nil {
			t.Fatalf("describe %s: %v", name, err)
		}
		return out
	}
	a := attrs{
		TerminationProtection: aws.ToBool(read(types.InstanceAttributeNameDisableApiTermination).DisableApiTermination.Value),
		ShutdownBehavior:      aws.ToString(read(types.InstanceAttributeNameInstanceInitiatedShutdownBehavior).InstanceInitiatedShutdownBehavior.Value),
		DeleteOnTermination:   map[string]bool{},
	}
	for _, m := range read(types.InstanceAttributeNameBlockDeviceMapping).BlockDeviceMappings {
		a.DeleteOnTermination[aws.ToString(m.Ebs.VolumeId)] = aws.ToBool(m.Ebs.DeleteOnTermination)
	}
	return a
}

// recordedAttrs are the settings a record says the instance had.
func recordedAttrs(r workflow.Record) attrs {
	a := attrs{TerminationProtection: r.DisableAPITermination, ShutdownBehavior: r.ShutdownBehavior, DeleteOnTermination: map[string]bool{}}
	for _, v := range r.Volumes {
		a.DeleteOnTermination[v.VolumeID] = v.DeleteOnTermination
	}
	return a
}

// clients are the step's clients of the real SDK, signing as the function.
type clients struct {
	ec2 *ec2.Client
	asg *autoscaling.Client
	elb *elbv2.Client
}

func newClients(srv *sim.Server, caller string) clients {
	cfg := srv.AWSConfig(caller)
	return clients{ec2.NewFromConfig(cfg), autoscaling.NewFromConfig(cfg), elbv2.NewFromConfig(cfg)}
}

func preserve(srv *sim.Server, s evidence.Settings) *evidence.Preserve {
	c := newClients(srv, "preserve-evidence")
	return evidence.NewPreserve(c.ec2, c.asg, c.elb, s, quiet)
}

func restorer(srv *sim.Server) *evidence.Restore {
	c := newClients(srv, "restore-evidence-settings")
	return evidence.NewRestore(c.ec2, c.asg, c.elb, quiet)
}

func evidenceInput(pre workflow.PreIsolationState) workflow.EvidenceInput {
	return workflow.EvidenceInput{InstanceID: instanceID, ExecutionName: "exec-1", PreIsolation: pre}
}

func releaseInput(pre workflow.PreIsolationState) workflow.ReleaseInput {
	return workflow.ReleaseInput{InstanceID: instanceID, ExecutionName: "release-1",
		InstanceARN: "arn:aws:ec2:us-east-1:123456789012:instance/" + instanceID,
		Incident:    workflow.IncidentRef{Bucket: "incidents", Key: "k", PreIsolation: pre}}
}

// instanceOnly are the settings that leave Auto Scaling and the target groups alone.
var instanceOnly = evidence.Settings{TerminationProtection: true, StopOnShutdown: true, KeepVolumes: true}

func isA[T error](err error) bool {
	var target T
	return errors.As(err, &target)
}

// changeKey is a change as a test compares it (the time aside).
type changeKey struct{ Resource, Action string }

func changeKeys(cs []workflow.Change) []changeKey {
	out := []changeKey{}
	for _, c := range cs {
		out = append(out, changeKey{c.Resource, c.Action})
	}
	slices.SortFunc(out, func(a, b changeKey) int {
		return strings.Compare(a.Resource+" "+a.Action, b.Resource+" "+b.Action)
	})
	return out
}

func checkChanges(t *testing.T, step string, cs []workflow.Change) {
	t.Helper()
	for _, c := range cs {
		if c.Step != step || c.At.IsZero() || c.Action == "" || c.Detail == "" || c.Resource == "" {
			t.Errorf("incomplete change %+v", c)
		}
	}
}

// containsAll says whether every want is a substring of some entry of got.
func containsAll(got []string, want ...string) bool {
	for _, w := range want {
		if !slices.ContainsFunc(got, func(g string) bool { return strings.Contains(g, w) }) {
			return false
		}
	}
	return true
}

func mutating(srv *sim.Server) []string { return simtest.Mutating(srv) }
