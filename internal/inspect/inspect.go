// Package inspect reads what a responder cares about of an instance, through the EC2 API: each ENI's security
// groups, the instance profile, the isolation snapshots. isolation simulate prints it before and after.
package inspect

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2-isolation/ec2-isolation/internal/snapshot"
)

// API is what Read calls.
type API interface {
	DescribeInstances(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	DescribeIamInstanceProfileAssociations(context.Context, *ec2.DescribeIamInstanceProfileAssociationsInput, ...func(*ec2.Options)) (*ec2.DescribeIamInstanceProfileAssociationsOutput, error)
	DescribeSnapshots(context.Context, *ec2.DescribeSnapshotsInput, ...func(*ec2.Options)) (*ec2.DescribeSnapshotsOutput, error)
}

// Instance is the instance's containment-relevant state.
type Instance struct {
	ID                string      `json:"instanceId"`
	State             string      `json:"state"`
	NetworkInterfaces []Interface `json:"networkInterfaces"`
	// Profiles lists the instance profile associations that are not disassociated: "arn (state)".
	Profiles  []string `json:"profiles"`
	Snapshots []string `json:"snapshots"`
}

// Interface is one ENI and its groups ("sg-… (name)").
type Interface struct {
	ID     string   `json:"networkInterfaceId"`
	VpcID  string   `json:"vpcId"`
	Groups []string `json:"groups"`
}

// Read describes the instance, its profile associations and its isolation snapshots.
func Read(ctx context.Context, api API, id string) (Instance, error) {
	out, err := api.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		return Instance{}, fmt.Errorf("describe instance %s: %w", id, err)
	}
	in := Instance{ID: id}
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			if i.State != nil {
				in.State = string(i.State.Name)
			}
			for _, n := range i.NetworkInterfaces {
				eni := Interface{ID: aws.ToString(n.NetworkInterfaceId), VpcID: aws.ToString(n.VpcId)}
				for _, g := range n.Groups {
					eni.Groups = append(eni.Groups, fmt.Sprintf("%s (%s)", aws.ToString(g.GroupId), aws.ToString(g.GroupName)))
				}
				in.NetworkInterfaces = append(in.NetworkInterfaces, eni)
			}
		}
	}
	slices.SortFunc(in.NetworkInterfaces, func(a, b Interface) int { return strings.Compare(a.ID, b.ID) })
	as, err := api.DescribeIamInstanceProfileAssociations(ctx, &ec2.DescribeIamInstanceProfileAssociationsInput{
		Filters: []types.Filter{{Name: aws.String("instance-id"), Values: []string{id}}},
	})
	if err != nil {
		return Instance{}, fmt.Errorf("describe profile associations of %s: %w", id, err)
	}
	for _, a := range as.IamInstanceProfileAssociations {
		if a.State == types.IamInstanceProfileAssociationStateDisassociated || a.IamInstanceProfile == nil {
			continue
		}
		in.Profiles = append(in.Profiles, fmt.Sprintf("%s (%s)", aws.ToString(a.IamInstanceProfile.Arn), a.State))
	}
	snaps, err := api.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{
		OwnerIds: []string{"self"},
		Filters:  []types.Filter{{Name: aws.String("tag:" + snapshot.TagInstanceID), Values: []string{id}}},
	})
	if err != nil {
		return Instance{}, fmt.Errorf("describe snapshots of %s: %w", id, err)
	}
	for _, s := range snaps.Snapshots {
		snap := fmt.Sprintf("%s of %s", aws.ToString(s.SnapshotId), aws.ToString(s.VolumeId))
		if s.State != "" { // moto may answer none
			snap += fmt.Sprintf(" (%s)", s.State)
		}
		in.Snapshots = append(in.Snapshots, snap)
	}
	slices.Sort(in.Snapshots)
	return in, nil
}
