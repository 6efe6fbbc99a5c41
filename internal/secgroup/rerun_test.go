package secgroup_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// TestRetryReadsFirst: the first run trusts Validate's record (two round trips to containment); a retry or a
// redrive, whose record predates the first run's changes, reads the account first and changes nothing already
// done. In untrack-first mode a blind second run would put the ENIs back on the allow-all group for a moment.
func TestRetryReadsFirst(t *testing.T) {
	for _, mode := range []secgroup.Mode{secgroup.ModeDirect, secgroup.ModeUntrackFirst} {
		for _, again := range []workflow.Rerun{{Attempt: 1}, {RedriveCount: 1}} {
			t.Run(string(mode), func(t *testing.T) {
				ctx := context.Background()
				srv := start(t, scenario())
				rec := validated(t, srv, twoVPCs, mode)
				ensure, apply := newEnsure(t, srv, "ensure", mode), newApply(t, srv, "apply", mode)
				in := ensureWithRecord(rec)
				groups, err := ensure.Handle(ctx, in)
				if err != nil {
					t.Fatal(err)
				}
				applyIn := workflow.ApplyGroupsInput{InstanceID: rec.InstanceID, ExecutionName: "exec-1", Record: &rec, Ensured: &groups}
				if _, err := apply.Handle(ctx, applyIn); err != nil {
					t.Fatal(err)
				}
				isolated := newReader(t, srv).eniGroups(twoVPCs)

				srv.ResetCalls()
				in.Rerun, applyIn.Rerun = again, again
				groupsAgain, err := ensure.Handle(ctx, in)
				if err != nil {
					t.Fatalf("ensure again: %v", err)
				}
				applyIn.Ensured = &groupsAgain
				out, err := apply.Handle(ctx, applyIn)
				if err != nil {
					t.Fatalf("apply again: %v", err)
				}
				if m := mutating(srv); len(m) > 0 {
					t.Errorf("%+v: mutating calls %v", again, m)
				}
				if diff := cmp.Diff(groups.Groups, groupsAgain.Groups, cmpCreated); diff != "" {
					t.Errorf("groups again (-first +again):\n%s", diff)
				}
				for _, n := range out.NetworkInterfaces {
					if n.Changed {
						t.Errorf("%s reported changed again", n.ID)
					}
				}
				if diff := cmp.Diff(isolated, newReader(t, srv).eniGroups(twoVPCs)); diff != "" {
					t.Errorf("ENI groups (-after the first run +after again):\n%s", diff)
				}
			})
		}
	}
}

// cmpCreated ignores Created: the second run did not create what it found.
var cmpCreated = cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Created" }, cmp.Ignore())

// TestNewGroupRuleWhoseAnswerWasLost: EC2 added the allow-all group's inbound rules but the answer was lost; the
// SDK's retry gets InvalidPermission.Duplicate, which for a group this run just created means done (found by the
// fault soak, where it failed the step as an AWSError).
func TestNewGroupRuleWhoseAnswerWasLost(t *testing.T) {
	sc := scenario()
	sc.Faults.Errors = []sim.ErrorFault{{Action: "AuthorizeSecurityGroupIngress", Timeout: time.Millisecond, Applied: true, FirstCalls: 1}}
	srv := start(t, sc)
	rec := validated(t, srv, twoVPCs, secgroup.ModeUntrackFirst)
	out, err := newEnsure(t, srv, "ensure", secgroup.ModeUntrackFirst).Handle(context.Background(), ensureWithRecord(rec))
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	if n := calledAction(srv, "AuthorizeSecurityGroupIngress"); n < len(rec.VpcIDs)+1 {
		t.Fatalf("AuthorizeSecurityGroupIngress called %d times: the lost answer was not retried", n)
	}
	checkAllowAll(t, srv, rec.VpcIDs, out)
}
