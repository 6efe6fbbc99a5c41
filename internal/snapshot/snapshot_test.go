package snapshot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/google/go-cmp/cmp"

	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/simtest"
	"github.com/ec2-isolation/ec2-isolation/internal/snapshot"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

const instanceID = "i-0123456789abcdef0"

var (
	ctx   = context.Background()
	input = workflow.InstanceInput{InstanceID: instanceID, ExecutionName: "exec-1", Reason: "tag Isolate=true"}
)

func scenario(volumes ...sim.Volume) sim.Scenario {
	return sim.Scenario{
		VPCs:      []sim.VPC{{ID: "vpc-0aaa0000000000001", CIDR: "10.0.0.0/16"}},
		Subnets:   []sim.Subnet{{ID: "subnet-0aaa000000000001", VpcID: "vpc-0aaa0000000000001", CIDR: "10.0.1.0/24"}},
		Instances: []sim.Instance{{ID: instanceID, SubnetID: "subnet-0aaa000000000001", Volumes: volumes}},
	}
}

var threeVolumes = []sim.Volume{
	{ID: "vol-00000000000000001", DeviceName: "/dev/xvda", DeleteOnTermination: true},
	{ID: "vol-00000000000000002", DeviceName: "/dev/sdf", Tags: map[string]string{"Team": "payments"}},
	{ID: "vol-00000000000000003", DeviceName: "/dev/sdg"},
}

func start(t *testing.T, sc sim.Scenario) (*sim.Server, *ec2.Client, *snapshot.Handler) {
	t.Helper()
	srv := simtest.Start(t, sc)
	return srv, newClient(t, srv, "test"), snapshot.New(newClient(t, srv, "snapshot-volumes"), nil)
}

func count(srv *sim.Server, action string) int {
	n := 0
	for _, c := range srv.Calls() {
		if c.Action == action && c.ErrorCode == "" {
			n++
		}
	}
	return n
}

// described reads the snapshots back through the SDK.
func described(t *testing.T, client *ec2.Client, ids []string) []types.Snapshot {
	t.Helper()
	if len(ids) == 0 {
		return nil
	}
	out, err := client.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: ids, OwnerIds: []string{"self"}})
	if err != nil {
		t.Fatalf("describe snapshots: %v", err)
	}
	return out.Snapshots
}

