package sim

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// A Describe call narrowed by an index (an instance-id filter, an exact tag value, the associations of one
// instance) answers what a full scan answers, in the same order, after the tags, associations and resources it
// indexes have changed.
func TestIndexedDescribesFollowChanges(t *testing.T) {
	sc := baseScenario()
	var ids []string
	for i := range 12 {
		id := fmt.Sprintf("i-%017x", 0xa00+i)
		ids = append(ids, id)
		team := "a"
		if i%2 == 1 {
			team = "b"
		}
		sc.Instances = append(sc.Instances, Instance{ID: id, SubnetID: subA, Profile: "web-profile",
			Tags: map[string]string{"Team": team}, Volumes: []Volume{{ID: fmt.Sprintf("vol-%017x", 0xa00+i), DeviceName: "/dev/xvda"}}})
	}
	srv, c, _ := start(t, sc)
	ctx := context.Background()
	instances := func(fs ...ec2types.Filter) []string {
		t.Helper()
		out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: fs})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range out.Reservations {
			for _, i := range r.Instances {
				got = append(got, aws.ToString(i.InstanceId))
			}
		}
		return got
	}
	filter := func(name string, values ...string) ec2types.Filter {
		return ec2types.Filter{Name: aws.String(name), Values: values}
	}
	pick := func(keep func(i int) bool) []string {
		var out []string
		for i, id := range ids {
			if keep(i) {
				out = append(out, id)
			}
		}
		return out
	}

	// Retagged: instance 0 moves from team a to team b.
	if _, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{ids[0]},
		Tags: []ec2types.Tag{{Key: aws.String("Team"), Value: aws.String("b")}}}); err != nil {
		t.Fatal(err)
	}
	teamA := pick(func(i int) bool { return i%2 == 0 && i != 0 })
	teamB := pick(func(i int) bool { return i%2 == 1 || i == 0 })
	for _, tt := range []struct {
		name string
		fs   []ec2types.Filter
		want []string
	}{
		{"tag Team=a", []ec2types.Filter{filter("tag:Team", "a")}, teamA},
		{"tag Team=b", []ec2types.Filter{filter("tag:Team", "b")}, teamB},
		{"tag Team=b or a", []ec2types.Filter{filter("tag:Team", "b", "a")}, ids},
		{"tag Team=a*, no index", []ec2types.Filter{filter("tag:Team", "a*")}, teamA},
		{"tag Team=a and not in the index's set", []ec2types.Filter{filter("tag:Team", "a"), filter("instance-id", ids[1], ids[0])}, nil},
		{"instance-id, reversed", []ec2types.Filter{filter("instance-id", ids[5], ids[3], ids[3], "i-0fffffffffffffff0")}, []string{ids[3], ids[5]}},
		{"instance-id and tag", []ec2types.Filter{filter("instance-id", ids[4], ids[0]), filter("tag:Team", "b")}, []string{ids[0]}},
	} {
		if got := instances(tt.fs...); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}

	// Associations: replaced, then the instance terminated; another instance's stay.
	assocs := func(inst ...string) []ec2types.IamInstanceProfileAssociation {
		t.Helper()
		out, err := c.DescribeIamInstanceProfileAssociations(ctx, &ec2.DescribeIamInstanceProfileAssociationsInput{
			Filters: []ec2types.Filter{filter("instance-id", inst...)}})
		if err != nil {
			t.Fatal(err)
		}
		return out.IamInstanceProfileAssociations
	}
	before := assocs(ids[2])
	if len(before) != 1 {
		t.Fatalf("associations of %s: %v, want one", ids[2], before)
	}
	rep, err := c.ReplaceIamInstanceProfileAssociation(ctx, &ec2.ReplaceIamInstanceProfileAssociationInput{
		AssociationId: before[0].AssociationId, IamInstanceProfile: &ec2types.IamInstanceProfileSpecification{Name: aws.String("isolation")}})
	if err != nil {
		t.Fatal(err)
	}
	if got := assocs(ids[2]); len(got) != 1 || aws.ToString(got[0].AssociationId) != aws.ToString(rep.IamInstanceProfileAssociation.AssociationId) {
		t.Errorf("after the replacement, associations of %s: %v, want only the new one", ids[2], got)
	}
	if got := assocs(ids[2], ids[3]); len(got) != 2 || aws.ToString(got[0].InstanceId) != ids[3] {
		t.Errorf("associations of %s and %s: %v, want two, %s's first (the older)", ids[2], ids[3], got, ids[3])
	}
	srv.Update(func(a *Account) {
		if err := a.TerminateInstance(ids[2]); err != nil {
			t.Fatal(err)
		}
	})
	if got := assocs(ids[2]); len(got) != 0 {
		t.Errorf("associations of terminated %s: %v, want none", ids[2], got)
	}
	if _, err := c.AssociateIamInstanceProfile(ctx, &ec2.AssociateIamInstanceProfileInput{InstanceId: aws.String(ids[4]),
		IamInstanceProfile: &ec2types.IamInstanceProfileSpecification{Name: aws.String("isolation")}}); err == nil {
		t.Errorf("a second association for %s accepted, want IncorrectState (its first is still active)", ids[4])
	}

	// Snapshots found by their tags, after one is retagged.
	snap := func(inst, exec string) {
		t.Helper()
		if _, err := c.CreateSnapshots(ctx, &ec2.CreateSnapshotsInput{InstanceSpecification: &ec2types.InstanceSpecification{InstanceId: aws.String(inst)},
			TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSnapshot,
				Tags: []ec2types.Tag{{Key: aws.String("exec"), Value: aws.String(exec)}}}}}); err != nil {
			t.Fatal(err)
		}
	}
	snaps := func(exec string) []string {
		t.Helper()
		out, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}, Filters: []ec2types.Filter{filter("tag:exec", exec)}})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range out.Snapshots {
			got = append(got, aws.ToString(s.VolumeId))
		}
		return got
	}
	snap(ids[5], "e1")
	snap(ids[6], "e1")
	if got := snaps("e1"); !slices.Equal(got, []string{"vol-00000000000000a05", "vol-00000000000000a06"}) {
		t.Errorf("snapshots of e1: volumes %v, want a05's then a06's", got)
	}
	all, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}, Filters: []ec2types.Filter{filter("tag:exec", "e1")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{aws.ToString(all.Snapshots[0].SnapshotId)},
		Tags: []ec2types.Tag{{Key: aws.String("exec"), Value: aws.String("e2")}}}); err != nil {
		t.Fatal(err)
	}
	if e1, e2 := snaps("e1"), snaps("e2"); !slices.Equal(e1, []string{"vol-00000000000000a06"}) || !slices.Equal(e2, []string{"vol-00000000000000a05"}) {
		t.Errorf("after retagging: e1 %v, e2 %v; want a06's and a05's", e1, e2)
	}

	// ENIs found by the instance they are attached to, after one moves from instWeb to ids[7] and instWeb ends.
	enis := func(insts ...string) []string {
		t.Helper()
		out, err := c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{Filters: []ec2types.Filter{filter("attachment.instance-id", insts...)}})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, n := range out.NetworkInterfaces {
			got = append(got, aws.ToString(n.NetworkInterfaceId))
		}
		return got
	}
	if got := enis(instWeb); !slices.Equal(got, []string{eniWeb0, eniWeb1}) {
		t.Errorf("ENIs of %s: %v, want %s and %s", instWeb, got, eniWeb0, eniWeb1)
	}
	srv.Update(func(a *Account) {
		if err := a.DetachNetworkInterface(eniWeb1); err != nil {
			t.Fatal(err)
		}
		if err := a.AttachNetworkInterface(eniWeb1, ids[7], 1); err != nil {
			t.Fatal(err)
		}
	})
	if web, moved := enis(instWeb), enis(ids[7]); !slices.Equal(web, []string{eniWeb0}) || len(moved) != 2 || moved[0] != eniWeb1 {
		t.Errorf("after the move: %s has %v, %s has %v; want [%s] and %s then its primary (creation order)", instWeb, web, ids[7], moved, eniWeb0, eniWeb1)
	}
	srv.Update(func(a *Account) {
		if err := a.TerminateInstance(ids[7]); err != nil {
			t.Fatal(err)
		}
	})
	if got := enis(ids[7]); len(got) != 0 {
		t.Errorf("ENIs of terminated %s: %v, want none (its primary deleted, %s detached)", ids[7], got, eniWeb1)
	}
	if out, err := c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{eniWeb1}}); err != nil ||
		len(out.NetworkInterfaces) != 1 || out.NetworkInterfaces[0].Attachment != nil {
		t.Errorf("%s after its instance ended: %v (%v), want it available", eniWeb1, out, err)
	}

	// A deleted group's tags go with it: a group created after it with the same tag is the only one found.
	group := func(name string) string {
		t.Helper()
		out, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String(name), Description: aws.String(name),
			VpcId: aws.String(vpcA), TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSecurityGroup,
				Tags: []ec2types.Tag{{Key: aws.String("kind"), Value: aws.String("probe")}}}}})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.GroupId)
	}
	old := group("probe-1")
	if _, err := c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(old)}); err != nil {
		t.Fatal(err)
	}
	fresh := group("probe-2")
	out, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{filter("tag:kind", "probe")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.SecurityGroups) != 1 || aws.ToString(out.SecurityGroups[0].GroupId) != fresh {
		t.Errorf("groups tagged kind=probe: %v, want only %s", out.SecurityGroups, fresh)
	}
}
