package runner_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	ec2isolation "github.com/ec2-isolation/ec2-isolation"
	"github.com/ec2-isolation/ec2-isolation/internal/asl"
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
		sc.Instances = append(sc.Instances, sim.Instance{ID: fmt.Sprintf("i-%017x", i+1), SubnetID: "subnet-0a1", Tags: map[string]string{"Isolate": "true"}})
	}
	srv := simtest.Start(t, sc)
	env := map[string]string{"TAG_KEY": "Isolate", "TAG_VALUE": "true", "ISOLATION_GROUP_NAME": "q",
		"ISOLATION_PROFILE_NAME": "q", "TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:t",
		"INCIDENT_BUCKET": "incidents", "REVOCABLE_ROLES": "*"}
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

// The release runner builds only the functions its definition names (the isolation functions' settings are not
// needed) and runs the release definition: an instance that was never isolated is refused by "Read incident
// record" with NotIsolated, no mutating call is made, and exactly one (failure) notification is published.
func TestReleaseOfAnInstanceNeverIsolated(t *testing.T) {
	const instance = "i-0a1b2c3d4e5f60718"
	sc := sim.Scenario{
		VPCs:           []sim.VPC{{ID: "vpc-0a1", CIDR: "10.0.0.0/16"}},
		Subnets:        []sim.Subnet{{ID: "subnet-0a1", VpcID: "vpc-0a1", CIDR: "10.0.0.0/18"}},
		SecurityGroups: []sim.SecurityGroup{{ID: "sg-0a1b2c3d4e5f00001", VpcID: "vpc-0a1", Name: "web", Description: "web"}},
		Instances: []sim.Instance{{ID: instance, SubnetID: "subnet-0a1", Tags: map[string]string{"Isolate": "release"},
			NetworkInterfaces: []sim.NetworkInterface{{ID: "eni-0a1b2c3d4e5f00001", SubnetID: "subnet-0a1", Groups: []string{"sg-0a1b2c3d4e5f00001"}}}}},
		Topics:  []sim.Topic{{Name: "notifications"}},
		Buckets: []sim.S3Bucket{{Name: "incidents", Versioning: true}},
	}
	srv := simtest.Start(t, sc)
	// Only the release's settings: the runner would fail to build an isolation-only function without its own.
	env := map[string]string{"TAG_KEY": "Isolate", "RELEASE_TAG_VALUE": "release", "INCIDENT_BUCKET": "incidents",
		"ISOLATION_GROUP_NAME": "ec2-isolation-quarantine", "ISOLATION_PROFILE_NAME": "ec2-isolation-quarantine",
		"REVOCABLE_ROLES": "*", "TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:notifications"}
	r, err := runner.New(runner.Config{Definition: ec2isolation.ReleaseDefinition, StateMachineName: runner.ReleaseStateMachineName,
		Region: srv.Region(), Account: srv.AccountID(), AWS: srv.AWSConfig, Env: func(k string) string { return env[k] },
		Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	event, err := ec2isolation.Events.ReadFile("events/release.json")
	if err != nil {
		t.Fatal(err)
	}
	e := r.Start(context.Background(), "release-1", event)
	// The execution fails at "Notify failure" with ReleaseFailed, the refusal in the cause.
	if e.Status != asl.StatusFailed || e.Error != "ReleaseFailed" || !strings.Contains(e.Cause, "NotIsolated") {
		t.Fatalf("execution %s %s %s, want FAILED ReleaseFailed naming NotIsolated", e.Status, e.Error, e.Cause)
	}
	if want := "arn:aws:states:us-east-1:123456789012:execution:" + runner.ReleaseStateMachineName + ":release-1"; e.ID != want {
		t.Errorf("execution ARN %s, want %s", e.ID, want)
	}
	var mutating []string
	for _, c := range srv.Calls() {
		if c.Mutating && c.Service != "sns" {
			mutating = append(mutating, c.Service+":"+c.Action)
		}
	}
	if len(mutating) > 0 {
		t.Errorf("a refused release made mutating calls: %v", mutating)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d notifications, want 1", len(msgs))
	}
	if !strings.Contains(msgs[0].Message, "NotIsolated") {
		t.Errorf("the notification does not name NotIsolated:\n%s", msgs[0].Message)
	}
}
