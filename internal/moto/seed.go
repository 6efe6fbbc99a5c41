package moto

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Names the seeded account uses: the stack parameters' defaults (template.yaml).
const (
	IsolationGroupName   = "ec2-isolation-quarantine"
	IsolationProfileName = "ec2-isolation-quarantine"
	TopicName            = "ec2-isolation-notifications"
	// BucketName is the incident bucket (versioned), as the stack's IncidentBucket.
	BucketName = "ec2-isolation-incidents-" + AccountID
	// InstanceProfileName is the profile the instance runs with before isolation.
	InstanceProfileName = "web-server"
	// QueueName is the SQS queue subscribed to the topic: the test's inbox for the notifications.
	QueueName = "ec2-isolation-inbox"
)

// Seeded is what Seed created.
type Seeded struct {
	Region, AccountID string
	// VPCs, Subnets and Groups: index 0 is the instance's primary VPC ("web"), 1 the other VPC ("db") that a
	// second ENI of the instance is in (a multi-VPC attachment).
	VPCs    [2]string
	Subnets [2]string
	Groups  [2]string
	// InstanceID has ENIs in both VPCs, the instance profile InstanceProfileName and two EBS volumes.
	InstanceID string
	// ENIs by VPC index: ENIs[0] is the primary (device 0) in VPCs[0], ENIs[1] (device 1) in VPCs[1].
	ENIs    [2]string
	Volumes []string
	// IsolationProfileARN and IsolationRoleARN: the isolation profile exists unless SeedOptions.NoIsolationProfile.
	IsolationProfileARN, IsolationRoleARN string
	TopicARN, QueueURL                    string
}

// SeedOptions vary the account.
type SeedOptions struct {
	// LaunchGroups launches the instance with SecurityGroupIds instead of the groups on its network interface
	// specification. Equivalent in AWS; moto then reports these groups on every attached ENI, whatever the ENI's
	// own groups are (docs/moto.md).
	LaunchGroups bool
	// NoIsolationProfile leaves out the isolation instance profile (a stack not deployed, a wrong name).
	NoIsolationProfile bool
	// NoProfile launches the instance without an instance profile.
	NoProfile bool
	// Stack also creates a stack named StackName whose outputs and parameters are those of template.yaml that
	// `isolation run` and `preflight` read (moto cannot deploy the SAM template itself).
	Stack bool
}

// StackName is the stack SeedOptions.Stack creates: the default of --stack.
const StackName = "ec2-isolation"

// stackTemplate stands for the deployed stack: the same output and parameter names as template.yaml.
const stackTemplate = `{
  "Parameters": {
    "IsolationTagKey": {"Type": "String", "Default": "Isolate"},
    "IsolationTagValue": {"Type": "String", "Default": "true"},
    "ConnectionTracking": {"Type": "String", "Default": "direct"},
    "IsolationGroupName": {"Type": "String", "Default": "` + IsolationGroupName + `"},
    "TopicArn": {"Type": "String"}
  },
  "Resources": {"Placeholder": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
  "Outputs": {
    "IsolationSecurityGroupName": {"Value": {"Ref": "IsolationGroupName"}},
    "IsolationInstanceProfileName": {"Value": "` + IsolationProfileName + `"},
    "NotificationTopicArn": {"Value": {"Ref": "TopicArn"}},
    "IncidentBucketName": {"Value": "` + BucketName + `"}
  }
}`

// Clients are the SDK clients Seed uses.
type Clients struct {
	EC2 *ec2.Client
	IAM *iam.Client
	SNS *sns.Client
	SQS *sqs.Client
	CFN *cloudformation.Client
	S3  *s3.Client
	// AutoScaling and ELB only read (the seeded instance is in no group).
	AutoScaling *autoscaling.Client
	ELB         *elb.Client
}

// NewClients builds every client from cfg.
func NewClients(cfg aws.Config) Clients {
	return Clients{EC2: ec2.NewFromConfig(cfg), IAM: iam.NewFromConfig(cfg), SNS: sns.NewFromConfig(cfg), SQS: sqs.NewFromConfig(cfg), CFN: cloudformation.NewFromConfig(cfg), S3: s3.NewFromConfig(cfg),
		AutoScaling: autoscaling.NewFromConfig(cfg), ELB: elb.NewFromConfig(cfg)}
}

