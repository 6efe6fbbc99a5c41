// Package profile holds the two IAM steps of containment: "Disassociate profile" removes the instance's
// instance profile (its role's permissions), "Attach isolation profile" gives it the isolation profile, whose
// role may do nothing. Both read the instance's associations first and do only what is missing. The release's
// "Restore instance profile" (internal/restore) shares the association helpers: Associations, ProfileARN,
// IsProfile, Classify.
package profile

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2-isolation/ec2-isolation/internal/steperr"
	"github.com/ec2-isolation/ec2-isolation/internal/workflow"
)

// Association states (types.IamInstanceProfileAssociationState).
const (
	associating    = types.IamInstanceProfileAssociationStateAssociating
	associated     = types.IamInstanceProfileAssociationStateAssociated
	disassociating = types.IamInstanceProfileAssociationStateDisassociating
	disassociated  = types.IamInstanceProfileAssociationStateDisassociated
)

var instanceIDPattern = regexp.MustCompile(`^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$`)

// checkInput refuses an input the definition should never produce.
func checkInput(step string, in workflow.InstanceInput) error {
	switch {
	case in.ExecutionName == "":
		return &steperr.InvalidInput{Step: step, Reason: "executionName is empty"}
	case in.InstanceID == "":
		return &steperr.InvalidInput{Step: step, Reason: "instanceId is empty"}
	case !instanceIDPattern.MatchString(in.InstanceID):
		return &steperr.InvalidInput{Step: step, Reason: fmt.Sprintf("instanceId %q is not an instance id", in.InstanceID)}
	}
	return nil
}

// Associations lists every association of the instance EC2 still reports, in any state.
func Associations(ctx context.Context, api ec2.DescribeIamInstanceProfileAssociationsAPIClient, instanceID string) ([]types.IamInstanceProfileAssociation, error) {
	p := ec2.NewDescribeIamInstanceProfileAssociationsPaginator(api, &ec2.DescribeIamInstanceProfileAssociationsInput{
		Filters: []types.Filter{{Name: aws.String("instance-id"), Values: []string{instanceID}}},
	})
	var all []types.IamInstanceProfileAssociation
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, steperr.FromAWS("describe instance profile associations of "+instanceID, err)
		}
		for _, a := range out.IamInstanceProfileAssociations {
			// The filter is the server's job; a wrong answer must not make us detach another instance's profile.
			if aws.ToString(a.InstanceId) == instanceID {
				all = append(all, a)
			}
		}
	}
	return all, nil
}

// ProfileARN is the association's profile ARN, or "".
func ProfileARN(a types.IamInstanceProfileAssociation) string {
	if a.IamInstanceProfile == nil {
		return ""
	}
	return aws.ToString(a.IamInstanceProfile.Arn)
}

// IsProfile says whether arn (arn:aws:iam::ACCOUNT:instance-profile/[PATH/]NAME) is the profile called name.
// Names cannot contain "/", so the name is the last segment, whatever the path. IAM names are unique
// case-insensitively, so the comparison is too.
func IsProfile(arn, name string) bool {
	_, resource, ok := strings.Cut(arn, ":instance-profile/")
	if !ok {
		return false
	}
	return strings.EqualFold(resource[strings.LastIndex(resource, "/")+1:], name)
}

func toWorkflow(a types.IamInstanceProfileAssociation) workflow.ProfileAssociation {
	return workflow.ProfileAssociation{AssociationID: aws.ToString(a.AssociationId), ProfileARN: ProfileARN(a), State: string(a.State)}
}

// pending is the error ASL retries while an association changes state.
func pending(instanceID string, a types.IamInstanceProfileAssociation) error {
	return &steperr.AssociationPending{InstanceID: instanceID, AssociationID: aws.ToString(a.AssociationId), State: string(a.State)}
}
