package reconcile_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2-isolation/ec2-isolation/internal/reconcile"
	"github.com/ec2-isolation/ec2-isolation/internal/reconcile/simrun"
	"github.com/ec2-isolation/ec2-isolation/internal/runner"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// The scenario of `isolation simulate --reconcile` (cmd/isolation/scenarios/reconcile.json).
const (
	instTaggedEarly = "i-0a00000000000000a" // tagged before the stack was deployed: never had an event
	instLost        = "i-0b00000000000000b" // two ENIs in two VPCs, its event lost
	instRunning     = "i-0c00000000000000c" // an execution is running for it (the tests add it)
	instReleased    = "i-0d00000000000000d" // carries the release value, never isolated
	instUntagged    = "i-0e00000000000000e" // in vpc C, where no instance is tagged
	vpcA, vpcB      = "vpc-0a11111111111111a", "vpc-0b22222222222222b"
	vpcC            = "vpc-0c33333333333333c"
	sgWeb           = "sg-0a1b2c3d4e5f00001"
	quarantine      = "ec2-isolation-quarantine"
)

func scenario(t *testing.T) sim.Scenario {
	t.Helper()
	sc, err := sim.LoadScenario("../../cmd/isolation/scenarios/reconcile.json")
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func start(t *testing.T, sc sim.Scenario, env map[string]string) *simrun.Harness {
	t.Helper()
	h, err := simrun.Start(sc, env, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// runningEvent adds the execution EventBridge started for instRunning moments ago (a UUID name), still at work.
func runningEvent(h *simrun.Harness, id string) string {
	ev := workflow.TagEvent{Version: "0", ID: "1", DetailType: "Tag Change on Resource", Source: "aws.tag",
		Account: h.Srv.AccountID(), Region: h.Srv.Region(), Resources: []string{"arn:aws:ec2:us-east-1:123456789012:instance/" + id},
		Detail: workflow.TagDetail{ChangedTagKeys: []string{"Isolate"}, Service: "ec2", ResourceType: "instance", Tags: map[string]string{"Isolate": "true"}}}
	b, _ := json.Marshal(ev)
	return h.Srv.AddExecution(runner.StateMachineName, "8d2f5c2e-0b7a-4f0e-9f61-"+id[len(id)-12:], string(b))
}

// contained reads the instance back through the SDK: every ENI on only its VPC's quarantine group, which has
// no rule, and the quarantine profile its only association.
func contained(t *testing.T, h *simrun.Harness, id string) (bool, string) {
	t.Helper()
	ctx := context.Background()
	c := ec2.NewFromConfig(h.Srv.AWSConfig("check"))
	out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	inst := out.Reservations[0].Instances[0]
	for _, n := range inst.NetworkInterfaces {
		if len(n.Groups) != 1 || aws.ToString(n.Groups[0].GroupName) != quarantine {
			return false, fmt.Sprintf("%s carries %v", aws.ToString(n.NetworkInterfaceId), groupNames(n.Groups))
		}
		sg, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{aws.ToString(n.Groups[0].GroupId)}})
		if err != nil {
			t.Fatal(err)
		}
		if g := sg.SecurityGroups[0]; len(g.IpPermissions)+len(g.IpPermissionsEgress) > 0 || aws.ToString(g.VpcId) != aws.ToString(n.VpcId) {
			return false, fmt.Sprintf("group %s of %s has rules or is of another VPC", aws.ToString(g.GroupId), aws.ToString(n.NetworkInterfaceId))
		}
	}
	as, err := c.DescribeIamInstanceProfileAssociations(ctx, &ec2.DescribeIamInstanceProfileAssociationsInput{
		Filters: []ec2types.Filter{{Name: aws.String("instance-id"), Values: []string{id}}}})
	if err != nil {
		t.Fatal(err)
	}
	var profiles []string
	for _, a := range as.IamInstanceProfileAssociations {
		if a.State != ec2types.IamInstanceProfileAssociationStateDisassociated {
			profiles = append(profiles, aws.ToString(a.IamInstanceProfile.Arn))
		}
	}
	if len(profiles) != 1 || !strings.HasSuffix(profiles[0], "/"+quarantine) {
		return false, fmt.Sprintf("profiles %v", profiles)
	}
	return true, ""
}

func groupNames(gs []ec2types.GroupIdentifier) []string {
	var out []string
	for _, g := range gs {
		out = append(out, aws.ToString(g.GroupName))
	}
	return out
}

func find(rep reconcile.Report, id string) reconcile.Instance {
	for _, i := range rep.Instances {
		if i.ID == id {
			return i
		}
	}
	return reconcile.Instance{}
}

func started(h *simrun.Harness) []string {
	var out []string
	for _, c := range h.Srv.Calls() {
		if c.Service == "states" && c.Action == "StartExecution" && c.ErrorCode == "" {
			out = append(out, c.Params.Get("name"))
		}
	}
	return out
}

// A lost event and an instance tagged before the stack existed: the pass finds them open (no isolation artifact)
// and starts the isolation for each, with an input that says why; the notification says "the tag event was not
// seen"; at the end both are contained. The instance with an execution running gets no second one, and a second
// pass starts nothing.
func TestLostEventsAreIsolated(t *testing.T) {
	h := start(t, scenario(t), nil)
	running := runningEvent(h, instRunning)
	ctx := context.Background()
	rep, err := h.Pass(ctx, "2026-12-05T10:00:00Z")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Tagged != 4 || rep.Open != 3 || rep.LostEvents != 3 || rep.Drift != 0 || rep.Started != 2 || rep.Running != 1 {
		t.Errorf("pass 1: tagged %d open %d lost %d drift %d started %d running %d, want 4 3 3 0 2 1", rep.Tagged, rep.Open,
			rep.LostEvents, rep.Drift, rep.Started, rep.Running)
	}
	want := []string{"reconcile-" + instTaggedEarly + "-20261205T1000Z", "reconcile-" + instLost + "-20261205T1000Z"}
	if got := started(h); !slices.Equal(got, want) {
		t.Errorf("started %v, want %v", got, want)
	}
	for _, id := range []string{instTaggedEarly, instLost} {
		if a := find(rep, id).Action; a != "started reconcile-"+id+"-20261205T1000Z" {
			t.Errorf("%s: action %q, want the execution started named", id, a)
		}
	}
	if a := find(rep, instRunning).Action; !strings.Contains(a, "running 8d2f5c2e") {
		t.Errorf("%s: action %q, want the running execution named", instRunning, a)
	}
	for _, id := range []string{instTaggedEarly, instLost} {
		e := h.Execution("reconcile-" + id + "-20261205T1000Z")
		if e == nil || e.Status != "SUCCEEDED" {
			t.Fatalf("%s: execution %+v, want SUCCEEDED", id, e)
		}
		if ok, open := contained(t, h, id); !ok {
			t.Errorf("%s is not contained after the pass: %s", id, open)
		}
	}
	var seen int
	for _, m := range h.Srv.Messages() {
		if strings.Contains(m.Message, "the tag event was not seen") {
			seen++
		}
	}
	if seen != 2 {
		t.Errorf("%d notifications say the tag event was not seen, want 2", seen)
	}

	// The running execution ends (it isolated nothing here); the next pass starts it for instRunning, and
	// nothing for the two contained instances.
	h.Srv.FinishExecution(running, "FAILED")
	h.Srv.ResetCalls()
	rep, err = h.Pass(ctx, "2026-12-05T10:05:00Z")
	if err != nil {
		t.Fatal(err)
	}
	if got := started(h); !slices.Equal(got, []string{"reconcile-" + instRunning + "-20261205T1005Z"}) || rep.Contained != 2 {
		t.Errorf("pass 2 started %v with %d contained, want only %s's and 2 contained", got, rep.Contained, instRunning)
	}
	if ok, open := contained(t, h, instRunning); !ok {
		t.Errorf("%s is not contained after pass 2: %s", instRunning, open)
	}
	h.Srv.ResetCalls()
	if rep, err = h.Pass(ctx, "2026-12-05T10:10:00Z"); err != nil || rep.Contained != 3 || rep.Open != 0 || len(started(h)) != 0 {
		t.Errorf("pass 3: %+v %v, want 3 contained, none open, nothing started", rep, err)
	}
}

// Drift: a responder's colleague puts the web group back on an isolated ENI by hand. The next pass finds it
// open with isolation artifacts left (drift), starts the isolation again, and the instance ends contained; the
// notification says the isolation was undone by hand.
func TestDriftIsUndone(t *testing.T) {
	h := start(t, scenario(t), nil)
	ctx := context.Background()
	if _, err := h.Pass(ctx, "2026-12-05T10:00:00Z"); err != nil {
		t.Fatal(err)
	}
	if ok, open := contained(t, h, instLost); !ok {
		t.Fatalf("not contained after pass 1: %s", open)
	}
	hand := ec2.NewFromConfig(h.Srv.AWSConfig("hand"))
	if _, err := hand.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: aws.String("eni-0b0000000000000b1"), Groups: []string{sgWeb}}); err != nil {
		t.Fatal(err)
	}
	if ok, _ := contained(t, h, instLost); ok {
		t.Fatal("the hand change did not open the instance")
	}
	msgs := len(h.Srv.Messages())
	rep, err := h.Pass(ctx, "2026-12-05T10:05:00Z")
	if err != nil {
		t.Fatal(err)
	}
	got := find(rep, instLost)
	if rep.Drift != 1 || rep.Started != 1 || !got.Isolated || len(got.Open) == 0 || !strings.Contains(got.Open[0], "eni-0b0000000000000b1 carries "+sgWeb) {
		t.Errorf("pass 2: drift %d started %d, instance %+v; want drift 1, started 1, the ENI named open", rep.Drift, rep.Started, got)
	}
	if ok, open := contained(t, h, instLost); !ok {
		t.Errorf("not contained after pass 2: %s", open)
	}
	var drift bool
	for _, m := range h.Srv.Messages()[msgs:] {
		drift = drift || strings.Contains(m.Message, "isolation was undone by hand: drift")
	}
	if !drift {
		t.Error("no notification says the isolation was undone by hand")
	}
}

