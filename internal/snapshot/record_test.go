package snapshot_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/ec2-isolation/ec2-isolation/internal/sim"
	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// Validate and record already read the instance's volumes (its DescribeInstances): given them, the step snapshots
// every volume without describing the instance again (issue 16: one DescribeInstances fewer per isolation, the
// unfiltered DescribeInstances bucket being one of a storm's busiest).
func TestUsesTheRecordsVolumes(t *testing.T) {
	srv, client, h := start(t, scenario(threeVolumes...))
	in := input
	in.Record = &workflow.Record{InstanceID: instanceID}
	for _, v := range threeVolumes {
		in.Record.Volumes = append(in.Record.Volumes, workflow.Volume{VolumeID: v.ID, DeviceName: v.DeviceName, DeleteOnTermination: v.DeleteOnTermination})
	}
	out, err := h.Handle(ctx, in)
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	if n := count(srv, "DescribeInstances"); n != 0 {
		t.Errorf("%d DescribeInstances: the record's volumes were not used", n)
	}
	var ids []string
	for _, s := range out.Snapshots {
		ids = append(ids, s.SnapshotID)
	}
	got := described(t, client, ids)
	if len(got) != len(threeVolumes) {
		t.Fatalf("%d snapshots read back, want one per volume (%d): %v", len(got), len(threeVolumes), ids)
	}
	seen := map[string]bool{}
	for _, s := range got {
		seen[*s.VolumeId] = true
	}
	for _, v := range threeVolumes {
		if !seen[v.ID] {
			t.Errorf("volume %s has no snapshot", v.ID)
		}
	}
}

// With the record's volumes the step no longer sees the instance's state first: an instance terminated since
// is still refused, by CreateSnapshots, and no snapshot is left behind.
func TestRecordsVolumesOfATerminatedInstance(t *testing.T) {
	srv, client, h := start(t, scenario(threeVolumes...))
	var err error
	srv.Update(func(a *sim.Account) { err = a.TerminateInstance(instanceID) })
	if err != nil {
		t.Fatal(err)
	}
	in := input
	in.Record = &workflow.Record{InstanceID: instanceID, Volumes: []workflow.Volume{{VolumeID: threeVolumes[0].ID, DeviceName: threeVolumes[0].DeviceName}}}
	if _, err := h.Handle(ctx, in); !isA[*steperr.InstanceNotIsolatable](err) {
		t.Fatalf("error = %T %v, want *steperr.InstanceNotIsolatable", err, err)
	}
	out, err := client.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Snapshots) != 0 {
		t.Errorf("%d snapshots of a terminated instance", len(out.Snapshots))
	}
}
