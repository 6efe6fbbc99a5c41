package runner_test

import (
	"context"
	"encoding/json"
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
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// openBeforeVerify runs the isolation of the default scenario's instance where, the moment "Verify containment" is
// scheduled (every branch done), a hand adds an inbound SSH rule to the isolation group of the instance's first VPC:
// the steps all succeeded, the instance is open. faults are injected errors.
func openBeforeVerify(t *testing.T, faults []sim.ErrorFault) (*asl.Execution, *sim.Server) {
	t.Helper()
	sc := defaultScenario(t)
	sc.Faults = sim.Faults{Errors: faults}
	srv := simtest.Start(t, sc)
	verify := runner.FunctionARN(srv.Region(), srv.AccountID(), "verify-containment")
	opened := false
	opts := asl.Scaled(1000, time.Now)
	opts.WithTimeout = context.WithTimeout
	opts.OnEvent = func(ev asl.Event) {
		if ev.Type != asl.TaskScheduled || ev.Resource != verify || opened {
			return
		}
		opened = true
		srv.Update(func(a *sim.Account) {
			g := a.SecurityGroupID("vpc-0a11111111111111a", "ec2-isolation-quarantine")
			if err := a.AddIngressRule(g, sim.Rule{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: "0.0.0.0/0"}); err != nil {
				t.Errorf("add a rule to %q: %v", g, err)
			}
		})
	}
	e := isolationRunner(t, srv, sc, opts).Start(t.Context(), "open-before-verify", isolateEvent(t))
	if !opened {
		t.Fatal("Verify containment never ran")
	}
	return e, srv
}

func notifyInput(t *testing.T, e *asl.Execution, state string) workflow.NotifyInput {
	t.Helper()
	var in workflow.NotifyInput
	for _, ev := range e.History.Events() {
		if ev.Type == asl.TaskScheduled && ev.State == state {
			if err := json.Unmarshal(ev.Input, &in); err != nil {
				t.Fatal(err)
			}
		}
	}
	return in
}

// Issue 12, case 2: the read-back is the last word. A rule added to the isolation group after Apply (every step
// succeeded) is found by Verify containment and revoked; the execution succeeds only then, and Notify success gets
// what the read-back saw (what was open), not only what the steps did.
func TestVerifyContainsAgainWhatIsOpenBeforeSuccess(t *testing.T) {
	e, srv := openBeforeVerify(t, nil)
	if e.Status != asl.StatusSucceeded {
		t.Fatalf("execution %s %s %s, want SUCCEEDED", e.Status, e.Error, e.Cause)
	}
	out, err := ec2.NewFromConfig(srv.AWSConfig("responder")).DescribeSecurityGroups(context.Background(), &ec2.DescribeSecurityGroupsInput{
		Filters: []ec2types.Filter{{Name: aws.String("group-name"), Values: []string{"ec2-isolation-quarantine"}}}})
	if err != nil || len(out.SecurityGroups) != 2 {
		t.Fatalf("isolation groups %v: %v", out, err)
	}
	for _, g := range out.SecurityGroups {
		if n := len(g.IpPermissions) + len(g.IpPermissionsEgress); n != 0 {
			t.Errorf("isolation group %s of %s has %d rules after a success", aws.ToString(g.GroupId), aws.ToString(g.VpcId), n)
		}
	}
	in := notifyInput(t, e, "Notify success")
	if in.Verify == nil || !in.Verify.Contained || len(in.Verify.Open) == 0 {
		t.Errorf("Notify success got verify %+v, want contained with what was open named", in.Verify)
	}
	if msgs := srv.Messages(); len(msgs) != 1 {
		t.Errorf("%d notifications, want one", len(msgs))
	}
}

// Issue 12, case 2: when what is open cannot be contained again (the rule cannot be revoked), the read-back fails
// the execution loudly: Verify containment's error goes through its Catch to a failure marker; the volumes are
// still snapshotted, the outcome recorded, and one failure notification names Verify containment.
func TestVerifyFailsLoudlyWhenItCannotContain(t *testing.T) {
	e, srv := openBeforeVerify(t, []sim.ErrorFault{{Action: "RevokeSecurityGroupIngress", Caller: "verify-containment",
		Code: "UnauthorizedOperation"}})
	if e.Status != asl.StatusFailed || e.Error != "IsolationFailed" {
		t.Fatalf("execution %s %s %s, want FAILED (at Notify failure)", e.Status, e.Error, e.Cause)
	}
	if failed := failedStates(e); len(failed) != 1 || failed[0] != "Verify containment" {
		t.Errorf("failed states %v, want [Verify containment]", failed)
	}
	ran := map[string]asl.RunStatus{}
	for _, r := range e.History.Summary() {
		ran[r.Name] = r.Status
	}
	for _, s := range []string{"Snapshot volumes", "Record outcome"} {
		if ran[s] != asl.RunSucceeded {
			t.Errorf("%s: %q, want it run after the failed read-back", s, ran[s])
		}
	}
	if _, ok := ran["Notify success"]; ok {
		t.Error("Notify success ran although the instance is open")
	}
	msgs := srv.Messages()
	if len(msgs) != 1 || !strings.Contains(msgs[0].Message, "Verify containment") || !strings.Contains(msgs[0].Message, "FAILED") {
		t.Errorf("%d notifications, want one failure naming Verify containment", len(msgs))
	}
}