// A release whose event was lost: the instance carries the release value and is still isolated under an open
// incident. The pass starts the release, which restores its groups and profile; the next pass starts nothing.
// instReleased carries the release value but was never isolated: nothing is started for it.
func TestLostReleaseEventIsReleased(t *testing.T) {
	h := start(t, scenario(t), nil)
	ctx := context.Background()
	if _, err := h.Pass(ctx, "2026-12-05T10:00:00Z"); err != nil {
		t.Fatal(err)
	}
	hand := ec2.NewFromConfig(h.Srv.AWSConfig("responder"))
	if _, err := hand.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{instTaggedEarly},
		Tags: []ec2types.Tag{{Key: aws.String("Isolate"), Value: aws.String("release")}}}); err != nil {
		t.Fatal(err)
	}
	h.Srv.ResetCalls()
	msgs := len(h.Srv.Messages())
	rep, err := h.Pass(ctx, "2026-12-05T10:05:00Z")
	if err != nil {
		t.Fatal(err)
	}
	// The release's notification says the reconciler started it, and why (email and chat alike).
	if got := h.Srv.Messages()[msgs:]; len(got) != 1 {
		t.Errorf("pass 2 published %d notifications, want the release's", len(got))
	} else {
		var bodies map[string]string
		if err := json.Unmarshal([]byte(got[0].Message), &bodies); err != nil {
			t.Fatal(err)
		}
		why := "the instance carries the release tag value but was still isolated under an open incident (reconciler pass 20261205T1005Z)"
		if e := bodies["email"]; !strings.Contains(e, "Started by: the reconciler, not the tag event: the release tag event was not seen") || !strings.Contains(e, why) {
			t.Errorf("the release's email does not say the reconciler started it, and why:\n%s", e)
		}
		if c := bodies["default"]; !strings.Contains(c, "Started by the reconciler:") || !strings.Contains(c, "still isolated under an open incident") {
			t.Errorf("the release's chat notification does not say the reconciler started it, and why:\n%s", c)
		}
	}
	name := "reconcile-" + instTaggedEarly + "-20261205T1005Z"
	if got := started(h); rep.ReleasePending != 1 || !slices.Equal(got, []string{name}) {
		t.Fatalf("pass 2: %d releases pending, started %v; want 1 and %s", rep.ReleasePending, got, name)
	}
	if e := h.Execution(name); e == nil || e.Status != "SUCCEEDED" || !strings.Contains(e.ID, ":"+runner.ReleaseStateMachineName+":") {
		t.Fatalf("release execution %+v, want a SUCCEEDED execution of the release machine", e)
	}
	out, err := hand.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{instTaggedEarly}})
	if err != nil {
		t.Fatal(err)
	}
	if g := out.Reservations[0].Instances[0].NetworkInterfaces[0].Groups; len(g) != 1 || aws.ToString(g[0].GroupId) != sgWeb {
		t.Errorf("after the release the ENI carries %v, want only %s", groupNames(g), sgWeb)
	}
	if p := out.Reservations[0].Instances[0].IamInstanceProfile; p == nil || !strings.HasSuffix(aws.ToString(p.Arn), "/web-app") {
		t.Errorf("after the release the profile is %v, want web-app", p)
	}
	if a := find(rep, instReleased).Action; a != "" {
		t.Errorf("%s (release value, never isolated): action %q, want none", instReleased, a)
	}
	h.Srv.ResetCalls()
	if rep, err = h.Pass(ctx, "2026-12-05T10:10:00Z"); err != nil || rep.ReleasePending != 0 || len(started(h)) != 0 {
		t.Errorf("pass 3: %d releases pending, started %v (%v), want none", rep.ReleasePending, started(h), err)
	}
}