// ec2AssumeRole lets EC2 assume a role (an instance profile's role).
const ec2AssumeRole = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`

// denyAll is the isolation role's policy, as template.yaml gives it.
const denyAll = `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}`

// Seed creates, through the SDK, an account with something to isolate: two VPCs with a subnet each in the same
// Availability Zone, a security group in each, IAM roles and instance profiles (the instance's and the isolation
// profile), an instance with an ENI in each VPC and two EBS volumes, and the notification topic with an SQS queue
// subscribed to it.
func Seed(ctx context.Context, c Clients, o SeedOptions) (Seeded, error) {
	s := Seeded{Region: Region, AccountID: AccountID}
	az := Region + "a"
	for i, net := range []struct{ name, cidr, subnet, group string }{
		{"web", "10.1.0.0/16", "10.1.1.0/24", "web"},
		{"db", "10.2.0.0/16", "10.2.1.0/24", "db"},
	} {
		v, err := c.EC2.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String(net.cidr), TagSpecifications: nameTag(types.ResourceTypeVpc, net.name)})
		if err != nil {
			return s, fmt.Errorf("create VPC %s: %w", net.name, err)
		}
		s.VPCs[i] = aws.ToString(v.Vpc.VpcId)
		sn, err := c.EC2.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: v.Vpc.VpcId, CidrBlock: aws.String(net.subnet), AvailabilityZone: aws.String(az)})
		if err != nil {
			return s, fmt.Errorf("create subnet in %s: %w", s.VPCs[i], err)
		}
		s.Subnets[i] = aws.ToString(sn.Subnet.SubnetId)
		g, err := c.EC2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
			VpcId: v.Vpc.VpcId, GroupName: aws.String(net.group), Description: aws.String(net.group + " servers"),
		})
		if err != nil {
			return s, fmt.Errorf("create group %s: %w", net.group, err)
		}
		s.Groups[i] = aws.ToString(g.GroupId)
		// A narrow inbound rule: the kind of rule whose tracked connections survive a group swap.
		if _, err := c.EC2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
			GroupId: g.GroupId,
			IpPermissions: []types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22),
				IpRanges: []types.IpRange{{CidrIp: aws.String("10.0.0.0/8")}}}},
		}); err != nil {
			return s, fmt.Errorf("authorize ingress of %s: %w", net.group, err)
		}
	}

	if _, err := instanceProfile(ctx, c.IAM, InstanceProfileName, "web-server-role", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}`); err != nil {
		return s, err
	}
	if !o.NoIsolationProfile {
		p, err := instanceProfile(ctx, c.IAM, IsolationProfileName, IsolationProfileName+"-role", denyAll)
		if err != nil {
			return s, err
		}
		s.IsolationProfileARN = aws.ToString(p.Arn)
		s.IsolationRoleARN = aws.ToString(p.Roles[0].Arn)
	}

	// Any image will do; a name filter keeps moto from listing its thousand-odd images.
	img, err := c.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"amazon"},
		Filters: []types.Filter{{Name: aws.String("name"), Values: []string{"amzn2-ami-hvm-*-x86_64-gp2"}}}})
	if err == nil && len(img.Images) == 0 {
		img, err = c.EC2.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"amazon"}})
	}
	if err != nil || len(img.Images) == 0 {
		return s, fmt.Errorf("find an image: %v (%d images)", err, len(imagesOf(img)))
	}
	run := &ec2.RunInstancesInput{
		ImageId: img.Images[0].ImageId, InstanceType: types.InstanceTypeT3Micro, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		BlockDeviceMappings: []types.BlockDeviceMapping{
			// Delete-on-termination on (the root volume's default on AWS): Preserve evidence must turn it off,
			// and verify checks it did (issue 13 item 3).
			{DeviceName: aws.String("/dev/xvda"), Ebs: &types.EbsBlockDevice{VolumeSize: aws.Int32(8), DeleteOnTermination: aws.Bool(true)}},
			{DeviceName: aws.String("/dev/sdf"), Ebs: &types.EbsBlockDevice{VolumeSize: aws.Int32(4), DeleteOnTermination: aws.Bool(true)}},
		},
		// Tagged as the responder does before the event: the workflow acts on the instance's current tag.
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{
			{Key: aws.String("Name"), Value: aws.String("web-1")}, {Key: aws.String("Isolate"), Value: aws.String("true")}}}},
	}
	if o.LaunchGroups {
		run.SubnetId, run.SecurityGroupIds = aws.String(s.Subnets[0]), []string{s.Groups[0]}
	} else {
		run.NetworkInterfaces = []types.InstanceNetworkInterfaceSpecification{{
			DeviceIndex: aws.Int32(0), SubnetId: aws.String(s.Subnets[0]), Groups: []string{s.Groups[0]},
		}}
	}
	if !o.NoProfile {
		run.IamInstanceProfile = &types.IamInstanceProfileSpecification{Name: aws.String(InstanceProfileName)}
	}
	res, err := c.EC2.RunInstances(ctx, run)
	if err != nil {
		return s, fmt.Errorf("run instance: %w", err)
	}
	inst := res.Instances[0]
	s.InstanceID = aws.ToString(inst.InstanceId)
	for _, n := range inst.NetworkInterfaces {
		if n.Attachment != nil && aws.ToInt32(n.Attachment.DeviceIndex) == 0 {
			s.ENIs[0] = aws.ToString(n.NetworkInterfaceId)
		}
	}
	if s.ENIs[0] == "" {
		return s, fmt.Errorf("instance %s has no primary network interface", s.InstanceID)
	}
	eni, err := c.EC2.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(s.Subnets[1]), Groups: []string{s.Groups[1]}})
	if err != nil {
		return s, fmt.Errorf("create ENI in %s: %w", s.Subnets[1], err)
	}
	s.ENIs[1] = aws.ToString(eni.NetworkInterface.NetworkInterfaceId)
	if _, err := c.EC2.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{
		NetworkInterfaceId: aws.String(s.ENIs[1]), InstanceId: aws.String(s.InstanceID), DeviceIndex: aws.Int32(1),
	}); err != nil {
		return s, fmt.Errorf("attach %s to %s: %w", s.ENIs[1], s.InstanceID, err)
	}
	d, err := c.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{s.InstanceID}})
	if err != nil {
		return s, fmt.Errorf("describe %s: %w", s.InstanceID, err)
	}
	for _, r := range d.Reservations {
		for _, i := range r.Instances {
			for _, b := range i.BlockDeviceMappings {
				if b.Ebs != nil {
					s.Volumes = append(s.Volumes, aws.ToString(b.Ebs.VolumeId))
				}
			}
		}
	}

	topic, err := c.SNS.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(TopicName)})
	if err != nil {
		return s, fmt.Errorf("create topic: %w", err)
	}
	s.TopicARN = aws.ToString(topic.TopicArn)
	q, err := c.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(QueueName)})
	if err != nil {
		return s, fmt.Errorf("create queue: %w", err)
	}
	s.QueueURL = aws.ToString(q.QueueUrl)
	qa, err := c.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		return s, fmt.Errorf("queue ARN: %w", err)
	}
	if _, err := c.SNS.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"), Endpoint: aws.String(qa.Attributes["QueueArn"])}); err != nil {
		return s, fmt.Errorf("subscribe the queue: %w", err)
	}
	if _, err := c.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(BucketName)}); err != nil {
		return s, fmt.Errorf("create bucket %s: %w", BucketName, err)
	}
	if _, err := c.S3.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(BucketName),
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}}); err != nil {
		return s, fmt.Errorf("enable versioning of %s: %w", BucketName, err)
	}
	if o.Stack {
		if _, err := c.CFN.CreateStack(ctx, &cloudformation.CreateStackInput{
			StackName: aws.String(StackName), TemplateBody: aws.String(stackTemplate),
			Parameters: []cfntypes.Parameter{{ParameterKey: aws.String("TopicArn"), ParameterValue: aws.String(s.TopicARN)}},
		}); err != nil {
			return s, fmt.Errorf("create stack %s: %w", StackName, err)
		}
	}
	return s, nil
}

