package evidence_test

import (
	"log/slog"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/google/go-cmp/cmp"

	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/simtest"
	"github.com/ec2-isolation/ec2-isolation/internal/validate"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// Issue 13 item 3: Validate's DescribeInstances already has each volume's delete-on-termination; the first run
// of Preserve evidence takes it (and termination protection, shutdown behaviour) from the record instead of
// asking DescribeInstanceAttribute again, and still turns every flag off. A retry reads again.
func TestPreserveTakesTheInstanceSettingsFromValidatesRecord(t *testing.T) {
	srv := simtest.Start(t, instanceScenario())
	env := map[string]string{"TAG_KEY": "Isolate", "TAG_VALUE": "true", "ISOLATION_GROUP_NAME": "ec2-isolation"}
	vs, err := validate.SettingsFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	srv.Update(func(a *sim.Account) { a.SetTag(instanceID, "Isolate", "true") })
	rec, err := validate.New(ec2.NewFromConfig(srv.AWSConfig("validate")), vs, slog.New(slog.DiscardHandler)).Handle(ctx,
		workflow.ValidateInput{ExecutionName: "exec-1", Event: workflow.TagEvent{
			Source: "aws.tag", DetailType: "Tag Change on Resource", Account: srv.AccountID(), Region: srv.Region(),
			Resources: []string{"arn:aws:ec2:" + srv.Region() + ":" + srv.AccountID() + ":instance/" + instanceID},
			Detail: workflow.TagDetail{Service: "ec2", ResourceType: "instance", ChangedTagKeys: []string{"Isolate"},
				Tags: map[string]string{"Isolate": "true"}}}})
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}

	srv.ResetCalls()
	out, err := preserve(srv, instanceOnly).Handle(ctx, workflow.EvidenceInput{InstanceID: instanceID, ExecutionName: "exec-1", Record: &rec})
	if err != nil {
		t.Fatalf("Preserve: %v", err)
	}
	if got := simtest.Actions(srv, "ec2"); countOf(got, "DescribeInstanceAttribute") != 0 {
		t.Errorf("first run calls %v: it reads again what Validate's record holds", got)
	}
	want := attrs{TerminationProtection: true, ShutdownBehavior: "stop",
		DeleteOnTermination: map[string]bool{volRoot: false, volData: false, volScratch: false}}
	if diff := cmp.Diff(want, readAttrs(t, newClients(srv, "test").ec2)); diff != "" {
		t.Errorf("instance settings (-want +got):\n%s", diff)
	}
	if len(out.Changes) != 4 {
		t.Errorf("changes %+v, want termination protection, shutdown behaviour and two volumes", out.Changes)
	}

	// A retry: the record is older than the first run's changes, so it reads, and changes nothing.
	srv.ResetCalls()
	retry := workflow.EvidenceInput{InstanceID: instanceID, ExecutionName: "exec-1", Record: &rec}
	retry.Attempt = 1
	again, err := preserve(srv, instanceOnly).Handle(ctx, retry)
	if err != nil || len(again.Changes) != 0 || len(simtest.Mutating(srv)) != 0 {
		t.Errorf("retry = %+v, %v, mutating %v; want no change", again, err, simtest.Mutating(srv))
	}
	if got := simtest.Actions(srv, "ec2"); countOf(got, "DescribeInstanceAttribute") != 3 {
		t.Errorf("retry calls %v, want the three attributes read", got)
	}
}

func countOf(xs []string, x string) int {
	n := 0
	for _, y := range xs {
		if y == x {
			n++
		}
	}
	return n
}