// Idempotent and paced: a pass invoked twice for the same schedule (a retried invocation) starts nothing twice;
// with as many executions running as RECONCILE_MAX_RUNNING, a pass starts none and says they are deferred.
func TestRetriedPassAndStormDeferral(t *testing.T) {
	h := start(t, scenario(t), map[string]string{reconcile.EnvMaxRunning: "2"})
	ctx := context.Background()
	runningEvent(h, instRunning)
	h.Srv.AddExecution(runner.StateMachineName, "storm-1", "{}")
	rep, err := h.Pass(ctx, "2026-12-05T10:00:00Z")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Started != 0 || rep.Deferred != 3 || rep.Running != 2 || len(started(h)) != 0 {
		t.Errorf("storm: started %d deferred %d running %d, want 0 3 2", rep.Started, rep.Deferred, rep.Running)
	}
	for _, c := range h.Srv.Calls() {
		if c.Action == "DescribeExecution" {
			t.Errorf("a pass that starts nothing described execution %s", c.Params.Get("executionArn"))
		}
	}

	h2 := start(t, scenario(t), nil)
	first, err := h2.Pass(ctx, "2026-12-05T10:00:00Z")
	if err != nil {
		t.Fatal(err)
	}
	before := len(h2.Srv.Executions())
	again, err := h2.Pass(ctx, "2026-12-05T10:00:00Z")
	if err != nil {
		t.Fatal(err)
	}
	if first.Started != 3 || again.Started != 0 || len(h2.Srv.Executions()) != before {
		t.Errorf("first %d started, the retry %d and %d executions (was %d); want 3, 0, unchanged", first.Started, again.Started,
			len(h2.Srv.Executions()), before)
	}
}

