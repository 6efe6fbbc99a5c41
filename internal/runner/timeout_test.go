package runner_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ec2-isolation/ec2-isolation/internal/asl"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/simtest"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

const timeoutInstance = "i-0a1b2c3d4e5f60718"

// timedOut runs the isolation of the default scenario's instance with the real handlers, where one AWS call of one
// function never answers (the simulator holds it for an hour) and only that function's Task state has a short
// TimeoutSeconds (100 ms; every other task keeps the definition's, which no test run reaches). The hung call
// outlasts the task timeout by far, so the Task always times out (States.Timeout), whatever the machine's load.
func timedOut(t *testing.T, state, function, action string) (e *asl.Execution, srv *sim.Server, bucket string) {
	t.Helper()
	sc := defaultScenario(t)
	sc.Faults = sim.Faults{Errors: []sim.ErrorFault{{Action: action, Caller: function, Timeout: time.Hour}}}
	srv = simtest.Start(t, sc)
	opts := asl.Scaled(1000, time.Now)
	opts.WithTimeout = func(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
		if asl.StateName(ctx) == state {
			return context.WithTimeout(ctx, 100*time.Millisecond)
		}
		return context.WithTimeout(ctx, d)
	}
	e = isolationRunner(t, srv, sc, opts).Start(t.Context(), "timeout-"+strings.ReplaceAll(state, " ", "-"), isolateEvent(t))
	if e.Status != asl.StatusFailed || e.Error != "IsolationFailed" {
		t.Fatalf("execution %s %s %s, want FAILED with IsolationFailed (at Notify failure)", e.Status, e.Error, e.Cause)
	}
	return e, srv, sc.Buckets[0].Name
}

// eniGroups is every ENI of the instance with its groups, read through the SDK.
func eniGroups(t *testing.T, srv *sim.Server) map[string][]string {
	t.Helper()
	out, err := ec2.NewFromConfig(srv.AWSConfig("responder")).DescribeNetworkInterfaces(context.Background(), &ec2.DescribeNetworkInterfacesInput{
		Filters: []ec2types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{timeoutInstance}}}})
	if err != nil {
		t.Fatal(err)
	}
	groups := map[string][]string{}
	for _, n := range out.NetworkInterfaces {
		for _, g := range n.Groups {
			groups[aws.ToString(n.NetworkInterfaceId)] = append(groups[aws.ToString(n.NetworkInterfaceId)], aws.ToString(g.GroupName))
		}
	}
	return groups
}

func profileArns(t *testing.T, srv *sim.Server) []string {
	t.Helper()
	out, err := ec2.NewFromConfig(srv.AWSConfig("responder")).DescribeIamInstanceProfileAssociations(context.Background(),
		&ec2.DescribeIamInstanceProfileAssociationsInput{Filters: []ec2types.Filter{{Name: aws.String("instance-id"), Values: []string{timeoutInstance}}}})
	if err != nil {
		t.Fatal(err)
	}
	var arns []string
	for _, a := range out.IamInstanceProfileAssociations {
		if a.State == ec2types.IamInstanceProfileAssociationStateAssociated {
			arns = append(arns, aws.ToString(a.IamInstanceProfile.Arn))
		}
	}
	return arns
}

func terminationProtected(t *testing.T, srv *sim.Server) bool {
	t.Helper()
	out, err := ec2.NewFromConfig(srv.AWSConfig("responder")).DescribeInstanceAttribute(context.Background(),
		&ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(timeoutInstance), Attribute: ec2types.InstanceAttributeNameDisableApiTermination})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToBool(out.DisableApiTermination.Value)
}

// oneFailureNotification is the only message published: a failure naming the state and States.Timeout.
func oneFailureNotification(t *testing.T, srv *sim.Server, state string) {
	t.Helper()
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d notifications, want exactly one", len(msgs))
	}
	if m := msgs[0].Message; !strings.Contains(m, state) || !strings.Contains(m, "States.Timeout") || !strings.Contains(m, "FAILED") {
		t.Errorf("the notification does not report %s failing with States.Timeout:\n%s", state, m)
	}
}

func recordExists(t *testing.T, srv *sim.Server, bucket string) {
	t.Helper()
	key := workflow.IncidentKey(srv.AccountID(), srv.Region(), timeoutInstance)
	if _, err := s3.NewFromConfig(srv.AWSConfig("responder")).HeadObject(context.Background(),
		&s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
		t.Errorf("no incident record s3://%s/%s: %v", bucket, key, err)
	}
}

// Issue 12, case 8: a Task timeout in Apply (States.Timeout, which only a States.ALL catcher catches) ends the
// network branch with its marker; the IAM branch (record, profile swap) and the evidence branch still complete,
// the volumes are snapshotted, and the failure is notified once.
func TestApplyTimeoutDoesNotAbortTheOtherBranches(t *testing.T) {
	e, srv, bucket := timedOut(t, "Apply isolation security group", "apply-security-group", "ModifyNetworkInterfaceAttribute")

	var timedOutStates []string
	for _, ev := range e.History.Events() {
		if ev.Type == asl.TaskTimedOut {
			timedOutStates = append(timedOutStates, ev.Resource+" "+ev.Error)
		}
	}
	if len(timedOutStates) != 1 {
		t.Errorf("TaskTimedOut events %v, want exactly one (Apply's)", timedOutStates)
	}
	if got := profileArns(t, srv); len(got) != 1 || !strings.HasSuffix(got[0], "instance-profile/ec2-isolation-quarantine") {
		t.Errorf("instance profile associations %v, want only the isolation profile: the IAM branch was aborted", got)
	}
	if !terminationProtected(t, srv) {
		t.Error("termination protection is off: the evidence branch was aborted")
	}
	recordExists(t, srv, bucket)
	for eni, groups := range eniGroups(t, srv) {
		if slices.Contains(groups, "ec2-isolation-quarantine") {
			t.Errorf("%s is on %v although Apply never got an answer", eni, groups)
		}
	}
	oneFailureNotification(t, srv, "Apply isolation security group")
}

// Issue 12, case 8: a Task timeout in Snapshot volumes still records the outcome and notifies the failure; the
// execution ends FAILED (at Notify failure, so that it can be redriven). The instance is contained.
func TestSnapshotTimeoutStillNotifies(t *testing.T) {
	e, srv, _ := timedOut(t, "Snapshot volumes", "snapshot-volumes", "CreateSnapshots")

	recorded := false
	for _, run := range e.History.Summary() {
		if run.Name == "Record outcome" && run.Status == asl.RunSucceeded {
			recorded = true
		}
	}
	if !recorded {
		t.Error("Record outcome did not run after the snapshot's timeout")
	}
	groups := eniGroups(t, srv)
	if len(groups) == 0 {
		t.Fatal("the instance has no ENI")
	}
	for eni, g := range groups {
		if !slices.Equal(g, []string{"ec2-isolation-quarantine"}) {
			t.Errorf("%s is on %v, want only the isolation group", eni, g)
		}
	}
	if !terminationProtected(t, srv) {
		t.Error("termination protection is off")
	}
	oneFailureNotification(t, srv, "Snapshot volumes")
}
