package evidence_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	gocmp "github.com/google/go-cmp/cmp"

	ec2isolation "github.com/ec2-isolation/ec2-isolation"
	"github.com/ec2-isolation/ec2-isolation/internal/asl"
	"github.com/ec2-isolation/ec2-isolation/internal/runner"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/stackenv"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

const spotInstance = "i-0a1b2c3d4e5f60718" // the instance of the default scenario and of events/isolate.json

// isolateDefault runs the isolation workflow (the real definition and handlers, in process) on the simulate
// command's default account after change, with no delay that a wall clock could race: waits return at once and
// the account answers without latency or asynchronous settling.
func isolateDefault(t *testing.T, change func(*sim.Scenario)) (*sim.Server, *asl.Execution) {
	t.Helper()
	sc, err := sim.LoadScenario("../../cmd/isolation/scenarios/default.json")
	if err != nil {
		t.Fatal(err)
	}
	sc.Faults, sc.Behaviour = sim.Faults{}, sim.Behaviour{}
	sc.Roles = append(sc.Roles, sim.Role{Name: "web-app-role"}, sim.Role{Name: "ec2-isolation-quarantine"})
	change(&sc)
	srv, err := sim.Start(sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv, runWorkflow(t, srv, sc, ec2isolation.Definition, runner.StateMachineName, "isolate-1", "isolate.json")
}

// runWorkflow runs a definition in process against srv with the event of events/file.
func runWorkflow(t *testing.T, srv *sim.Server, sc sim.Scenario, definition []byte, machine, name, file string) *asl.Execution {
	t.Helper()
	env := stackenv.Getenv(stackenv.ForSim(sc, srv.Region(), srv.AccountID(), nil))
	r, err := runner.New(runner.Config{
		Definition: definition, StateMachineName: machine, Region: srv.Region(), Account: srv.AccountID(),
		AWS: srv.AWSConfig, Env: env, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Engine: asl.Options{Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }},
	})
	if err != nil {
		t.Fatal(err)
	}
	event, err := os.ReadFile("../../events/" + file)
	if err != nil {
		t.Fatal(err)
	}
	return r.Start(context.Background(), name, event)
}

// Issue 12 case 6, end to end: a Spot Instance is isolated (SUCCEEDED) with every evidence setting it can have;
// on the main of before the issue the execution failed at "Preserve evidence".
func TestIsolationOfASpotInstanceSucceeds(t *testing.T) {
	srv, e := isolateDefault(t, func(sc *sim.Scenario) { sc.Instances[0].InstanceLifecycle = "spot" })
	if e.Status != asl.StatusSucceeded {
		t.Fatalf("execution %s %s: %s", e.Status, e.Error, e.Cause)
	}
	c := ec2.NewFromConfig(srv.AWSConfig("test"))
	read := func(name types.InstanceAttributeName) *ec2.DescribeInstanceAttributeOutput {
		out, err := c.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(spotInstance), Attribute: name})
		if err != nil {
			t.Fatalf("describe %s: %v", name, err)
		}
		return out
	}
	if got := aws.ToString(read(types.InstanceAttributeNameInstanceInitiatedShutdownBehavior).InstanceInitiatedShutdownBehavior.Value); got != "stop" {
		t.Errorf("shutdown behaviour %q, want stop", got)
	}
	for _, m := range read(types.InstanceAttributeNameBlockDeviceMapping).BlockDeviceMappings {
		if aws.ToBool(m.Ebs.DeleteOnTermination) {
			t.Errorf("%s still deleted on termination", aws.ToString(m.Ebs.VolumeId))
		}
	}
	if aws.ToBool(read(types.InstanceAttributeNameDisableApiTermination).DisableApiTermination.Value) {
		t.Errorf("a Spot Instance with termination protection")
	}
}

// Issue 12 case 5, end to end: "Preserve evidence" runs beside the incident record and finds the instance's Auto
// Scaling group and target groups itself; what it saw reaches the record, so that the release puts the instance
// back in its group and in every target group.
func TestIsolateThenReleaseRestoresAutoScalingAndTargets(t *testing.T) {
	const (
		vpc    = "vpc-0a11111111111111a"
		https  = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-https/00000000000000a1"
		extra  = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-extra/00000000000000a2"
		asgWeb = "web-asg"
	)
	var sc sim.Scenario
	srv, e := isolateDefault(t, func(s *sim.Scenario) {
		s.TargetGroups = []sim.TargetGroup{
			{Name: "web-https", ARN: https, VpcID: vpc, Port: 443, Targets: []sim.Target{{ID: spotInstance}, {ID: spotInstance, Port: 8443}}},
			{Name: "web-extra", ARN: extra, VpcID: vpc, Port: 9100, Targets: []sim.Target{{ID: spotInstance}}},
		}
		s.AutoScaling = []sim.AutoScalingGroup{{Name: asgWeb, MinSize: 1, MaxSize: 4, DesiredCapacity: 1,
			Instances: []sim.AutoScalingInstance{{ID: spotInstance}}, TargetGroupARNs: []string{https}}}
		sc = *s
	})
	if e.Status != asl.StatusSucceeded {
		t.Fatalf("isolation %s %s: %s", e.Status, e.Error, e.Cause)
	}
	c := newClients(srv, "test")
	regs := func() []workflow.TargetRegistration {
		var out []workflow.TargetRegistration
		for _, arn := range []string{extra, https} {
			h, err := c.elb.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(arn)})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range h.TargetHealthDescriptions {
				if aws.ToString(d.Target.Id) == spotInstance && d.TargetHealth.State != elbtypes.TargetHealthStateEnumDraining {
					out = append(out, workflow.TargetRegistration{TargetGroupARN: arn, Port: aws.ToInt32(d.Target.Port)})
				}
			}
		}
		sortRegs(out)
		return out
	}
	member := func() string {
		out, err := c.asg.DescribeAutoScalingInstances(ctx, &autoscaling.DescribeAutoScalingInstancesInput{InstanceIds: []string{spotInstance}})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.AutoScalingInstances {
			return aws.ToString(m.AutoScalingGroupName)
		}
		return ""
	}
	if got := regs(); len(got) != 0 || member() != "" {
		t.Fatalf("after isolation: registrations %+v, group %q; want none", got, member())
	}

	srv.Update(func(a *sim.Account) { a.SetTag(spotInstance, "Isolate", "release") })
	rel := runWorkflow(t, srv, sc, ec2isolation.ReleaseDefinition, runner.ReleaseStateMachineName, "release-1", "release.json")
	if rel.Status != asl.StatusSucceeded {
		t.Fatalf("release %s %s: %s", rel.Status, rel.Error, rel.Cause)
	}
	want := []workflow.TargetRegistration{{TargetGroupARN: extra, Port: 9100}, {TargetGroupARN: https, Port: 443}, {TargetGroupARN: https, Port: 8443}}
	if diff := gocmp.Diff(want, regs()); diff != "" {
		t.Errorf("registrations after the release (-want +got):\n%s", diff)
	}
	if got := member(); got != asgWeb {
		t.Errorf("Auto Scaling group after the release %q, want %s", got, asgWeb)
	}
}