func tagMap(tags []types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func ids(s []workflow.Snapshot) []string {
	var out []string
	for _, x := range s {
		out = append(out, x.SnapshotID)
	}
	return out
}

func TestSnapshotsEveryVolumeOnce(t *testing.T) {
	srv, client, h := start(t, scenario(threeVolumes...))
	out, err := h.Handle(ctx, input)
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	if !out.Created {
		t.Error("Created = false on the first run")
	}
	var volumes []string
	for _, s := range out.Snapshots {
		volumes = append(volumes, s.VolumeID)
	}
	if diff := cmp.Diff([]string{"vol-00000000000000001", "vol-00000000000000002", "vol-00000000000000003"}, volumes); diff != "" {
		t.Errorf("snapshotted volumes (-want +got):\n%s", diff)
	}

	snaps := described(t, client, ids(out.Snapshots))
	if len(snaps) != 3 {
		t.Fatalf("DescribeSnapshots found %d of the 3 snapshots", len(snaps))
	}
	for _, s := range snaps {
		if !aws.ToTime(s.StartTime).Equal(aws.ToTime(snaps[0].StartTime)) {
			t.Errorf("%s started at %v, %s at %v: not one crash-consistent set", aws.ToString(s.SnapshotId),
				s.StartTime, aws.ToString(snaps[0].SnapshotId), snaps[0].StartTime)
		}
		tags := tagMap(s.Tags)
		want := map[string]string{
			"ec2-isolation:instance-id": instanceID,
			"ec2-isolation:execution":   "exec-1",
			"ec2-isolation:reason":      "tag Isolate=true",
		}
		for k, v := range want {
			if tags[k] != v {
				t.Errorf("%s: tag %s = %q, want %q", aws.ToString(s.SnapshotId), k, tags[k], v)
			}
		}
		if tags["Name"] == "" {
			t.Errorf("%s has no Name tag", aws.ToString(s.SnapshotId))
		}
		if aws.ToString(s.VolumeId) == "vol-00000000000000002" && tags["Team"] != "payments" {
			t.Errorf("%s: the volume's tags were not copied: %v", aws.ToString(s.SnapshotId), tags)
		}
		if d := aws.ToString(s.Description); !strings.Contains(d, instanceID) || !strings.Contains(d, "exec-1") {
			t.Errorf("description %q does not name the instance and the execution", d)
		}
	}

	// Run again (a retry or a redrive): the same set, no second CreateSnapshots.
	again, err := h.Handle(ctx, input)
	if err != nil {
		t.Fatalf("second Handle: %v", err)
	}
	if again.Created {
		t.Error("Created = true on the second run")
	}
	if diff := cmp.Diff(ids(out.Snapshots), ids(again.Snapshots)); diff != "" {
		t.Errorf("second run's set (-first +second):\n%s", diff)
	}
	if n := count(srv, "CreateSnapshots"); n != 1 {
		t.Errorf("%d CreateSnapshots calls, want 1", n)
	}

	// One change per snapshot, at the start time EC2 gives it; a later run reports the same changes (its
	// earlier output may have been lost), so the incident record can dedupe them.
	var wantChanges []workflow.Change
	for _, s := range snaps {
		wantChanges = append(wantChanges, workflow.Change{
			At: aws.ToTime(s.StartTime).UTC(), Step: "Snapshot volumes", Resource: aws.ToString(s.SnapshotId),
			Action: "CreateSnapshots", Detail: "snapshot of " + aws.ToString(s.VolumeId) + " (" + instanceID + ")",
		})
	}
	slices.SortFunc(wantChanges, func(a, b workflow.Change) int { return strings.Compare(a.Detail, b.Detail) })
	if diff := cmp.Diff(wantChanges, out.Changes); diff != "" {
		t.Errorf("first run's changes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(out.Changes, again.Changes); diff != "" {
		t.Errorf("second run's changes (-first +second):\n%s", diff)
	}

	// Another execution isolating the same instance later makes its own set.
	other := input
	other.ExecutionName = "exec-2"
	third, err := h.Handle(ctx, other)
	if err != nil || !third.Created || len(third.Snapshots) != 3 || slices.ContainsFunc(third.Snapshots, func(s workflow.Snapshot) bool {
		return slices.Contains(ids(out.Snapshots), s.SnapshotID)
	}) {
		t.Errorf("another execution's run = %+v, %v; want a new set of 3", third, err)
	}
}

func TestInstanceWithoutVolumes(t *testing.T) {
	srv, _, h := start(t, scenario())
	out, err := h.Handle(ctx, input)
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	if len(out.Snapshots) != 0 || out.Created {
		t.Errorf("output = %+v, want an empty set", out)
	}
	for _, c := range srv.Calls() {
		if c.Mutating {
			t.Errorf("mutating call %s", c.Action)
		}
	}
}

func TestThrottledFirstCallsStillSnapshot(t *testing.T) {
	sc := scenario(threeVolumes...)
	sc.Faults.Errors = []sim.ErrorFault{{Action: "*", Code: "RequestLimitExceeded", FirstCalls: 1}}
	srv, client, h := start(t, sc)
	out, err := h.Handle(ctx, input)
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	if got := len(described(t, client, ids(out.Snapshots))); got != 3 {
		t.Errorf("%d snapshots described, want 3", got)
	}
	if n := count(srv, "CreateSnapshots"); n != 1 {
		t.Errorf("%d successful CreateSnapshots, want 1", n)
	}
}

func TestRefuses(t *testing.T) {
	tests := []struct {
		name string
		in   workflow.InstanceInput
		is   func(error) bool
		want string
	}{
		{"no execution", workflow.InstanceInput{InstanceID: instanceID}, isA[*steperr.InvalidInput], "InvalidInput"},
		{"no instance", workflow.InstanceInput{ExecutionName: "exec-1"}, isA[*steperr.InvalidInput], "InvalidInput"},
		{"malformed instance", workflow.InstanceInput{InstanceID: "vol-00000000000000001", ExecutionName: "exec-1"}, isA[*steperr.InvalidInput], "InvalidInput"},
		{"unknown instance", workflow.InstanceInput{InstanceID: "i-0fffffffffffffff0", ExecutionName: "exec-1"}, isA[*steperr.InstanceNotFound], "InstanceNotFound"},
	}
	srv, _, h := start(t, scenario(threeVolumes...))
	t.Run("terminated instance", func(t *testing.T) {
		srv, _, h := start(t, scenario(threeVolumes...))
		var err error
		srv.Update(func(a *sim.Account) { err = a.TerminateInstance(instanceID) })
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.Handle(ctx, input); !isA[*steperr.InstanceNotIsolatable](err) {
			t.Fatalf("error = %T %v, want *steperr.InstanceNotIsolatable", err, err)
		}
		if n := count(srv, "CreateSnapshots"); n != 0 {
			t.Errorf("%d CreateSnapshots calls", n)
		}
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.ResetCalls()
			if _, err := h.Handle(ctx, tt.in); !tt.is(err) {
				t.Fatalf("error = %T %v, want %s", err, err, tt.want)
			}
			for _, c := range srv.Calls() {
				if c.Mutating {
					t.Errorf("mutating call %s", c.Action)
				}
			}
		})
	}
}

func isA[T error](err error) bool {
	var target T
	return errors.As(err, &target)
}

// newClient is an EC2 client of the real SDK reaching srv as caller.
func newClient(_ *testing.T, srv *sim.Server, caller string) *ec2.Client {
	return ec2.NewFromConfig(srv.AWSConfig(caller))
}

func TestLogsInstanceAndExecution(t *testing.T) {
	srv, err := sim.Start(scenario(threeVolumes...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	var buf bytes.Buffer
	h := snapshot.New(newClient(t, srv, "snapshot-volumes"), slog.New(slog.NewJSONHandler(&buf, nil)))
	if _, err := h.Handle(ctx, input); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	for _, l := range lines {
		var entry struct{ Msg, Instance, Execution string }
		if err := json.Unmarshal([]byte(l), &entry); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		if entry.Instance != instanceID || entry.Execution != "exec-1" {
			t.Errorf("log line without instance and execution: %q", l)
		}
	}
	if !strings.Contains(lines[len(lines)-1], "created snapshot set") {
		t.Errorf("last log line does not say what the step did: %q", lines[len(lines)-1])
	}
}
