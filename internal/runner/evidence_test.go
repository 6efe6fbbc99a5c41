package runner_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2-isolation/ec2-isolation/internal/asl"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/simtest"
)

// evidenceKept checks what an Auto Scaling group's health check would destroy is preserved: the instance is out of
// its Auto Scaling group, protected from termination, stops on shutdown, and no volume is deleted with it.
func evidenceKept(t *testing.T, srv *sim.Server) {
	t.Helper()
	ctx := context.Background()
	c := ec2.NewFromConfig(srv.AWSConfig("responder"))
	if !terminationProtected(t, srv) {
		t.Error("termination protection is off")
	}
	sd, err := c.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(timeoutInstance),
		Attribute: ec2types.InstanceAttributeNameInstanceInitiatedShutdownBehavior})
	if err != nil {
		t.Fatal(err)
	}
	if v := aws.ToString(sd.InstanceInitiatedShutdownBehavior.Value); v != "stop" {
		t.Errorf("shutdown behaviour %q, want stop", v)
	}
	out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{timeoutInstance}})
	if err != nil {
		t.Fatal(err)
	}
	for _, bdm := range out.Reservations[0].Instances[0].BlockDeviceMappings {
		if aws.ToBool(bdm.Ebs.DeleteOnTermination) {
			t.Errorf("%s (%s) is deleted on termination", aws.ToString(bdm.Ebs.VolumeId), aws.ToString(bdm.DeviceName))
		}
	}
	as, err := autoscaling.NewFromConfig(srv.AWSConfig("responder")).DescribeAutoScalingInstances(ctx,
		&autoscaling.DescribeAutoScalingInstancesInput{InstanceIds: []string{timeoutInstance}})
	if err != nil {
		t.Fatal(err)
	}
	if len(as.AutoScalingInstances) != 0 {
		t.Errorf("still in Auto Scaling group %s: it would terminate the isolated instance", aws.ToString(as.AutoScalingInstances[0].AutoScalingGroupName))
	}
}

// Issue 12, case 5: evidence preservation is a branch of its own. When the record and IAM branch fails (at its
// first step, or at the profile swap), the instance is still detached from its Auto Scaling group, protected from
// termination and keeps its volumes; the network is contained; the failure is notified once, naming only the IAM
// step. (Before, Preserve evidence came last in the IAM branch, and any failure there skipped it.)
func TestEvidenceIsPreservedWhenTheIAMBranchFails(t *testing.T) {
	for _, tc := range []struct {
		name, failed string
		fault        sim.ErrorFault
	}{
		{"the record cannot be written", "Record pre-isolation state",
			sim.ErrorFault{Service: "s3", Action: "PutObject", Caller: "record-incident", Code: "AccessDenied", Status: 403}},
		{"the profile cannot be removed", "Disassociate profile",
			sim.ErrorFault{Action: "DisassociateIamInstanceProfile", Caller: "disassociate-profile", Code: "UnauthorizedOperation"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := defaultScenario(t)
			sc.AutoScaling = []sim.AutoScalingGroup{{Name: "web-asg", MinSize: 1, MaxSize: 4, DesiredCapacity: 1,
				Instances: []sim.AutoScalingInstance{{ID: timeoutInstance}}}}
			sc.Faults = sim.Faults{Errors: []sim.ErrorFault{tc.fault}}
			srv := simtest.Start(t, sc)
			opts := asl.Scaled(1000, time.Now)
			opts.WithTimeout = context.WithTimeout
			e := isolationRunner(t, srv, sc, opts).Start(t.Context(), "evidence-"+strings.ReplaceAll(tc.name, " ", "-"), isolateEvent(t))
			if e.Status != asl.StatusFailed || e.Error != "IsolationFailed" {
				t.Fatalf("execution %s %s %s, want FAILED (at Notify failure)", e.Status, e.Error, e.Cause)
			}
			if failed := failedStates(e); len(failed) == 0 || failed[0] != tc.failed {
				t.Errorf("failed states %v, want %s first", failed, tc.failed)
			}
			evidenceKept(t, srv)
			for eni, g := range eniGroups(t, srv) {
				if len(g) != 1 || g[0] != "ec2-isolation-quarantine" {
					t.Errorf("%s is on %v, want only the isolation group", eni, g)
				}
			}
			msgs := srv.Messages()
			if len(msgs) != 1 || !strings.Contains(msgs[0].Message, tc.failed) {
				t.Errorf("%d notifications, want one failure naming %s", len(msgs), tc.failed)
			}
		})
	}
}

// failedStates are the Task states whose last run failed (caught or not), in history order.
func failedStates(e *asl.Execution) []string {
	var out []string
	for _, r := range e.History.Summary() {
		if r.Type == "Task" && (r.Status == asl.RunCaught || r.Status == asl.RunFailed) && r.Name != "Notify failure" {
			out = append(out, r.Name)
		}
	}
	return out
}
