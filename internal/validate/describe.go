package validate

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
)

// instanceState is what EC2 says about the instance, read in one round trip.
type instanceState struct {
	Instance types.Instance
	// Owner is the account of the instance's reservation.
	Owner                 string
	Associations          []types.IamInstanceProfileAssociation
	DisableAPITermination bool
	ShutdownBehavior      string
	// Groups are the security groups named as the isolation groups, in any VPC (the instance's VPCs are not
	// known before its description: filtering by name alone keeps the lookup in the same round trip).
	Groups []types.SecurityGroup
	// Managed are the groups tagged ec2-isolation:managed=true, whatever their name (a derived name is used where a
	// foreign group holds the isolation group's): on an ENI they are isolation artifacts.
	Managed []types.SecurityGroup
}

// describe reads the instance, its profile associations, the two attributes a release restores and the
// security groups with the isolation groups' names, all at once: containment waits for this step.
func describe(ctx context.Context, api API, id string, groupNames []string) (instanceState, error) {
	var (
		wg                                          sync.WaitGroup
		st                                          instanceState
		instErr, assocErr, termErr, shutErr, sgsErr error
		managedErr                                  error
		found                                       bool
	)
	wg.Go(func() {
		out, err := api.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
		if err != nil {
			instErr = err
			return
		}
		for _, r := range out.Reservations {
			for _, i := range r.Instances {
				if aws.ToString(i.InstanceId) == id {
					st.Instance, st.Owner, found = i, aws.ToString(r.OwnerId), true
				}
			}
		}
	})
	wg.Go(func() {
		p := ec2.NewDescribeIamInstanceProfileAssociationsPaginator(api, &ec2.DescribeIamInstanceProfileAssociationsInput{
			Filters: []types.Filter{{Name: aws.String("instance-id"), Values: []string{id}}},
		})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				assocErr = err
				return
			}
			st.Associations = append(st.Associations, out.IamInstanceProfileAssociations...)
		}
	})
	wg.Go(func() {
		out, err := api.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{
			InstanceId: aws.String(id), Attribute: types.InstanceAttributeNameDisableApiTermination,
		})
		if err != nil {
			termErr = err
			return
		}
		if out.DisableApiTermination != nil {
			st.DisableAPITermination = aws.ToBool(out.DisableApiTermination.Value)
		}
	})
	wg.Go(func() {
		out, err := api.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{
			InstanceId: aws.String(id), Attribute: types.InstanceAttributeNameInstanceInitiatedShutdownBehavior,
		})
		if err != nil {
			shutErr = err
			return
		}
		if out.InstanceInitiatedShutdownBehavior != nil {
			st.ShutdownBehavior = aws.ToString(out.InstanceInitiatedShutdownBehavior.Value)
		}
	})
	wg.Go(func() {
		// No MaxResults: DescribeSecurityGroups then answers every match in one page (one group per VPC and name).
		p := ec2.NewDescribeSecurityGroupsPaginator(api, &ec2.DescribeSecurityGroupsInput{
			Filters: []types.Filter{{Name: aws.String("group-name"), Values: groupNames}},
		})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				sgsErr = err
				return
			}
			st.Groups = append(st.Groups, out.SecurityGroups...)
		}
	})
	wg.Go(func() {
		// Filters are ANDed, so the managed groups are a second query of the same round trip.
		p := ec2.NewDescribeSecurityGroupsPaginator(api, &ec2.DescribeSecurityGroupsInput{
			Filters: []types.Filter{{Name: aws.String("tag:" + tagManaged), Values: []string{"true"}}},
		})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				managedErr = err
				return
			}
			st.Managed = append(st.Managed, out.SecurityGroups...)
		}
	})
	wg.Wait()

	// The instance's own description decides first: the attribute calls fail too for an unknown instance.
	switch {
	case isNotFound(instErr):
		return st, &steperr.InstanceNotFound{InstanceID: id}
	case instErr != nil:
		return st, steperr.FromAWS("describe instance "+id, instErr)
	case !found:
		return st, &steperr.InstanceNotFound{InstanceID: id}
	}
	if err := notIsolatable(st.Instance); err != nil {
		return st, err
	}
	switch {
	case assocErr != nil:
		return st, steperr.FromAWS("describe instance profile associations of "+id, assocErr)
	case termErr != nil:
		return st, steperr.FromAWS(fmt.Sprintf("describe %s of %s", types.InstanceAttributeNameDisableApiTermination, id), termErr)
	case shutErr != nil:
		return st, steperr.FromAWS(fmt.Sprintf("describe %s of %s", types.InstanceAttributeNameInstanceInitiatedShutdownBehavior, id), shutErr)
	case sgsErr != nil:
		return st, steperr.FromAWS(fmt.Sprintf("describe security groups named %s", strings.Join(groupNames, ", ")), sgsErr)
	case managedErr != nil:
		return st, steperr.FromAWS("describe security groups tagged "+tagManaged, managedErr)
	}
	return st, nil
}

func isNotFound(err error) bool {
	switch steperr.Code(err) {
	case "InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed":
		return true
	}
	return false
}

// notIsolatable refuses an instance that is going away (nothing left to contain, and its evidence is gone) or
// that is in no VPC (security groups and ENIs are VPC things).
func notIsolatable(i types.Instance) error {
	id := aws.ToString(i.InstanceId)
	state := types.InstanceStateName("")
	if i.State != nil {
		state = i.State.Name
	}
	switch {
	case state == types.InstanceStateNameTerminated || state == types.InstanceStateNameShuttingDown:
		return &steperr.InstanceNotIsolatable{InstanceID: id, Reason: "it is " + string(state)}
	case aws.ToString(i.VpcId) == "":
		return &steperr.InstanceNotIsolatable{InstanceID: id, Reason: "it is in no VPC"}
	case len(i.NetworkInterfaces) == 0:
		return &steperr.InstanceNotIsolatable{InstanceID: id, Reason: "it has no network interface"}
	}
	return nil
}
