package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/google/go-cmp/cmp"

	"github.com/ec2-isolation/ec2-isolation/internal/asl"
	"github.com/ec2-isolation/ec2-isolation/internal/runner"
	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/snapshot"
)

// fingerprint is the account as the isolation leaves it, read through the SDK, with the ids the account makes
// up (new groups, associations, snapshots) replaced by what they stand for, so that two accounts that went
// through different histories compare equal when they ended in the same state: every security group with its
// rules, every ENI with its groups, every active profile association, and the number of snapshots per volume and
// execution.
func (e *env) fingerprint(ctx context.Context, t *testing.T) []string {
	t.Helper()
	var lines []string
	groups, err := e.reader.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{})
	if err != nil {
		t.Fatal(err)
	}
	name := map[string]string{}
	for _, g := range groups.SecurityGroups {
		name[aws.ToString(g.GroupId)] = aws.ToString(g.VpcId) + "/" + aws.ToString(g.GroupName)
	}
	rule := func(p types.IpPermission) string {
		var peers []string
		for _, r := range p.IpRanges {
			peers = append(peers, aws.ToString(r.CidrIp))
		}
		for _, r := range p.Ipv6Ranges {
			peers = append(peers, aws.ToString(r.CidrIpv6))
		}
		for _, r := range p.UserIdGroupPairs {
			peers = append(peers, name[aws.ToString(r.GroupId)])
		}
		slices.Sort(peers)
		return fmt.Sprintf("%s:%d-%d:%s", aws.ToString(p.IpProtocol), aws.ToInt32(p.FromPort), aws.ToInt32(p.ToPort), strings.Join(peers, ","))
	}
	for _, g := range groups.SecurityGroups {
		var in, out []string
		for _, p := range g.IpPermissions {
			in = append(in, rule(p))
		}
		for _, p := range g.IpPermissionsEgress {
			out = append(out, rule(p))
		}
		slices.Sort(in)
		slices.Sort(out)
		var tags []string
		for _, tag := range g.Tags {
			tags = append(tags, aws.ToString(tag.Key)+"="+aws.ToString(tag.Value))
		}
		slices.Sort(tags)
		lines = append(lines, fmt.Sprintf("group %s in %v out %v tags %v", name[aws.ToString(g.GroupId)], in, out, tags))
	}
	enis, err := e.reader.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range enis.NetworkInterfaces {
		var gs []string
		for _, g := range n.Groups {
			gs = append(gs, name[aws.ToString(g.GroupId)])
		}
		slices.Sort(gs)
		lines = append(lines, fmt.Sprintf("eni %s %v", aws.ToString(n.NetworkInterfaceId), gs))
	}
	as, err := e.reader.DescribeIamInstanceProfileAssociations(ctx, &ec2.DescribeIamInstanceProfileAssociationsInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as.IamInstanceProfileAssociations {
		if a.State != types.IamInstanceProfileAssociationStateDisassociated {
			lines = append(lines, fmt.Sprintf("profile of %s: %s (%s)", aws.ToString(a.InstanceId), aws.ToString(a.IamInstanceProfile.Arn), a.State))
		}
	}
	snaps, err := e.reader.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, s := range snaps.Snapshots {
		execution := ""
		for _, tag := range s.Tags {
			if aws.ToString(tag.Key) == snapshot.TagExecution {
				execution = aws.ToString(tag.Value)
			}
		}
		count[fmt.Sprintf("snapshots of %s by %s", aws.ToString(s.VolumeId), execution)]++
	}
	for k, n := range count {
		lines = append(lines, fmt.Sprintf("%s: %d", k, n))
	}
	slices.Sort(lines)
	return lines
}

// settled is the fleet scenario with association changes taking effect at once, so that a fingerprint taken
// right after an execution does not catch an association still "associating".
func settled(n int) (sim.Scenario, []fleetInstance) {
	sc, fi := fleet(n)
	sc.Behaviour.AssociationSettle = 0
	return sc, fi
}

