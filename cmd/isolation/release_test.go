package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/go-cmp/cmp"

	ec2isolation "github.com/ec2-isolation/ec2-isolation"
	"github.com/ec2-isolation/ec2-isolation/internal/asl"
	"github.com/ec2-isolation/ec2-isolation/internal/inspect"
	"github.com/ec2-isolation/ec2-isolation/internal/runner"
	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/stackenv"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// TestIsolateThenRelease isolates the release scenario's instance (three ENIs in two VPCs, a profile whose role
// has an inline and an attached policy, an Auto Scaling group, two target groups, one registration on two ports),
// then releases it, and reads the account back through the APIs after each.
func TestIsolateThenRelease(t *testing.T) {
	ctx := context.Background()
	sc, err := loadScenario("release")
	if err != nil {
		t.Fatal(err)
	}
	clock := sim.NewScaledClock(20)
	srv, err := sim.Start(sc, sim.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	env := stackenv.ForSim(sc, srv.Region(), srv.AccountID(), nil)
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	isolation, err := simRunner(srv, clock, env, log, ec2isolation.Definition, runner.StateMachineName, nil)
	if err != nil {
		t.Fatal(err)
	}
	release, err := simRunner(srv, clock, env, log, ec2isolation.ReleaseDefinition, runner.ReleaseStateMachineName, nil)
	if err != nil {
		t.Fatal(err)
	}
	isolateEvent, err := ec2isolation.Events.ReadFile("events/isolate.json")
	if err != nil {
		t.Fatal(err)
	}
	id := eventInstanceID(isolateEvent)
	instanceARN := "arn:aws:ec2:" + srv.Region() + ":" + srv.AccountID() + ":instance/" + id
	clients := restorableClients(srv)
	cfg := srv.AWSConfig("test")
	asg := autoscaling.NewFromConfig(cfg)

	before, err := inspect.ReadRestorable(ctx, clients, id, "")
	if err != nil {
		t.Fatal(err)
	}
	if before.Role == nil || before.AutoScalingGroup == "" || len(before.Targets) < 2 || len(before.Groups) != 3 {
		t.Fatalf("the scenario lost what this test is about: %+v", before)
	}
	desiredBefore := desiredCapacity(ctx, t, asg, before.AutoScalingGroup)

	iso := isolation.Start(ctx, "isolate-1", isolateEvent)
	if iso.Status != asl.StatusSucceeded {
		t.Fatalf("isolation: %s %s %s", iso.Status, iso.Error, iso.Cause)
	}
	isolated, err := inspect.ReadRestorable(ctx, clients, id, before.Profile)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("isolated", func(t *testing.T) {
		groupNames := groupNames(ctx, t, ec2.NewFromConfig(cfg), isolated.Groups)
		for eni, names := range groupNames {
			if !slices.Equal(names, []string{env["ISOLATION_GROUP_NAME"]}) {
				t.Errorf("%s carries %v, want only the isolation group", eni, names)
			}
		}
		if !strings.HasSuffix(isolated.Profile, "/"+env["ISOLATION_PROFILE_NAME"]) {
			t.Errorf("profile %q, want the isolation profile", isolated.Profile)
		}
		want := inspect.Restorable{
			Groups: isolated.Groups, Profile: isolated.Profile, TerminationProtection: true, ShutdownBehavior: "stop",
			DeleteOnTermination: map[string]bool{}, Targets: nil,
		}
		for v := range before.DeleteOnTermination {
			want.DeleteOnTermination[v] = false
		}
		got := isolated
		got.Role = nil
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("isolated instance (-want +got):\n%s", diff)
		}
		if got := desiredCapacity(ctx, t, asg, before.AutoScalingGroup); got != desiredBefore {
			t.Errorf("desired capacity of %s is %d after the detach, want %d (not decremented)", before.AutoScalingGroup, got, desiredBefore)
		}
		// The role keeps everything it had, plus the revoking policy.
		revoke := "ec2-isolation-revoke-" + id
		doc, ok := isolated.Role.Inline[revoke]
		if !ok {
			t.Fatalf("role %s has no inline policy %s: %v", isolated.Role.Name, revoke, isolated.Role.Inline)
		}
		checkRevokingPolicy(t, doc, instanceARN)
		wantRole := *before.Role
		wantRole.Inline = map[string]string{revoke: doc}
		for k, v := range before.Role.Inline {
			wantRole.Inline[k] = v
		}
		if diff := cmp.Diff(&wantRole, isolated.Role); diff != "" {
			t.Errorf("role after isolation (-want +got):\n%s", diff)
		}
	})

	releaseEvent, err := withTagValue(isolateEvent, env["TAG_KEY"], env["RELEASE_TAG_VALUE"])
	if err != nil {
		t.Fatal(err)
	}
	applyTagChange(ctx, srv, releaseEvent) // the responder's release tag
	rel := release.Start(ctx, "release-1", releaseEvent)
	if rel.Status != asl.StatusSucceeded {
		t.Fatalf("release: %s %s %s", rel.Status, rel.Error, rel.Cause)
	}
	after, err := inspect.ReadRestorable(ctx, clients, id, before.Profile)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, withoutReleasedPolicy(t, after)); diff != "" {
		t.Errorf("after release, attributes differ from before isolation (-before +after):\n%s", diff)
	}

	t.Run("snapshots remain", func(t *testing.T) {
		var state struct {
			Snapshot workflow.SnapshotOutput `json:"snapshot"`
		}
		if err := json.Unmarshal(stateOutput(t, iso, "Snapshot volumes"), &state); err != nil {
			t.Fatal(err)
		}
		snaps := state.Snapshot
		if len(snaps.Snapshots) != len(before.DeleteOnTermination) {
			t.Fatalf("isolation took %d snapshots, want one per volume (%d)", len(snaps.Snapshots), len(before.DeleteOnTermination))
		}
		var ids []string
		for _, s := range snaps.Snapshots {
			ids = append(ids, s.SnapshotID)
		}
		out, err := ec2.NewFromConfig(cfg).DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: ids})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Snapshots) != len(ids) {
			t.Errorf("after release %d of the snapshots %v exist", len(out.Snapshots), ids)
		}
	})

	t.Run("record holds both executions", func(t *testing.T) {
		key := workflow.IncidentKey(srv.AccountID(), srv.Region(), id)
		obj, err := s3.NewFromConfig(cfg).GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(env["INCIDENT_BUCKET"]), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		defer obj.Body.Close()
		var file workflow.IncidentFile
		if err := json.NewDecoder(obj.Body).Decode(&file); err != nil {
			t.Fatal(err)
		}
		if len(file.Incidents) != 1 {
			t.Fatalf("%d incidents, want 1", len(file.Incidents))
		}
		inc := file.Incidents[0]
		var got [][2]string
		for _, e := range inc.Executions {
			got = append(got, [2]string{e.Workflow + " " + e.ExecutionName, e.Outcome})
		}
		want := [][2]string{{"isolation isolate-1", workflow.OutcomeSucceeded}, {"release release-1", workflow.OutcomeSucceeded}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("executions in the record (-want +got):\n%s", diff)
		}
		if inc.ReleasedAt == nil {
			t.Error("the incident is not closed")
		}
		pre := map[string][]string{}
		for _, n := range inc.PreIsolation.Record.NetworkInterfaces {
			pre[n.ID] = slices.Sorted(slices.Values(n.Groups))
		}
		if diff := cmp.Diff(before.Groups, pre); diff != "" {
			t.Errorf("recorded pre-isolation groups (-account +record):\n%s", diff)
		}
		if len(inc.Snapshots) != len(before.DeleteOnTermination) || len(inc.Changes) == 0 {
			t.Errorf("record has %d snapshots and %d changes", len(inc.Snapshots), len(inc.Changes))
		}
	})
}

