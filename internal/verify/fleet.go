package verify

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2-isolation/ec2-isolation/internal/profile"
	"github.com/ec2-isolation/ec2-isolation/internal/secgroup"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// FleetAPI is what ReadFleet calls.
type FleetAPI interface {
	ec2.DescribeSecurityGroupsAPIClient
	ec2.DescribeIamInstanceProfileAssociationsAPIClient
	ec2.DescribeNetworkInterfacesAPIClient
}

// Fleet is the read-back's view of every instance of the region at once, for the reconciler and `isolation
// status`: the isolation groups (by name and by the tags Ensure puts on the groups it creates) and every profile
// association, read in a number of paginated calls that does not grow with the instances checked (1,000
// associations a page). The instances themselves come from the caller's DescribeInstances.
type Fleet struct {
	s             Settings
	byName, byTag []types.SecurityGroup
	assocs        map[string][]types.IamInstanceProfileAssociation // by instance id
	// notOwned are the attached ENIs an AWS service manages (requester-managed): Apply cannot change their
	// groups, so they are named apart, never open (else the reconciler would isolate such an instance again at
	// every pass).
	notOwned map[string]workflow.NotOwnedInterface
}

// ReadFleet reads the isolation groups and the profile associations of the region.
func ReadFleet(ctx context.Context, client FleetAPI, s Settings) (*Fleet, error) {
	f := &Fleet{s: s, assocs: map[string][]types.IamInstanceProfileAssociation{}, notOwned: map[string]workflow.NotOwnedInterface{}}
	var err error
	if f.byName, err = describeGroups(ctx, client, types.Filter{Name: aws.String("group-name"), Values: []string{s.Groups.GroupName}}); err != nil {
		return nil, fmt.Errorf("describe the groups named %s: %w", s.Groups.GroupName, err)
	}
	if f.byTag, err = describeGroups(ctx, client,
		types.Filter{Name: aws.String("tag:" + secgroup.TagManaged), Values: []string{"true"}},
		types.Filter{Name: aws.String("tag:" + secgroup.TagRole), Values: []string{"isolation"}}); err != nil {
		return nil, fmt.Errorf("describe the managed isolation groups: %w", err)
	}
	p := ec2.NewDescribeIamInstanceProfileAssociationsPaginator(client, &ec2.DescribeIamInstanceProfileAssociationsInput{MaxResults: aws.Int32(1000)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe the instance profile associations: %w", err)
		}
		for _, a := range page.IamInstanceProfileAssociations {
			id := aws.ToString(a.InstanceId)
			f.assocs[id] = append(f.assocs[id], a)
		}
	}
	np := ec2.NewDescribeNetworkInterfacesPaginator(client, &ec2.DescribeNetworkInterfacesInput{MaxResults: aws.Int32(1000),
		Filters: []types.Filter{{Name: aws.String("requester-managed"), Values: []string{"true"}}}})
	for np.HasMorePages() {
		page, err := np.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe the requester-managed network interfaces: %w", err)
		}
		for _, n := range page.NetworkInterfaces {
			if n.Attachment == nil || aws.ToString(n.Attachment.InstanceId) == "" {
				continue
			}
			id := aws.ToString(n.NetworkInterfaceId)
			f.notOwned[id] = workflow.NotOwnedInterface{ID: id, VpcID: aws.ToString(n.VpcId),
				Reason: fmt.Sprintf("requester-managed by %s: EC2 does not let the account change its security groups", cmp.Or(aws.ToString(n.RequesterId), "an AWS service"))}
		}
	}
	return f, nil
}

// Verdict is the read-back's answer for one instance, from the batch read, changing nothing.
type Verdict struct {
	InstanceID string
	State      string
	// Open lists what keeps the instance from being contained, in the words of "Verify containment" (empty:
	// contained).
	Open []string
	// Isolated: the instance carries an isolation artifact (an ENI on a managed isolation group, the isolation
	// profile associated), whether or not it is fully contained.
	Isolated bool
	// Gone: terminated or shutting down; nothing is left to contain (and nothing is reported open).
	Gone bool
}

// Contained says the instance is contained: an attached ENI, and nothing open.
func (v Verdict) Contained() bool { return !v.Gone && len(v.Open) == 0 }

// Check applies the read-back's rules (the package comment) to inst, as described by DescribeInstances.
func (f *Fleet) Check(inst types.Instance) Verdict {
	id := aws.ToString(inst.InstanceId)
	rb := newReadBack(&inst, f.assocs[id], f.notOwned)
	rb.pick(rb.vpcs(), f.s.Groups.GroupName, f.byName, f.byTag)
	v := Verdict{InstanceID: id, State: rb.state}
	if rb.isolatable(id) != nil && len(rb.enis) > 0 || rb.state == string(types.InstanceStateNameTerminated) {
		v.Gone = true
		return v
	}
	v.Open = texts(rb.open(f.s, id))
	if len(rb.enis) == 0 {
		v.Open = append([]string{"no network interface is attached"}, v.Open...)
	}
	managed := map[string]bool{}
	for _, sg := range f.byTag {
		if secgroup.Managed(&sg) {
			managed[aws.ToString(sg.GroupId)] = true
		}
	}
	for _, e := range rb.enis {
		if slices.ContainsFunc(e.groups, func(g string) bool { return managed[g] }) {
			v.Isolated = true
		}
	}
	for _, a := range rb.assocs {
		if profile.IsProfile(a.arn, f.s.Profile.IsolationProfileName) {
			v.Isolated = true
		}
	}
	return v
}

// IsolationGroup is the usable managed isolation group of vpc, as the read-back would pick it: ok is false when
// the VPC has none. Its rules are the caller's to check (an isolation group must have none).
func (f *Fleet) IsolationGroup(vpc string) (types.SecurityGroup, bool) {
	rb := &readBack{groups: map[string]types.SecurityGroup{}, iso: map[string]string{}, foreign: map[string]string{}}
	rb.pick([]string{vpc}, f.s.Groups.GroupName, f.byName, f.byTag)
	sg, ok := rb.groups[rb.iso[vpc]]
	return sg, ok
}

// Rules lists the rules of an isolation group (it must have none), as the read-back names them.
func Rules(sg types.SecurityGroup) []string {
	return append(rules(sg.IpPermissions, false), rules(sg.IpPermissionsEgress, true)...)
}
