package inspect

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// Clients are the read-only clients ReadRestorable uses.
type Clients struct {
	EC2         *ec2.Client
	AutoScaling *autoscaling.Client
	ELB         *elb.Client
	IAM         *iam.Client
}

// Restorable is every attribute of an instance that isolation changes and a release restores, read back from
// the account: what a release must return to its pre-isolation value.
type Restorable struct {
	// Groups maps each attached ENI to its security group ids, sorted.
	Groups map[string][]string `json:"groups"`
	// Profile is the ARN of the instance's profile association being made or made ("" when none): EC2 answers
	// associating at first, and the instance gets the profile's credentials once associated.
	Profile               string `json:"profile"`
	TerminationProtection bool   `json:"terminationProtection"`
	ShutdownBehavior      string `json:"shutdownBehavior"`
	// DeleteOnTermination maps each EBS volume id to its flag.
	DeleteOnTermination map[string]bool `json:"deleteOnTermination"`
	// AutoScalingGroup is "" when the instance is in none.
	AutoScalingGroup string `json:"autoScalingGroup"`
	// Targets lists "<target group ARN> port <n>" for each registration of the instance, sorted.
	Targets []string `json:"targets"`
	// Role is the role of Profile's instance profile (nil without a profile).
	Role *Role `json:"role,omitempty"`
}

// Role is an IAM role's policies.
type Role struct {
	Name string `json:"name"`
	// Inline maps each inline policy name to its (URL-decoded) document.
	Inline   map[string]string `json:"inline"`
	Attached []string          `json:"attached"`
}

// ReadRestorable reads the restorable attributes of instance id. roleOf, when not "", reads that instance profile's role
// instead of the current profile's (the isolation profile's role is not the one a release cares about).
func ReadRestorable(ctx context.Context, c Clients, id, roleOf string) (Restorable, error) {
	var r Restorable
	out, err := c.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		return r, fmt.Errorf("describe instance %s: %w", id, err)
	}
	r.Groups, r.DeleteOnTermination = map[string][]string{}, map[string]bool{}
	for _, res := range out.Reservations {
		for _, i := range res.Instances {
			for _, n := range i.NetworkInterfaces {
				var ids []string
				for _, g := range n.Groups {
					ids = append(ids, aws.ToString(g.GroupId))
				}
				slices.Sort(ids)
				r.Groups[aws.ToString(n.NetworkInterfaceId)] = ids
			}
			for _, b := range i.BlockDeviceMappings {
				if b.Ebs != nil {
					r.DeleteOnTermination[aws.ToString(b.Ebs.VolumeId)] = aws.ToBool(b.Ebs.DeleteOnTermination)
				}
			}
		}
	}
	as, err := c.EC2.DescribeIamInstanceProfileAssociations(ctx, &ec2.DescribeIamInstanceProfileAssociationsInput{
		Filters: []types.Filter{{Name: aws.String("instance-id"), Values: []string{id}}},
	})
	if err != nil {
		return r, fmt.Errorf("describe profile associations of %s: %w", id, err)
	}
	for _, a := range as.IamInstanceProfileAssociations {
		switch a.State {
		case types.IamInstanceProfileAssociationStateAssociating, types.IamInstanceProfileAssociationStateAssociated:
		default:
			continue
		}
		if a.IamInstanceProfile != nil {
			r.Profile = aws.ToString(a.IamInstanceProfile.Arn)
		}
	}
	term, err := c.EC2.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(id), Attribute: types.InstanceAttributeNameDisableApiTermination})
	if err != nil {
		return r, fmt.Errorf("describe termination protection of %s: %w", id, err)
	}
	if term.DisableApiTermination != nil {
		r.TerminationProtection = aws.ToBool(term.DisableApiTermination.Value)
	}
	shut, err := c.EC2.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(id), Attribute: types.InstanceAttributeNameInstanceInitiatedShutdownBehavior})
	if err != nil {
		return r, fmt.Errorf("describe shutdown behaviour of %s: %w", id, err)
	}
	if shut.InstanceInitiatedShutdownBehavior != nil {
		r.ShutdownBehavior = aws.ToString(shut.InstanceInitiatedShutdownBehavior.Value)
	}
	asg, err := c.AutoScaling.DescribeAutoScalingInstances(ctx, &autoscaling.DescribeAutoScalingInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		return r, fmt.Errorf("describe auto scaling membership of %s: %w", id, err)
	}
	for _, i := range asg.AutoScalingInstances {
		r.AutoScalingGroup = aws.ToString(i.AutoScalingGroupName)
	}
	if r.Targets, err = targets(ctx, c.ELB, id); err != nil {
		return r, err
	}
	profile := r.Profile
	if roleOf != "" {
		profile = roleOf
	}
	if profile != "" {
		if r.Role, err = readRole(ctx, c.IAM, profile); err != nil {
			return r, err
		}
	}
	return r, nil
}

func targets(ctx context.Context, c *elb.Client, id string) ([]string, error) {
	var out []string
	p := elb.NewDescribeTargetGroupsPaginator(c, &elb.DescribeTargetGroupsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe target groups: %w", err)
		}
		for _, tg := range page.TargetGroups {
			h, err := c.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: tg.TargetGroupArn})
			if err != nil {
				return nil, fmt.Errorf("describe target health of %s: %w", aws.ToString(tg.TargetGroupArn), err)
			}
			for _, d := range h.TargetHealthDescriptions {
				if d.Target != nil && aws.ToString(d.Target.Id) == id {
					out = append(out, fmt.Sprintf("%s port %d", aws.ToString(tg.TargetGroupArn), aws.ToInt32(d.Target.Port)))
				}
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

func readRole(ctx context.Context, c *iam.Client, profileARN string) (*Role, error) {
	name := profileARN[strings.LastIndex(profileARN, "/")+1:]
	p, err := c.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(name)})
	if err != nil {
		return nil, fmt.Errorf("get instance profile %s: %w", name, err)
	}
	if len(p.InstanceProfile.Roles) == 0 {
		return nil, nil
	}
	role := &Role{Name: aws.ToString(p.InstanceProfile.Roles[0].RoleName), Inline: map[string]string{}}
	names, err := c.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String(role.Name)})
	if err != nil {
		return nil, fmt.Errorf("list inline policies of %s: %w", role.Name, err)
	}
	for _, n := range names.PolicyNames {
		doc, err := c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(role.Name), PolicyName: aws.String(n)})
		if err != nil {
			return nil, fmt.Errorf("get inline policy %s of %s: %w", n, role.Name, err)
		}
		text, err := url.QueryUnescape(aws.ToString(doc.PolicyDocument))
		if err != nil {
			return nil, fmt.Errorf("inline policy %s of %s is not URL-encoded: %w", n, role.Name, err)
		}
		role.Inline[n] = text
	}
	attached, err := c.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(role.Name)})
	if err != nil {
		return nil, fmt.Errorf("list attached policies of %s: %w", role.Name, err)
	}
	for _, a := range attached.AttachedPolicies {
		role.Attached = append(role.Attached, aws.ToString(a.PolicyArn))
	}
	slices.Sort(role.Attached)
	return role, nil
}