// reference is the fingerprint of one clean execution named name for instance shape in mode.
func reference(t *testing.T, mode secgroup.Mode, shape int, name string) []string {
	t.Helper()
	var fp []string
	synctest.Test(t, func(t *testing.T) {
		sc, instances := settled(4)
		e := newEnv(t, sc, virtualOptions())
		ctx := context.Background()
		ex := e.runners[mode].Start(ctx, name, event(instances[shape].ID))
		if ex.Status != asl.StatusSucceeded {
			t.Fatalf("reference execution: %s %s %s", ex.Status, ex.Error, causeMessage(ex.Cause))
		}
		fp = e.fingerprint(ctx, t)
	})
	return fp
}

// TestEveryStepTwice runs an execution, then calls every one of its tasks again with the payload it had (as a
// retry: Ensure and Apply trust Validate's record only on their first run, to reach containment in two round
// trips; a second run with the very same payload would repeat their calls, to the same effect): no step
// makes a mutating call the second time (but Notify, which publishes again: at least once), and the account is the
// same afterwards.
func TestEveryStepTwice(t *testing.T) {
	for _, mode := range []secgroup.Mode{secgroup.ModeDirect, secgroup.ModeUntrackFirst} {
		t.Run(string(mode), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sc, instances := settled(4)
				e := newEnv(t, sc, virtualOptions())
				ctx := context.Background()
				r := e.runners[mode]
				ex := r.Start(ctx, "twice", event(instances[2].ID))
				if ex.Status != asl.StatusSucceeded {
					t.Fatalf("execution: %s %s %s", ex.Status, ex.Error, causeMessage(ex.Cause))
				}
				once := e.fingerprint(ctx, t)
				var tasks []asl.Event
				var states []string
				for _, ev := range ex.History.Events() {
					if ev.Type == asl.TaskScheduled {
						tasks = append(tasks, ev)
						states = append(states, ev.State)
					}
				}
				slices.Sort(states)
				want := []string{"Apply isolation security group", "Attach isolation profile", "Disassociate profile",
					"Ensure isolation security group", "Notify success", "Preserve evidence", "Queue instance settings", "Record outcome",
					"Record pre-isolation state", "Revoke credentials", "Snapshot volumes", "Validate and record",
					"Verify containment"}
				if diff := cmp.Diff(want, states); diff != "" {
					t.Fatalf("tasks of a successful isolation (-want +got):\n%s", diff)
				}
				// Issue 16: the evidence execution of the job the isolation queued runs its step twice too.
				evidence := r.Evidence("twice")
				if len(evidence) != 1 || evidence[0].Status != asl.StatusSucceeded {
					t.Fatalf("evidence executions %v, want one SUCCEEDED", evidence)
				}
				type rerun struct {
					r    *runner.Runner
					task asl.Event
				}
				var reruns []rerun
				for _, task := range tasks {
					reruns = append(reruns, rerun{r, task})
				}
				for _, ev := range evidence[0].History.Events() {
					if ev.Type == asl.TaskScheduled {
						reruns = append(reruns, rerun{r.EvidenceRunner(), ev})
					}
				}
				if n := len(reruns) - len(tasks); n != 1 {
					t.Errorf("%d tasks in the evidence execution, want 1 (Preserve evidence)", n)
				}
				for _, rr := range reruns {
					task := rr.task
					e.srv.ResetCalls()
					out, err := rr.r.Invoke(ctx, task.Resource, again(t, task))
					if err != nil {
						t.Errorf("%s again: %v", task.State, err)
					}
					var mutating []string
					for _, c := range e.srv.Calls() {
						if c.Mutating && c.Action != "Publish" {
							mutating = append(mutating, c.Service+":"+c.Action)
						}
					}
					if len(mutating) > 0 {
						t.Errorf("%s again made mutating calls %v", task.State, mutating)
					}
					if task.State == "Apply isolation security group" || task.State == "Snapshot volumes" || task.State == "Attach isolation profile" {
						var changed struct {
							Changed           *bool `json:"changed"`
							Created           *bool `json:"created"`
							NetworkInterfaces []struct {
								Changed bool `json:"changed"`
							} `json:"networkInterfaces"`
						}
						_ = json.Unmarshal(out, &changed)
						if (changed.Changed != nil && *changed.Changed) || (changed.Created != nil && *changed.Created) ||
							slices.ContainsFunc(changed.NetworkInterfaces, func(n struct {
								Changed bool `json:"changed"`
							}) bool {
								return n.Changed
							}) {
							t.Errorf("%s again reports a change: %s", task.State, out)
						}
					}
				}
				if diff := cmp.Diff(once, e.fingerprint(ctx, t)); diff != "" {
					t.Errorf("the account after every step ran twice (-once +twice):\n%s", diff)
				}
			})
		})
	}
}