// checkRevokingPolicy parses the revoking policy: deny everything to requests signed with the credentials of
// instanceARN (the documented ec2:SourceInstanceARN pattern).
func checkRevokingPolicy(t *testing.T, doc, instanceARN string) {
	t.Helper()
	var p struct {
		Version   string
		Statement []struct {
			Effect    string
			Action    any
			Resource  any
			Condition map[string]map[string]any
		}
	}
	if err := json.Unmarshal([]byte(doc), &p); err != nil {
		t.Fatalf("revoking policy is not JSON: %v\n%s", err, doc)
	}
	if p.Version != "2012-10-17" || len(p.Statement) != 1 {
		t.Fatalf("revoking policy: version %q, %d statements", p.Version, len(p.Statement))
	}
	s := p.Statement[0]
	got := []any{s.Effect, s.Action, s.Resource, s.Condition}
	want := []any{"Deny", "*", "*", map[string]map[string]any{"StringEquals": {"ec2:SourceInstanceARN": instanceARN}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("revoking statement [effect action resource condition] (-want +got):\n%s", diff)
	}
}

func desiredCapacity(ctx context.Context, t *testing.T, c *autoscaling.Client, name string) int32 {
	t.Helper()
	out, err := c.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{name}})
	if err != nil || len(out.AutoScalingGroups) != 1 {
		t.Fatalf("describe %s: %v", name, err)
	}
	return aws.ToInt32(out.AutoScalingGroups[0].DesiredCapacity)
}

func groupNames(ctx context.Context, t *testing.T, c *ec2.Client, groups map[string][]string) map[string][]string {
	t.Helper()
	names := map[string][]string{}
	for eni, ids := range groups {
		out, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: ids})
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range out.SecurityGroups {
			names[eni] = append(names[eni], aws.ToString(g.GroupName))
		}
	}
	return names
}

func stateOutput(t *testing.T, e *asl.Execution, state string) json.RawMessage {
	t.Helper()
	for _, s := range e.History.Summary() {
		if s.Name == state {
			return s.Output
		}
	}
	t.Fatalf("execution %s never ran %q", e.Name, state)
	return nil
}
