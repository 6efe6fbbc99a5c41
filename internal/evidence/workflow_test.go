package evidence_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	ec2isolation "github.com/ec2-isolation/ec2-isolation"
	"github.com/ec2-isolation/ec2-isolation/internal/asl"
	"github.com/ec2-isolation/ec2-isolation/internal/runner"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/stackenv"
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
	env := stackenv.Getenv(stackenv.ForSim(sc, srv.Region(), srv.AccountID(), nil))
	r, err := runner.New(runner.Config{
		Definition: ec2isolation.Definition, StateMachineName: runner.StateMachineName, Region: srv.Region(), Account: srv.AccountID(),
		AWS: srv.AWSConfig, Env: env, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Engine: asl.Options{Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }},
	})
	if err != nil {
		t.Fatal(err)
	}
	event, err := os.ReadFile("../../events/isolate.json")
	if err != nil {
		t.Fatal(err)
	}
	return srv, r.Start(context.Background(), "isolate-1", event)
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
