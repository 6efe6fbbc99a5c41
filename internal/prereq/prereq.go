// Package prereq finds, and creates when missing, what the isolation workflow needs in an account without the
// stack: the isolation instance profile (with a role that denies every action, as the stack's), the notification topic, and a
// versioned incident bucket with its public access blocked. Names are derived from the account and region, so a
// second run finds and reuses what the first created.
package prereq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/smithy-go"

	"github.com/ec2-isolation/ec2-isolation/internal/partition"
)

// Default names; the group is created by the workflow itself in each VPC.
const (
	GroupName   = "ec2-isolation-quarantine"
	ProfileName = "ec2-isolation-quarantine"
	RoleName    = "ec2-isolation-quarantine-role"
	TopicName   = "ec2-isolation-notifications"
)

// DenyPolicyName and DenyPolicy are the isolation role's one inline policy, as template.yaml's IsolationRole has
// it: a role with no Allow can already do nothing, but an explicit Deny also beats any policy attached to the
// role later (by hand, or by an automation that "fixes" roles), so the isolated instance's credentials stay
// useless (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html: an
// explicit deny in any policy overrides any allow).
const (
	DenyPolicyName = "deny-all"
	DenyPolicy     = `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}`
)

// ec2Trust lets EC2 assume the role: an instance profile's role must trust ec2.amazonaws.com.
const ec2Trust = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`

// Names are the resources of the no-stack mode.
type Names struct {
	Group, Profile, Role, TopicARN, Bucket string
}

// For derives the names in an account and region. S3 bucket names are global: the account and region make it
// ours.
func For(account, region string) Names {
	return Names{Group: GroupName, Profile: ProfileName, Role: RoleName,
		TopicARN: fmt.Sprintf("arn:%s:sns:%s:%s:%s", partition.Of(region), region, account, TopicName),
		Bucket:   fmt.Sprintf("ec2-isolation-incidents-%s-%s", account, region)}
}

// Clients are the APIs the plan reads and Create calls.
type Clients struct {
	IAM *iam.Client
	SNS *sns.Client
	S3  *s3.Client
}

// Kind is one creation.
type Kind string

const (
	CreateRole        Kind = "create role"
	PutDenyPolicy     Kind = "put deny policy"
	CreateProfile     Kind = "create instance profile"
	AddRoleToProfile  Kind = "add role to instance profile"
	CreateTopic       Kind = "create topic"
	CreateBucket      Kind = "create bucket"
	EnableVersioning  Kind = "enable versioning"
	BlockPublicAccess Kind = "block public access"
)

// Step is one thing missing, to be created.
type Step struct {
	Kind     Kind   `json:"kind"`
	Resource string `json:"resource"`
	Detail   string `json:"detail"`
}

func (s Step) String() string { return fmt.Sprintf("%s %s: %s", s.Kind, s.Resource, s.Detail) }

// Plan reads what exists and lists what is missing, in the order Create makes it. It changes nothing.
func Plan(ctx context.Context, c Clients, n Names) ([]Step, error) {
	var steps []Step
	if _, err := c.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(n.Role)}); err != nil {
		if !isCode(err, "NoSuchEntity") {
			return nil, fmt.Errorf("read role %s (iam:GetRole): %w", n.Role, err)
		}
		steps = append(steps, Step{CreateRole, n.Role, "trusted by ec2.amazonaws.com, no permissions"},
			Step{PutDenyPolicy, n.Role, "inline policy " + DenyPolicyName + ": denies every action, as the stack's isolation role"})
	} else {
		ok, err := denies(ctx, c.IAM, n.Role)
		if err != nil {
			return nil, err
		}
		if !ok {
			steps = append(steps, Step{PutDenyPolicy, n.Role, "inline policy " + DenyPolicyName + ": denies every action, as the stack's isolation role"})
		}
	}
	p, err := c.IAM.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(n.Profile)})
	switch {
	case isCode(err, "NoSuchEntity"):
		steps = append(steps, Step{CreateProfile, n.Profile, "the isolation instance profile"},
			Step{AddRoleToProfile, n.Profile, "role " + n.Role})
	case err != nil:
		return nil, fmt.Errorf("read instance profile %s (iam:GetInstanceProfile): %w", n.Profile, err)
	case len(p.InstanceProfile.Roles) == 0:
		steps = append(steps, Step{AddRoleToProfile, n.Profile, "role " + n.Role})
	case aws.ToString(p.InstanceProfile.Roles[0].RoleName) != n.Role:
		return nil, fmt.Errorf("instance profile %s exists with role %s, not %s: pass --profile-name for another profile, or remove it",
			n.Profile, aws.ToString(p.InstanceProfile.Roles[0].RoleName), n.Role)
	}
	if _, err := c.SNS.GetTopicAttributes(ctx, &sns.GetTopicAttributesInput{TopicArn: aws.String(n.TopicARN)}); err != nil {
		if !isCode(err, "NotFound") {
			return nil, fmt.Errorf("read topic %s (sns:GetTopicAttributes): %w", n.TopicARN, err)
		}
		steps = append(steps, Step{CreateTopic, n.TopicARN, "the notification topic (subscribe to it to be told)"})
	}
	bucketSteps := []Step{
		{EnableVersioning, n.Bucket, "every version of the incident record is kept"},
		{BlockPublicAccess, n.Bucket, "all four public access settings on"},
	}
	if _, err := c.S3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(n.Bucket)}); err != nil {
		if !isCode(err, "NotFound", "NoSuchBucket") {
			// 403: the name exists in another account, or we may not read it.
			return nil, fmt.Errorf("bucket %s (s3:HeadBucket): %w", n.Bucket, err)
		}
		return append(append(steps, Step{CreateBucket, n.Bucket, "the incident record bucket (S3 encrypts every object with SSE-S3)"}), bucketSteps...), nil
	}
	v, err := c.S3.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(n.Bucket)})
	if err != nil {
		return nil, fmt.Errorf("read versioning of bucket %s (s3:GetBucketVersioning): %w", n.Bucket, err)
	}
	if v.Status != s3types.BucketVersioningStatusEnabled {
		steps = append(steps, bucketSteps[0])
	}
	pab, err := c.S3.GetPublicAccessBlock(ctx, &s3.GetPublicAccessBlockInput{Bucket: aws.String(n.Bucket)})
	switch {
	case isCode(err, "NoSuchPublicAccessBlockConfiguration"):
		steps = append(steps, bucketSteps[1])
	case err != nil:
		return nil, fmt.Errorf("read public access block of bucket %s (s3:GetPublicAccessBlock): %w", n.Bucket, err)
	case !allBlocked(pab.PublicAccessBlockConfiguration):
		steps = append(steps, bucketSteps[1])
	}
	return steps, nil
}

// denies says whether the role already has DenyPolicy under DenyPolicyName (a role created before the policy was
// added lacks it). IAM returns the document URL-encoded (RFC 3986); it is compared as JSON.
func denies(ctx context.Context, c *iam.Client, role string) (bool, error) {
	out, err := c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String(DenyPolicyName)})
	switch {
	case isCode(err, "NoSuchEntity"):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("read policy %s of role %s (iam:GetRolePolicy): %w", DenyPolicyName, role, err)
	}
	doc, err := url.PathUnescape(aws.ToString(out.PolicyDocument))
	if err != nil {
		doc = aws.ToString(out.PolicyDocument)
	}
	var got, want any
	if json.Unmarshal([]byte(doc), &got) != nil {
		return false, nil
	}
	_ = json.Unmarshal([]byte(DenyPolicy), &want)
	return reflect.DeepEqual(got, want), nil
}

func allBlocked(c *s3types.PublicAccessBlockConfiguration) bool {
	return c != nil && aws.ToBool(c.BlockPublicAcls) && aws.ToBool(c.IgnorePublicAcls) &&
		aws.ToBool(c.BlockPublicPolicy) && aws.ToBool(c.RestrictPublicBuckets)
}

// Create makes each step. Each is idempotent: a resource that appeared since the plan (another responder's run)
// is reused.
func Create(ctx context.Context, c Clients, n Names, region string, steps []Step) error {
	for _, s := range steps {
		var err error
		switch s.Kind {
		case CreateRole:
			_, err = c.IAM.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(n.Role), AssumeRolePolicyDocument: aws.String(ec2Trust),
				Description: aws.String("ec2-isolation: the role of the isolation instance profile; denies every action")})
			err = ignore(err, "EntityAlreadyExists")
		case PutDenyPolicy:
			// PutRolePolicy replaces a policy of the same name: twice = once.
			_, err = c.IAM.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(n.Role),
				PolicyName: aws.String(DenyPolicyName), PolicyDocument: aws.String(DenyPolicy)})
		case CreateProfile:
			_, err = c.IAM.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String(n.Profile)})
			err = ignore(err, "EntityAlreadyExists")
		case AddRoleToProfile:
			_, err = c.IAM.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: aws.String(n.Profile), RoleName: aws.String(n.Role)})
			err = ignore(err, "LimitExceeded") // it has a role already: Plan checked it is ours
		case CreateTopic:
			// CreateTopic is idempotent for an existing name with the same attributes.
			_, err = c.SNS.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(TopicName)})
		case CreateBucket:
			in := &s3.CreateBucketInput{Bucket: aws.String(n.Bucket)}
			if region != "us-east-1" { // us-east-1 takes no location constraint
				in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(region)}
			}
			_, err = c.S3.CreateBucket(ctx, in)
			err = ignore(err, "BucketAlreadyOwnedByYou")
		case EnableVersioning:
			_, err = c.S3.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(n.Bucket),
				VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}})
		case BlockPublicAccess:
			_, err = c.S3.PutPublicAccessBlock(ctx, &s3.PutPublicAccessBlockInput{Bucket: aws.String(n.Bucket),
				PublicAccessBlockConfiguration: &s3types.PublicAccessBlockConfiguration{BlockPublicAcls: aws.Bool(true),
					IgnorePublicAcls: aws.Bool(true), BlockPublicPolicy: aws.Bool(true), RestrictPublicBuckets: aws.Bool(true)}})
		default:
			err = fmt.Errorf("unknown step %q", s.Kind)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

func ignore(err error, code string) error {
	if isCode(err, code) {
		return nil
	}
	return err
}

func isCode(err error, codes ...string) bool {
	var ae smithy.APIError
	if err == nil || !errors.As(err, &ae) {
		return false
	}
	for _, c := range codes {
		if strings.EqualFold(ae.ErrorCode(), c) {
			return true
		}
	}
	return false
}