// Isolation groups ready before they are needed: a pass creates an empty managed isolation group in every VPC
// that has instances (vpc C has only an untagged one), and a group found with a rule is emptied and reported.
func TestIsolationGroupsKeptReady(t *testing.T) {
	sc := scenario(t)
	sc.Instances = slices.DeleteFunc(sc.Instances, func(i sim.Instance) bool { return i.Tags["Isolate"] != "" })
	sc.SecurityGroups = append(sc.SecurityGroups, sim.SecurityGroup{ID: "sg-0a1b2c3d4e5f0abcd", VpcID: vpcC, Name: quarantine,
		Description: "quarantine", Ingress: []sim.Rule{{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: "0.0.0.0/0"}},
		Tags: map[string]string{"ec2-isolation:managed": "true", "ec2-isolation:role": "isolation"}})
	h := start(t, sc, nil)
	ctx := context.Background()
	rep, err := h.Pass(ctx, "2026-12-05T10:00:00Z")
	if err != nil {
		t.Fatal(err)
	}
	if rep.GroupsCreated != 0 || rep.GroupsEmptied != 1 {
		t.Errorf("created %d emptied %d, want 0 and 1 (only vpc C has instances)", rep.GroupsCreated, rep.GroupsEmptied)
	}
	c := ec2.NewFromConfig(h.Srv.AWSConfig("check"))
	out, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		{Name: aws.String("group-name"), Values: []string{quarantine}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.SecurityGroups) != 1 || len(out.SecurityGroups[0].IpPermissions)+len(out.SecurityGroups[0].IpPermissionsEgress) != 0 {
		t.Errorf("quarantine groups %+v, want one, in vpc C, empty", out.SecurityGroups)
	}

	// With the tagged instances back: vpc A and B get their group before any execution needs one.
	h = start(t, scenario(t), map[string]string{reconcile.EnvMaxStarts: "0"})
	if rep, err = h.Pass(ctx, "2026-12-05T10:00:00Z"); err != nil {
		t.Fatal(err)
	}
	if rep.GroupsCreated != 3 || rep.Started != 0 {
		t.Errorf("created %d groups, started %d; want 3 (vpc A, B, C) and 0", rep.GroupsCreated, rep.Started)
	}
	c = ec2.NewFromConfig(h.Srv.AWSConfig("check"))
	for _, vpc := range []string{vpcA, vpcB, vpcC} {
		out, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
			{Name: aws.String("group-name"), Values: []string{quarantine}}, {Name: aws.String("vpc-id"), Values: []string{vpc}}}})
		if err != nil || len(out.SecurityGroups) != 1 || len(out.SecurityGroups[0].IpPermissionsEgress) != 0 {
			t.Errorf("%s: %+v %v, want one quarantine group without egress", vpc, out, err)
		}
	}
}