// failAt makes one task fail with an error no retry fixes, in the middle of its work where it has several calls
// (one of the instance's three ENIs, the egress revoke of a group just created), so that the redrive finds the
// work half done.
var failAt = []struct {
	state  string
	faults []sim.ErrorFault
	// notified: the failure is notified (false only when the notification itself is what failed).
	notified bool
}{
	{"Validate and record", []sim.ErrorFault{{Action: "DescribeInstanceAttribute", Caller: "validate-and-record", Code: "UnauthorizedOperation", Count: 1}}, true},
	{"Ensure isolation security group", []sim.ErrorFault{{Action: "RevokeSecurityGroupEgress", Caller: "ensure-security-group", Code: "UnauthorizedOperation", Count: 1}}, true},
	{"Apply isolation security group", []sim.ErrorFault{{Action: "ModifyNetworkInterfaceAttribute", Caller: "apply-security-group", Code: "UnauthorizedOperation", Count: 1}}, true},
	{"Disassociate profile", []sim.ErrorFault{{Action: "DisassociateIamInstanceProfile", Caller: "disassociate-profile", Code: "UnauthorizedOperation", Count: 1}}, true},
	{"Attach isolation profile", []sim.ErrorFault{{Action: "AssociateIamInstanceProfile", Caller: "attach-isolation-profile", Code: "UnauthorizedOperation", Count: 1}}, true},
	{"Snapshot volumes", []sim.ErrorFault{{Action: "CreateSnapshots", Caller: "snapshot-volumes", Code: "UnauthorizedOperation", Count: 1}}, true},
	{"Notify success", []sim.ErrorFault{{Action: "Publish", Code: "AuthorizationError", Status: 403, Count: 1}}, true},
	// Validation fails and so does its notification: the execution fails at Notify failure, silently (the
	// ExecutionsFailed alarm is what tells); the redrive resumes at Validate and record.
	{"Notify failure", []sim.ErrorFault{
		{Action: "DescribeInstances", Caller: "validate-and-record", Code: "UnauthorizedOperation", Count: 1},
		{Action: "Publish", Code: "AuthorizationError", Status: 403, Count: 1},
	}, false},
}

// TestRedriveFromEveryState makes an execution fail at each state in turn (half-way through the state's work),
// then redrives it: the account ends exactly as after one clean execution.
func TestRedriveFromEveryState(t *testing.T) {
	t.Parallel()
	for _, mode := range []secgroup.Mode{secgroup.ModeDirect, secgroup.ModeUntrackFirst} {
		want := reference(t, mode, 2, "exec")
		for _, f := range failAt {
			t.Run(string(mode)+"/"+f.state, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					sc, instances := settled(4)
					sc.Faults.Errors = slices.Clone(f.faults)
					if mode == secgroup.ModeUntrackFirst && f.state == "Apply isolation security group" {
						// The three allow-all changes come first and a failure there is only a warning: fail them
						// and then one of the three isolation changes.
						sc.Faults.Errors[0].Count = 4
					}
					e := newEnv(t, sc, virtualOptions())
					ctx := context.Background()
					r := e.runners[mode]
					fi := instances[2]
					ex := r.Start(ctx, "exec", event(fi.ID))
					if ex.Status != asl.StatusFailed {
						t.Fatalf("execution %s, want FAILED", ex.Status)
					}
					if got := stateRun(ex, f.state); got.Status != asl.RunCaught && got.Status != asl.RunFailed {
						t.Fatalf("%s ended %s, want it failed; %s", f.state, got.Status, notifyRuns(ex))
					}
					notes := e.notified()[fi.ID]
					if f.notified && (notes == nil || len(notes.Failed) != 1) {
						t.Errorf("notifications %+v, want one failure", notes)
					}
					if err := r.Redrive(ctx, ex); err != nil {
						t.Fatal(err)
					}
					if ex.Status != asl.StatusSucceeded {
						t.Fatalf("redrive: %s %s %s", ex.Status, ex.Error, causeMessage(ex.Cause))
					}
					for _, u := range unnamedErrors(ex) {
						t.Errorf("a task failed with an unnamed error: %s", u)
					}
					if diff := cmp.Diff(want, e.fingerprint(ctx, t)); diff != "" {
						t.Errorf("account after the failure at %s and the redrive (-one clean run +failed then redriven):\n%s", f.state, diff)
					}
					if now := e.notified()[fi.ID]; now == nil || now.Succeeded != 1 {
						t.Errorf("notifications %+v, want one success after the redrive", now)
					}
				})
			})
		}
	}
}