func imagesOf(o *ec2.DescribeImagesOutput) []types.Image {
	if o == nil {
		return nil
	}
	return o.Images
}

func nameTag(rt types.ResourceType, name string) []types.TagSpecification {
	return []types.TagSpecification{{ResourceType: rt, Tags: []types.Tag{{Key: aws.String("Name"), Value: aws.String(name)}}}}
}

// instanceProfile creates a role with an inline policy and an instance profile holding it.
func instanceProfile(ctx context.Context, c *iam.Client, profile, role, policy string) (*iamtypes.InstanceProfile, error) {
	r, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(role), AssumeRolePolicyDocument: aws.String(ec2AssumeRole)})
	if err != nil {
		return nil, fmt.Errorf("create role %s: %w", role, err)
	}
	if _, err := c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: r.Role.RoleName, PolicyName: aws.String("policy"), PolicyDocument: aws.String(policy)}); err != nil {
		return nil, fmt.Errorf("policy of role %s: %w", role, err)
	}
	p, err := c.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String(profile)})
	if err != nil {
		return nil, fmt.Errorf("create instance profile %s: %w", profile, err)
	}
	if _, err := c.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: aws.String(profile), RoleName: aws.String(role)}); err != nil {
		return nil, fmt.Errorf("add role %s to %s: %w", role, profile, err)
	}
	got, err := c.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: p.InstanceProfile.InstanceProfileName})
	if err != nil {
		return nil, fmt.Errorf("get instance profile %s: %w", profile, err)
	}
	if len(got.InstanceProfile.Roles) != 1 {
		return nil, fmt.Errorf("instance profile %s has %d roles, want 1", profile, len(got.InstanceProfile.Roles))
	}
	return got.InstanceProfile, nil
}

// JSON is Seeded as the CI helper prints it.
func (s Seeded) JSON() string {
	b, _ := json.MarshalIndent(s, "", "  ")
	return string(b)
}