// An isolation that fails for good (the profile calls are denied) is notified once with how to redrive it: the next
// passes hold the instance back instead of starting (and notifying) a new failing execution every few minutes,
// until RetryFailedAfter has passed.
func TestFailedIsolationIsNotRestartedEveryPass(t *testing.T) {
	sc := scenario(t)
	sc.Faults.Errors = []sim.ErrorFault{{Action: "DisassociateIamInstanceProfile", Code: "UnauthorizedOperation", Status: 403},
		{Action: "ReplaceIamInstanceProfileAssociation", Code: "UnauthorizedOperation", Status: 403}}
	sc.Instances = sc.Instances[:1]
	h := start(t, sc, nil)
	ctx := context.Background()
	now := time.Now().UTC()
	rep, err := h.Pass(ctx, now.Format(time.RFC3339))
	if err != nil || rep.Started != 1 {
		t.Fatalf("pass 1: %+v %v, want 1 started", rep, err)
	}
	if e := h.Execution(strings.TrimPrefix(find(rep, instTaggedEarly).Action, "started ")); e == nil || e.Status != "FAILED" {
		t.Fatalf("the execution %+v, want FAILED (the profile calls denied)", e)
	}
	msgs := len(h.Srv.Messages())
	rep, err = h.Pass(ctx, now.Add(5*time.Minute).Format(time.RFC3339))
	if err != nil || rep.Started != 0 || rep.Deferred != 1 || !strings.HasPrefix(find(rep, instTaggedEarly).Action, "held back: its last isolation reconcile-") {
		t.Errorf("pass 2: %+v %v, want the instance held back", rep, err)
	}
	if n := len(h.Srv.Messages()); n != msgs {
		t.Errorf("pass 2 published %d notifications, want none", n-msgs)
	}
	if rep, err = h.Pass(ctx, now.Add(reconcile.RetryFailedAfter+time.Minute).Format(time.RFC3339)); err != nil || rep.Started != 1 {
		t.Errorf("after RetryFailedAfter: %+v %v, want a new execution started", rep, err)
	}
}