// TestConcurrentExecutionsConverge starts several executions for the same instance at once (a responder tagging
// twice, an automation and a human), with and without faults: every execution ends isolated or failed and
// notified, a redrive of each failed one isolates, and the account ends as after one execution, but for each
// execution's own snapshot set.
func TestConcurrentExecutionsConverge(t *testing.T) {
	t.Parallel()
	const k = 6
	for _, mode := range []secgroup.Mode{secgroup.ModeDirect, secgroup.ModeUntrackFirst} {
		want := reference(t, mode, 2, "concurrent-0")
		for _, faults := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/faults=%v", mode, faults), func(t *testing.T) {
				t.Parallel()
				synctest.Test(t, func(t *testing.T) {
					sc, instances := settled(4)
					if faults {
						sc.Faults = soakFaults(uint64(len(mode)))
					}
					e := newEnv(t, sc, virtualOptions())
					ctx := context.Background()
					r := e.runners[mode]
					fi := instances[2]
					exs := make([]*asl.Execution, k)
					var wg sync.WaitGroup
					for i := range exs {
						wg.Go(func() { exs[i] = r.Start(ctx, fmt.Sprintf("concurrent-%d", i), event(fi.ID)) })
					}
					wg.Wait()
					failed := 0
					for _, ex := range exs {
						if ex.Status != asl.StatusSucceeded {
							failed++
							if ex.Error != "IsolationFailed" {
								t.Errorf("%s ended %s %s, not at Notify failure", ex.Name, ex.Status, ex.Error)
							}
						}
					}
					if notes := e.notified()[fi.ID]; notes == nil || notes.Succeeded != k-failed || len(notes.Failed) != failed {
						t.Errorf("%d failed executions, notifications %+v", failed, notes)
					}
					e.clearFaults()
					for _, ex := range exs {
						if ex.Status != asl.StatusSucceeded {
							if err := r.Redrive(ctx, ex); err != nil || ex.Status != asl.StatusSucceeded {
								t.Errorf("redrive of %s: %v %s %s", ex.Name, err, ex.Status, causeMessage(ex.Cause))
							}
						}
						for _, u := range unnamedErrors(ex) {
							t.Errorf("%s: a task failed with an unnamed error: %s", ex.Name, u)
						}
						if p := e.isolationProblems(ctx, fi, ex.Name); len(p) > 0 {
							t.Errorf("%s: %s", ex.Name, strings.Join(p, "; "))
						}
					}
					// One execution's fingerprint: drop the other executions' snapshot sets.
					got := slices.DeleteFunc(e.fingerprint(ctx, t), func(l string) bool {
						return strings.HasPrefix(l, "snapshots of ") && !strings.Contains(l, " by concurrent-0:")
					})
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("account after %d concurrent executions (-one execution +concurrent):\n%s", k, diff)
					}
				})
			})
		}
	}
}

// again is the task's payload as Step Functions would send it to run the task again: a retry ($$.State.RetryCount,
// which the steps that trust Validate's record on their first run read) or a redrive carry the same data.
func again(t *testing.T, task asl.Event) json.RawMessage {
	t.Helper()
	// The steps whose first run trusts Validate's record are told a rerun is one (Preserve evidence: issue 13
	// item 3).
	if task.State != "Ensure isolation security group" && task.State != "Apply isolation security group" &&
		task.State != "Preserve evidence" {
		return task.Input
	}
	var in map[string]any
	if err := json.Unmarshal(task.Input, &in); err != nil {
		t.Fatal(err)
	}
	in["attempt"] = 1
	out, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
