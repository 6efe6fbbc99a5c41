package runner_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	ec2isolation "github.com/ec2-isolation/ec2-isolation"
	"github.com/ec2-isolation/ec2-isolation/internal/runner"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/simtest"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// Many executions run in one runner at once (isolation simulate, the reliability soak), as Lambda runs concurrent
// invocations in separate execution environments: each invocation's output must be its own, never another
// invocation's that happened to reuse the same output buffer (aws-lambda-go reuses it at the handler's next call).
func TestConcurrentInvocationsGetTheirOwnOutput(t *testing.T) {
	const n = 40
	sc := sim.Scenario{
		VPCs:    []sim.VPC{{ID: "vpc-0a1", CIDR: "10.0.0.0/16"}},
		Subnets: []sim.Subnet{{ID: "subnet-0a1", VpcID: "vpc-0a1", CIDR: "10.0.0.0/18"}},
	}
	for i := range n {
		sc.Instances = append(sc.Instances, sim.Instance{ID: fmt.Sprintf("i-%017x", i+1), SubnetID: "subnet-0a1"})
	}
	srv := simtest.Start(t, sc)
	env := map[string]string{"TAG_KEY": "Isolate", "TAG_VALUE": "true", "ISOLATION_GROUP_NAME": "q",
		"ISOLATION_PROFILE_NAME": "q", "TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:t"}
	r, err := runner.New(runner.Config{Definition: ec2isolation.Definition, Region: srv.Region(), Account: srv.AccountID(),
		AWS: srv.AWSConfig, Env: func(k string) string { return env[k] }, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	validate := runner.FunctionARN(srv.Region(), srv.AccountID(), "validate-and-record")
	for round := range 5 {
		// The outputs are read once every invocation of the round has returned: an output that aliased a reused
		// buffer shows then, whatever the timing.
		outs := make([][]byte, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				id := fmt.Sprintf("i-%017x", i+1)
				in, _ := json.Marshal(workflow.ValidateInput{ExecutionName: "e", Event: workflow.TagEvent{
					Source: "aws.tag", DetailType: "Tag Change on Resource", Account: srv.AccountID(), Region: srv.Region(),
					Resources: []string{"arn:aws:ec2:" + srv.Region() + ":" + srv.AccountID() + ":instance/" + id},
					Detail: workflow.TagDetail{Service: "ec2", ResourceType: "instance", ChangedTagKeys: []string{"Isolate"},
						Tags: map[string]string{"Isolate": "true"}}}})
				out, err := r.Invoke(context.Background(), validate, in)
				if err != nil {
					t.Errorf("round %d, %s: %v", round, id, err)
				}
				outs[i] = out
			})
		}
		wg.Wait()
		for i, out := range outs {
			id := fmt.Sprintf("i-%017x", i+1)
			var rec workflow.Record
			if err := json.Unmarshal(out, &rec); err != nil || rec.InstanceID != id {
				t.Errorf("round %d: the output for %s is %q (%v): another invocation's", round, id, rec.InstanceID, err)
			}
		}
	}
}
