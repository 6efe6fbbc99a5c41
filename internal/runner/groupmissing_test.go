package runner_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2-isolation/ec2-isolation/internal/asl"
	"github.com/ec2-isolation/ec2-isolation/internal/runner"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/simtest"
)

const (
	warmGroupA = "sg-0a1b2c3d4e5f0a0a0" // the isolation group of vpc-0a11111111111111a, deleted after Validate
	warmGroupB = "sg-0a1b2c3d4e5f0b0b0"
)

// warmWithDeletedGroup is the default scenario with an isolation group in each VPC (the warm path: Validate finds
// both, Ensure is skipped), of which the first is deleted by hand (caller "responder") the moment "Validate and
// record" has returned: before Contain starts, so Apply is given a group that no longer exists. faults are the
// scenario's injected errors.
func warmWithDeletedGroup(t *testing.T, faults []sim.ErrorFault) (*runner.Runner, *sim.Server, []byte) {
	t.Helper()
	sc := defaultScenario(t)
	sc.Faults = sim.Faults{Errors: faults}
	// Usable as they are (managed, no rule: a non-nil empty Egress, else the simulator adds the default one).
	managed := map[string]string{"ec2-isolation:managed": "true"}
	sc.SecurityGroups = append(sc.SecurityGroups,
		sim.SecurityGroup{ID: warmGroupA, VpcID: "vpc-0a11111111111111a", Name: "ec2-isolation-quarantine", Description: "isolation",
			Egress: []sim.Rule{}, Tags: managed},
		sim.SecurityGroup{ID: warmGroupB, VpcID: "vpc-0b22222222222222b", Name: "ec2-isolation-quarantine", Description: "isolation",
			Egress: []sim.Rule{}, Tags: managed})
	srv := simtest.Start(t, sc)

	// Retry waits pass 1,000 times faster; task timeouts stay the definition's (no run reaches them).
	opts := asl.Scaled(1000, time.Now)
	opts.WithTimeout = context.WithTimeout
	validate := runner.FunctionARN(srv.Region(), srv.AccountID(), "validate-and-record")
	deleted := false
	// OnEvent runs on the goroutine that records the event, before the engine moves on: the group is gone before
	// Contain starts, on every run.
	opts.OnEvent = func(ev asl.Event) {
		if ev.Type != asl.TaskSucceeded || ev.Resource != validate || deleted {
			return
		}
		deleted = true
		if _, err := ec2.NewFromConfig(srv.AWSConfig("responder")).DeleteSecurityGroup(context.Background(),
			&ec2.DeleteSecurityGroupInput{GroupId: aws.String(warmGroupA)}); err != nil {
			t.Errorf("delete %s: %v", warmGroupA, err)
		}
	}
	return isolationRunner(t, srv, sc, opts), srv, isolateEvent(t)
}

// containedOnFreshGroups checks every ENI of the instance is on exactly one group: its VPC's isolation group, a
// new one in the VPC whose group was deleted.
func containedOnFreshGroups(t *testing.T, srv *sim.Server) {
	t.Helper()
	c := ec2.NewFromConfig(srv.AWSConfig("responder"))
	out, err := c.DescribeNetworkInterfaces(context.Background(), &ec2.DescribeNetworkInterfacesInput{
		Filters: []ec2types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{timeoutInstance}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.NetworkInterfaces) != 3 {
		t.Fatalf("%d ENIs, want 3", len(out.NetworkInterfaces))
	}
	for _, n := range out.NetworkInterfaces {
		id := aws.ToString(n.NetworkInterfaceId)
		if len(n.Groups) != 1 || aws.ToString(n.Groups[0].GroupName) != "ec2-isolation-quarantine" {
			t.Errorf("%s is on %v, want only its VPC's isolation group", id, n.Groups)
			continue
		}
		g := aws.ToString(n.Groups[0].GroupId)
		switch vpc := aws.ToString(n.VpcId); {
		case g == warmGroupA:
			t.Errorf("%s is on the deleted group %s", id, g)
		case vpc == "vpc-0b22222222222222b" && g != warmGroupB:
			t.Errorf("%s is on %s, want the existing %s", id, g, warmGroupB)
		}
	}
}

// validateOutput is what "Validate and record" returned (its first success).
func validateOutput(e *asl.Execution) []byte {
	for _, ev := range e.History.Events() {
		if ev.Type == asl.TaskSucceeded && strings.HasSuffix(ev.Resource, "-validate-and-record") {
			return ev.Output
		}
	}
	return nil
}

func taskCount(e *asl.Execution, resource string) int {
	n := 0
	for _, ev := range e.History.Events() {
		if ev.Type == asl.TaskScheduled && ev.Resource == resource {
			n++
		}
	}
	return n
}

// Issue 12, case 4: on the warm path, an isolation group deleted between Validate and Apply no longer exhausts
// Apply's GroupNotVisible retrier: Apply raises GroupMissing at once, its Catch leads back to Ensure, which creates
// a new group, and Apply contains every ENI. One execution, SUCCEEDED, one success notification.
func TestWarmPathGroupDeletedBeforeApplyRecovers(t *testing.T) {
	r, srv, event := warmWithDeletedGroup(t, nil)
	e := r.Start(t.Context(), "group-deleted", event)
	if e.Status != asl.StatusSucceeded {
		t.Fatalf("execution %s %s %s, want SUCCEEDED", e.Status, e.Error, e.Cause)
	}
	if !strings.Contains(string(validateOutput(e)), `"groupsReady":true`) {
		t.Fatalf("Validate did not find both groups usable (not the warm path): %s", validateOutput(e))
	}
	containedOnFreshGroups(t, srv)
	arn := func(f string) string { return runner.FunctionARN(srv.Region(), srv.AccountID(), f) }
	if n := taskCount(e, arn("ensure-security-group")); n != 1 {
		t.Errorf("Ensure ran %d times, want once (after GroupMissing; the warm path skipped it before)", n)
	}
	if n := taskCount(e, arn("apply-security-group")); n != 2 {
		t.Errorf("Apply ran %d times, want twice (GroupMissing is not retried: it goes back to Ensure)", n)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 || !strings.Contains(msgs[0].Message, "SUCCEEDED") {
		t.Fatalf("notifications %d, want one success", len(msgs))
	}
}

// Issue 12, case 4: the same deletion, and Ensure refused once (UnauthorizedOperation) after it: the execution
// fails; its redrive resumes at Contain, where Apply's GroupMissing leads back to Ensure again, so the redrive
// recovers (before, it re-ran only Apply and failed the same way).
func TestRedriveAfterGroupDeletedRecovers(t *testing.T) {
	r, srv, event := warmWithDeletedGroup(t, []sim.ErrorFault{{Action: "CreateSecurityGroup", Caller: "ensure-security-group",
		Code: "UnauthorizedOperation", FirstCalls: 1}})
	e := r.Start(t.Context(), "group-deleted-redrive", event)
	if e.Status != asl.StatusFailed {
		t.Fatalf("execution %s %s %s, want FAILED (Ensure refused)", e.Status, e.Error, e.Cause)
	}
	if err := r.Redrive(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	if e.Status != asl.StatusSucceeded {
		t.Fatalf("redrive: %s %s %s, want SUCCEEDED", e.Status, e.Error, e.Cause)
	}
	containedOnFreshGroups(t, srv)
	msgs := srv.Messages()
	if len(msgs) != 2 || !strings.Contains(msgs[0].Message, "FAILED") || !strings.Contains(msgs[1].Message, "SUCCEEDED") {
		t.Errorf("%d notifications, want the failure then the success", len(msgs))
	}
}
