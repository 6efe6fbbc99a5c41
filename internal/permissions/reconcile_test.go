package permissions_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2-isolation/ec2-isolation/internal/reconcile/simrun"
	"github.com/ec2-isolation/ec2-isolation/internal/runner"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
)

// reconcileCalls runs the reconciler (caller "reconcile") over every path that calls AWS: isolation groups
// created in every VPC (direct mode, and untrack-first mode, where the allow-all group gets its rules), an
// execution it did not start described, isolations started, a released instance's incident record read and
// its release started. The executions' own calls come with their functions' callers.
func reconcileCalls(t *testing.T) []sim.Call {
	t.Helper()
	ctx := context.Background()
	sc, err := sim.LoadScenario("../../cmd/isolation/scenarios/reconcile.json")
	if err != nil {
		t.Fatal(err)
	}
	// vpc C's isolation group was given an inbound rule by hand: the reconciler empties it.
	sc.SecurityGroups = append(sc.SecurityGroups, sim.SecurityGroup{ID: "sg-0a1b2c3d4e5f0abcd", VpcID: "vpc-0c33333333333333c",
		Name: groupName, Description: "quarantine", Ingress: []sim.Rule{{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: "0.0.0.0/0"}},
		Tags: map[string]string{"ec2-isolation:managed": "true", "ec2-isolation:role": "isolation"}})
	var calls []sim.Call
	for _, mode := range []string{"direct", "untrack-first"} {
		h, err := simrun.Start(sc, map[string]string{"CONNECTION_TRACKING": mode}, nil)
		if err != nil {
			t.Fatal(err)
		}
		h.Srv.AddExecution(runner.StateMachineName, "0f4e1a52-eventbridge", `{"resources":["arn:aws:ec2:us-east-1:123456789012:instance/i-0c00000000000000c"]}`)
		if _, err := h.Pass(ctx, "2026-12-05T10:00:00Z"); err != nil {
			t.Fatal(err)
		}
		if _, err := ec2.NewFromConfig(h.Srv.AWSConfig("responder")).CreateTags(ctx, &ec2.CreateTagsInput{
			Resources: []string{"i-0a00000000000000a"}, Tags: []ec2types.Tag{{Key: aws.String("Isolate"), Value: aws.String("release")}}}); err != nil {
			t.Fatal(err)
		}
		if rep, err := h.Pass(ctx, "2026-12-05T10:05:00Z"); err != nil || rep.ReleasePending != 1 {
			t.Fatalf("%s: the release pass: %+v %v", mode, rep, err)
		}
		calls = append(calls, h.Srv.Calls()...)
		h.Close()
	}
	return calls
}
